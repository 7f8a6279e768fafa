// Value types of the chunk engine: chunk ids and their key encoding, placements, the metadata
// record a chunk has in LMDB, and the engine's limits (ChunkEngineConfig).
//
// A ChunkId is (inode, chunk index). Its LMDB key is 12 bytes, big-endian, so the byte order
// of keys is the numeric order of (inode, index) and the chunks of one file are one key range
// ("the last chunk of a file" is one seek). Plain values: thread-compatible, never suspend.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace mica::chunk {

struct ChunkId {
  uint64_t inode = 0;
  uint32_t index = 0;
  friend auto operator<=>(const ChunkId&, const ChunkId&) = default;
};

inline constexpr size_t kChunkKeyBytes = 12;
using ChunkKey = std::array<char, kChunkKeyBytes>;

inline ChunkKey encode_chunk_key(ChunkId id) {
  ChunkKey key;
  for (int i = 0; i < 8; ++i) key[i] = static_cast<char>(id.inode >> (56 - 8 * i));
  for (int i = 0; i < 4; ++i) key[8 + i] = static_cast<char>(id.index >> (24 - 8 * i));
  return key;
}

inline std::string_view key_view(const ChunkKey& key) {
  return {key.data(), key.size()};
}

// False when the bytes are not a chunk key (wrong length).
inline bool decode_chunk_key(std::string_view key, ChunkId* id) {
  if (key.size() != kChunkKeyBytes) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(key.data());
  id->inode = 0;
  id->index = 0;
  for (int i = 0; i < 8; ++i) id->inode = (id->inode << 8) | p[i];
  for (int i = 8; i < 12; ++i) id->index = (id->index << 8) | p[i];
  return true;
}

struct ChunkIdHash {
  size_t operator()(const ChunkId& id) const {
    return std::hash<uint64_t>()(id.inode * 0x9E3779B97F4A7C15ull ^ id.index);
  }
};

// The block every CRC covers. 4 KiB = the O_DIRECT alignment, so a read verifies exactly the
// blocks it has to read anyway (a 4 KiB random read reads 4 KiB, not a 64 KiB block); the
// price is 4 bytes of LMDB per 4 KiB of data (0.1 %). Part of the on-disk format.
inline constexpr uint32_t kBlockBytes = 4096;

// Slot sizes: 64 KiB << class, class 0..10 (64 KiB … 64 MiB). Part of the on-disk format.
inline constexpr uint32_t kSizeClassMinShift = 16;
inline constexpr uint32_t kSizeClassCount = 11;
inline constexpr uint32_t kChunkSizeLimitBytes = 64u << 20;

inline constexpr uint64_t size_class_bytes(uint32_t size_class) {
  return uint64_t{1} << (kSizeClassMinShift + size_class);
}
// The smallest class whose slot holds length_bytes (<= kChunkSizeLimitBytes).
inline uint32_t size_class_for(uint32_t length_bytes) {
  uint32_t c = 0;
  while (size_class_bytes(c) < length_bytes) ++c;
  return c;
}

inline constexpr uint32_t block_count(uint32_t length_bytes) {
  return (length_bytes + kBlockBytes - 1) / kBlockBytes;
}

// Where one version of a chunk lives: slot `slot` of the size-class file `size_class`.
struct Placement {
  uint8_t size_class = 0;
  uint32_t slot = 0;
  uint32_t length_bytes = 0;
  uint32_t checksum = 0;  // CRC32C of the chunk's length_bytes bytes
  friend bool operator==(const Placement&, const Placement&) = default;
};

// Who made an update: the writing client's id and its request id. Kept with each version of a
// chunk (replicated with it), so that a retry of an update, reaching a new head after a chain
// change, is recognised there and never applied twice. {0, 0}: no tag (a resync copy, or a
// version written before tags existed).
struct UpdateTag {
  uint64_t client_id = 0;
  uint64_t request_id = 0;
  bool empty() const { return client_id == 0 && request_id == 0; }
  friend bool operator==(const UpdateTag&, const UpdateTag&) = default;
};

// What the engine tells callers about a chunk (no block checksums). Version 0 means "none":
// committed_version 0 is a chunk that has only a pending version so far.
struct ChunkInfo {
  ChunkId id;
  uint32_t chain_version = 0;
  uint32_t committed_version = 0;
  uint32_t pending_version = 0;
  uint32_t length_bytes = 0;  // committed
  uint32_t checksum = 0;      // committed whole-chunk CRC32C
  uint32_t pending_length_bytes = 0;
  uint32_t pending_checksum = 0;
  UpdateTag committed_tag;  // the update that made the committed version
  UpdateTag pending_tag;    // the update that made the pending version
  // list() only: the chunk's record is damaged (kCorruption); only id is meaningful. Resync
  // must see such a chunk (to replace or remove it), so list() reports it, never skips it.
  bool damaged = false;
  friend bool operator==(const ChunkInfo&, const ChunkInfo&) = default;
};

// Every limit of one chunk engine. Sizes in bytes, counts named *_max.
struct ChunkEngineConfig {
  // Largest chunk accepted (a power of two, 64 KiB … 64 MiB).
  uint32_t chunk_size_max_bytes = kChunkSizeLimitBytes;
  // Free disk space that new data never uses: growth that would leave less is kNoSpace. 0:
  // no reserve, the file system's ENOSPC is the limit.
  uint64_t reserve_bytes = uint64_t{1} << 30;
  // Cap on the bytes of all data files together (0: only the disk and the reserve limit).
  uint64_t data_bytes_max = 0;
  // A size-class file grows by at least this much (rounded to whole slots) when full.
  uint64_t growth_step_bytes = uint64_t{64} << 20;
  // Metadata requests applied in one kv/ write transaction (group commit).
  uint32_t group_commit_batch_max = 512;
  // Updates (write, commit, abort, truncate, remove, replace) running at once; more wait.
  uint32_t updates_in_flight_max = 1024;
  // kv/ (LMDB, or the simulated store): bytes the metadata may hold (LMDB's map), and
  // reader slots.
  uint64_t lmdb_map_size_bytes = uint64_t{64} << 30;
  uint32_t lmdb_readers_max = 256;
  // Entries returned by one list() call.
  uint32_t list_batch_max = 4096;
  // Problems fsck describes in words (all are counted).
  uint32_t fsck_problems_max = 1000;
  // Never use O_DIRECT: the buffered path (still RWF_DSYNC) that file systems refusing
  // O_DIRECT get. For tests, since tmpfs accepts O_DIRECT on current kernels.
  bool buffered_io = false;
};

}  // namespace mica::chunk

template <>
struct fmt::formatter<mica::chunk::ChunkId> : fmt::formatter<std::string_view> {
  auto format(const mica::chunk::ChunkId& id, fmt::format_context& ctx) const {
    return fmt::format_to(ctx.out(), "{:#x}/{}", id.inode, id.index);
  }
};
