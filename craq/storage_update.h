// UpdatePath: the CRAQ write path of a storage server — client updates at the head and
// forwarded updates at every other member of the chain (docs/craq.md).
//
// At the head, updates of one chunk run one at a time (the target's chunk_order lock, held
// from assigning the pending version until it commits); different chunks run in parallel up
// to the target's in-flight limit (kBusy beyond it). The head checks the request, recognises
// a retry by its (client id, request id) tag (in the target's table of recent updates, which
// every member fills as it commits, then in the chunk's own tags), pulls the payload from the
// client's buffer, verifies its CRC, applies it as pending version committed + 1 and forwards it;
// the tail applies and commits at once; each member commits when its successor answered, after
// checking that the successor's chunk checksum equals its own. A successor that is syncing
// gets the whole new chunk (full_chunk), since it may lack the version the update builds on.
//
// Ownership and threads: owned by the StorageServer, which outlives it, with the targets,
// pool and transport it is given. Runs on the server's executor; handlers suspend; stop()
// waits for every update in flight.
#pragma once

#include <map>
#include <span>
#include <string>

#include "craq/buffer_pool.h"
#include "craq/recent_updates.h"
#include "craq/storage_server.h"

namespace mica::craq {

class UpdatePath {
 public:
  UpdatePath(StorageTargets* targets, net::ConnectionPool* pool, net::Transport* transport,
             const StorageServerOptions* options);
  UpdatePath(const UpdatePath&) = delete;
  UpdatePath& operator=(const UpdatePath&) = delete;
  ~UpdatePath();

  Task<Result<UpdateResponse>> update(UpdateRequest request, net::CallContext* context);
  Task<Result<ForwardResponse>> forward(ForwardRequest request, net::CallContext* context);
  Task<void> stop();
  // The read tail before it answers for a chunk holding a pending version or a removal mark
  // (ReadPath): waits for an update of the chunk in flight here, then finishes what is left
  // over from a failure through the rest of the chain. A leftover at the read tail may have
  // been committed by a tail that failed since, where a reader may have seen it: the chain
  // only ever completes it (every serving predecessor holds it too), so it is completed now.
  Task<Status> settle(StorageTarget* target, ChunkRef chunk, TimePoint deadline);
  // Resync's syncing side: records the update that made a chunk it received (its
  // committed_tag) as if this target had committed it (Resync::on_chunk_synced).
  void remember_synced(const StorageTarget* target, const chunk::ChunkInfo& committed) {
    remember(target, committed);
  }

  // Bytes to hand down the chain with a pending version: the update's payload (a write's
  // bytes at io.offset, none for a truncate) or, when full, the whole new chunk with its CRC.
  struct Content {
    std::span<const std::byte> bytes;
    bool full = false;
    uint32_t full_crc = 0;
  };

 private:
  // Counts a handler in flight, so that stop() can wait for them all.
  class Activity {
   public:
    explicit Activity(UpdatePath* path) : path_(path) { ++path_->in_flight_; }
    Activity(const Activity&) = delete;
    Activity& operator=(const Activity&) = delete;
    ~Activity() {
      if (--path_->in_flight_ == 0 && path_->stopping_) path_->idle_.set();
    }

   private:
    UpdatePath* path_;
  };
  Task<Result<UpdateResponse>> update_locked(StorageTarget* target, UpdateRequest request,
                                             net::CallContext* context, TimePoint deadline);
  Task<Result<ForwardResponse>> forward_locked(StorageTarget* target, ForwardRequest request,
                                               net::CallContext* context, TimePoint deadline);
  // Forwards pending `version` (already applied here) to the successor, then commits it here
  // and checks the successor's state against ours. The pending version stays on failure.
  Task<Result<chunk::ChunkInfo>> pass_down(StorageTarget* target, UpdateIO io, uint32_t version,
                                           Content content, TimePoint deadline);
  // Sends one forward to the successor with content in a registered buffer of ours.
  Task<Result<ForwardResponse>> send_forward(std::string address, ForwardRequest request,
                                             std::span<const std::byte> content,
                                             TimePoint deadline);
  // Resolves a pending version left behind by a failure: forwards it whole and commits it.
  Task<Result<chunk::ChunkInfo>> finish_pending(StorageTarget* target, UpdateIO io,
                                                chunk::ChunkInfo info, TimePoint deadline);
  // A removal this target passed down and did not apply (its mark is valid): done now.
  Task<Status> finish_removal(StorageTarget* target, chunk::ChunkId id, TimePoint deadline);
  // The UpdateIO of an update the target makes of its own (settling a leftover).
  static UpdateIO settling_io(const StorageTarget* target, ChunkRef chunk);
  // A remove: the rest of the chain first (the tail removes first), then this target.
  Task<Result<ChunkState>> remove_down(StorageTarget* target, UpdateIO io, TimePoint deadline);
  // Applies a forwarded update here (pending, or committed at the tail).
  Task<Result<chunk::ChunkInfo>> apply_forward(StorageTarget* target, const ForwardRequest* request,
                                               chunk::ChunkInfo info, Content content);
  Task<Result<chunk::ChunkInfo>> commit_checked(StorageTarget* target, chunk::ChunkId id,
                                                uint32_t version, ChunkState successor);
  TimePoint forward_deadline(TimePoint caller) const;
  // The target's table of recently applied updates (made on first use).
  RecentUpdates& recent(const StorageTarget* target);
  // Records the update that made `committed`'s committed version (its committed_tag).
  void remember(const StorageTarget* target, const chunk::ChunkInfo& committed);

  StorageTargets* targets_;
  net::ConnectionPool* pool_;
  net::Transport* transport_;
  const StorageServerOptions* options_;
  // Per target; looked up, never iterated (determinism). Targets outlive the path.
  std::map<const StorageTarget*, RecentUpdates> recent_;
  // Payloads and whole chunks on their way through: reused, so a stream of chunk writes
  // does not fault in (zero-fill) fresh pages for every payload it receives.
  static constexpr uint64_t kStagingCacheBytesMax = uint64_t{32} << 20;
  BufferPool staging_{kStagingCacheBytesMax};
  uint64_t in_flight_ = 0;
  bool stopping_ = false;
  Event idle_;  // set when in_flight_ drops to 0 while stopping
};

}  // namespace mica::craq
