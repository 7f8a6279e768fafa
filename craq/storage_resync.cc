// Resync: the copy's life cycle (started and stopped by view changes), its progress, and
// the syncing target's side of the protocol (sync_list, sync_write, sync_remove, sync_done).
// The copy itself is in storage_resync_copy.cc.
#include "craq/storage_resync.h"

#include <algorithm>

#include "async/crc32c.h"
#include "async/file.h"
#include "async/log.h"

namespace mica::craq {

namespace {

// The engine keeps chain versions as uint32 (docs/craq.md): a craq version must fit.
uint32_t engine_chain_version(uint64_t chain_version) {
  MICA_ASSERT_MSG(chain_version <= UINT32_MAX, "chain version does not fit the engine's");
  return static_cast<uint32_t>(chain_version);
}

ChunkState state_of(const chunk::ChunkInfo& info) {
  return ChunkState{.version = info.committed_version,
                    .length_bytes = info.length_bytes,
                    .checksum = info.checksum};
}

// The target's state of a chunk for an ack (all zero when it has none).
ChunkState held_state(StorageTarget* target, chunk::ChunkId id) {
  Result<chunk::ChunkInfo> info = target->engine().stat(id);
  return info.ok() ? state_of(*info) : ChunkState{};
}

}  // namespace

Resync::Resync(StorageTargets* targets, net::ConnectionPool* pool, net::Transport* transport,
               const StorageServerOptions* options)
    : targets_(targets),
      pool_(pool),
      transport_(transport),
      options_(options),
      limiter_(options->resync_bytes_per_s) {}

Resync::~Resync() {
  MICA_ASSERT_MSG(scope_.active() == 0, "Resync destroyed with copies running (stop() first)");
}

ChunkMeta Resync::meta_of(const chunk::ChunkInfo& info) {
  return ChunkMeta{.chunk = ChunkRef{.inode = info.id.inode, .index = info.id.index},
                   .state = state_of(info),
                   .client_id = info.committed_tag.client_id,
                   .request_id = info.committed_tag.request_id,
                   .damaged = info.damaged};
}

void Resync::on_view_change(StorageTarget* target, const ChainView& old_view) {
  const ChainView& view = target->view();
  auto it = copies_.find(target);
  bool wanted = view.successor != 0 && view.successor_state == PublicState::kSyncing &&
                view.state == PublicState::kServing && !stopped_;
  if (it != copies_.end()) {
    const Copy& copy = *it->second;
    bool same = wanted && copy.chain_version == view.version && copy.successor == view.successor;
    if (same) return;
    stop_copy(target);
  }
  if (!wanted) return;
  (void)old_view;  // the copy always starts over at the new version (it resumes: see the top)
  auto copy = std::make_shared<Copy>();
  copy->target = target;
  copy->chain = view.chain;
  copy->chain_version = view.version;
  copy->successor = view.successor;
  copy->address = view.successor_address;
  it = copies_.find(target);
  if (it != copies_.end()) copy->previous = it->second;
  copies_[target] = copy;
  MICA_LOG(Info, "craq", "target {}: resync of successor {} at chain {} version {} starts",
           target->id(), copy->successor, copy->chain, copy->chain_version);
  scope_.spawn(run_copy(this, copy));
}

void Resync::stop_copy(const StorageTarget* target) {
  auto it = copies_.find(target);
  if (it == copies_.end()) return;
  Copy& copy = *it->second;
  if (copy.finished) {
    copies_.erase(it);
    return;
  }
  copy.stop_requested = true;
  if (copy.cancel != nullptr) copy.cancel->cancel();
  // It stays in copies_ until it ended, so a new copy can wait for it.
}

Task<void> Resync::stop() {
  stopped_ = true;
  for (auto& [target, copy] : copies_) {
    copy->stop_requested = true;
    if (copy->cancel != nullptr) copy->cancel->cancel();
  }
  scope_.cancel();
  co_await scope_.join();
  copies_.clear();
}

void Resync::fill_progress(TargetProgress* progress) const {
  for (const auto& [target, copy] : copies_) {
    if (target->id() != progress->target) continue;
    if (copy->stop_requested) continue;  // replaced or stopped: not this target's copy now
    progress->resync_running = !copy->finished;
    progress->resync_chunks_done = copy->chunks_done;
    progress->resync_chunks_total = copy->chunks_total;
    progress->resync_bytes_done = copy->bytes_done;
    progress->resync_bytes_total = copy->bytes_total;
  }
}

Task<Result<SyncListResponse>> Resync::sync_list(SyncListRequest request,
                                                 net::CallContext* context) {
  (void)context;
  CO_TRY_ASSIGN(StorageTarget * target, targets_->for_request(request.chain, request.chain_version,
                                                              {PublicState::kSyncing}));
  if (target->id() != request.target)
    co_return Status(StatusCode::kNotServing, "sync_list for another target");
  chunk::ChunkEngine& engine = target->engine();
  uint32_t limit = std::clamp<uint32_t>(request.limit, 1, engine.config().list_batch_max);
  std::optional<chunk::ChunkId> after;
  if (request.after) after = id_of(*request.after);
  CO_TRY_ASSIGN(std::vector<chunk::ChunkInfo> infos, engine.list(after, limit));
  SyncListResponse response;
  response.end = infos.size() < limit;
  response.chunks.reserve(infos.size());
  for (const chunk::ChunkInfo& info : infos) response.chunks.push_back(meta_of(info));
  co_return response;
}

Task<Result<SyncAck>> Resync::sync_write(SyncWriteRequest request, net::CallContext* context) {
  CO_TRY_ASSIGN(StorageTarget * target, targets_->for_request(request.chain, request.chain_version,
                                                              {PublicState::kSyncing}));
  if (target->id() != request.target)
    co_return Status(StatusCode::kNotServing, "sync_write for another target");
  const ChunkMeta& meta = request.meta;
  if (meta.state.version == 0 || meta.state.length_bytes != request.data.length ||
      meta.state.length_bytes > chunk::kChunkSizeLimitBytes)
    co_return Status(StatusCode::kInvalidArgument, "sync_write: bad version or length");
  // Forwarded writes and this copy of the same chunk apply one at a time here too.
  chunk::ChunkId id = id_of(meta.chunk);
  auto locking = target->chunk_order().lock(id);
  CO_TRY_ASSIGN(chunk::ChunkLocks::Guard guard, co_await std::move(locking));
  auto applying = apply_sync_write(target, std::move(request), context);
  co_return co_await std::move(applying);
}

Task<Result<SyncAck>> Resync::apply_sync_write(StorageTarget* target, SyncWriteRequest request,
                                               net::CallContext* context) {
  const ChunkMeta& meta = request.meta;
  chunk::ChunkEngine& engine = target->engine();
  chunk::ChunkId id = id_of(meta.chunk);
  Result<chunk::ChunkInfo> held = engine.stat(id);
  bool damaged = !held.ok() && held.status().code() == StatusCode::kCorruption;
  if (!held.ok() && !damaged && held.status().code() != StatusCode::kNotFound)
    co_return held.status();
  // The predecessor is authoritative: it sends its committed state while it holds the
  // chunk's order lock, which every forward of the chunk through it takes too, so no newer
  // update of the chunk can have reached this target meanwhile. A higher version here is
  // not newer: versions restart at 1 after a removal, and a returning target may hold a
  // version the chain never committed. Only an identical chunk is kept.
  if (held.ok() && held->committed_version == meta.state.version &&
      held->checksum == meta.state.checksum && held->length_bytes == meta.state.length_bytes &&
      held->pending_version == 0) {
    if (on_chunk_synced) on_chunk_synced(target, *held);
    co_return SyncAck{.state = state_of(*held)};
  }
  uint32_t length = meta.state.length_bytes;
  PooledBuffer buffer = buffers_.take(align_up(std::max<uint32_t>(length, 1), chunk::kBlockBytes));
  std::span<std::byte> data(buffer.data(), length);
  if (length > 0) {
    auto pulling = context->connection->read_from(request.data, data, context->deadline);
    CO_TRY(co_await std::move(pulling));
  }
  if (damaged) {
    // Checked before the damaged record goes (below, replace checks it as it stores).
    if (crc32c(data) != meta.state.checksum)
      co_return Status(StatusCode::kChecksumMismatch, "sync_write: the pulled chunk's CRC differs");
    auto removing = engine.remove(id);
    CO_TRY(co_await std::move(removing));
  }
  chunk::UpdateVersion version{
      .version = meta.state.version,
      .chain_version = engine_chain_version(request.chain_version),
      .tag = chunk::UpdateTag{.client_id = meta.client_id, .request_id = meta.request_id}};
  // The engine checks the pulled bytes against meta.state.checksum as it computes their
  // block CRCs (kChecksumMismatch, nothing stored): no separate pass over the chunk here.
  auto replacing = engine.replace(id, data, meta.state.checksum, version);
  CO_TRY_ASSIGN(chunk::ChunkInfo info, co_await std::move(replacing));
  if (on_chunk_synced) on_chunk_synced(target, info);
  co_return SyncAck{.state = state_of(info)};
}

Task<Result<SyncAck>> Resync::sync_remove(SyncRemoveRequest request, net::CallContext* context) {
  (void)context;
  CO_TRY_ASSIGN(StorageTarget * target, targets_->for_request(request.chain, request.chain_version,
                                                              {PublicState::kSyncing}));
  if (target->id() != request.target)
    co_return Status(StatusCode::kNotServing, "sync_remove for another target");
  chunk::ChunkId id = id_of(request.chunk);
  auto locking = target->chunk_order().lock(id);
  CO_TRY_ASSIGN(chunk::ChunkLocks::Guard guard, co_await std::move(locking));
  auto removing = target->engine().remove(id);
  Status removed = co_await std::move(removing);
  if (!removed.ok() && removed.code() != StatusCode::kNotFound) co_return removed;
  co_return SyncAck{.state = held_state(target, id)};
}

Task<Result<SyncDoneResponse>> Resync::sync_done(SyncDoneRequest request,
                                                 net::CallContext* context) {
  (void)context;
  CO_TRY_ASSIGN(StorageTarget * target, targets_->for_request(request.chain, request.chain_version,
                                                              {PublicState::kSyncing}));
  if (target->id() != request.target)
    co_return Status(StatusCode::kNotServing, "sync_done for another target");
  if (target->view().version != request.chain_version)
    co_return Status(StatusCode::kStaleChain, "sync_done at another chain version");
  target->set_local(LocalState::kUpToDate, request.chain_version);
  MICA_LOG(Info, "craq",
           "target {}: resync done at chain {} version {} ({} chunks, {} bytes copied, {} "
           "removed)",
           target->id(), request.chain, request.chain_version, request.chunks_copied,
           request.bytes_copied, request.chunks_removed);
  co_return SyncDoneResponse{};
}

}  // namespace mica::craq
