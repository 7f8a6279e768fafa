// mica-meta's config file: defaults, the generated file, every check with its message.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "apps/meta_config.h"

namespace mica::apps {
namespace {

// The error message of parsing `text` as meta.toml (empty when it parsed).
std::string error_of(const std::string& text) {
  Result<MetaConfig> config = parse_meta_config(text, "meta.toml");
  return config.ok() ? std::string() : std::string(config.status().message());
}

TEST(MetaConfig, AnEmptyFileServesEveryShardOfTheDefaultCount) {
  Result<MetaConfig> config = parse_meta_config("", "meta.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  MetaConfig d;
  EXPECT_EQ(config->mgmtd, d.mgmtd);
  EXPECT_EQ(config->shard_count, kMetaShardCountDefault);
  EXPECT_TRUE(config->shards.empty());
  EXPECT_EQ(config->served_shards(), (std::vector<meta::ShardId>{0, 1, 2, 3}));
  EXPECT_EQ(config->lease_ms, d.lease_ms);
  EXPECT_EQ(config->gc.files_per_s, d.gc.files_per_s);
}

TEST(MetaConfig, ShardIdsNameWhatThisProcessServes) {
  Result<MetaConfig> config =
      parse_meta_config("shard_count = 8\nshards = [5, 0, 7]\n", "meta.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->shard_count, 8u);
  EXPECT_EQ(config->served_shards(), (std::vector<meta::ShardId>{5, 0, 7}));
}

TEST(MetaConfig, PrintedDefaultConfigParsesBackToTheDefaults) {
  Result<MetaConfig> config = parse_meta_config(default_meta_config_toml(), "d.toml");
  ASSERT_TRUE(config.ok()) << config.status();
  MetaConfig d;
  EXPECT_EQ(config->mgmtd, d.mgmtd);
  EXPECT_EQ(config->listen, d.listen);
  EXPECT_EQ(config->data_dir, d.data_dir);
  EXPECT_EQ(config->http_listen, d.http_listen);
  EXPECT_EQ(config->token_file, d.token_file);
  EXPECT_EQ(config->shard_count, d.shard_count);
  EXPECT_EQ(config->shards, d.shards);
  EXPECT_EQ(config->executors, d.executors);
  EXPECT_EQ(config->readdir_page_max, d.readdir_page_max);
  EXPECT_EQ(config->map_size_bytes, d.map_size_bytes);
  EXPECT_EQ(config->gc.files_in_flight_max, d.gc.files_in_flight_max);
}

TEST(MetaConfig, GeneratedFileKeepsEveryValue) {
  MetaConfig c;
  c.mgmtd = {"10.0.0.1:9000", "10.0.0.2:9000"};
  c.listen = "0.0.0.0:0";
  c.advertise_address = "10.0.0.7:9400";
  c.host_name = "rack \"3\"";
  c.data_dir = "/srv/meta";
  c.http_listen = "";
  c.allow_unauthenticated = true;
  c.transport = net::TransportChoice::kTcp;
  c.log_level = LogLevel::kWarn;
  c.shard_count = 16;
  c.shards = {3, 9};
  c.executors = 2;
  c.lease_ms = 3000;
  c.readdir_page_max = 77;
  c.requests_kept_max = 99;
  c.map_size_bytes = uint64_t{1} << 30;
  c.metrics_interval_ms = 250;
  c.gc.files_per_s = 0;
  c.gc.files_in_flight_max = 4;
  c.gc.poll_interval_ms = 20;
  Result<MetaConfig> back = parse_meta_config(meta_config_toml(c), "gen.toml");
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << meta_config_toml(c);
  EXPECT_EQ(back->mgmtd, c.mgmtd);
  EXPECT_EQ(back->listen, c.listen);
  EXPECT_EQ(back->advertise_address, c.advertise_address);
  EXPECT_EQ(back->host_name, c.host_name);
  EXPECT_EQ(back->data_dir, c.data_dir);
  EXPECT_EQ(back->http_listen, c.http_listen);
  EXPECT_TRUE(back->allow_unauthenticated);
  EXPECT_EQ(back->transport, c.transport);
  EXPECT_EQ(back->log_level, c.log_level);
  EXPECT_EQ(back->shard_count, c.shard_count);
  EXPECT_EQ(back->shards, c.shards);
  EXPECT_EQ(back->executors, c.executors);
  EXPECT_EQ(back->lease_ms, c.lease_ms);
  EXPECT_EQ(back->readdir_page_max, c.readdir_page_max);
  EXPECT_EQ(back->requests_kept_max, c.requests_kept_max);
  EXPECT_EQ(back->map_size_bytes, c.map_size_bytes);
  EXPECT_EQ(back->metrics_interval_ms, c.metrics_interval_ms);
  EXPECT_EQ(back->gc.files_per_s, c.gc.files_per_s);
  EXPECT_EQ(back->gc.files_in_flight_max, c.gc.files_in_flight_max);
  EXPECT_EQ(back->gc.poll_interval_ms, c.gc.poll_interval_ms);
}

TEST(MetaConfig, EveryBadValueIsRefusedNamingItsKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"shard_cuont = 4", "meta.toml: shard_cuont is not a known setting (a typo?)"},
      {"[gc]\nfiles_per_sec = 1", "meta.toml: gc.files_per_sec is not a known setting (a typo?)"},
      {"shard_count = \"4\"", "meta.toml: shard_count must be an integer (got a string)"},
      {"shard_count = 0", "meta.toml: shard_count must be between 1 and 4096 (got 0)"},
      {"shards = []", "meta.toml: shards must list at least one shard id (or be left out)"},
      {"shards = [0, \"1\"]", "meta.toml: shards[1] must be an integer (got a string)"},
      {"shards = [0, 4]", "meta.toml: shards[1] is 4, beyond shard_count 4 (ids are 0 .. 3)"},
      {"shards = [-1]", "meta.toml: shards[0] is -1, beyond shard_count 4 (ids are 0 .. 3)"},
      {"shards = [2, 2]", "meta.toml: shards[1] names shard 2 twice"},
      {"shards = 2", "meta.toml: shards must be an array (got an integer)"},
      {"executors = 0", "meta.toml: executors must be between 1 and 64 (got 0)"},
      {"lease_ms = 10", "meta.toml: lease_ms must be between 1000 and 600000 (got 10)"},
      {"readdir_page_max = 0", "meta.toml: readdir_page_max must be between 1 and 65536 (got 0)"},
      {"map_size_bytes = 1",
       "meta.toml: map_size_bytes must be between 1048576 and "
       "17592186044416 (got 1)"},
      {"[gc]\nfiles_in_flight_max = 0",
       "meta.toml: gc.files_in_flight_max must be between 1 and 1048576 (got 0)"},
      {"gc = 3", "meta.toml: gc must be a table (got an integer)"},
      {"mgmtd = []", "meta.toml: mgmtd must name at least one mgmtd address"},
      {"mgmtd = \"nohost\"", "meta.toml: mgmtd must be \"host:port\" (got \"nohost\")"},
      {"listen = \"x\"", "meta.toml: listen must be \"host:port\" (got \"x\")"},
      {"http_listen = \"x\"", "meta.toml: http_listen must be \"host:port\" or empty (got \"x\")"},
      {"data_dir = \"\"", "meta.toml: data_dir must not be empty"},
      {"token_file = \"\"",
       "meta.toml: token_file must name the cluster token file (or set "
       "allow_unauthenticated = true)"},
      {"transport = \"udp\"", "meta.toml: transport must be \"tcp\", \"rdma\" or \"auto\""},
      {"log_level = \"loud\"",
       "meta.toml: log_level must be \"debug\", \"info\", \"warn\", \"error\" or \"off\""},
  };
  for (const auto& [text, message] : cases) EXPECT_EQ(error_of(text), message) << text;
}

TEST(MetaConfig, ATomlSyntaxErrorNamesTheFile) {
  std::string error = error_of("shard_count = ");
  EXPECT_EQ(error.rfind("meta.toml: ", 0), 0u) << error;
}

TEST(MetaConfig, AMissingFileIsNotFound) {
  Result<MetaConfig> config = load_meta_config("/nonexistent/meta.toml");
  EXPECT_EQ(config.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace mica::apps
