// The `mica` command line: its grammar, its defaults and its usage text.
//
//   mica [--mgmtd HOST:PORT] [--token-file FILE | --no-token] [--dir DIR]
//        [--transport tcp|rdma|auto] [--json] COMMAND [ARGS]
//
// parse_cli_args turns the arguments (without the program name) and the environment's
// defaults (MICA_MGMTD, MICA_TOKEN_FILE) into a CliInvocation, or into a kInvalidArgument
// Status whose message says what is wrong; the caller prints it with cli_usage() on
// stderr and exits with kCliExitUsage. Nothing here does I/O: pure functions, any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "async/status.h"
#include "craq/mgmtd_service.h"
#include "net/transport_choice.h"

namespace mica::apps {

// Exit codes of the apps: success, a failure at run time (mgmtd unreachable or refusing a
// command), and a usage or configuration error.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

inline constexpr std::string_view kDefaultMgmtdAddress = "127.0.0.1:9000";
inline constexpr std::string_view kDefaultTokenFile = "cluster.token";
// Node ids `chain-table create --nodes` accepts in one list.
inline constexpr size_t kCliNodesMax = 4096;
// `mica dev up`: its folder by default, and the storage processes it may start.
inline constexpr std::string_view kDefaultDevDir = "mica-dev";
inline constexpr uint32_t kDevStorageDefault = 3;
inline constexpr uint32_t kDevStorageMax = 16;
// `mica dev up --targets K`: chain targets per storage process (K chains of 3 replicas on
// 3 processes: what striping over several chains needs), at most kDevTargetsMax.
inline constexpr uint32_t kDevTargetsDefault = 1;
inline constexpr uint32_t kDevTargetsMax = 8;
// The shards the dev cluster's one meta process serves.
inline constexpr uint32_t kDevMetaShardsDefault = 4;
// Bytes one `mica put` or `mica get` moves (a chunk's largest size).
inline constexpr uint32_t kCliDataBytesMax = 64u << 20;

enum class CliCommand {
  kHelp,
  kStatus,
  kNodes,
  kTargets,
  kChains,
  kCreateChainTable,
  kTargetOffline,
  kTargetOnline,
  kTargetReplace,
  kChainPromote,
  kTokenGenerate,
  kDevUp,
  kDevDown,
  kPut,
  kGet,
  // The namespace smoke commands (apps/cli_meta.h): through the metadata service.
  kLs,
  kStat,
  kMkdir,
  kRm,
};

struct CliInvocation {
  std::string mgmtd{kDefaultMgmtdAddress};
  std::string token_file{kDefaultTokenFile};
  bool no_token = false;
  bool json = false;
  net::TransportChoice transport = net::TransportChoice::kAuto;
  // Time for connecting and for the one call a command makes.
  uint32_t timeout_ms = 10000;

  CliCommand command = CliCommand::kHelp;
  craq::CreateChainTableRequest create;  // chain-table create
  craq::TargetId target = 0;             // target offline/online/replace (OLD), chain promote
  craq::TargetId new_target = 0;         // target replace
  craq::ChainId chain = 0;               // chain promote
  std::string path;                      // token generate
  // --dir: a dev cluster's folder. For dev up/down the folder to use (default
  // kDefaultDevDir); for the other commands, where mgmtd's address and the token are read
  // from (apps/dev_cluster.h), instead of --mgmtd and --token-file.
  std::string dir;
  uint32_t storage_count = kDevStorageDefault;     // dev up --storage N
  uint32_t targets_per_node = kDevTargetsDefault;  // dev up --targets K
  std::string mount;  // dev up --mount MNT: also mount the cluster there (apps/dev_mount.h)

  // put / get: the chunk range.
  craq::ChainId chain_id = 0;
  uint64_t inode = 0;
  uint32_t chunk_index = 0;
  uint32_t offset = 0;
  uint32_t length = 0;    // get
  std::string data;       // put --data
  std::string data_file;  // put --file
  std::string out_file;   // get --out (empty: stdout)

  // ls / stat / mkdir / rm: an absolute path in the namespace.
  std::string fs_path;
};

// The environment's say, read by the caller (getenv): empty means unset.
struct CliEnvironment {
  std::string mgmtd;       // MICA_MGMTD
  std::string token_file;  // MICA_TOKEN_FILE
};

Result<CliInvocation> parse_cli_args(std::span<const std::string_view> args,
                                     const CliEnvironment& environment);
std::string cli_usage();
// Whether the command talks to mgmtd (all but help, token generate and dev up/down).
bool cli_needs_mgmtd(CliCommand command);

}  // namespace mica::apps
