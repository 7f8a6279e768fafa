#include "chunk/record.h"

#include <cstring>

#include "async/crc32c.h"

namespace mica::chunk {
namespace {

constexpr char kMagic[8] = {'M', 'I', 'C', 'A', 'C', 'H', 'N', 'K'};

RecordHeader::DiskPlacement to_disk(const Placement& p) {
  RecordHeader::DiskPlacement d{};
  d.size_class = p.size_class;
  d.slot = p.slot;
  d.length_bytes = p.length_bytes;
  d.checksum = p.checksum;
  return d;
}

Placement from_disk(const RecordHeader::DiskPlacement& d) {
  return Placement{d.size_class, d.slot, d.length_bytes, d.checksum};
}

RecordHeader::DiskTag to_disk(const UpdateTag& t) {
  return RecordHeader::DiskTag{t.client_id, t.request_id};
}

UpdateTag from_disk(const RecordHeader::DiskTag& d) {
  return UpdateTag{d.client_id, d.request_id};
}

bool placement_valid(const Placement& p) {
  return p.size_class < kSizeClassCount && p.length_bytes <= size_class_bytes(p.size_class);
}

Status corrupt(std::string_view why) {
  return Status(StatusCode::kCorruption, fmt::format("chunk record: {}", why));
}

}  // namespace

ChunkInfo ChunkRecord::info(ChunkId id) const {
  ChunkInfo i;
  i.id = id;
  i.chain_version = chain_version;
  i.committed_version = committed_version;
  i.pending_version = pending_version;
  if (has_committed()) {
    i.length_bytes = committed.length_bytes;
    i.checksum = committed.checksum;
    i.committed_tag = committed_tag;
  }
  if (has_pending()) {
    i.pending_length_bytes = pending.length_bytes;
    i.pending_checksum = pending.checksum;
    i.pending_tag = pending_tag;
  }
  return i;
}

std::string encode_record(const ChunkRecord& r) {
  MICA_ASSERT(r.has_committed() || r.has_pending());
  MICA_ASSERT(!r.has_committed() || placement_valid(r.committed));
  MICA_ASSERT(!r.has_pending() || placement_valid(r.pending));
  MICA_ASSERT(r.committed_crcs.size() ==
              (r.has_committed() ? block_count(r.committed.length_bytes) : 0));
  MICA_ASSERT(r.pending_crcs.size() == (r.has_pending() ? block_count(r.pending.length_bytes) : 0));
  MICA_ASSERT(r.has_committed() || r.committed_tag.empty());
  MICA_ASSERT(r.has_pending() || r.pending_tag.empty());
  RecordHeader h{};
  h.record_format = kRecordFormat;
  h.chain_version = r.chain_version;
  h.committed_version = r.committed_version;
  h.pending_version = r.pending_version;
  if (r.has_committed()) h.committed = to_disk(r.committed);
  if (r.has_pending()) h.pending = to_disk(r.pending);
  h.committed_tag = to_disk(r.committed_tag);
  h.pending_tag = to_disk(r.pending_tag);
  size_t crc_bytes = 4 * (r.committed_crcs.size() + r.pending_crcs.size());
  std::string out(sizeof(h) + crc_bytes, '\0');
  std::memcpy(out.data(), &h, sizeof(h));
  char* p = out.data() + sizeof(h);
  if (!r.committed_crcs.empty()) {
    std::memcpy(p, r.committed_crcs.data(), 4 * r.committed_crcs.size());
    p += 4 * r.committed_crcs.size();
  }
  if (!r.pending_crcs.empty()) std::memcpy(p, r.pending_crcs.data(), 4 * r.pending_crcs.size());
  uint32_t crc = crc32c(out.data() + 4, out.size() - 4);
  std::memcpy(out.data(), &crc, 4);
  return out;
}

Result<ChunkRecord> decode_record(std::string_view bytes) {
  if (bytes.size() < kUntaggedHeaderBytes) return corrupt("shorter than its header");
  RecordHeader h{};  // a format-1 header leaves the tags zero: "no tag"
  std::memcpy(&h, bytes.data(), kUntaggedHeaderBytes);
  if (crc32c(bytes.data() + 4, bytes.size() - 4) != h.record_crc) return corrupt("CRC mismatch");
  size_t header_bytes = 0;
  if (h.record_format == kRecordFormat)
    header_bytes = sizeof(RecordHeader);
  else if (h.record_format == kRecordFormatUntagged)
    header_bytes = kUntaggedHeaderBytes;
  else
    return corrupt(fmt::format("unknown record format {}", h.record_format));
  if (bytes.size() < header_bytes) return corrupt("shorter than its header");
  std::memcpy(&h, bytes.data(), header_bytes);
  ChunkRecord r;
  r.chain_version = h.chain_version;
  r.committed_version = h.committed_version;
  r.pending_version = h.pending_version;
  if (!r.has_committed() && !r.has_pending()) return corrupt("neither committed nor pending");
  if (r.has_pending() && r.pending_version <= r.committed_version)
    return corrupt("pending version not above committed version");
  size_t committed_blocks = 0;
  size_t pending_blocks = 0;
  if (r.has_committed()) {
    r.committed = from_disk(h.committed);
    if (!placement_valid(r.committed)) return corrupt("bad committed placement");
    committed_blocks = block_count(r.committed.length_bytes);
    r.committed_tag = from_disk(h.committed_tag);
  } else if (!from_disk(h.committed_tag).empty()) {
    return corrupt("a committed tag without a committed version");
  }
  if (r.has_pending()) {
    r.pending = from_disk(h.pending);
    if (!placement_valid(r.pending)) return corrupt("bad pending placement");
    pending_blocks = block_count(r.pending.length_bytes);
    r.pending_tag = from_disk(h.pending_tag);
  } else if (!from_disk(h.pending_tag).empty()) {
    return corrupt("a pending tag without a pending version");
  }
  if (bytes.size() != header_bytes + 4 * (committed_blocks + pending_blocks))
    return corrupt("size does not match its lengths");
  const char* p = bytes.data() + header_bytes;
  r.committed_crcs.resize(committed_blocks);
  r.pending_crcs.resize(pending_blocks);
  if (committed_blocks) std::memcpy(r.committed_crcs.data(), p, 4 * committed_blocks);
  if (pending_blocks)
    std::memcpy(r.pending_crcs.data(), p + 4 * committed_blocks, 4 * pending_blocks);
  return r;
}

std::string encode_format_record() {
  FormatRecord f{};
  std::memcpy(f.magic, kMagic, sizeof(kMagic));
  f.format_version = kTargetFormatVersion;
  f.block_bytes = kBlockBytes;
  f.size_class_min_shift = kSizeClassMinShift;
  f.size_class_count = kSizeClassCount;
  f.record_crc = crc32c(&f, offsetof(FormatRecord, record_crc));
  return std::string(reinterpret_cast<const char*>(&f), sizeof(f));
}

Status check_format_record(std::string_view bytes) {
  FormatRecord f;
  if (bytes.size() != sizeof(f))
    return Status(StatusCode::kCorruption, "target format record has the wrong size");
  std::memcpy(&f, bytes.data(), sizeof(f));
  if (std::memcmp(f.magic, kMagic, sizeof(kMagic)) != 0 ||
      f.record_crc != crc32c(&f, offsetof(FormatRecord, record_crc)))
    return Status(StatusCode::kCorruption, "target format record is damaged");
  if (f.format_version != kTargetFormatVersion)
    return Status(StatusCode::kNotSupported,
                  fmt::format("target has format version {}, this build reads version {}",
                              f.format_version, kTargetFormatVersion));
  if (f.block_bytes != kBlockBytes || f.size_class_min_shift != kSizeClassMinShift ||
      f.size_class_count != kSizeClassCount)
    return Status(StatusCode::kNotSupported, "target uses another block size or size classes");
  return Status();
}

}  // namespace mica::chunk
