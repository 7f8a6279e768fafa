// MetaConfig: what `mica-meta --config FILE` reads, with its defaults and its checks.
//
// The file is TOML (toml11), read with apps/config_reader.h like mgmtd's and mica-storage's:
// every field has a default (an empty file serves shards 0..3 of a 4-shard namespace from
// ./mica-meta-data), except token_file, which a server needs unless allow_unauthenticated
// is set. Any problem is one Status (kInvalidArgument) whose message starts with the file's
// name and names the key ("meta.toml: shards[2] is 9, beyond shard_count 4"); unknown keys,
// wrong types and out-of-range values are refused. default_meta_config_toml() is the
// commented file `--print-default-config` prints; it parses back to MetaConfig{}. Pure
// functions except load_meta_config, which reads the file (blocking: for startup only).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "async/log.h"
#include "async/status.h"
#include "meta/types.h"
#include "net/transport_choice.h"

namespace mica::apps {

// mgmtd addresses one config may list.
inline constexpr size_t kMetaMgmtdAddressesMax = 16;
// Executors one mica-meta process may run its shards on.
inline constexpr uint32_t kMetaExecutorsMax = 64;
// Shards one namespace may have: far below meta::kShardsMax, whose top ids stay unused.
inline constexpr uint32_t kMetaShardCountMax = 4096;
inline constexpr uint32_t kMetaShardCountDefault = 4;

struct MetaGcConfig {
  // Files whose chunks the background collector removes per second (per process).
  uint32_t files_per_s = 200;
  // Files whose chunks are being removed at once.
  uint32_t files_in_flight_max = 8;
  // How often an idle collector looks for newly queued files.
  uint32_t poll_interval_ms = 1000;
};

struct MetaConfig {
  // mgmtd's RPC addresses ("host:port"), tried in turn; at least one.
  std::vector<std::string> mgmtd = {"127.0.0.1:9000"};
  // The RPC address clients connect to; port 0 picks one.
  std::string listen = "127.0.0.1:9400";
  // What mgmtd tells clients to connect to; empty: the bound listen address.
  std::string advertise_address;
  // The node's name in `mica nodes`; empty: the machine's host name.
  std::string host_name;
  // Holds the node's identity file and one kv/ environment per shard (shard-N/).
  std::string data_dir = "mica-meta-data";
  // HTTP endpoint for /metrics and /health; empty disables it.
  std::string http_listen = "127.0.0.1:9500";
  std::string token_file = "cluster.token";
  bool allow_unauthenticated = false;
  net::TransportChoice transport = net::TransportChoice::kAuto;
  LogLevel log_level = LogLevel::kInfo;
  // How many shards the namespace has (new directories spread over all of them) and which
  // of them this process serves (default: all, the one-process cluster).
  uint32_t shard_count = kMetaShardCountDefault;
  std::vector<meta::ShardId> shards;  // empty: 0 .. shard_count - 1
  // Executor threads the shards are spread over (shard i on executor i mod executors).
  uint32_t executors = 1;
  // A client lease: sessions of a client silent for this long end.
  uint32_t lease_ms = 10000;
  // Entries one readdir page returns at most; recent RequestTag answers kept per shard.
  uint32_t readdir_page_max = 1024;
  uint32_t requests_kept_max = 1 << 16;
  // How long a close nobody waits on (the mount's RELEASE) may wait to share the next
  // commit of its shard (0: it commits at once).
  uint32_t batched_close_delay_ms = 2;
  // A shard's kv/ environment may grow to this many bytes.
  uint64_t map_size_bytes = uint64_t{1} << 34;
  // Shards (and the coordinator) commit through kv/'s write-ahead journal
  // (kv/journaled_env.h): one sequential write and one flush per commit. false: LMDB's own.
  bool journal = true;
  // How often the metrics gauges (inodes, GC queue) are refreshed.
  uint32_t metrics_interval_ms = 1000;
  MetaGcConfig gc;

  // The shards served: `shards`, or every shard when it is empty.
  std::vector<meta::ShardId> served_shards() const;
};

Result<MetaConfig> parse_meta_config(std::string_view text, const std::string& file_name);
Result<MetaConfig> load_meta_config(const std::string& path);
std::string default_meta_config_toml();

// The text of a config file with these values (a dev cluster's generated config).
std::string meta_config_toml(const MetaConfig& config);

}  // namespace mica::apps
