#include "craq/storage_server.h"

#include <fmt/format.h>

#include "async/log.h"
#include "craq/storage_read.h"
#include "craq/storage_resync.h"
#include "craq/storage_scrub.h"
#include "craq/storage_update.h"

namespace mica::craq {

// The object service() binds: one member per StorageService method, each handing the call
// to the server (whose own progress() overload Service::bind cannot name).
class StorageHandlers {
 public:
  explicit StorageHandlers(StorageServer* server) : s_(server) {}
  using Ctx = net::CallContext;
  Task<Result<UpdateResponse>> update(UpdateRequest r, Ctx* c) {
    return s_->update(std::move(r), c);
  }
  Task<Result<ForwardResponse>> forward(ForwardRequest r, Ctx* c) {
    return s_->forward(std::move(r), c);
  }
  Task<Result<ReadResponse>> read(ReadRequest r, Ctx* c) { return s_->read(std::move(r), c); }
  Task<Result<BatchReadResponse>> batch_read(BatchReadRequest r, Ctx* c) {
    return s_->batch_read(std::move(r), c);
  }
  Task<Result<QueryVersionResponse>> query_version(QueryVersionRequest r, Ctx* c) {
    return s_->query_version(std::move(r), c);
  }
  Task<Result<SyncListResponse>> sync_list(SyncListRequest r, Ctx* c) {
    return s_->sync_list(std::move(r), c);
  }
  Task<Result<SyncAck>> sync_write(SyncWriteRequest r, Ctx* c) {
    return s_->sync_write(std::move(r), c);
  }
  Task<Result<SyncAck>> sync_remove(SyncRemoveRequest r, Ctx* c) {
    return s_->sync_remove(std::move(r), c);
  }
  Task<Result<SyncDoneResponse>> sync_done(SyncDoneRequest r, Ctx* c) {
    return s_->sync_done(std::move(r), c);
  }
  Task<Result<ProgressResponse>> progress(ProgressRequest r, Ctx* c) {
    return s_->progress(std::move(r), c);
  }
  Task<Result<StatChunkResponse>> stat_chunk(StatChunkRequest r, Ctx* c) {
    return s_->stat_chunk(std::move(r), c);
  }
  Task<Result<LastChunkResponse>> last_chunk(LastChunkRequest r, Ctx* c) {
    return s_->last_chunk(std::move(r), c);
  }

 private:
  StorageServer* s_;
};

namespace {

chunk::ChunkId chunk_id(ChunkRef ref) {
  return chunk::ChunkId{.inode = ref.inode, .index = ref.index};
}

ChunkMeta meta_of(const chunk::ChunkInfo& info) {
  ChunkMeta meta;
  meta.chunk = ChunkRef{.inode = info.id.inode, .index = info.id.index};
  meta.state = ChunkState{.version = info.committed_version,
                          .length_bytes = info.length_bytes,
                          .checksum = info.checksum};
  meta.client_id = info.committed_tag.client_id;
  meta.request_id = info.committed_tag.request_id;
  meta.damaged = info.damaged;
  return meta;
}

}  // namespace

Task<Result<std::unique_ptr<StorageServer>>> StorageServer::open(StorageServerOptions options,
                                                                 net::ConnectionPool* pool,
                                                                 net::Transport* transport) {
  auto opening = StorageTargets::open(options.targets, options.updates_in_flight_max);
  Result<std::unique_ptr<StorageTargets>> targets = co_await std::move(opening);
  if (!targets.ok()) co_return targets.status();
  std::unique_ptr<StorageServer> server(
      new StorageServer(std::move(options), pool, transport, std::move(*targets)));
  co_return server;
}

StorageServer::StorageServer(StorageServerOptions options, net::ConnectionPool* pool,
                             net::Transport* transport, std::unique_ptr<StorageTargets> targets)
    : options_(std::move(options)),
      pool_(pool),
      transport_(transport),
      targets_(std::move(targets)) {
  updates_ = std::make_unique<UpdatePath>(targets_.get(), pool_, transport_, &options_);
  reads_ = std::make_unique<ReadPath>(targets_.get(), pool_, transport_, &options_);
  resync_ = std::make_unique<Resync>(targets_.get(), pool_, transport_, &options_);
  resync_->on_chunk_synced = [updates = updates_.get()](const StorageTarget* target,
                                                        const chunk::ChunkInfo& info) {
    updates->remember_synced(target, info);
  };
  scrub_ = std::make_unique<Scrub>(targets_.get(), pool_, transport_, &options_);
  handlers_ = std::make_unique<StorageHandlers>(this);
  // A chunk a reader found rotten is repaired from the chain; a changed view may start or
  // stop the resync this target drives.
  Scrub* scrub = scrub_.get();
  reads_->on_corrupt = [scrub](StorageTarget* target, ChunkRef chunk) {
    scrub->repair(target, chunk);
  };
  UpdatePath* updates = updates_.get();
  reads_->settle = [updates](StorageTarget* target, ChunkRef chunk, TimePoint deadline) {
    return updates->settle(target, chunk, deadline);
  };
  Resync* resync = resync_.get();
  targets_->on_view_change = [resync](StorageTarget* target, const ChainView& old) {
    resync->on_view_change(target, old);
  };
}

StorageServer::~StorageServer() {
  MICA_ASSERT_MSG(closed_, "StorageServer destroyed before close()");
}

net::Service StorageServer::service() {
  return net::Service::bind<StorageService>(handlers_.get());
}

void StorageServer::start() {
  MICA_ASSERT(!started_);
  started_ = true;
  scrub_->start();
}

Task<void> StorageServer::stop() {
  // The background work first (it sends requests), then the handlers in flight.
  targets_->on_view_change = nullptr;
  Task<void> resync_stopping = resync_->stop();
  co_await std::move(resync_stopping);
  Task<void> scrub_stopping = scrub_->stop();
  co_await std::move(scrub_stopping);
  Task<void> reads_stopping = reads_->stop();
  co_await std::move(reads_stopping);
  Task<void> updates_stopping = updates_->stop();
  co_await std::move(updates_stopping);
}

Task<Status> StorageServer::close() {
  MICA_ASSERT(!closed_);
  auto closing = targets_->close();
  Status closed = co_await std::move(closing);
  closed_ = true;
  co_return closed;
}

void StorageServer::set_node(NodeId node) {
  options_.node = node;
}

void StorageServer::set_read_guard(std::function<Status()> guard) {
  reads_->guard = std::move(guard);
}

void StorageServer::apply_routing(const RoutingSnapshot& routing) {
  targets_->apply_routing(routing);
}

std::vector<TargetReport> StorageServer::reports() const {
  return targets_->reports();
}

Task<Status> StorageServer::assign_ids(const std::map<std::string, TargetId>& ids) {
  return targets_->assign_ids(ids);
}

ProgressResponse StorageServer::progress() const {
  ProgressResponse response;
  response.node = options_.node;
  for (const auto& target : targets_->all()) {
    chunk::SpaceStats space = target->engine().space();
    TargetProgress p;
    p.target = target->id();
    p.chain = target->view().chain;
    p.chain_version = target->view().version;
    p.state = target->view().state;
    p.local = target->local_state();
    p.chunks = space.chunks;
    p.used_bytes = space.used_slot_bytes;
    uint64_t cap = target->engine().config().data_bytes_max;
    p.capacity_bytes = cap != 0 ? cap : space.disk_total_bytes;
    resync_->fill_progress(&p);
    scrub_->fill_progress(&p);
    response.targets.push_back(p);
  }
  return response;
}

Task<Result<UpdateResponse>> StorageServer::update(UpdateRequest request,
                                                   net::CallContext* context) {
  return updates_->update(request, context);
}

Task<Result<ForwardResponse>> StorageServer::forward(ForwardRequest request,
                                                     net::CallContext* context) {
  return updates_->forward(request, context);
}

Task<Result<ReadResponse>> StorageServer::read(ReadRequest request, net::CallContext* context) {
  return reads_->read(request, context);
}

Task<Result<BatchReadResponse>> StorageServer::batch_read(BatchReadRequest request,
                                                          net::CallContext* context) {
  return reads_->batch_read(std::move(request), context);
}

Task<Result<QueryVersionResponse>> StorageServer::query_version(QueryVersionRequest request,
                                                                net::CallContext* context) {
  return reads_->query_version(request, context);
}

Task<Result<SyncListResponse>> StorageServer::sync_list(SyncListRequest request,
                                                        net::CallContext* context) {
  return resync_->sync_list(std::move(request), context);
}

Task<Result<SyncAck>> StorageServer::sync_write(SyncWriteRequest request,
                                                net::CallContext* context) {
  return resync_->sync_write(request, context);
}

Task<Result<SyncAck>> StorageServer::sync_remove(SyncRemoveRequest request,
                                                 net::CallContext* context) {
  return resync_->sync_remove(request, context);
}

Task<Result<SyncDoneResponse>> StorageServer::sync_done(SyncDoneRequest request,
                                                        net::CallContext* context) {
  return resync_->sync_done(request, context);
}

Task<Result<ProgressResponse>> StorageServer::progress(ProgressRequest, net::CallContext*) {
  co_return progress();
}

// Serving or not: what the target holds (tests, fsck, tools).
Task<Result<StatChunkResponse>> StorageServer::stat_chunk(StatChunkRequest request,
                                                          net::CallContext*) {
  StorageTarget* target = targets_->by_chain(request.chain);
  if (target == nullptr)
    co_return Status(StatusCode::kNotServing,
                     fmt::format("no target of this node is in chain {}", request.chain));
  StatChunkResponse response;
  Result<chunk::ChunkInfo> info = target->engine().stat(chunk_id(request.chunk));
  if (info.ok()) {
    response.meta = meta_of(*info);
    response.pending_version = info->pending_version;
  } else if (info.status().code() == StatusCode::kCorruption) {
    ChunkMeta damaged;
    damaged.chunk = request.chunk;
    damaged.damaged = true;
    response.meta = damaged;
  } else if (info.status().code() != StatusCode::kNotFound) {
    co_return info.status();
  }
  co_return response;
}

// With a chain version (the metadata service): a serving target at that version, so the
// answer is committed data. With version 0 (tools): whatever the target holds.
Task<Result<LastChunkResponse>> StorageServer::last_chunk(LastChunkRequest request,
                                                          net::CallContext*) {
  StorageTarget* target = targets_->by_chain(request.chain);
  if (request.chain_version != 0) {
    Result<StorageTarget*> checked =
        targets_->for_request(request.chain, request.chain_version, {PublicState::kServing});
    if (!checked.ok()) co_return checked.status();
    target = *checked;
  }
  if (target == nullptr)
    co_return Status(StatusCode::kNotServing,
                     fmt::format("no target of this node is in chain {}", request.chain));
  Result<std::optional<chunk::ChunkInfo>> last = target->engine().last_chunk(request.inode);
  if (!last.ok()) co_return last.status();
  LastChunkResponse response;
  if (last->has_value()) response.meta = meta_of(**last);
  co_return response;
}

}  // namespace mica::craq
