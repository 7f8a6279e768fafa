#include "apps/meta_config.h"

#include <fmt/format.h>

#include <set>

#include "apps/config_reader.h"

namespace mica::apps {
namespace {

const std::set<std::string> kRootKeys = {"mgmtd",
                                         "listen",
                                         "advertise_address",
                                         "host_name",
                                         "data_dir",
                                         "http_listen",
                                         "token_file",
                                         "allow_unauthenticated",
                                         "transport",
                                         "log_level",
                                         "shard_count",
                                         "shards",
                                         "executors",
                                         "lease_ms",
                                         "readdir_page_max",
                                         "requests_kept_max",
                                         "batched_close_delay_ms",
                                         "map_size_bytes",
                                         "journal",
                                         "metrics_interval_ms",
                                         "gc"};
const std::set<std::string> kGcKeys = {"files_per_s", "files_in_flight_max", "poll_interval_ms"};

// A lease or interval beyond this is surely a unit mistake (seconds for ms).
constexpr uint64_t kIntervalMaxMs = 10 * 60 * 1000;
// A lease must outlast a few client renewals and a reconnect.
constexpr uint64_t kLeaseMinMs = 1000;
constexpr uint64_t kCountMax = 1u << 20;
// A batched close holds its caller's handle this long at most: beyond a second is a mistake.
constexpr uint64_t kBatchDelayMaxMs = 1000;
constexpr uint64_t kPageMax = 1u << 16;
constexpr uint64_t kMapSizeMinBytes = uint64_t{1} << 20;
constexpr uint64_t kMapSizeMaxBytes = uint64_t{1} << 44;

Status read_shards(const TableReader& root, MetaConfig* config) {
  RETURN_IF_ERROR(root.read("shard_count", &config->shard_count, 1, uint64_t{kMetaShardCountMax}));
  Status status;
  const toml::value* list = root.find("shards", toml::value_t::array, &status);
  RETURN_IF_ERROR(std::move(status));
  if (list == nullptr) return Status::ok_status();
  const auto& items = list->as_array();
  if (items.empty())
    return root.error("shards", "must list at least one shard id (or be left out)");
  std::set<meta::ShardId> seen;
  config->shards.clear();
  for (size_t i = 0; i < items.size(); ++i) {
    std::string key = fmt::format("shards[{}]", i);
    if (!items[i].is_integer()) {
      return root.error(
          key, fmt::format("must be an integer (got {})", toml_type_name(items[i].type())));
    }
    int64_t id = items[i].as_integer();
    if (id < 0 || static_cast<uint64_t>(id) >= config->shard_count) {
      return root.error(key, fmt::format("is {}, beyond shard_count {} (ids are 0 .. {})", id,
                                         config->shard_count, config->shard_count - 1));
    }
    if (!seen.insert(static_cast<meta::ShardId>(id)).second) {
      return root.error(key, fmt::format("names shard {} twice", id));
    }
    config->shards.push_back(static_cast<meta::ShardId>(id));
  }
  return Status::ok_status();
}

Status read_root(const TableReader& root, MetaConfig* config) {
  RETURN_IF_ERROR(root.check_keys(kRootKeys));
  RETURN_IF_ERROR(
      read_address_list(root, "mgmtd", "mgmtd address", kMetaMgmtdAddressesMax, &config->mgmtd));
  RETURN_IF_ERROR(read_address(root, "listen", &config->listen, false));
  RETURN_IF_ERROR(read_address(root, "advertise_address", &config->advertise_address, true));
  RETURN_IF_ERROR(read_address(root, "http_listen", &config->http_listen, true));
  RETURN_IF_ERROR(root.read("host_name", &config->host_name));
  RETURN_IF_ERROR(root.read("data_dir", &config->data_dir));
  if (config->data_dir.empty()) return root.error("data_dir", "must not be empty");
  RETURN_IF_ERROR(root.read("token_file", &config->token_file));
  RETURN_IF_ERROR(root.read("allow_unauthenticated", &config->allow_unauthenticated));
  if (config->token_file.empty() && !config->allow_unauthenticated) {
    return root.error("token_file",
                      "must name the cluster token file (or set allow_unauthenticated = true)");
  }
  RETURN_IF_ERROR(read_transport(root, &config->transport));
  RETURN_IF_ERROR(read_log_level(root, &config->log_level));
  RETURN_IF_ERROR(read_shards(root, config));
  RETURN_IF_ERROR(root.read("executors", &config->executors, 1, uint64_t{kMetaExecutorsMax}));
  RETURN_IF_ERROR(root.read("lease_ms", &config->lease_ms, kLeaseMinMs, kIntervalMaxMs));
  RETURN_IF_ERROR(root.read("readdir_page_max", &config->readdir_page_max, 1, kPageMax));
  RETURN_IF_ERROR(root.read("requests_kept_max", &config->requests_kept_max, 1, kCountMax));
  RETURN_IF_ERROR(
      root.read("batched_close_delay_ms", &config->batched_close_delay_ms, 0, kBatchDelayMaxMs));
  RETURN_IF_ERROR(
      root.read("map_size_bytes", &config->map_size_bytes, kMapSizeMinBytes, kMapSizeMaxBytes));
  RETURN_IF_ERROR(root.read("journal", &config->journal));
  return root.read("metrics_interval_ms", &config->metrics_interval_ms, 10, kIntervalMaxMs);
}

Status read_gc(const TableReader& gc, MetaGcConfig* out) {
  RETURN_IF_ERROR(gc.check_keys(kGcKeys));
  RETURN_IF_ERROR(gc.read("files_per_s", &out->files_per_s, 0, kCountMax));
  RETURN_IF_ERROR(gc.read("files_in_flight_max", &out->files_in_flight_max, 1, kCountMax));
  return gc.read("poll_interval_ms", &out->poll_interval_ms, 10, kIntervalMaxMs);
}

}  // namespace

std::vector<meta::ShardId> MetaConfig::served_shards() const {
  if (!shards.empty()) return shards;
  std::vector<meta::ShardId> all;
  for (meta::ShardId id = 0; id < shard_count; ++id) all.push_back(id);
  return all;
}

Result<MetaConfig> parse_meta_config(std::string_view text, const std::string& file_name) {
  Result<toml::value> parsed = parse_toml(text, file_name);
  if (!parsed.ok()) return parsed.status();
  MetaConfig config;
  TableReader root(*parsed, file_name, "");
  RETURN_IF_ERROR(read_root(root, &config));
  Status status;
  const toml::value& gc = table_or_empty(root, "gc", &status);
  RETURN_IF_ERROR(std::move(status));
  RETURN_IF_ERROR(read_gc(TableReader(gc, file_name, "gc."), &config.gc));
  return config;
}

Result<MetaConfig> load_meta_config(const std::string& path) {
  Result<std::string> text = read_config_file(path);
  if (!text.ok()) return text.status();
  return parse_meta_config(*text, path);
}

std::string meta_config_toml(const MetaConfig& c) {
  std::string mgmtd, shards;
  for (const std::string& address : c.mgmtd) {
    mgmtd += (mgmtd.empty() ? "" : ", ") + toml_quote(address);
  }
  for (meta::ShardId id : c.shards) shards += fmt::format("{}{}", shards.empty() ? "" : ", ", id);
  return fmt::format(
      R"(# mica-meta configuration (TOML). Unknown keys are refused.

# mgmtd's RPC addresses, tried in turn.
mgmtd = [{}]
# RPC address for clients ("host:port"; port 0 picks one).
listen = {}
# The address mgmtd hands out for this node; "" means the bound listen address.
advertise_address = {}
# The node's name in `mica nodes`; "" means the machine's host name.
host_name = {}
# Holds the node's identity file and one kv/ environment per shard (created if missing).
data_dir = {}
# HTTP endpoint serving /metrics and /health; "" disables it. No authentication.
http_listen = {}
# Cluster token file, mode 0600 or 0400 (`mica token generate FILE`).
token_file = {}
# Serve without the cluster token handshake (token_file is then ignored).
allow_unauthenticated = {}
# "tcp", "rdma" or "auto".
transport = "{}"
# "debug", "info", "warn", "error" or "off".
log_level = "{}"
# The namespace's shard count (new directories spread over all of them), and the shard ids
# this process serves ({} serves every one).
shard_count = {}
{}shards = [{}]
# Executor threads the shards are spread over.
executors = {}
# A client's sessions end when it has not renewed its lease for this long.
lease_ms = {}
# Entries per readdir page at most; RequestTag answers kept per shard for retries.
readdir_page_max = {}
requests_kept_max = {}
# How long a close nobody waits on (the mount's RELEASE) may wait to share the next commit
# of its shard (0: it commits at once).
batched_close_delay_ms = {}
# The largest size one shard's kv/ environment may grow to.
map_size_bytes = {}
# Commit through a write-ahead journal (one sequential write and one flush per commit);
# false: LMDB's own commits (a few scattered page writes and two flushes).
journal = {}
# How often the inode and GC-queue gauges are refreshed.
metrics_interval_ms = {}

[gc]
# Files whose chunks are removed per second (0: collection paused); removals in flight;
# how often an idle collector looks for newly queued files.
files_per_s = {}
files_in_flight_max = {}
poll_interval_ms = {}
)",
      mgmtd, toml_quote(c.listen), toml_quote(c.advertise_address), toml_quote(c.host_name),
      toml_quote(c.data_dir), toml_quote(c.http_listen), toml_quote(c.token_file),
      c.allow_unauthenticated, transport_choice_name(c.transport), log_level_name(c.log_level),
      "a missing `shards`", c.shard_count, c.shards.empty() ? "# " : "", shards, c.executors,
      c.lease_ms, c.readdir_page_max, c.requests_kept_max, c.batched_close_delay_ms,
      c.map_size_bytes, c.journal, c.metrics_interval_ms, c.gc.files_per_s,
      c.gc.files_in_flight_max, c.gc.poll_interval_ms);
}

std::string default_meta_config_toml() {
  return meta_config_toml(MetaConfig{});
}

}  // namespace mica::apps
