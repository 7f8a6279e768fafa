// ChunkEngine: the chunk store of one storage target — chunk data in size-class slot files
// on a local disk (O_DIRECT through the runtime), chunk metadata in one kv/ environment (LMDB,
// or the simulated store on a simulated host),
// crash-safe copy-on-write updates with a committed and a pending version per chunk, and
// CRC32C per 4 KiB block checked on every read. Writes carry their writer's CRC32C, checked
// before anything is stored (end to end). docs/chunk.md has the format and reasoning.
//
// Versions (CRAQ): a write, truncate creates pending version committed+1 in a new slot; the
// old version stays readable until commit() switches to the new one (abort() drops it).
// Pending versions survive a restart. A request whose version is not the next one is
// kStaleVersion and changes nothing. Reads return committed data only.
//
// Ownership and threads: one executor owns an engine; call every method from that executor's
// thread and close() it (co_await) before destroying it there. Buffers passed in must stay
// valid until the returned task finishes. Methods returning Task suspend (disk I/O, kv/
// group commit); those returning Result do not (short kv/ reads).
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "async/sync.h"
#include "chunk/chunk_locks.h"
#include "chunk/record.h"
#include "chunk/slot_store.h"
#include "kv/kv.h"

namespace mica::chunk {

// The version an update creates, the chain version it carries and the update's tag (all
// stored in the record; commit() moves the pending tag to the committed one).
struct UpdateVersion {
  uint32_t version = 0;
  uint32_t chain_version = 0;
  UpdateTag tag;
};

// What fsck() found. ok() when nothing is wrong; to_string() is a readable report.
struct FsckReport {
  uint64_t chunks = 0;
  uint64_t committed_versions = 0;
  uint64_t pending_versions = 0;
  uint64_t bytes_verified = 0;
  uint64_t corrupt_records = 0;      // undecodable metadata or keys
  uint64_t bad_placements = 0;       // slot outside its file
  uint64_t shared_slots = 0;         // one slot referenced twice
  uint64_t checksum_mismatches = 0;  // data block whose CRC does not match its record
  uint64_t read_errors = 0;
  uint64_t leaked_slots = 0;          // allocated but referenced by no record
  uint64_t unaccounted_slots = 0;     // referenced but marked free
  uint64_t free_slots = 0;            // reusable (not a problem)
  std::vector<std::string> problems;  // first fsck_problems_max problems, in words
  bool ok() const;
  std::string to_string() const;
};

// What read_with_crc() returns: how many bytes it read and their CRC32C.
struct ReadResult {
  size_t bytes = 0;
  uint32_t crc = 0;
};

struct EngineCounters {
  uint64_t reads = 0;
  uint64_t updates = 0;
  uint64_t checksum_mismatches = 0;          // stored data that failed its CRC
  uint64_t payload_checksum_mismatches = 0;  // writes refused: bytes differ from writer's CRC
  uint64_t meta_requests = 0;
  uint64_t meta_transactions = 0;
};

class ChunkEngine {
 public:
  // Opens the target in directory path, creating it (format version recorded) when it does
  // not exist or is empty. kNotSupported for another format version, kCorruption when the
  // metadata cannot be read. Records that are damaged do not stop open: their chunks answer
  // kCorruption and fsck lists them.
  static Task<Result<std::unique_ptr<ChunkEngine>>> open(std::string path,
                                                         ChunkEngineConfig config);
  ChunkEngine(const ChunkEngine&) = delete;
  ChunkEngine& operator=(const ChunkEngine&) = delete;
  ~ChunkEngine();
  // Closes the files and stops the writer; no call may be in flight.
  Task<Status> close();

  // Reads committed bytes [offset, offset + out.size()) into out; returns how many were read
  // (fewer at the chunk's end). kNotFound: no such chunk or no committed version.
  // kChecksumMismatch: the data on disk does not match its CRC (out is left undefined).
  // Fastest with out aligned to 4 KiB and a 4 KiB-aligned offset (read in place).
  Task<Result<size_t>> read(ChunkId id, uint32_t offset, std::span<std::byte> out);
  // read() that also returns the CRC32C of the bytes it returns, so that a reader far away
  // can verify what reached it. Derived from the verified block CRCs (only partial blocks at
  // the ends are checksummed again), so it costs no second pass over the data.
  Task<Result<ReadResult>> read_with_crc(ChunkId id, uint32_t offset, std::span<std::byte> out);
  // read_with_crc() of the pending version (kNotFound when there is none): what a chain
  // member forwards as a whole chunk to a successor that is syncing.
  Task<Result<ReadResult>> read_pending(ChunkId id, uint32_t offset, std::span<std::byte> out);

  // Updates that carry data also carry data_crc, the CRC32C of data computed by the writer
  // (end-to-end protection: the bytes may have been damaged on their way here). The engine
  // checks it against what it received before anything is allocated, written or committed:
  // a mismatch is kChecksumMismatch and changes nothing.
  //
  // New pending version v.version = committed + 1: the committed content with data at offset.
  // data must not change until the task finishes: when it is the whole new version and
  // 4 KiB-aligned, it is checksummed and sent to disk as it is (no copy).
  Task<Result<ChunkInfo>> write(ChunkId id, uint32_t offset, std::span<const std::byte> data,
                                uint32_t data_crc, UpdateVersion v);
  // write() and commit() in one step (one record put instead of two): for a caller that
  // commits as soon as the write is durable, as a chain's tail does. Same version rules as
  // write(); nothing is visible until the new version is durable and committed.
  Task<Result<ChunkInfo>> write_and_commit(ChunkId id, uint32_t offset,
                                           std::span<const std::byte> data, uint32_t data_crc,
                                           UpdateVersion v);
  // New pending version: the committed content cut or zero-extended to length_bytes.
  Task<Result<ChunkInfo>> truncate(ChunkId id, uint32_t length_bytes, UpdateVersion v);
  // Makes pending version `version` the committed one; frees the old slot. kStaleVersion
  // when chain_version is older than the chunk's.
  Task<Result<ChunkInfo>> commit(ChunkId id, uint32_t version, uint32_t chain_version);
  // Drops pending version `version` (a chunk with nothing committed disappears).
  Task<Status> abort(ChunkId id, uint32_t version);
  // Deletes the chunk with all its versions (also one whose record is damaged).
  Task<Status> remove(ChunkId id);
  // Resync: data becomes committed version v.version at once, any pending one is dropped.
  // kStaleVersion when v.chain_version is older than the chunk's.
  Task<Result<ChunkInfo>> replace(ChunkId id, std::span<const std::byte> data, uint32_t data_crc,
                                  UpdateVersion v);

  Result<ChunkInfo> stat(ChunkId id);
  // The chunk of inode with the highest index, if any (one range query).
  Result<std::optional<ChunkInfo>> last_chunk(uint64_t inode);
  // Up to limit (<= list_batch_max) chunks in id order, starting after `after` (from the
  // first when nullopt). Page through for resync diffs. A chunk whose record is damaged is
  // listed with damaged set (and only its id); keys that are no chunk id are left to fsck.
  Result<std::vector<ChunkInfo>> list(std::optional<ChunkId> after, uint32_t limit);

  SpaceStats space();
  EngineCounters counters() const;
  bool direct_io() const { return slots_->direct_io(); }
  const ChunkEngineConfig& config() const { return config_; }

  // Verifies the whole target: every record decodes, every placement is inside its file and
  // owned once, every block of every version matches its CRC, slot allocation matches the
  // records. Run it with no update in flight (its slots would count as leaked).
  Task<Result<FsckReport>> fsck();

 private:
  enum class UpdateKind { kWrite, kWriteCommit, kTruncate, kReplace };
  struct UpdateArgs {
    UpdateKind kind;
    ChunkId id;
    uint32_t offset;
    uint32_t length_bytes;  // truncate
    std::span<const std::byte> data;
    uint32_t data_crc;  // the writer's CRC32C of data
    UpdateVersion version;
  };

  // What an update holds while it runs: a unit of updates_in_flight_max and its chunk's lock
  // (released in that reverse order).
  struct UpdateTicket {
    SemaphoreGuard admission;
    ChunkLocks::Guard lock;
  };

  ChunkEngine(std::string path, ChunkEngineConfig config);
  // Admits an update of id (waiting for a slot, then for the chunk's lock) and counts it.
  Task<Result<UpdateTicket>> begin_update(ChunkId id);
  Task<Status> open_metadata();
  // Checks the format record, or writes it into a target that has none and no chunks.
  Task<Status> check_format();
  Status scan_records();
  // Reads id's record in a short read transaction (nullopt when absent).
  Result<std::optional<ChunkRecord>> load(ChunkId id);
  // id's record for commit or abort (operation) of its pending version: kNotFound without a
  // record, kStaleVersion when version is not the one pending.
  Result<ChunkRecord> load_pending(ChunkId id, uint32_t version, const char* operation);
  // Renews the read transaction, runs body(cursor) on the chunks database and resets the
  // transaction again whatever body returns. body must not suspend.
  template <typename Body>
  Status with_chunks_cursor(Body body);
  Status check_update_version(const std::optional<ChunkRecord>& record, ChunkId id,
                              const UpdateArgs& args) const;
  Task<Result<ChunkInfo>> update(UpdateArgs args);
  Task<Result<ChunkInfo>> update_locked(UpdateArgs args);
  // True when the caller's data is the whole new version, aligned for O_DIRECT: then it is
  // written as it is (a full-chunk write reads nothing old and copies nothing).
  static bool writes_caller_bytes(const UpdateArgs& args, uint32_t new_length);
  static uint32_t new_length_of(const UpdateArgs& args, uint32_t old_length);
  // kChecksumMismatch when the payload, as it lies in content (the new version's bytes,
  // whose block CRCs are crcs), does not match the writer's CRC.
  Status verify_payload(const UpdateArgs& args, std::span<const std::byte> content,
                        const std::vector<uint32_t>& crcs, uint32_t new_length);
  // Writes the new version to a fresh slot and puts its record.
  Task<Result<ChunkInfo>> store_version(UpdateArgs args, std::optional<ChunkRecord> record,
                                        std::span<const std::byte> content,
                                        std::vector<uint32_t> crcs, uint32_t new_length,
                                        uint32_t checksum);
  // Reads the committed version, or the pending one when pending is set.
  Task<Result<ReadResult>> read_version(ChunkId id, uint32_t offset, std::span<std::byte> out,
                                        bool want_crc, bool pending);
  // Builds the new version's bytes in buffer (old content + change), filling crcs/placement.
  Task<Status> build_content(const ChunkRecord* old, const UpdateArgs* args, uint32_t new_length,
                             AlignedBuffer* buffer);
  // Reads whole blocks [offset, offset + out.size()) of one version and checks their CRCs.
  Task<Status> read_verified(ChunkId id, Placement placement, const std::vector<uint32_t>* crcs,
                             uint32_t offset, std::span<std::byte> out);
  Task<Status> put_record(ChunkId id, const ChunkRecord* record);
  Task<Status> erase_record(ChunkId id);
  Status validate_range(uint64_t offset, uint64_t length) const;
  Task<Status> fsck_verify(ChunkId id, Placement placement, const std::vector<uint32_t>* crcs,
                           FsckReport* report);
  void fsck_note(FsckReport* report, std::string problem) const;

  std::string path_;
  ChunkEngineConfig config_;
  std::unique_ptr<kv::Env> env_;
  kv::Table chunks_table_ = 0;
  kv::Table target_table_ = 0;
  std::unique_ptr<kv::ReadTxn> read_txn_;  // reset between uses, renewed for each short read
  std::unique_ptr<SlotStore> slots_;
  ChunkLocks locks_;
  Semaphore updates_;
  uint64_t chunk_count_ = 0;
  // Slots allocated by updates that have not yet committed a record pointing to them.
  std::unordered_set<uint64_t> in_flight_slots_;
  // Problems seen while opening (damaged records, bad or shared placements); each is logged
  // (up to fsck_problems_max) and found again by fsck().
  uint64_t open_problems_ = 0;
  EngineCounters counters_;
};

template <typename Body>
Status ChunkEngine::with_chunks_cursor(Body body) {
  RETURN_IF_ERROR(read_txn_->renew());
  Status status;
  {
    Result<std::unique_ptr<kv::Cursor>> cursor = read_txn_->cursor(chunks_table_);
    status = cursor.ok() ? body(**cursor) : cursor.status();
  }  // the cursor closes before its transaction is reset
  read_txn_->reset();
  return status;
}

}  // namespace mica::chunk
