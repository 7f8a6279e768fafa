// mica-mgmtd: the cluster manager as a program — its command line, its startup in order
// (data directory, LMDB environment, transport with the cluster token, Mgmtd, RPC server,
// HTTP metrics endpoint), one log line with its addresses, and on SIGINT or SIGTERM a clean
// shutdown (HTTP, Mgmtd stop, RPC drain, environment close).
//
// mgmtd_main is the whole program (apps/mgmtd_main.cc only calls it); the pieces it is made
// of are here for tests. Exit codes: kExitOk after a signal-driven stop, kExitUsage for bad
// arguments or a bad config (including an unusable token file), kExitFailure when startup
// fails otherwise (the port is taken, the environment cannot be opened). mgmtd_main runs on
// the main thread and blocks until the process should end; MgmtdServer runs on one executor
// (start() and stop() are tasks on it; stop() must follow any start(), failed or not).
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "apps/mgmtd_config.h"
#include "async/socket_address.h"
#include "craq/mgmtd.h"
#include "kv/kv.h"
#include "net/cluster_token.h"
#include "net/http_server.h"
#include "net/rpc_server.h"

namespace mica::apps {

// mgmtd's LMDB map: its state is small (records per node, target and chain).
inline constexpr uint64_t kMgmtdMapSizeBytes = uint64_t{4} << 30;

// The file in data_dir that one running mica-mgmtd holds an flock on: a second process on
// the same directory would be a second manager making decisions, so it refuses to start.
inline constexpr const char* kMgmtdLockFile = "mgmtd.lock";

// Takes the lock (non-blocking; kBusy naming the directory when another process holds it)
// and returns its fd, to keep open for the process's life (the kernel drops the lock when
// the process dies, SIGKILL included). Blocking file calls: for startup.
Result<int> lock_data_dir(const std::string& dir);

struct MgmtdArgs {
  enum class Action { kRun, kPrintDefaultConfig, kHelp };
  Action action = Action::kRun;
  std::string config_path;
};

// `--config FILE`, `--print-default-config`, `--help`; anything else is kInvalidArgument.
Result<MgmtdArgs> parse_mgmtd_args(std::span<const std::string_view> args);
std::string mgmtd_usage();

// What the config file asks of the Mgmtd module.
craq::MgmtdOptions mgmtd_options(const MgmtdConfig& config);

// The token the config names, or none when allow_unauthenticated is set. A token file that
// cannot be used (missing, mode not 0600/0400, too short) is an error naming the config
// file and the field. Blocking file I/O: call before the executor runs.
Result<std::optional<net::ClusterToken>> load_config_token(const MgmtdConfig& config,
                                                           const std::string& file_name);

class MgmtdServer {
 public:
  MgmtdServer(MgmtdConfig config, std::optional<net::ClusterToken> token);
  MgmtdServer(const MgmtdServer&) = delete;
  MgmtdServer& operator=(const MgmtdServer&) = delete;
  ~MgmtdServer();

  // Opens everything in order and logs the start line; the first failure is returned and
  // what was opened stays for stop() to close.
  Task<Status> start();
  // Closes what start() opened: HTTP, Mgmtd stop, RPC drain, the environment. Idempotent.
  Task<void> stop();

  const SocketAddress& rpc_address() const { return rpc_address_; }
  const std::optional<SocketAddress>& http_address() const { return http_address_; }

 private:
  Status start_transport();
  Status start_http();

  MgmtdConfig config_;
  std::optional<net::ClusterToken> token_;
  std::unique_ptr<kv::Env> env_;
  std::unique_ptr<net::Transport> inner_transport_;
  std::unique_ptr<net::Transport> transport_;  // the authenticated one, or none
  std::unique_ptr<craq::Mgmtd> mgmtd_;
  std::unique_ptr<net::RpcServer> rpc_;
  std::unique_ptr<net::HttpServer> http_;
  SocketAddress rpc_address_;
  std::optional<SocketAddress> http_address_;
  bool mgmtd_started_ = false;
};

int mgmtd_main(int argc, char** argv);

}  // namespace mica::apps
