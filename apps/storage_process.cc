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

// Blocking: before the executor runs. The node's directory and every target's.
Status make_storage_directories(const StorageConfig& config) {
  std::vector<std::string> dirs{config.data_dir};
  for (const craq::StorageTargetConfig& target : config.server.targets) dirs.push_back(target.path);
  return make_directories(dirs);
}

}  // namespace

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
  ServerSetup<StorageConfig> setup;
  if (std::optional<int> done =
          prepare_server(argc, argv, "mica-storage", default_storage_config_toml(),
                         load_storage_config, make_storage_directories, &setup)) {
    return *done;
  }
  std::unique_ptr<Executor> executor = Executor::create_uring();
  StorageProcess process(std::move(setup.config), std::move(setup.token));
  return executor->block_on(
      serve_until_signal(&process, &*setup.signals, "mica-storage", "storage"));
}

}  // namespace mica::apps
