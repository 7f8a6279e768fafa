// HttpServer: a small HTTP/1.1 endpoint for metrics and health checks, on the runtime's
// sockets (io_uring or the simulator alike).
//
// Serves GET and HEAD of /metrics (a MetricsRegistry in the Prometheus text format), /health
// (200 "ok", or 503 with the owner's reason) and the owner's extra routes; any other path is
// 404, any other method 405. Requests carry no body here: one that announces one is refused
// (413, or 400 when chunked) and its connection closed, as are malformed heads (400) and
// heads over request_head_bytes_max (431). HTTP/1.1 connections stay open between requests
// (keep-alive) unless the client says "Connection: close"; HTTP/1.0 ones close after one.
// Limits: at most connections_max connections (one beyond is answered 503 and closed at
// once), a request head must arrive whole within request_head_timeout (408, then close),
// a kept-alive connection with no new request for idle_timeout is closed, and a response
// not written within write_timeout ends its connection. Each refusal is one log line and a
// count in the registry's mica_net_http_requests_refused_total{reason=...}; answered
// requests count in mica_net_http_requests_served_total.
//
// No TLS and no authentication: it serves only what a scrape may read (docs/net.md says
// where to bind it). Handlers and the health callback run on the server's executor and
// must not block; they do not suspend.
// Thread rule: one executor; start() and shutdown() are called from a task on it, and the
// server must be shut down (co_await shutdown()) before it is destroyed.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "async/metrics.h"
#include "async/scope.h"
#include "async/socket.h"

namespace mica::net {

// What a route answers: the status code, Content-Type and body (HEAD sends the head only).
struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// An extra GET route's handler; runs on the server's executor, must not block.
using HttpHandler = std::function<HttpResponse()>;

struct HttpServerOptions {
  // A request head (request line and header fields) larger than this is refused with 431.
  size_t request_head_bytes_max = 8 << 10;
  // Open connections; one more is answered 503 and closed without harming the others.
  uint32_t connections_max = 64;
  // A request head must be complete this long after its connection was accepted (the
  // first request) or after its first byte arrived (later ones): a client that trickles or
  // stalls is answered 408 and closed.
  Duration request_head_timeout = std::chrono::seconds(5);
  // A kept-alive connection that starts no new request for this long is closed silently.
  Duration idle_timeout = std::chrono::seconds(30);
  // A response must be written within this, or its connection is closed.
  Duration write_timeout = std::chrono::seconds(10);
  // After a refusal the server stops sending, then reads and drops what the client still
  // sends for up to this long (and linger_bytes_max bytes), so the client gets the answer
  // instead of a reset for unread bytes.
  Duration linger_timeout = std::chrono::seconds(1);
  size_t linger_bytes_max = 64 << 10;
  // The registry /metrics renders and the server's own counters live in; null is the
  // process-wide metrics().
  MetricsRegistry* registry = nullptr;
  // /health: ok gives 200 "ok\n", a failure 503 with its message as the reason. Unset: the
  // process is healthy while it answers.
  std::function<Status()> health;
};

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options = {});
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();

  // An extra GET (and HEAD) route for an exact path such as "/status"; before start().
  // /metrics and /health are the server's own.
  void add_route(std::string path, HttpHandler handler);
  // Listens and starts accepting; returns the bound address (port 0 picks one).
  Result<SocketAddress> start(SocketAddress address);
  // Stops accepting, closes every connection (a response being written is cut off) and
  // waits until their tasks have finished. Idempotent.
  Task<void> shutdown();

  size_t connections() const { return connections_; }

 private:
  struct Counters;
  struct Connection;
  Task<void> accept_loop();
  Task<void> refuse_connection(Socket socket);
  Task<void> serve(Socket socket);
  Task<size_t> read_head(Connection* connection);
  Task<bool> serve_one(Connection* connection);
  HttpResponse route(const std::string& path) const;
  Task<Status> send_answer(Connection* connection, HttpResponse response, bool head_only,
                           bool close, std::string extra);
  Task<void> refuse(Connection* connection, int status, std::string reason, std::string extra);
  Task<void> linger_close(Socket* socket);

  HttpServerOptions options_;
  MetricsRegistry* registry_;
  std::map<std::string, HttpHandler> routes_;
  std::unique_ptr<Counters> counters_;
  Listener listener_;
  TaskScope scope_;
  bool started_ = false;
  bool stopping_ = false;
  size_t connections_ = 0;
};

}  // namespace mica::net
