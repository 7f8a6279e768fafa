#include "apps/config_reader.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

namespace mica::apps {

std::string_view toml_type_name(toml::value_t type) {
  switch (type) {
    case toml::value_t::boolean:
      return "a boolean";
    case toml::value_t::integer:
      return "an integer";
    case toml::value_t::floating:
      return "a float";
    case toml::value_t::string:
      return "a string";
    case toml::value_t::array:
      return "an array";
    case toml::value_t::table:
      return "a table";
    default:
      return "a date or time";
  }
}

std::string_view transport_choice_name(net::TransportChoice choice) {
  switch (choice) {
    case net::TransportChoice::kTcp:
      return "tcp";
    case net::TransportChoice::kRdma:
      return "rdma";
    case net::TransportChoice::kAuto:
      break;
  }
  return "auto";
}

Result<toml::value> parse_toml(std::string_view text, const std::string& file_name) {
  try {
    std::istringstream stream{std::string(text)};
    return toml::parse(stream, file_name);
  } catch (const std::exception& e) {
    // toml11's message already names the file, line and column.
    return Status(StatusCode::kInvalidArgument, fmt::format("{}: {}", file_name, e.what()));
  }
}

Result<std::string> read_config_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return Status(StatusCode::kNotFound, fmt::format("{}: cannot open the config file", path));
  }
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) return Status(StatusCode::kIoError, fmt::format("{}: cannot read it", path));
  return text.str();
}

Status TableReader::check_keys(const std::set<std::string>& known) const {
  std::vector<std::string> keys;
  for (const auto& entry : table_) keys.push_back(entry.first);
  std::sort(keys.begin(), keys.end());
  for (const std::string& key : keys) {
    if (known.count(key) == 0) return error(key, "is not a known setting (a typo?)");
  }
  return Status::ok_status();
}

const toml::value* TableReader::find(std::string_view key, toml::value_t type,
                                     Status* status) const {
  auto it = table_.find(std::string(key));
  if (it == table_.end()) return nullptr;
  if (it->second.type() != type) {
    *status = error(key, fmt::format("must be {} (got {})", toml_type_name(type),
                                     toml_type_name(it->second.type())));
    return nullptr;
  }
  return &it->second;
}

Status TableReader::read(std::string_view key, std::string* out) const {
  Status status;
  if (const toml::value* v = find(key, toml::value_t::string, &status)) *out = v->as_string();
  return status;
}

Status TableReader::read(std::string_view key, bool* out) const {
  Status status;
  if (const toml::value* v = find(key, toml::value_t::boolean, &status)) *out = v->as_boolean();
  return status;
}

}  // namespace mica::apps
