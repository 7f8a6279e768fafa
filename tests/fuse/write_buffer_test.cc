// fuse/write_buffer.h: one contiguous, bounded range of small writes. Pure data, no cluster.
#include "fuse/write_buffer.h"

#include <gtest/gtest.h>

#include <vector>

namespace mica::fuse {
namespace {

std::vector<std::byte> bytes(size_t n, uint8_t value) {
  return std::vector<std::byte>(n, static_cast<std::byte>(value));
}

TEST(WriteBuffer, AppendsOnlyWritesThatContinueTheRange) {
  WriteBuffer buffer(100);
  EXPECT_EQ(buffer.append(10, bytes(20, 1)), 20u);
  EXPECT_EQ(buffer.append(30, bytes(20, 2)), 20u);
  EXPECT_EQ(buffer.append(60, bytes(1, 3)), 0u);  // a gap
  EXPECT_EQ(buffer.append(10, bytes(1, 3)), 0u);  // a rewrite
  EXPECT_EQ(buffer.offset(), 10u);
  EXPECT_EQ(buffer.end(), 50u);
}

TEST(WriteBuffer, TakesWhatFitsAndSaysWhenFull) {
  WriteBuffer buffer(100);
  EXPECT_EQ(buffer.append(0, bytes(60, 1)), 60u);
  EXPECT_FALSE(buffer.full());
  EXPECT_EQ(buffer.append(60, bytes(41, 1)), 40u) << "the prefix that fits";
  EXPECT_TRUE(buffer.full());
  EXPECT_EQ(buffer.append(100, bytes(1, 1)), 0u);
}

TEST(WriteBuffer, ARangeNeverCrossesAChunkBoundary) {
  WriteBuffer buffer(100, 64);  // 100-byte buffer, 64-byte chunks
  EXPECT_EQ(buffer.append(60, bytes(10, 1)), 4u) << "up to the end of chunk 0";
  EXPECT_TRUE(buffer.full());
  EXPECT_EQ(buffer.append(64, bytes(6, 1)), 0u) << "a full buffer takes nothing";
  BufferedRange first = buffer.take();
  EXPECT_EQ(first.offset, 60u);
  EXPECT_EQ(first.end(), 64u);
  EXPECT_EQ(buffer.append(64, bytes(70, 2)), 64u) << "chunk 1 is [64, 128)";
  EXPECT_EQ(buffer.take().end(), 128u);
  WriteBuffer small(16, 64);
  EXPECT_EQ(small.append(0, bytes(40, 3)), 16u) << "capacity binds before the chunk's end";
}

TEST(WriteBuffer, AppendTakesNothingThatDoesNotContinueTheRange) {
  WriteBuffer buffer(100);
  EXPECT_EQ(buffer.append(10, bytes(5, 1)), 5u);
  EXPECT_FALSE(buffer.continues(20));
  EXPECT_EQ(buffer.append(20, bytes(5, 1)), 0u);
  EXPECT_TRUE(buffer.continues(15));
  EXPECT_EQ(buffer.cut(12), 3u);
}

TEST(WriteBuffer, TakeHandsTheRangeOverAndEmpties) {
  WriteBuffer buffer(100);
  ASSERT_EQ(buffer.append(5, bytes(3, 7)), 3u);
  BufferedRange range = buffer.take();
  EXPECT_EQ(range.offset, 5u);
  EXPECT_EQ(range.bytes, bytes(3, 7));
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.append(1000, bytes(1, 1)), 1u);  // an empty buffer starts anywhere
  EXPECT_EQ(buffer.offset(), 1000u);
}

TEST(WriteBuffer, CutDropsBytesAtOrPastTheLength) {
  WriteBuffer buffer(100);
  ASSERT_EQ(buffer.append(10, bytes(20, 1)), 20u);
  buffer.cut(15);
  EXPECT_EQ(buffer.end(), 15u);
  buffer.cut(5);
  EXPECT_TRUE(buffer.empty());
}

TEST(WriteBuffer, OverlayCopiesTheOverlapOnly) {
  WriteBuffer buffer(100);
  ASSERT_EQ(buffer.append(10, bytes(10, 9)), 10u);
  std::vector<std::byte> out = bytes(10, 0);
  EXPECT_EQ(buffer.overlay(15, out), 5u);
  EXPECT_EQ(out[0], std::byte{9});
  EXPECT_EQ(out[4], std::byte{9});
  EXPECT_EQ(out[5], std::byte{0});
  EXPECT_EQ(buffer.overlay(40, out), 0u);
}

}  // namespace
}  // namespace mica::fuse
