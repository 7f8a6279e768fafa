#include "apps/config_reader.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

#include "async/socket_address.h"

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

Status read_address(const TableReader& table, std::string_view key, std::string* out,
                    bool may_be_empty) {
  RETURN_IF_ERROR(table.read(key, out));
  if (out->empty() && may_be_empty) return Status::ok_status();
  if (!SocketAddress::parse(*out).ok()) {
    return table.error(key, fmt::format("must be \"host:port\"{} (got \"{}\")",
                                        may_be_empty ? " or empty" : "", *out));
  }
  return Status::ok_status();
}

Status read_address_list(const TableReader& table, std::string_view key, std::string_view what,
                         size_t max, std::vector<std::string>* out) {
  Status status;
  if (const toml::value* one = table.find(key, toml::value_t::string, &status)) {
    *out = {one->as_string()};
  } else if (status.code() == StatusCode::kInvalidArgument) {
    Status as_array;
    const toml::value* list = table.find(key, toml::value_t::array, &as_array);
    if (list == nullptr) return table.error(key, "must be \"host:port\" or a list of them");
    out->clear();
    for (const toml::value& item : list->as_array()) {
      if (!item.is_string()) return table.error(key, "must hold \"host:port\" strings only");
      out->push_back(item.as_string());
    }
  }
  if (out->empty()) return table.error(key, fmt::format("must name at least one {}", what));
  if (out->size() > max) {
    return table.error(key,
                       fmt::format("may name at most {} addresses (got {})", max, out->size()));
  }
  for (const std::string& address : *out) {
    if (!SocketAddress::parse(address).ok()) {
      return table.error(key, fmt::format("must be \"host:port\" (got \"{}\")", address));
    }
  }
  return Status::ok_status();
}

Status read_transport(const TableReader& table, net::TransportChoice* out) {
  std::string transport = std::string(transport_choice_name(*out));
  RETURN_IF_ERROR(table.read("transport", &transport));
  Result<net::TransportChoice> choice = net::parse_transport_choice(transport);
  if (!choice.ok()) return table.error("transport", "must be \"tcp\", \"rdma\" or \"auto\"");
  *out = *choice;
  return Status::ok_status();
}

Status read_log_level(const TableReader& table, LogLevel* out) {
  std::string level = std::string(log_level_name(*out));
  RETURN_IF_ERROR(table.read("log_level", &level));
  Result<LogLevel> parsed = log_level_from_name(level);
  if (!parsed.ok()) {
    return table.error("log_level", "must be \"debug\", \"info\", \"warn\", \"error\" or \"off\"");
  }
  *out = *parsed;
  return Status::ok_status();
}

std::string toml_quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

const toml::value& table_or_empty(const TableReader& root, std::string_view key, Status* status) {
  static const toml::value kEmptyTable = toml::table{};
  const toml::value* v = root.find(key, toml::value_t::table, status);
  return v ? *v : kEmptyTable;
}

}  // namespace mica::apps
