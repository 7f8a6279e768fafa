// choose_read_version: what a replica holding a pending version may serve, given the state
// the read tail reports committed (CRAQ's apportioned query), table-driven.
#include <gtest/gtest.h>

#include "craq/storage_read.h"

namespace mica::craq {
namespace {

// A chunk with committed version 3 (100 bytes, checksum 0xc3) and pending version 4 (200
// bytes, checksum 0xc4).
chunk::ChunkInfo local_with_pending() {
  chunk::ChunkInfo info;
  info.committed_version = 3;
  info.length_bytes = 100;
  info.checksum = 0xc3;
  info.pending_version = 4;
  info.pending_length_bytes = 200;
  info.pending_checksum = 0xc4;
  return info;
}

TEST(ReadChoice, TailAtOurCommittedVersionServesIt) {
  EXPECT_EQ(choose_read_version(local_with_pending(), {3, 100, 0xc3}), ReadChoice::kCommitted);
}

TEST(ReadChoice, TailHavingCommittedOurPendingVersionServesThePendingBytes) {
  EXPECT_EQ(choose_read_version(local_with_pending(), {4, 200, 0xc4}), ReadChoice::kPending);
}

TEST(ReadChoice, PendingVersionWithOtherContentThanTheTailsIsDirty) {
  // Same version number, other bytes: a pending version left behind by a failed update.
  EXPECT_EQ(choose_read_version(local_with_pending(), {4, 200, 0xee}), ReadChoice::kDirty);
  EXPECT_EQ(choose_read_version(local_with_pending(), {4, 300, 0xc4}), ReadChoice::kDirty);
}

TEST(ReadChoice, CommittedVersionWithOtherContentThanTheTailsIsDirty) {
  EXPECT_EQ(choose_read_version(local_with_pending(), {3, 100, 0xee}), ReadChoice::kDirty);
}

TEST(ReadChoice, TailAheadOfEverythingWeHoldIsDirty) {
  EXPECT_EQ(choose_read_version(local_with_pending(), {5, 200, 0xc5}), ReadChoice::kDirty);
}

TEST(ReadChoice, TailBehindOurCommittedVersionIsDirty) {
  EXPECT_EQ(choose_read_version(local_with_pending(), {2, 100, 0xc2}), ReadChoice::kDirty);
}

TEST(ReadChoice, TailWithoutTheChunkIsDirtyWhenWeHaveCommittedData) {
  EXPECT_EQ(choose_read_version(local_with_pending(), {0, 0, 0}), ReadChoice::kDirty);
}

TEST(ReadChoice, NewChunkOnlyPendingHereAndAbsentAtTheTailIsAHole) {
  chunk::ChunkInfo info;
  info.pending_version = 1;
  info.pending_length_bytes = 50;
  info.pending_checksum = 0xc1;
  EXPECT_EQ(choose_read_version(info, {0, 0, 0}), ReadChoice::kCommitted);
  EXPECT_EQ(choose_read_version(info, {1, 50, 0xc1}), ReadChoice::kPending);
}

// A replica passing a removal down the chain (the tail removes first): the tail without the
// chunk means the removal is what readers see; the tail still holding our committed state
// means it has not got there yet.
TEST(ReadChoice, ARemovalPassedDownIsAHoleOnceTheTailHasNoChunk) {
  chunk::ChunkInfo info = local_with_pending();
  info.pending_version = 0;
  EXPECT_EQ(choose_read_version(info, {0, 0, 0}, true), ReadChoice::kRemoved);
  EXPECT_EQ(choose_read_version(info, {3, 100, 0xc3}, true), ReadChoice::kCommitted);
  EXPECT_EQ(choose_read_version(info, {1, 10, 0xc1}, true), ReadChoice::kDirty);
  EXPECT_EQ(choose_read_version(info, {0, 0, 0}, false), ReadChoice::kDirty);
}

}  // namespace
}  // namespace mica::craq
