// MetaServer: opening and closing the shards, routing, and the MetaService methods that a
// shard answers by itself (meta/meta_server.h). The coordinator's operations, readdir's
// attributes from other shards, statfs and status are in meta/meta_server_forward.cc.
#include "meta/meta_server.h"

#include <algorithm>

#include "async/hop.h"
#include "async/log.h"
#include "meta/meta_server_coordinator.h"

namespace mica::meta {

namespace {

// A create of an existing name whose file lives on another shard, decided again when the
// file went before it was opened there: at most this many decisions.
constexpr uint32_t kCreateRoundsMax = 3;

Task<Result<std::unique_ptr<Shard>>> open_shard(ShardOptions options) {
  auto opening = Shard::open(std::move(options));
  Result<std::unique_ptr<Shard>> shard = co_await std::move(opening);
  co_return shard;
}

Task<Status> close_shard(Shard* shard) {
  auto closing = shard->close();
  Status closed = co_await std::move(closing);
  co_return closed;
}

// Sets a shard's snapshot on its own executor (the shard reads it there).
Task<void> install_routing(Executor* home, Executor* target,
                           std::shared_ptr<const craq::RoutingSnapshot>* slot,
                           std::shared_ptr<const craq::RoutingSnapshot> routing) {
  co_await target->schedule();
  *slot = std::move(routing);
  co_await home->schedule();
}

}  // namespace

MetaServer::MetaServer(MetaServerOptions options, net::ConnectionPool* pool,
                       craq::StorageClient* storage)
    : options_(std::move(options)),
      pool_(pool),
      storage_(storage),
      home_(Executor::current()),
      service_(net::Service::bind<MetaService>(this)) {}

Task<Result<std::unique_ptr<MetaServer>>> MetaServer::open_server(MetaServerOptions options,
                                                                  net::ConnectionPool* pool,
                                                                  craq::StorageClient* storage) {
  std::unique_ptr<MetaServer> server(new MetaServer(std::move(options), pool, storage));
  auto opening = server->open_shards();
  Status opened = co_await std::move(opening);
  if (opened.ok()) {
    auto leasing = server->leases_->start();
    opened = co_await std::move(leasing);
  }
  if (opened.ok()) {
    server->bind_steps();
    server->start_coordinator();
  }
  if (!opened.ok()) {
    auto closing = server->close_shards();
    Status closed = co_await std::move(closing);
    if (!closed.ok()) MICA_LOG(Warn, "meta", "closing after a failed open: {}", closed);
    co_return opened;
  }
  co_return server;
}

Task<Status> MetaServer::open_shards() {
  leases_ = std::make_unique<LeaseTable>(options_.leases);
  size_t index = 0;
  for (ShardOptions shard_options : options_.shards) {
    ShardId id = shard_options.shard;
    if (id >= options_.shard_count)
      co_return Status(StatusCode::kInvalidArgument,
                       fmt::format("shard {} of a cluster of {} shards", id, options_.shard_count));
    if (slots_.count(id) != 0)
      co_return Status(StatusCode::kInvalidArgument, fmt::format("shard {} listed twice", id));
    auto slot = std::make_unique<Slot>();
    slot->executor = options_.executors.empty()
                         ? home_
                         : options_.executors[index++ % options_.executors.size()];
    slot->routing = routing_;
    Slot* raw = slot.get();
    shard_options.routing = [raw]() -> const craq::RoutingSnapshot* { return raw->routing.get(); };
    shard_options.storage = storage_;
    shard_options.storage_executor = home_;  // the storage client is the server's executor's
    shard_options.leases = leases_.get();
    // The shard is the one owner of its "shard" label (Shard::open, GcWorker); the server
    // only passes its own labels down, never a "shard" one.
    if (shard_options.metric_labels.empty()) shard_options.metric_labels = options_.metric_labels;
    auto opening = open_shard(std::move(shard_options));
    auto hopping = hop(home_, slot->executor, std::move(opening));
    Result<std::unique_ptr<Shard>> shard = co_await std::move(hopping);
    if (!shard.ok())
      co_return Status(shard.status().code(),
                       fmt::format("opening shard {}: {}", id, shard.status().to_string()));
    slot->shard = std::move(*shard);
    leases_->add_shard(slot->shard.get(), slot->executor);
    slots_.emplace(id, std::move(slot));
  }
  MICA_LOG(Info, "meta", "serving {} shard(s) of {}", slots_.size(), options_.shard_count);
  co_return Status::ok_status();
}

std::vector<net::Service*> MetaServer::services() {
  std::vector<net::Service*> out{&service_};
  if (step_service_) out.push_back(step_service_.get());
  if (coordinator_service_) out.push_back(coordinator_service_.get());
  return out;
}

void MetaServer::apply_routing(std::shared_ptr<const craq::RoutingSnapshot> routing) {
  if (!routing || (routing_ && routing->version <= routing_->version)) return;
  routing_ = routing;
  for (auto& [id, slot] : slots_) {
    if (slot->executor == home_) {
      slot->routing = routing;
      continue;
    }
    hops_.spawn(install_routing(home_, slot->executor, &slot->routing, routing));
  }
}

std::vector<ShardId> MetaServer::shard_ids() const {
  std::vector<ShardId> out;
  for (const auto& [id, slot] : slots_) out.push_back(id);
  return out;
}

MetaServer::Slot* MetaServer::slot(ShardId shard) const {
  auto it = slots_.find(shard);
  return it == slots_.end() ? nullptr : it->second.get();
}

Shard* MetaServer::shard(ShardId shard) const {
  Slot* found = slot(shard);
  return found ? found->shard.get() : nullptr;
}

Executor* MetaServer::executor_of(ShardId shard) const {
  Slot* found = slot(shard);
  return found ? found->executor : nullptr;
}

Status MetaServer::wrong_shard(ShardId shard) {
  return Status(StatusCode::kWrongShard,
                fmt::format("shard {} is not served by this process: refresh routing", shard));
}

// The coordinator first (its steps use the shards), the leases (their loop ends sessions
// on the shards), then every shard on its executor.
Task<Status> MetaServer::close_shards() {
  co_await hops_.join();
  auto closing_coordinator = close_coordinator();
  Status result = co_await std::move(closing_coordinator);
  if (leases_) {
    auto stopping = leases_->stop();
    co_await std::move(stopping);
  }
  for (auto& [id, slot] : slots_) {
    if (!slot->shard) continue;
    auto closing = close_shard(slot->shard.get());
    auto hopping = hop(home_, slot->executor, std::move(closing));
    Status closed = co_await std::move(hopping);
    if (!closed.ok()) {
      MICA_LOG(Error, "meta", "closing shard {}: {}", id, closed);
      if (result.ok()) result = closed;
    }
    slot->shard.reset();
  }
  co_return result;
}

// ---- operations a shard answers by itself ----

// request lives in this frame, which awaits the shard's task on its executor.
template <class R, class Req>
Task<Result<R>> MetaServer::on_shard(ShardId shard, Task<Result<R>> (Shard::*method)(const Req&),
                                     Req request) {
  Slot* target = slot(shard);
  if (target == nullptr) co_return wrong_shard(shard);
  auto work = (target->shard.get()->*method)(request);
  auto hopping = hop(home_, target->executor, std::move(work));
  Result<R> result = co_await std::move(hopping);
  co_return result;
}

Task<Result<InodeReply>> MetaServer::lookup(LookupRequest request, net::CallContext* ctx) {
  ShardId target_shard = shard_of(request.parent);
  auto running = on_shard(target_shard, &Shard::lookup, std::move(request));
  CO_TRY_ASSIGN(InodeReply answer, co_await std::move(running));
  // The shard answers only id and type of an inode on another shard; the attributes come
  // from there (as readdir's fill_attrs does).
  if (shard_of(answer.inode.id) == target_shard) co_return answer;
  auto getting = remote_getattr(answer.inode.id, forward_deadline(ctx));
  Result<InodeReply> attrs = co_await std::move(getting);
  co_return attrs;
}

Task<Result<InodeReply>> MetaServer::getattr(GetattrRequest request, net::CallContext*) {
  ShardId target = shard_of(request.inode);
  return on_shard(target, &Shard::getattr, std::move(request));
}

Task<Result<InodeReply>> MetaServer::setattr(SetattrRequest request, net::CallContext*) {
  ShardId target = shard_of(request.inode);
  return on_shard(target, &Shard::setattr, std::move(request));
}

// An existing name whose file inode lives on another shard (renamed or linked there) is
// opened on that shard; if the file went between the two (unlinked, collected), the name
// may be free again and the create is decided anew.
Task<Result<CreateReply>> MetaServer::create(CreateRequest request, net::CallContext* ctx) {
  ShardId target = shard_of(request.parent);
  for (uint32_t round = 1;; ++round) {
    auto running = on_shard(target, &Shard::create, request);
    CO_TRY_ASSIGN(CreateReply reply, co_await std::move(running));
    if (!is_open_elsewhere(request, reply)) co_return reply;
    OpenRequest open{.cred = request.cred,
                     .tag = request.tag,
                     .inode = reply.inode.id,
                     .flags = request.flags};
    auto opening = open_elsewhere(std::move(open), forward_deadline(ctx));
    Result<OpenReply> opened = co_await std::move(opening);
    if (opened.ok())
      co_return CreateReply{.inode = opened->inode, .session = opened->session, .created = false};
    if (opened.status().code() != StatusCode::kNotFound || round >= kCreateRoundsMax)
      co_return opened.status();
  }
}

Task<Result<ReadlinkReply>> MetaServer::readlink(ReadlinkRequest request, net::CallContext*) {
  ShardId target = shard_of(request.inode);
  return on_shard(target, &Shard::readlink, std::move(request));
}

Task<Result<XattrValue>> MetaServer::get_xattr(GetXattrRequest request, net::CallContext*) {
  ShardId target = shard_of(request.inode);
  return on_shard(target, &Shard::get_xattr, std::move(request));
}

Task<Result<InodeReply>> MetaServer::set_xattr(SetXattrRequest request, net::CallContext*) {
  ShardId target = shard_of(request.inode);
  return on_shard(target, &Shard::set_xattr, std::move(request));
}

Task<Result<XattrNames>> MetaServer::list_xattr(ListXattrRequest request, net::CallContext*) {
  ShardId target = shard_of(request.inode);
  return on_shard(target, &Shard::list_xattr, std::move(request));
}

Task<Result<InodeReply>> MetaServer::remove_xattr(RemoveXattrRequest request, net::CallContext*) {
  ShardId target = shard_of(request.inode);
  return on_shard(target, &Shard::remove_xattr, std::move(request));
}

Task<Result<OpenReply>> MetaServer::open(OpenRequest request, net::CallContext*) {
  ShardId target = shard_of(request.inode);
  return on_shard(target, &Shard::open, std::move(request));
}

Task<Result<InodeReply>> MetaServer::report_length(LengthReport request, net::CallContext*) {
  ShardId target = shard_of(request.inode);
  return on_shard(target, &Shard::report_length, std::move(request));
}

Task<Result<InodeReply>> MetaServer::close(CloseRequest request, net::CallContext*) {
  ShardId target = shard_of(request.report.inode);
  return on_shard(target, &Shard::close, std::move(request));
}

Task<Result<ScanReply>> MetaServer::scan(ScanRequest request, net::CallContext* ctx) {
  (void)ctx;
  Slot* target = slot(request.shard);
  if (target == nullptr) co_return wrong_shard(request.shard);
  Shard* shard = target->shard.get();
  auto scanning =
      hop_call(home_, target->executor, [shard, &request] { return shard->scan(request); });
  Result<ScanReply> reply = co_await std::move(scanning);
  co_return reply;
}

}  // namespace mica::meta
