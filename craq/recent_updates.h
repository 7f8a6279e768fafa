// RecentUpdates: one target's table of the updates it applied recently, keyed by their
// (client id, request id) tag, with the chunk state each left behind. The head consults it
// before applying a client's update, so a retry is answered as a duplicate even after
// other updates of the chunk committed on top of it (the chunk's own tags name only its last
// update). Every member records what it commits, so a new head knows the same updates.
//
// Bounded twice: at most entries_max entries (the oldest go first) and none older than
// age_max (docs/craq.md says why that outlasts every client's retries, and what a restart
// means). Memory only: the chunk's tags in the engine are the durable fallback.
//
// Ownership and threads: owned by the UpdatePath (one per target); used on the server's
// executor only. Never suspends; time is passed in (the executor's clock).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>

#include "async/time.h"
#include "chunk/types.h"
#include "craq/storage_service.h"

namespace mica::craq {

class RecentUpdates {
 public:
  RecentUpdates(uint32_t entries_max, Duration age_max);

  // Records that the update `tag` of `chunk` was applied and left `state` (a removal: all
  // zero). An empty tag is not recorded. A tag recorded before keeps its age, takes the state.
  void record(chunk::UpdateTag tag, ChunkRef chunk, ChunkState state, TimePoint now);
  // The state the update `tag` of `chunk` left, if it was applied here within age_max (and
  // is still among the entries_max most recent).
  std::optional<ChunkState> find(chunk::UpdateTag tag, ChunkRef chunk, TimePoint now);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    ChunkRef chunk;
    ChunkState state;
    TimePoint recorded;
  };
  struct TagHash {
    size_t operator()(const chunk::UpdateTag& tag) const {
      return std::hash<uint64_t>()(tag.client_id * 0x9e3779b97f4a7c15ull ^ tag.request_id);
    }
  };
  // Drops entries older than age_max.
  void expire(TimePoint now);

  uint32_t entries_max_;
  Duration age_max_;
  // Lookups only, never iterated, so its order does not matter (determinism).
  std::unordered_map<chunk::UpdateTag, Entry, TagHash> entries_;
  std::deque<chunk::UpdateTag> order_;  // oldest first, one per entry
};

}  // namespace mica::craq
