// The programs as a user meets them: the exit codes and messages of `mica` and `mica-mgmtd`
// for bad arguments, bad configs, an unusable token file and an unreachable mgmtd.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "apps/mgmtd_config.h"
#include "net/cluster_token.h"
#include "tests/apps/process.h"
#include "tests/temp_dir.h"

namespace mica::testing {
namespace {

class AppsProcess : public ::testing::Test {
 protected:
  AppsProcess() : dir_(binary_dir() + "/apps-test-data", "process") {}
  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }
  RunResult mica(std::vector<std::string> args) {
    args.insert(args.begin(), MICA_CLI_BINARY);
    return run(args, path("mica"));
  }
  RunResult mgmtd(std::vector<std::string> args) {
    args.insert(args.begin(), MICA_MGMTD_BINARY);
    return run(args, path("mgmtd"));
  }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(path(name)) << text;
  }

  TempDir dir_;
};

TEST_F(AppsProcess, EachBadCliFormGetsUsageAndExitCodeTwo) {
  const std::vector<std::vector<std::string>> forms = {
      {},
      {"bogus"},
      {"--frobnicate", "status"},
      {"status", "extra"},
      {"--mgmtd"},
      {"--mgmtd", "nowhere", "status"},
      {"--transport", "udp", "status"},
      {"--timeout-ms", "0", "status"},
      {"chain-table"},
      {"chain-table", "drop"},
      {"chain-table", "create", "--replicas"},
      {"chain-table", "create", "--replicas", "0"},
      {"chain-table", "create", "--replicas", "three"},
      {"chain-table", "create", "--nodes", "1,,2"},
      {"chain-table", "create", "--nodes", "0"},
      {"chain-table", "create", "--colour", "red"},
      {"target"},
      {"target", "offline"},
      {"target", "offline", "x"},
      {"target", "offline", "0"},
      {"target", "online", "1", "2"},
      {"target", "replace", "1"},
      {"target", "replace", "1", "-2"},
      {"target", "explode", "1"},
      {"chain", "promote", "1"},
      {"chain", "demote", "1", "2"},
      {"token", "generate"},
  };
  for (const auto& form : forms) {
    std::string shown;
    for (const std::string& word : form) shown += " " + word;
    RunResult result = mica(form);
    EXPECT_EQ(result.exit_code, 2) << "mica" << shown;
    EXPECT_NE(result.err.find("usage: mica"), std::string::npos) << "mica" << shown << result.err;
    EXPECT_EQ(result.out, "") << "mica" << shown;
  }
}

TEST_F(AppsProcess, HelpGoesToStdoutWithExitCodeZero) {
  RunResult result = mica({"--help"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.out.rfind("usage: mica", 0), 0u) << result.out;
}

TEST_F(AppsProcess, UnreachableMgmtdIsOneLineAndExitCodeOne) {
  // A port nothing listens on: bound, then closed again.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  ::close(fd);
  std::string where = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  ASSERT_TRUE(net::generate_cluster_token_file(path("token")).ok());
  RunResult result =
      mica({"--mgmtd", where, "--token-file", path("token"), "--transport", "tcp", "status"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.out, "");
  std::string prefix = "mica: cannot reach mgmtd at " + where + ": ";
  EXPECT_EQ(result.err.rfind(prefix, 0), 0u) << result.err;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  EXPECT_GT(result.err.size(), prefix.size() + 1) << "a reason follows the address";
  // The same through the environment's defaults.
  ::setenv("MICA_MGMTD", where.c_str(), 1);
  ::setenv("MICA_TOKEN_FILE", path("token").c_str(), 1);
  RunResult from_env = mica({"--transport", "tcp", "status"});
  ::unsetenv("MICA_MGMTD");
  ::unsetenv("MICA_TOKEN_FILE");
  EXPECT_EQ(from_env.exit_code, 1);
  EXPECT_EQ(from_env.err.rfind(prefix, 0), 0u) << from_env.err;
}

TEST_F(AppsProcess, MgmtdPrintsADefaultConfigThatParsesBackToTheDefaults) {
  RunResult printed = mgmtd({"--print-default-config"});
  ASSERT_EQ(printed.exit_code, 0);
  Result<apps::MgmtdConfig> config = apps::parse_mgmtd_config(printed.out, "printed.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cluster, apps::MgmtdConfig{}.cluster);
  EXPECT_EQ(config->listen, apps::MgmtdConfig{}.listen);
}

TEST_F(AppsProcess, MgmtdMissingConfigFileIsNamedWithExitCodeTwo) {
  RunResult result = mgmtd({"--config", path("missing.toml")});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find(path("missing.toml") + ": cannot open the config file"),
            std::string::npos)
      << result.err;
}

TEST_F(AppsProcess, MgmtdBadArgumentsGetUsageAndExitCodeTwo) {
  for (const std::vector<std::string>& form :
       std::vector<std::vector<std::string>>{{}, {"--config"}, {"--conf", "x"}, {"extra"}}) {
    RunResult result = mgmtd(form);
    EXPECT_EQ(result.exit_code, 2);
    EXPECT_NE(result.err.find("usage: mica-mgmtd"), std::string::npos) << result.err;
  }
}

TEST_F(AppsProcess, MgmtdConfigErrorNamesFileAndFieldWithExitCodeTwo) {
  write("mgmtd.toml", "[cluster]\nheartbeat_interval_ms = 1000\nlease_timeout_ms = 500\n");
  RunResult result = mgmtd({"--config", path("mgmtd.toml")});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_EQ(result.err, "mica-mgmtd: " + path("mgmtd.toml") +
                            ": cluster.lease_timeout_ms must be at least 2 * "
                            "heartbeat_interval_ms + 2000 ms, the nodes' reconnect backoff "
                            "(got 500 < 4000)\n");
}

TEST_F(AppsProcess, MgmtdRefusesATokenFileOthersCanRead) {
  ASSERT_TRUE(net::generate_cluster_token_file(path("token")).ok());
  ASSERT_EQ(::chmod(path("token").c_str(), 0644), 0);
  write("mgmtd.toml", "data_dir = \"" + path("data") + "\"\ntoken_file = \"" + path("token") +
                          "\"\nlisten = \"127.0.0.1:0\"\nhttp_listen = \"\"\n");
  RunResult result = mgmtd({"--config", path("mgmtd.toml")});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find(path("mgmtd.toml") + ": token_file: "), std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("PermissionDenied"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace mica::testing
