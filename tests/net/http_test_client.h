// A minimal HTTP/1.1 client for the HttpServer tests, on the runtime's sockets so that it
// runs beside the server on one executor, on io_uring and on the simulator alike.
//
// HttpTestConnection owns one socket and the bytes received past the last response, so
// keep-alive and pipelined exchanges read response after response. read_response parses
// the status line and Content-Length only (the server always sends it). Each helper is a
// named coroutine that suspends on the socket; nothing here is thread-safe.
#pragma once

#include <strings.h>

#include <string>
#include <string_view>

#include "async/executor.h"
#include "async/socket.h"

namespace mica::net::testing {

struct HttpTestResponse {
  int status = 0;
  std::string head;  // status line and header fields, with their CRLFs
  std::string body;

  // The value of the first header field `name` (case-insensitive), or "" if none.
  std::string header(std::string_view name) const {
    size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos + 2 < head.size()) {
      size_t start = pos + 2;
      size_t end = head.find("\r\n", start);
      std::string_view line(head.data() + start, end - start);
      size_t colon = line.find(':');
      if (colon == name.size() && strncasecmp(line.data(), name.data(), name.size()) == 0) {
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        return std::string(value);
      }
      pos = end;
    }
    return {};
  }
};

struct HttpTestConnection {
  Socket socket;
  std::string pending;  // received, not yet part of a response read
};

inline Task<Result<HttpTestConnection>> http_connect(SocketAddress address) {
  auto connecting = Socket::connect(address, IoOptions{deadline_after(std::chrono::seconds(5))});
  CO_TRY_ASSIGN(Socket socket, co_await std::move(connecting));
  HttpTestConnection connection;
  connection.socket = std::move(socket);
  co_return connection;
}

inline Task<Status> http_send(HttpTestConnection* c, std::string text) {
  auto sending = c->socket.send_all(std::as_bytes(std::span(text)),
                                    IoOptions{deadline_after(std::chrono::seconds(5))});
  co_return co_await std::move(sending);
}

// Receives more bytes into c->pending; kClosed at end of stream.
inline Task<Status> http_receive_more(HttpTestConnection* c, TimePoint deadline) {
  char buffer[4096];
  Result<size_t> got =
      co_await c->socket.recv(std::as_writable_bytes(std::span(buffer)), IoOptions{deadline});
  CO_TRY(got.status());
  if (*got == 0) co_return Status(StatusCode::kClosed, "the server closed the connection");
  c->pending.append(buffer, *got);
  co_return Status();
}

// The next response; a HEAD request's response has no body whatever Content-Length says.
inline Task<Result<HttpTestResponse>> http_read_response(
    HttpTestConnection* c, bool head_request = false, Duration timeout = std::chrono::seconds(5)) {
  TimePoint deadline = deadline_after(timeout);
  size_t end;
  while ((end = c->pending.find("\r\n\r\n")) == std::string::npos) {
    auto more = http_receive_more(c, deadline);
    CO_TRY(co_await std::move(more));
  }
  HttpTestResponse response;
  response.head = c->pending.substr(0, end + 2);
  c->pending.erase(0, end + 4);
  if (!response.head.starts_with("HTTP/1.1 ") || response.head.size() < 12)
    co_return Status(StatusCode::kProtocolError, "not an HTTP/1.1 status line: " + response.head);
  response.status = std::stoi(response.head.substr(9, 3));
  std::string length_text = response.header("Content-Length");
  if (length_text.empty()) co_return Status(StatusCode::kProtocolError, "no Content-Length");
  size_t length = head_request ? 0 : std::stoul(length_text);
  while (c->pending.size() < length) {
    auto more = http_receive_more(c, deadline);
    CO_TRY(co_await std::move(more));
  }
  response.body = c->pending.substr(0, length);
  c->pending.erase(0, length);
  co_return response;
}

// Sends `request` on a new connection and reads one response.
inline Task<Result<HttpTestResponse>> http_exchange(SocketAddress address, std::string request) {
  auto connecting = http_connect(address);
  CO_TRY_ASSIGN(HttpTestConnection c, co_await std::move(connecting));
  bool head_request = request.starts_with("HEAD ");
  auto sending = http_send(&c, std::move(request));
  CO_TRY(co_await std::move(sending));
  auto reading = http_read_response(&c, head_request);
  co_return co_await std::move(reading);
}

// A GET of `path` with a Host field; `fields` are extra header lines, each ending in CRLF.
inline std::string http_get(std::string_view path, std::string_view fields = {}) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: test\r\n" + std::string(fields) + "\r\n";
}

// Waits until the server ends the connection: end of stream or a reset, after any bytes
// still in flight. kTimedOut if it stays open until `deadline`.
inline Task<Status> http_wait_closed(HttpTestConnection* c, TimePoint deadline) {
  for (;;) {
    auto more = http_receive_more(c, deadline);
    Status got = co_await std::move(more);
    if (got.code() == StatusCode::kClosed || got.code() == StatusCode::kConnectionReset)
      co_return Status();
    if (!got.ok()) co_return got;
  }
}

}  // namespace mica::net::testing
