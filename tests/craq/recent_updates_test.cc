// The table of recently applied updates (craq/recent_updates.h): found by tag and chunk,
// bounded by count (oldest out first) and by age. Pure: time is passed in.
#include "craq/recent_updates.h"

#include <gtest/gtest.h>

namespace mica::craq {
namespace {

constexpr ChunkRef kChunk{.inode = 1, .index = 2};
constexpr Duration kAge = std::chrono::seconds(120);

TimePoint at_s(int64_t s) {
  return TimePoint(std::chrono::seconds(s));
}

chunk::UpdateTag tag(uint64_t request) {
  return chunk::UpdateTag{.client_id = 9, .request_id = request};
}

TEST(RecentUpdates, RecordedUpdateIsFoundWithItsStateOnItsChunkOnly) {
  RecentUpdates table(16, kAge);
  ChunkState state{.version = 3, .length_bytes = 100, .checksum = 0xabc};
  table.record(tag(1), kChunk, state, at_s(0));
  std::optional<ChunkState> found = table.find(tag(1), kChunk, at_s(1));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->version, 3u);
  EXPECT_EQ(found->checksum, 0xabcu);
  EXPECT_FALSE(table.find(tag(2), kChunk, at_s(1)).has_value());
  EXPECT_FALSE(table.find(tag(1), ChunkRef{.inode = 1, .index = 3}, at_s(1)).has_value());
}

TEST(RecentUpdates, EmptyTagIsNeverRecorded) {
  RecentUpdates table(16, kAge);
  table.record(chunk::UpdateTag{}, kChunk, ChunkState{.version = 1}, at_s(0));
  EXPECT_EQ(table.size(), 0u);
  EXPECT_FALSE(table.find(chunk::UpdateTag{}, kChunk, at_s(0)).has_value());
}

TEST(RecentUpdates, OldestEntryGoesFirstAtTheCountLimit) {
  RecentUpdates table(3, kAge);
  for (uint64_t r = 1; r <= 4; ++r) table.record(tag(r), kChunk, ChunkState{}, at_s(0));
  EXPECT_EQ(table.size(), 3u);
  EXPECT_FALSE(table.find(tag(1), kChunk, at_s(0)).has_value());
  for (uint64_t r = 2; r <= 4; ++r) EXPECT_TRUE(table.find(tag(r), kChunk, at_s(0)).has_value());
}

TEST(RecentUpdates, EntriesOlderThanTheAgeLimitAreForgotten) {
  RecentUpdates table(16, kAge);
  table.record(tag(1), kChunk, ChunkState{}, at_s(0));
  table.record(tag(2), kChunk, ChunkState{}, at_s(60));
  EXPECT_TRUE(table.find(tag(1), kChunk, at_s(120)).has_value());
  EXPECT_FALSE(table.find(tag(1), kChunk, at_s(121)).has_value());
  EXPECT_TRUE(table.find(tag(2), kChunk, at_s(121)).has_value());
  EXPECT_EQ(table.size(), 1u);
}

TEST(RecentUpdates, RecordingATagAgainKeepsOneEntryWithTheNewState) {
  RecentUpdates table(16, kAge);
  table.record(tag(1), kChunk, ChunkState{.version = 1}, at_s(0));
  table.record(tag(1), kChunk, ChunkState{.version = 2}, at_s(10));
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.find(tag(1), kChunk, at_s(10))->version, 2u);
}

}  // namespace
}  // namespace mica::craq
