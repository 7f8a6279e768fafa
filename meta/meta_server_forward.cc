// MetaServer: what leaves the shard a request arrived at (meta/meta_server.h) — the
// coordinator's operations (local when shard 0 is served here, else a CoordinatorService
// call to shard 0's process), readdir's attributes of inodes on other shards, statfs and
// status over every meta process, and the lease.
#include <algorithm>
#include <set>

#include "async/hop.h"
#include "async/log.h"
#include "async/wait_list.h"
#include "meta/meta_server.h"
#include "meta/meta_server_coordinator.h"
#include "meta/statfs.h"

namespace mica::meta {

namespace {

// The longest wait between two attempts to open the coordinator.
constexpr Duration kCoordinatorOpenBackoffMax = std::chrono::seconds(2);

const craq::MetaShardRoute* find_route(const craq::RoutingSnapshot& routing, ShardId shard) {
  auto it = std::lower_bound(
      routing.meta_shards.begin(), routing.meta_shards.end(), shard,
      [](const craq::MetaShardRoute& route, ShardId wanted) { return route.shard < wanted; });
  if (it == routing.meta_shards.end() || it->shard != shard) return nullptr;
  return &*it;
}

}  // namespace

Task<Result<InodeReply>> MetaServer::CoordinatorFront::mkdir(MkdirRequest request,
                                                             net::CallContext* ctx) {
  return server_->coordinate<CoordinatorService::mkdir>(std::move(request), ctx, false);
}
Task<Result<RemoveReply>> MetaServer::CoordinatorFront::rmdir(RemoveRequest request,
                                                              net::CallContext* ctx) {
  return server_->coordinate<CoordinatorService::rmdir>(std::move(request), ctx, false);
}
Task<Result<RenameReply>> MetaServer::CoordinatorFront::rename(RenameRequest request,
                                                               net::CallContext* ctx) {
  return server_->coordinate<CoordinatorService::rename>(std::move(request), ctx, false);
}
Task<Result<InodeReply>> MetaServer::CoordinatorFront::link(LinkRequest request,
                                                            net::CallContext* ctx) {
  return server_->coordinate<CoordinatorService::link>(std::move(request), ctx, false);
}

MetaServer::~MetaServer() {
  for (const auto& [id, slot] : slots_)
    MICA_ASSERT_MSG(slot->shard == nullptr, "MetaServer destroyed before close_shards()");
}

void MetaServer::bind_steps() {
  LocalShards local{.shard = [this](ShardId id) { return shard(id); },
                    .executor = [this](ShardId id) { return executor_of(id); }};
  step_handlers_ = std::make_unique<ShardStepHandlers>(local);
  step_service_ = std::make_unique<net::Service>(shard_step_service(step_handlers_.get()));
}

std::optional<SocketAddress> MetaServer::address_of(ShardId shard) const {
  if (!routing_) return std::nullopt;
  const craq::MetaShardRoute* route = find_route(*routing_, shard);
  const craq::NodeInfo* node = route ? craq::find_node(*routing_, route->node) : nullptr;
  if (node == nullptr) return std::nullopt;
  Result<SocketAddress> address = SocketAddress::parse(node->rpc_address);
  if (!address.ok()) return std::nullopt;
  return *address;
}

void MetaServer::start_coordinator() {
  if (!serves(0)) {
    coordinator_status_ = Status::ok_status();
    coordinator_opened_.set();
    return;
  }
  coordinator_status_ = Status(StatusCode::kBusy, "the coordinator is opening");
  coordinator_front_ = std::make_unique<CoordinatorFront>(this);
  coordinator_service_ = std::make_unique<net::Service>(
      net::Service::bind<CoordinatorService>(coordinator_front_.get()));
  LocalShards local{.shard = [this](ShardId id) { return shard(id); },
                    .executor = [this](ShardId id) { return executor_of(id); }};
  stepper_ = remote_shard_stepper(
      pool_, [this](ShardId id) { return address_of(id); }, local);
  background_.spawn(open_coordinator());
}

// Retried until it opens: it reads every shard, and another process's shards may come up
// after this one. kNotSupported (no coordinator in the build) is final.
Task<void> MetaServer::open_coordinator() {
  Duration backoff = std::chrono::milliseconds(50);
  for (;;) {
    CoordinatorOptions options{.dir = options_.coordinator_dir,
                               .env = options_.coordinator_env,
                               .stepper = stepper_.get(),
                               .shard_count = options_.shard_count,
                               .placement_seed = options_.placement_seed,
                               .metric_labels = options_.metric_labels};
    // Directory times come from the same clock as the shards' inode times.
    if (!options_.shards.empty()) options.clock_ns = options_.shards.front().clock_ns;
    auto opening = open_coordinator_handle(std::move(options));
    Result<std::unique_ptr<CoordinatorHandle>> opened = co_await std::move(opening);
    if (opened.ok()) {
      coordinator_ = std::move(*opened);
      coordinator_status_ = Status::ok_status();
      MICA_LOG(Info, "meta", "the coordinator is open ({} operations pending)",
               coordinator_->pending());
      break;
    }
    MICA_LOG(Warn, "meta", "the coordinator did not open: {}", opened.status());
    if (opened.status().code() == StatusCode::kNotSupported ||
        opened.status().code() == StatusCode::kCancelled) {
      coordinator_status_ = opened.status();
      break;
    }
    SleepAwaiter pause = sleep_for(backoff);
    Status paused = co_await pause;
    if (!paused.ok()) {
      coordinator_status_ = paused;
      break;
    }
    backoff = std::min(backoff * 2, kCoordinatorOpenBackoffMax);
  }
  coordinator_opened_.set();
}

Task<Status> MetaServer::wait_coordinator(TimePoint deadline) {
  if (!coordinator_opened_.is_set()) {
    Status woke = co_await coordinator_opened_.wait(deadline);
    if (!woke.ok()) co_return woke;
  }
  co_return coordinator_status_;
}

Task<Status> MetaServer::close_coordinator() {
  background_.cancel();
  co_await background_.join();
  Status result;
  if (coordinator_) {
    auto closing = coordinator_->close();
    result = co_await std::move(closing);
    coordinator_.reset();
  }
  stepper_.reset();
  co_return result;
}

TimePoint MetaServer::forward_deadline(net::CallContext* ctx) const {
  TimePoint deadline = home_->now() + options_.forward_timeout;
  if (ctx != nullptr && ctx->deadline != kNoDeadline) deadline = std::min(deadline, ctx->deadline);
  return deadline;
}

Task<Result<std::shared_ptr<net::RpcClient>>> MetaServer::peer(ShardId shard, TimePoint deadline) {
  if (!routing_) co_return Status(StatusCode::kWrongShard, "no routing yet");
  const craq::MetaShardRoute* route = find_route(*routing_, shard);
  if (route == nullptr)
    co_return Status(StatusCode::kWrongShard, fmt::format("no process serves shard {}", shard));
  const craq::NodeInfo* node = craq::find_node(*routing_, route->node);
  if (node == nullptr || node->id == node_)
    co_return Status(StatusCode::kWrongShard,
                     fmt::format("routing names node {} for shard {}", route->node, shard));
  CO_TRY_ASSIGN(SocketAddress address, SocketAddress::parse(node->rpc_address));
  auto getting = pool_->get(address, deadline);
  Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(getting);
  co_return client;
}

template <auto M>
Task<Result<net::ResponseOf<M>>> MetaServer::coordinate(net::RequestOf<M> request,
                                                        net::CallContext* ctx, bool may_forward) {
  using R = net::ResponseOf<M>;
  if (serves(0)) {
    if (!coordinator_) co_return coordinator_status_;  // opening (kBusy), or failed
    auto running = coordinator_->run(request);
    Result<R> answer = co_await std::move(running);
    co_return answer;
  }
  if (!may_forward) co_return wrong_shard(0);
  TimePoint deadline = forward_deadline(ctx);
  auto connecting = peer(0, deadline);
  CO_TRY_ASSIGN(std::shared_ptr<net::RpcClient> client, co_await std::move(connecting));
  auto calling = client->call<M>(std::move(request), net::CallOptions{.deadline = deadline});
  Result<R> answer = co_await std::move(calling);
  co_return answer;
}

Task<Result<InodeReply>> MetaServer::mkdir(MkdirRequest request, net::CallContext* ctx) {
  if (!serves(shard_of(request.parent))) co_return wrong_shard(shard_of(request.parent));
  auto running = coordinate<CoordinatorService::mkdir>(std::move(request), ctx);
  Result<InodeReply> answer = co_await std::move(running);
  co_return answer;
}

Task<Result<RemoveReply>> MetaServer::remove(RemoveRequest request, net::CallContext* ctx) {
  ShardId shard = shard_of(request.parent);
  Slot* target = slot(shard);
  if (target == nullptr) co_return wrong_shard(shard);
  if (request.directory) {
    auto running = coordinate<CoordinatorService::rmdir>(std::move(request), ctx);
    Result<RemoveReply> answer = co_await std::move(running);
    co_return answer;
  }
  auto work = target->shard->unlink_here(request);
  auto hopping = hop(home_, target->executor, std::move(work));
  Result<std::optional<RemoveReply>> local = co_await std::move(hopping);
  if (!local.ok()) co_return local.status();
  if (local->has_value()) co_return std::move(**local);
  // The entry names an inode of another shard: the coordinator unlinks it (Coordinator::rmdir
  // with directory false).
  auto running = coordinate<CoordinatorService::rmdir>(std::move(request), ctx);
  Result<RemoveReply> answer = co_await std::move(running);
  co_return answer;
}

Task<Result<RenameReply>> MetaServer::rename(RenameRequest request, net::CallContext* ctx) {
  ShardId shard = shard_of(request.parent);
  Slot* target = slot(shard);
  if (target == nullptr) co_return wrong_shard(shard);
  auto work = target->shard->rename(request);
  auto hopping = hop(home_, target->executor, std::move(work));
  Result<std::optional<RenameReply>> local = co_await std::move(hopping);
  if (!local.ok()) co_return local.status();
  if (local->has_value()) co_return std::move(**local);
  auto running = coordinate<CoordinatorService::rename>(std::move(request), ctx);
  Result<RenameReply> answer = co_await std::move(running);
  co_return answer;
}

Task<Result<InodeReply>> MetaServer::link(LinkRequest request, net::CallContext* ctx) {
  ShardId shard = shard_of(request.new_parent);
  Slot* target = slot(shard);
  if (target == nullptr) co_return wrong_shard(shard);
  if (shard_of(request.inode) == shard) {
    auto work = target->shard->link(request);
    auto hopping = hop(home_, target->executor, std::move(work));
    Result<InodeReply> answer = co_await std::move(hopping);
    co_return answer;
  }
  auto running = coordinate<CoordinatorService::link>(std::move(request), ctx);
  Result<InodeReply> answer = co_await std::move(running);
  co_return answer;
}

// ---- readdir with attributes from other shards ----

Task<Result<InodeReply>> MetaServer::remote_getattr(InodeId inode, TimePoint deadline) {
  ShardId shard = shard_of(inode);
  GetattrRequest request{.inode = inode};
  if (Slot* local = slot(shard)) {
    auto work = local->shard->getattr(request);
    auto hopping = hop(home_, local->executor, std::move(work));
    Result<InodeReply> answer = co_await std::move(hopping);
    co_return answer;
  }
  auto connecting = peer(shard, deadline);
  CO_TRY_ASSIGN(std::shared_ptr<net::RpcClient> client, co_await std::move(connecting));
  auto calling = MetaService::Stub(client.get())
                     .getattr(std::move(request), net::CallOptions{.deadline = deadline});
  Result<InodeReply> answer = co_await std::move(calling);
  co_return answer;
}

Task<Result<OpenReply>> MetaServer::open_elsewhere(OpenRequest request, TimePoint deadline) {
  ShardId shard = shard_of(request.inode);
  if (Slot* local = slot(shard)) {
    auto work = local->shard->open(request);  // request lives in this frame
    auto hopping = hop(home_, local->executor, std::move(work));
    Result<OpenReply> answer = co_await std::move(hopping);
    co_return answer;
  }
  auto connecting = peer(shard, deadline);
  CO_TRY_ASSIGN(std::shared_ptr<net::RpcClient> client, co_await std::move(connecting));
  auto calling = MetaService::Stub(client.get())
                     .open(std::move(request), net::CallOptions{.deadline = deadline});
  Result<OpenReply> answer = co_await std::move(calling);
  co_return answer;
}

// An inode removed since the page was read is left without attrs (the caller asks again);
// every other failure fails the page (the client retries it).
Task<Status> MetaServer::fill_attrs(ReaddirReply* reply, TimePoint deadline) {
  for (ReaddirEntry& entry : reply->entries) {
    if (entry.attrs.has_value()) continue;
    auto getting = remote_getattr(entry.inode, deadline);
    Result<InodeReply> attrs = co_await std::move(getting);
    if (attrs.ok()) {
      entry.attrs = std::move(attrs->inode);
    } else if (attrs.status().code() != StatusCode::kNotFound) {
      co_return attrs.status();
    }
  }
  co_return Status::ok_status();
}

Task<Result<ReaddirReply>> MetaServer::readdir(ReaddirRequest request, net::CallContext* ctx) {
  ShardId shard = shard_of(request.dir);
  Slot* target = slot(shard);
  if (target == nullptr) co_return wrong_shard(shard);
  auto work = target->shard->readdir(request);
  auto hopping = hop(home_, target->executor, std::move(work));
  CO_TRY_ASSIGN(ReaddirReply reply, co_await std::move(hopping));
  if (request.with_attrs) {
    auto filling = fill_attrs(&reply, forward_deadline(ctx));
    CO_TRY(co_await std::move(filling));
  }
  co_return reply;
}

// ---- status, statfs, lease ----

Task<Result<MetaStatusReply>> MetaServer::status(MetaStatusRequest request, net::CallContext* ctx) {
  (void)request;
  (void)ctx;
  MetaStatusReply reply{.node = node_};
  for (auto& [id, target] : slots_) {
    Shard* shard = target->shard.get();
    auto asking = hop_call(home_, target->executor, [shard] { return shard->status(); });
    CO_TRY_ASSIGN(ShardStatus status, co_await std::move(asking));
    reply.shards.push_back(status);
  }
  if (coordinator_) reply.coordinator_pending = coordinator_->pending();
  co_return reply;
}

// The shards of every meta process in routing: this one's directly, the others' by status.
Task<Result<std::vector<ShardStatus>>> MetaServer::every_status(TimePoint deadline) {
  MetaStatusRequest request;
  auto own = status(request, nullptr);
  CO_TRY_ASSIGN(MetaStatusReply mine, co_await std::move(own));
  std::vector<ShardStatus> out = std::move(mine.shards);
  if (!routing_) co_return out;
  std::set<craq::NodeId> others;
  for (const craq::MetaShardRoute& route : routing_->meta_shards)
    if (route.node != node_ && !serves(route.shard)) others.insert(route.node);
  for (craq::NodeId id : others) {
    const craq::NodeInfo* node = craq::find_node(*routing_, id);
    if (node == nullptr) continue;
    CO_TRY_ASSIGN(SocketAddress address, SocketAddress::parse(node->rpc_address));
    auto getting = pool_->get(address, deadline);
    CO_TRY_ASSIGN(std::shared_ptr<net::RpcClient> client, co_await std::move(getting));
    auto calling =
        MetaService::Stub(client.get()).status(request, net::CallOptions{.deadline = deadline});
    CO_TRY_ASSIGN(MetaStatusReply theirs, co_await std::move(calling));
    for (ShardStatus& shard : theirs.shards)
      if (!serves(shard.shard)) out.push_back(std::move(shard));
  }
  co_return out;
}

// meta/statfs.h's rules over every shard of every meta process.
Task<Result<StatfsReply>> MetaServer::statfs(StatfsRequest request, net::CallContext* ctx) {
  (void)request;
  auto collecting = every_status(forward_deadline(ctx));
  CO_TRY_ASSIGN(std::vector<ShardStatus> shards, co_await std::move(collecting));
  co_return compute_statfs(routing_.get(), shards);
}

Task<Result<LeaseReply>> MetaServer::renew_lease(LeaseRequest request, net::CallContext* ctx) {
  (void)ctx;
  co_return leases_->renew(request.client);
}

}  // namespace mica::meta
