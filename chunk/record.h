// The on-disk encodings the chunk engine keeps in kv/ (LMDB): a chunk's metadata record (value of
// the "chunks" database) and the target's format record ("target" database, key "format").
//
// A chunk record is a fixed header (88 bytes in record format 2; 56 in format 1, which had no
// update tags and is still read) followed by the block CRCs of the committed version, then
// those of the pending version. Integers are little-endian; the first field is
// a CRC32C of everything after it, so a damaged record is detected (kCorruption), never
// trusted. Both sides of the format are checked: encode asserts its invariants, decode
// returns kCorruption for any violation. Pure functions: thread-safe, never suspend.
#pragma once

#include <bit>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "async/status.h"
#include "chunk/types.h"

namespace mica::chunk {

static_assert(std::endian::native == std::endian::little, "records are stored little-endian");

// Bumped whenever the layout of the target (files, records, keys) changes; checked at open.
// Record format 2 added the update tags without changing the target format version: a
// format-1 record is still decoded (tags empty), so an existing target opens unchanged, and
// records are rewritten in format 2 as their chunks are updated.
inline constexpr uint32_t kTargetFormatVersion = 1;
inline constexpr uint8_t kRecordFormat = 2;
inline constexpr uint8_t kRecordFormatUntagged = 1;

// The metadata of one chunk as the engine works with it.
struct ChunkRecord {
  uint32_t chain_version = 0;
  uint32_t committed_version = 0;  // 0: no committed version
  uint32_t pending_version = 0;    // 0: no pending version
  Placement committed;
  Placement pending;
  UpdateTag committed_tag;               // empty without a committed version
  UpdateTag pending_tag;                 // empty without a pending version
  std::vector<uint32_t> committed_crcs;  // one per kBlockBytes block
  std::vector<uint32_t> pending_crcs;

  bool has_committed() const { return committed_version != 0; }
  bool has_pending() const { return pending_version != 0; }
  ChunkInfo info(ChunkId id) const;
};

// On-disk header of a chunk record (the CRC arrays follow it).
struct RecordHeader {
  uint32_t record_crc;  // CRC32C of the record's bytes after this field
  uint8_t record_format;
  uint8_t reserved0;
  uint16_t reserved1;
  uint32_t chain_version;
  uint32_t committed_version;
  uint32_t pending_version;
  uint32_t reserved2;
  struct DiskPlacement {
    uint8_t size_class;
    uint8_t reserved[3];
    uint32_t slot;
    uint32_t length_bytes;
    uint32_t checksum;
  } committed, pending;
  // Format 2 only: a format-1 header ends here (kUntaggedHeaderBytes).
  struct DiskTag {
    uint64_t client_id;
    uint64_t request_id;
  } committed_tag, pending_tag;
};
static_assert(sizeof(RecordHeader::DiskPlacement) == 16);
static_assert(sizeof(RecordHeader::DiskTag) == 16);
static_assert(sizeof(RecordHeader) == 88);
// The header of a format-1 record: everything before the tags.
inline constexpr size_t kUntaggedHeaderBytes = 56;
static_assert(offsetof(RecordHeader, committed_tag) == kUntaggedHeaderBytes);

std::string encode_record(const ChunkRecord& record);
// kCorruption when the bytes are not a valid record (CRC, format, sizes, placements).
Result<ChunkRecord> decode_record(std::string_view bytes);

// The target's identity, written once when the target is created.
struct FormatRecord {
  char magic[8];  // "MICACHNK"
  uint32_t format_version;
  uint32_t block_bytes;
  uint32_t size_class_min_shift;
  uint32_t size_class_count;
  uint32_t reserved;
  uint32_t record_crc;  // CRC32C of the bytes before it
};
static_assert(sizeof(FormatRecord) == 32);

std::string encode_format_record();
// kCorruption when damaged, kNotSupported when written by another format version.
Status check_format_record(std::string_view bytes);

}  // namespace mica::chunk
