// Resync: bringing a returning (syncing) target up to date, from both ends (docs/craq.md).
//
// The predecessor of a syncing target drives it: when routing makes its successor syncing
// (on_view_change), it pages through the successor's chunk metadata (sync_list), compares it
// with its own and sends full-chunk replacements for what differs (sync_write: version,
// checksum or length, or a damaged record) and removals for what the successor should not
// have (sync_remove), at most resync_chunks_in_flight_max at once and resync_bytes_per_s
// (0: no cap), while new writes keep being forwarded (the update path sends a syncing
// successor whole chunks). It then sends sync_done and the target reports itself up to date
// at that chain version, so mgmtd makes it serve. A newer version always wins on the syncing
// side, so a copy racing a forwarded write never goes back in time. A chain change stops the
// copy; the next one starts over and finds little left to copy (it resumes).
//
// Ownership and threads: owned by the StorageServer, which outlives it, with the targets,
// pool and transport it is given. Runs on the server's executor; handlers and the copy
// suspend; stop() ends every copy and waits for them.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "async/scope.h"
#include "craq/buffer_pool.h"
#include "craq/rate_limiter.h"
#include "craq/storage_server.h"

namespace mica::craq {

class Resync {
 public:
  static constexpr uint64_t kBufferCacheBytesMax = uint64_t{64} << 20;

  Resync(StorageTargets* targets, net::ConnectionPool* pool, net::Transport* transport,
         const StorageServerOptions* options);
  Resync(const Resync&) = delete;
  Resync& operator=(const Resync&) = delete;
  ~Resync();

  // Starts or stops the copy a target drives when its view changed.
  void on_view_change(StorageTarget* target, const ChainView& old_view);
  Task<Result<SyncListResponse>> sync_list(SyncListRequest request, net::CallContext* context);
  Task<Result<SyncAck>> sync_write(SyncWriteRequest request, net::CallContext* context);
  Task<Result<SyncAck>> sync_remove(SyncRemoveRequest request, net::CallContext* context);
  Task<Result<SyncDoneResponse>> sync_done(SyncDoneRequest request, net::CallContext* context);
  // Fills the resync fields of progress for its target.
  void fill_progress(TargetProgress* progress) const;
  Task<void> stop();
  // Called on the syncing side for every chunk a sync_write left committed (replaced or
  // already identical), while the chunk's order lock is held: the server records the
  // update that made the chunk in the target's table of recent updates, so that a retry of
  // it is recognised here once later updates have overwritten the chunk's own tags.
  std::function<void(const StorageTarget*, const chunk::ChunkInfo&)> on_chunk_synced;

 private:
  // One copy to a syncing successor at one chain version. Shared by the copy's task and
  // copies_ (the task keeps it alive until it ends; progress reads it meanwhile).
  struct Copy {
    StorageTarget* target = nullptr;
    ChainId chain = 0;
    uint64_t chain_version = 0;
    TargetId successor = 0;
    std::string address;
    std::shared_ptr<Copy> previous;  // the copy this one replaces: it ends first
    CancelSource* cancel = nullptr;  // while the copy runs
    bool stop_requested = false;
    bool finished = false;
    bool done = false;  // sync_done answered
    Event ended;
    // This pass's progress (totals: the own committed chunks and their bytes).
    uint64_t chunks_done = 0;
    uint64_t chunks_total = 0;
    uint64_t bytes_done = 0;
    uint64_t bytes_total = 0;
    // What was sent, over all passes.
    uint64_t chunks_copied = 0;
    uint64_t bytes_copied = 0;
    uint64_t chunks_removed = 0;
    uint64_t passes = 0;
    Status error;        // the first failure of the running pass
    bool again = false;  // the pass raced a write: run another one
    // The running pass's bounds on chunk reads and sync_writes in flight.
    Semaphore* reads = nullptr;
    Semaphore* sends = nullptr;
  };
  // One step of a pass: what the merge of both listings decided for one chunk.
  enum class Step : uint8_t { kCopy, kRemove };
  // A sorted stream of chunk metadata, paged (own engine or the successor's sync_list).
  struct Listing {
    std::vector<ChunkMeta> page;
    size_t next = 0;
    bool end = false;
    std::optional<ChunkRef> after;
    bool empty() const { return next >= page.size(); }
  };

  static ChunkMeta meta_of(const chunk::ChunkInfo& info);
  static chunk::ChunkId id_of(ChunkRef chunk) { return {chunk.inode, chunk.index}; }
  void stop_copy(const StorageTarget* target);
  static Task<void> run_copy(Resync* self, std::shared_ptr<Copy> copy);
  Task<void> copy_until_done(Copy* copy);
  bool still_current(const Copy* copy) const;
  Status count_own(Copy* copy);
  Task<Status> copy_pass(Copy* copy);
  Status refill_own(Copy* copy, Listing* own);
  Task<Status> refill_remote(Copy* copy, Listing* remote);
  Task<void> run_step(Copy* copy, Step step, ChunkRef chunk, Semaphore* slots);
  Task<Status> copy_chunk(Copy* copy, ChunkRef chunk);
  // False when the chunk changed while it was read (read it again).
  Task<Result<bool>> send_chunk(Copy* copy, chunk::ChunkInfo info);
  Task<Result<SyncAck>> call_sync_write(Copy* copy, SyncWriteRequest request, TimePoint deadline);
  Task<Status> remove_chunk(Copy* copy, ChunkRef chunk);
  Task<Status> send_done(Copy* copy);
  Task<Result<std::shared_ptr<net::RpcClient>>> successor_client(Copy* copy, TimePoint deadline);
  TimePoint call_deadline() const;
  // Syncing side: applies one chunk's full content unless what the target holds is newer.
  Task<Result<SyncAck>> apply_sync_write(StorageTarget* target, SyncWriteRequest request,
                                         net::CallContext* context);

  StorageTargets* targets_;
  net::ConnectionPool* pool_;
  net::Transport* transport_;
  const StorageServerOptions* options_;
  ByteRateLimiter limiter_;
  // Chunk buffers of both sides (copy and sync_write), reused: a fresh 1 MiB buffer costs
  // its page faults and unmapping on every chunk.
  BufferPool buffers_{kBufferCacheBytesMax};
  std::map<const StorageTarget*, std::shared_ptr<Copy>> copies_;
  TaskScope scope_;
  bool stopped_ = false;
};

}  // namespace mica::craq
