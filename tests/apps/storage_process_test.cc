// The real mica-storage process: it starts from its config, registers with a real
// mica-mgmtd, serves its metrics over HTTP, and stops cleanly on SIGTERM (exit code 0, the
// "stopped" line, its identity kept for the next start); a bad config or token file is one
// line and exit code 2.
//
// Heavy: two processes per test. Time cap: every wait below has its own deadline (at most
// 20 s); about 2 s in a debug build. ctest's TIMEOUT for the apps tests caps the whole test.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>
#include <string>
#include <vector>

#include "apps/dev_process.h"
#include "net/cluster_token.h"
#include "tests/apps/http_get.h"
#include "tests/apps/process.h"
#include "tests/temp_dir.h"

namespace mica::testing {
namespace {

using namespace std::chrono_literals;


class StorageProcess : public ::testing::Test {
 protected:
  StorageProcess() : dir_(binary_dir() + "/apps-test-data", "storage") {
    EXPECT_TRUE(net::generate_cluster_token_file(path("token")).ok());
    std::vector<int> ports = apps::free_ports(3).value();  // three distinct ones
    mgmtd_port_ = ports[0];
    storage_port_ = ports[1];
    http_port_ = ports[2];
    std::ofstream(path("mgmtd.toml"))
        << "data_dir = \"" << path("mgmtd-data") << "\"\nlisten = \"127.0.0.1:" << mgmtd_port_
        << "\"\nhttp_listen = \"\"\ntoken_file = \"" << path("token")
        << "\"\ntransport = \"tcp\"\n[cluster]\nheartbeat_interval_ms = 200\n"
           "lease_timeout_ms = 4000\n";
    std::ofstream(path("storage.toml"))
        << "mgmtd = \"127.0.0.1:" << mgmtd_port_ << "\"\nlisten = \"127.0.0.1:" << storage_port_
        << "\"\nhttp_listen = \"127.0.0.1:" << http_port_ << "\"\ndata_dir = \"" << path("node")
        << "\"\ntoken_file = \"" << path("token")
        << "\"\ntransport = \"tcp\"\nmetrics_interval_ms = 50\n"
        << "[[target]]\npath = \"" << path("node/t0") << "\"\nreserve_bytes = 0\n"
        << "[[target]]\npath = \"" << path("node/t1") << "\"\nreserve_bytes = 0\n";
  }
  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }
  Child start_mgmtd() {
    return Child({MICA_MGMTD_BINARY, "--config", path("mgmtd.toml")}, path("mgmtd.log"),
                 path("mgmtd.log"));
  }
  Child start_storage(const std::string& log = "storage.log") {
    return Child({MICA_STORAGE_BINARY, "--config", path("storage.toml")}, path(log), path(log));
  }
  RunResult storage(std::vector<std::string> args) {
    args.insert(args.begin(), MICA_STORAGE_BINARY);
    return run(args, path("storage-run"));
  }

  TempDir dir_;
  int mgmtd_port_ = 0;
  int storage_port_ = 0;
  int http_port_ = 0;
};

TEST_F(StorageProcess, RegistersServesMetricsAndStopsCleanlyOnSigterm) {
  Child mgmtd = start_mgmtd();
  ASSERT_TRUE(mgmtd.wait_for_err("mica-mgmtd serving on", 20s)) << mgmtd.err();
  Child storage = start_storage();
  auto started = storage.wait_for_err("registered with 2 target(s)", 20s);
  ASSERT_TRUE(started) << storage.err();
  EXPECT_NE(started->find("mica-storage serving 2 target(s) on 127.0.0.1:" +
                          std::to_string(storage_port_)),
            std::string::npos)
      << *started;
  // The per-target series appear once the targets have ids (refreshed every 50 ms).
  std::string metrics;
  for (int i = 0;
       i < 100 && metrics.find("mica_storage_target_chunks{target=") == std::string::npos; ++i) {
    std::this_thread::sleep_for(50ms);
    metrics = http_get(http_port_, "/metrics");
  }
  EXPECT_NE(metrics.find("mica_storage_target_chunks{target="), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("mica_storage_target_resync_bytes_total{target="), std::string::npos);
  EXPECT_NE(metrics.find("mica_storage_target_scrub_chunks_checked_total{target="),
            std::string::npos);
  EXPECT_NE(metrics.find("mica_storage_node_request_seconds_bucket{method=\"update\""),
            std::string::npos);
  EXPECT_NE(http_get(http_port_, "/health").find("200 OK"), std::string::npos);

  EXPECT_EQ(storage.stop(SIGTERM), 0) << storage.err();
  std::string log = read_file(path("storage.log"));
  EXPECT_NE(log.find("mica-storage received SIGTERM, stopping"), std::string::npos) << log;
  EXPECT_NE(log.find("mica-storage stopped"), std::string::npos) << log;
  EXPECT_EQ(log.find("ERROR"), std::string::npos) << log;
  // The node keeps its id: a second start registers as the same node, on the same port.
  size_t at = log.find("storage: node ");
  ASSERT_NE(at, std::string::npos) << log;
  std::string node_line = log.substr(at, log.find(" registered", at) - at);  // "storage: node N"
  Child again = start_storage("again.log");
  ASSERT_TRUE(again.wait_for_err("registered with 2 target(s)", 20s)) << again.err();
  std::string second = again.err();
  EXPECT_NE(second.find(node_line + " registered"), std::string::npos) << node_line << second;
  EXPECT_EQ(again.stop(SIGTERM), 0);
  EXPECT_EQ(mgmtd.stop(SIGTERM), 0);
}

TEST_F(StorageProcess, StopsCleanlyOnSigtermWhileMgmtdIsUnreachable) {
  // No mgmtd: the node agent keeps retrying its registration; SIGTERM still ends it at once.
  Child storage = start_storage();
  ASSERT_TRUE(storage.wait_for_err("mica-storage serving", 20s)) << storage.err();
  EXPECT_EQ(storage.stop(SIGTERM), 0) << storage.err();
  EXPECT_NE(read_file(path("storage.log")).find("mica-storage stopped"), std::string::npos);
}

TEST_F(StorageProcess, ABadConfigIsOneLineAndExitCodeTwo) {
  std::ofstream(path("bad.toml")) << "listen = \"127.0.0.1:1\"\nlimits = 3\n";
  RunResult bad = storage({"--config", path("bad.toml")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err,
            "mica-storage: " + path("bad.toml") + ": limits must be a table (got an integer)\n");
  std::ofstream(path("notoken.toml")) << "token_file = \"" << path("missing-token")
                                      << "\"\n[[target]]\npath = \"" << path("t") << "\"\n";
  RunResult token = storage({"--config", path("notoken.toml")});
  EXPECT_EQ(token.exit_code, 2);
  EXPECT_NE(token.err.find(path("notoken.toml") + ": token_file: "), std::string::npos)
      << token.err;
  RunResult missing = storage({"--config", path("nope.toml")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("cannot open the config file"), std::string::npos) << missing.err;
  RunResult usage = storage({"--frobnicate"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_NE(usage.err.find("usage: mica-storage"), std::string::npos);
}

TEST_F(StorageProcess, PrintsADefaultConfigThatItAccepts) {
  RunResult printed = storage({"--print-default-config"});
  ASSERT_EQ(printed.exit_code, 0);
  EXPECT_NE(printed.out.find("[[target]]"), std::string::npos);
  EXPECT_NE(printed.out.find("[resync]"), std::string::npos);
  RunResult help = storage({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("usage: mica-storage --config FILE"), std::string::npos);
}

}  // namespace
}  // namespace mica::testing
