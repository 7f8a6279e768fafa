// Resync, the predecessor's side: the copy to a syncing successor (docs/craq.md).
//
// A pass merges two listings in chunk id order — the own engine's and the successor's
// (sync_list pages) — and decides per chunk: own committed chunk missing or different at the
// successor: send it whole (sync_write); successor's chunk that this target does not have:
// remove it (sync_remove); equal: nothing. Steps run concurrently up to
// resync_chunks_in_flight_max, paced by resync_bytes_per_s. A step holds the chunk's order
// lock, which every member takes for an update it applies and forwards, so no update of that
// chunk passes this target meanwhile: the successor takes exactly this target's committed
// state (replaced when version, length or checksum differ). A failed pass
// is retried with backoff while the view is unchanged; a clean one ends with sync_done.
#include <algorithm>

#include "async/file.h"
#include "async/log.h"
#include "craq/storage_resync.h"

namespace mica::craq {

namespace {

// Passes one copy may need when writes keep racing its removals; after that it is done
// anyway (each racing write was forwarded to the successor whole).
constexpr uint32_t kCopyPassesMax = 8;
// Reads of one chunk to copy, when commits keep replacing the version being read.
constexpr uint32_t kCopyReadAttemptsMax = 4;
constexpr Duration kRetryBackoffInitial = std::chrono::milliseconds(50);
constexpr Duration kRetryBackoffMax = std::chrono::seconds(5);

bool differs(const ChunkMeta& own, const ChunkMeta& remote) {
  return remote.damaged || own.state.version != remote.state.version ||
         own.state.checksum != remote.state.checksum ||
         own.state.length_bytes != remote.state.length_bytes;
}

}  // namespace

TimePoint Resync::call_deadline() const {
  return Executor::current()->now() + options_->forward_timeout;
}

bool Resync::still_current(const Copy* copy) const {
  const ChainView& view = copy->target->view();
  return !copy->stop_requested && view.version == copy->chain_version &&
         view.successor == copy->successor && view.successor_state == PublicState::kSyncing;
}

Task<void> Resync::run_copy(Resync* self, std::shared_ptr<Copy> copy) {
  if (copy->previous != nullptr) {
    // The copy this one replaces was cancelled; it ends at its next wait.
    Status waited = co_await copy->previous->ended.wait_uncancellable();
    MICA_ASSERT(waited.ok());  // an uncancellable wait without a deadline
    copy->previous.reset();
  }
  CancelSource source(co_await current_token());
  copy->cancel = &source;
  if (copy->stop_requested) source.cancel();
  Task<void> copying = self->copy_until_done(copy.get());
  copying.handle().promise().set_token(source.token());
  co_await std::move(copying);
  copy->cancel = nullptr;
  copy->finished = true;
  copy->ended.set();
  if (copy->stop_requested) {
    // Replaced or stopped: forget it unless a newer copy still waits for it (it holds it).
    auto it = self->copies_.find(copy->target);
    if (it != self->copies_.end() && it->second == copy) self->copies_.erase(it);
  }
}

Task<void> Resync::copy_until_done(Copy* copy) {
  Duration backoff{0};
  CancelToken token = co_await current_token();
  while (!token.cancelled() && still_current(copy)) {
    auto passing = copy_pass(copy);
    Status status = co_await std::move(passing);
    if (status.ok() && copy->again && copy->passes < kCopyPassesMax) continue;
    if (status.ok()) {
      auto finishing = send_done(copy);
      status = co_await std::move(finishing);
    }
    if (status.ok()) {
      copy->done = true;
      MICA_LOG(Info, "craq",
               "target {}: resync of successor {} at chain {} version {} done ({} chunks, {} "
               "bytes copied, {} removed, {} passes)",
               copy->target->id(), copy->successor, copy->chain, copy->chain_version,
               copy->chunks_copied, copy->bytes_copied, copy->chunks_removed, copy->passes);
      co_return;
    }
    if (token.cancelled() || !still_current(copy)) co_return;
    backoff =
        backoff == Duration(0) ? kRetryBackoffInitial : std::min(backoff * 2, kRetryBackoffMax);
    MICA_LOG(Warn, "craq", "target {}: resync of successor {} failed ({}); retrying in {} ms",
             copy->target->id(), copy->successor, status.to_string(),
             std::chrono::duration_cast<std::chrono::milliseconds>(backoff).count());
    SleepAwaiter pause = sleep_for(backoff);
    Status paused = co_await pause;
    if (!paused.ok()) co_return;
  }
}

Status Resync::count_own(Copy* copy) {
  chunk::ChunkEngine& engine = copy->target->engine();
  copy->chunks_total = 0;
  copy->bytes_total = 0;
  std::optional<chunk::ChunkId> after;
  for (;;) {
    uint32_t limit = engine.config().list_batch_max;
    Result<std::vector<chunk::ChunkInfo>> page = engine.list(after, limit);
    if (!page.ok()) return page.status();
    for (const chunk::ChunkInfo& info : *page) {
      if (info.damaged || info.committed_version == 0) continue;
      ++copy->chunks_total;
      copy->bytes_total += info.length_bytes;
    }
    if (page->size() < limit) return Status();
    after = page->back().id;
  }
}

Status Resync::refill_own(Copy* copy, Listing* own) {
  chunk::ChunkEngine& engine = copy->target->engine();
  uint32_t limit = std::min(options_->resync_list_page_max, engine.config().list_batch_max);
  std::optional<chunk::ChunkId> after;
  if (own->after) after = id_of(*own->after);
  Result<std::vector<chunk::ChunkInfo>> page = engine.list(after, limit);
  if (!page.ok()) return page.status();
  own->page.clear();
  own->next = 0;
  for (const chunk::ChunkInfo& info : *page) own->page.push_back(meta_of(info));
  own->end = page->size() < limit;
  if (!own->page.empty()) own->after = own->page.back().chunk;
  return Status();
}

Task<Status> Resync::refill_remote(Copy* copy, Listing* remote) {
  TimePoint deadline = call_deadline();
  auto connecting = successor_client(copy, deadline);
  CO_TRY_ASSIGN(std::shared_ptr<net::RpcClient> client, co_await std::move(connecting));
  SyncListRequest request{.chain = copy->chain,
                          .chain_version = copy->chain_version,
                          .target = copy->successor,
                          .after = remote->after,
                          .limit = std::max<uint32_t>(options_->resync_list_page_max, 1)};
  auto calling =
      client->call<StorageService::sync_list>(request, net::CallOptions{.deadline = deadline});
  CO_TRY_ASSIGN(SyncListResponse response, co_await std::move(calling));
  remote->page = std::move(response.chunks);
  remote->next = 0;
  remote->end = response.end || remote->page.empty();
  for (size_t i = 0; i < remote->page.size(); ++i) {
    // A successor that answers out of order would make the merge skip chunks.
    bool ordered = i == 0 ? (!remote->after || *remote->after < remote->page[i].chunk)
                          : remote->page[i - 1].chunk < remote->page[i].chunk;
    if (!ordered) co_return Status(StatusCode::kProtocolError, "sync_list out of order");
  }
  if (!remote->page.empty()) remote->after = remote->page.back().chunk;
  co_return Status();
}

Task<Status> Resync::copy_pass(Copy* copy) {
  ++copy->passes;
  copy->again = false;
  copy->error = Status();
  copy->chunks_done = 0;
  copy->bytes_done = 0;
  // An update admitted here under an older view may still commit this target's chunk without
  // passing it to the successor: list only once every such update has ended.
  if (copy->target->updates_before(copy->chain_version)) {
    auto draining = copy->target->drain_updates_before(copy->chain_version, call_deadline());
    CO_TRY(co_await std::move(draining));
  }
  CO_TRY(count_own(copy));
  Listing own;
  Listing remote;
  uint32_t in_flight = std::max<uint32_t>(options_->resync_chunks_in_flight_max, 1);
  // Twice as many steps as the bound, so that chunks are read while others are at the
  // successor (whose durable replace takes most of a step); reads and sync_writes each
  // stay within the bound.
  Semaphore slots(2 * in_flight);
  Semaphore reads(in_flight);
  Semaphore sends(in_flight);
  copy->reads = &reads;
  copy->sends = &sends;
  TaskScope steps(co_await current_token());
  CancelToken token = co_await current_token();
  while (copy->error.ok() && !token.cancelled()) {
    if (own.empty() && !own.end) copy->error = refill_own(copy, &own);
    if (copy->error.ok() && remote.empty() && !remote.end) {
      auto refilling = refill_remote(copy, &remote);
      copy->error = co_await std::move(refilling);
    }
    if (!copy->error.ok() || (own.empty() && remote.empty())) break;
    std::optional<Step> step;
    ChunkRef chunk;
    if (!own.empty() &&
        (remote.empty() || own.page[own.next].chunk < remote.page[remote.next].chunk)) {
      const ChunkMeta& mine = own.page[own.next++];
      chunk = mine.chunk;
      if (!mine.damaged && mine.state.version != 0) step = Step::kCopy;
    } else if (own.empty() || remote.page[remote.next].chunk < own.page[own.next].chunk) {
      chunk = remote.page[remote.next++].chunk;
      step = Step::kRemove;
    } else {
      const ChunkMeta& mine = own.page[own.next++];
      const ChunkMeta& theirs = remote.page[remote.next++];
      chunk = mine.chunk;
      if (!mine.damaged && mine.state.version != 0 && differs(mine, theirs)) step = Step::kCopy;
      // Only a pending version here: the chain has committed nothing of this chunk (a
      // version the successor holds is older than a removal, or was never committed).
      if (!mine.damaged && mine.state.version == 0) step = Step::kRemove;
      if (!mine.damaged && mine.state.version != 0 && !step) {
        ++copy->chunks_done;
        copy->bytes_done += mine.state.length_bytes;
      }
    }
    if (!step) continue;
    Status admitted = co_await slots.acquire(1, call_deadline());
    if (!admitted.ok()) {
      copy->error = std::move(admitted);
      break;
    }
    steps.spawn(run_step(copy, *step, chunk, &slots));
  }
  co_await steps.join();
  copy->reads = nullptr;
  copy->sends = nullptr;
  if (token.cancelled() && copy->error.ok()) co_return Status(StatusCode::kCancelled);
  co_return copy->error;
}

Task<void> Resync::run_step(Copy* copy, Step step, ChunkRef chunk, Semaphore* slots) {
  SemaphoreGuard slot(*slots);
  Task<Status> stepping = step == Step::kCopy ? copy_chunk(copy, chunk) : remove_chunk(copy, chunk);
  Status status = co_await std::move(stepping);
  if (!status.ok() && copy->error.ok()) copy->error = std::move(status);
}

Task<Result<std::shared_ptr<net::RpcClient>>> Resync::successor_client(Copy* copy,
                                                                       TimePoint deadline) {
  CO_TRY_ASSIGN(SocketAddress address, SocketAddress::parse(copy->address));
  auto getting = pool_->get(address, deadline);
  co_return co_await std::move(getting);
}

Task<Status> Resync::copy_chunk(Copy* copy, ChunkRef chunk) {
  chunk::ChunkId id = id_of(chunk);
  StorageTarget* target = copy->target;
  // No update of this chunk passes this target until its copy is at the successor (every
  // member takes the chunk's order lock for an update it applies and forwards).
  auto locking = target->chunk_order().lock(id);
  CO_TRY_ASSIGN(chunk::ChunkLocks::Guard order, co_await std::move(locking));
  for (uint32_t attempt = 0; attempt < kCopyReadAttemptsMax; ++attempt) {
    Result<chunk::ChunkInfo> info = target->engine().stat(id);
    // Removed since it was listed: the removal went down the chain like any update.
    if (!info.ok() && info.status().code() == StatusCode::kNotFound) {
      ++copy->chunks_done;
      co_return Status();
    }
    if (!info.ok()) co_return info.status();
    if (info->committed_version == 0) {
      copy->again = true;  // only a pending version: its commit is on its way; look again
      co_return Status();
    }
    auto sending = send_chunk(copy, *info);
    CO_TRY_ASSIGN(bool sent, co_await std::move(sending));
    if (!sent) continue;  // a commit replaced the version while it was read: read again
    ++copy->chunks_done;
    copy->bytes_done += info->length_bytes;
    ++copy->chunks_copied;
    copy->bytes_copied += info->length_bytes;
    co_return Status();
  }
  copy->again = true;
  co_return Status();
}

Task<Result<bool>> Resync::send_chunk(Copy* copy, chunk::ChunkInfo info) {
  uint32_t length = info.length_bytes;
  TimePoint now = Executor::current()->now();
  TimePoint start = limiter_.reserve(length, now);
  if (start > now) {
    SleepAwaiter pacing = sleep_until(start);
    CO_TRY(co_await pacing);
  }
  PooledBuffer buffer = buffers_.take(align_up(std::max<uint32_t>(length, 1), chunk::kBlockBytes));
  std::span<std::byte> data(buffer.data(), length);
  if (length > 0) {
    Status admitted = co_await copy->reads->acquire(1, call_deadline());
    CO_TRY(admitted);
    SemaphoreGuard read_slot(*copy->reads);
    auto reading = copy->target->engine().read_with_crc(info.id, 0, data);
    CO_TRY_ASSIGN(chunk::ReadResult read, co_await std::move(reading));
    if (read.bytes != length || read.crc != info.checksum) co_return false;
  }
  Status admitted = co_await copy->sends->acquire(1, call_deadline());
  CO_TRY(admitted);
  SemaphoreGuard send_slot(*copy->sends);
  CO_TRY_ASSIGN(std::unique_ptr<net::MemoryRegion> region,
                transport_->register_memory(buffer.span()));
  SyncWriteRequest request{.chain = copy->chain,
                           .chain_version = copy->chain_version,
                           .target = copy->successor,
                           .meta = meta_of(info),
                           .data = region->remote(0, length)};
  TimePoint deadline = call_deadline();
  auto writing = call_sync_write(copy, request, deadline);
  Result<SyncAck> ack = co_await std::move(writing);
  // The successor may still be pulling when the call failed: it ends before the memory does.
  co_await region->deregister(deadline);
  region.reset();
  CO_TRY(ack.status());
  if (ack->state.version != info.committed_version || ack->state.checksum != info.checksum ||
      ack->state.length_bytes != info.length_bytes)
    co_return Status(StatusCode::kInternal, "sync_write left another version at the successor");
  co_return true;
}

Task<Result<SyncAck>> Resync::call_sync_write(Copy* copy, SyncWriteRequest request,
                                              TimePoint deadline) {
  auto connecting = successor_client(copy, deadline);
  CO_TRY_ASSIGN(std::shared_ptr<net::RpcClient> client, co_await std::move(connecting));
  auto calling =
      client->call<StorageService::sync_write>(request, net::CallOptions{.deadline = deadline});
  co_return co_await std::move(calling);
}

Task<Status> Resync::remove_chunk(Copy* copy, ChunkRef chunk) {
  chunk::ChunkId id = id_of(chunk);
  StorageTarget* target = copy->target;
  auto locking = target->chunk_order().lock(id);
  CO_TRY_ASSIGN(chunk::ChunkLocks::Guard order, co_await std::move(locking));
  // Written since it was listed: the write went to the successor too; the next pass checks.
  Result<chunk::ChunkInfo> held = target->engine().stat(id);
  if (held.ok() && held->committed_version != 0) {
    copy->again = true;
    co_return Status();
  }
  // Damaged here: keep. Only a pending version here: nothing committed, so none there.
  if (!held.ok() && held.status().code() != StatusCode::kNotFound) co_return Status();
  TimePoint deadline = call_deadline();
  auto connecting = successor_client(copy, deadline);
  CO_TRY_ASSIGN(std::shared_ptr<net::RpcClient> client, co_await std::move(connecting));
  SyncRemoveRequest request{.chain = copy->chain,
                            .chain_version = copy->chain_version,
                            .target = copy->successor,
                            .chunk = chunk};
  auto calling =
      client->call<StorageService::sync_remove>(request, net::CallOptions{.deadline = deadline});
  CO_TRY(co_await std::move(calling));
  ++copy->chunks_removed;
  // A write that created the chunk while the removal was on its way (not at the head, where
  // the lock excludes it) may have been removed with it: the next pass sends it again.
  Result<chunk::ChunkInfo> now = target->engine().stat(id);
  if (now.ok() && now->committed_version != 0) copy->again = true;
  co_return Status();
}

Task<Status> Resync::send_done(Copy* copy) {
  TimePoint deadline = call_deadline();
  auto connecting = successor_client(copy, deadline);
  CO_TRY_ASSIGN(std::shared_ptr<net::RpcClient> client, co_await std::move(connecting));
  SyncDoneRequest request{.chain = copy->chain,
                          .chain_version = copy->chain_version,
                          .target = copy->successor,
                          .chunks_copied = copy->chunks_copied,
                          .bytes_copied = copy->bytes_copied,
                          .chunks_removed = copy->chunks_removed};
  auto calling =
      client->call<StorageService::sync_done>(request, net::CallOptions{.deadline = deadline});
  CO_TRY(co_await std::move(calling));
  co_return Status();
}

}  // namespace mica::craq
