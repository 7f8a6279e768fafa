// The head's side of the update path: checks, admission, the chunk's order lock, retries
// recognised by their tag, leftover pending versions resolved, the payload pulled and
// applied (craq/storage_update.h). The member side and the forward itself live in
// storage_forward.cc.
#include <fmt/format.h>

#include <algorithm>

#include "async/crc32c.h"
#include "async/log.h"
#include "craq/storage_update.h"
#include "craq/storage_update_parts.h"

namespace mica::craq {

using namespace update_parts;

namespace update_parts {

Staged::Staged(BufferPool* pool, size_t length) : length_(length) {
  if (length > 0) buffer_ = pool->take(length);  // whole 4 KiB blocks: the pool rounds up
}

Status validate_update(const UpdateIO& io, const net::RemoteBuffer& payload,
                       const chunk::ChunkEngineConfig& engine) {
  // A removal touches no range: it needs no chunk size (the client sends 0).
  if (io.kind == UpdateKind::kRemove) return Status();
  if (io.chunk_size_bytes == 0)
    return Status(StatusCode::kInvalidArgument, "an update needs the file's chunk_size_bytes");
  if (io.chunk_size_bytes > engine.chunk_size_max_bytes)
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("chunk size {} is beyond the target's limit of {} bytes",
                              io.chunk_size_bytes, engine.chunk_size_max_bytes));
  uint64_t end = uint64_t{io.offset} + io.length;
  switch (io.kind) {
    case UpdateKind::kWrite:
      if (io.length == 0) return Status(StatusCode::kInvalidArgument, "a write of 0 bytes");
      if (end > io.chunk_size_bytes)
        return Status(StatusCode::kOutOfRange,
                      fmt::format("write of bytes [{}, {}) past the chunk size {}", io.offset, end,
                                  io.chunk_size_bytes));
      if (payload.length != io.length)
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("write of {} bytes names a payload buffer of {} bytes", io.length,
                                  payload.length));
      return Status();
    case UpdateKind::kTruncate:
      if (io.length > io.chunk_size_bytes)
        return Status(StatusCode::kOutOfRange,
                      fmt::format("truncate to {} bytes past the chunk size {}", io.length,
                                  io.chunk_size_bytes));
      return Status();
    case UpdateKind::kRemove:
      return Status();
  }
  return Status(StatusCode::kInvalidArgument, "unknown update kind");
}

Result<std::optional<chunk::ChunkInfo>> stat_of(chunk::ChunkEngine& engine, chunk::ChunkId id) {
  Result<chunk::ChunkInfo> info = engine.stat(id);
  if (info.ok()) return std::optional<chunk::ChunkInfo>(*info);
  if (info.status().code() == StatusCode::kNotFound) return std::optional<chunk::ChunkInfo>();
  return info.status();
}

Task<Status> pull(net::Connection* connection, net::RemoteBuffer remote, std::span<std::byte> out,
                  TimePoint deadline) {
  if (remote.length != out.size())
    co_return Status(
        StatusCode::kInvalidArgument,
        fmt::format("payload buffer of {} bytes for {} bytes", remote.length, out.size()));
  if (out.empty()) co_return Status();
  if (connection == nullptr)
    co_return Status(StatusCode::kInvalidArgument, "no connection to pull the payload over");
  auto reading = connection->read_from(remote, out, deadline);
  co_return co_await std::move(reading);
}

Task<Result<uint32_t>> read_whole_pending(chunk::ChunkEngine* engine, chunk::ChunkId id,
                                          BufferPool* pool, Staged* out) {
  Result<chunk::ChunkInfo> info = engine->stat(id);
  if (!info.ok()) co_return info.status();
  if (info->pending_version == 0)
    co_return Status(StatusCode::kNotFound, fmt::format("chunk {} has no pending version", id));
  *out = Staged(pool, info->pending_length_bytes);
  if (info->pending_length_bytes == 0) co_return uint32_t{0};
  auto reading = engine->read_pending(id, 0, out->bytes());
  Result<chunk::ReadResult> read = co_await std::move(reading);
  if (!read.ok()) co_return read.status();
  if (read->bytes != info->pending_length_bytes)
    co_return Status(StatusCode::kInternal,
                     fmt::format("chunk {}: pending version read {} of {} bytes", id, read->bytes,
                                 info->pending_length_bytes));
  co_return read->crc;
}

}  // namespace update_parts

UpdatePath::UpdatePath(StorageTargets* targets, net::ConnectionPool* pool,
                       net::Transport* transport, const StorageServerOptions* options)
    : targets_(targets), pool_(pool), transport_(transport), options_(options) {}

UpdatePath::~UpdatePath() {
  MICA_ASSERT_MSG(in_flight_ == 0, "UpdatePath destroyed with updates in flight");
}

Task<void> UpdatePath::stop() {
  stopping_ = true;
  if (in_flight_ == 0) co_return;
  idle_.reset();
  Status idle = co_await idle_.wait_uncancellable();
  MICA_ASSERT(idle.ok());
}

TimePoint UpdatePath::forward_deadline(TimePoint caller) const {
  return std::min(caller, deadline_after(options_->forward_timeout));
}

RecentUpdates& UpdatePath::recent(const StorageTarget* target) {
  auto it = recent_.find(target);
  if (it == recent_.end())
    it = recent_.try_emplace(target, options_->recent_updates_max, options_->recent_update_age)
             .first;
  return it->second;
}

void UpdatePath::remember(const StorageTarget* target, const chunk::ChunkInfo& committed) {
  ChunkRef chunk{.inode = committed.id.inode, .index = committed.id.index};
  recent(target).record(committed.committed_tag, chunk, state_of(committed),
                        Executor::current()->now());
}

namespace {

// The head that takes io: kNotServing / kStaleChain from the view, kNotHead when not head.
Result<StorageTarget*> head_for(const StorageTargets* targets, const UpdateIO& io) {
  Result<StorageTarget*> found = targets->for_request(
      io.chain, io.chain_version, {PublicState::kServing, PublicState::kSyncing});
  if (!found.ok()) return found.status();
  const ChainView& view = (*found)->view();
  if (!view.head)
    return Status(StatusCode::kNotHead,
                  fmt::format("chain {} v{}: target {} is not the head (updates go to the "
                              "first serving target)",
                              io.chain, view.version, (*found)->id()));
  return found;
}

// Applies the client's update here as pending `version`, committed at once when the head is
// the chain's only write-taker.
Task<Result<chunk::ChunkInfo>> apply_at_head(StorageTarget* target, UpdateIO io, uint32_t version,
                                             std::span<const std::byte> payload, bool alone) {
  chunk::ChunkId id = chunk_id(io.chunk);
  chunk::UpdateVersion v = version_of(target, version, io);
  chunk::ChunkEngine& engine = target->engine();
  if (io.kind == UpdateKind::kWrite) {
    auto writing = alone ? engine.write_and_commit(id, io.offset, payload, io.payload_crc, v)
                         : engine.write(id, io.offset, payload, io.payload_crc, v);
    co_return co_await std::move(writing);
  }
  auto truncating = engine.truncate(id, io.length, v);
  Result<chunk::ChunkInfo> truncated = co_await std::move(truncating);
  if (!truncated.ok() || !alone) co_return truncated;
  auto committing = engine.commit(id, version, v.chain_version);
  co_return co_await std::move(committing);
}

}  // namespace

Task<Result<UpdateResponse>> UpdatePath::update(UpdateRequest request, net::CallContext* context) {
  Activity activity(this);
  if (stopping_) co_return Status(StatusCode::kClosed, "the storage server is stopping");
  Result<StorageTarget*> found = head_for(targets_, request.io);
  if (!found.ok()) co_return found.status();
  StorageTarget* target = *found;
  Status valid = validate_update(request.io, request.payload, target->engine().config());
  if (!valid.ok()) co_return valid;
  if (!target->updates_in_flight().try_acquire()) {
    ++target->counters().busy_refusals;
    co_return Status(StatusCode::kBusy, fmt::format("target {}: {} updates in flight, retry later",
                                                    target->id(), options_->updates_in_flight_max));
  }
  SemaphoreGuard admission(target->updates_in_flight());
  auto locking = target->chunk_order().lock(chunk_id(request.io.chunk));
  Result<chunk::ChunkLocks::Guard> order = co_await std::move(locking);
  if (!order.ok()) co_return order.status();
  // The routing may have changed while this update waited for the chunk.
  Result<StorageTarget*> again = head_for(targets_, request.io);
  if (!again.ok()) co_return again.status();
  StorageTarget::UpdateAdmission admitted(target, request.io.chain_version);
  TimePoint caller = context != nullptr ? context->deadline : kNoDeadline;
  auto running = update_locked(target, std::move(request), context, forward_deadline(caller));
  co_return co_await std::move(running);
}

Task<Result<UpdateResponse>> UpdatePath::update_locked(StorageTarget* target, UpdateRequest request,
                                                       net::CallContext* context,
                                                       TimePoint deadline) {
  const UpdateIO io = request.io;
  chunk::ChunkId id = chunk_id(io.chunk);
  chunk::UpdateTag tag = tag_of(io);
  // Applied here (or committed here by a forward while another target was head) within the
  // table's bounds, whatever committed on top of it since: answered, never applied again.
  std::optional<ChunkState> done = recent(target).find(tag, io.chunk, Executor::current()->now());
  if (done) {
    ++target->counters().duplicates;
    co_return UpdateResponse{.state = *done, .duplicate = true};
  }
  auto finishing = finish_removal(target, id, deadline);  // one a failure interrupted
  CO_TRY(co_await std::move(finishing));
  if (io.kind == UpdateKind::kRemove) {
    auto removing = remove_down(target, io, deadline);
    Result<ChunkState> removed = co_await std::move(removing);
    if (!removed.ok()) co_return removed.status();
    ++target->counters().updates;
    co_return UpdateResponse{.state = *removed};
  }
  Result<std::optional<chunk::ChunkInfo>> info = stat_of(target->engine(), id);
  if (!info.ok()) co_return info.status();
  // The chunk's own tags: the durable fallback (a table lost in a restart, or outgrown).
  if (info->has_value() && !tag.empty()) {
    if ((*info)->committed_tag == tag) {  // a retry of an update already committed
      ++target->counters().duplicates;
      co_return UpdateResponse{.state = state_of(**info), .duplicate = true};
    }
    if ((*info)->pending_version != 0 && (*info)->pending_tag == tag) {  // a retry: finish it
      ++target->counters().duplicates;
      auto finishing = finish_pending(target, io, **info, deadline);
      Result<chunk::ChunkInfo> finished = co_await std::move(finishing);
      if (!finished.ok()) co_return finished.status();
      co_return UpdateResponse{.state = state_of(*finished), .duplicate = true};
    }
  }
  if (info->has_value() && (*info)->pending_version != 0) {
    // Left behind by a failure: committed through the chain before this update builds on it.
    MICA_LOG(Info, "craq", "target {}: chunk {} resolving leftover pending version {}",
             target->id(), id, (*info)->pending_version);
    auto finishing = finish_pending(target, io, **info, deadline);
    Result<chunk::ChunkInfo> finished = co_await std::move(finishing);
    if (!finished.ok()) co_return finished.status();
    *info = *finished;
  }
  uint32_t version = (info->has_value() ? (*info)->committed_version : 0) + 1;
  Staged payload(&staging_, io.kind == UpdateKind::kWrite ? io.length : 0);
  if (io.kind == UpdateKind::kWrite) {
    auto pulling = pull(context != nullptr ? context->connection : nullptr, request.payload,
                        payload.bytes(), deadline);
    Status pulled = co_await std::move(pulling);
    if (!pulled.ok()) co_return pulled;
  }
  bool alone = target->view().tail;  // the head is also the write tail: commit at once
  auto applying = apply_at_head(target, io, version, payload.view(), alone);
  Result<chunk::ChunkInfo> applied = co_await std::move(applying);
  if (!applied.ok()) co_return applied.status();
  if (alone) remember(target, *applied);
  if (!alone) {
    Content content{.bytes = payload.view()};
    auto passing = pass_down(target, io, version, content, deadline);
    applied = co_await std::move(passing);
    if (!applied.ok()) co_return applied.status();
  }
  ++target->counters().updates;
  target->counters().update_bytes += io.kind == UpdateKind::kWrite ? io.length : 0;
  co_return UpdateResponse{.state = state_of(*applied)};
}

UpdateIO UpdatePath::settling_io(const StorageTarget* target, ChunkRef chunk) {
  const ChainView& view = target->view();
  return UpdateIO{.chain = view.chain,
                  .chain_version = view.version,
                  .chunk = chunk,
                  .chunk_size_bytes = target->config().engine.chunk_size_max_bytes};
}

Task<Status> UpdatePath::finish_removal(StorageTarget* target, chunk::ChunkId id,
                                        TimePoint deadline) {
  Result<std::optional<chunk::ChunkInfo>> info = stat_of(target->engine(), id);
  if (!info.ok()) co_return info.status();
  std::optional<StorageTarget::RemovalMark> mark;
  if (info->has_value()) mark = target->removing(**info);
  if (!mark) {
    target->clear_removing(id);  // void, or for a chunk already gone
    co_return Status();
  }
  MICA_LOG(Info, "craq", "target {}: chunk {} finishing a removal a failure interrupted",
           target->id(), id);
  UpdateIO io = settling_io(target, ChunkRef{.inode = id.inode, .index = id.index});
  io.kind = UpdateKind::kRemove;
  io.chunk_size_bytes = 0;
  io.client_id = mark->tag.client_id;
  io.request_id = mark->tag.request_id;
  auto removing = remove_down(target, io, deadline);
  Result<ChunkState> removed = co_await std::move(removing);
  co_return removed.status();
}

Task<Status> UpdatePath::settle(StorageTarget* target, ChunkRef chunk, TimePoint deadline) {
  Activity activity(this);
  if (stopping_) co_return Status(StatusCode::kClosed, "the storage server is stopping");
  chunk::ChunkId id = chunk_id(chunk);
  // Waits for an update of the chunk in flight here: what is pending after it is a leftover.
  auto locking = target->chunk_order().lock(id);
  Result<chunk::ChunkLocks::Guard> order = co_await std::move(locking);
  if (!order.ok()) co_return order.status();
  if (target->view().read_tail != target->id()) co_return Status();  // the caller looks again
  StorageTarget::UpdateAdmission admitted(target, target->view().version);
  TimePoint until = forward_deadline(deadline);
  auto finishing = finish_removal(target, id, until);
  CO_TRY(co_await std::move(finishing));
  Result<std::optional<chunk::ChunkInfo>> info = stat_of(target->engine(), id);
  if (!info.ok()) co_return info.status();
  if (!info->has_value() || (*info)->pending_version == 0) co_return Status();
  MICA_LOG(Info, "craq", "target {}: chunk {} read tail settling leftover pending version {}",
           target->id(), id, (*info)->pending_version);
  auto pending = finish_pending(target, settling_io(target, chunk), **info, until);
  Result<chunk::ChunkInfo> finished = co_await std::move(pending);
  co_return finished.status();
}

Task<Result<chunk::ChunkInfo>> UpdatePath::finish_pending(StorageTarget* target, UpdateIO io,
                                                          chunk::ChunkInfo info,
                                                          TimePoint deadline) {
  chunk::ChunkId id = info.id;
  uint32_t version = info.pending_version;
  uint32_t chain_version = static_cast<uint32_t>(target->view().version);
  if (target->view().tail) {
    auto committing = target->engine().commit(id, version, chain_version);
    Result<chunk::ChunkInfo> committed = co_await std::move(committing);
    if (committed.ok()) remember(target, *committed);
    co_return committed;
  }
  Staged whole;
  auto reading = read_whole_pending(&target->engine(), id, &staging_, &whole);
  Result<uint32_t> crc = co_await std::move(reading);
  if (!crc.ok()) co_return crc.status();
  // The pending version goes down as the whole chunk, under the tag of the update that made it.
  UpdateIO pending_io = io;
  pending_io.kind = UpdateKind::kWrite;
  pending_io.offset = 0;
  pending_io.length = static_cast<uint32_t>(whole.view().size());
  pending_io.payload_crc = *crc;
  pending_io.client_id = info.pending_tag.client_id;
  pending_io.request_id = info.pending_tag.request_id;
  Content content{.bytes = whole.view(), .full = true, .full_crc = *crc};
  auto passing = pass_down(target, pending_io, version, content, deadline);
  co_return co_await std::move(passing);
}

}  // namespace mica::craq
