// choose_read_version (craq/storage_read.h): the decision of CRAQ's apportioned query, kept
// apart from the read path so that it is tested on its own, table-driven.
#include "craq/storage_read.h"

namespace mica::craq {

namespace {

bool same_state(uint32_t version, uint32_t length_bytes, uint32_t checksum,
                const ChunkState& tail) {
  return tail.version == version && tail.length_bytes == length_bytes && tail.checksum == checksum;
}

}  // namespace

ReadChoice choose_read_version(const chunk::ChunkInfo& local, const ChunkState& tail,
                               bool removing) {
  // A committed version 0 is "none": the tail having none either makes the chunk a hole.
  bool committed_matches =
      local.committed_version == 0
          ? tail.version == 0
          : same_state(local.committed_version, local.length_bytes, local.checksum, tail);
  if (committed_matches) return ReadChoice::kCommitted;
  if (removing && tail.version == 0) return ReadChoice::kRemoved;
  if (local.pending_version != 0 &&
      same_state(local.pending_version, local.pending_length_bytes, local.pending_checksum, tail))
    return ReadChoice::kPending;
  return ReadChoice::kDirty;
}

}  // namespace mica::craq
