#include "craq/storage_node.h"

#include <fmt/format.h>

#include "async/executor.h"
#include "async/log.h"
#include "async/metrics.h"
#include "craq/node_identity.h"

namespace mica::craq {

// The StorageService as the RPC server sees it: every call goes to the StorageServer, and
// the client-facing ones (update, read, batch_read) and forward have their latency recorded
// in mica_storage_node_request_seconds{method=...}. Kept here rather than in the server so that
// every part of the data path is measured the same way, from request to answer.
class StorageNode::MeteredService {
 public:
  MeteredService(StorageServer* server, const MetricLabels& labels) : server_(server) {
    auto histogram = [&](const char* method) {
      MetricLabels with = labels;
      with.emplace_back("method", method);
      return &metrics().histogram("storage_node", "request_seconds",
                                  "Time from a storage request's arrival to its answer.", with);
    };
    update_ = histogram("update");
    forward_ = histogram("forward");
    read_ = histogram("read");
    batch_read_ = histogram("batch_read");
  }

  Task<Result<UpdateResponse>> update(UpdateRequest request, net::CallContext* context) {
    auto calling = server_->update(std::move(request), context);
    return timed(update_, std::move(calling));
  }
  Task<Result<ForwardResponse>> forward(ForwardRequest request, net::CallContext* context) {
    auto calling = server_->forward(std::move(request), context);
    return timed(forward_, std::move(calling));
  }
  Task<Result<ReadResponse>> read(ReadRequest request, net::CallContext* context) {
    auto calling = server_->read(std::move(request), context);
    return timed(read_, std::move(calling));
  }
  Task<Result<BatchReadResponse>> batch_read(BatchReadRequest request, net::CallContext* context) {
    auto calling = server_->batch_read(std::move(request), context);
    return timed(batch_read_, std::move(calling));
  }
  Task<Result<QueryVersionResponse>> query_version(QueryVersionRequest request,
                                                   net::CallContext* context) {
    return server_->query_version(std::move(request), context);
  }
  Task<Result<SyncListResponse>> sync_list(SyncListRequest request, net::CallContext* context) {
    return server_->sync_list(std::move(request), context);
  }
  Task<Result<SyncAck>> sync_write(SyncWriteRequest request, net::CallContext* context) {
    return server_->sync_write(std::move(request), context);
  }
  Task<Result<SyncAck>> sync_remove(SyncRemoveRequest request, net::CallContext* context) {
    return server_->sync_remove(std::move(request), context);
  }
  Task<Result<SyncDoneResponse>> sync_done(SyncDoneRequest request, net::CallContext* context) {
    return server_->sync_done(std::move(request), context);
  }
  Task<Result<ProgressResponse>> progress(ProgressRequest request, net::CallContext* context) {
    return server_->progress(std::move(request), context);
  }
  Task<Result<StatChunkResponse>> stat_chunk(StatChunkRequest request, net::CallContext* context) {
    return server_->stat_chunk(std::move(request), context);
  }
  Task<Result<LastChunkResponse>> last_chunk(LastChunkRequest request, net::CallContext* context) {
    return server_->last_chunk(std::move(request), context);
  }

 private:
  // The call is a lazy task: it starts when awaited here, so the clock brackets it exactly.
  template <class Response>
  static Task<Result<Response>> timed(Histogram* histogram, Task<Result<Response>> call) {
    TimePoint start = Executor::current()->now();
    Result<Response> result = co_await std::move(call);
    histogram->record(Executor::current()->now() - start);
    co_return result;
  }

  StorageServer* server_;
  Histogram* update_;
  Histogram* forward_;
  Histogram* read_;
  Histogram* batch_read_;
};

StorageNode::StorageNode(net::Transport* transport, StorageNodeOptions options)
    : transport_(transport), options_(std::move(options)) {
  MICA_ASSERT_MSG(!options_.mgmtd.empty(), "a storage node needs an mgmtd address");
}

StorageNode::~StorageNode() {
  MICA_ASSERT_MSG(server_ == nullptr, "StorageNode destroyed before stop()");
}

NodeId StorageNode::node() const {
  return agent_ ? agent_->node() : identity_.node;
}

Task<Status> StorageNode::start() {
  auto loading = load_or_create_node_identity(options_.data_dir);
  CO_TRY_ASSIGN(identity_, co_await std::move(loading));
  pool_ = std::make_unique<net::ConnectionPool>(transport_, options_.pool);
  StorageServerOptions server_options = options_.server;
  server_options.node = identity_.node;
  auto opening = StorageServer::open(std::move(server_options), pool_.get(), transport_);
  CO_TRY_ASSIGN(server_, co_await std::move(opening));
  metered_ = std::make_unique<MeteredService>(server_.get(), options_.server.metric_labels);
  service_ = std::make_unique<net::Service>(net::Service::bind<StorageService>(metered_.get()));
  rpc_ = std::make_unique<net::RpcServer>(transport_, options_.rpc);
  rpc_->add_service(service_.get());
  Result<SocketAddress> bound = rpc_->start(options_.listen);
  if (!bound.ok()) {
    co_return Status(bound.status().code(),
                     fmt::format("listening on {}: {}", options_.listen.to_string(),
                                 bound.status().to_string()));
  }
  rpc_address_ = *bound;
  server_->start();
  server_started_ = true;
  start_routing();
  start_agent();
  co_return Status::ok_status();
}

void StorageNode::start_routing() {
  RoutingClientOptions routing = options_.routing;
  routing.mgmtd = options_.mgmtd;
  StorageServer* server = server_.get();
  routing.on_update = [server](const std::shared_ptr<const RoutingSnapshot>& snapshot) {
    server->apply_routing(*snapshot);
  };
  routing_ = std::make_unique<RoutingClient>(pool_.get(), std::move(routing));
  routing_->start();
}

void StorageNode::start_agent() {
  NodeAgentOptions agent = options_.agent;
  agent.mgmtd = options_.mgmtd;
  agent.kind = NodeKind::kStorage;
  agent.host_name = options_.host_name;
  agent.rpc_address =
      options_.advertise_address.empty() ? rpc_address_.to_string() : options_.advertise_address;
  agent.node = identity_.node;
  agent.identity = identity_.identity;
  StorageServer* server = server_.get();
  agent.reports = [server] { return server->reports(); };
  agent.on_registered = [this](const RegisterResponse& response) {
    return persist_registration(response);
  };
  agent.routing = routing_.get();
  agent_ = std::make_unique<NodeAgent>(pool_.get(), std::move(agent));
  NodeAgent* node_agent = agent_.get();
  server->set_read_guard([node_agent, server]() -> Status {
    if (Executor::current()->now() >= node_agent->lease_expiry())
      return Status(StatusCode::kNotServing,
                    "no mgmtd lease: this node may have been dropped from its chains");
    if (server->targets().routing_version() < node_agent->known_routing_version())
      return Status(StatusCode::kNotServing, fmt::format("routing version {} is behind mgmtd's {}",
                                                         server->targets().routing_version(),
                                                         node_agent->known_routing_version()));
    return Status();
  });
  agent_->start();
}

// Node id first (so a crash in between re-registers with it and gets the same target ids
// back by identity), then the targets' ids, then the server learns who it is.
Task<Status> StorageNode::persist_registration(RegisterResponse response) {
  if (response.node != identity_.node) {
    NodeIdentity saved{.node = response.node, .identity = identity_.identity};
    auto saving = save_node_identity(options_.data_dir, saved);
    CO_TRY(co_await std::move(saving));
    identity_ = std::move(saved);
  }
  std::map<std::string, TargetId> ids = agent_->target_ids();
  auto assigning = server_->assign_ids(ids);
  CO_TRY(co_await std::move(assigning));
  server_->set_node(response.node);
  // A snapshot that arrived before the targets had their ids placed none of them in its
  // chains; no newer one may come for a long time (the chain table may already exist).
  if (RoutingClient::SnapshotPtr routing = routing_->current()) server_->apply_routing(*routing);
  MICA_LOG(Info, "storage", "node {} registered with {} target(s), routing version {}",
           response.node, ids.size(), response.routing_version);
  co_return Status::ok_status();
}

Task<Status> StorageNode::wait_registered(TimePoint deadline) {
  if (!agent_) co_return Status(StatusCode::kClosed, "the storage node is not started");
  auto waiting = agent_->wait_registered(deadline);
  co_return co_await std::move(waiting);
}

// The reverse of start(): no more heartbeats or routing (so no view changes arrive while
// the server winds down), the RPC drain (so no handler starts on a stopped server), the
// server's resync and scrub loops, the engines, and the pool last (every part used it).
Task<void> StorageNode::stop() {
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
  if (server_ && server_started_) {
    auto stopping = server_->stop();
    co_await std::move(stopping);
  }
  if (server_) {
    auto closing = server_->close();
    Status closed = co_await std::move(closing);
    if (!closed.ok()) MICA_LOG(Error, "storage", "closing the targets: {}", closed);
  }
  agent_.reset();
  routing_.reset();
  rpc_.reset();
  service_.reset();
  metered_.reset();
  server_.reset();
  if (pool_) {
    auto closing = pool_->close();
    co_await std::move(closing);
  }
  pool_.reset();
  server_started_ = false;
}

}  // namespace mica::craq
