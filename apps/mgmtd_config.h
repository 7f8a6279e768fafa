// MgmtdConfig: what `mica-mgmtd --config FILE` reads, with its defaults and its checks.
//
// The file is TOML (toml11). Every field has a default, so an empty file is a valid config
// except for token_file, which a server requires unless allow_unauthenticated is set. Any
// problem is one Status (kInvalidArgument) whose message starts with the file's name and
// names the field ("mgmtd.toml: cluster.lease_timeout_ms must be at least 2 *
// heartbeat_interval_ms + 2000 ms, the nodes' reconnect backoff (got 500 < 4000)"); a key
// the config does not know is refused too, so a typo never silently keeps a default.
// default_mgmtd_config_toml() is the commented file that `--print-default-config` prints; it parses
// back to MgmtdConfig{}. Pure functions except load_mgmtd_config, which reads the file (blocking:
// for startup, never from a task on an executor).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "async/log.h"
#include "async/status.h"
#include "craq/types.h"
#include "net/transport_choice.h"

namespace mica::apps {

// The replica count a cluster config may ask for.
inline constexpr uint32_t kReplicaCountMax = 16;

struct MgmtdConfig {
  // The LMDB environment holding mgmtd's durable state; created if missing.
  std::string data_dir = "mica-mgmtd-data";
  // The RPC address servers and the CLI connect to ("host:port"; port 0 picks one).
  std::string listen = "127.0.0.1:9000";
  // The HTTP endpoint serving /metrics and /health; empty disables it.
  std::string http_listen = "127.0.0.1:9100";
  // The cluster token file (mode 0600 or 0400); required unless allow_unauthenticated,
  // which serves without the token handshake and ignores this.
  std::string token_file = "cluster.token";
  bool allow_unauthenticated = false;
  net::TransportChoice transport = net::TransportChoice::kAuto;
  LogLevel log_level = LogLevel::kInfo;
  // How often mgmtd re-evaluates leases and chain states.
  uint32_t update_interval_ms = 200;
  craq::ClusterConfig cluster;
};

// Parses TOML text; file_name only prefixes messages.
Result<MgmtdConfig> parse_mgmtd_config(std::string_view text, const std::string& file_name);
// Reads and parses the file at path (messages name it as given).
Result<MgmtdConfig> load_mgmtd_config(const std::string& path);
// The commented default file.
std::string default_mgmtd_config_toml();

}  // namespace mica::apps
