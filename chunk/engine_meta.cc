// The ChunkEngine operations that change or read metadata only: commit, abort, remove, stat,
// last_chunk, list, space, counters and close (the data-path operations are in engine.cc).
#include "chunk/engine.h"

namespace mica::chunk {
namespace {

Status not_found(ChunkId id) {
  return Status(StatusCode::kNotFound, fmt::format("chunk {} does not exist", id));
}

}  // namespace

Result<ChunkRecord> ChunkEngine::load_pending(ChunkId id, uint32_t version, const char* operation) {
  Result<std::optional<ChunkRecord>> record = load(id);
  if (!record.ok()) return record.status();
  if (!*record) return not_found(id);
  if (!(*record)->has_pending() || (*record)->pending_version != version)
    return Status(
        StatusCode::kStaleVersion,
        fmt::format("chunk {}: {} of version {}, but committed is {} and pending is {}", id,
                    operation, version, (*record)->committed_version, (*record)->pending_version));
  return std::move(**record);
}

Task<Result<ChunkInfo>> ChunkEngine::commit(ChunkId id, uint32_t version, uint32_t chain_version) {
  auto admitting = begin_update(id);
  Result<UpdateTicket> ticket = co_await std::move(admitting);
  if (!ticket.ok()) co_return ticket.status();
  CO_TRY_ASSIGN(ChunkRecord record, load_pending(id, version, "commit"));
  // A commit decided under an older chain configuration must not land after a newer one.
  if (chain_version < record.chain_version)
    co_return Status(StatusCode::kStaleVersion,
                     fmt::format("chunk {}: commit of version {} under chain version {}, older "
                                 "than the chunk's {}",
                                 id, version, chain_version, record.chain_version));
  ChunkRecord next = record;
  next.committed_version = record.pending_version;
  next.committed = record.pending;
  next.committed_crcs = record.pending_crcs;
  next.committed_tag = record.pending_tag;
  next.pending_version = 0;
  next.pending = {};
  next.pending_crcs.clear();
  next.pending_tag = {};
  next.chain_version = std::max(record.chain_version, chain_version);
  auto putting = put_record(id, &next);
  CO_TRY(co_await std::move(putting));
  // The old version is unreachable only now that the new record is durable.
  if (record.has_committed()) slots_->release(record.committed);
  co_return next.info(id);
}

Task<Status> ChunkEngine::abort(ChunkId id, uint32_t version) {
  auto admitting = begin_update(id);
  Result<UpdateTicket> ticket = co_await std::move(admitting);
  if (!ticket.ok()) co_return ticket.status();
  CO_TRY_ASSIGN(ChunkRecord record, load_pending(id, version, "abort"));
  if (record.has_committed()) {
    ChunkRecord next = record;
    next.pending_version = 0;
    next.pending = {};
    next.pending_crcs.clear();
    next.pending_tag = {};
    auto putting = put_record(id, &next);
    CO_TRY(co_await std::move(putting));
  } else {
    auto erasing = erase_record(id);
    CO_TRY(co_await std::move(erasing));
    --chunk_count_;
  }
  slots_->release(record.pending);
  co_return Status();
}

Task<Status> ChunkEngine::remove(ChunkId id) {
  auto admitting = begin_update(id);
  Result<UpdateTicket> ticket = co_await std::move(admitting);
  if (!ticket.ok()) co_return ticket.status();
  Result<std::optional<ChunkRecord>> record = load(id);
  // A damaged record is removable: that is how a target sheds a chunk it cannot trust.
  bool damaged = !record.ok() && record.status().code() == StatusCode::kCorruption;
  if (!record.ok() && !damaged) co_return record.status();
  if (record.ok() && !*record) co_return not_found(id);
  auto erasing = erase_record(id);
  CO_TRY(co_await std::move(erasing));
  --chunk_count_;
  if (record.ok()) {
    if ((*record)->has_committed()) slots_->release((*record)->committed);
    if ((*record)->has_pending()) slots_->release((*record)->pending);
  }
  co_return Status();
}

Result<ChunkInfo> ChunkEngine::stat(ChunkId id) {
  auto record = load(id);
  if (!record.ok()) return record.status();
  if (!*record) return not_found(id);
  return (*record)->info(id);
}

Result<std::optional<ChunkInfo>> ChunkEngine::last_chunk(uint64_t inode) {
  std::optional<ChunkInfo> last;
  Status status = with_chunks_cursor([&](kv::Cursor& cursor) -> Status {
    // The last key below (inode + 1, 0); for the largest inode, the last key overall.
    Result<std::optional<kv::Entry>> entry = std::optional<kv::Entry>();
    if (inode == UINT64_MAX) {
      entry = cursor.last();
    } else {
      ChunkKey next = encode_chunk_key(ChunkId{inode + 1, 0});
      entry = cursor.seek(key_view(next));
      if (entry.ok()) entry = *entry ? cursor.prev() : cursor.last();
    }
    RETURN_IF_ERROR(entry.status());
    ChunkId id;
    if (!*entry || !decode_chunk_key((*entry)->key, &id) || id.inode != inode) return Status();
    Result<ChunkRecord> record = decode_record((*entry)->value);
    if (!record.ok())
      return Status(StatusCode::kCorruption,
                    fmt::format("chunk {}: {}", id, record.status().message()));
    last = record->info(id);
    return Status();
  });
  if (!status.ok()) return status;
  return last;
}

Result<std::vector<ChunkInfo>> ChunkEngine::list(std::optional<ChunkId> after, uint32_t limit) {
  limit = std::min(limit, config_.list_batch_max);
  std::vector<ChunkInfo> infos;
  Status status = with_chunks_cursor([&](kv::Cursor& cursor) -> Status {
    Result<std::optional<kv::Entry>> entry = std::optional<kv::Entry>();
    if (after) {
      ChunkKey start = encode_chunk_key(*after);
      entry = cursor.seek(key_view(start));
      if (entry.ok() && *entry && (*entry)->key == key_view(start)) entry = cursor.next();
    } else {
      entry = cursor.first();
    }
    for (; entry.ok() && *entry && infos.size() < limit; entry = cursor.next()) {
      ChunkId id;
      if (!decode_chunk_key((*entry)->key, &id)) continue;  // not a chunk: fsck reports it
      Result<ChunkRecord> record = decode_record((*entry)->value);
      if (record.ok()) {
        infos.push_back(record->info(id));
      } else {
        ChunkInfo& damaged = infos.emplace_back();
        damaged.id = id;
        damaged.damaged = true;
      }
    }
    return entry.status();
  });
  if (!status.ok()) return status;
  return infos;
}

SpaceStats ChunkEngine::space() {
  SpaceStats stats;
  stats.chunks = chunk_count_;
  slots_->fill_stats(&stats);
  Result<uint64_t> lmdb_bytes = env_->used_bytes();  // LMDB's pages or the simulated log
  if (lmdb_bytes.ok()) stats.lmdb_bytes = *lmdb_bytes;
  return stats;
}

EngineCounters ChunkEngine::counters() const {
  EngineCounters c = counters_;
  if (env_) {
    c.meta_requests = env_->counters().requests.load(std::memory_order_relaxed);
    c.meta_transactions = env_->counters().transactions.load(std::memory_order_relaxed);
  }
  return c;
}

Task<Status> ChunkEngine::close() {
  read_txn_.reset();
  Status status;
  if (env_) {
    auto closing_env = env_->close();  // waits for the writer to leave; nothing may be queued
    status = co_await std::move(closing_env);
  }
  if (!slots_) co_return status;
  auto closing = slots_->close();
  Status slots_closed = co_await std::move(closing);
  co_return status.ok() ? slots_closed : status;
}

}  // namespace mica::chunk
