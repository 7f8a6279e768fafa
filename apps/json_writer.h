// JsonWriter: builds one JSON document as compact text, for the `mica --json` output.
//
// Calls mirror the document: begin_object / key / value ... / end_object, begin_array /
// value ... / end_array; commas and quoting are the writer's. Strings are escaped as RFC
// 8259 requires (quote, backslash, control characters), and bytes that are not valid UTF-8
// become U+FFFD, so any std::string (a host name, a disk path) yields valid JSON. Misuse
// (a value where a key is due, unbalanced ends) is a bug: MICA_ASSERT stops the process.
// A value type for one thread; never suspends.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mica::apps {

class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  // The next member's name; only inside an object, before each value.
  JsonWriter& key(std::string_view name);
  JsonWriter& value(std::string_view text);
  JsonWriter& value(const char* text) { return value(std::string_view(text)); }
  JsonWriter& value(uint64_t number);
  JsonWriter& value(uint32_t number) { return value(uint64_t{number}); }
  JsonWriter& value(int64_t number);
  JsonWriter& value(bool flag);
  JsonWriter& null();

  // The document so far; complete once every begin has its end.
  const std::string& text() const { return out_; }
  bool complete() const { return scopes_.empty() && !out_.empty(); }

 private:
  struct Scope {
    bool object = false;
    bool has_members = false;
    bool key_written = false;
  };
  void before_value();
  void write_string(std::string_view text);

  std::string out_;
  std::vector<Scope> scopes_;
};

// `text` quoted and escaped as a JSON string.
std::string json_quote(std::string_view text);

}  // namespace mica::apps
