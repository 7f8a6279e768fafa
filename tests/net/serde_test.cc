// Serialization and framing: round trips, schema evolution, and refusal of bad input.
#include <gtest/gtest.h>

#include "net/frame.h"
#include "net/serde.h"

namespace mica::net {
namespace {

enum class Color : uint8_t { kRed = 1, kBlue = 2 };
MICA_ENUM_RANGE(Color, kRed, kBlue)

struct Inner {
  int32_t x = 0;
  std::string label;
  MICA_FIELDS(Inner, x, label)
};

struct Everything {
  uint64_t id = 0;
  int16_t small = 0;
  bool flag = false;
  Color color = Color::kRed;
  std::string name;
  std::vector<std::byte> blob;
  std::vector<Inner> items;
  std::optional<uint32_t> maybe;
  Inner nested;
  Status status;
  MICA_FIELDS(Everything, id, small, flag, color, name, blob, items, maybe, nested, status)
};

Everything sample() {
  Everything e;
  e.id = 0x0102030405060708;
  e.small = -3;
  e.flag = true;
  e.color = Color::kBlue;
  e.name = "shard-00017";
  e.blob = {std::byte{1}, std::byte{2}, std::byte{255}};
  e.items = {Inner{1, "a"}, Inner{-2, "bb"}};
  e.maybe = 77;
  e.nested = Inner{42, "deep"};
  e.status = Status(StatusCode::kNotFound, "no such chunk");
  return e;
}

TEST(Serde, RoundTripKeepsEveryField) {
  Everything e = sample();
  std::vector<std::byte> bytes = encode(e);
  Result<Everything> back = decode<Everything>(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, e);
}

TEST(Serde, IntegersAreLittleEndian) {
  Inner i{0x01020304, ""};
  std::vector<std::byte> bytes = encode(i);
  // u32 body length (8), then x, then the string's u32 length 0.
  ASSERT_EQ(bytes.size(), 12u);
  EXPECT_EQ(bytes[4], std::byte{0x04});
  EXPECT_EQ(bytes[7], std::byte{0x01});
}

TEST(Serde, PrintsFieldNamesAndValues) {
  Inner i{5, "x"};
  EXPECT_EQ(fmt::format("{}", i), "Message{x: 5, label: \"x\"}");
}

struct V1 {
  uint32_t a = 0;
  MICA_FIELDS(V1, a)
};
struct V2 {
  uint32_t a = 0;
  std::string added = "default";
  MICA_FIELDS(V2, a, added)
};

TEST(Serde, OldReaderSkipsAppendedFieldsNewReaderDefaultsMissingOnes) {
  Result<V1> old_reads_new = decode<V1>(encode(V2{7, "new"}));
  ASSERT_TRUE(old_reads_new.ok());
  EXPECT_EQ(old_reads_new->a, 7u);
  Result<V2> new_reads_old = decode<V2>(encode(V1{9}));
  ASSERT_TRUE(new_reads_old.ok());
  EXPECT_EQ(new_reads_old->a, 9u);
  EXPECT_EQ(new_reads_old->added, "default");
}

TEST(Serde, EveryTruncationIsRefused) {
  std::vector<std::byte> bytes = encode(sample());
  for (size_t n = 0; n < bytes.size(); ++n) {
    Result<Everything> r = decode<Everything>(std::span(bytes).first(n));
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes accepted";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kProtocolError);
    }
  }
}

struct Items {
  std::vector<Inner> items;
  MICA_FIELDS(Items, items)
};

struct Flag {
  bool on = false;
  MICA_FIELDS(Flag, on)
};

TEST(Serde, HugeCountsAreRefusedBeforeAllocating) {
  // A vector claiming 2^32-1 elements inside a 12-byte message.
  std::vector<std::byte> bytes = {
      std::byte{8}, {}, {}, {}, std::byte{0xff}, std::byte{0xff}, std::byte{0xff}, std::byte{0xff},
      {},           {}, {}, {}};
  Result<Items> r = decode<Items>(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kProtocolError);
}

TEST(Serde, BadBoolAndTrailingBytesAreRefused) {
  std::vector<std::byte> bytes = encode(Flag{true});
  bytes[4] = std::byte{2};
  EXPECT_FALSE(decode<Flag>(bytes).ok());
  bytes = encode(Flag{true});
  bytes.push_back(std::byte{0});
  EXPECT_FALSE(decode<Flag>(bytes).ok());
}

TEST(Serde, EnumValueOutsideItsDeclaredRangeIsRefused) {
  for (uint8_t value : {0, 3, 255}) {
    Everything e = sample();
    e.color = static_cast<Color>(value);
    Result<Everything> back = decode<Everything>(encode(e));
    EXPECT_EQ(back.status().code(), StatusCode::kProtocolError) << int(value);
  }
  for (Color valid : {Color::kRed, Color::kBlue}) {
    Everything e = sample();
    e.color = valid;
    Result<Everything> back = decode<Everything>(encode(e));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->color, valid);
  }
}

TEST(Frame, SealedFrameParsesAndVerifies) {
  std::vector<std::byte> payload = encode(sample());
  FrameHeader header;
  header.kind = FrameKind::kResponse;
  header.service = 3;
  header.method = 4;
  header.request_id = 99;
  HeaderBytes bytes = seal_frame(header, payload);
  Result<FrameHeader> parsed = parse_header(bytes, 1 << 20);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->payload_length, payload.size());
  EXPECT_EQ(parsed->request_id, 99u);
  EXPECT_TRUE(verify_payload(*parsed, payload).ok());
  payload[10] ^= std::byte{1};
  EXPECT_EQ(verify_payload(*parsed, payload).code(), StatusCode::kProtocolError);
}

TEST(Frame, BadMagicVersionKindAndSizeAreRefused) {
  FrameHeader header;
  std::vector<std::byte> payload(100);
  HeaderBytes good = seal_frame(header, payload);
  auto refuse = [](HeaderBytes bytes, uint32_t max) {
    Result<FrameHeader> r = parse_header(bytes, max);
    return !r.ok() && r.status().code() == StatusCode::kProtocolError;
  };
  HeaderBytes bad = good;
  bad[0] = std::byte{0};
  EXPECT_TRUE(refuse(bad, 1 << 20));  // magic
  bad = good;
  bad[4] = std::byte{9};
  EXPECT_TRUE(refuse(bad, 1 << 20));  // version
  bad = good;
  bad[5] = std::byte{7};
  EXPECT_TRUE(refuse(bad, 1 << 20));  // kind
  EXPECT_TRUE(refuse(good, 100));     // 140 bytes > 100
}

}  // namespace
}  // namespace mica::net
