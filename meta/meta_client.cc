// MetaClient: routing, retries, the lease loop and the per-method calls
// (meta/meta_client.h). The path walk is in meta/meta_client_path.cc.
#include "meta/meta_client.h"

#include <algorithm>

#include "async/executor.h"
#include "async/log.h"
#include "async/wait_list.h"

namespace mica::meta {

namespace {

// What a retry may fix: routing that moved, a busy entry or server, a lost connection, an
// attempt that ran out of time (the call's deadline decides when to stop).
bool retryable(StatusCode code) {
  return is_transport_failure(code) || code == StatusCode::kWrongShard ||
         code == StatusCode::kBusy;
}

const craq::MetaShardRoute* route_of(const craq::RoutingSnapshot& routing, ShardId shard) {
  auto it = std::lower_bound(
      routing.meta_shards.begin(), routing.meta_shards.end(), shard,
      [](const craq::MetaShardRoute& route, ShardId wanted) { return route.shard < wanted; });
  if (it == routing.meta_shards.end() || it->shard != shard) return nullptr;
  return &*it;
}

}  // namespace

MetaClient::MetaClient(net::ConnectionPool* pool, craq::RoutingClient* routing,
                       MetaClientOptions options)
    : pool_(pool), routing_(routing), options_(std::move(options)) {
  client_ = options_.client;
  // Random, so two clients' tags never meet without anyone handing out ids.
  while (client_ == 0) client_ = Executor::current()->backend().random_u64();
  lease_interval_ = options_.renew_interval > Duration::zero() ? options_.renew_interval
                                                               : options_.renew_interval_default;
  retries_metric_ = &metrics().counter("meta_client", "retries_total",
                                       "Metadata calls retried (routing, busy, connection).",
                                       options_.metric_labels);
}

MetaClient::~MetaClient() {
  MICA_ASSERT_MSG(!started_ || stopped_, "MetaClient destroyed before stop()");
}

void MetaClient::start() {
  MICA_ASSERT_MSG(!started_, "MetaClient::start() twice");
  started_ = true;
  scope_.spawn(lease_loop());
}

Task<void> MetaClient::stop() {
  if (stopped_) co_return;
  stopped_ = true;
  stop_event_.set();
  scope_.cancel();
  co_await scope_.join();
}

TimePoint MetaClient::deadline_of(const CallOptions& options) const {
  if (options.deadline != kNoDeadline) return options.deadline;
  return Executor::current()->now() + options_.call_timeout;
}

Task<Result<std::shared_ptr<net::RpcClient>>> MetaClient::connect(ShardId shard, TimePoint deadline,
                                                                  craq::NodeId* node) {
  craq::RoutingClient::SnapshotPtr routing = routing_->current();
  if (!routing) {
    auto refreshing = routing_->refresh(0, deadline);
    CO_TRY_ASSIGN(routing, co_await std::move(refreshing));
  }
  const craq::MetaShardRoute* route = route_of(*routing, shard);
  if (route == nullptr)
    co_return Status(StatusCode::kWrongShard, fmt::format("no meta process serves shard {} "
                                                          "in routing version {}",
                                                          shard, routing->version));
  const craq::NodeInfo* info = craq::find_node(*routing, route->node);
  if (info == nullptr)
    co_return Status(StatusCode::kWrongShard,
                     fmt::format("shard {}: node {} is not in routing", shard, route->node));
  *node = info->id;
  CO_TRY_ASSIGN(SocketAddress address, SocketAddress::parse(info->rpc_address));
  auto getting = pool_->get(address, deadline);
  Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(getting);
  co_return client;
}

template <auto M>
Task<Result<net::ResponseOf<M>>> MetaClient::call(ShardId shard, net::RequestOf<M> request,
                                                  CallOptions options) {
  TimePoint deadline = deadline_of(options);
  Duration backoff = options_.backoff_initial;
  for (;;) {
    TimePoint now = Executor::current()->now();
    TimePoint attempt_deadline = std::min(deadline, now + options_.attempt_timeout);
    craq::NodeId node = 0;
    auto connecting = connect(shard, attempt_deadline, &node);
    Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(connecting);
    Status failure;
    if (client.ok()) {
      auto calling = (*client)->call<M>(request, CallOptions{.deadline = attempt_deadline});
      Result<net::ResponseOf<M>> answer = co_await std::move(calling);
      if (answer.ok() || !retryable(answer.status().code())) {
        if constexpr (std::is_same_v<net::ResponseOf<M>, OpenReply> ||
                      std::is_same_v<net::ResponseOf<M>, CreateReply>) {
          if (answer.ok() && answer->session != 0) note_session(node, shard, answer->session);
        }
        co_return answer;
      }
      failure = answer.status();
    } else {
      failure = client.status();
    }
    if (!retryable(failure.code())) co_return failure;
    now = Executor::current()->now();
    if (now + backoff >= deadline) co_return failure;
    ++retries_;
    retries_metric_->add();
    if (failure.code() == StatusCode::kWrongShard) {
      auto refreshing = routing_->refresh(0, std::min(deadline, now + options_.attempt_timeout));
      Result<craq::RoutingClient::SnapshotPtr> refreshed = co_await std::move(refreshing);
      if (!refreshed.ok())
        MICA_LOG(Debug, "meta", "routing refresh for shard {}: {}", shard, refreshed.status());
    }
    SleepAwaiter pause = sleep_for(backoff);
    Status paused = co_await pause;
    if (paused.code() == StatusCode::kCancelled) co_return paused;
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
}

// ---- sessions and the lease ----

void MetaClient::note_session(craq::NodeId node, ShardId shard, SessionId session) {
  bool first = sessions_.empty();
  sessions_[node].insert({shard, session});
  // Before any renewal answered, the loop's default interval may outlast the server's lease:
  // it renews now. After that the open itself renewed the lease (the server counts it) and
  // the loop's next turn comes within the learned interval, so an open costs no renewal.
  if (first && !lease_answered_) stop_event_.set();
}

void MetaClient::forget_session(ShardId shard, SessionId session) {
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    if (it->second.erase({shard, session}) == 0) continue;
    if (it->second.empty()) sessions_.erase(it);
    return;
  }
}

std::vector<craq::NodeId> MetaClient::lease_holders() const {
  std::vector<craq::NodeId> out;
  for (const auto& [node, sessions] : sessions_) out.push_back(node);
  return out;
}

Task<void> MetaClient::renew_all() {
  std::vector<ShardId> shards;  // one shard of each process holding sessions
  for (const auto& [node, sessions] : sessions_) shards.push_back(sessions.begin()->first);
  for (ShardId shard : shards) {
    CallOptions options{.deadline = deadline_after(lease_interval_)};
    auto renewing = renew_lease(shard, options);
    Result<LeaseReply> reply = co_await std::move(renewing);
    if (!reply.ok()) {
      MICA_LOG(Warn, "meta", "lease renewal at shard {}'s process: {}", shard, reply.status());
      continue;
    }
    lease_answered_ = true;
    if (options_.renew_interval == Duration::zero() && reply->lease_ms > 0)
      lease_interval_ = std::chrono::milliseconds(std::max<uint32_t>(1, reply->lease_ms / 3));
  }
}

Task<void> MetaClient::lease_loop() {
  while (!stopped_) {
    Status woke = co_await stop_event_.wait(deadline_after(lease_interval_));
    if (stopped_ || woke.code() == StatusCode::kCancelled) break;
    stop_event_.reset();
    if (sessions_.empty()) continue;
    auto renewing = renew_all();
    co_await std::move(renewing);
  }
}

// ---- one call per method ----

template <auto M>
Task<Result<net::ResponseOf<M>>> MetaClient::routed(InodeId net::RequestOf<M>::*home,
                                                    net::RequestOf<M> request,
                                                    CallOptions options) {
  if constexpr (requires { request.tag; }) fill_tag(&request.tag);
  ShardId shard = shard_of(request.*home);
  return call<M>(shard, std::move(request), options);
}

Task<Result<InodeReply>> MetaClient::lookup(LookupRequest request, CallOptions options) {
  return routed<MetaService::lookup>(&LookupRequest::parent, std::move(request), options);
}
Task<Result<InodeReply>> MetaClient::getattr(GetattrRequest request, CallOptions options) {
  return routed<MetaService::getattr>(&GetattrRequest::inode, std::move(request), options);
}
Task<Result<InodeReply>> MetaClient::setattr(SetattrRequest request, CallOptions options) {
  return routed<MetaService::setattr>(&SetattrRequest::inode, std::move(request), options);
}
Task<Result<CreateReply>> MetaClient::create(CreateRequest request, CallOptions options) {
  return routed<MetaService::create>(&CreateRequest::parent, std::move(request), options);
}
Task<Result<InodeReply>> MetaClient::mkdir(MkdirRequest request, CallOptions options) {
  return routed<MetaService::mkdir>(&MkdirRequest::parent, std::move(request), options);
}
Task<Result<RemoveReply>> MetaClient::remove(RemoveRequest request, CallOptions options) {
  return routed<MetaService::remove>(&RemoveRequest::parent, std::move(request), options);
}
Task<Result<RenameReply>> MetaClient::rename(RenameRequest request, CallOptions options) {
  return routed<MetaService::rename>(&RenameRequest::parent, std::move(request), options);
}
Task<Result<InodeReply>> MetaClient::link(LinkRequest request, CallOptions options) {
  return routed<MetaService::link>(&LinkRequest::new_parent, std::move(request), options);
}
Task<Result<ReadlinkReply>> MetaClient::readlink(ReadlinkRequest request, CallOptions options) {
  return routed<MetaService::readlink>(&ReadlinkRequest::inode, std::move(request), options);
}
Task<Result<ReaddirReply>> MetaClient::readdir(ReaddirRequest request, CallOptions options) {
  return routed<MetaService::readdir>(&ReaddirRequest::dir, std::move(request), options);
}
Task<Result<StatfsReply>> MetaClient::statfs(StatfsRequest request, CallOptions options) {
  return call<MetaService::statfs>(0, std::move(request), options);  // shard 0 asks the others
}
Task<Result<XattrValue>> MetaClient::get_xattr(GetXattrRequest request, CallOptions options) {
  return routed<MetaService::get_xattr>(&GetXattrRequest::inode, std::move(request), options);
}
Task<Result<InodeReply>> MetaClient::set_xattr(SetXattrRequest request, CallOptions options) {
  return routed<MetaService::set_xattr>(&SetXattrRequest::inode, std::move(request), options);
}
Task<Result<XattrNames>> MetaClient::list_xattr(ListXattrRequest request, CallOptions options) {
  return routed<MetaService::list_xattr>(&ListXattrRequest::inode, std::move(request), options);
}
Task<Result<InodeReply>> MetaClient::remove_xattr(RemoveXattrRequest request, CallOptions options) {
  return routed<MetaService::remove_xattr>(&RemoveXattrRequest::inode, std::move(request), options);
}
Task<Result<OpenReply>> MetaClient::open(OpenRequest request, CallOptions options) {
  return routed<MetaService::open>(&OpenRequest::inode, std::move(request), options);
}
Task<Result<InodeReply>> MetaClient::report_length(LengthReport request, CallOptions options) {
  if (request.client == 0) request.client = client_;
  ShardId shard = shard_of(request.inode);
  return call<MetaService::report_length>(shard, std::move(request), options);
}
Task<Result<InodeReply>> MetaClient::close(CloseRequest request, CallOptions options) {
  if (request.report.client == 0) request.report.client = client_;
  fill_tag(&request.tag);
  ShardId shard = shard_of(request.report.inode);
  forget_session(shard, request.report.session);
  return call<MetaService::close>(shard, std::move(request), options);
}
Task<Result<LeaseReply>> MetaClient::renew_lease(ShardId shard, CallOptions options) {
  return call<MetaService::renew_lease>(shard, LeaseRequest{.client = client_}, options);
}
Task<Result<MetaStatusReply>> MetaClient::status(ShardId shard, CallOptions options) {
  return call<MetaService::status>(shard, MetaStatusRequest{}, options);
}
Task<Result<ScanReply>> MetaClient::scan(ScanRequest request, CallOptions options) {
  ShardId shard = request.shard;
  return call<MetaService::scan>(shard, std::move(request), options);
}

}  // namespace mica::meta
