#include "net/http_parse.h"

#include <fmt/format.h>

#include <vector>

namespace mica::net {

namespace {

// RFC 9110 5.6.2: tchar.
bool is_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_token_char(c)) return false;
  return true;
}

// Field values: visible ASCII, obs-text, space and tab; no other control character.
bool is_field_value(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 && c != '\t') return false;
    if (u == 0x7f) return false;
  }
  return true;
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The head's lines without their line ends; false if a CR appears anywhere but before LF.
bool split_lines(std::string_view head, std::vector<std::string_view>* lines) {
  size_t pos = 0;
  while (pos < head.size()) {
    size_t nl = head.find('\n', pos);
    if (nl == std::string_view::npos) nl = head.size();
    std::string_view line = head.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\r') != std::string_view::npos) return false;
    lines->push_back(line);
    pos = nl + 1;
  }
  return true;
}

HttpParseResult refuse(int status, std::string reason) {
  HttpParseResult result;
  result.status = status;
  result.reason = std::move(reason);
  return result;
}

// Origin-form ("/path?query"), absolute-form ("http://host/path") or "*"; the path only.
bool target_path(std::string_view target, std::string* path) {
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return false;
  if (target == "*") {
    // Not `*path = "*"`: g++ 12 -O2 warns falsely on assigning a literal (-Wrestrict, GCC
    // PR 105651).
    path->assign(target);
    return true;
  }
  size_t scheme = target.find("://");
  if (!target.starts_with('/')) {
    if (scheme == std::string_view::npos) return false;
    std::string_view scheme_name = target.substr(0, scheme);
    if (!iequals(scheme_name, "http") && !iequals(scheme_name, "https")) return false;
    size_t slash = target.find('/', scheme + 3);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  size_t query = target.find_first_of("?#");
  *path = std::string(target.substr(0, query));
  return true;
}

// "METHOD SP target SP HTTP/1.x" into head; a refusal otherwise.
HttpParseResult parse_request_line(std::string_view line) {
  size_t first = line.find(' ');
  size_t second = first == std::string_view::npos ? first : line.find(' ', first + 1);
  if (second == std::string_view::npos || line.find(' ', second + 1) != std::string_view::npos)
    return refuse(400, "a request line is METHOD SP TARGET SP VERSION");
  HttpParseResult result;
  result.head.method = std::string(line.substr(0, first));
  if (!is_token(result.head.method)) return refuse(400, "the method is not a token");
  if (!target_path(line.substr(first + 1, second - first - 1), &result.head.path))
    return refuse(400, "the request target is not a path");
  std::string_view version = line.substr(second + 1);
  if (version.size() != 8 || !version.starts_with("HTTP/") || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
    return refuse(400, "the version is not HTTP/<digit>.<digit>");
  if (version[5] != '1') return refuse(505, "only HTTP/1.x is served");
  result.head.version_minor = version[7] == '0' ? 0 : 1;
  result.head.close_requested = result.head.version_minor == 0;
  return result;
}

// Applies one header field to the head; a refusal reason if it is malformed.
std::string apply_field(std::string_view name, std::string_view value, HttpRequestHead* head,
                        int* hosts, bool* have_length) {
  if (iequals(name, "host")) {
    ++*hosts;
  } else if (iequals(name, "connection")) {
    while (!value.empty()) {
      size_t comma = value.find(',');
      std::string_view option = trim_ows(value.substr(0, comma));
      if (iequals(option, "close")) head->close_requested = true;
      value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    }
  } else if (iequals(name, "content-length")) {
    if (value.empty() || value.size() > 18 ||
        value.find_first_not_of("0123456789") != std::string_view::npos)
      return "Content-Length is not a number";
    unsigned long long length = std::stoull(std::string(value));
    if (*have_length && length != head->content_length) return "two different Content-Lengths";
    *have_length = true;
    head->content_length = length;
  } else if (iequals(name, "transfer-encoding")) {
    head->chunked = true;
  }
  return {};
}

}  // namespace

size_t find_head_end(std::string_view buffer) {
  size_t pos = 0;
  bool request_line_seen = false;
  for (;;) {
    size_t nl = buffer.find('\n', pos);
    if (nl == std::string_view::npos) return 0;
    std::string_view line = buffer.substr(pos, nl - pos);
    pos = nl + 1;
    bool empty = line.empty() || line == "\r";
    if (!empty) {
      request_line_seen = true;
    } else if (request_line_seen) {
      return pos;
    }
  }
}

HttpParseResult parse_request_head(std::string_view head) {
  std::vector<std::string_view> lines;
  if (!split_lines(head, &lines)) return refuse(400, "a bare CR in the request head");
  size_t i = 0;
  while (i < lines.size() && lines[i].empty()) ++i;
  if (i == lines.size()) return refuse(400, "no request line");
  HttpParseResult result = parse_request_line(lines[i]);
  if (result.status != 0) return result;
  int hosts = 0;
  bool have_length = false;
  for (++i; i < lines.size() && !lines[i].empty(); ++i) {
    std::string_view line = lines[i];
    if (line.front() == ' ' || line.front() == '\t')
      return refuse(400, "obsolete line folding in a header field");
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon)))
      return refuse(400, fmt::format("a malformed header field line ({} bytes)", line.size()));
    std::string_view value = trim_ows(line.substr(colon + 1));
    if (!is_field_value(value)) return refuse(400, "a control character in a header field");
    std::string bad = apply_field(line.substr(0, colon), value, &result.head, &hosts, &have_length);
    if (!bad.empty()) return refuse(400, std::move(bad));
  }
  // RFC 9112 3.2: an HTTP/1.1 request has exactly one Host; none has two.
  if (hosts > 1 || (hosts == 0 && result.head.version_minor == 1))
    return refuse(400, hosts > 1 ? "more than one Host field" : "an HTTP/1.1 request without Host");
  if (result.head.chunked && have_length)
    return refuse(400, "both Transfer-Encoding and Content-Length");
  return result;
}

std::string_view http_reason_phrase(int status) {
  struct Phrase {
    int status;
    std::string_view text;
  };
  static constexpr Phrase kPhrases[] = {
      {200, "OK"},
      {204, "No Content"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {408, "Request Timeout"},
      {409, "Conflict"},
      {413, "Content Too Large"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {503, "Service Unavailable"},
      {505, "HTTP Version Not Supported"},
  };
  for (const Phrase& phrase : kPhrases)
    if (phrase.status == status) return phrase.text;
  return "Unknown";
}

std::string render_response_head(int status, std::string_view content_type, size_t body_bytes,
                                 bool close, std::string_view extra) {
  return fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}{}\r\n", status,
                     http_reason_phrase(status), content_type, body_bytes, extra,
                     close ? "Connection: close\r\n" : "");
}

}  // namespace mica::net
