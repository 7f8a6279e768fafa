// ReadPath: the CRAQ read path of a storage server — reads, batch reads and the apportioned
// query that a replica with a pending version asks the chain's tail (docs/craq.md).
//
// A read is served by a serving target only. When the chunk has no pending version, its
// committed bytes are pushed into the reader's buffer with their CRC32C. When it has one, the
// replica asks the tail for the committed version: if it is the replica's committed version
// the replica serves it, otherwise it answers kDirty and the client retries. Nothing pending
// is ever returned uncommitted. A replica passing a removal down the chain asks the same way.
// The read tail itself first finishes what a failure left pending (UpdatePath::settle): the
// tail that failed may have committed it. A chunk whose disk bytes fail their CRC is reported to
// the server's on_corrupt callback (the scrub repairs it from the chain) and answered
// kChecksumMismatch.
//
// Ownership and threads: owned by the StorageServer, which outlives it, with the targets,
// pool and transport it is given. Runs on the server's executor; handlers suspend; stop()
// waits for every read in flight.
#pragma once

#include <functional>
#include <optional>

#include "async/file.h"
#include "craq/buffer_pool.h"
#include "craq/storage_server.h"

namespace mica::craq {

// Which version of a chunk holding a pending version a replica may serve, given the committed
// state the read tail reported (CRAQ's apportioned query). kCommitted: the replica's committed
// version is the chain's; kPending: the tail has committed the very version the replica holds
// as pending (same version, length and checksum), so those bytes are committed data; kDirty:
// neither, the replica cannot tell what is committed and the client must retry; kRemoved:
// the replica is passing a removal of the chunk down the chain (`removing`) and the tail has
// no such chunk, so the removal is what readers see (a hole). Pure.
enum class ReadChoice { kCommitted, kPending, kDirty, kRemoved };
ReadChoice choose_read_version(const chunk::ChunkInfo& local, const ChunkState& tail,
                               bool removing = false);

class ReadPath {
 public:
  // Items of one batch_read read at once: enough to keep a disk's queue full, few enough
  // that one batch does not crowd out every other request of the node.
  static constexpr size_t kBatchReadConcurrencyMax = 32;
  // Reads of one item that restart because the chunk changed under them (a commit between
  // looking at the chunk and reading it) before the item is answered kDirty.
  static constexpr int kReadAttemptsMax = 4;
  // Freed read buffers kept for the next reads (their pages stay resident: no map, fault
  // and unmap per read).
  static constexpr uint64_t kBufferCacheBytesMax = uint64_t{16} << 20;

  ReadPath(StorageTargets* targets, net::ConnectionPool* pool, net::Transport* transport,
           const StorageServerOptions* options);
  ReadPath(const ReadPath&) = delete;
  ReadPath& operator=(const ReadPath&) = delete;
  ~ReadPath();  // asserts no read is in flight

  Task<Result<ReadResponse>> read(ReadRequest request, net::CallContext* context);
  Task<Result<BatchReadResponse>> batch_read(BatchReadRequest request, net::CallContext* context);
  Task<Result<QueryVersionResponse>> query_version(QueryVersionRequest request,
                                                   net::CallContext* context);
  // Refuses new reads (kClosed) and returns once every read in flight has finished.
  Task<void> stop();

  // Called when a target's disk returned data that failed its CRC (never suspends).
  std::function<void(StorageTarget*, ChunkRef)> on_corrupt;
  // The read tail finishes a chunk's leftover pending version or removal before it answers
  // for it (UpdatePath::settle; deadline: the reader's). Unset: such reads answer kDirty.
  std::function<Task<Status>(StorageTarget*, ChunkRef, TimePoint)> settle;
  // StorageServer::set_read_guard (never suspends); unset: always ok.
  std::function<Status()> guard;

 private:
  // Counts one handler in flight for stop() (constructed at a handler's start).
  class InFlight {
   public:
    explicit InFlight(ReadPath* path);
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    ~InFlight();

   private:
    ReadPath* path_;
  };
  // The bytes one read attempt got, before they are pushed to the reader.
  struct Served {
    ReadResponse response;
    PooledBuffer data;  // response.bytes valid bytes at its start
  };
  // The shared state of one batch_read's workers.
  struct BatchState {
    const BatchReadRequest* request = nullptr;
    net::CallContext* context = nullptr;
    size_t next = 0;  // the next item a worker takes
    std::vector<ReadItemResult> results;
  };

  Status check_open() const;
  Status check_guard() const { return guard ? guard() : Status(); }
  // One read (of read() or of a batch item): checks, attempts, push.
  Task<Result<ReadResponse>> read_item(const ReadRequest* request, net::CallContext* context);
  // nullopt: the chunk changed while it was read; try again.
  Task<Result<std::optional<Served>>> read_once(StorageTarget* target, const ReadRequest* request,
                                                net::CallContext* context);
  // Reads bytes of the chosen version into served.data.
  Task<Status> read_bytes(StorageTarget* target, const ReadRequest* request, ReadChoice choice,
                          Served* served);
  // At the read tail: settle() the chunk, kDirty when that failed or is not wired.
  Task<Status> settle_here(StorageTarget* target, ChunkRef chunk, TimePoint deadline);
  // The read tail's committed state of the chunk (the apportioned query).
  Task<Result<ChunkState>> query_tail(StorageTarget* target, ChainView view,
                                      const ReadRequest* request, net::CallContext* context);
  Task<Status> push(const ReadRequest* request, net::CallContext* context, const Served* served);
  Task<void> batch_worker(BatchState* state);
  // The engine's view of a chunk: nullopt when it has none; kCorruption when its record is
  // damaged (reported as corrupt).
  Result<std::optional<chunk::ChunkInfo>> stat(StorageTarget* target, ChunkRef chunk);
  // A checksum or record failure of target's disk: tell on_corrupt, answer kChecksumMismatch.
  Status corrupt(StorageTarget* target, ChunkRef chunk, const Status& why);

  StorageTargets* targets_;
  net::ConnectionPool* pool_;
  [[maybe_unused]] net::Transport* transport_;  // reads push through the caller's connection
  const StorageServerOptions* options_;
  uint64_t in_flight_ = 0;
  bool stopping_ = false;
  Event idle_;  // set when stopping_ and in_flight_ reached 0
  BufferPool buffers_{kBufferCacheBytesMax};
};

}  // namespace mica::craq
