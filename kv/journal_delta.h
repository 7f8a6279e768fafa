// The journaled store's delta (kv/journaled_env.h): the committed changes not yet in LMDB,
// per table the newest value or deletion of each key, with what each does to the table's
// count; and the cursor that reads a delta laid over an LMDB cursor. Private to kv/'s
// journaled store (kv/journaled_env.cc). Nothing here suspends or does I/O; a delta and the
// LMDB transaction under a cursor must outlive it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv/kv.h"
#include "kv/lmdb.h"

namespace mica::kv {

// What one entry costs LMDB beyond its bytes (node header, page fill), for the room check.
inline constexpr uint64_t kEntryOverheadBytes = 16;

// The newest committed change of a key not yet in LMDB; nullopt value: deleted.
struct Slot {
  std::optional<std::string> value;
  uint64_t seq = 0;   // the journal record that made it
  int8_t effect = 0;  // on its table's count: +1 added, -1 deleted, 0 replaced or no-op
};
using Delta = std::map<std::string, Slot, std::less<>>;
struct Deltas {
  std::vector<Delta> tables;   // by Table
  std::vector<int64_t> added;  // by Table: the sum of its slots' effects
  uint64_t base_marker = 0;    // effects are against LMDB as this checkpoint left it
};

// A slot's effect on its table's count, given whether the LMDB it lies over holds the key.
inline int8_t effect_of(bool in_base, bool has_value) {
  if (has_value) return in_base ? 0 : 1;
  return in_base ? -1 : 0;
}

// Whether the LMDB under a slot holds its key, read off the slot's effect.
inline bool base_had(const Slot& slot) {
  return slot.value ? slot.effect == 0 : slot.effect == -1;
}

// What a slot is counted as in the delta's bytes.
inline uint64_t slot_bytes(std::string_view key, const std::optional<std::string>& value) {
  return key.size() + (value ? value->size() : 0) + kEntryOverheadBytes;
}

// An ordered cursor over a delta laid on an LMDB cursor: a delta value replaces the base
// entry of its key, a delta deletion hides it. Positions are keys, so moving in either
// direction is a seek in both; a run of next() keeps the base cursor where it is when it
// can. Like the simulated store's cursor, next() past the end stays there and prev() from
// there lands on the last entry.
std::unique_ptr<Cursor> merged_cursor(lmdb::Cursor base, const Delta* delta);

}  // namespace mica::kv
