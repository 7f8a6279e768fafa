// The simulated store alone: durability is exactly what the simulated disk keeps — a crash
// after a commit keeps it, a crash before loses it, and EIO or ENOSPC on a commit fail that
// commit only and change nothing, before or after a crash.
#include "kv/sim_store.h"

#include <algorithm>

#include "async/sim/world.h"
#include "tests/kv/kv_test_util.h"

namespace mica::kv {
namespace {

using sim::SimHost;
using sim::SimWorld;
using testing::kSimDir;

// What a writer task saw, read by the test between world steps.
struct Progress {
  int acknowledged = 0;  // puts that returned ok
  int started = 0;       // puts submitted
  Status last_failure;   // of the first put that failed
  bool finished = false;
};

EnvOptions sim_options() {
  EnvOptions options;
  options.implementation = Implementation::kSim;
  return options;
}

// Puts key i = "k<i>" for i < count, one commit each, until one fails; keeps the env open
// until the end (a crash interrupts it).
Task<void> writer(int count, Progress* progress) {
  auto opening = Env::open(kSimDir, sim_options());
  auto env = co_await std::move(opening);
  EXPECT_TRUE(env.ok()) << env.status();
  if (!env.ok()) co_return;
  Table t = *(*env)->open_table("t");
  for (int i = 0; i < count; ++i) {
    WriteRequest request;
    request.put(t, "k" + std::to_string(i), std::string(1000, char('a' + i % 26)));
    ++progress->started;
    Status s = co_await (*env)->write(&request);
    if (!s.ok()) {
      progress->last_failure = s;
      break;
    }
    ++progress->acknowledged;
  }
  Status closed = co_await (*env)->close();
  (void)closed;  // after a crash the close fails too
  progress->finished = true;
}

// The keys present after reopening, as a bitmap over k0 .. k<count-1>.
Task<std::vector<bool>> present(int count) {
  std::vector<bool> out(count, false);
  auto opening = Env::open(kSimDir, sim_options());
  auto env = co_await std::move(opening);
  EXPECT_TRUE(env.ok()) << env.status();
  if (!env.ok()) co_return out;
  Table t = *(*env)->open_table("t");
  {
    auto txn = (*env)->begin_read();
    for (int i = 0; i < count; ++i) {
      auto value = (*txn)->get(t, "k" + std::to_string(i));
      out[i] = value.ok() && *value;
    }
  }
  EXPECT_TRUE((co_await (*env)->close()).ok());
  co_return out;
}

// A disk with a fixed latency, so a test knows what is in flight when.
SimWorld::BootFn no_boot() {
  return {};
}
void fixed_latency(SimHost& host) {
  host.disk_config().latency_min = std::chrono::milliseconds(1);
  host.disk_config().latency_max = std::chrono::milliseconds(1);
}

SimHost& add_kv_host(SimWorld& world) {
  SimHost& host = world.add_host("kv");
  host.disk().make_durable_directories(kSimDir);
  return host;
}

TEST(SimStore, ACrashAfterACommitKeepsIt) {
  SimWorld world(sim::sim_seed(11));
  SimHost& host = add_kv_host(world);
  fixed_latency(host);
  Progress progress;
  world.spawn(host, writer(1000, &progress));
  while (progress.acknowledged < 3) world.run_for(std::chrono::microseconds(100));
  world.crash(host);
  EXPECT_TRUE(progress.finished);
  world.restart(host, no_boot());
  std::vector<bool> back = world.run(host, present(1000));
  for (int i = 0; i < progress.acknowledged; ++i) EXPECT_TRUE(back[i]) << "acknowledged k" << i;
}

TEST(SimStore, ACrashBeforeACommitLosesIt) {
  SimWorld world(sim::sim_seed(12));
  SimHost& host = add_kv_host(world);
  fixed_latency(host);
  Progress progress;
  world.spawn(host, writer(1000, &progress));
  while (progress.started < 3) world.run_for(std::chrono::microseconds(100));
  // The third put's record is being written (1 ms), its fdatasync not even started, and the
  // disk loses what it did not sync (a disk that keeps it is ATornCommitIsIgnoredOnReplay).
  host.disk_config().crash_keep_unsynced_probability = 0;
  host.disk_config().crash_in_flight_write_probability = 0;
  world.run_for(std::chrono::microseconds(500));
  ASSERT_EQ(progress.acknowledged, 2);
  world.crash(host);
  EXPECT_EQ(progress.acknowledged, 2);
  EXPECT_FALSE(progress.last_failure.ok());
  world.restart(host, no_boot());
  std::vector<bool> back = world.run(host, present(1000));
  EXPECT_TRUE(back[0] && back[1]);
  EXPECT_FALSE(back[2]) << "a put that was never acknowledged survived the crash";
}

// Puts k0, then k1 with the disk failing (fault armed in between), then k2; returns statuses.
Task<std::vector<Status>> three_puts(SimHost* host, std::function<void(SimHost&)> arm,
                                     std::function<void(SimHost&)> disarm, size_t big_bytes) {
  std::vector<Status> out;
  auto opening = Env::open(kSimDir, sim_options());
  auto env = co_await std::move(opening);
  EXPECT_TRUE(env.ok()) << env.status();
  if (!env.ok()) co_return out;
  Table t = *(*env)->open_table("t");
  for (int i = 0; i < 3; ++i) {
    if (i == 1) arm(*host);
    WriteRequest request;
    request.put(t, "k" + std::to_string(i), std::string(i == 1 ? big_bytes : 100, 'x'));
    Status written = co_await (*env)->write(&request);
    out.push_back(written);
    if (i == 1) disarm(*host);
  }
  // In memory right away: the failed put changed nothing.
  {
    auto txn = (*env)->begin_read();
    auto failed = (*txn)->get(t, "k1");
    EXPECT_TRUE(failed.ok() && !*failed);
  }
  EXPECT_TRUE((co_await (*env)->close()).ok());
  co_return out;
}

void expect_only_middle_lost(SimWorld& world, SimHost& host) {
  // And after a crash: the failed commit's bytes, written before its fdatasync failed, were
  // overwritten by the next commit, so replay does not bring them back.
  world.crash(host);
  world.restart(host, no_boot());
  std::vector<bool> back = world.run(host, present(3));
  EXPECT_TRUE(back[0]);
  EXPECT_FALSE(back[1]);
  EXPECT_TRUE(back[2]);
}

TEST(SimStore, EioOnACommitFailsOnlyThatCommitAndChangesNothing) {
  SimWorld world(sim::sim_seed(13));
  SimHost& host = add_kv_host(world);
  std::string log = sim_log_path(kSimDir);
  auto arm = [log](SimHost& h) {
    h.disk_config().fail_io = [log](std::string_view path, IoOpcode opcode) {
      return path == log && opcode == IoOpcode::kFdatasync;
    };
  };
  auto disarm = [](SimHost& h) { h.disk_config().fail_io = nullptr; };
  std::vector<Status> statuses = world.run(host, three_puts(&host, arm, disarm, 5000));
  ASSERT_EQ(statuses.size(), 3u);
  EXPECT_TRUE(statuses[0].ok()) << statuses[0];
  EXPECT_EQ(statuses[1].code(), StatusCode::kIoError) << statuses[1];
  EXPECT_TRUE(statuses[2].ok()) << statuses[2];
  expect_only_middle_lost(world, host);
}

TEST(SimStore, EnospcOnACommitFailsOnlyThatCommitAndChangesNothing) {
  SimWorld world(sim::sim_seed(14));
  SimHost& host = add_kv_host(world);
  auto arm = [](SimHost& h) { h.disk_config().capacity_bytes = h.disk().used_bytes() + 2000; };
  auto disarm = [](SimHost& h) { h.disk_config().capacity_bytes = uint64_t{64} << 30; };
  std::vector<Status> statuses = world.run(host, three_puts(&host, arm, disarm, 100000));
  ASSERT_EQ(statuses.size(), 3u);
  EXPECT_TRUE(statuses[0].ok()) << statuses[0];
  EXPECT_EQ(statuses[1].code(), StatusCode::kNoSpace) << statuses[1];
  EXPECT_TRUE(statuses[2].ok()) << statuses[2];
  expect_only_middle_lost(world, host);
}

// A commit whose record reached the disk torn (its fdatasync never ran) is not replayed, and
// the commits after the restart land where it lay.
Task<Status> put_big(int i) {
  auto opening = Env::open(kSimDir, sim_options());
  auto env = co_await std::move(opening);
  if (!env.ok()) co_return env.status();
  Table t = *(*env)->open_table("t");
  WriteRequest request;
  request.put(t, "k" + std::to_string(i), std::string(9000, 'b'));  // spans 4 KiB boundaries
  Status written = co_await (*env)->write(&request);
  Status closed = co_await (*env)->close();
  co_return written.ok() ? closed : written;
}

TEST(SimStore, ATornCommitIsIgnoredOnReplay) {
  SimWorld world(sim::sim_seed(15));
  SimHost& host = add_kv_host(world);
  ASSERT_TRUE(world.run(host, put_big(0)).ok());
  // k1's record is written, its fdatasync fails, and the power loss keeps the unsynced
  // record torn at a 4 KiB boundary.
  host.disk_config().fail_io = [](std::string_view, IoOpcode opcode) {
    return opcode == IoOpcode::kFdatasync;
  };
  EXPECT_EQ(world.run(host, put_big(1)).code(), StatusCode::kIoError);
  host.disk_config().fail_io = nullptr;
  host.disk_config().crash_keep_unsynced_probability = 1;
  host.disk_config().crash_tear_probability = 1;
  world.crash(host);
  world.restart(host, no_boot());
  std::vector<bool> back = world.run(host, present(3));
  EXPECT_TRUE(back[0]);
  EXPECT_FALSE(back[1]);
  // The next commit goes where the torn one lay, and survives the next power loss.
  ASSERT_TRUE(world.run(host, put_big(2)).ok());
  world.crash(host);
  world.restart(host, no_boot());
  back = world.run(host, present(3));
  EXPECT_TRUE(back[0]);
  EXPECT_FALSE(back[1]);
  EXPECT_TRUE(back[2]);
}

// Commits with sim_commit_delay_max each wait a seeded extra delay in [0, max]: the slowest of
// kDelayedCommits takes longer than the disk alone could, none longer than both together.
constexpr int kDelayedCommits = 20;
constexpr Duration kDelayMax = std::chrono::milliseconds(50);

Task<std::vector<Duration>> timed_commits() {
  std::vector<Duration> took;
  EnvOptions options = sim_options();
  options.sim_commit_delay_max = kDelayMax;
  auto opening = Env::open(kSimDir, options);
  auto env = co_await std::move(opening);
  EXPECT_TRUE(env.ok()) << env.status();
  if (!env.ok()) co_return took;
  Table t = *(*env)->open_table("t");
  for (int i = 0; i < kDelayedCommits; ++i) {
    WriteRequest request;
    request.put(t, "k" + std::to_string(i), "v");
    TimePoint start = Executor::current()->now();
    Status written = co_await (*env)->write(&request);
    EXPECT_TRUE(written.ok()) << written;
    took.push_back(Executor::current()->now() - start);
  }
  EXPECT_TRUE((co_await (*env)->close()).ok());
  co_return took;
}

TEST(SimStore, CommitLatencyIsInjectable) {
  SimWorld world(sim::sim_seed(16));
  SimHost& host = add_kv_host(world);
  fixed_latency(host);  // a commit is a write and an fdatasync: 2 ms on this disk
  std::vector<Duration> took = world.run(host, timed_commits());
  ASSERT_EQ(took.size(), size_t(kDelayedCommits));
  Duration slowest = *std::max_element(took.begin(), took.end());
  Duration fastest = *std::min_element(took.begin(), took.end());
  EXPECT_GE(fastest, std::chrono::milliseconds(2));
  EXPECT_GT(slowest, std::chrono::milliseconds(2) + kDelayMax / 2);
  EXPECT_LE(slowest, std::chrono::milliseconds(3) + kDelayMax);
}

}  // namespace
}  // namespace mica::kv
