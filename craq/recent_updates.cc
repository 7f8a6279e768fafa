// RecentUpdates (craq/recent_updates.h): a hash table for lookups and a FIFO of its keys
// for eviction by count and by age (entries are added in time order, so the oldest is at
// the front).
#include "craq/recent_updates.h"

#include "async/assert.h"

namespace mica::craq {

RecentUpdates::RecentUpdates(uint32_t entries_max, Duration age_max)
    : entries_max_(entries_max), age_max_(age_max) {
  MICA_ASSERT_MSG(entries_max_ > 0, "the recent-update table needs room for one entry");
  MICA_ASSERT_MSG(age_max_ > Duration(0), "recent updates need a positive age limit");
}

void RecentUpdates::record(chunk::UpdateTag tag, ChunkRef chunk, ChunkState state, TimePoint now) {
  if (tag.empty()) return;
  expire(now);
  auto [it, added] =
      entries_.try_emplace(tag, Entry{.chunk = chunk, .state = state, .recorded = now});
  if (!added) {
    it->second.chunk = chunk;
    it->second.state = state;
    return;
  }
  order_.push_back(tag);
  while (entries_.size() > entries_max_) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
  MICA_ASSERT(order_.size() == entries_.size());
}

std::optional<ChunkState> RecentUpdates::find(chunk::UpdateTag tag, ChunkRef chunk, TimePoint now) {
  expire(now);
  if (tag.empty()) return std::nullopt;
  auto it = entries_.find(tag);
  // The same tag on another chunk is a client's bug, not a retry: leave it to the checks.
  if (it == entries_.end() || it->second.chunk != chunk) return std::nullopt;
  return it->second.state;
}

void RecentUpdates::expire(TimePoint now) {
  while (!order_.empty()) {
    auto it = entries_.find(order_.front());
    MICA_ASSERT(it != entries_.end());
    if (now - it->second.recorded <= age_max_) return;
    entries_.erase(it);
    order_.pop_front();
  }
}

}  // namespace mica::craq
