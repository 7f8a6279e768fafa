// Block checksums: the fast append equals crc32c_combine, and the whole-chunk CRC built from
// block CRCs equals the CRC32C of the chunk's bytes. One behaviour per test.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "async/crc32c.h"
#include "chunk/block_crc.h"
#include "chunk/types.h"

namespace mica::chunk {
namespace {

std::vector<std::byte> random_bytes(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> out(size);
  for (auto& b : out) b = static_cast<std::byte>(rng());
  return out;
}

TEST(BlockCrc, AppendEqualsCrc32cCombineForEveryLength) {
  std::mt19937 rng(5);
  for (uint32_t length : {0u, 1u, 7u, 512u, 4095u, 4096u, 4097u, 65536u, 1u << 20}) {
    uint32_t a = rng(), b = rng();
    EXPECT_EQ(block_crc_append(a, b, length), crc32c_combine(a, b, length)) << length;
  }
}

TEST(BlockCrc, ChunkChecksumIsTheCrc32cOfAllBytes) {
  for (uint32_t length : {1u, 4095u, 4096u, 4097u, 3u * 4096u + 100u, 1u << 20}) {
    auto data = random_bytes(length, length);
    std::vector<uint32_t> crcs(block_count(length));
    uint32_t checksum = compute_block_crcs(data.data(), length, crcs);
    EXPECT_EQ(checksum, crc32c(data.data(), length)) << length;
    for (uint32_t k = 0; k < crcs.size(); ++k) {
      uint32_t n = std::min(kBlockBytes, length - k * kBlockBytes);
      EXPECT_EQ(crcs[k], crc32c(data.data() + size_t{k} * kBlockBytes, n));
    }
  }
}

TEST(BlockCrc, RangeCrcEqualsTheCrc32cOfTheRangeWhereverItStartsAndEnds) {
  std::mt19937 rng(11);
  for (uint32_t length : {1u, 4096u, 4097u, 5u * 4096u + 77u, 64u << 10}) {
    auto data = random_bytes(length, length + 1);
    std::vector<uint32_t> crcs(block_count(length));
    compute_block_crcs(data.data(), length, crcs);
    for (int trial = 0; trial < 200; ++trial) {
      uint32_t from = rng() % (length + 1);
      uint32_t to = from + rng() % (length - from + 1);
      if (trial % 4 == 0) from = static_cast<uint32_t>(from / kBlockBytes * kBlockBytes);
      if (trial % 3 == 0) to = length;
      uint32_t base = from / kBlockBytes * kBlockBytes;  // data handed in from this block on
      EXPECT_EQ(range_crc(data.data() + base, base, crcs, length, from, to),
                crc32c(data.data() + from, to - from))
          << "length " << length << " range " << from << ".." << to;
    }
  }
}

}  // namespace
}  // namespace mica::chunk
