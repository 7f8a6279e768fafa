// The storage service: the messages and the method table that every mica-storage process
// serves (craq/storage_server.h) — to clients (update, read, batch_read), to the other
// members of its chains (forward, query_version) and to the predecessor that resyncs one of
// its targets (sync_list, sync_write, sync_remove, sync_done). docs/craq.md has the protocol.
//
// Every request names a chain and the chain version the sender routes by; a target refuses
// a version that is not its own (kStaleChain) so the sender refreshes routing and retries.
// Bulk bytes never travel in these messages: they name a registered buffer of the sender
// (net::RemoteBuffer) that the receiver pulls (a write's payload) or pushes into (a read's
// data), as in 3FS. Declared once (net/service_def.h): ids are forever, fields only appended.
// Declarations only: any thread, never suspends.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "craq/types.h"
#include "net/connection.h"
#include "net/service_def.h"

namespace mica::craq {

// A chunk on the wire: (inode, chunk index), as chunk::ChunkId.
struct ChunkRef {
  uint64_t inode = 0;
  uint32_t index = 0;
  friend auto operator<=>(const ChunkRef&, const ChunkRef&) = default;
  static constexpr std::string_view kTypeName = "ChunkRef";
  MICA_FIELDS(ChunkRef, inode, index)
};

enum class UpdateKind : uint8_t {
  kWrite = 0,     // bytes [offset, offset + length) of the chunk
  kTruncate = 1,  // cut or zero-extend the chunk to `length` bytes
  kRemove = 2,    // delete the chunk and all its versions
};
MICA_ENUM_RANGE(UpdateKind, kWrite, kRemove)

// One update as the client asked for it; the head and every successor see the same fields.
struct UpdateIO {
  ChainId chain = 0;
  uint64_t chain_version = 0;
  ChunkRef chunk;
  UpdateKind kind = UpdateKind::kWrite;
  uint32_t offset = 0;
  uint32_t length = 0;            // write: payload bytes; truncate: the new chunk length
  uint32_t chunk_size_bytes = 0;  // the file's chunk size: offset + length must fit in it
                                  // (a removal names none: 0)
  uint32_t payload_crc = 0;       // CRC32C of the write's payload, computed by the client
  // Who asked: a retry carries the same pair, and every replica keeps the pair of the last
  // update of each chunk, so a retry is recognised, also by a new head (never applied twice).
  uint64_t client_id = 0;
  uint64_t request_id = 0;
  static constexpr std::string_view kTypeName = "UpdateIO";
  MICA_FIELDS(UpdateIO, chain, chain_version, chunk, kind, offset, length, chunk_size_bytes,
              payload_crc, client_id, request_id)
};

// The committed state of a chunk after an update (a removed chunk: all zero).
struct ChunkState {
  uint32_t version = 0;  // committed version
  uint32_t length_bytes = 0;
  uint32_t checksum = 0;  // CRC32C of the committed chunk
  static constexpr std::string_view kTypeName = "ChunkState";
  MICA_FIELDS(ChunkState, version, length_bytes, checksum)
};

// Client -> head. payload: the client's registered buffer of io.length bytes (writes only).
// Refusals: kNotHead (this target is not the chain's head), kStaleChain, kInvalidArgument /
// kOutOfRange (a range past chunk_size_bytes or the engine's chunk limit), kChecksumMismatch
// (the pulled bytes do not match payload_crc), kNoSpace, kBusy (the target's in-flight limit
// is reached: back off and retry). A refused update changes nothing.
struct UpdateRequest {
  UpdateIO io;
  net::RemoteBuffer payload;
  static constexpr std::string_view kTypeName = "UpdateRequest";
  MICA_FIELDS(UpdateRequest, io, payload)
};
struct UpdateResponse {
  ChunkState state;
  bool duplicate = false;  // a retry of an update that had already been applied
  static constexpr std::string_view kTypeName = "UpdateResponse";
  MICA_FIELDS(UpdateResponse, state, duplicate)
};

// Member -> its successor in the chain: apply the update as pending `version`, forward it on,
// and answer once it is committed (the tail commits at once), with the successor's chunk
// state, which the sender compares with its own before it commits. payload: the sender's
// registered buffer (the successor pulls from its predecessor). full_chunk: payload is the
// whole new content of the chunk (replace), sent to a syncing successor that may lack the
// version the update builds on.
struct ForwardRequest {
  UpdateIO io;
  TargetId target = 0;  // the receiving target
  uint32_t version = 0;  // the pending version the head assigned
  bool full_chunk = false;
  uint32_t full_length = 0;  // full_chunk: bytes of the whole content
  uint32_t full_crc = 0;     // full_chunk: CRC32C of the whole content
  net::RemoteBuffer payload;
  static constexpr std::string_view kTypeName = "ForwardRequest";
  MICA_FIELDS(ForwardRequest, io, target, version, full_chunk, full_length, full_crc, payload)
};
struct ForwardResponse {
  ChunkState state;
  static constexpr std::string_view kTypeName = "ForwardResponse";
  MICA_FIELDS(ForwardResponse, state)
};

// Client -> any serving replica: committed bytes [offset, offset + length) pushed into `out`.
// A replica whose chunk has a pending version asks the tail (query_version) and serves its
// committed version when that is the one the tail holds, else answers kDirty (retry, maybe
// elsewhere). A chunk that does not exist reads as 0 bytes (a hole). Refusals: kNotServing,
// kStaleChain, kChecksumMismatch (the replica's disk returned rot: it repairs the chunk from
// its chain; read another replica meanwhile).
struct ReadRequest {
  ChainId chain = 0;
  uint64_t chain_version = 0;
  ChunkRef chunk;
  uint32_t offset = 0;
  uint32_t length = 0;
  net::RemoteBuffer out;
  static constexpr std::string_view kTypeName = "ReadRequest";
  MICA_FIELDS(ReadRequest, chain, chain_version, chunk, offset, length, out)
};
struct ReadResponse {
  uint32_t bytes = 0;    // bytes pushed (fewer than asked at the chunk's end)
  uint32_t crc = 0;      // CRC32C of those bytes, for the reader to verify
  uint32_t version = 0;  // the committed version they came from (0: no such chunk)
  static constexpr std::string_view kTypeName = "ReadResponse";
  MICA_FIELDS(ReadResponse, bytes, crc, version)
};

// Many reads to one storage node (a data loader's batch): each item is answered on its own.
struct BatchReadRequest {
  std::vector<ReadRequest> items;
  static constexpr std::string_view kTypeName = "BatchReadRequest";
  MICA_FIELDS(BatchReadRequest, items)
};
struct ReadItemResult {
  Status status;
  ReadResponse read;
  static constexpr std::string_view kTypeName = "ReadItemResult";
  MICA_FIELDS(ReadItemResult, status, read)
};
struct BatchReadResponse {
  std::vector<ReadItemResult> items;  // in the request's order
  static constexpr std::string_view kTypeName = "BatchReadResponse";
  MICA_FIELDS(BatchReadResponse, items)
};

// Replica -> the chain's tail (CRAQ's apportioned query): which version is committed?
struct QueryVersionRequest {
  ChainId chain = 0;
  uint64_t chain_version = 0;
  ChunkRef chunk;
  static constexpr std::string_view kTypeName = "QueryVersionRequest";
  MICA_FIELDS(QueryVersionRequest, chain, chain_version, chunk)
};
struct QueryVersionResponse {
  ChunkState state;  // the tail's committed state (version 0: none)
  static constexpr std::string_view kTypeName = "QueryVersionResponse";
  MICA_FIELDS(QueryVersionResponse, state)
};

// Chunk metadata as resync compares it.
struct ChunkMeta {
  ChunkRef chunk;
  ChunkState state;
  uint64_t client_id = 0;  // the committed version's update tag
  uint64_t request_id = 0;
  bool damaged = false;  // the record cannot be read: replace or remove it
  static constexpr std::string_view kTypeName = "ChunkMeta";
  MICA_FIELDS(ChunkMeta, chunk, state, client_id, request_id, damaged)
};

// Predecessor -> syncing target: a page of its chunks' metadata, in id order after `after`.
struct SyncListRequest {
  ChainId chain = 0;
  uint64_t chain_version = 0;
  TargetId target = 0;
  std::optional<ChunkRef> after;
  uint32_t limit = 0;
  static constexpr std::string_view kTypeName = "SyncListRequest";
  MICA_FIELDS(SyncListRequest, chain, chain_version, target, after, limit)
};
struct SyncListResponse {
  std::vector<ChunkMeta> chunks;
  bool end = false;  // no chunk after the last one listed
  static constexpr std::string_view kTypeName = "SyncListResponse";
  MICA_FIELDS(SyncListResponse, chunks, end)
};

// Predecessor -> syncing target: make meta the committed version with the whole content in
// data (the predecessor's registered buffer, meta.state.length_bytes bytes, CRC meta.state
// .checksum), replacing whatever the target holds.
struct SyncWriteRequest {
  ChainId chain = 0;
  uint64_t chain_version = 0;
  TargetId target = 0;
  ChunkMeta meta;
  net::RemoteBuffer data;
  static constexpr std::string_view kTypeName = "SyncWriteRequest";
  MICA_FIELDS(SyncWriteRequest, chain, chain_version, target, meta, data)
};
struct SyncRemoveRequest {
  ChainId chain = 0;
  uint64_t chain_version = 0;
  TargetId target = 0;
  ChunkRef chunk;
  static constexpr std::string_view kTypeName = "SyncRemoveRequest";
  MICA_FIELDS(SyncRemoveRequest, chain, chain_version, target, chunk)
};
struct SyncAck {
  ChunkState state;  // the target's state of the chunk afterwards
  static constexpr std::string_view kTypeName = "SyncAck";
  MICA_FIELDS(SyncAck, state)
};

// Predecessor -> syncing target: every chunk is copied and every write since forwarded; the
// target reports itself up to date at chain_version, so mgmtd makes it serve.
struct SyncDoneRequest {
  ChainId chain = 0;
  uint64_t chain_version = 0;
  TargetId target = 0;
  uint64_t chunks_copied = 0;
  uint64_t bytes_copied = 0;
  uint64_t chunks_removed = 0;
  static constexpr std::string_view kTypeName = "SyncDoneRequest";
  MICA_FIELDS(SyncDoneRequest, chain, chain_version, target, chunks_copied, bytes_copied,
              chunks_removed)
};
struct SyncDoneResponse {
  uint32_t reserved = 0;
  static constexpr std::string_view kTypeName = "SyncDoneResponse";
  MICA_FIELDS(SyncDoneResponse, reserved)
};

// A target's view for `mica status` and tests: its chunks, resync and scrub progress.
struct TargetProgress {
  TargetId target = 0;
  ChainId chain = 0;
  uint64_t chain_version = 0;
  PublicState state = PublicState::kOffline;  // as the server last saw it in routing
  LocalState local = LocalState::kOnline;     // what it reports to mgmtd
  uint64_t chunks = 0;
  uint64_t used_bytes = 0;
  uint64_t capacity_bytes = 0;
  // A resync this target drives (as predecessor of a syncing successor).
  bool resync_running = false;
  uint64_t resync_chunks_done = 0;
  uint64_t resync_chunks_total = 0;
  uint64_t resync_bytes_done = 0;
  uint64_t resync_bytes_total = 0;
  uint64_t scrub_passes = 0;
  uint64_t scrub_chunks_checked = 0;
  uint64_t scrub_corrupt_found = 0;
  static constexpr std::string_view kTypeName = "TargetProgress";
  MICA_FIELDS(TargetProgress, target, chain, chain_version, state, local, chunks, used_bytes,
              capacity_bytes, resync_running, resync_chunks_done, resync_chunks_total,
              resync_bytes_done, resync_bytes_total, scrub_passes, scrub_chunks_checked,
              scrub_corrupt_found)
};
struct ProgressRequest {
  uint32_t reserved = 0;
  static constexpr std::string_view kTypeName = "ProgressRequest";
  MICA_FIELDS(ProgressRequest, reserved)
};
struct ProgressResponse {
  NodeId node = 0;
  std::vector<TargetProgress> targets;
  static constexpr std::string_view kTypeName = "ProgressResponse";
  MICA_FIELDS(ProgressResponse, node, targets)
};

// Chunk metadata of one target for tests, fsck and `mica` (stat of one chunk, last chunk of
// an inode, a page of chunks). Serving or not: it reads what the target holds.
struct StatChunkRequest {
  ChainId chain = 0;
  ChunkRef chunk;
  static constexpr std::string_view kTypeName = "StatChunkRequest";
  MICA_FIELDS(StatChunkRequest, chain, chunk)
};
struct StatChunkResponse {
  std::optional<ChunkMeta> meta;  // none: no such chunk
  uint32_t pending_version = 0;
  static constexpr std::string_view kTypeName = "StatChunkResponse";
  MICA_FIELDS(StatChunkResponse, meta, pending_version)
};
// The chunk of inode with the highest index on this chain's target (lengths: meta/).
struct LastChunkRequest {
  ChainId chain = 0;
  uint64_t chain_version = 0;
  uint64_t inode = 0;
  static constexpr std::string_view kTypeName = "LastChunkRequest";
  MICA_FIELDS(LastChunkRequest, chain, chain_version, inode)
};
struct LastChunkResponse {
  std::optional<ChunkMeta> meta;
  static constexpr std::string_view kTypeName = "LastChunkResponse";
  MICA_FIELDS(LastChunkResponse, meta)
};

struct StorageService {
  static constexpr net::ServiceId kId = 200;
  static constexpr net::Method<kId, 1, UpdateRequest, UpdateResponse> update{};
  static constexpr net::Method<kId, 2, ForwardRequest, ForwardResponse> forward{};
  static constexpr net::Method<kId, 3, ReadRequest, ReadResponse> read{};
  static constexpr net::Method<kId, 4, BatchReadRequest, BatchReadResponse> batch_read{};
  static constexpr net::Method<kId, 5, QueryVersionRequest, QueryVersionResponse>
      query_version{};
  static constexpr net::Method<kId, 6, SyncListRequest, SyncListResponse> sync_list{};
  static constexpr net::Method<kId, 7, SyncWriteRequest, SyncAck> sync_write{};
  static constexpr net::Method<kId, 8, SyncRemoveRequest, SyncAck> sync_remove{};
  static constexpr net::Method<kId, 9, SyncDoneRequest, SyncDoneResponse> sync_done{};
  static constexpr net::Method<kId, 10, ProgressRequest, ProgressResponse> progress{};
  static constexpr net::Method<kId, 11, StatChunkRequest, StatChunkResponse> stat_chunk{};
  static constexpr net::Method<kId, 12, LastChunkRequest, LastChunkResponse> last_chunk{};
  MICA_SERVICE(StorageService, "storage", update, forward, read, batch_read, query_version,
               sync_list, sync_write, sync_remove, sync_done, progress, stat_chunk, last_chunk)
};

}  // namespace mica::craq
