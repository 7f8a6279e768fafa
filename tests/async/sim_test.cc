// The deterministic simulator: virtual time, simulated disks and network, crashes, replay.
//
// Every test runs its workload through the public File / Socket / Listener API on
// simulated hosts, so the same code paths run as on io_uring. A failing test prints its
// seed; MICA_SIM_SEED=N replays it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <poll.h>
#include <sys/uio.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "async/file.h"
#include "async/sim/world.h"
#include "async/socket.h"
#include "async/sync.h"
#include "async/wait_list.h"
#include "tests/async/sim_helpers.h"

namespace mica {

namespace {

using namespace mica::sim;
using namespace mica::sim_testing;
using namespace std::chrono_literals;

// The fixture (leak check, seed print) and the echo workloads are the simulator tests'
// shared ones (tests/async/sim_helpers.h).
class SimTest : public SimFixture {};

std::string to_string(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// ---- small workloads (named coroutines: no capturing lambda coroutines) ----

Task<Status> write_file(std::string path, std::string data, uint64_t offset, bool sync) {
  Task<Result<File>> opening = File::open(path, O_RDWR | O_CREAT);
  CO_TRY_ASSIGN(File file, co_await std::move(opening));
  std::span<const std::byte> span = bytes_of(data);
  Task<Status> writing = file.write_full(span, offset);
  CO_TRY(co_await std::move(writing));
  if (sync) CO_TRY(co_await file.fsync());
  CO_TRY(co_await file.close());
  co_return Status();
}

Task<Result<std::string>> read_file(std::string path) {
  Task<Result<File>> opening = File::open(path, O_RDONLY);
  CO_TRY_ASSIGN(File file, co_await std::move(opening));
  std::vector<std::byte> buffer(1 << 16);
  std::span<std::byte> span(buffer);
  Task<Result<size_t>> reading = file.read_full(span, 0);
  CO_TRY_ASSIGN(size_t n, co_await std::move(reading));
  CO_TRY(co_await file.close());
  co_return to_string(std::span(buffer.data(), n));
}

// An echo within two seconds of the caller's time.
Task<Result<std::string>> echo_with_deadline(SimHost* server, std::string message) {
  IoOptions options{.deadline = deadline_after(std::chrono::seconds(2))};
  Task<Result<std::string>> echo = echo_client(server->address(kPort), message, options);
  co_return co_await std::move(echo);
}

// ---- determinism ----

// A client exchanging messages with an echo server, logging them to disk, with sleeps.
Task<void> determinism_client(SimHost* server, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    std::string message = "message-" + std::to_string(i) + std::string(size_t(100 * i), 'x');
    Task<Result<std::string>> echo = echo_client(server->address(kPort), message, {});
    Result<std::string> reply = co_await std::move(echo);
    MICA_ASSERT(reply.ok() && *reply == message);
    Task<Status> logging = write_file("log", message, uint64_t(i) * 1000, i % 2 == 0);
    MICA_ASSERT((co_await std::move(logging)).ok());
    Task<Status> napping = sleep_task(std::chrono::milliseconds(1 + i));
    (void)co_await std::move(napping);
  }
}

uint64_t run_determinism_workload(uint64_t seed) {
  SimWorld world(seed);
  SimHost& server = world.add_host("server");
  SimHost& client_a = world.add_host("client-a");
  SimHost& client_b = world.add_host("client-b");
  constexpr int kRounds = 6;
  world.spawn(server, echo_server(2 * kRounds));
  world.spawn(client_a, determinism_client(&server, kRounds));
  world.spawn(client_b, determinism_client(&server, kRounds));
  EXPECT_TRUE(world.run_until_idle());
  EXPECT_GT(world.trace_events(), 100u);
  return world.trace_hash();
}

TEST_F(SimTest, SameSeedGivesIdenticalTraceAndOtherSeedDiffers) {
  uint64_t first = run_determinism_workload(seed_);
  uint64_t second = run_determinism_workload(seed_);
  uint64_t other = run_determinism_workload(seed_ + 1);
  EXPECT_EQ(first, second);
  EXPECT_NE(first, other);
  // Lets runs under different compilers be compared (--gtest_output=xml).
  RecordProperty("trace_hash", std::to_string(first));
}

// Clients that tolerate every failure, against a server that crashes and a flaky network.
Task<void> chaos_client(SimHost* server, int rounds, int* succeeded) {
  for (int i = 0; i < rounds; ++i) {
    std::string message = "chaos-" + std::to_string(i);
    Task<Result<std::string>> echo = echo_with_deadline(server, message);
    Result<std::string> reply = co_await std::move(echo);
    if (reply.ok() && *reply == message) ++*succeeded;
    Task<Status> logging = write_file("chaos-log", message, uint64_t(i) * 16, i % 3 == 0);
    (void)co_await std::move(logging);
    Task<Status> napping = sleep_task(std::chrono::milliseconds(3));
    (void)co_await std::move(napping);
  }
}

uint64_t run_chaos_workload(uint64_t seed, int* succeeded) {
  SimConfig config;
  config.net.drop_probability = 0.02;
  config.net.reset_probability = 0.02;
  config.net.retransmit_timeout = std::chrono::milliseconds(500);
  SimWorld world(seed, config);
  SimHost& server = world.add_host("server", [](SimHost&) { return echo_server(1000); });
  SimHost& a = world.add_host("a");
  SimHost& b = world.add_host("b");
  world.spawn(a, chaos_client(&server, 12, succeeded));
  world.spawn(b, chaos_client(&server, 12, succeeded));
  world.schedule(10ms, [&] { world.partition(server, a); });
  world.schedule(20ms, [&] { world.heal(server, a); });
  world.schedule(30ms, [&] { world.crash(server); });
  world.schedule(40ms, [&] { world.restart(server); });
  EXPECT_TRUE(world.run_until_idle());
  return world.trace_hash();
}

TEST_F(SimTest, SameSeedGivesIdenticalTraceUnderFaultsAndCrashes) {
  for (uint64_t seed = seed_; seed < seed_ + 5; ++seed) {
    int first_ok = 0, second_ok = 0;
    uint64_t first = run_chaos_workload(seed, &first_ok);
    uint64_t second = run_chaos_workload(seed, &second_ok);
    EXPECT_EQ(first, second) << "seed " << seed;
    EXPECT_EQ(first_ok, second_ok) << "seed " << seed;
    EXPECT_GT(first_ok, 0) << "seed " << seed;
  }
}

TEST_F(SimTest, SimSeedReadsEnvironmentOrFallsBack) {
  const char* saved = std::getenv("MICA_SIM_SEED");
  std::string saved_value = saved ? saved : "";
  setenv("MICA_SIM_SEED", "12345", 1);
  EXPECT_EQ(sim::sim_seed(7), 12345u);
  unsetenv("MICA_SIM_SEED");
  EXPECT_EQ(sim::sim_seed(7), 7u);
  if (saved) setenv("MICA_SIM_SEED", saved_value.c_str(), 1);
}

Task<void> wait_for_nothing() {
  Event never;
  Status woke = co_await never.wait();
  (void)woke;
}

TEST_F(SimTest, DeadlockFailsLoudlyWithTheSeed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        SimWorld world(seed_);
        SimHost& host = world.add_host("stuck");
        world.run(host, wait_for_nothing());
      },
      "deadlock.*simulation seed=[0-9]+ \\(replay: MICA_SIM_SEED=[0-9]+\\)");
}

// ---- virtual time ----

TEST_F(SimTest, OneHourSleepTakesNoWallTimeAndAdvancesVirtualClock) {
  SimWorld world(seed_);
  SimHost& host = world.add_host("sleeper");
  TimePoint start = world.now();
  auto wall_start = std::chrono::steady_clock::now();
  Status slept = world.run(host, sleep_task(1h));
  auto wall = std::chrono::steady_clock::now() - wall_start;
  EXPECT_TRUE(slept.ok()) << slept.to_string();
  EXPECT_EQ(world.now() - start, Duration(1h));
  EXPECT_LT(wall, std::chrono::seconds(1));
}

// ---- disk ----

TEST_F(SimTest, FileWriteFsyncReadRoundtrip) {
  SimWorld world(seed_);
  SimHost& host = world.add_host("disk");
  ASSERT_TRUE(world.run(host, write_file("data", "hello, simulated disk", 0, true)).ok());
  Result<std::string> back = world.run(host, read_file("data"));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(*back, "hello, simulated disk");
  EXPECT_EQ(host.disk().find("data")->durable, "hello, simulated disk");
}

TEST_F(SimTest, OpenMissingFileWithoutCreateIsNotFound) {
  SimWorld world(seed_);
  SimHost& host = world.add_host("disk");
  Result<std::string> back = world.run(host, read_file("missing"));
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), StatusCode::kNotFound);
}

TEST_F(SimTest, CrashThatKeepsNoUnsyncedChangeLosesExactlyTheUnsyncedWrites) {
  SimConfig config;
  config.disk.crash_keep_unsynced_probability = 0;  // the seeded subsets: sim_disk_test.cc
  SimWorld world(seed_, config);
  SimHost& host = world.add_host("disk");
  std::string a(100, 'A');
  ASSERT_TRUE(world.run(host, write_file("first", a, 0, true)).ok());
  // B overwrites the middle of A and extends the file, without fsync.
  ASSERT_TRUE(world.run(host, write_file("first", std::string(80, 'B'), 50, false)).ok());
  ASSERT_TRUE(world.run(host, write_file("second", "kept", 0, true)).ok());
  ASSERT_TRUE(world.run(host, sync_directory("/")).ok());  // the new names
  world.crash(host);
  world.restart(host);
  Result<std::string> first = world.run(host, read_file("first"));
  Result<std::string> second = world.run(host, read_file("second"));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, a);
  EXPECT_EQ(*second, "kept");
}

Task<Status> write_dsync(std::string path, std::string data, uint64_t offset) {
  Task<Result<File>> opening = File::open(path, O_RDWR | O_CREAT);
  CO_TRY_ASSIGN(File file, co_await std::move(opening));
  Task<Status> writing = file.write_full(bytes_of(data), offset, IoOptions{.rw_flags = RWF_DSYNC});
  CO_TRY(co_await std::move(writing));
  CO_TRY(co_await file.close());
  co_return Status();
}

TEST_F(SimTest, DsyncWriteSurvivesACrashWithoutFsync) {
  SimConfig config;
  config.disk.crash_keep_unsynced_probability = 0;
  SimWorld world(seed_, config);
  SimHost& host = world.add_host("disk");
  ASSERT_TRUE(world.run(host, write_file("f", std::string(100, 'A'), 0, true)).ok());
  ASSERT_TRUE(world.run(host, sync_directory("/")).ok());
  ASSERT_TRUE(world.run(host, write_dsync("f", std::string(10, 'D'), 20)).ok());
  ASSERT_TRUE(world.run(host, write_file("f", std::string(10, 'V'), 60, false)).ok());
  world.crash(host);
  world.restart(host);
  Result<std::string> back = world.run(host, read_file("f"));
  ASSERT_TRUE(back.ok());
  std::string expected(100, 'A');
  expected.replace(20, 10, std::string(10, 'D'));  // durable on completion
  EXPECT_EQ(*back, expected);                      // the plain write at 60 is gone
}

TEST_F(SimTest, InjectedEioIsObservedAndChangesNothing) {
  SimWorld world(seed_);
  SimHost& host = world.add_host("disk");
  ASSERT_TRUE(world.run(host, write_file("bad", "old", 0, true)).ok());
  host.disk_config().fail_io = [](std::string_view path, IoOpcode opcode) {
    return path == "bad" && opcode == IoOpcode::kWrite;
  };
  Status written = world.run(host, write_file("bad", "new", 0, true));
  EXPECT_EQ(written.code(), StatusCode::kIoError) << written.to_string();
  EXPECT_TRUE(world.run(host, write_file("good", "fine", 0, true)).ok());
  host.disk_config().fail_io = nullptr;
  Result<std::string> back = world.run(host, read_file("bad"));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "old");
}

TEST_F(SimTest, RandomEioAtProbabilityOneFailsEveryRead) {
  SimWorld world(seed_);
  SimHost& host = world.add_host("disk");
  ASSERT_TRUE(world.run(host, write_file("f", "data", 0, true)).ok());
  host.disk_config().eio_probability = 1.0;
  Result<std::string> back = world.run(host, read_file("f"));
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), StatusCode::kIoError);
}

TEST_F(SimTest, WriteBeyondCapacityFailsWithNoSpaceAndWritesNothing) {
  SimConfig config;
  config.disk.capacity_bytes = 1000;
  SimWorld world(seed_, config);
  SimHost& host = world.add_host("small");
  ASSERT_TRUE(world.run(host, write_file("f", std::string(600, 'a'), 0, true)).ok());
  Status big = world.run(host, write_file("g", std::string(500, 'b'), 0, true));
  EXPECT_EQ(big.code(), StatusCode::kNoSpace) << big.to_string();
  EXPECT_EQ(host.disk().find("g")->current.size(), 0u);
  // Overwriting inside the existing extent needs no new space.
  EXPECT_TRUE(world.run(host, write_file("f", std::string(600, 'c'), 0, true)).ok());
  EXPECT_EQ(host.disk().used_bytes(), 600u);
}

Task<Status> fallocate_task(std::string path, uint64_t length) {
  Task<Result<File>> opening = File::open(path, O_RDWR | O_CREAT);
  CO_TRY_ASSIGN(File file, co_await std::move(opening));
  Status reserved = co_await file.fallocate(0, 0, length);
  CO_TRY(co_await file.close());
  co_return reserved;
}

TEST_F(SimTest, FallocateCountsAgainstCapacity) {
  SimConfig config;
  config.disk.capacity_bytes = 4096;
  SimWorld world(seed_, config);
  SimHost& host = world.add_host("small");
  EXPECT_TRUE(world.run(host, fallocate_task("f", 4000)).ok());
  EXPECT_EQ(world.run(host, fallocate_task("g", 200)).code(), StatusCode::kNoSpace);
  EXPECT_EQ(host.disk().find("f")->current.size(), 4000u);
}

TEST_F(SimTest, DiskLatencyIsObservedInVirtualTime) {
  SimConfig config;
  config.disk.latency_min = config.disk.latency_max = 5ms;
  SimWorld world(seed_, config);
  SimHost& host = world.add_host("slow");
  TimePoint start = world.now();
  // open, write, fsync, close: three disk ops of 5 ms each, close is immediate.
  ASSERT_TRUE(world.run(host, write_file("f", "x", 0, true)).ok());
  EXPECT_EQ(world.now() - start, Duration(15ms));
}

Task<Result<size_t>> slow_write_with_deadline(Duration timeout) {
  Task<Result<File>> opening = File::open("f", O_RDWR | O_CREAT);
  CO_TRY_ASSIGN(File file, co_await std::move(opening));
  std::string data = "late";
  IoOptions options{.deadline = deadline_after(timeout)};
  Result<size_t> written = co_await file.write(bytes_of(data), 0, options);
  CO_TRY(co_await file.close());
  co_return written;
}

TEST_F(SimTest, DeadlineBeforeCompletionFailsWithTimedOut) {
  SimWorld world(seed_);
  SimHost& host = world.add_host("disk");
  ASSERT_TRUE(world.run(host, write_file("f", "", 0, true)).ok());
  host.disk_config().latency_min = host.disk_config().latency_max = 1s;
  TimePoint start = world.now();
  Result<size_t> written = world.run(host, slow_write_with_deadline(100ms));
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.status().code(), StatusCode::kTimedOut);
  // open took 1 s, the write gave up 100 ms later, close is immediate.
  EXPECT_EQ(world.now() - start, Duration(1100ms));
  EXPECT_EQ(host.disk().find("f")->current, "");
}

Task<Result<std::string>> vectored_roundtrip() {
  Task<Result<File>> opening = File::open("v", O_RDWR | O_CREAT | O_TRUNC);
  CO_TRY_ASSIGN(File file, co_await std::move(opening));
  std::string head = "head-", tail = "tail";
  iovec out[2] = {{head.data(), head.size()}, {tail.data(), tail.size()}};
  std::span<const iovec> out_span(out);
  CO_TRY_ASSIGN(size_t written, co_await file.writev(out_span, 10));
  MICA_ASSERT(written == 9);
  std::string first(12, '?'), second(7, '?');
  iovec in[2] = {{first.data(), first.size()}, {second.data(), second.size()}};
  std::span<const iovec> in_span(in);
  CO_TRY_ASSIGN(size_t read, co_await file.readv(in_span, 0));
  CO_TRY(co_await file.close());
  co_return first + second.substr(0, read - first.size());
}

TEST_F(SimTest, VectoredFileOpsGatherAndScatter) {
  SimWorld world(seed_);
  SimHost& host = world.add_host("disk");
  Result<std::string> back = world.run(host, vectored_roundtrip());
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->size(), 19u);
  EXPECT_EQ(back->substr(10), "head-tail");
  EXPECT_EQ(back->substr(0, 10), std::string(10, '\0'));
}

TEST_F(SimTest, TraceLogKeepsTheMostRecentLines) {
  SimConfig config;
  config.trace_log_lines_max = 4;
  SimWorld world(seed_, config);
  SimHost& host = world.add_host("disk");
  ASSERT_TRUE(world.run(host, write_file("f", "x", 0, true)).ok());
  ASSERT_EQ(world.trace_log().size(), 4u);
  EXPECT_NE(world.trace_log().back().find("disk task-end"), std::string::npos)
      << world.trace_log().back();
}

// ---- network ----

TEST_F(SimTest, EchoBetweenTwoHosts) {
  SimWorld world(seed_);
  SimHost& server = world.add_host("server");
  SimHost& client = world.add_host("client");
  world.spawn(server, echo_server(1));
  Result<std::string> reply =
      world.run(client, echo_client(server.address(kPort), "ping over the sim", {}));
  ASSERT_TRUE(reply.ok()) << reply.status().to_string();
  EXPECT_EQ(*reply, "ping over the sim");
  EXPECT_TRUE(world.run_until_idle());
  EXPECT_EQ(server.task_count(), 0u);
}

TEST_F(SimTest, ConnectWithoutListenerIsRefused) {
  SimWorld world(seed_);
  SimHost& server = world.add_host("server");
  SimHost& client = world.add_host("client");
  Result<std::string> reply = world.run(client, echo_client(server.address(kPort), "x", {}));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kConnectionRefused);
}

// Connects, then waits for bytes that never come, with a deadline.
Task<Status> recv_with_deadline(SimHost* server, Socket* out) {
  Task<Result<Socket>> connecting = Socket::connect(server->address(kPort), {});
  CO_TRY_ASSIGN(*out, co_await std::move(connecting));
  co_return Status();
}

Task<Status> send_then_recv(Socket* socket, Duration timeout) {
  std::string message = "are you there";
  CO_TRY(co_await socket->send(bytes_of(message)));
  std::vector<std::byte> buffer(64);
  std::span<std::byte> span(buffer);
  IoOptions options{.deadline = deadline_after(timeout)};
  CO_TRY_ASSIGN(size_t n, co_await socket->recv(span, options));
  (void)n;
  co_return Status();
}

TEST_F(SimTest, PartitionFailsConnectAndRecvWithinDeadlineAndHealRestores) {
  SimWorld world(seed_);
  SimHost& server = world.add_host("server");
  SimHost& client = world.add_host("client");
  world.spawn(server, echo_server(2));
  // An established connection, then the partition: its recv sees nothing until the deadline.
  Socket socket;
  ASSERT_TRUE(world.run(client, recv_with_deadline(&server, &socket)).ok());
  world.partition(server, client);
  TimePoint start = world.now();
  Status silent = world.run(client, send_then_recv(&socket, 1s));
  EXPECT_EQ(silent.code(), StatusCode::kTimedOut) << silent.to_string();
  EXPECT_EQ(world.now() - start, Duration(1s));
  world.run(client, close_socket(&socket));
  // A new connection into the partition fails at its deadline.
  start = world.now();
  Result<std::string> blocked = world.run(client, echo_with_deadline(&server, "x"));
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.status().code(), StatusCode::kTimedOut);
  EXPECT_EQ(world.now() - start, Duration(2s));
  world.heal(server, client);
  world.run_for(10s);  // the lost segment's connection resets; the server takes the next one
  Result<std::string> healed = world.run(client, echo_with_deadline(&server, "back"));
  ASSERT_TRUE(healed.ok()) << healed.status().to_string();
  EXPECT_EQ(*healed, "back");
}

// Accepts one connection and reports what its first recv returned.
Task<Status> accept_and_recv_once() {
  SocketAddress address = SocketAddress::loopback(kPort);
  Result<Listener> listener = Listener::listen(address);
  MICA_ASSERT(listener.ok());
  Task<Result<Socket>> accepting = listener->accept();
  Result<Socket> socket = co_await std::move(accepting);
  Status result = socket.status();
  if (socket.ok()) {
    std::vector<std::byte> buffer(64);
    std::span<std::byte> span(buffer);
    Result<size_t> n = co_await socket->recv(span);
    result = n.status();
  }
  Task<void> closing = listener->close();
  co_await std::move(closing);
  co_return result;
}

Task<Status> connect_and_send(SimHost* server, Socket* out) {
  Task<Result<Socket>> connecting = Socket::connect(server->address(kPort), {});
  CO_TRY_ASSIGN(*out, co_await std::move(connecting));
  std::string message = "hello";
  CO_TRY(co_await out->send(bytes_of(message)));
  co_return Status();
}

Task<Status> recv_status(Socket* socket) {
  std::vector<std::byte> buffer(64);
  std::span<std::byte> span(buffer);
  Result<size_t> n = co_await socket->recv(span);
  co_return n.status();
}

TEST_F(SimTest, InjectedResetIsObservedByBothEnds) {
  SimWorld world(seed_);
  SimHost& server = world.add_host("server");
  SimHost& client = world.add_host("client");
  world.net_config().reset_probability = 1.0;
  Status server_saw;
  world.spawn(server, report(accept_and_recv_once(), &server_saw));
  Socket socket;
  ASSERT_TRUE(world.run(client, connect_and_send(&server, &socket)).ok());
  Status client_saw = world.run(client, recv_status(&socket));
  EXPECT_EQ(client_saw.code(), StatusCode::kConnectionReset) << client_saw.to_string();
  world.run(client, close_socket(&socket));
  ASSERT_TRUE(world.run_until_idle());
  EXPECT_EQ(server_saw.code(), StatusCode::kConnectionReset) << server_saw.to_string();
}

TEST_F(SimTest, SegmentLostPastTheRetransmissionLimitTimesOutSenderAndResetsPeer) {
  SimWorld world(seed_);
  SimHost& server = world.add_host("server");
  SimHost& client = world.add_host("client");
  world.net_config().drop_probability = 1.0;
  world.net_config().retransmit_attempts_max = 3;
  Status server_saw;
  world.spawn(server, report(accept_and_recv_once(), &server_saw));
  Socket socket;
  ASSERT_TRUE(world.run(client, connect_and_send(&server, &socket)).ok());
  TimePoint sent = world.now();
  Status client_saw = world.run(client, recv_status(&socket));
  EXPECT_EQ(client_saw.code(), StatusCode::kTimedOut) << client_saw.to_string();
  // Retransmitted after 200, 400 and 800 ms; the sender gives up at the fourth loss.
  EXPECT_EQ(world.now() - sent, Duration(1400ms));
  world.run(client, close_socket(&socket));
  ASSERT_TRUE(world.run_until_idle());
  EXPECT_EQ(server_saw.code(), StatusCode::kConnectionReset) << server_saw.to_string();
}

Task<Result<std::string>> poll_then_recvmsg(SimHost* server, std::string message) {
  Task<Result<Socket>> connecting = Socket::connect(server->address(kPort), {});
  CO_TRY_ASSIGN(Socket socket, co_await std::move(connecting));
  std::string first = message.substr(0, 3), rest = message.substr(3);
  iovec out[2] = {{first.data(), first.size()}, {rest.data(), rest.size()}};
  msghdr sent{};
  sent.msg_iov = out;
  sent.msg_iovlen = 2;
  CO_TRY(co_await socket.sendmsg(&sent));
  // POLLIN only once the echo is back.
  CO_TRY_ASSIGN(int events, co_await poll_fd(socket.fd(), POLLIN));
  MICA_ASSERT(events & POLLIN);
  std::string a(2, '?'), b(message.size() - 2, '?');
  iovec in[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
  msghdr received{};
  received.msg_iov = in;
  received.msg_iovlen = 2;
  size_t got = 0;
  while (got < message.size()) {
    CO_TRY_ASSIGN(size_t n, co_await socket.recvmsg(&received));
    if (n == 0) break;
    got += n;
    // Shift the scatter list past what arrived (the echo may come in pieces).
    size_t skip = n;
    for (auto& v : in) {
      size_t used = std::min(skip, v.iov_len);
      v.iov_base = static_cast<char*>(v.iov_base) + used;
      v.iov_len -= used;
      skip -= used;
    }
  }
  CO_TRY(co_await socket.shutdown(SHUT_WR));
  CO_TRY(co_await socket.close());
  co_return a + b;
}

TEST_F(SimTest, SendmsgRecvmsgAndPollOnSimulatedSockets) {
  SimWorld world(seed_);
  SimHost& server = world.add_host("server");
  SimHost& client = world.add_host("client");
  world.spawn(server, echo_server(1));
  Result<std::string> reply = world.run(client, poll_then_recvmsg(&server, "scatter-gather"));
  ASSERT_TRUE(reply.ok()) << reply.status().to_string();
  EXPECT_EQ(*reply, "scatter-gather");
}

// ---- crash and restart ----

Task<void> long_sleeper(int* cancelled) {
  SleepAwaiter nap = sleep_for(std::chrono::hours(1));
  Status slept = co_await nap;
  if (slept.code() == StatusCode::kCancelled) ++*cancelled;
}

Task<void> server_main(SimHost* host, int* cancelled, int* boots) {
  ++*boots;
  host->world().spawn(*host, long_sleeper(cancelled));
  Task<void> serving = echo_server(100);
  co_await std::move(serving);
}

TEST_F(SimTest, CrashIsSilentToPeersCancelsTasksAndRestartBootsAgain) {
  SimWorld world(seed_);
  int cancelled = 0, boots = 0;
  SimHost& server = world.add_host("server", [&](SimHost& host) {
    return server_main(&host, &cancelled, &boots);  // not a coroutine: returns the task
  });
  SimHost& client = world.add_host("client");
  Socket socket;
  ASSERT_TRUE(world.run(client, connect_and_send(&server, &socket)).ok());
  ASSERT_TRUE(world.run(client, recv_status(&socket)).ok());  // the echo of "hello"
  world.crash(server);
  EXPECT_FALSE(server.up());
  EXPECT_EQ(server.task_count(), 0u);
  EXPECT_EQ(cancelled, 1);
  // A crashed host sends no reset: the peer learns of it only by its own deadline.
  Status after_crash = world.run(client, send_then_recv(&socket, 5s));
  EXPECT_EQ(after_crash.code(), StatusCode::kTimedOut) << after_crash.to_string();
  world.run(client, close_socket(&socket));
  world.restart(server);
  Result<std::string> reply = world.run(client, echo_with_deadline(&server, "again"));
  ASSERT_TRUE(reply.ok()) << reply.status().to_string();
  EXPECT_EQ(*reply, "again");
  EXPECT_EQ(boots, 2);
}

TEST_F(SimTest, CrashScheduledAtAVirtualTimeHitsARunningWorkload) {
  SimWorld world(seed_);
  int cancelled = 0, boots = 0;
  SimHost& server = world.add_host(
      "server", [&](SimHost& host) { return server_main(&host, &cancelled, &boots); });
  SimHost& client = world.add_host("client");
  world.schedule(10ms, [&] { world.crash(server); });
  Result<std::string> reply = world.run(client, echo_client(server.address(kPort), "x", {}));
  ASSERT_TRUE(reply.ok()) << reply.status().to_string();  // finishes long before the crash
  Task<Status> napping = sleep_task(1s);
  EXPECT_TRUE(world.run(client, std::move(napping)).ok());
  EXPECT_FALSE(server.up());
  EXPECT_EQ(server.task_count(), 0u);
  EXPECT_EQ(cancelled, 1);
  world.restart(server);
  reply = world.run(client, echo_with_deadline(&server, "after"));
  ASSERT_TRUE(reply.ok()) << reply.status().to_string();
  EXPECT_EQ(boots, 2);
}

TEST_F(SimTest, CrashFailsPendingDiskOpsWithCancelled) {
  SimConfig config;
  config.disk.latency_min = config.disk.latency_max = 1s;
  SimWorld world(seed_, config);
  SimHost& host = world.add_host("disk");
  SimHost& other = world.add_host("other");
  Status written;
  world.spawn(host, report(write_file("f", "never", 0, true), &written));
  world.run_for(500ms);  // the open is in flight
  world.crash(host);
  EXPECT_EQ(written.code(), StatusCode::kCancelled) << written.to_string();
  EXPECT_EQ(host.disk().find("f"), nullptr);
  (void)other;
}

// ---- lifetime ----

Task<void> wait_forever_on_recv(SimHost* server) {
  Socket socket;
  Task<Status> connecting = recv_with_deadline(server, &socket);
  if (!(co_await std::move(connecting)).ok()) co_return;
  Task<Status> receiving = recv_status(&socket);
  (void)co_await std::move(receiving);
}

TEST_F(SimTest, DestroyingTheWorldCancelsTasksAndLeaksNoFrames) {
  int64_t before = live_frames();
  {
    SimWorld world(seed_);
    SimHost& server = world.add_host("server");
    SimHost& client = world.add_host("client");
    int cancelled = 0;
    world.spawn(server, echo_server(10));
    world.spawn(server, long_sleeper(&cancelled));
    world.spawn(client, wait_forever_on_recv(&server));
    world.run_for(1s);
    EXPECT_EQ(server.task_count(), 2u);
    EXPECT_EQ(client.task_count(), 1u);
    EXPECT_GT(live_frames(), before);
  }
  EXPECT_EQ(live_frames(), before);
}

}  // namespace
}  // namespace mica
