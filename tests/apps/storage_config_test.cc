// mica-storage's config file: defaults, the generated file, every check with its message.
#include <gtest/gtest.h>

#include <string>

#include "apps/storage_config.h"

namespace mica::apps {
namespace {

const char* kOneTarget = "\n[[target]]\npath = \"/srv/t0\"\n";

// The error message of parsing `text` as storage.toml (empty when it parsed).
std::string error_of(const std::string& text) {
  Result<StorageConfig> config = parse_storage_config(text, "storage.toml");
  return config.ok() ? std::string() : std::string(config.status().message());
}

TEST(StorageConfig, OneTargetIsAllAFileNeeds) {
  Result<StorageConfig> config = parse_storage_config(kOneTarget, "storage.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  StorageConfig d;
  EXPECT_EQ(config->mgmtd, d.mgmtd);
  EXPECT_EQ(config->listen, d.listen);
  EXPECT_EQ(config->server.updates_in_flight_max, d.server.updates_in_flight_max);
  ASSERT_EQ(config->server.targets.size(), 1u);
  EXPECT_EQ(config->server.targets[0].path, "/srv/t0");
  EXPECT_EQ(config->server.targets[0].disk, "/srv/t0");  // the disk defaults to the path
}

TEST(StorageConfig, PrintedDefaultConfigParsesBackToTheDefaults) {
  Result<StorageConfig> config = parse_storage_config(default_storage_config_toml(), "d.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  StorageConfig d;
  EXPECT_EQ(config->mgmtd, d.mgmtd);
  EXPECT_EQ(config->listen, d.listen);
  EXPECT_EQ(config->advertise_address, d.advertise_address);
  EXPECT_EQ(config->data_dir, d.data_dir);
  EXPECT_EQ(config->http_listen, d.http_listen);
  EXPECT_EQ(config->token_file, d.token_file);
  EXPECT_EQ(config->allow_unauthenticated, d.allow_unauthenticated);
  EXPECT_EQ(config->metrics_interval_ms, d.metrics_interval_ms);
  EXPECT_EQ(config->server.forward_timeout, d.server.forward_timeout);
  EXPECT_EQ(config->server.resync_bytes_per_s, d.server.resync_bytes_per_s);
  EXPECT_EQ(config->server.scrub_bytes_per_s, d.server.scrub_bytes_per_s);
  EXPECT_EQ(config->server.scrub_pass_interval, d.server.scrub_pass_interval);
  ASSERT_EQ(config->server.targets.size(), 1u);
  EXPECT_EQ(config->server.targets[0].engine.reserve_bytes,
            chunk::ChunkEngineConfig{}.reserve_bytes);
}

TEST(StorageConfig, GeneratedFileKeepsEveryValue) {
  StorageConfig c;
  c.mgmtd = {"10.0.0.1:9000", "10.0.0.2:9000"};
  c.listen = "0.0.0.0:0";
  c.advertise_address = "10.0.0.7:9200";
  c.host_name = "rack \"3\"";
  c.data_dir = "/srv/node";
  c.http_listen = "";
  c.allow_unauthenticated = true;
  c.transport = net::TransportChoice::kTcp;
  c.log_level = LogLevel::kDebug;
  c.server.updates_in_flight_max = 7;
  c.server.query_timeout = std::chrono::milliseconds(1500);
  c.server.resync_chunks_in_flight_max = 3;
  c.server.resync_bytes_per_s = 1000;
  c.server.scrub_bytes_per_s = 0;
  c.server.scrub_pass_interval = std::chrono::seconds(60);
  for (const char* path : {"/d0/t", "/d1/t"}) {
    craq::StorageTargetConfig target;
    target.path = path;
    target.disk = std::string("disk of ") + path;
    target.engine.reserve_bytes = 5;
    target.engine.chunk_size_max_bytes = 1u << 20;
    target.engine.buffered_io = true;
    c.server.targets.push_back(target);
  }
  Result<StorageConfig> back = parse_storage_config(storage_config_toml(c), "gen.toml");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->mgmtd, c.mgmtd);
  EXPECT_EQ(back->advertise_address, c.advertise_address);
  EXPECT_EQ(back->host_name, c.host_name);
  EXPECT_EQ(back->http_listen, "");
  EXPECT_TRUE(back->allow_unauthenticated);
  EXPECT_EQ(back->transport, net::TransportChoice::kTcp);
  EXPECT_EQ(back->log_level, LogLevel::kDebug);
  EXPECT_EQ(back->server.updates_in_flight_max, 7u);
  EXPECT_EQ(back->server.query_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(back->server.resync_chunks_in_flight_max, 3u);
  EXPECT_EQ(back->server.resync_bytes_per_s, 1000u);
  EXPECT_EQ(back->server.scrub_bytes_per_s, 0u);
  EXPECT_EQ(back->server.scrub_pass_interval, std::chrono::seconds(60));
  ASSERT_EQ(back->server.targets.size(), 2u);
  EXPECT_EQ(back->server.targets[1].path, "/d1/t");
  EXPECT_EQ(back->server.targets[1].disk, "disk of /d1/t");
  EXPECT_EQ(back->server.targets[1].engine.reserve_bytes, 5u);
  EXPECT_EQ(back->server.targets[1].engine.chunk_size_max_bytes, 1u << 20);
  EXPECT_TRUE(back->server.targets[1].engine.buffered_io);
}

TEST(StorageConfig, MgmtdIsOneAddressOrAList) {
  Result<StorageConfig> one =
      parse_storage_config(std::string("mgmtd = \"127.0.0.1:1\"\n") + kOneTarget, "s.toml");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->mgmtd, std::vector<std::string>{"127.0.0.1:1"});
  Result<StorageConfig> two = parse_storage_config(
      std::string("mgmtd = [\"127.0.0.1:1\", \"127.0.0.2:2\"]\n") + kOneTarget, "s.toml");
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(two->mgmtd.size(), 2u);
}

TEST(StorageConfig, AFileWithoutATargetIsRefused) {
  EXPECT_EQ(error_of(""),
            "storage.toml: target is missing: at least one [[target]] with a path is required");
}

// Each bad file gets one message naming the file and the field, as an operator reads it.
TEST(StorageConfig, EachBadFieldIsNamedInItsMessage) {
  const std::pair<std::string, std::string> cases[] = {
      {"listne = \"x:1\"", "storage.toml: listne is not a known setting (a typo?)"},
      {"listen = \"nowhere\"", "storage.toml: listen must be \"host:port\" (got \"nowhere\")"},
      {"listen = 9200", "storage.toml: listen must be a string (got an integer)"},
      {"mgmtd = []", "storage.toml: mgmtd must name at least one mgmtd address"},
      {"mgmtd = [1]", "storage.toml: mgmtd must hold \"host:port\" strings only"},
      {"mgmtd = \"h\"", "storage.toml: mgmtd must be \"host:port\" (got \"h\")"},
      {"advertise_address = \"x\"",
       "storage.toml: advertise_address must be \"host:port\" or empty (got \"x\")"},
      {"data_dir = \"\"", "storage.toml: data_dir must not be empty"},
      {"token_file = \"\"",
       "storage.toml: token_file must name the cluster token file (or set "
       "allow_unauthenticated = true)"},
      {"transport = \"udp\"", "storage.toml: transport must be \"tcp\", \"rdma\" or \"auto\""},
      {"log_level = \"loud\"",
       "storage.toml: log_level must be \"debug\", \"info\", \"warn\", \"error\" or \"off\""},
      {"[limits]\nupdates_in_flight_max = 0",
       "storage.toml: limits.updates_in_flight_max must be between 1 and 1048576 (got 0)"},
      {"[limits]\nforward_timeout_ms = \"10s\"",
       "storage.toml: limits.forward_timeout_ms must be an integer (got a string)"},
      {"[resync]\nspeed = 1", "storage.toml: resync.speed is not a known setting (a typo?)"},
      {"[scrub]\npass_interval_s = 0",
       "storage.toml: scrub.pass_interval_s must be between 1 and 31536000 (got 0)"},
  };
  for (const auto& [text, message] : cases) {
    EXPECT_EQ(error_of(text + "\n" + kOneTarget), message) << text;
  }
}

TEST(StorageConfig, EachBadTargetIsNamedByItsIndex) {
  const std::pair<std::string, std::string> cases[] = {
      {"[[target]]\ndisk = \"a\"", "storage.toml: target[1].path must name the target's directory"},
      {"[[target]]\npath = \"/srv/t0\"",
       "storage.toml: target[1].path is also target[0]'s (\"/srv/t0\")"},
      {"[[target]]\npath = \"/x\"\nchunk_size_max_bytes = 100000",
       "storage.toml: target[1].chunk_size_max_bytes must be a power of two (got 100000)"},
      {"[[target]]\npath = \"/x\"\nsize = 1",
       "storage.toml: target[1].size is not a known setting (a typo?)"},
  };
  for (const auto& [text, message] : cases) {
    EXPECT_EQ(error_of(std::string(kOneTarget) + text + "\n"), message) << text;
  }
  EXPECT_EQ(error_of("target = 3"), "storage.toml: target must be an array (got an integer)");
}

TEST(StorageConfig, ASyntaxErrorNamesTheFile) {
  std::string message = error_of("listen = \n");
  EXPECT_EQ(message.rfind("storage.toml: ", 0), 0u) << message;
}

}  // namespace
}  // namespace mica::apps
