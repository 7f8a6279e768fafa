// ChunkEngine::fsck: verifies a whole target — metadata against data, every block's CRC, the
// whole-chunk CRCs, and slot allocation against the records (leaked or doubly used space).
#include <algorithm>

#include "async/crc32c.h"
#include "async/log.h"
#include "chunk/block_crc.h"
#include "chunk/engine.h"

namespace mica::chunk {
namespace {

// Data is verified in pieces of this size, so fsck's memory does not grow with chunk size.
constexpr size_t kVerifyPieceBytes = size_t{1} << 20;

// One page of records copied out of a read transaction.
struct ScannedRecord {
  std::string key;
  ChunkId id;
  bool key_ok = false;
  Result<ChunkRecord> record = Status(StatusCode::kCorruption, "unread");
};

}  // namespace

bool FsckReport::ok() const {
  return corrupt_records == 0 && bad_placements == 0 && shared_slots == 0 &&
         checksum_mismatches == 0 && read_errors == 0 && leaked_slots == 0 &&
         unaccounted_slots == 0;
}

std::string FsckReport::to_string() const {
  std::string out = fmt::format(
      "fsck {}: {} chunks ({} committed, {} pending versions), {} bytes verified; "
      "corrupt records {}, bad placements {}, shared slots {}, checksum mismatches {}, "
      "read errors {}, leaked slots {}, unaccounted slots {}, free slots {}",
      ok() ? "clean" : "FOUND PROBLEMS", chunks, committed_versions, pending_versions,
      bytes_verified, corrupt_records, bad_placements, shared_slots, checksum_mismatches,
      read_errors, leaked_slots, unaccounted_slots, free_slots);
  for (const std::string& p : problems) out += "\n  " + p;
  return out;
}

void ChunkEngine::fsck_note(FsckReport* report, std::string problem) const {
  if (report == nullptr) {
    // At open: the problem is logged; fsck() will find it again.
    if (open_problems_ <= config_.fsck_problems_max)
      MICA_LOG(Warn, "chunk", "{}: {}", path_, problem);
    return;
  }
  if (report->problems.size() < config_.fsck_problems_max)
    report->problems.push_back(std::move(problem));
}

Task<Status> ChunkEngine::fsck_verify(ChunkId id, Placement p, const std::vector<uint32_t>* crcs,
                                      FsckReport* report) {
  size_t aligned = align_up(p.length_bytes, kBlockBytes);
  AlignedBuffer buffer(std::min(aligned, kVerifyPieceBytes));
  uint32_t checksum = 0;
  slots_->pin(p);
  for (size_t offset = 0; offset < aligned; offset += buffer.size()) {
    size_t n = std::min(buffer.size(), aligned - offset);
    auto reading = slots_->read(p, offset, buffer.span().first(n));
    Status s = co_await std::move(reading);
    if (!s.ok()) {
      ++report->read_errors;
      fsck_note(report, fmt::format("chunk {}: reading slot {} of class {}: {}", id, p.slot,
                                    p.size_class, s.to_string()));
      slots_->unpin(p);
      co_return Status();
    }
    for (size_t done = 0; done < n; done += kBlockBytes) {
      uint32_t block = static_cast<uint32_t>((offset + done) / kBlockBytes);
      uint32_t bytes = std::min<uint32_t>(kBlockBytes, p.length_bytes - block * kBlockBytes);
      uint32_t crc = crc32c(buffer.data() + done, bytes);
      checksum = block_crc_append(checksum, (*crcs)[block], bytes);
      if (crc != (*crcs)[block]) {
        ++report->checksum_mismatches;
        fsck_note(report, fmt::format("chunk {}: block {} in slot {} of class {} does not match "
                                      "its CRC32C ({:#010x}, recorded {:#010x})",
                                      id, block, p.slot, p.size_class, crc, (*crcs)[block]));
      }
    }
    report->bytes_verified += n;
  }
  slots_->unpin(p);
  if (checksum != p.checksum) {
    ++report->checksum_mismatches;
    fsck_note(report, fmt::format("chunk {}: whole-chunk CRC {:#010x} is not the combination of "
                                  "its block CRCs ({:#010x})",
                                  id, p.checksum, checksum));
  }
  co_return Status();
}

Task<Result<FsckReport>> ChunkEngine::fsck() {
  FsckReport report;
  std::array<std::vector<bool>, kSizeClassCount> referenced;
  for (uint32_t c = 0; c < kSizeClassCount; ++c) referenced[c].assign(slots_->slot_count(c), false);
  std::string resume;  // last key of the previous page
  for (bool more = true; more;) {
    // Copy one page out of a short read transaction, then verify its data with none held.
    std::vector<ScannedRecord> page;
    Status scanned = with_chunks_cursor([&](kv::Cursor& cursor) -> Status {
      auto entry = resume.empty() ? cursor.first() : cursor.seek(resume);
      if (entry.ok() && *entry && !resume.empty() && (*entry)->key == resume) entry = cursor.next();
      for (; entry.ok() && *entry && page.size() < config_.list_batch_max; entry = cursor.next()) {
        ScannedRecord& r = page.emplace_back();
        r.key = std::string((*entry)->key);
        r.key_ok = decode_chunk_key(r.key, &r.id);
        r.record = decode_record((*entry)->value);
      }
      more = entry.ok() && *entry;
      return entry.status();
    });
    CO_TRY(scanned);
    if (!page.empty()) resume = page.back().key;
    for (ScannedRecord& r : page) {
      if (!r.key_ok) {
        ++report.corrupt_records;
        fsck_note(&report, fmt::format("a key of {} bytes is not a chunk id", r.key.size()));
        continue;
      }
      ++report.chunks;
      if (!r.record.ok()) {
        ++report.corrupt_records;
        fsck_note(&report, fmt::format("chunk {}: {}", r.id, r.record.status().message()));
        continue;
      }
      const ChunkRecord& record = *r.record;
      for (int which = 0; which < 2; ++which) {
        bool present = which == 0 ? record.has_committed() : record.has_pending();
        if (!present) continue;
        const Placement& p = which == 0 ? record.committed : record.pending;
        const std::vector<uint32_t>& crcs =
            which == 0 ? record.committed_crcs : record.pending_crcs;
        ++(which == 0 ? report.committed_versions : report.pending_versions);
        if (p.slot >= referenced[p.size_class].size()) {
          ++report.bad_placements;
          fsck_note(&report, fmt::format("chunk {}: slot {} of class {} is past the end of its "
                                         "file",
                                         r.id, p.slot, p.size_class));
          continue;
        }
        if (referenced[p.size_class][p.slot]) {
          ++report.shared_slots;
          fsck_note(&report, fmt::format("chunk {}: slot {} of class {} is used twice", r.id,
                                         p.slot, p.size_class));
          continue;
        }
        referenced[p.size_class][p.slot] = true;
        auto verifying = fsck_verify(r.id, p, &crcs, &report);
        CO_TRY(co_await std::move(verifying));
      }
    }
  }
  for (uint32_t c = 0; c < kSizeClassCount; ++c) {
    for (uint32_t slot = 0; slot < referenced[c].size(); ++slot) {
      bool used = slots_->slot_in_use(c, slot);
      bool ref = referenced[c][slot];
      if (used && !ref && !in_flight_slots_.contains((uint64_t{c} << 32) | slot)) {
        ++report.leaked_slots;
        fsck_note(&report,
                  fmt::format("slot {} of class {} is allocated but no chunk uses it", slot, c));
      } else if (!used && ref) {
        ++report.unaccounted_slots;
        fsck_note(&report,
                  fmt::format("slot {} of class {} is used by a chunk but marked free", slot, c));
      } else if (!used) {
        ++report.free_slots;
      }
    }
  }
  co_return report;
}

}  // namespace mica::chunk
