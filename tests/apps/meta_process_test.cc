// The real mica-meta process: it starts from its config, registers its shards with a real
// mica-mgmtd (routing then names it for each), answers MetaService calls from a MetaClient
// in the test process, counts them on /metrics, and stops cleanly on SIGTERM (exit code 0,
// the "stopped" line, its namespace kept for the next start); a bad config or token file
// is one line and exit code 2.
//
// Heavy: three processes (mgmtd, one mica-storage for the chain table files take their
// layout from, mica-meta). Time cap: every wait has its own deadline (at most 20 s); about
// 5 s in a debug build. ctest's TIMEOUT for the apps tests caps the whole test.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "async/executor.h"
#include "tests/apps/meta_process_run.h"
#include "tests/apps/storage_cluster_process.h"
#include "tests/temp_dir.h"

namespace mica::testing {
namespace {

using namespace std::chrono_literals;
using meta::kRootInode;

class MetaProcess : public ::testing::Test {
 protected:
  MetaProcess()
      : dir_(binary_dir() + "/apps-test-data", "meta"),
        cluster_(dir_.path(), ClusterProcessOptions{.storage_nodes = 1,
                                                    .targets_per_node = 1,
                                                    .replicas = 1,
                                                    .storage_binary = MICA_STORAGE_BINARY}),
        meta_(dir_.path(), "", "") {}

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(cluster_.start());
    meta_ = MetaServerProcess(dir_.path(), cluster_.mgmtd_address(), cluster_.token_path());
    ASSERT_NO_FATAL_FAILURE(meta_.write_config(4));
  }
  net::ClusterToken token() const { return net::load_cluster_token(cluster_.token_path()).value(); }

  TempDir dir_;
  StorageClusterProcess cluster_;
  MetaServerProcess meta_;
};

struct Seen {
  Status mkdir;
  Status create;
  Status lookup;
  size_t entries = 0;
  size_t shards_in_status = 0;
};

Task<Seen> some_operations(std::string mgmtd, net::ClusterToken token) {
  MetaStack stack(mgmtd, token);
  Seen seen;
  meta::Credentials root;
  meta::MkdirRequest mkdir{
      .cred = root, .tag = {}, .parent = kRootInode, .name = "d", .mode = 0755};
  auto making = stack.client.mkdir(mkdir);
  Result<meta::InodeReply> dir = co_await std::move(making);
  seen.mkdir = dir.status();
  if (dir.ok()) {
    meta::CreateRequest create;
    create.cred = root;
    create.parent = dir->inode.id;
    create.name = "f";
    create.mode = 0644;
    auto creating = stack.client.create(create);
    Result<meta::CreateReply> file = co_await std::move(creating);
    seen.create = file.status();
    meta::LookupRequest lookup{.cred = root, .parent = dir->inode.id, .name = "f"};
    auto looking = stack.client.lookup(lookup);
    Result<meta::InodeReply> found = co_await std::move(looking);
    seen.lookup = found.status();
    meta::ReaddirRequest readdir{
        .cred = root, .dir = dir->inode.id, .after = {}, .limit = 0, .with_attrs = true};
    auto reading = stack.client.readdir(readdir);
    Result<meta::ReaddirReply> page = co_await std::move(reading);
    if (page.ok()) seen.entries = page->entries.size();
  }
  auto asking = stack.client.status(0);
  Result<meta::MetaStatusReply> status = co_await std::move(asking);
  if (status.ok()) seen.shards_in_status = status->shards.size();
  auto stopping = stack.stop();
  co_await std::move(stopping);
  co_return seen;
}

Task<Result<meta::InodeReply>> lookup_d(std::string mgmtd, net::ClusterToken token) {
  MetaStack stack(mgmtd, token);
  meta::LookupRequest lookup{.cred = {}, .parent = kRootInode, .name = "d"};
  auto looking = stack.client.lookup(lookup);
  Result<meta::InodeReply> found = co_await std::move(looking);
  auto stopping = stack.stop();
  co_await std::move(stopping);
  co_return found;
}

// The lines of shard series (mica_meta_shard_*, the shards' GC series) that lack the process
// or the shard label; "" when every one has both.
std::string shard_series_without_labels(const std::string& metrics) {
  std::string missing;
  size_t at = 0;
  while (at < metrics.size()) {
    size_t end = metrics.find('\n', at);
    if (end == std::string::npos) end = metrics.size();
    std::string line = metrics.substr(at, end - at);
    at = end + 1;
    bool shard_series = line.starts_with("mica_meta_shard_") || line.starts_with("mica_meta_gc_");
    if (!shard_series) continue;
    if (line.find("process=\"mica-meta\"") == std::string::npos ||
        line.find("shard=\"") == std::string::npos)
      missing += line + "\n";
  }
  return missing;
}

TEST_F(MetaProcess, ServesTheNamespaceCountsOperationsAndStopsCleanlyOnSigterm) {
  ASSERT_NO_FATAL_FAILURE(meta_.start());
  EXPECT_NE(meta_.child().err().find("mica-meta serving shards 0,1,2,3 of 4 on " + meta_.address()),
            std::string::npos)
      << meta_.child().err();
  ASSERT_NO_FATAL_FAILURE(meta_.wait_registered());
  std::unique_ptr<Executor> executor = Executor::create_uring();
  Seen seen = executor->block_on(some_operations(cluster_.mgmtd_address(), token()));
  EXPECT_TRUE(seen.mkdir.ok()) << seen.mkdir << meta_.child().err();
  EXPECT_TRUE(seen.create.ok()) << seen.create;
  EXPECT_TRUE(seen.lookup.ok()) << seen.lookup;
  EXPECT_EQ(seen.entries, 1u);
  EXPECT_EQ(seen.shards_in_status, 4u);

  std::string metrics = http_get(meta_.http_port(), "/metrics");
  EXPECT_NE(metrics.find("mica_meta_requests_total{process=\"mica-meta\",method=\"mkdir\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("mica_meta_requests_total{process=\"mica-meta\",method=\"create\"} 1"),
            std::string::npos);
  EXPECT_NE(metrics.find("mica_meta_request_seconds_bucket{process=\"mica-meta\","
                         "method=\"lookup\""),
            std::string::npos);
  // The gauges are refreshed every 50 ms: the root, d and f.
  const std::string inodes = "mica_meta_shard_inodes{process=\"mica-meta\",shard=\"0\"}";
  for (int i = 0; i < 100 && metrics.find(inodes) == std::string::npos; ++i) {
    std::this_thread::sleep_for(50ms);
    metrics = http_get(meta_.http_port(), "/metrics");
  }
  EXPECT_NE(metrics.find("mica_meta_shard_gc_queued_files{process=\"mica-meta\",shard=\"0\"}"),
            std::string::npos)
      << metrics;
  // Commits of shard 0 (the root's: mkdir's steps and the create) are counted by size.
  EXPECT_NE(metrics.find("mica_meta_shard_commit_batch_size_count{process=\"mica-meta\","
                         "shard=\"0\"}"),
            std::string::npos)
      << metrics;
  EXPECT_EQ(shard_series_without_labels(metrics), "");
  EXPECT_NE(http_get(meta_.http_port(), "/health").find("200 OK"), std::string::npos);

  EXPECT_EQ(meta_.stop(SIGTERM), 0) << read_file(meta_.log());
  std::string log = read_file(meta_.log());
  EXPECT_NE(log.find("mica-meta received SIGTERM, stopping"), std::string::npos) << log;
  EXPECT_NE(log.find("mica-meta stopped"), std::string::npos) << log;
  EXPECT_EQ(log.find("ERROR"), std::string::npos) << log;

  // The namespace is on disk: a second start serves /d again.
  ASSERT_NO_FATAL_FAILURE(meta_.start());
  Result<meta::InodeReply> d = executor->block_on(lookup_d(cluster_.mgmtd_address(), token()));
  EXPECT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(meta_.stop(SIGTERM), 0);
}

RunResult meta_run(const TempDir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), MICA_META_BINARY);
  return run(args, dir.path() + "/meta-run");
}

TEST(MetaProcessConfig, ABadConfigIsOneLineAndExitCodeTwo) {
  TempDir dir_(binary_dir() + "/apps-test-data", "meta-config");
  auto meta_run = [&](std::vector<std::string> args) { return testing::meta_run(dir_, args); };
  std::ofstream(dir_.path() + "/bad.toml") << "shard_count = 4\nshards = [4]\n";
  RunResult bad = meta_run({"--config", dir_.path() + "/bad.toml"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "mica-meta: " + dir_.path() +
                         "/bad.toml: shards[0] is 4, beyond shard_count 4 (ids are 0 .. 3)\n");
  std::ofstream(dir_.path() + "/notoken.toml")
      << "token_file = \"" << dir_.path() << "/missing-token\"\n";
  RunResult token = meta_run({"--config", dir_.path() + "/notoken.toml"});
  EXPECT_EQ(token.exit_code, 2);
  EXPECT_NE(token.err.find("notoken.toml: token_file: "), std::string::npos) << token.err;
  RunResult usage = meta_run({"--frobnicate"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_NE(usage.err.find("usage: mica-meta --config FILE"), std::string::npos);
  RunResult printed = meta_run({"--print-default-config"});
  EXPECT_EQ(printed.exit_code, 0);
  EXPECT_NE(printed.out.find("shard_count = 4"), std::string::npos) << printed.out;
}

}  // namespace
}  // namespace mica::testing
