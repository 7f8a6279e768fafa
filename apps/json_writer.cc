#include "apps/json_writer.h"

#include <fmt/format.h>

#include "async/assert.h"

namespace mica::apps {
namespace {

// Length of the valid UTF-8 sequence starting at text[i], or 0 when it is not one
// (overlong forms, surrogates and code points past U+10FFFF are not valid).
size_t utf8_sequence_length(std::string_view text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char lead = byte(i);
  size_t length = 0;
  uint32_t code = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, code = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, code = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, code = lead & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  if ((length == 3 && code < 0x800) || (length == 4 && code < 0x10000)) return 0;
  if (code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

void append_escaped(std::string* out, std::string_view text) {
  out->push_back('"');
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      size_t length = utf8_sequence_length(text, i);
      if (length == 0) {
        out->append("\\ufffd");
        ++i;
      } else {
        out->append(text.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (c < 0x20) {
          out->append(fmt::format("\\u{:04x}", c));
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

}  // namespace

std::string json_quote(std::string_view text) {
  std::string out;
  append_escaped(&out, text);
  return out;
}

void JsonWriter::before_value() {
  if (scopes_.empty()) {
    MICA_ASSERT_MSG(out_.empty(), "JsonWriter: a second top-level value");
    return;
  }
  Scope& scope = scopes_.back();
  if (scope.object) {
    MICA_ASSERT_MSG(scope.key_written, "JsonWriter: an object member without a key");
    scope.key_written = false;
    return;
  }
  if (scope.has_members) out_.push_back(',');
  scope.has_members = true;
}

JsonWriter& JsonWriter::begin_object() {
  before_value();
  out_.push_back('{');
  scopes_.push_back(Scope{.object = true});
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  MICA_ASSERT_MSG(!scopes_.empty() && scopes_.back().object && !scopes_.back().key_written,
                  "JsonWriter: end_object without its object");
  scopes_.pop_back();
  out_.push_back('}');
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  before_value();
  out_.push_back('[');
  scopes_.push_back(Scope{.object = false});
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  MICA_ASSERT_MSG(!scopes_.empty() && !scopes_.back().object,
                  "JsonWriter: end_array without its array");
  scopes_.pop_back();
  out_.push_back(']');
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view name) {
  MICA_ASSERT_MSG(!scopes_.empty() && scopes_.back().object && !scopes_.back().key_written,
                  "JsonWriter: a key outside an object");
  Scope& scope = scopes_.back();
  if (scope.has_members) out_.push_back(',');
  scope.has_members = true;
  scope.key_written = true;
  append_escaped(&out_, name);
  out_.push_back(':');
  return *this;
}

JsonWriter& JsonWriter::value(std::string_view text) {
  before_value();
  append_escaped(&out_, text);
  return *this;
}

JsonWriter& JsonWriter::value(uint64_t number) {
  before_value();
  out_.append(fmt::format("{}", number));
  return *this;
}

JsonWriter& JsonWriter::value(int64_t number) {
  before_value();
  out_.append(fmt::format("{}", number));
  return *this;
}

JsonWriter& JsonWriter::value(bool flag) {
  before_value();
  out_.append(flag ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::null() {
  before_value();
  out_.append("null");
  return *this;
}

}  // namespace mica::apps
