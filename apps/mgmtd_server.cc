#include "apps/mgmtd_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "apps/cli_args.h"
#include "apps/server_runtime.h"
#include "async/executor.h"
#include "async/log.h"
#include "net/authenticated_transport.h"

namespace mica::apps {
namespace {

Status usage_error(std::string message) {
  return Status(StatusCode::kInvalidArgument, std::move(message));
}

// Wall-clock ms for NodeInfo::registered_at_ms (shown to people; never used to decide).
uint64_t wall_clock_ms() {
  auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count());
}

// The program once its config and token are loaded: serve until a stop signal.
Task<int> serve(MgmtdServer* server, StopSignals* signals) {
  auto starting = server->start();
  Status started = co_await std::move(starting);
  if (!started.ok()) {
    MICA_LOG(Error, "mgmtd", "mica-mgmtd cannot start: {}", started);
    auto stopping = server->stop();
    co_await std::move(stopping);
    co_return kExitFailure;
  }
  auto waiting = signals->wait();
  Result<int> signal = co_await std::move(waiting);
  if (signal.ok()) {
    MICA_LOG(Info, "mgmtd", "mica-mgmtd received {}, stopping", signal_name(*signal));
  } else {
    MICA_LOG(Error, "mgmtd", "mica-mgmtd cannot wait for signals ({}), stopping", signal.status());
  }
  auto stopping = server->stop();
  co_await std::move(stopping);
  MICA_LOG(Info, "mgmtd", "mica-mgmtd stopped");
  co_return signal.ok() ? kExitOk : kExitFailure;
}

}  // namespace

Result<int> lock_data_dir(const std::string& dir) {
  std::string path = dir + "/" + kMgmtdLockFile;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::from_errno(errno, path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    ::close(fd);
    if (error == EWOULDBLOCK) {
      return Status(StatusCode::kBusy,
                    fmt::format("{} is in use by another mica-mgmtd (it holds {})", dir, path));
    }
    return Status::from_errno(error, path);
  }
  return fd;
}

Result<MgmtdArgs> parse_mgmtd_args(std::span<const std::string_view> args) {
  MgmtdArgs out;
  bool have_config = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      out.action = MgmtdArgs::Action::kHelp;
      return out;
    }
    if (arg == "--print-default-config") {
      out.action = MgmtdArgs::Action::kPrintDefaultConfig;
    } else if (arg == "--config" || arg.starts_with("--config=")) {
      if (arg == "--config" && i + 1 == args.size()) return usage_error("--config needs a file");
      out.config_path = std::string(arg == "--config" ? args[++i] : arg.substr(9));
      if (out.config_path.empty()) return usage_error("--config needs a file");
      have_config = true;
    } else {
      return usage_error(fmt::format("unknown argument \"{}\"", arg));
    }
  }
  if (out.action == MgmtdArgs::Action::kRun && !have_config) {
    return usage_error("--config FILE is required");
  }
  return out;
}

std::string mgmtd_usage() {
  return "usage: mica-mgmtd --config FILE\n"
         "       mica-mgmtd --print-default-config   (a commented config with the defaults)\n";
}

craq::MgmtdOptions mgmtd_options(const MgmtdConfig& config) {
  craq::MgmtdOptions options;
  options.config = config.cluster;
  options.update_interval = std::chrono::milliseconds(config.update_interval_ms);
  options.wall_clock_ms = &wall_clock_ms;
  return options;
}

Result<std::optional<net::ClusterToken>> load_config_token(const MgmtdConfig& config,
                                                           const std::string& file_name) {
  if (config.allow_unauthenticated) return std::optional<net::ClusterToken>();
  Result<net::ClusterToken> token = net::load_cluster_token(config.token_file);
  if (!token.ok()) {
    return Status(token.status().code(),
                  fmt::format("{}: token_file: {}", file_name, token.status().to_string()));
  }
  return std::optional<net::ClusterToken>(std::move(*token));
}

MgmtdServer::MgmtdServer(MgmtdConfig config, std::optional<net::ClusterToken> token)
    : config_(std::move(config)), token_(std::move(token)) {}

MgmtdServer::~MgmtdServer() {
  MICA_ASSERT_MSG(env_ == nullptr, "MgmtdServer destroyed before stop()");
}

Status MgmtdServer::start_transport() {
  Result<std::unique_ptr<net::Transport>> inner = net::make_transport(config_.transport);
  if (!inner.ok()) return inner.status();
  inner_transport_ = std::move(*inner);
  if (token_) {
    transport_ = std::make_unique<net::AuthenticatedTransport>(inner_transport_.get(), *token_);
  }
  rpc_ = std::make_unique<net::RpcServer>(
      transport_ ? transport_.get() : inner_transport_.get(),
      net::RpcServerOptions{.drain_timeout = std::chrono::seconds(2)});
  rpc_->add_service(mgmtd_->service());
  Result<SocketAddress> listen = SocketAddress::parse(config_.listen);
  if (!listen.ok()) return listen.status();
  Result<SocketAddress> bound = rpc_->start(*listen);
  if (!bound.ok()) {
    return Status(bound.status().code(),
                  fmt::format("listening on {}: {}", config_.listen, bound.status().to_string()));
  }
  rpc_address_ = *bound;
  return Status::ok_status();
}

Status MgmtdServer::start_http() {
  if (config_.http_listen.empty()) return Status::ok_status();
  Result<SocketAddress> listen = SocketAddress::parse(config_.http_listen);
  if (!listen.ok()) return listen.status();
  http_ = std::make_unique<net::HttpServer>();
  Result<SocketAddress> bound = http_->start(*listen);
  if (!bound.ok()) {
    return Status(bound.status().code(),
                  fmt::format("listening for HTTP on {}: {}", config_.http_listen,
                              bound.status().to_string()));
  }
  http_address_ = *bound;
  return Status::ok_status();
}

Task<Status> MgmtdServer::start() {
  auto opening =
      kv::Env::open(config_.data_dir, kv::EnvOptions{.implementation = kv::Implementation::kLmdb,
                                                     .map_size_bytes = kMgmtdMapSizeBytes});
  Result<std::unique_ptr<kv::Env>> env = co_await std::move(opening);
  if (!env.ok()) {
    co_return Status(env.status().code(), fmt::format("opening the environment in {}: {}",
                                                      config_.data_dir, env.status().to_string()));
  }
  env_ = std::move(*env);
  auto loading = craq::Mgmtd::open(env_.get(), mgmtd_options(config_));
  CO_TRY_ASSIGN(mgmtd_, co_await std::move(loading));
  mgmtd_->start();
  mgmtd_started_ = true;
  CO_TRY(start_transport());
  CO_TRY(start_http());
  MICA_LOG(Info, "mgmtd",
           "mica-mgmtd serving on {} ({}{}), metrics on {}, data in {}, routing version {}",
           rpc_address_.to_string(), inner_transport_->name(),
           token_ ? ", cluster token required" : ", UNAUTHENTICATED",
           http_address_ ? fmt::format("http://{}/metrics", http_address_->to_string()) : "none",
           config_.data_dir, mgmtd_->routing_version());
  co_return Status::ok_status();
}

Task<void> MgmtdServer::stop() {
  if (http_) {
    auto shutting = http_->shutdown();
    co_await std::move(shutting);
  }
  http_.reset();
  // Mgmtd first: its stop() answers the routing long polls at once (and later ones do not
  // wait), so the RPC drain that follows is not held up by them for drain_timeout. Requests
  // still arriving meanwhile are served normally; the Mgmtd dies only after the drain.
  if (mgmtd_ && mgmtd_started_) {
    auto stopping = mgmtd_->stop();
    co_await std::move(stopping);
  }
  if (rpc_) {
    auto draining = rpc_->shutdown();
    co_await std::move(draining);
  }
  rpc_.reset();
  mgmtd_.reset();
  transport_.reset();
  inner_transport_.reset();
  if (env_) {
    auto closing = env_->close();
    Status closed = co_await std::move(closing);
    if (!closed.ok()) MICA_LOG(Error, "mgmtd", "closing the environment: {}", closed);
  }
  env_.reset();
}

int mgmtd_main(int argc, char** argv) {
  // Before anything starts a thread, so that every thread inherits the blocked signals.
  Result<StopSignals> signals = StopSignals::install();
  if (!signals.ok()) {
    std::fprintf(stderr, "mica-mgmtd: %s\n", signals.status().to_string().c_str());
    return kExitFailure;
  }
  std::vector<std::string_view> args(argv + 1, argv + argc);
  Result<MgmtdArgs> parsed = parse_mgmtd_args(args);
  if (!parsed.ok()) {
    std::fprintf(stderr, "mica-mgmtd: %s\n%s", std::string(parsed.status().message()).c_str(),
                 mgmtd_usage().c_str());
    return kExitUsage;
  }
  if (parsed->action != MgmtdArgs::Action::kRun) {
    bool help = parsed->action == MgmtdArgs::Action::kHelp;
    std::fputs(help ? mgmtd_usage().c_str() : default_mgmtd_config_toml().c_str(), stdout);
    return kExitOk;
  }
  Result<MgmtdConfig> config = load_mgmtd_config(parsed->config_path);
  Result<std::optional<net::ClusterToken>> token =
      config.ok() ? load_config_token(*config, parsed->config_path) : config.status();
  if (!token.ok()) {
    std::fprintf(stderr, "mica-mgmtd: %s\n", std::string(token.status().message()).c_str());
    return kExitUsage;
  }
  Status logging = log_configure(LogConfig{.level = config->log_level});
  std::error_code made;
  std::filesystem::create_directories(config->data_dir, made);
  if (!logging.ok() || made) {
    std::string why = made ? fmt::format("creating {}: {}", config->data_dir, made.message())
                           : logging.to_string();
    std::fprintf(stderr, "mica-mgmtd: %s\n", why.c_str());
    return kExitFailure;
  }
  Result<int> lock = lock_data_dir(config->data_dir);  // held until the process ends
  if (!lock.ok()) {
    std::fprintf(stderr, "mica-mgmtd: %s\n", lock.status().to_string().c_str());
    return kExitFailure;
  }
  std::unique_ptr<Executor> executor = Executor::create_uring();
  MgmtdServer server(std::move(*config), std::move(*token));
  return executor->block_on(serve(&server, &*signals));
}

}  // namespace mica::apps
