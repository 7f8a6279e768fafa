// The real mica-mgmtd process: SIGKILLed while storage-node stand-ins keep heartbeating, it
// comes back on the same data directory and port with its state — routing version, chains,
// node ids — takes the stand-ins' heartbeats again and degrades no chain. Also its HTTP
// /metrics endpoint and its clean stop on SIGTERM.
//
// Heavy: about 6 s in a debug build (mostly waiting out a lease after the restart). Every
// wait has a deadline (process.h SIGKILLs a child that outlives its own), so a failing test
// ends instead of hanging; the sum of the deadlines can exceed a minute, and ctest's
// TIMEOUT (90 s, tests/CMakeLists.txt) caps the whole test.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "net/cluster_token.h"
#include "tests/apps/http_get.h"
#include "tests/apps/json_read.h"
#include "tests/apps/process.h"
#include "tests/temp_dir.h"

namespace mica::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kStandins = 3;
constexpr int kTargetsPerStandin = 2;
// Short intervals keep the test quick; the lease is what mgmtd must not misjudge. After the
// restart a stand-in's first heartbeat may wait for its connection pool's reconnect backoff
// (up to PoolOptions::backoff_max, 2 s) on top of the interval; mgmtd's restart grace (one
// lease) must cover that, or every chain blocks on a restart.
constexpr int kHeartbeatMs = 200;
constexpr int kLeaseMs = 4000;

// "host:port" after `marker` in text, up to the next character that is not part of one.
std::string address_after(const std::string& text, const std::string& marker) {
  size_t at = text.find(marker);
  if (at == std::string::npos) return "";
  at += marker.size();
  size_t end = text.find_first_not_of("0123456789.:", at);
  return text.substr(at, end - at);
}

// GET path of "host:port" (tests/apps/http_get.h).
std::string http_get(const std::string& address, const std::string& path) {
  return mica::testing::http_get(std::stoi(address.substr(address.rfind(':') + 1)), path);
}

// What the test compares across the restart.
struct Seen {
  uint64_t routing_version = 0;
  std::set<uint64_t> nodes;
  size_t nodes_alive = 0;
  std::map<uint64_t, std::vector<uint64_t>> chain_targets;  // by chain id, in chain order
  std::map<uint64_t, uint64_t> chain_versions;
  size_t healthy_chains = 0;
  size_t targets = 0;
};

Seen seen_in(const JsonValue& status) {
  Seen seen;
  seen.routing_version = status["routing_version"].number;
  for (const JsonValue& node : status["nodes"].items) {
    seen.nodes.insert(node["id"].number);
    seen.nodes_alive += node["alive"].flag;
  }
  for (const JsonValue& chain : status["chains"].items) {
    uint64_t id = chain["id"].number;
    seen.chain_versions[id] = chain["version"].number;
    for (const JsonValue& member : chain["targets"].items) {
      seen.chain_targets[id].push_back(member["target"].number);
    }
    seen.healthy_chains += chain["health"].text == "healthy";
  }
  seen.targets = status["targets"].items.size();
  return seen;
}

class MgmtdProcess : public ::testing::Test {
 protected:
  MgmtdProcess() : dir_(binary_dir() + "/apps-test-data", "mgmtd") {}

  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }

  void write_config(const std::string& listen, const std::string& http_listen) {
    std::ofstream(path("mgmtd.toml"))
        << "data_dir = \"" << path("mgmtd-data") << "\"\n"
        << "listen = \"" << listen << "\"\nhttp_listen = \"" << http_listen << "\"\n"
        << "token_file = \"" << path("token") << "\"\ntransport = \"tcp\"\n"
        << "update_interval_ms = 100\n[cluster]\nheartbeat_interval_ms = " << kHeartbeatMs
        << "\nlease_timeout_ms = " << kLeaseMs << "\n";
  }

  // Starts mica-mgmtd (log in its own file per start) and waits for its start line.
  void start_mgmtd() {
    std::string log = path("mgmtd-" + std::to_string(++mgmtd_starts_) + ".log");
    mgmtd_ = Child({MICA_MGMTD_BINARY, "--config", path("mgmtd.toml")}, log, log);
    ASSERT_TRUE(mgmtd_.running());
    std::optional<std::string> text = mgmtd_.wait_for_err("serving on ", 10s);
    ASSERT_TRUE(text.has_value()) << "mica-mgmtd did not start:\n" << mgmtd_.err();
    rpc_ = address_after(*text, "serving on ");
    http_ = address_after(*text, "metrics on http://");
    ASSERT_FALSE(rpc_.empty());
    ASSERT_FALSE(http_.empty());
  }

  // Starts mica-mgmtd again on the ports it had (rpc_, http_), written into its config. Its
  // predecessor is dead, so they are free unless a concurrent test took one in the gap: a
  // failed bind is retried a few times, a short sleep apart. The ports were chosen below the
  // ephemeral range, so no other test's bind to port 0 can be handed them.
  void restart_mgmtd() {
    constexpr int kBindAttempts = 5;
    constexpr auto kBindRetrySleep = 300ms;
    write_config(rpc_, http_);
    for (int attempt = 1;; ++attempt) {
      std::string log = path("mgmtd-" + std::to_string(++mgmtd_starts_) + ".log");
      mgmtd_ = Child({MICA_MGMTD_BINARY, "--config", path("mgmtd.toml")}, log, log);
      ASSERT_TRUE(mgmtd_.running());
      auto until = std::chrono::steady_clock::now() + 10s;
      while (mgmtd_.alive() && std::chrono::steady_clock::now() < until) {
        if (mgmtd_.err().find("serving on ") != std::string::npos) return;
        std::this_thread::sleep_for(20ms);
      }
      std::string err = mgmtd_.err();
      if (err.find("serving on ") != std::string::npos) return;
      bool bind_failed = err.find("cannot start: ") != std::string::npos &&
                         err.find("listening") != std::string::npos;
      ASSERT_TRUE(bind_failed) << "mica-mgmtd did not restart:\n" << err;
      ASSERT_LT(attempt, kBindAttempts) << "its ports stayed taken:\n" << err;
      std::this_thread::sleep_for(kBindRetrySleep);
    }
  }

  // Starts mica-mgmtd with http_listen = "" and waits for its start line.
  void start_mgmtd_without_http() {
    std::string log = path("mgmtd-" + std::to_string(++mgmtd_starts_) + ".log");
    mgmtd_ = Child({MICA_MGMTD_BINARY, "--config", path("mgmtd.toml")}, log, log);
    std::optional<std::string> text = mgmtd_.wait_for_err("serving on ", 10s);
    ASSERT_TRUE(text.has_value()) << mgmtd_.err();
    rpc_ = address_after(*text, "serving on ");
    EXPECT_NE(text->find("metrics on none"), std::string::npos) << "http_listen = \"\" disables it";
  }

  RunResult mica(std::vector<std::string> args) {
    std::vector<std::string> argv = {MICA_CLI_BINARY, "--mgmtd",     rpc_, "--token-file",
                                     path("token"),   "--transport", "tcp"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, path("mica"));
  }

  std::optional<JsonValue> status() {
    RunResult result = mica({"--json", "status"});
    if (result.exit_code != 0) return std::nullopt;
    std::optional<JsonValue> json = parse_json(result.out);
    EXPECT_TRUE(json.has_value()) << "not JSON: " << result.out;
    return json;
  }

  // Polls `mica --json status` until done(seen) holds, for up to timeout.
  template <class Done>
  std::optional<Seen> wait_for(Done done, std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      std::optional<JsonValue> json = status();
      if (json && done(seen_in(*json))) return seen_in(*json);
      std::this_thread::sleep_for(100ms);
    }
    return std::nullopt;
  }

  // mica-mgmtd, kStandins stand-ins registered, and one chain table of 3-replica chains
  // over all their targets, every chain healthy: *seen is the status then. With
  // restartable, mgmtd listens on ports below the ephemeral range (see restart_mgmtd).
  void start_cluster(std::optional<Seen>* seen, bool restartable = false) {
    ASSERT_TRUE(net::generate_cluster_token_file(path("token")).ok());
    if (restartable) {
      int rpc_port = free_port_below_ephemeral();
      int http_port = free_port_below_ephemeral(rpc_port);
      ASSERT_GT(rpc_port, 0);
      ASSERT_GT(http_port, 0);
      write_config("127.0.0.1:" + std::to_string(rpc_port),
                   "127.0.0.1:" + std::to_string(http_port));
    } else {
      write_config("127.0.0.1:0", "127.0.0.1:0");
    }
    ASSERT_NO_FATAL_FAILURE(start_mgmtd());
    for (int i = 0; i < kStandins; ++i) {
      std::string name = "standin-" + std::to_string(i);
      standins_.emplace_back(
          std::vector<std::string>{MICA_STANDIN_BINARY, "--mgmtd", rpc_, "--token-file",
                                   path("token"), "--dir", path(name), "--targets",
                                   std::to_string(kTargetsPerStandin), "--host", name},
          path(name + ".out"), path(name + ".log"));
    }
    auto all_alive = [](const Seen& s) {
      return s.nodes_alive == kStandins && s.targets == kStandins * kTargetsPerStandin;
    };
    ASSERT_TRUE(wait_for(all_alive, 10s)) << "the stand-ins did not register";
    RunResult created = mica({"chain-table", "create", "--replicas", "3", "--seed", "7"});
    ASSERT_EQ(created.exit_code, 0) << created.err;
    *seen = wait_for(
        [](const Seen& s) { return s.chain_targets.size() == 2 && s.healthy_chains == 2; }, 5s);
    ASSERT_TRUE(seen->has_value()) << "the chains did not come up:\n" << mica({"status"}).out;
  }

  TempDir dir_;
  Child mgmtd_;
  int mgmtd_starts_ = 0;
  std::string rpc_;
  std::string http_;
  std::vector<Child> standins_;
};

TEST_F(MgmtdProcess, SurvivesSigkillWithItsState) {
  std::optional<Seen> before;
  ASSERT_NO_FATAL_FAILURE(start_cluster(&before, /*restartable=*/true));
  auto all_alive = [](const Seen& s) {
    return s.nodes_alive == kStandins && s.targets == kStandins * kTargetsPerStandin;
  };

  std::string metrics = http_get(http_, "/metrics");
  EXPECT_EQ(metrics.rfind("HTTP/1.", 0), 0u) << metrics;
  EXPECT_NE(metrics.find("mica_mgmtd_"), std::string::npos) << metrics;

  // SIGKILL: no shutdown at all. The stand-ins keep heartbeating into the void meanwhile.
  ASSERT_EQ(mgmtd_.stop(SIGKILL), 128 + SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * kHeartbeatMs));
  ASSERT_NO_FATAL_FAILURE(restart_mgmtd());

  std::optional<Seen> after = wait_for(all_alive, 10s);
  ASSERT_TRUE(after.has_value()) << "the stand-ins' heartbeats were not accepted again";
  EXPECT_GE(after->routing_version, before->routing_version);
  EXPECT_EQ(after->nodes, before->nodes);
  EXPECT_EQ(after->chain_targets, before->chain_targets);
  // Past a whole lease after the restart, every chain still serves with every target, at
  // the version it had: the restart changed no decision.
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kLeaseMs + 500);
  while (std::chrono::steady_clock::now() < until) {
    std::optional<JsonValue> json = status();
    ASSERT_TRUE(json.has_value());
    Seen now = seen_in(*json);
    ASSERT_EQ(now.healthy_chains, 2u) << mica({"chains"}).out << mgmtd_.err() << standins_[0].err();
    ASSERT_EQ(now.chain_versions, before->chain_versions);
    ASSERT_EQ(now.nodes_alive, static_cast<size_t>(kStandins));
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_NE(http_get(http_, "/metrics").find("mica_mgmtd_"), std::string::npos);

  // A clean stop while the stand-ins' routing long polls are open: they are answered at
  // once rather than drained for the RPC server's drain_timeout (2 s).
  auto stopping = std::chrono::steady_clock::now();
  EXPECT_EQ(mgmtd_.stop(SIGTERM), 0) << mgmtd_.err();
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 1500ms);
  EXPECT_NE(mgmtd_.err().find("mica-mgmtd stopped"), std::string::npos) << mgmtd_.err();
  for (Child& standin : standins_) EXPECT_EQ(standin.stop(SIGTERM), 0) << standin.err();
}

TEST_F(MgmtdProcess, CliWithAnotherTokenIsRefusedInOneLine) {
  ASSERT_TRUE(net::generate_cluster_token_file(path("token")).ok());
  ASSERT_TRUE(net::generate_cluster_token_file(path("other-token")).ok());
  write_config("127.0.0.1:0", "");
  ASSERT_NO_FATAL_FAILURE(start_mgmtd_without_http());
  RunResult refused = run({MICA_CLI_BINARY, "--mgmtd", rpc_, "--token-file", path("other-token"),
                           "--transport", "tcp", "status"},
                          path("mica"));
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err.rfind("mica: cannot reach mgmtd at " + rpc_ + ": Unauthenticated", 0), 0u)
      << refused.err;
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  RunResult ok = mica({"status"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(mgmtd_.stop(SIGINT), 0) << mgmtd_.err();
}

TEST_F(MgmtdProcess, ASecondMgmtdOnTheSameDataDirRefusesToStart) {
  ASSERT_TRUE(net::generate_cluster_token_file(path("token")).ok());
  write_config("127.0.0.1:0", "");
  ASSERT_NO_FATAL_FAILURE(start_mgmtd_without_http());
  RunResult second = run({MICA_MGMTD_BINARY, "--config", path("mgmtd.toml")}, path("second"));
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("is in use by another mica-mgmtd"), std::string::npos) << second.err;
  EXPECT_EQ(mgmtd_.stop(SIGTERM), 0) << mgmtd_.err();
}

TEST_F(MgmtdProcess, PortInUseFailsStartupWithExitCodeOne) {
  ASSERT_TRUE(net::generate_cluster_token_file(path("token")).ok());
  write_config("127.0.0.1:0", "");
  ASSERT_NO_FATAL_FAILURE(start_mgmtd_without_http());
  std::string first_data = path("mgmtd-data");
  // A second one on the first one's port, with a data directory of its own.
  write_config(rpc_, "");
  std::string text = read_file(path("mgmtd.toml"));
  text.replace(text.find(first_data), first_data.size(), path("other-data"));
  std::ofstream(path("mgmtd.toml")) << text;
  RunResult second = run({MICA_MGMTD_BINARY, "--config", path("mgmtd.toml")}, path("second"));
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("mica-mgmtd cannot start: "), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("listening on " + rpc_), std::string::npos) << second.err;
  EXPECT_EQ(mgmtd_.stop(SIGTERM), 0) << mgmtd_.err();
}

// The admin commands against a live cluster: a target taken offline degrades its chain and
// comes back through resync when put online again; a refused command is one line, exit 1.
TEST_F(MgmtdProcess, AdminCommandsChangeTheChains) {
  std::optional<Seen> before;
  ASSERT_NO_FATAL_FAILURE(start_cluster(&before));
  uint64_t chain = before->chain_targets.begin()->first;
  uint64_t target = before->chain_targets.begin()->second.front();
  RunResult offline = mica({"--json", "target", "offline", std::to_string(target)});
  ASSERT_EQ(offline.exit_code, 0) << offline.err;
  std::optional<JsonValue> answer = parse_json(offline.out);
  ASSERT_TRUE(answer.has_value()) << offline.out;
  EXPECT_TRUE((*answer)["admin_offline"].flag);
  EXPECT_TRUE(wait_for([](const Seen& s) { return s.healthy_chains == 1; }, 5s))
      << mica({"chains"}).out;
  RunResult status = mica({"status"});
  EXPECT_NE(status.out.find("chains not at full strength:"), std::string::npos) << status.out;

  RunResult promote = mica({"chain", "promote", std::to_string(chain), std::to_string(target)});
  EXPECT_EQ(promote.exit_code, 1) << "the chain still has serving targets";
  EXPECT_EQ(promote.err.rfind("mica: chain promote: InvalidArgument", 0), 0u) << promote.err;
  RunResult replace = mica({"target", "replace", std::to_string(target), "999"});
  EXPECT_EQ(replace.exit_code, 1);
  EXPECT_EQ(replace.err.rfind("mica: target replace: ", 0), 0u) << replace.err;

  RunResult online = mica({"target", "online", std::to_string(target)});
  ASSERT_EQ(online.exit_code, 0) << online.err;
  EXPECT_TRUE(wait_for([](const Seen& s) { return s.healthy_chains == 2; }, 10s))
      << "the target did not come back through resync:\n"
      << mica({"chains"}).out;
  for (Child& standin : standins_) EXPECT_EQ(standin.stop(SIGTERM), 0) << standin.err();
  EXPECT_EQ(mgmtd_.stop(SIGTERM), 0) << mgmtd_.err();
}

}  // namespace
}  // namespace mica::testing
