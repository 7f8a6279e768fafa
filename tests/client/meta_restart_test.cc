// A meta process killed and restarted within a call's deadline costs latency, not an error:
// the dev cluster's only mica-meta is SIGKILLed, a stat and a mkdir are issued while it is
// down, and it is started again (tests/client/cluster_restart.h: the same binary and config
// `dev up` used) after kRestartDelay; both calls succeed, later than the restart, through the
// metadata client's retries (refused connections, then a reconnect).
//
// Heavy: one dev cluster; the calls wait for the restart (about kRestartDelay plus the meta
// process's start, a few seconds), far under ctest's 120 s cap and the calls' 60 s deadline.
#include <chrono>

#include "async/executor.h"
#include "async/log.h"
#include "async/scope.h"
#include "async/wait_list.h"
#include "tests/client/cluster_restart.h"
#include "tests/client/path_fixture.h"

namespace mica::testing {
namespace {

using namespace std::chrono_literals;

// How long the meta process stays down: well past a few of the metadata client's retries
// (backoff 5 ms doubling to 500 ms), well inside a call's deadline.
constexpr Duration kRestartDelay = 1500ms;

ClientCluster* g_cluster = nullptr;  // the test's cluster, for the body (a plain function)

Task<Status> stat_status(client::Client* c, std::string path) {
  auto stating = c->stat(std::move(path));
  Result<meta::Inode> inode = co_await std::move(stating);
  co_return inode.status();
}

Task<Status> mkdir_status(client::Client* c, std::string path) {
  auto making = c->mkdir(std::move(path), 0755);
  Result<meta::Inode> made = co_await std::move(making);
  co_return made.status();
}

Task<Status> restart_meta_after(Duration delay) {
  SleepAwaiter pause = sleep_for(delay);
  Status slept = co_await pause;
  if (!slept.ok()) co_return slept;
  co_return start_process(*g_cluster, "meta");
}

Task<void> calls_across_a_meta_restart(client::Client* c) {
  CO_EXPECT_ERRNO(c->mkdir("/before", 0755), 0);
  CO_ASSERT_TRUE(kill_process(*g_cluster, "meta"));
  TimePoint killed = Executor::current()->now();
  std::vector<Task<Status>> calls;
  calls.push_back(stat_status(c, "/before"));
  calls.push_back(mkdir_status(c, "/during"));
  calls.push_back(restart_meta_after(kRestartDelay));
  auto running = when_all(std::move(calls));
  std::vector<Status> answers = co_await std::move(running);
  Duration took = Executor::current()->now() - killed;
  EXPECT_TRUE(answers[0].ok()) << "stat: " << answers[0];
  EXPECT_TRUE(answers[1].ok()) << "mkdir: " << answers[1];
  EXPECT_TRUE(answers[2].ok()) << "restart: " << answers[2];
  EXPECT_GE(took, kRestartDelay);  // the calls waited for the restart: latency, not an error
  auto after = c->stat("/during");
  Result<meta::Inode> made = co_await std::move(after);
  CO_ASSERT_OK(made);
  EXPECT_EQ(made->type, meta::InodeType::kDirectory);
  MICA_LOG(Info, "test", "stat and mkdir across a meta restart took {} ms",
           std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
}

TEST(ClientMetaRestart, AMetaProcessKilledAndRestartedCostsLatencyNotAnError) {
  ClientCluster cluster("meta-restart");
  ASSERT_TRUE(cluster.up()) << cluster.up_output();
  g_cluster = &cluster;
  Status s = with_client(cluster.options(), calls_across_a_meta_restart);
  g_cluster = nullptr;
  EXPECT_TRUE(s.ok()) << s;
}

}  // namespace
}  // namespace mica::testing
