// MetaNode: the wiring of one mica-meta process (meta/meta_node.h).
#include "meta/meta_node.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>

#include "async/file.h"
#include "async/log.h"

namespace mica::meta {

MetaNode::MetaNode(net::Transport* transport, MetaNodeOptions options)
    : transport_(transport), options_(std::move(options)) {
  MICA_ASSERT_MSG(!options_.mgmtd.empty(), "a meta node needs an mgmtd address");
}

MetaNode::~MetaNode() {
  MICA_ASSERT_MSG(server_ == nullptr, "MetaNode destroyed before stop()");
}

craq::NodeId MetaNode::node() const {
  return agent_ ? agent_->node() : identity_.node;
}

// Through the runtime's file calls, so a simulated host makes them on its own disk.
Task<Status> MetaNode::make_dirs() {
  std::vector<std::string> dirs;
  for (const ShardOptions& shard : options_.server.shards) dirs.push_back(shard.dir);
  if (!options_.server.coordinator_dir.empty()) dirs.push_back(options_.server.coordinator_dir);
  for (const std::string& dir : dirs) {
    auto making = ensure_directory(dir);
    CO_TRY(co_await std::move(making));
  }
  co_return Status::ok_status();
}

Task<Status> MetaNode::start() {
  auto loading = craq::load_or_create_node_identity(options_.data_dir);
  CO_TRY_ASSIGN(identity_, co_await std::move(loading));
  if (options_.wall_clock && !options_.shard_template.clock_ns) {
    options_.shard_template.clock_ns = [] {
      return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
    };
  }
  if (options_.server.shards.empty()) {
    for (ShardId id : options_.shards) {
      ShardOptions shard = options_.shard_template;
      shard.shard = id;
      shard.dir = fmt::format("{}/shard-{}", options_.data_dir, id);
      options_.server.shards.push_back(std::move(shard));
    }
  }
  if (options_.server.coordinator_dir.empty())
    options_.server.coordinator_dir = options_.data_dir + "/coordinator";
  auto making = make_dirs();
  CO_TRY(co_await std::move(making));
  pool_ = std::make_unique<net::ConnectionPool>(transport_, options_.pool);
  craq::RoutingClientOptions routing = options_.routing;
  routing.mgmtd = options_.mgmtd;
  routing.on_update = [this](const std::shared_ptr<const craq::RoutingSnapshot>& snapshot) {
    if (server_) server_->apply_routing(snapshot);
  };
  routing_ = std::make_unique<craq::RoutingClient>(pool_.get(), std::move(routing));
  storage_ = std::make_unique<craq::StorageClient>(pool_.get(), transport_, routing_.get(),
                                                   options_.storage);
  auto opening = MetaServer::open_server(options_.server, pool_.get(), storage_.get());
  CO_TRY_ASSIGN(server_, co_await std::move(opening));
  server_->set_node(identity_.node);
  rpc_ = std::make_unique<net::RpcServer>(transport_, options_.rpc);
  for (net::Service* service : server_->services()) rpc_->add_service(service);
  Result<SocketAddress> bound = rpc_->start(options_.listen);
  if (!bound.ok())
    co_return Status(bound.status().code(),
                     fmt::format("listening on {}: {}", options_.listen.to_string(),
                                 bound.status().to_string()));
  rpc_address_ = *bound;
  routing_->start();
  craq::NodeAgentOptions agent = options_.agent;
  agent.mgmtd = options_.mgmtd;
  agent.kind = craq::NodeKind::kMeta;
  agent.host_name = options_.host_name;
  agent.rpc_address =
      options_.advertise_address.empty() ? rpc_address_.to_string() : options_.advertise_address;
  agent.node = identity_.node;
  agent.identity = identity_.identity;
  agent.meta_shards.assign(options_.shards.begin(), options_.shards.end());
  if (agent.meta_shards.empty())
    for (const ShardOptions& shard : options_.server.shards)
      agent.meta_shards.push_back(shard.shard);
  agent.reports = [] { return std::vector<craq::TargetReport>{}; };
  agent.on_registered = [this](const craq::RegisterResponse& response) {
    return persist_registration(response);
  };
  agent.routing = routing_.get();
  agent_ = std::make_unique<craq::NodeAgent>(pool_.get(), std::move(agent));
  agent_->start();
  co_return Status::ok_status();
}

Task<Status> MetaNode::persist_registration(craq::RegisterResponse response) {
  if (response.node != identity_.node) {
    craq::NodeIdentity saved{.node = response.node, .identity = identity_.identity};
    auto saving = craq::save_node_identity(options_.data_dir, saved);
    CO_TRY(co_await std::move(saving));
    identity_ = std::move(saved);
  }
  server_->set_node(response.node);
  MICA_LOG(Info, "meta", "node {} registered with shards {}, routing version {}", response.node,
           fmt::join(server_->shard_ids(), ","), response.routing_version);
  co_return Status::ok_status();
}

Task<Status> MetaNode::wait_registered(TimePoint deadline) {
  if (!agent_) co_return Status(StatusCode::kClosed, "the meta node is not started");
  auto waiting = agent_->wait_registered(deadline);
  co_return co_await std::move(waiting);
}

Task<void> MetaNode::stop() {
  if (agent_) {
    auto stopping = agent_->stop();
    co_await std::move(stopping);
  }
  if (routing_) {
    auto stopping = routing_->stop();
    co_await std::move(stopping);
  }
  if (rpc_) {
    auto draining = rpc_->shutdown();
    co_await std::move(draining);
  }
  if (server_) {
    auto closing = server_->close_shards();
    Status closed = co_await std::move(closing);
    if (!closed.ok()) MICA_LOG(Error, "meta", "closing the shards: {}", closed);
  }
  agent_.reset();
  rpc_.reset();
  server_.reset();
  storage_.reset();
  routing_.reset();
  if (pool_) {
    auto closing = pool_->close();
    co_await std::move(closing);
  }
  pool_.reset();
}

}  // namespace mica::meta
