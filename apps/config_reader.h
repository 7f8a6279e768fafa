// TableReader: reads the fields of one TOML table (toml11) into a config struct, for the
// apps' config files (apps/mgmtd_config.h, apps/storage_config.h, apps/meta_config.h).
//
// Every message names the file and the field ("storage.toml: target[1].path must not be
// empty"); a key the table does not know is refused (check_keys), so a typo never silently
// keeps a default; a value of the wrong type or outside its range is refused with what was
// expected and what was found. parse_toml() turns text into a document or one Status naming
// file, line and column. Pure functions over values the caller owns; any thread.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <toml.hpp>
#include <vector>

#include <fmt/format.h>

#include "async/log.h"
#include "async/status.h"
#include "net/transport_choice.h"

namespace mica::apps {

std::string_view toml_type_name(toml::value_t type);
std::string_view transport_choice_name(net::TransportChoice choice);
// The document of text, or kInvalidArgument "<file>: <toml11's message>".
Result<toml::value> parse_toml(std::string_view text, const std::string& file_name);
// The text of the file at path, or kNotFound / kIoError naming it.
Result<std::string> read_config_file(const std::string& path);

class TableReader {
 public:
  // prefix goes before every key in messages ("cluster.", "target[0].").
  TableReader(const toml::value& table, const std::string& file, std::string prefix)
      : table_(table.as_table()), file_(file), prefix_(std::move(prefix)) {}

  Status error(std::string_view key, std::string_view what) const {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{}: {}{} {}", file_, prefix_, key, what));
  }
  // Refuses keys outside `known`, in sorted order so the message is stable.
  Status check_keys(const std::set<std::string>& known) const;
  // The value of key if present and of type; a present value of another type sets *status.
  const toml::value* find(std::string_view key, toml::value_t type, Status* status) const;

  Status read(std::string_view key, std::string* out) const;
  Status read(std::string_view key, bool* out) const;
  template <class T>
  Status read(std::string_view key, T* out, uint64_t min, uint64_t max) const {
    Status status;
    const toml::value* v = find(key, toml::value_t::integer, &status);
    if (v == nullptr) return status;
    int64_t n = v->as_integer();
    if (n < 0 || static_cast<uint64_t>(n) < min || static_cast<uint64_t>(n) > max) {
      return error(key, fmt::format("must be between {} and {} (got {})", min, max, n));
    }
    *out = static_cast<T>(n);
    return Status::ok_status();
  }

  const std::string& file() const { return file_; }
  const std::string& prefix() const { return prefix_; }

 private:
  const toml::table& table_;
  const std::string& file_;
  std::string prefix_;
};

// The fields every server's config shares, read the same way everywhere. read_address:
// "host:port" (or "" when may_be_empty); read_address_list: one "host:port" string or a
// list of 1..max of them, `what` naming them in messages ("mgmtd address"); read_transport
// / read_log_level: their names.
Status read_address(const TableReader& table, std::string_view key, std::string* out,
                    bool may_be_empty);
Status read_address_list(const TableReader& table, std::string_view key, std::string_view what,
                         size_t max, std::vector<std::string>* out);
Status read_transport(const TableReader& table, net::TransportChoice* out);
Status read_log_level(const TableReader& table, LogLevel* out);
// A TOML basic string: quotes, backslashes and control characters escaped.
std::string toml_quote(std::string_view text);
// The table at key, or an empty one when absent (a wrong type sets *status).
const toml::value& table_or_empty(const TableReader& root, std::string_view key, Status* status);

}  // namespace mica::apps
