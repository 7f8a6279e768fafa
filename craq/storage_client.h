// StorageClient: the client half of the storage service, for the native client, the
// metadata service (lengths, truncation, removal), the `mica` CLI and tests.
//
// It routes by the RoutingClient's snapshot: updates to the chain's head, reads to a serving
// replica (spread over the serving targets by default, or pinned to the head), batch reads
// grouped into one request per storage node. Payload CRC32Cs are computed before a write and
// checked after a read (a mismatch is kChecksumMismatch, retried on another replica, never
// returned as data). Every call has a deadline (options.call_timeout unless the call names
// one); within it, retryable refusals (kStaleChain, kNotHead, kNotServing, kDirty, kBusy,
// connection failures, a chain with no serving target) are retried with backoff after
// refreshing routing when the refusal says routing is old. A retried update carries the
// same (client id, request id), so the chain applies it once (craq/storage_service.h).
//
// Buffers: the caller's spans must stay valid and unchanged until the returned task ends;
// the client registers them with the transport for the servers' one-sided transfers
// (unless the caller passes a region that covers them: then that region is named, and no
// registration is made per call; the region outlives the call).
//
// Thread rule: executor-bound: the client, its pool, transport and routing client belong to
// the executor that made it; every call is made from a task there and suspends. The pool,
// transport and routing client outlive the client.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "async/metrics.h"
#include "async/sync.h"
#include "craq/routing_client.h"
#include "craq/storage_service.h"
#include "net/rpc_client.h"

namespace mica::craq {

enum class ReadChoice : uint8_t {
  kSpread = 0,  // any serving replica, spread over them
  kHead = 1,    // always the chain's first serving target (for comparisons)
};

struct StorageClientOptions {
  uint64_t client_id = 0;  // 0: drawn at random (the runtime's random source)
  Duration call_timeout = std::chrono::seconds(30);  // a call's deadline when it names none
  // Waits between retries: backoff_initial, doubling, at most backoff_max.
  Duration backoff_initial = std::chrono::milliseconds(5);
  Duration backoff_max = std::chrono::milliseconds(500);
  // Time one RPC may take before it is retried (within the call's deadline).
  Duration attempt_timeout = std::chrono::seconds(10);
  ReadChoice read_choice = ReadChoice::kSpread;
  // Payload bytes a batch call keeps in flight at once.
  uint64_t batch_bytes_in_flight_max = uint64_t{64} << 20;
  // Requests in one batch_read RPC to a node.
  uint32_t batch_read_items_max = 1024;
};

// One write of a batch; data outlives the call.
struct ChunkWrite {
  ChainId chain = 0;
  ChunkRef chunk;
  uint32_t offset = 0;
  std::span<const std::byte> data;
  uint32_t chunk_size_bytes = 0;
  net::MemoryRegion* region = nullptr;  // the caller's registration of data, or null
};

// One read of a batch; out outlives the call. A hole (no such chunk, or past its end) reads
// short: the result is the number of bytes that exist.
struct ChunkRead {
  ChainId chain = 0;
  ChunkRef chunk;
  uint32_t offset = 0;
  std::span<std::byte> out;
  net::MemoryRegion* region = nullptr;  // the caller's registration of out, or null
};

class StorageClient {
 public:
  StorageClient(net::ConnectionPool* pool, net::Transport* transport, RoutingClient* routing,
                StorageClientOptions options);
  StorageClient(const StorageClient&) = delete;
  StorageClient& operator=(const StorageClient&) = delete;
  ~StorageClient();

  uint64_t client_id() const { return client_id_; }

  // Writes data at offset of the chunk (offset + size <= chunk_size_bytes). Returns the
  // chunk's committed state once every replica of the chain holds it. region: the caller's
  // registration of data (used when it covers data; null or not covering: one per call).
  Task<Result<ChunkState>> write(ChainId chain, ChunkRef chunk, uint32_t offset,
                                 std::span<const std::byte> data, uint32_t chunk_size_bytes,
                                 TimePoint deadline = kNoDeadline,
                                 net::MemoryRegion* region = nullptr);
  Task<Result<ChunkState>> truncate(ChainId chain, ChunkRef chunk, uint32_t length_bytes,
                                    uint32_t chunk_size_bytes, TimePoint deadline = kNoDeadline);
  // Removing a chunk that does not exist succeeds.
  Task<Result<ChunkState>> remove(ChainId chain, ChunkRef chunk, TimePoint deadline = kNoDeadline);
  // Reads committed bytes into out; returns how many exist (0 for a hole). region as for
  // write(); with a caller's region every attempt names it (no fresh registration per try),
  // and one that got no answer closes its connection before the next attempt or the return,
  // so no late push of it lands in out (docs/craq.md, "Storage client": the fence).
  Task<Result<uint32_t>> read(ChainId chain, ChunkRef chunk, uint32_t offset,
                              std::span<std::byte> out, TimePoint deadline = kNoDeadline,
                              net::MemoryRegion* region = nullptr);

  // Many reads, grouped into one batch_read per storage node; a result per item, in order.
  Task<std::vector<Result<uint32_t>>> read_batch(std::vector<ChunkRead> reads,
                                                 TimePoint deadline = kNoDeadline);
  // Many writes in parallel (bounded by batch_bytes_in_flight_max); a result per item.
  Task<std::vector<Result<ChunkState>>> write_batch(std::vector<ChunkWrite> writes,
                                                    TimePoint deadline = kNoDeadline);

  // For the metadata service. The chunk of inode with the highest index over the file's
  // chains (none: the file has no chunk), read from each chain's head.
  Task<Result<std::optional<ChunkMeta>>> last_chunk(std::vector<ChainId> chains, uint64_t inode,
                                                    TimePoint deadline = kNoDeadline);
  // Removes every chunk of inode with index >= first_index from the file's chains (the
  // chunks of a deleted file, or those past a truncation point).
  Task<Status> remove_from(std::vector<ChainId> chains, uint64_t inode, uint32_t first_index,
                           TimePoint deadline = kNoDeadline);

 private:
  struct BatchPart;  // one batch_read RPC to one node (storage_client_batch.cc)

  // The call's deadline: `deadline`, or call_timeout from now when it names none.
  TimePoint call_deadline(TimePoint deadline) const;
  // One logical update (write, truncate, remove): a fresh request id kept over retries.
  Task<Result<ChunkState>> update(UpdateIO io, std::span<const std::byte> data, TimePoint deadline,
                                  net::MemoryRegion* region = nullptr);
  Task<Result<ChunkState>> update_loop(UpdateIO io, net::RemoteBuffer payload, TimePoint deadline);
  Task<Result<uint32_t>> read_loop(ReadRequest request, std::span<std::byte> out,
                                   TimePoint deadline, net::MemoryRegion* region);
  Task<Result<std::optional<ChunkMeta>>> last_chunk_of(ChainId chain, uint64_t inode,
                                                       TimePoint deadline);
  Task<Status> remove_chain_from(ChainId chain, uint64_t inode, uint32_t first_index,
                                 TimePoint deadline);
  // Batch pieces (storage_client_batch.cc).
  std::vector<BatchPart> plan_batch(const std::vector<ChunkRead>& reads,
                                    std::vector<std::optional<Result<uint32_t>>>& results);
  // Registers the parts' item buffers (one region per run of adjacent ones) and names them
  // in the requests; an item whose registration failed gets its result here.
  std::vector<std::unique_ptr<net::MemoryRegion>> register_parts(
      std::vector<BatchPart>* parts, const std::vector<ChunkRead>& reads,
      std::vector<std::optional<Result<uint32_t>>>& results);
  Task<void> send_part(BatchPart* part, Semaphore* bytes, TimePoint deadline);
  Task<Result<uint32_t>> read_bounded(ChunkRead read, Semaphore* bytes, TimePoint deadline);
  Task<Result<ChunkState>> write_bounded(ChunkWrite write, Semaphore* bytes, TimePoint deadline);
  uint64_t next_read_turn();

  net::ConnectionPool* pool_;
  net::Transport* transport_;
  RoutingClient* routing_;
  StorageClientOptions options_;
  uint64_t client_id_ = 0;
  uint64_t next_request_id_ = 1;
  // kSpread: reads take serving replicas in turn, from a random start per client.
  uint64_t read_turn_ = 0;
  // The "storage_client" metrics (summed over the process's clients).
  Counter* retries_metric_;
  Counter* timeouts_metric_;
  Counter* checksum_metric_;
};

}  // namespace mica::craq
