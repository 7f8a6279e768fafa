// StorageConfig: what `mica-storage --config FILE` reads, with its defaults and its checks.
//
// The file is TOML (toml11), read with apps/config_reader.h like mgmtd's: every field has a
// default except the targets — at least one [[target]] table with its path is required —
// and token_file, which a server needs unless allow_unauthenticated is set. Any problem is
// one Status (kInvalidArgument) whose message starts with the file's name and names the
// field ("storage.toml: target[1].path is also target[0]'s"); unknown keys are refused.
// default_storage_config_toml() is the commented file `--print-default-config` prints; it
// parses back to StorageConfig{} plus its one example target. Pure functions except
// load_storage_config, which reads the file (blocking: for startup, never on an executor).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "async/log.h"
#include "async/status.h"
#include "craq/storage_server.h"
#include "net/transport_choice.h"

namespace mica::apps {

// Targets one mica-storage process serves; more is a config mistake, not a machine.
inline constexpr size_t kStorageTargetsMax = 256;
// mgmtd addresses one config may list.
inline constexpr size_t kStorageMgmtdAddressesMax = 16;

struct StorageConfig {
  // mgmtd's RPC addresses ("host:port"), tried in turn; at least one.
  std::vector<std::string> mgmtd = {"127.0.0.1:9000"};
  // The RPC address clients and the chain's other nodes connect to; port 0 picks one.
  std::string listen = "127.0.0.1:9200";
  // What mgmtd tells others to connect to; empty: the bound listen address.
  std::string advertise_address;
  // The node's name in `mica nodes`; empty: the machine's host name.
  std::string host_name;
  // Holds the node's identity file; created if missing.
  std::string data_dir = "mica-storage-data";
  // HTTP endpoint for /metrics and /health; empty disables it.
  std::string http_listen = "127.0.0.1:9300";
  std::string token_file = "cluster.token";
  bool allow_unauthenticated = false;
  net::TransportChoice transport = net::TransportChoice::kAuto;
  LogLevel log_level = LogLevel::kInfo;
  // How often the metrics of targets, resync and scrub are refreshed.
  uint32_t metrics_interval_ms = 1000;
  // Server limits; its targets come from the [[target]] tables (server.targets).
  craq::StorageServerOptions server;
};

Result<StorageConfig> parse_storage_config(std::string_view text, const std::string& file_name);
Result<StorageConfig> load_storage_config(const std::string& path);
std::string default_storage_config_toml();

// The text of a config file with these values (a dev cluster's generated configs).
std::string storage_config_toml(const StorageConfig& config);

}  // namespace mica::apps
