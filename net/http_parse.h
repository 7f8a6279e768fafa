// HTTP/1.x request heads: finding where one ends and parsing it, for net/http_server.h.
//
// Only what a GET-only endpoint needs (RFC 9112): the request line (method, origin-form
// target, version 1.0 or 1.1), header fields checked for syntax, and the few fields that
// change the answer (Host, Connection, Content-Length, Transfer-Encoding). A malformed head
// is refused with the status code the RFC names, never guessed at. Also renders response
// heads. Pure functions on caller-owned text: thread-safe, never suspend.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mica::net {

// The bytes of the head that begins at `buffer`'s start: up to and including the empty line
// that ends it (CRLF CRLF, or bare LF line ends, which RFC 9112 lets a server accept); 0 while
// the empty line has not arrived. Empty lines before the request line (RFC 9112 2.2) are part
// of the head and skipped by parse_request_head.
size_t find_head_end(std::string_view buffer);

struct HttpRequestHead {
  std::string method;            // case-sensitive token: "GET", "HEAD", ...
  std::string path;              // the target without its query ("/metrics")
  int version_minor = 1;         // HTTP/1.<minor>: 0 or 1 (higher minors count as 1)
  bool close_requested = false;  // "Connection: close", or HTTP/1.0
  unsigned long long content_length = 0;
  bool chunked = false;  // any Transfer-Encoding (a body of unknown length)
};

struct HttpParseResult {
  int status = 0;      // 0: parsed; else the status to refuse with (400)
  std::string reason;  // why, for the refusal's body and the log line
  HttpRequestHead head;
};

// Parses a whole head as delimited by find_head_end.
HttpParseResult parse_request_head(std::string_view head);

// "OK", "Not Found", ... for the status codes the server sends; "Unknown" otherwise.
std::string_view http_reason_phrase(int status);

// A response head: status line, Content-Type, Content-Length, `extra` (whole header lines,
// each ending in CRLF) and "Connection: close" when `close`, then the empty line.
std::string render_response_head(int status, std::string_view content_type, size_t body_bytes,
                                 bool close, std::string_view extra = {});

}  // namespace mica::net
