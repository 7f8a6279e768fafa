#include "bench/storage_cluster.h"

#include <algorithm>
#include <fstream>

#include "async/scope.h"
#include "async/wait_list.h"

namespace mica::bench {
namespace {

Status refused() {
  return Status(StatusCode::kNotSupported, "the bench's fixed routing serves get_routing only");
}

// Long polls wait at most this long here (the routing never changes by itself).
constexpr uint32_t kPollWaitMaxMs = 200;

}  // namespace

uint64_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

Task<Result<craq::RegisterResponse>> FixedRouting::register_node(craq::RegisterRequest,
                                                                 net::CallContext*) {
  co_return refused();
}
Task<Result<craq::HeartbeatResponse>> FixedRouting::heartbeat(craq::HeartbeatRequest,
                                                              net::CallContext*) {
  co_return refused();
}
Task<Result<craq::StatusResponse>> FixedRouting::status(craq::StatusRequest, net::CallContext*) {
  co_return refused();
}
Task<Result<craq::CreateChainTableResponse>> FixedRouting::create_chain_table(
    craq::CreateChainTableRequest, net::CallContext*) {
  co_return refused();
}
Task<Result<craq::SetTargetOfflineResponse>> FixedRouting::set_target_offline(
    craq::SetTargetOfflineRequest, net::CallContext*) {
  co_return refused();
}
Task<Result<craq::ReplaceTargetResponse>> FixedRouting::replace_target(craq::ReplaceTargetRequest,
                                                                       net::CallContext*) {
  co_return refused();
}
Task<Result<craq::PromoteTargetResponse>> FixedRouting::promote_target(craq::PromoteTargetRequest,
                                                                       net::CallContext*) {
  co_return refused();
}

Task<Result<craq::GetRoutingResponse>> FixedRouting::get_routing(craq::GetRoutingRequest request,
                                                                 net::CallContext*) {
  if (request.known_version == snapshot_.version && request.wait_ms > 0) {
    Status slept =
        co_await sleep_for(std::chrono::milliseconds(std::min(request.wait_ms, kPollWaitMaxMs)));
    (void)slept;  // woken early or not, the answer is the same
  }
  craq::GetRoutingResponse response{.version = snapshot_.version};
  if (request.known_version != snapshot_.version) response.routing = snapshot_;
  co_return response;
}

BenchCluster::BenchCluster(Runtime* runtime, ClusterLayout layout)
    : runtime_(runtime), layout_(std::move(layout)) {
  MICA_ASSERT(layout_.servers >= 1 && layout_.replicas >= 1 && layout_.chains >= 1);
  MICA_ASSERT(layout_.replicas <= layout_.servers);
  MICA_ASSERT(runtime_->size() >= layout_.servers + 1);
}

BenchCluster::~BenchCluster() {
  MICA_ASSERT_MSG(!open_, "BenchCluster destroyed without close()");
}

craq::TargetId BenchCluster::target_id(uint32_t server, uint32_t chain) const {
  return craq::TargetId{chain} * layout_.servers + server + 1;
}

std::string BenchCluster::target_dir(uint32_t server, uint32_t chain) const {
  std::string base = layout_.server_dirs.empty() ? layout_.dir + "/s" + std::to_string(server)
                                                 : layout_.server_dirs.at(server);
  return base + "/c" + std::to_string(chain);
}

Task<void> BenchCluster::open_server(uint32_t i, Status* status) {
  Executor* home = Executor::current();
  Executor* executor = &runtime_->executor(i + 1);
  co_await executor->schedule();
  auto s = std::make_unique<BenchServer>();
  s->executor = executor;
  craq::StorageServerOptions options;
  options.node = i + 1;
  options.resync_chunks_in_flight_max = layout_.resync_chunks_in_flight_max;
  options.resync_bytes_per_s = 0;
  options.scrub_bytes_per_s = 0;  // no background reads while measuring
  options.metric_labels = {{"server", std::to_string(i)}};
  for (uint32_t c = 0; c < layout_.chains; ++c) {
    for (uint32_t k = 0; k < layout_.replicas; ++k) {
      if ((c + k) % layout_.servers != i) continue;
      craq::StorageTargetConfig target{.path = target_dir(i, c)};
      options.targets.push_back(target);
      s->chains.push_back(c);
    }
  }
  s->pool = std::make_unique<net::ConnectionPool>(&s->transport);
  auto opening = craq::StorageServer::open(std::move(options), s->pool.get(), &s->transport);
  Result<std::unique_ptr<craq::StorageServer>> server = co_await std::move(opening);
  *status = server.status();
  if (server.ok()) {
    s->server = std::move(*server);
    s->service = std::make_unique<net::Service>(s->server->service());
    s->rpc = std::make_unique<net::RpcServer>(&s->transport);
    s->rpc->add_service(s->service.get());
    Result<SocketAddress> address = s->rpc->start(SocketAddress::loopback(0));
    *status = address.status();
    if (address.ok()) s->address = *address;
    s->server->start();
  }
  servers_[i] = std::move(s);
  co_await home->schedule();
}

Task<Status> BenchCluster::open() {
  servers_.resize(layout_.servers);
  std::vector<Status> statuses(layout_.servers);
  {
    TaskScope scope;
    for (uint32_t i = 0; i < layout_.servers; ++i) scope.spawn(open_server(i, &statuses[i]));
    co_await scope.join();
  }
  open_ = true;  // close() must run now, whatever failed
  for (const Status& s : statuses) CO_TRY(s);
  // Target ids by layout: hop to each server to read its targets' identities.
  identities_.assign(size_t{layout_.chains} * layout_.servers, "");
  for (uint32_t i = 0; i < layout_.servers; ++i) {
    BenchServer& s = *servers_[i];
    Executor* home = Executor::current();
    co_await s.executor->schedule();
    std::map<std::string, craq::TargetId> ids;
    const auto& targets = s.server->targets().all();
    for (size_t k = 0; k < targets.size(); ++k) {
      craq::TargetId id = target_id(i, s.chains[k]);
      ids[targets[k]->identity()] = id;
      identities_[id - 1] = targets[k]->identity();
    }
    auto assigning = s.server->assign_ids(ids);
    Status assigned = co_await std::move(assigning);
    co_await home->schedule();
    CO_TRY(assigned);
  }
  routing_ = std::make_unique<FixedRouting>(snapshot());
  routing_service_ =
      std::make_unique<net::Service>(net::Service::bind<craq::MgmtdService>(routing_.get()));
  routing_rpc_ = std::make_unique<net::RpcServer>(&routing_transport_);
  routing_rpc_->add_service(routing_service_.get());
  CO_TRY_ASSIGN(routing_address_, routing_rpc_->start(SocketAddress::loopback(0)));
  co_return Status();
}

craq::RoutingSnapshot BenchCluster::snapshot() const {
  craq::RoutingSnapshot r;
  r.version = layout_.chain_version;
  r.config.replica_count = layout_.replicas;
  for (uint32_t i = 0; i < layout_.servers; ++i) {
    std::string address = servers_[i] ? servers_[i]->address.to_string() : "";
    r.nodes.push_back(craq::NodeInfo{.id = i + 1,
                                     .identity = "bench-node-" + std::to_string(i),
                                     .host_name = "127.0.0.1",
                                     .rpc_address = address});
  }
  craq::ChainTable table{.id = 1, .version = 1, .replica_count = layout_.replicas};
  for (uint32_t c = 0; c < layout_.chains; ++c) {
    craq::ChainInfo chain{.id = chain_id(c), .version = layout_.chain_version};
    for (uint32_t k = 0; k < layout_.replicas; ++k) {
      uint32_t server = (c + k) % layout_.servers;
      bool syncing = layout_.last_syncing && k + 1 == layout_.replicas;
      chain.targets.push_back(craq::ChainTarget{
          .target = target_id(server, c),
          .state = syncing ? craq::PublicState::kSyncing : craq::PublicState::kServing});
    }
    r.chains.push_back(chain);
    table.chains.push_back(chain.id);
  }
  r.tables.push_back(table);
  for (craq::TargetId id = 1; id <= identities_.size(); ++id) {
    if (identities_[id - 1].empty()) continue;
    uint32_t server = static_cast<uint32_t>((id - 1) % layout_.servers);
    uint32_t chain = static_cast<uint32_t>((id - 1) / layout_.servers);
    r.targets.push_back(craq::TargetInfo{.id = id,
                                         .node = server + 1,
                                         .identity = identities_[id - 1],
                                         .disk = target_dir(server, chain),
                                         .chain = chain_id(chain),
                                         .capacity_bytes = uint64_t{1} << 40});
  }
  return r;
}

Task<void> BenchCluster::apply_on(uint32_t i, craq::RoutingSnapshot snapshot) {
  Executor* home = Executor::current();
  co_await servers_[i]->executor->schedule();
  servers_[i]->server->apply_routing(snapshot);
  co_await home->schedule();
}

Task<void> BenchCluster::route(craq::RoutingSnapshot snapshot) {
  for (uint32_t i = 0; i < size(); ++i) {
    if (!servers_[i] || !servers_[i]->server) continue;
    auto applying = apply_on(i, snapshot);
    co_await std::move(applying);
  }
  if (routing_) routing_->set(std::move(snapshot));
}

Task<void> BenchCluster::close_server(uint32_t i, Status* status) {
  BenchServer* s = servers_[i].get();
  if (s == nullptr) co_return;
  Executor* home = Executor::current();
  co_await s->executor->schedule();
  if (s->server) {
    auto stopping = s->server->stop();
    co_await std::move(stopping);
    if (s->rpc) {
      auto shutting = s->rpc->shutdown();
      co_await std::move(shutting);
    }
    auto closing = s->server->close();
    *status = co_await std::move(closing);
  }
  auto closing_pool = s->pool->close();
  co_await std::move(closing_pool);
  servers_[i].reset();  // destroyed on its own executor
  co_await home->schedule();
}

Task<Status> BenchCluster::close() {
  if (!open_) co_return Status();
  if (routing_rpc_) {
    auto shutting = routing_rpc_->shutdown();
    co_await std::move(shutting);
  }
  std::vector<Status> statuses(servers_.size());
  {
    TaskScope scope;
    for (uint32_t i = 0; i < servers_.size(); ++i) scope.spawn(close_server(i, &statuses[i]));
    co_await scope.join();
  }
  open_ = false;
  for (const Status& s : statuses) CO_TRY(s);
  co_return Status();
}

}  // namespace mica::bench
