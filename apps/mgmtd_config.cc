#include "apps/mgmtd_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <toml.hpp>
#include <vector>

#include "apps/config_reader.h"
#include "async/socket_address.h"
#include "chunk/types.h"
#include "craq/mgmtd_client.h"

namespace mica::apps {
namespace {

// The TOML file's keys: each table's fields, so that any other key is refused.
const std::set<std::string> kRootKeys = {
    "data_dir",  "listen",    "http_listen",        "token_file", "allow_unauthenticated",
    "transport", "log_level", "update_interval_ms", "cluster"};
const std::set<std::string> kClusterKeys = {"replica_count",         "chunk_size_min_bytes",
                                            "chunk_size_max_bytes",  "chunk_size_default_bytes",
                                            "heartbeat_interval_ms", "lease_timeout_ms"};

// A heartbeat or update interval longer than this is surely a unit mistake (seconds for ms).
constexpr uint64_t kIntervalMaxMs = 10 * 60 * 1000;

// craq::kMgmtdReconnectBackoffMax in milliseconds: the lease must cover it.
uint64_t reconnect_backoff_max_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(craq::kMgmtdReconnectBackoffMax)
          .count());
}

Status read_root(const TableReader& root, MgmtdConfig* config) {
  RETURN_IF_ERROR(root.check_keys(kRootKeys));
  RETURN_IF_ERROR(root.read("data_dir", &config->data_dir));
  RETURN_IF_ERROR(root.read("listen", &config->listen));
  RETURN_IF_ERROR(root.read("http_listen", &config->http_listen));
  RETURN_IF_ERROR(root.read("token_file", &config->token_file));
  RETURN_IF_ERROR(root.read("allow_unauthenticated", &config->allow_unauthenticated));
  RETURN_IF_ERROR(root.read("update_interval_ms", &config->update_interval_ms, 1, kIntervalMaxMs));
  std::string transport = "auto";
  RETURN_IF_ERROR(root.read("transport", &transport));
  Result<net::TransportChoice> choice = net::parse_transport_choice(transport);
  if (!choice.ok()) return root.error("transport", "must be \"tcp\", \"rdma\" or \"auto\"");
  config->transport = *choice;
  std::string level = std::string(log_level_name(config->log_level));
  RETURN_IF_ERROR(root.read("log_level", &level));
  Result<LogLevel> parsed_level = log_level_from_name(level);
  if (!parsed_level.ok()) {
    return root.error("log_level", "must be \"debug\", \"info\", \"warn\", \"error\" or \"off\"");
  }
  config->log_level = *parsed_level;
  return Status::ok_status();
}

Status read_cluster(const TableReader& cluster, craq::ClusterConfig* out) {
  RETURN_IF_ERROR(cluster.check_keys(kClusterKeys));
  RETURN_IF_ERROR(cluster.read("replica_count", &out->replica_count, 1, kReplicaCountMax));
  const uint64_t min = chunk::size_class_bytes(0);
  const uint64_t max = chunk::kChunkSizeLimitBytes;
  RETURN_IF_ERROR(cluster.read("chunk_size_min_bytes", &out->chunk_size_min_bytes, min, max));
  RETURN_IF_ERROR(cluster.read("chunk_size_max_bytes", &out->chunk_size_max_bytes, min, max));
  RETURN_IF_ERROR(
      cluster.read("chunk_size_default_bytes", &out->chunk_size_default_bytes, min, max));
  RETURN_IF_ERROR(
      cluster.read("heartbeat_interval_ms", &out->heartbeat_interval_ms, 1, kIntervalMaxMs));
  RETURN_IF_ERROR(cluster.read("lease_timeout_ms", &out->lease_timeout_ms, 1, kIntervalMaxMs));
  return Status::ok_status();
}

bool power_of_two(uint64_t n) {
  return n != 0 && (n & (n - 1)) == 0;
}

// Rules between fields, once each has its own range.
Status check_relations(const TableReader& root, const TableReader& cluster,
                       const MgmtdConfig& config) {
  const craq::ClusterConfig& c = config.cluster;
  for (auto [key, value] : {std::pair{"chunk_size_min_bytes", c.chunk_size_min_bytes},
                            std::pair{"chunk_size_max_bytes", c.chunk_size_max_bytes},
                            std::pair{"chunk_size_default_bytes", c.chunk_size_default_bytes}}) {
    if (!power_of_two(value)) {
      return cluster.error(key, fmt::format("must be a power of two (got {})", value));
    }
  }
  if (c.chunk_size_min_bytes > c.chunk_size_max_bytes) {
    return cluster.error("chunk_size_min_bytes",
                         fmt::format("must not exceed chunk_size_max_bytes (got {} > {})",
                                     c.chunk_size_min_bytes, c.chunk_size_max_bytes));
  }
  if (c.chunk_size_default_bytes < c.chunk_size_min_bytes ||
      c.chunk_size_default_bytes > c.chunk_size_max_bytes) {
    return cluster.error(
        "chunk_size_default_bytes",
        fmt::format("must be between chunk_size_min_bytes and "
                    "chunk_size_max_bytes (got {} outside {}..{})",
                    c.chunk_size_default_bytes, c.chunk_size_min_bytes, c.chunk_size_max_bytes));
  }
  // After a restart mgmtd waits one lease for every node's heartbeat, and a node may first
  // wait out its reconnect backoff: a shorter lease would expire healthy nodes (and block
  // their chains) on every mgmtd restart. Two intervals leave room for one lost heartbeat.
  uint64_t backoff_ms = reconnect_backoff_max_ms();
  uint64_t lease_min_ms = 2 * uint64_t{c.heartbeat_interval_ms} + backoff_ms;
  if (c.lease_timeout_ms < lease_min_ms) {
    return cluster.error(
        "lease_timeout_ms",
        fmt::format("must be at least 2 * heartbeat_interval_ms + {} ms, the nodes' reconnect "
                    "backoff (got {} < {})",
                    backoff_ms, c.lease_timeout_ms, lease_min_ms));
  }
  if (config.update_interval_ms >= c.lease_timeout_ms) {
    return root.error("update_interval_ms",
                      fmt::format("must be less than cluster.lease_timeout_ms (got {} >= {})",
                                  config.update_interval_ms, c.lease_timeout_ms));
  }
  return Status::ok_status();
}

Status check_fields(const TableReader& root, const MgmtdConfig& config) {
  if (config.data_dir.empty()) return root.error("data_dir", "must not be empty");
  if (!SocketAddress::parse(config.listen).ok()) {
    return root.error("listen", fmt::format("must be \"host:port\" (got \"{}\")", config.listen));
  }
  if (!config.http_listen.empty() && !SocketAddress::parse(config.http_listen).ok()) {
    return root.error("http_listen", fmt::format("must be \"host:port\" or empty (got \"{}\")",
                                                 config.http_listen));
  }
  if (config.token_file.empty() && !config.allow_unauthenticated) {
    return root.error("token_file",
                      "must name the cluster token file "
                      "(or set allow_unauthenticated = true)");
  }
  return Status::ok_status();
}

}  // namespace

Result<MgmtdConfig> parse_mgmtd_config(std::string_view text, const std::string& file_name) {
  Result<toml::value> parsed = parse_toml(text, file_name);
  if (!parsed.ok()) return parsed.status();
  const toml::value& document = *parsed;
  MgmtdConfig config;
  TableReader root(document, file_name, "");
  RETURN_IF_ERROR(read_root(root, &config));
  static const toml::value kEmptyTable = toml::table{};
  const toml::value* cluster_value = &kEmptyTable;
  Status status;
  if (const toml::value* v = root.find("cluster", toml::value_t::table, &status)) cluster_value = v;
  RETURN_IF_ERROR(std::move(status));
  TableReader cluster(*cluster_value, file_name, "cluster.");
  RETURN_IF_ERROR(read_cluster(cluster, &config.cluster));
  RETURN_IF_ERROR(check_fields(root, config));
  RETURN_IF_ERROR(check_relations(root, cluster, config));
  return config;
}

Result<MgmtdConfig> load_mgmtd_config(const std::string& path) {
  Result<std::string> text = read_config_file(path);
  if (!text.ok()) return text.status();
  return parse_mgmtd_config(*text, path);
}

std::string default_mgmtd_config_toml() {
  const MgmtdConfig d;
  const craq::ClusterConfig& c = d.cluster;
  return fmt::format(
      R"(# mica-mgmtd configuration (TOML). Every setting is shown with its default; unknown
# keys are refused.

# Directory of mgmtd's durable state (an LMDB environment); created if missing.
data_dir = "{}"
# RPC address that servers and the `mica` CLI connect to ("host:port").
listen = "{}"
# HTTP endpoint serving /metrics (Prometheus text format) and /health; "" disables it.
# It has no authentication: bind it where only the metrics scraper can reach it.
http_listen = "{}"
# Cluster token file, mode 0600 or 0400 (generate one with `mica token generate FILE`).
token_file = "{}"
# Serve connections without the cluster token handshake (token_file is then ignored).
allow_unauthenticated = {}
# "tcp", "rdma" or "auto" (RDMA when the machine has an active device, TCP otherwise).
transport = "{}"
# "debug", "info", "warn", "error" or "off".
log_level = "{}"
# How often mgmtd re-evaluates node leases and chain states, in milliseconds.
update_interval_ms = {}

# The cluster config that mgmtd hands to every node.
[cluster]
# Targets per chain of a new chain table (1..{}).
replica_count = {}
# Chunk sizes files may use: powers of two from 64 KiB to 64 MiB, min <= default <= max.
chunk_size_min_bytes = {}
chunk_size_max_bytes = {}
chunk_size_default_bytes = {}
# Nodes heartbeat this often; a node silent for lease_timeout_ms has its targets treated
# as offline. The lease must be at least two intervals plus {} ms (a node's reconnect
# backoff): after a restart mgmtd gives every node one lease to heartbeat again.
heartbeat_interval_ms = {}
lease_timeout_ms = {}
)",
      d.data_dir, d.listen, d.http_listen, d.token_file, d.allow_unauthenticated,
      transport_choice_name(d.transport), log_level_name(d.log_level), d.update_interval_ms,
      kReplicaCountMax, c.replica_count, c.chunk_size_min_bytes, c.chunk_size_max_bytes,
      c.chunk_size_default_bytes, reconnect_backoff_max_ms(), c.heartbeat_interval_ms,
      c.lease_timeout_ms);
}

}  // namespace mica::apps
