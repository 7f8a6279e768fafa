// The member's side of the update path and the forward between members: a forwarded update
// applied as pending (committed at once by the write tail), passed on to the successor (the
// whole chunk to a syncing one, or to one that lacks the version it builds on), committed
// when the successor answered and checked against the successor's state
// (craq/storage_update.h, docs/craq.md).
#include <fmt/format.h>

#include "async/log.h"
#include "craq/storage_update.h"
#include "craq/storage_update_parts.h"

namespace mica::craq {

using namespace update_parts;

namespace {

// A forward the successor never answered, or answered that its own forward went unanswered
// (a cancelled connect, a timeout, a lost connection): the update may or may not have reached
// the tail. The client may retry it safely (every replica keeps the update's client and
// request id), so it hears kBusy, never a cancellation or a timeout that was not its own.
Status unanswered_forward(const Status& failure, TargetId from, TargetId to) {
  if (failure.code() != StatusCode::kCancelled && !is_transport_failure(failure.code()))
    return failure;
  return Status(StatusCode::kBusy,
                fmt::format("target {}: the update did not pass on to target {} ({}); retry",
                            from, to, failure));
}

// The target that takes a forward of io: serving, or the syncing write tail.
Result<StorageTarget*> member_for(const StorageTargets* targets, const UpdateIO& io) {
  return targets->for_request(io.chain, io.chain_version,
                              {PublicState::kServing, PublicState::kSyncing});
}

// True when the member holds the forward's version already (a re-forward after a failure):
// the whole chunk as its committed version, or a delta whose version and tag are its
// committed ones. Anything else at or above the forward's version is not "newer" (versions
// restart after a removal; a returning target may hold a version the chain never
// committed): the predecessor, which holds the chunk's order lock, is authoritative, so a
// delta is refused with kStaleVersion (the predecessor sends the whole chunk) and a whole
// chunk applies. False: apply the forward.
Result<bool> holds_already(const StorageTarget* target, const ForwardRequest& request,
                           const chunk::ChunkInfo& info) {
  if (request.full_chunk)
    return info.committed_version == request.version && info.checksum == request.full_crc &&
           info.length_bytes == request.full_length;
  if (request.version > info.committed_version) return false;
  if (request.version == info.committed_version && !tag_of(request.io).empty() &&
      info.committed_tag == tag_of(request.io))
    return true;
  return Status(StatusCode::kStaleVersion,
                fmt::format("target {}: chunk {} holds committed version {}; version {} differs "
                            "(send the whole chunk)",
                            target->id(), info.id, info.committed_version, request.version));
}

}  // namespace

Task<Result<ForwardResponse>> UpdatePath::forward(ForwardRequest request,
                                                  net::CallContext* context) {
  Activity activity(this);
  if (stopping_) co_return Status(StatusCode::kClosed, "the storage server is stopping");
  const UpdateIO& io = request.io;
  Result<StorageTarget*> found = member_for(targets_, io);
  if (!found.ok()) co_return found.status();
  StorageTarget* target = *found;
  if (request.target != target->id())
    co_return Status(StatusCode::kNotServing,
                     fmt::format("chain {}: a forward for target {} reached target {}", io.chain,
                                 request.target, target->id()));
  if (!target->updates_in_flight().try_acquire()) {
    ++target->counters().busy_refusals;
    co_return Status(StatusCode::kBusy, fmt::format("target {}: {} updates in flight", target->id(),
                                                    options_->updates_in_flight_max));
  }
  SemaphoreGuard admission(target->updates_in_flight());
  auto locking = target->chunk_order().lock(chunk_id(io.chunk));
  Result<chunk::ChunkLocks::Guard> order = co_await std::move(locking);
  if (!order.ok()) co_return order.status();
  Result<StorageTarget*> again = member_for(targets_, io);
  if (!again.ok()) co_return again.status();
  StorageTarget::UpdateAdmission admitted(target, io.chain_version);
  TimePoint caller = context != nullptr ? context->deadline : kNoDeadline;
  auto running = forward_locked(target, std::move(request), context, forward_deadline(caller));
  co_return co_await std::move(running);
}

Task<Result<ForwardResponse>> UpdatePath::forward_locked(StorageTarget* target,
                                                         ForwardRequest request,
                                                         net::CallContext* context,
                                                         TimePoint deadline) {
  const UpdateIO io = request.io;
  chunk::ChunkId id = chunk_id(io.chunk);
  ++target->counters().forwards;
  if (io.kind == UpdateKind::kRemove) {
    auto removing = remove_down(target, io, deadline);
    Result<ChunkState> removed = co_await std::move(removing);
    if (!removed.ok()) co_return removed.status();
    co_return ForwardResponse{.state = *removed};
  }
  Result<std::optional<chunk::ChunkInfo>> found = stat_of(target->engine(), id);
  if (!found.ok()) co_return found.status();
  chunk::ChunkInfo info = found->value_or(chunk::ChunkInfo{.id = id});
  Result<bool> held = holds_already(target, request, info);
  if (!held.ok()) co_return held.status();
  if (*held) co_return ForwardResponse{.state = state_of(info)};
  uint32_t length = request.full_chunk              ? request.full_length
                    : io.kind == UpdateKind::kWrite ? io.length
                                                    : 0;
  Staged data(&staging_, length);
  auto pulling = pull(context != nullptr ? context->connection : nullptr, request.payload,
                      data.bytes(), deadline);
  Status pulled = co_await std::move(pulling);
  if (!pulled.ok()) co_return pulled;
  Content content{.bytes = data.view(), .full = request.full_chunk, .full_crc = request.full_crc};
  bool tail = target->view().tail;  // what apply_forward decides by (it reads it at once)
  auto applying = apply_forward(target, &request, info, content);
  Result<chunk::ChunkInfo> applied = co_await std::move(applying);
  if (!applied.ok()) co_return applied.status();
  if (tail) remember(target, *applied);  // committed here at once
  // Passed on by the same view it was applied by: one that changed meanwhile must not make a
  // member that applied pending answer as the tail (nothing committed here), nor one that
  // committed as the tail pass on what is no longer pending. A pass under a changed view
  // fails at the successor (stale chain) and the predecessor retries; a resync at the new
  // version lists only after this forward ended (StorageTarget::UpdateAdmission).
  if (!tail) {
    auto passing = pass_down(target, io, request.version, content, deadline);
    applied = co_await std::move(passing);
    if (!applied.ok()) co_return applied.status();
  }
  co_return ForwardResponse{.state = state_of(*applied)};
}

namespace {

// The whole chunk `content` as pending `version` on top of committed `info` (a non-tail
// member resolving a leftover): a write from 0 when it covers the committed bytes, else a
// cut of the committed bytes (a shrinking truncate), checked against the whole chunk's CRC.
Task<Result<chunk::ChunkInfo>> apply_whole_pending(chunk::ChunkEngine* engine,
                                                   chunk::ChunkInfo info,
                                                   UpdatePath::Content content,
                                                   chunk::UpdateVersion v) {
  chunk::ChunkId id = info.id;
  uint32_t length = static_cast<uint32_t>(content.bytes.size());
  if (length > 0 && length >= info.length_bytes) {
    auto writing = engine->write(id, 0, content.bytes, content.full_crc, v);
    co_return co_await std::move(writing);
  }
  auto truncating = engine->truncate(id, length, v);
  Result<chunk::ChunkInfo> cut = co_await std::move(truncating);
  if (!cut.ok() || cut->pending_checksum == content.full_crc) co_return cut;
  auto aborting = engine->abort(id, v.version);
  Status aborted = co_await std::move(aborting);
  (void)aborted;
  co_return Status(StatusCode::kInternal,
                   fmt::format("chunk {}: committed version {} differs from the chain's; the "
                               "whole pending version {} cannot be rebuilt here",
                               id, info.committed_version, v.version));
}

// A member whose committed version is not the one the predecessor's whole chunk builds on
// (it missed a removal, or holds a version the chain never committed): its own committed
// bytes are relabelled as version v - 1, so that the whole chunk applies as pending v on top
// and readers here see nothing new until it commits. Version 1 builds on no chunk at all.
Task<Result<chunk::ChunkInfo>> rebase(chunk::ChunkEngine* engine, chunk::ChunkInfo info,
                                      chunk::UpdateVersion v, BufferPool* pool) {
  chunk::ChunkId id = info.id;
  MICA_LOG(Warn, "craq", "chunk {}: committed version {} does not precede version {}: rebased", id,
           info.committed_version, v.version);
  if (info.pending_version != 0) {
    auto aborting = engine->abort(id, info.pending_version);
    Status aborted = co_await std::move(aborting);
    if (!aborted.ok()) co_return aborted;
  }
  if (info.committed_version == 0 && v.version == 1) co_return chunk::ChunkInfo{.id = id};
  if (v.version == 1) {
    auto removing = engine->remove(id);
    Status removed = co_await std::move(removing);
    if (!removed.ok() && removed.code() != StatusCode::kNotFound) co_return removed;
    co_return chunk::ChunkInfo{.id = id};
  }
  Staged own(pool, info.committed_version != 0 ? info.length_bytes : 0);
  uint32_t crc = 0;
  if (!own.view().empty()) {
    auto reading = engine->read_with_crc(id, 0, own.bytes());
    Result<chunk::ReadResult> read = co_await std::move(reading);
    if (!read.ok()) co_return read.status();
    if (read->bytes != own.view().size())
      co_return Status(StatusCode::kInternal, fmt::format("chunk {}: short read", id));
    crc = read->crc;
  }
  chunk::UpdateVersion below = v;
  below.version = v.version - 1;
  below.tag = info.committed_tag;  // still the bytes of the update that made them
  auto replacing = engine->replace(id, own.view(), crc, below);
  co_return co_await std::move(replacing);
}

}  // namespace

Task<Result<chunk::ChunkInfo>> UpdatePath::apply_forward(StorageTarget* target,
                                                         const ForwardRequest* request,
                                                         chunk::ChunkInfo info, Content content) {
  chunk::ChunkEngine& engine = target->engine();
  chunk::ChunkId id = info.id;
  const UpdateIO& io = request->io;
  uint32_t version = request->version;
  chunk::UpdateVersion v = version_of(target, version, io);
  bool tail = target->view().tail;
  bool have_pending = info.pending_version == version &&
                      (content.full ? info.pending_checksum == content.full_crc &&
                                          info.pending_length_bytes == content.bytes.size()
                                    : !tag_of(io).empty() && info.pending_tag == tag_of(io));
  if (have_pending) {  // applied here before, by a forward that failed further down
    if (!tail) co_return info;
    auto committing = engine.commit(id, version, v.chain_version);
    co_return co_await std::move(committing);
  }
  if (content.full && tail) {  // the predecessor's whole chunk is the chain's truth
    auto replacing = engine.replace(id, content.bytes, content.full_crc, v);
    co_return co_await std::move(replacing);
  }
  if (content.full && version != info.committed_version + 1) {
    auto rebasing = rebase(&engine, info, v, &staging_);
    Result<chunk::ChunkInfo> rebased = co_await std::move(rebasing);
    if (!rebased.ok()) co_return rebased.status();
    info = *rebased;
  }
  if (version != info.committed_version + 1)
    co_return Status(StatusCode::kStaleVersion,
                     fmt::format("target {}: chunk {} holds committed version {}; version {} "
                                 "builds on another",
                                 target->id(), id, info.committed_version, version));
  if (info.pending_version != 0) {  // another update's leftover: the forward replaces it
    auto aborting = engine.abort(id, info.pending_version);
    Status aborted = co_await std::move(aborting);
    if (!aborted.ok()) co_return aborted;
    info.pending_version = 0;
  }
  if (content.full) {
    auto whole = apply_whole_pending(&engine, info, content, v);
    co_return co_await std::move(whole);
  }
  if (io.kind == UpdateKind::kWrite) {
    auto writing = tail ? engine.write_and_commit(id, io.offset, content.bytes, io.payload_crc, v)
                        : engine.write(id, io.offset, content.bytes, io.payload_crc, v);
    co_return co_await std::move(writing);
  }
  auto truncating = engine.truncate(id, io.length, v);
  Result<chunk::ChunkInfo> truncated = co_await std::move(truncating);
  if (!truncated.ok() || !tail) co_return truncated;
  auto committing = engine.commit(id, version, v.chain_version);
  co_return co_await std::move(committing);
}

Task<Result<chunk::ChunkInfo>> UpdatePath::pass_down(StorageTarget* target, UpdateIO io,
                                                     uint32_t version, Content content,
                                                     TimePoint deadline) {
  const ChainView view = target->view();
  chunk::ChunkId id = chunk_id(io.chunk);
  ForwardRequest request{.io = io, .target = view.successor, .version = version};
  Staged whole;
  // A syncing successor may lack the version this one builds on: it gets the whole chunk.
  bool full = content.full || view.successor_state == PublicState::kSyncing;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (full && !content.full) {
      auto reading = read_whole_pending(&target->engine(), id, &staging_, &whole);
      Result<uint32_t> crc = co_await std::move(reading);
      if (!crc.ok()) co_return crc.status();
      content = Content{.bytes = whole.view(), .full = true, .full_crc = *crc};
    }
    request.full_chunk = content.full;
    request.full_length = content.full ? static_cast<uint32_t>(content.bytes.size()) : 0;
    request.full_crc = content.full_crc;
    auto sending = send_forward(view.successor_address, request, content.bytes, deadline);
    Result<ForwardResponse> answer = co_await std::move(sending);
    if (answer.ok()) {
      auto committing = commit_checked(target, id, version, answer->state);
      co_return co_await std::move(committing);
    }
    // The successor holds another base version: send it the whole chunk instead.
    if (answer.status().code() != StatusCode::kStaleVersion || content.full) {
      MICA_LOG(Warn, "craq", "target {}: forward of chunk {} v{} to target {}: {}", target->id(),
               id, version, view.successor, answer.status());
      co_return unanswered_forward(answer.status(), target->id(), view.successor);
    }
    full = true;
  }
  co_return Status(StatusCode::kInternal, "unreachable");
}

Task<Result<ForwardResponse>> UpdatePath::send_forward(std::string address, ForwardRequest request,
                                                       std::span<const std::byte> content,
                                                       TimePoint deadline) {
  Result<SocketAddress> peer = SocketAddress::parse(address);
  if (!peer.ok())
    co_return Status(
        StatusCode::kUnreachable,
        fmt::format("successor target {} has no usable address '{}'", request.target, address));
  std::unique_ptr<net::MemoryRegion> region;
  if (!content.empty()) {
    // The successor only reads the region; registration wants a mutable span.
    std::span<std::byte> bytes(const_cast<std::byte*>(content.data()), content.size());
    Result<std::unique_ptr<net::MemoryRegion>> registered = transport_->register_memory(bytes);
    if (!registered.ok()) co_return registered.status();
    region = std::move(*registered);
    request.payload = region->remote(0, static_cast<uint32_t>(content.size()));
  }
  auto getting = pool_->get(*peer, deadline);
  Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(getting);
  Result<ForwardResponse> answer = Status(StatusCode::kInternal, "no answer");
  if (client.ok()) {
    auto calling =
        (*client)->call<StorageService::forward>(request, net::CallOptions{.deadline = deadline});
    answer = co_await std::move(calling);
  } else {
    answer = client.status();
  }
  if (region) {
    Task<void> deregistering = region->deregister(deadline_after(options_->forward_timeout));
    co_await std::move(deregistering);
  }
  co_return answer;
}

Task<Result<chunk::ChunkInfo>> UpdatePath::commit_checked(StorageTarget* target, chunk::ChunkId id,
                                                          uint32_t version, ChunkState successor) {
  uint32_t chain_version = static_cast<uint32_t>(target->view().version);
  auto committing = target->engine().commit(id, version, chain_version);
  Result<chunk::ChunkInfo> committed = co_await std::move(committing);
  if (!committed.ok()) co_return committed.status();
  remember(target, *committed);  // committed here, whatever the check below finds
  ChunkState mine = state_of(*committed);
  if (mine.version != successor.version || mine.checksum != successor.checksum ||
      mine.length_bytes != successor.length_bytes) {
    ++target->counters().checksum_mismatches;
    MICA_LOG(Error, "craq",
             "target {}: chunk {} v{} committed with checksum {:#x} ({} bytes) but the "
             "successor holds v{} checksum {:#x} ({} bytes)",
             target->id(), id, mine.version, mine.checksum, mine.length_bytes, successor.version,
             successor.checksum, successor.length_bytes);
    co_return Status(StatusCode::kInternal,
                     fmt::format("chunk {}: replicas differ after version {}", id, version));
  }
  co_return committed;
}

Task<Result<ChunkState>> UpdatePath::remove_down(StorageTarget* target, UpdateIO io,
                                                 TimePoint deadline) {
  const ChainView view = target->view();
  chunk::ChunkId id = chunk_id(io.chunk);
  if (!view.tail) {
    // The tail removes first: from here on this target's readers ask the read tail, which
    // may already have removed the chunk. The mark stays when the rest of the chain fails to
    // answer: the removal may have reached the tail, and whoever meets the mark finishes it.
    Result<std::optional<chunk::ChunkInfo>> info = stat_of(target->engine(), id);
    if (!info.ok()) co_return info.status();
    if (info->has_value())
      target->mark_removing(id, {.state = state_of(**info), .tag = tag_of(io)});
    ForwardRequest request{.io = io, .target = view.successor};
    auto sending = send_forward(view.successor_address, request, {}, deadline);
    Result<ForwardResponse> answer = co_await std::move(sending);
    if (!answer.ok()) co_return answer.status();
  }
  auto removing = target->engine().remove(id);
  Status removed = co_await std::move(removing);
  if (!removed.ok() && removed.code() != StatusCode::kNotFound) co_return removed;
  target->clear_removing(id);
  // A removed chunk keeps no tag: only this table stops a late retry from removing what
  // another client wrote since.
  recent(target).record(tag_of(io), io.chunk, ChunkState{}, Executor::current()->now());
  co_return ChunkState{};
}

}  // namespace mica::craq
