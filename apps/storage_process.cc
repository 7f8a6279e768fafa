#include "apps/storage_process.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <vector>

#include "apps/cli_args.h"
#include "apps/server_runtime.h"
#include "async/executor.h"
#include "async/log.h"
#include "craq/mgmtd_client.h"
#include "net/authenticated_transport.h"

namespace mica::apps {
namespace {

Status usage_error(std::string message) {
  return Status(StatusCode::kInvalidArgument, std::move(message));
}

std::string machine_host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

Result<std::optional<net::ClusterToken>> load_token(const StorageConfig& config,
                                                    const std::string& file_name) {
  if (config.allow_unauthenticated) return std::optional<net::ClusterToken>();
  Result<net::ClusterToken> token = net::load_cluster_token(config.token_file);
  if (!token.ok()) {
    return Status(token.status().code(),
                  fmt::format("{}: token_file: {}", file_name, token.status().to_string()));
  }
  return std::optional<net::ClusterToken>(std::move(*token));
}

// Blocking: before the executor runs. The node's directory and every target's.
Status make_directories(const StorageConfig& config) {
  std::vector<std::string> dirs{config.data_dir};
  for (const craq::StorageTargetConfig& target : config.server.targets) dirs.push_back(target.path);
  for (const std::string& dir : dirs) {
    std::error_code made;
    std::filesystem::create_directories(dir, made);
    if (made)
      return Status(StatusCode::kIoError, fmt::format("creating {}: {}", dir, made.message()));
  }
  return Status::ok_status();
}

Task<int> serve(StorageProcess* process, StopSignals* signals) {
  auto starting = process->start();
  Status started = co_await std::move(starting);
  if (!started.ok()) {
    MICA_LOG(Error, "storage", "mica-storage cannot start: {}", started);
    auto stopping = process->stop();
    co_await std::move(stopping);
    co_return kExitFailure;
  }
  auto waiting = signals->wait();
  Result<int> signal = co_await std::move(waiting);
  if (signal.ok()) {
    MICA_LOG(Info, "storage", "mica-storage received {}, stopping", signal_name(*signal));
  } else {
    MICA_LOG(Error, "storage", "mica-storage cannot wait for signals ({}), stopping",
             signal.status());
  }
  auto stopping = process->stop();
  co_await std::move(stopping);
  MICA_LOG(Info, "storage", "mica-storage stopped");
  co_return signal.ok() ? kExitOk : kExitFailure;
}

}  // namespace

Result<StorageArgs> parse_storage_args(std::span<const std::string_view> args) {
  StorageArgs out;
  bool have_config = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      out.action = StorageArgs::Action::kHelp;
      return out;
    }
    if (arg == "--print-default-config") {
      out.action = StorageArgs::Action::kPrintDefaultConfig;
    } else if (arg == "--config" || arg.starts_with("--config=")) {
      if (arg == "--config" && i + 1 == args.size()) return usage_error("--config needs a file");
      out.config_path = std::string(arg == "--config" ? args[++i] : arg.substr(9));
      if (out.config_path.empty()) return usage_error("--config needs a file");
      have_config = true;
    } else {
      return usage_error(fmt::format("unknown argument \"{}\"", arg));
    }
  }
  if (out.action == StorageArgs::Action::kRun && !have_config) {
    return usage_error("--config FILE is required");
  }
  return out;
}

std::string storage_usage() {
  return "usage: mica-storage --config FILE\n"
         "       mica-storage --print-default-config   (a commented config with the defaults)\n";
}

Result<craq::StorageNodeOptions> storage_node_options(const StorageConfig& config) {
  craq::StorageNodeOptions options;
  for (const std::string& address : config.mgmtd) {
    Result<SocketAddress> parsed = SocketAddress::parse(address);
    if (!parsed.ok()) return parsed.status();
    options.mgmtd.push_back(*parsed);
  }
  Result<SocketAddress> listen = SocketAddress::parse(config.listen);
  if (!listen.ok()) return listen.status();
  options.listen = *listen;
  options.data_dir = config.data_dir;
  options.advertise_address = config.advertise_address;
  options.host_name = config.host_name.empty() ? machine_host_name() : config.host_name;
  options.server = config.server;
  options.rpc.drain_timeout = std::chrono::seconds(2);
  // A node keeps retrying mgmtd and its peers; the lease covers this backoff.
  options.pool.backoff_max = craq::kMgmtdReconnectBackoffMax;
  return options;
}

StorageProcess::StorageProcess(StorageConfig config, std::optional<net::ClusterToken> token)
    : config_(std::move(config)), token_(std::move(token)) {}

StorageProcess::~StorageProcess() {
  MICA_ASSERT_MSG(node_ == nullptr, "StorageProcess destroyed before stop()");
}

Status StorageProcess::start_http() {
  if (config_.http_listen.empty()) return Status::ok_status();
  Result<SocketAddress> listen = SocketAddress::parse(config_.http_listen);
  if (!listen.ok()) return listen.status();
  craq::StorageNode* node = node_.get();
  http_ = std::make_unique<net::HttpServer>(net::HttpServerOptions{.health = [node] {
    if (node->node() == 0) return Status(StatusCode::kNotServing, "not registered with mgmtd yet");
    return Status::ok_status();
  }});
  Result<SocketAddress> bound = http_->start(*listen);
  if (!bound.ok()) {
    return Status(bound.status().code(),
                  fmt::format("listening for HTTP on {}: {}", config_.http_listen,
                              bound.status().to_string()));
  }
  http_address_ = *bound;
  return Status::ok_status();
}

Task<void> StorageProcess::refresh_metrics_loop() {
  while (true) {
    metrics_->refresh();
    SleepAwaiter pause = sleep_for(std::chrono::milliseconds(config_.metrics_interval_ms));
    Status paused = co_await pause;
    if (!paused.ok()) co_return;  // cancelled by stop()
  }
}

Task<Status> StorageProcess::start() {
  Result<std::unique_ptr<net::Transport>> inner = net::make_transport(config_.transport);
  if (!inner.ok()) co_return inner.status();
  inner_transport_ = std::move(*inner);
  if (token_) {
    transport_ = std::make_unique<net::AuthenticatedTransport>(inner_transport_.get(), *token_);
  }
  Result<craq::StorageNodeOptions> options = storage_node_options(config_);
  if (!options.ok()) co_return options.status();
  node_ = std::make_unique<craq::StorageNode>(
      transport_ ? transport_.get() : inner_transport_.get(), std::move(*options));
  auto starting = node_->start();
  CO_TRY(co_await std::move(starting));
  node_started_ = true;
  metrics_ = std::make_unique<StorageMetrics>(node_->server());
  loops_.spawn(refresh_metrics_loop());
  CO_TRY(start_http());
  MICA_LOG(Info, "storage",
           "mica-storage serving {} target(s) on {} ({}{}), metrics on {}, data in {}, mgmtd {}",
           config_.server.targets.size(), node_->rpc_address().to_string(),
           inner_transport_->name(), token_ ? ", cluster token required" : ", UNAUTHENTICATED",
           http_address_ ? fmt::format("http://{}/metrics", http_address_->to_string()) : "none",
           config_.data_dir, fmt::join(config_.mgmtd, ","));
  co_return Status::ok_status();
}

Task<void> StorageProcess::stop() {
  if (http_) {
    auto shutting = http_->shutdown();
    co_await std::move(shutting);
  }
  http_.reset();
  loops_.cancel();
  auto joining = loops_.join();
  co_await joining;
  metrics_.reset();
  if (node_) {
    auto stopping = node_->stop();
    co_await std::move(stopping);
  }
  node_.reset();
  transport_.reset();
  inner_transport_.reset();
}

int storage_main(int argc, char** argv) {
  // Before anything starts a thread, so that every thread inherits the blocked signals.
  Result<StopSignals> signals = StopSignals::install();
  if (!signals.ok()) {
    std::fprintf(stderr, "mica-storage: %s\n", signals.status().to_string().c_str());
    return kExitFailure;
  }
  std::vector<std::string_view> args(argv + 1, argv + argc);
  Result<StorageArgs> parsed = parse_storage_args(args);
  if (!parsed.ok()) {
    std::fprintf(stderr, "mica-storage: %s\n%s", std::string(parsed.status().message()).c_str(),
                 storage_usage().c_str());
    return kExitUsage;
  }
  if (parsed->action != StorageArgs::Action::kRun) {
    bool help = parsed->action == StorageArgs::Action::kHelp;
    std::fputs(help ? storage_usage().c_str() : default_storage_config_toml().c_str(), stdout);
    return kExitOk;
  }
  Result<StorageConfig> config = load_storage_config(parsed->config_path);
  Result<std::optional<net::ClusterToken>> token =
      config.ok() ? load_token(*config, parsed->config_path) : config.status();
  if (!token.ok()) {
    std::fprintf(stderr, "mica-storage: %s\n", std::string(token.status().message()).c_str());
    return kExitUsage;
  }
  Status logging = log_configure(LogConfig{.level = config->log_level});
  Status made = logging.ok() ? make_directories(*config) : logging;
  if (!made.ok()) {
    std::fprintf(stderr, "mica-storage: %s\n", made.to_string().c_str());
    return kExitFailure;
  }
  std::unique_ptr<Executor> executor = Executor::create_uring();
  StorageProcess process(std::move(*config), std::move(*token));
  return executor->block_on(serve(&process, &*signals));
}

}  // namespace mica::apps
