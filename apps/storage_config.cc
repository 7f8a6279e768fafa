#include "apps/storage_config.h"

#include <fmt/format.h>

#include <chrono>
#include <set>

#include "apps/config_reader.h"
#include "async/socket_address.h"
#include "chunk/types.h"

namespace mica::apps {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

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
                                         "metrics_interval_ms",
                                         "limits",
                                         "resync",
                                         "scrub",
                                         "target"};
const std::set<std::string> kLimitsKeys = {"updates_in_flight_max", "forward_timeout_ms",
                                           "query_timeout_ms", "batch_read_items_max",
                                           "read_bytes_max"};
const std::set<std::string> kResyncKeys = {"chunks_in_flight_max", "bytes_per_s", "list_page_max"};
const std::set<std::string> kScrubKeys = {"bytes_per_s", "pass_interval_s"};
const std::set<std::string> kTargetKeys = {
    "path", "disk", "reserve_bytes", "data_bytes_max", "chunk_size_max_bytes", "buffered_io"};

// A timeout beyond this is surely a unit mistake (seconds for ms).
constexpr uint64_t kTimeoutMaxMs = 10 * 60 * 1000;
constexpr uint64_t kPassIntervalMaxS = 365ull * 24 * 3600;
constexpr uint64_t kCountMax = 1u << 20;
constexpr uint64_t kBytesMax = uint64_t{1} << 50;

bool power_of_two(uint64_t n) {
  return n != 0 && (n & (n - 1)) == 0;
}

Status read_root(const TableReader& root, StorageConfig* config) {
  RETURN_IF_ERROR(root.check_keys(kRootKeys));
  RETURN_IF_ERROR(read_address_list(root, "mgmtd", "mgmtd address", kStorageMgmtdAddressesMax,
                                    &config->mgmtd));
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
  RETURN_IF_ERROR(
      root.read("metrics_interval_ms", &config->metrics_interval_ms, 10, kTimeoutMaxMs));
  RETURN_IF_ERROR(read_transport(root, &config->transport));
  return read_log_level(root, &config->log_level);
}

Status read_duration_ms(const TableReader& table, std::string_view key, Duration* out) {
  uint64_t ms = static_cast<uint64_t>(duration_cast<milliseconds>(*out).count());
  RETURN_IF_ERROR(table.read(key, &ms, 1, kTimeoutMaxMs));
  *out = milliseconds(ms);
  return Status::ok_status();
}

Status read_limits(const TableReader& limits, const TableReader& resync, const TableReader& scrub,
                   craq::StorageServerOptions* out) {
  RETURN_IF_ERROR(limits.check_keys(kLimitsKeys));
  RETURN_IF_ERROR(limits.read("updates_in_flight_max", &out->updates_in_flight_max, 1, kCountMax));
  RETURN_IF_ERROR(read_duration_ms(limits, "forward_timeout_ms", &out->forward_timeout));
  RETURN_IF_ERROR(read_duration_ms(limits, "query_timeout_ms", &out->query_timeout));
  RETURN_IF_ERROR(limits.read("batch_read_items_max", &out->batch_read_items_max, 1, kCountMax));
  RETURN_IF_ERROR(limits.read("read_bytes_max", &out->read_bytes_max, 1, kBytesMax));
  RETURN_IF_ERROR(resync.check_keys(kResyncKeys));
  RETURN_IF_ERROR(
      resync.read("chunks_in_flight_max", &out->resync_chunks_in_flight_max, 1, kCountMax));
  RETURN_IF_ERROR(resync.read("bytes_per_s", &out->resync_bytes_per_s, 0, kBytesMax));
  RETURN_IF_ERROR(resync.read("list_page_max", &out->resync_list_page_max, 1, kCountMax));
  RETURN_IF_ERROR(scrub.check_keys(kScrubKeys));
  RETURN_IF_ERROR(scrub.read("bytes_per_s", &out->scrub_bytes_per_s, 0, kBytesMax));
  uint64_t pass_s = static_cast<uint64_t>(duration_cast<seconds>(out->scrub_pass_interval).count());
  RETURN_IF_ERROR(scrub.read("pass_interval_s", &pass_s, 1, kPassIntervalMaxS));
  out->scrub_pass_interval = seconds(pass_s);
  return Status::ok_status();
}

Status read_target(const TableReader& table, craq::StorageTargetConfig* out) {
  RETURN_IF_ERROR(table.check_keys(kTargetKeys));
  RETURN_IF_ERROR(table.read("path", &out->path));
  if (out->path.empty()) return table.error("path", "must name the target's directory");
  RETURN_IF_ERROR(table.read("disk", &out->disk));
  if (out->disk.empty()) out->disk = out->path;
  chunk::ChunkEngineConfig& engine = out->engine;
  RETURN_IF_ERROR(table.read("reserve_bytes", &engine.reserve_bytes, 0, kBytesMax));
  RETURN_IF_ERROR(table.read("data_bytes_max", &engine.data_bytes_max, 0, kBytesMax));
  RETURN_IF_ERROR(table.read("chunk_size_max_bytes", &engine.chunk_size_max_bytes,
                             chunk::size_class_bytes(0), chunk::kChunkSizeLimitBytes));
  if (!power_of_two(engine.chunk_size_max_bytes)) {
    return table.error("chunk_size_max_bytes",
                       fmt::format("must be a power of two (got {})", engine.chunk_size_max_bytes));
  }
  return table.read("buffered_io", &engine.buffered_io);
}

Status read_targets(const TableReader& root, const std::string& file_name,
                    std::vector<craq::StorageTargetConfig>* out) {
  Status status;
  const toml::value* list = root.find("target", toml::value_t::array, &status);
  RETURN_IF_ERROR(std::move(status));
  if (list == nullptr || list->as_array().empty()) {
    return root.error("target", "is missing: at least one [[target]] with a path is required");
  }
  if (list->as_array().size() > kStorageTargetsMax) {
    return root.error("target", fmt::format("may list at most {} targets (got {})",
                                            kStorageTargetsMax, list->as_array().size()));
  }
  const auto& items = list->as_array();
  for (size_t i = 0; i < items.size(); ++i) {
    std::string prefix = fmt::format("target[{}].", i);
    if (!items[i].is_table()) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("{}: target[{}] must be a table ([[target]])", file_name, i));
    }
    TableReader table(items[i], file_name, prefix);
    craq::StorageTargetConfig target;
    RETURN_IF_ERROR(read_target(table, &target));
    for (size_t j = 0; j < out->size(); ++j) {
      if ((*out)[j].path == target.path) {
        return table.error("path", fmt::format("is also target[{}]'s (\"{}\")", j, target.path));
      }
    }
    out->push_back(std::move(target));
  }
  return Status::ok_status();
}

}  // namespace

Result<StorageConfig> parse_storage_config(std::string_view text, const std::string& file_name) {
  Result<toml::value> parsed = parse_toml(text, file_name);
  if (!parsed.ok()) return parsed.status();
  StorageConfig config;
  TableReader root(*parsed, file_name, "");
  RETURN_IF_ERROR(read_root(root, &config));
  Status status;
  const toml::value& limits = table_or_empty(root, "limits", &status);
  const toml::value& resync = table_or_empty(root, "resync", &status);
  const toml::value& scrub = table_or_empty(root, "scrub", &status);
  RETURN_IF_ERROR(std::move(status));
  RETURN_IF_ERROR(read_limits(TableReader(limits, file_name, "limits."),
                              TableReader(resync, file_name, "resync."),
                              TableReader(scrub, file_name, "scrub."), &config.server));
  RETURN_IF_ERROR(read_targets(root, file_name, &config.server.targets));
  return config;
}

Result<StorageConfig> load_storage_config(const std::string& path) {
  Result<std::string> text = read_config_file(path);
  if (!text.ok()) return text.status();
  return parse_storage_config(*text, path);
}

namespace {

uint64_t ms_of(Duration d) {
  return static_cast<uint64_t>(duration_cast<milliseconds>(d).count());
}

std::string targets_toml(const std::vector<craq::StorageTargetConfig>& targets) {
  std::string out;
  for (const craq::StorageTargetConfig& t : targets) {
    out += fmt::format(
        R"(
[[target]]
# The chunk engine's directory (created if missing); it holds the target's identity file.
path = {}
# The node's name for the disk, shown in `mica targets` (default: the path).
disk = {}
# Free space new data never uses; a cap on all data files (0: none); the largest chunk.
reserve_bytes = {}
data_bytes_max = {}
chunk_size_max_bytes = {}
# Buffered I/O (still synchronous writes) for file systems that refuse O_DIRECT.
buffered_io = {}
)",
        toml_quote(t.path), toml_quote(t.disk.empty() ? t.path : t.disk), t.engine.reserve_bytes,
        t.engine.data_bytes_max, t.engine.chunk_size_max_bytes, t.engine.buffered_io);
  }
  return out;
}

}  // namespace

std::string storage_config_toml(const StorageConfig& c) {
  std::string mgmtd;
  for (const std::string& address : c.mgmtd) {
    mgmtd += (mgmtd.empty() ? "" : ", ") + toml_quote(address);
  }
  const craq::StorageServerOptions& s = c.server;
  return fmt::format(
             R"(# mica-storage configuration (TOML). Unknown keys are refused.

# mgmtd's RPC addresses, tried in turn.
mgmtd = [{}]
# RPC address for clients and the other members of the chains ("host:port"; port 0 picks one).
listen = {}
# The address mgmtd hands out for this node; "" means the bound listen address.
advertise_address = {}
# The node's name in `mica nodes`; "" means the machine's host name.
host_name = {}
# Holds the node's identity file (created if missing).
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
# How often the per-target, resync and scrub metrics are refreshed.
metrics_interval_ms = {}

[limits]
# Updates one target runs at once; beyond it clients are told to back off (kBusy).
updates_in_flight_max = {}
# Time a forward down the chain, and an apportioned query to the tail, may take.
forward_timeout_ms = {}
query_timeout_ms = {}
# Items of one batch read, and bytes one read or batch read may move.
batch_read_items_max = {}
read_bytes_max = {}

[resync]
# Chunks copied at once to a returning successor; bytes per second (0: no cap); page size.
chunks_in_flight_max = {}
bytes_per_s = {}
list_page_max = {}

[scrub]
# Bytes per second the background scrub reads (0: off); pause between passes.
bytes_per_s = {}
pass_interval_s = {}
)",
             mgmtd, toml_quote(c.listen), toml_quote(c.advertise_address), toml_quote(c.host_name),
             toml_quote(c.data_dir), toml_quote(c.http_listen), toml_quote(c.token_file),
             c.allow_unauthenticated, transport_choice_name(c.transport),
             log_level_name(c.log_level), c.metrics_interval_ms, s.updates_in_flight_max,
             ms_of(s.forward_timeout), ms_of(s.query_timeout), s.batch_read_items_max,
             s.read_bytes_max, s.resync_chunks_in_flight_max, s.resync_bytes_per_s,
             s.resync_list_page_max, s.scrub_bytes_per_s,
             duration_cast<seconds>(s.scrub_pass_interval).count()) +
         targets_toml(s.targets);
}

std::string default_storage_config_toml() {
  StorageConfig config;
  craq::StorageTargetConfig target;
  target.path = config.data_dir + "/target-0";
  config.server.targets.push_back(std::move(target));
  return storage_config_toml(config);
}

}  // namespace mica::apps
