// `mica dev up` / `mica dev down` as a user runs them: a cluster that serves writes and reads
// through `mica put/get` and the namespace through `mica ls/stat/mkdir/rm`, a stop that
// leaves no process behind, two clusters side by side, and the refusals (a folder whose
// cluster runs; nothing to stop).
//
// Heavy: each test starts real mgmtd, meta and storage processes. Time caps: dev up must return
// within mica's own kDevUpTimeout (90 s, the run() timeout below is above it); in a debug
// build on a quiet machine a bring-up takes well under 5 s and each test under 15 s. ctest's
// TIMEOUT for the apps tests (tests/CMakeLists.txt) caps the whole test. A test that fails
// midway still stops its cluster (DevCluster's destructor runs `mica dev down`).
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "apps/dev_process.h"
#include "tests/apps/process.h"
#include "tests/temp_dir.h"

namespace mica::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kDevUpRunTimeout{120'000};

RunResult mica(std::vector<std::string> args, const std::string& prefix,
               std::chrono::milliseconds timeout = kRunTimeout) {
  args.insert(args.begin(), MICA_CLI_BINARY);
  return run(args, prefix, timeout);
}

// One dev cluster's folder; `mica dev down` on destruction, whatever the test did.
class DevCluster {
 public:
  explicit DevCluster(const std::string& parent, const std::string& name)
      : root_(parent, name), dir_(root_.path() + "/cluster") {}
  ~DevCluster() { mica({"dev", "down", "--dir", dir_}, root_.path() + "/guard-down"); }

  RunResult up(uint32_t storage) {
    return mica({"dev", "up", "--storage", std::to_string(storage), "--dir", dir_},
                root_.path() + "/up", kDevUpRunTimeout);
  }
  RunResult down() { return mica({"dev", "down", "--dir", dir_}, root_.path() + "/down"); }
  RunResult cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--dir", dir_});
    return mica(args, root_.path() + "/cli");
  }
  std::vector<apps::DevProcess> processes() const { return apps::read_pid_files(dir_ + "/pids"); }
  const std::string& dir() const { return dir_; }
  std::string env() const { return read_file(dir_ + "/cluster.env"); }

 private:
  TempDir root_;
  std::string dir_;
};

std::string parent_dir() {
  return binary_dir() + "/apps-test-data";
}

TEST(DevCluster, UpServesPutAndGetAndDownLeavesNoProcess) {
  DevCluster cluster(parent_dir(), "dev");
  RunResult up = cluster.up(3);
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  EXPECT_NE(up.out.find("1 chain of 3 replicas serving after"), std::string::npos) << up.out;
  EXPECT_NE(up.out.find("mica dev down --dir " + cluster.dir()), std::string::npos) << up.out;
  std::vector<apps::DevProcess> processes = cluster.processes();
  ASSERT_EQ(processes.size(), 5u);  // mgmtd, meta and three storage nodes
  for (const apps::DevProcess& p : processes) EXPECT_TRUE(apps::dev_process_alive(p)) << p.name;

  RunResult put = cluster.cli({"put", "1", "42", "0", "100", "--data", "bytes through the chain"});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  EXPECT_NE(put.out.find("wrote 23 bytes at offset 100 of chunk 42/0 on chain 1"),
            std::string::npos)
      << put.out;
  RunResult get = cluster.cli({"get", "1", "42", "0", "100", "23"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(get.out, "bytes through the chain");
  // A read past the chunk's end reads short.
  RunResult tail = cluster.cli({"get", "1", "42", "0", "110", "100"});
  EXPECT_EQ(tail.out, "ugh the chain");
  RunResult status = cluster.cli({"status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("storage targets:"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("serving"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("meta shards:"), std::string::npos) << status.out;

  RunResult down = cluster.down();
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_NE(down.out.find("stopped 5 processes"), std::string::npos) << down.out;
  for (const apps::DevProcess& p : processes) {
    EXPECT_FALSE(apps::dev_process_alive(p)) << p.name << " pid " << p.pid << " still runs";
  }
  EXPECT_TRUE(cluster.processes().empty());  // the pid files are gone with them
}

TEST(DevCluster, AFolderWhoseClusterRunsIsRefusedAndDownIsIdempotent) {
  DevCluster cluster(parent_dir(), "dev-again");
  RunResult up = cluster.up(1);
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  EXPECT_NE(up.out.find("1 chain of 1 replica serving"), std::string::npos) << up.out;
  RunResult again = cluster.up(1);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("already running in " + cluster.dir()), std::string::npos) << again.err;
  ASSERT_EQ(cluster.down().exit_code, 0);
  RunResult second = cluster.down();
  EXPECT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out.find("nothing was running"), std::string::npos) << second.out;
  // The folder comes back up with its data: the chain table is kept, not made twice.
  RunResult restarted = cluster.up(1);
  ASSERT_EQ(restarted.exit_code, 0) << restarted.out << restarted.err;
  RunResult chains = cluster.cli({"chains"});
  EXPECT_EQ(chains.exit_code, 0) << chains.err;
}

TEST(DevCluster, TwoClustersBroughtUpAtOnceDoNotCollide) {
  DevCluster a(parent_dir(), "dev-a");
  DevCluster b(parent_dir(), "dev-b");
  RunResult up_a, up_b;
  std::thread other([&] { up_b = b.up(2); });
  up_a = a.up(2);
  other.join();
  ASSERT_EQ(up_a.exit_code, 0) << up_a.out << up_a.err;
  ASSERT_EQ(up_b.exit_code, 0) << up_b.out << up_b.err;
  // No port is in both folders' records.
  auto ports_of = [](const std::string& env) {
    std::set<std::string> ports;
    for (size_t at = env.find("127.0.0.1:"); at != std::string::npos;
         at = env.find("127.0.0.1:", at + 1)) {
      ports.insert(env.substr(at + 10, env.find('\n', at) - at - 10));
    }
    return ports;
  };
  std::set<std::string> ports_a = ports_of(a.env()), ports_b = ports_of(b.env());
  EXPECT_EQ(ports_a.size(), 8u);
  for (const std::string& port : ports_a) EXPECT_EQ(ports_b.count(port), 0u) << port;
  // Each cluster holds its own data.
  ASSERT_EQ(a.cli({"put", "1", "1", "0", "0", "--data", "in a"}).exit_code, 0);
  ASSERT_EQ(b.cli({"put", "1", "1", "0", "0", "--data", "in b"}).exit_code, 0);
  EXPECT_EQ(a.cli({"get", "1", "1", "0", "0", "4"}).out, "in a");
  EXPECT_EQ(b.cli({"get", "1", "1", "0", "0", "4"}).out, "in b");
  EXPECT_EQ(a.down().exit_code, 0);
  EXPECT_EQ(b.down().exit_code, 0);
}

TEST(DevCluster, PutFromAFileAndGetIntoAFile) {
  DevCluster cluster(parent_dir(), "dev-files");
  ASSERT_EQ(cluster.up(1).exit_code, 0);
  std::string data(200'000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + 3);
  std::string in = cluster.dir() + "/in.bin", out = cluster.dir() + "/out.bin";
  std::ofstream(in, std::ios::binary) << data;
  RunResult put = cluster.cli({"put", "1", "9", "3", "4096", "--file", in});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  RunResult get = cluster.cli({"get", "1", "9", "3", "4096", "200000", "--out", out});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(get.out, "");
  EXPECT_EQ(read_file(out), data);
  RunResult unknown = cluster.cli({"get", "77", "9", "3", "0", "1"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("chain 77 does not exist"), std::string::npos) << unknown.err;
}

// The namespace smoke commands against the dev cluster's meta process (4 shards), with the
// errors a user meets and their exit code.
TEST(DevCluster, LsStatMkdirAndRmWalkTheNamespace) {
  DevCluster cluster(parent_dir(), "dev-meta");
  RunResult up = cluster.up(1);
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  EXPECT_NE(up.out.find("meta (4 shards)"), std::string::npos) << up.out;
  RunResult made = cluster.cli({"mkdir", "/data"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_NE(made.out.find("created directory /data"), std::string::npos) << made.out;
  ASSERT_EQ(cluster.cli({"mkdir", "/data/train"}).exit_code, 0);
  RunResult ls = cluster.cli({"ls", "/data"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("drwxr-xr-x"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("train"), std::string::npos) << ls.out;
  RunResult stat = cluster.cli({"stat", "/data/train"});
  ASSERT_EQ(stat.exit_code, 0) << stat.err;
  EXPECT_NE(stat.out.find("type   directory"), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find("links  2"), std::string::npos) << stat.out;
  RunResult root = cluster.cli({"stat", "/"});
  EXPECT_NE(root.out.find("links  3"), std::string::npos) << root.out;  // ., .., data

  RunResult again = cluster.cli({"mkdir", "/data"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(again.err, "mica: mkdir /data: file exists\n");
  RunResult missing = cluster.cli({"stat", "/data/nope/x"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err, "mica: stat /data/nope/x: no such file or directory\n");
  RunResult full = cluster.cli({"rm", "/data"});
  EXPECT_EQ(full.exit_code, 1);
  EXPECT_EQ(full.err, "mica: rm /data: directory not empty\n");
  RunResult relative = cluster.cli({"ls", "data"});
  EXPECT_EQ(relative.exit_code, 2);

  RunResult removed = cluster.cli({"rm", "/data/train"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_NE(removed.out.find("removed directory /data/train"), std::string::npos);
  ASSERT_EQ(cluster.cli({"rm", "/data"}).exit_code, 0);
  RunResult empty = cluster.cli({"ls", "/"});
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(empty.out.find("data"), std::string::npos) << empty.out;
  RunResult status = cluster.cli({"status"});
  EXPECT_NE(status.out.find("meta shards:"), std::string::npos) << status.out;
  EXPECT_EQ(cluster.down().exit_code, 0);
}

TEST(DevCluster, DownOfAFolderWithoutAClusterSaysSo) {
  TempDir root(parent_dir(), "dev-none");
  RunResult down = mica({"dev", "down", "--dir", root.path()}, root.path() + "/down");
  EXPECT_EQ(down.exit_code, 0) << down.err;
  EXPECT_NE(down.out.find("nothing was running"), std::string::npos) << down.out;
  RunResult status = mica({"--dir", root.path(), "status"}, root.path() + "/status");
  EXPECT_EQ(status.exit_code, 1);
  EXPECT_NE(status.err.find("cluster.env is missing"), std::string::npos) << status.err;
}

}  // namespace
}  // namespace mica::testing
