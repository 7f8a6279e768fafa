// Simulated hosts: several executors per host (tasks on each, hops between them, the
// host's fds and disk shared by all), per-host clock skew and drift, and the seeded
// scheduling perturbation that varies which ready task runs next.
//
// A failing test prints its seed; MICA_SIM_SEED=N replays it.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "async/runtime.h"
#include "sim_helpers.h"

namespace mica::sim_testing {
namespace {

// ---- executors ----

// Records which executor runs it.
Task<void> note_executor(std::vector<Executor*>* seen) {
  seen->push_back(Executor::current());
  co_return;
}

TEST_F(SimFixture, TasksSpawnedOnEachExecutorRunThere) {
  SimWorld world(seed_);
  SimHost& host = world.add_host("server", 3);
  ASSERT_EQ(host.executor_count(), 3u);
  std::vector<Executor*> seen;
  for (uint32_t i = 0; i < 3; ++i) world.spawn(host, note_executor(&seen), i);
  ASSERT_TRUE(world.run_until_idle());
  std::set<Executor*> distinct(seen.begin(), seen.end());
  EXPECT_EQ(distinct,
            (std::set<Executor*>{&host.executor(0), &host.executor(1), &host.executor(2)}));
}

// Hops across every executor in `path` and records where it ran after each hop. The same
// code runs on a real Runtime and on a simulated host.
Task<bool> hop_along(std::vector<Executor*> path) {
  bool all_right = true;
  for (Executor* target : path) {
    co_await target->schedule();
    all_right = all_right && Executor::current() == target;
    Task<Status> napping = sleep_task(1ms);  // a timer on the executor it hopped to
    all_right = all_right && (co_await std::move(napping)).ok();
    all_right = all_right && Executor::current() == target;
  }
  co_return all_right;
}

TEST_F(SimFixture, ATaskHopsBetweenExecutorsAsOnARuntime) {
  SimWorld world(seed_);
  SimHost& host = world.add_host("server", 3);
  std::vector<Executor*> path = {&host.executor(1), &host.executor(2), &host.executor(0),
                                 &host.executor(2)};
  EXPECT_TRUE(world.run(host, hop_along(path)));
}

// The same hopping code on a real Runtime. Not a SimFixture: a Runtime may free the frames
// of a finished block_on on its threads after block_on returned, so no frame count here.
TEST(SimHostRuntime, TheSameHopsRunOnARealRuntime) {
  Runtime runtime(RuntimeOptions{.threads = 3});
  std::vector<Executor*> real = {&runtime.executor(1), &runtime.executor(2), &runtime.executor(0)};
  EXPECT_TRUE(runtime.block_on(hop_along(real)));
}

// Connects on the executor it starts on, then hops and talks over the same socket from
// another executor, and writes a file there that a third executor reads.
Task<Result<std::string>> cross_executor_echo(SimHost* self, SimHost* server) {
  Socket socket;
  Task<Status> connecting = connect_to(server, &socket);
  CO_TRY(co_await std::move(connecting));
  co_await self->executor(1).schedule();
  Task<Status> sending = send_text(&socket, "hop", 1s);
  CO_TRY(co_await std::move(sending));
  Task<Result<std::string>> receiving = recv_text(&socket, 3, 1s);
  CO_TRY_ASSIGN(std::string reply, co_await std::move(receiving));
  CO_TRY(co_await socket.shutdown(SHUT_WR));
  CO_TRY(co_await socket.close());
  Task<Result<File>> creating = File::open("shared", O_RDWR | O_CREAT);
  CO_TRY_ASSIGN(File file, co_await std::move(creating));
  co_await self->executor(2).schedule();
  Task<Status> writing = file.write_full(bytes_of(reply), 0);
  CO_TRY(co_await std::move(writing));
  CO_TRY(co_await file.close());
  co_return reply;
}

TEST_F(SimFixture, ExecutorsOfAHostShareItsSocketsAndDisk) {
  SimWorld world(seed_);
  SimHost& server = world.add_host("server", 2);
  SimHost& client = world.add_host("client", 3);
  world.spawn(server, echo_server(1), 1);  // listens on executor 1, the port is the host's
  Result<std::string> reply = world.run(client, cross_executor_echo(&client, &server));
  ASSERT_TRUE(reply.ok()) << reply.status().to_string();
  EXPECT_EQ(*reply, "hop");
  ASSERT_NE(client.disk().find("shared"), nullptr);
  EXPECT_EQ(client.disk().find("shared")->current, "hop");
}

Task<void> sleep_until_cancelled(int* cancelled) {
  Task<Status> napping = sleep_task(1h);
  if ((co_await std::move(napping)).code() == StatusCode::kCancelled) ++*cancelled;
}

TEST_F(SimFixture, ACrashCancelsTheTasksOfEveryExecutor) {
  SimWorld world(seed_);
  SimHost& host = world.add_host("server", 4);
  int cancelled = 0;
  for (uint32_t i = 0; i < 4; ++i) world.spawn(host, sleep_until_cancelled(&cancelled), i);
  world.run_for(1s);
  world.crash(host);
  EXPECT_EQ(cancelled, 4);
  EXPECT_EQ(host.task_count(), 0u);
}

// ---- clocks ----

// Sleeps d by its host's clock; reports the host's elapsed time.
Task<Duration> timed_sleep(Duration d) {
  TimePoint start = Executor::current()->now();
  Task<Status> napping = sleep_task(d);
  (void)co_await std::move(napping);
  co_return Executor::current()->now() - start;
}

TEST_F(SimFixture, ClockSkewAndDriftShowInNowAndTimers) {
  SimWorld world(seed_);
  SimHost& fast = world.add_host("fast");
  SimHost& slow = world.add_host("slow");
  fast.set_clock(5s, 1000);      // 5 s ahead, and 0.1 % fast
  slow.set_clock(-100ms, -500);  // 100 ms behind, and 0.05 % slow
  TimePoint world_start = world.now();
  EXPECT_EQ(fast.now() - world_start, Duration(5s));  // no drift yet at the epoch (1 s)
  EXPECT_EQ(slow.now() - world_start, Duration(-100ms));
  // A 10 s sleep by the fast clock takes 10 / 1.001 s of world time.
  Duration fast_slept = world.run(fast, timed_sleep(10s));
  EXPECT_GE(fast_slept, Duration(10s));
  EXPECT_LT(fast_slept, Duration(10s) + Duration(1us));
  Duration world_slept = world.now() - world_start;
  EXPECT_NEAR(double(world_slept.count()), 1e10 / 1.001, 2.0);
  // And by the slow clock 10 / 0.9995 s.
  world_start = world.now();
  Duration slow_slept = world.run(slow, timed_sleep(10s));
  EXPECT_GE(slow_slept, Duration(10s));
  EXPECT_NEAR(double((world.now() - world_start).count()), 1e10 / 0.9995, 2.0);
  // The clocks have drifted apart by what their rates say.
  Duration apart = fast.now() - slow.now();
  Duration elapsed = world.now() - TimePoint(std::chrono::seconds(1));
  EXPECT_NEAR(double(apart.count()), 5.1e9 + double(elapsed.count()) * 1.5e-3, 2.0);
}

Task<Status> recv_nothing_with_deadline(SimHost* server, Duration timeout) {
  Socket socket;
  Task<Status> connecting = connect_to(server, &socket);
  CO_TRY(co_await std::move(connecting));
  Task<Result<std::string>> receiving = recv_text(&socket, 1, timeout);
  Result<std::string> got = co_await std::move(receiving);
  co_await close_socket(&socket);
  co_return got.status();
}

TEST_F(SimFixture, OpDeadlinesAreInTheHostsClock) {
  SimWorld world(seed_);
  SimHost& server = world.add_host("server");
  SimHost& client = world.add_host("client");
  client.set_clock(1h, 1'000'000 - 1'000'000 / 2);  // runs at 1.5x, an hour ahead
  world.spawn(server, echo_server(1));
  world.run_for(1ms);
  TimePoint start = world.now();
  Status got = world.run(client, recv_nothing_with_deadline(&server, 3s));
  EXPECT_EQ(got.code(), StatusCode::kTimedOut) << got.to_string();
  Duration waited = world.now() - start;
  EXPECT_GE(waited, Duration(2s));  // 3 s of the client's clock
  EXPECT_LT(waited, Duration(2100ms));
}

// ---- scheduling perturbation ----

// Tasks that all become ready at once and note the order they run in.
Task<void> note_order(int id, std::vector<int>* order) {
  order->push_back(id);
  co_return;
}

std::vector<int> run_order(uint64_t seed, bool perturb, uint64_t* hash) {
  SimConfig config;
  config.perturb_schedule = perturb;
  SimWorld world(seed, config);
  SimHost& host = world.add_host("host", 2);
  std::vector<int> order;
  for (int i = 0; i < 8; ++i) world.spawn(host, note_order(i, &order), uint32_t(i % 2));
  EXPECT_TRUE(world.run_until_idle());
  *hash = world.trace_hash();
  return order;
}

TEST_F(SimFixture, PerturbationVariesTheOrderAcrossSeedsAndReplaysFromOne) {
  std::set<std::vector<int>> orders;
  for (uint64_t seed = seed_; seed < seed_ + 20; ++seed) {
    uint64_t first_hash = 0, second_hash = 0;
    std::vector<int> first = run_order(seed, true, &first_hash);
    std::vector<int> second = run_order(seed, true, &second_hash);
    EXPECT_EQ(first, second) << "seed " << seed;
    EXPECT_EQ(first_hash, second_hash) << "seed " << seed;
    orders.insert(first);
  }
  EXPECT_GE(orders.size(), 10u) << "the perturbation hardly changes the interleaving";
  uint64_t hash = 0;
  std::vector<int> fixed = run_order(seed_, false, &hash);
  EXPECT_EQ(fixed, (std::vector<int>{0, 2, 4, 6, 1, 3, 5, 7}));  // executor by executor
  EXPECT_EQ(run_order(seed_ + 1, false, &hash), fixed);
}

// ---- everything at once replays ----

Task<void> echo_rounds(SimHost* server, int rounds, int* echoed) {
  for (int i = 0; i < rounds; ++i) {
    std::string message = "round-" + std::to_string(i) + std::string(size_t(300 * i), 'r');
    IoOptions options{.deadline = deadline_after(5s)};
    Task<Result<std::string>> echo = echo_client(server->address(kPort), message, options);
    Result<std::string> reply = co_await std::move(echo);
    if (reply.ok() && *reply == message) ++*echoed;
    Task<Status> napping = sleep_task(1ms);
    (void)co_await std::move(napping);
  }
}

// Loss, a one-way partition, a freeze, skewed and drifting clocks, several executors.
uint64_t run_fault_mix(uint64_t seed, int* echoed) {
  SimConfig config;
  config.net.drop_probability = 0.05;
  SimWorld world(seed, config);
  SimHost& server = world.add_host("server", 2);
  SimHost& a = world.add_host("a");
  SimHost& b = world.add_host("b", 2);
  server.set_clock(250ms, 300);
  a.set_clock(-50ms, -200);
  world.spawn(server, echo_server(8), 1);
  world.spawn(a, echo_rounds(&server, 4, echoed));
  world.spawn(b, echo_rounds(&server, 4, echoed), 1);
  world.schedule(5ms, [&] { world.partition_one_way(a, server); });
  world.schedule(400ms, [&] { world.heal_one_way(a, server); });
  world.schedule(20ms, [&] { world.freeze(server); });
  world.schedule(300ms, [&] { world.unfreeze(server); });
  EXPECT_TRUE(world.run_until_idle());
  return world.trace_hash();
}

TEST_F(SimFixture, SameSeedReplaysWithEveryNewFaultOn) {
  for (uint64_t seed = seed_; seed < seed_ + 5; ++seed) {
    int first_echoed = 0, second_echoed = 0;
    uint64_t first = run_fault_mix(seed, &first_echoed);
    uint64_t second = run_fault_mix(seed, &second_echoed);
    EXPECT_EQ(first, second) << "seed " << seed;
    EXPECT_EQ(first_echoed, second_echoed) << "seed " << seed;
    EXPECT_GT(first_echoed, 0) << "seed " << seed;
    // Lets runs under different compilers be compared (--gtest_output=xml).
    if (seed == seed_) RecordProperty("trace_hash", std::to_string(first));
  }
}

}  // namespace
}  // namespace mica::sim_testing
