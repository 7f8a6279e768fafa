// JsonWriter: structure, separators and string escaping, checked by reading the output back.
#include <gtest/gtest.h>

#include <string>

#include "apps/json_writer.h"
#include "tests/apps/json_read.h"

namespace mica::apps {
namespace {

using testing::JsonValue;
using testing::parse_json;

TEST(JsonWriter, NestedObjectsAndArraysGetTheirSeparators) {
  JsonWriter w;
  w.begin_object().key("a").value(uint64_t{1}).key("b").begin_array();
  w.value("x").value(true).null().begin_object().end_object().begin_array().end_array();
  w.end_array().key("c").value(int64_t{-5}).end_object();
  EXPECT_TRUE(w.complete());
  EXPECT_EQ(w.text(), R"({"a":1,"b":["x",true,null,{},[]],"c":-5})");
}

TEST(JsonWriter, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(json_quote("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json_quote("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(json_quote(std::string("\x01\x1f", 2)), R"("\u0001\u001f")");
  EXPECT_EQ(json_quote(std::string("nul\0here", 8)), R"("nul\u0000here")");
}

TEST(JsonWriter, KeepsValidUtf8AndReplacesInvalidBytes) {
  EXPECT_EQ(json_quote("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
  EXPECT_EQ(json_quote("\xff"), R"("\ufffd")");
  EXPECT_EQ(json_quote("\xc3"), R"("\ufffd")");                      // truncated sequence
  EXPECT_EQ(json_quote("\xc0\xaf"), R"("\ufffd\ufffd")");            // overlong '/'
  EXPECT_EQ(json_quote("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");  // a UTF-16 surrogate
}

TEST(JsonWriter, AnyByteStringRoundTripsThroughAStrictReader) {
  std::string every_byte;
  for (int c = 0; c < 256; ++c) every_byte.push_back(static_cast<char>(c));
  JsonWriter w;
  w.begin_object().key(every_byte).value(every_byte).end_object();
  std::optional<JsonValue> read = parse_json(w.text());
  ASSERT_TRUE(read.has_value()) << w.text();
  ASSERT_EQ(read->members.size(), 1u);
  const std::string& value = read->members.begin()->second.text;
  // ASCII comes back exactly; each byte >= 0x80 (alone, never valid UTF-8) as U+FFFD.
  EXPECT_EQ(value.substr(0, 128), every_byte.substr(0, 128));
  EXPECT_EQ(value.size(), 128u + 128u * 3u);
}

TEST(JsonWriter, LargestNumbersAreWrittenExactly) {
  JsonWriter w;
  w.begin_array().value(UINT64_MAX).value(INT64_MIN).end_array();
  EXPECT_EQ(w.text(), "[18446744073709551615,-9223372036854775808]");
}

}  // namespace
}  // namespace mica::apps
