// mica-mgmtd's config file: defaults, every field's check, unknown keys.
#include <gtest/gtest.h>

#include <string>

#include "apps/mgmtd_config.h"

namespace mica::apps {
namespace {

// The error message of parsing `text` as mgmtd.toml (empty when it parsed).
std::string error_of(const std::string& text) {
  Result<MgmtdConfig> config = parse_mgmtd_config(text, "mgmtd.toml");
  return config.ok() ? std::string() : std::string(config.status().message());
}

TEST(MgmtdConfig, EmptyFileGivesTheDefaults) {
  Result<MgmtdConfig> config = parse_mgmtd_config("", "mgmtd.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  MgmtdConfig defaults;
  EXPECT_EQ(config->listen, defaults.listen);
  EXPECT_EQ(config->cluster, defaults.cluster);
  EXPECT_EQ(config->transport, net::TransportChoice::kAuto);
}

TEST(MgmtdConfig, PrintedDefaultConfigParsesBackToTheDefaults) {
  Result<MgmtdConfig> config = parse_mgmtd_config(default_mgmtd_config_toml(), "default.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  MgmtdConfig d;
  EXPECT_EQ(config->data_dir, d.data_dir);
  EXPECT_EQ(config->listen, d.listen);
  EXPECT_EQ(config->http_listen, d.http_listen);
  EXPECT_EQ(config->token_file, d.token_file);
  EXPECT_EQ(config->allow_unauthenticated, d.allow_unauthenticated);
  EXPECT_EQ(config->transport, d.transport);
  EXPECT_EQ(config->log_level, d.log_level);
  EXPECT_EQ(config->update_interval_ms, d.update_interval_ms);
  EXPECT_EQ(config->cluster, d.cluster);
}

TEST(MgmtdConfig, PrintedDefaultConfigMentionsEveryField) {
  std::string text = default_mgmtd_config_toml();
  for (const char* key :
       {"data_dir", "listen", "http_listen", "token_file", "allow_unauthenticated", "transport",
        "log_level", "update_interval_ms", "[cluster]", "replica_count", "chunk_size_min_bytes",
        "chunk_size_max_bytes", "chunk_size_default_bytes", "heartbeat_interval_ms",
        "lease_timeout_ms"}) {
    EXPECT_NE(text.find(key), std::string::npos) << key;
  }
}

TEST(MgmtdConfig, EveryFieldIsRead) {
  Result<MgmtdConfig> config = parse_mgmtd_config(R"(
data_dir = "/srv/mgmtd"
listen = "0.0.0.0:7000"
http_listen = ""
token_file = "/etc/mica/token"
allow_unauthenticated = true
transport = "tcp"
log_level = "debug"
update_interval_ms = 50
[cluster]
replica_count = 2
chunk_size_min_bytes = 131072
chunk_size_max_bytes = 1048576
chunk_size_default_bytes = 262144
heartbeat_interval_ms = 300
lease_timeout_ms = 2600
)",
                                                  "mgmtd.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->data_dir, "/srv/mgmtd");
  EXPECT_EQ(config->listen, "0.0.0.0:7000");
  EXPECT_EQ(config->http_listen, "");
  EXPECT_EQ(config->token_file, "/etc/mica/token");
  EXPECT_TRUE(config->allow_unauthenticated);
  EXPECT_EQ(config->transport, net::TransportChoice::kTcp);
  EXPECT_EQ(config->log_level, LogLevel::kDebug);
  EXPECT_EQ(config->update_interval_ms, 50u);
  EXPECT_EQ(config->cluster.replica_count, 2u);
  EXPECT_EQ(config->cluster.chunk_size_min_bytes, 131072u);
  EXPECT_EQ(config->cluster.chunk_size_max_bytes, 1048576u);
  EXPECT_EQ(config->cluster.chunk_size_default_bytes, 262144u);
  EXPECT_EQ(config->cluster.heartbeat_interval_ms, 300u);
  EXPECT_EQ(config->cluster.lease_timeout_ms, 2600u);
}

// The restart grace is one lease: it must cover two heartbeats and a node's reconnect
// backoff (craq::kMgmtdReconnectBackoffMax), and exactly that is enough.
TEST(MgmtdConfig, LeaseMustCoverTwoHeartbeatsAndTheReconnectBackoff) {
  EXPECT_EQ(error_of("[cluster]\nheartbeat_interval_ms = 1000\nlease_timeout_ms = 3999\n"),
            "mgmtd.toml: cluster.lease_timeout_ms must be at least 2 * heartbeat_interval_ms + "
            "2000 ms, the nodes' reconnect backoff (got 3999 < 4000)");
  EXPECT_EQ(error_of("[cluster]\nheartbeat_interval_ms = 1000\nlease_timeout_ms = 4000\n"), "");
  // The process tests' intervals (tests/apps/mgmtd_process_test.cc) are valid.
  EXPECT_EQ(error_of("[cluster]\nheartbeat_interval_ms = 200\nlease_timeout_ms = 4000\n"), "");
}

TEST(MgmtdConfig, UnknownKeyIsRefusedAsATypo) {
  EXPECT_EQ(error_of("lisen = \"127.0.0.1:1\"\n"),
            "mgmtd.toml: lisen is not a known setting (a typo?)");
  EXPECT_EQ(error_of("[cluster]\nreplicas = 3\n"),
            "mgmtd.toml: cluster.replicas is not a known setting (a typo?)");
  EXPECT_EQ(error_of("[clutser]\nreplica_count = 3\n"),
            "mgmtd.toml: clutser is not a known setting (a typo?)");
}

TEST(MgmtdConfig, WrongTypeNamesTheFieldAndBothTypes) {
  EXPECT_EQ(error_of("[cluster]\nreplica_count = \"3\"\n"),
            "mgmtd.toml: cluster.replica_count must be an integer (got a string)");
  EXPECT_EQ(error_of("allow_unauthenticated = 1\n"),
            "mgmtd.toml: allow_unauthenticated must be a boolean (got an integer)");
  EXPECT_EQ(error_of("cluster = 3\n"), "mgmtd.toml: cluster must be a table (got an integer)");
}

// One bad value per field: each message names the file and the field.
TEST(MgmtdConfig, EachInvalidFieldIsNamed) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"data_dir = \"\"\n", "mgmtd.toml: data_dir must not be empty"},
      {"listen = \"nowhere\"\n", "mgmtd.toml: listen must be \"host:port\" (got \"nowhere\")"},
      {"http_listen = \"1.2.3.4\"\n",
       "mgmtd.toml: http_listen must be \"host:port\" or empty (got \"1.2.3.4\")"},
      {"token_file = \"\"\n",
       "mgmtd.toml: token_file must name the cluster token file (or set "
       "allow_unauthenticated = true)"},
      {"transport = \"udp\"\n", "mgmtd.toml: transport must be \"tcp\", \"rdma\" or \"auto\""},
      {"log_level = \"loud\"\n",
       "mgmtd.toml: log_level must be \"debug\", \"info\", \"warn\", \"error\" or \"off\""},
      {"update_interval_ms = 0\n",
       "mgmtd.toml: update_interval_ms must be between 1 and 600000 (got 0)"},
      {"update_interval_ms = 5000\n",
       "mgmtd.toml: update_interval_ms must be less than cluster.lease_timeout_ms "
       "(got 5000 >= 5000)"},
      {"[cluster]\nreplica_count = 0\n",
       "mgmtd.toml: cluster.replica_count must be between 1 and 16 (got 0)"},
      {"[cluster]\nreplica_count = -3\n",
       "mgmtd.toml: cluster.replica_count must be between 1 and 16 (got -3)"},
      {"[cluster]\nchunk_size_min_bytes = 4096\n",
       "mgmtd.toml: cluster.chunk_size_min_bytes must be between 65536 and 67108864 (got 4096)"},
      {"[cluster]\nchunk_size_max_bytes = 134217728\n",
       "mgmtd.toml: cluster.chunk_size_max_bytes must be between 65536 and 67108864 "
       "(got 134217728)"},
      {"[cluster]\nchunk_size_default_bytes = 3000000\n",
       "mgmtd.toml: cluster.chunk_size_default_bytes must be a power of two (got 3000000)"},
      {"[cluster]\nchunk_size_min_bytes = 1048576\nchunk_size_max_bytes = 524288\n",
       "mgmtd.toml: cluster.chunk_size_min_bytes must not exceed chunk_size_max_bytes "
       "(got 1048576 > 524288)"},
      {"[cluster]\nchunk_size_default_bytes = 65536\nchunk_size_min_bytes = 131072\n",
       "mgmtd.toml: cluster.chunk_size_default_bytes must be between chunk_size_min_bytes and "
       "chunk_size_max_bytes (got 65536 outside 131072..67108864)"},
      {"[cluster]\nheartbeat_interval_ms = 0\n",
       "mgmtd.toml: cluster.heartbeat_interval_ms must be between 1 and 600000 (got 0)"},
      {"[cluster]\nlease_timeout_ms = 700000\n",
       "mgmtd.toml: cluster.lease_timeout_ms must be between 1 and 600000 (got 700000)"},
  };
  for (const Case& c : cases) EXPECT_EQ(error_of(c.text), c.message) << c.text;
}

TEST(MgmtdConfig, AllowUnauthenticatedNeedsNoTokenFile) {
  EXPECT_EQ(error_of("token_file = \"\"\nallow_unauthenticated = true\n"), "");
}

TEST(MgmtdConfig, SyntaxErrorNamesTheFile) {
  std::string message = error_of("listen = \n");
  EXPECT_EQ(message.rfind("mgmtd.toml: ", 0), 0u) << message;
}

TEST(MgmtdConfig, MissingFileIsNamed) {
  Result<MgmtdConfig> config = load_mgmtd_config("no-such-dir/mgmtd.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "no-such-dir/mgmtd.toml: cannot open the config file");
}

}  // namespace
}  // namespace mica::apps
