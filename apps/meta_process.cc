#include "apps/meta_process.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>

#include "apps/cli_args.h"
#include "apps/server_runtime.h"
#include "async/executor.h"
#include "async/log.h"
#include "async/runtime.h"
#include "craq/mgmtd_client.h"
#include "net/authenticated_transport.h"

namespace mica::apps {

Result<meta::MetaNodeOptions> meta_node_options(const MetaConfig& config,
                                                std::vector<Executor*> executors) {
  meta::MetaNodeOptions options;
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
  options.shards = config.served_shards();
  options.server.shard_count = config.shard_count;
  options.server.executors = std::move(executors);
  options.shard_template.readdir_page_max = config.readdir_page_max;
  options.shard_template.requests_kept_max = config.requests_kept_max;
  options.shard_template.batched_commit_delay =
      std::chrono::milliseconds(config.batched_close_delay_ms);
  options.shard_template.env.map_size_bytes = config.map_size_bytes;
  if (config.journal) {
    options.shard_template.env.implementation = kv::Implementation::kJournaled;
    options.server.coordinator_env.implementation = kv::Implementation::kJournaled;
  }
  options.shard_template.gc.files_per_s = config.gc.files_per_s;
  options.shard_template.gc.files_in_flight_max = config.gc.files_in_flight_max;
  options.shard_template.gc.poll_interval_ms = config.gc.poll_interval_ms;
  options.server.leases.lease_ms = config.lease_ms;
  // Every metric of the server, its shards, coordinator and leases carries it (the shards add
  // their "shard" label), and so do apps/meta_metrics.h's series.
  options.server.metric_labels = {{"process", "mica-meta"}};
  options.rpc.drain_timeout = std::chrono::seconds(2);
  // A node keeps retrying mgmtd; the lease covers this backoff.
  options.pool.backoff_max = craq::kMgmtdReconnectBackoffMax;
  return options;
}

MetaProcess::MetaProcess(MetaConfig config, std::optional<net::ClusterToken> token,
                         std::vector<Executor*> executors)
    : config_(std::move(config)), token_(std::move(token)), executors_(std::move(executors)) {}

MetaProcess::~MetaProcess() {
  MICA_ASSERT_MSG(node_ == nullptr, "MetaProcess destroyed before stop()");
}

Status MetaProcess::start_http() {
  if (config_.http_listen.empty()) return Status::ok_status();
  Result<SocketAddress> listen = SocketAddress::parse(config_.http_listen);
  if (!listen.ok()) return listen.status();
  meta::MetaNode* node = node_.get();
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

Task<void> MetaProcess::refresh_metrics_loop() {
  while (true) {
    auto refreshing = metrics_->refresh();
    co_await std::move(refreshing);
    SleepAwaiter pause = sleep_for(std::chrono::milliseconds(config_.metrics_interval_ms));
    Status paused = co_await pause;
    if (!paused.ok()) co_return;  // cancelled by stop()
  }
}

Task<Status> MetaProcess::start() {
  Result<std::unique_ptr<net::Transport>> inner = net::make_transport(config_.transport);
  if (!inner.ok()) co_return inner.status();
  inner_transport_ = std::move(*inner);
  if (token_) {
    transport_ = std::make_unique<net::AuthenticatedTransport>(inner_transport_.get(), *token_);
  }
  Result<meta::MetaNodeOptions> options = meta_node_options(config_, executors_);
  if (!options.ok()) co_return options.status();
  options->services = [this](meta::MetaServer* server) {
    metered_ = std::make_unique<MeteredMetaService>(server);
    std::vector<net::Service*> services = server->services();
    services[0] = metered_->service();  // the MetaService, timed per method
    return services;
  };
  node_ = std::make_unique<meta::MetaNode>(transport_ ? transport_.get() : inner_transport_.get(),
                                           std::move(*options));
  auto starting = node_->start();
  CO_TRY(co_await std::move(starting));
  metrics_ = std::make_unique<MetaMetrics>(node_->server());
  loops_.spawn(refresh_metrics_loop());
  CO_TRY(start_http());
  MICA_LOG(Info, "meta",
           "mica-meta serving shards {} of {} on {} ({}{}), metrics on {}, data in {}, mgmtd {}",
           fmt::join(config_.served_shards(), ","), config_.shard_count,
           node_->rpc_address().to_string(), inner_transport_->name(),
           token_ ? ", cluster token required" : ", UNAUTHENTICATED",
           http_address_ ? fmt::format("http://{}/metrics", http_address_->to_string()) : "none",
           config_.data_dir, fmt::join(config_.mgmtd, ","));
  co_return Status::ok_status();
}

Task<void> MetaProcess::stop() {
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
  metered_.reset();
  transport_.reset();
  inner_transport_.reset();
}

int meta_main(int argc, char** argv) {
  ServerSetup<MetaConfig> setup;
  auto make_dirs = [](const MetaConfig& config) { return make_directories({config.data_dir}); };
  if (std::optional<int> done = prepare_server(argc, argv, "mica-meta", default_meta_config_toml(),
                                               load_meta_config, make_dirs, &setup)) {
    return *done;
  }
  // The main thread's executor runs the RPC server, the node and the signal wait (and
  // shard 0); more executors, when asked for, are threads of a runtime for the other shards.
  std::unique_ptr<Executor> home = Executor::create_uring();
  std::unique_ptr<Runtime> more;
  if (setup.config.executors > 1) {
    more = std::make_unique<Runtime>(RuntimeOptions{.threads = setup.config.executors - 1});
  }
  std::vector<Executor*> executors{home.get()};
  for (size_t i = 0; more && i < more->size(); ++i) executors.push_back(&more->executor(i));
  MetaProcess process(std::move(setup.config), std::move(setup.token), std::move(executors));
  return home->block_on(serve_until_signal(&process, &*setup.signals, "mica-meta", "meta"));
}

}  // namespace mica::apps
