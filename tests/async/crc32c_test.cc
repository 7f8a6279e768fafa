// CRC32C: RFC 3720 vectors, hardware and table agree, extend and combine.
#include "async/crc32c.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mica {
namespace {

TEST(Crc32c, MatchesRfc3720Vectors) {
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xff), up(32), down(32);
  for (int i = 0; i < 32; ++i) {
    up[i] = static_cast<uint8_t>(i);
    down[i] = static_cast<uint8_t>(31 - i);
  }
  EXPECT_EQ(crc32c(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(crc32c(up.data(), 32), 0x46DD794Eu);
  EXPECT_EQ(crc32c(down.data(), 32), 0x113FDB5Cu);
  std::string check = "123456789";
  EXPECT_EQ(crc32c(check.data(), check.size()), 0xE3069283u);
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
}

TEST(Crc32c, ExtendEqualsOneShotAtEverySplit) {
  std::vector<uint8_t> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 3);
  uint32_t whole = crc32c(data.data(), data.size());
  for (size_t split : {0, 1, 7, 8, 9, 500, 999, 1000}) {
    uint32_t first = crc32c(data.data(), split);
    EXPECT_EQ(crc32c_extend(first, data.data() + split, data.size() - split), whole) << split;
    uint32_t second = crc32c(data.data() + split, data.size() - split);
    EXPECT_EQ(crc32c_combine(first, second, data.size() - split), whole) << split;
  }
}

TEST(Crc32c, TableAndInstructionAgree) {
  std::vector<uint8_t> data(4099);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 131 + 17);
  for (size_t length : {0, 1, 3, 8, 63, 4096, 4099})
    EXPECT_EQ(crc32c_extend_table(0, data.data(), length), crc32c(data.data(), length));
}

}  // namespace
}  // namespace mica
