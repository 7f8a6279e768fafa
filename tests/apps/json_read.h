// A strict little JSON reader for the apps tests: it checks that what `mica --json` and
// JsonWriter print is valid JSON (RFC 8259) and lets a test look inside it.
//
// parse_json returns the document, or nullopt for anything malformed (trailing bytes,
// unescaped control characters, bad escapes, leading zeros). Numbers are kept as their
// text and as a uint64 when they are non-negative integers. A value type; one thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mica::testing {

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool flag = false;
  std::string text;  // a string's value, or a number's spelling
  uint64_t number = 0;
  std::vector<JsonValue> items;
  std::map<std::string, JsonValue> members;

  bool has(const std::string& key) const { return members.count(key) != 0; }
  const JsonValue& operator[](const std::string& key) const { return members.at(key); }
  const JsonValue& operator[](size_t i) const { return items.at(i); }
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : text_(text) {}
  std::optional<JsonValue> document() {
    std::optional<JsonValue> v = value();
    skip_space();
    if (!v || at_ != text_.size()) return std::nullopt;
    return v;
  }

 private:
  void skip_space() {
    while (at_ < text_.size() &&
           (text_[at_] == ' ' || text_[at_] == '\n' || text_[at_] == '\r' || text_[at_] == '\t')) {
      ++at_;
    }
  }
  bool take(std::string_view word) {
    if (text_.substr(at_, word.size()) != word) return false;
    at_ += word.size();
    return true;
  }
  std::optional<JsonValue> value() {
    skip_space();
    if (at_ >= text_.size()) return std::nullopt;
    JsonValue v;
    char c = text_[at_];
    if (take("null")) return v;
    if (take("true") || take("false")) {
      v.type = JsonValue::Type::kBool;
      v.flag = text_[at_ - 1] == 'e' && text_[at_ - 2] == 'u';
      return v;
    }
    if (c == '"') {
      v.type = JsonValue::Type::kString;
      if (!string(&v.text)) return std::nullopt;
      return v;
    }
    if (c == '[') return array();
    if (c == '{') return object();
    return number();
  }
  std::optional<JsonValue> number() {
    size_t start = at_;
    if (at_ < text_.size() && text_[at_] == '-') ++at_;
    size_t digits = at_;
    while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') ++at_;
    if (at_ == digits || (text_[digits] == '0' && at_ - digits > 1)) return std::nullopt;
    bool integer = true;
    if (at_ < text_.size() && (text_[at_] == '.' || text_[at_] == 'e' || text_[at_] == 'E')) {
      integer = false;
      ++at_;
      while (at_ < text_.size() &&
             std::string_view("0123456789+-eE").find(text_[at_]) != std::string_view::npos) {
        ++at_;
      }
    }
    JsonValue v;
    v.type = JsonValue::Type::kNumber;
    v.text = std::string(text_.substr(start, at_ - start));
    if (integer && text_[start] != '-') v.number = std::stoull(v.text);
    return v;
  }
  static void append_utf8(std::string* out, uint32_t code) {
    if (code < 0x80) {
      out->push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (code >> 6)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (code >> 12)));
      out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (code >> 18)));
      out->push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
  }
  std::optional<uint32_t> hex4() {
    if (at_ + 4 > text_.size()) return std::nullopt;
    uint32_t code = 0;
    for (int i = 0; i < 4; ++i) {
      char h = text_[at_++];
      code <<= 4;
      if (h >= '0' && h <= '9')
        code |= h - '0';
      else if (h >= 'a' && h <= 'f')
        code |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F')
        code |= h - 'A' + 10;
      else
        return std::nullopt;
    }
    return code;
  }
  bool escape(std::string* out) {
    char e = text_[at_++];
    static constexpr std::string_view kFrom = "\"\\/bfnrt", kTo = "\"\\/\b\f\n\r\t";
    if (size_t i = kFrom.find(e); i != std::string_view::npos) {
      out->push_back(kTo[i]);
      return true;
    }
    if (e != 'u') return false;
    std::optional<uint32_t> code = hex4();
    if (!code) return false;
    if (*code >= 0xD800 && *code <= 0xDBFF) {
      if (!take("\\u")) return false;
      std::optional<uint32_t> low = hex4();
      if (!low || *low < 0xDC00 || *low > 0xDFFF) return false;
      *code = 0x10000 + ((*code - 0xD800) << 10) + (*low - 0xDC00);
    } else if (*code >= 0xDC00 && *code <= 0xDFFF) {
      return false;
    }
    append_utf8(out, *code);
    return true;
  }
  bool string(std::string* out) {
    ++at_;  // the opening quote
    while (at_ < text_.size()) {
      char c = text_[at_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out->push_back(c);
      } else if (at_ >= text_.size() || !escape(out)) {
        return false;
      }
    }
    return false;
  }
  std::optional<JsonValue> array() {
    ++at_;
    JsonValue v;
    v.type = JsonValue::Type::kArray;
    skip_space();
    if (take("]")) return v;
    while (true) {
      std::optional<JsonValue> item = value();
      if (!item) return std::nullopt;
      v.items.push_back(std::move(*item));
      skip_space();
      if (take("]")) return v;
      if (!take(",")) return std::nullopt;
    }
  }
  std::optional<JsonValue> object() {
    ++at_;
    JsonValue v;
    v.type = JsonValue::Type::kObject;
    skip_space();
    if (take("}")) return v;
    while (true) {
      skip_space();
      std::string key;
      if (at_ >= text_.size() || text_[at_] != '"' || !string(&key)) return std::nullopt;
      skip_space();
      if (!take(":")) return std::nullopt;
      std::optional<JsonValue> member = value();
      if (!member || v.members.count(key) != 0) return std::nullopt;
      v.members.emplace(std::move(key), std::move(*member));
      skip_space();
      if (take("}")) return v;
      if (!take(",")) return std::nullopt;
    }
  }

  std::string_view text_;
  size_t at_ = 0;
};

inline std::optional<JsonValue> parse_json(std::string_view text) {
  return JsonReader(text).document();
}

}  // namespace mica::testing
