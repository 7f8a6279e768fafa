#include "net/http_server.h"

#include <cstring>
#include <vector>

#include "async/log.h"
#include "net/http_parse.h"

namespace mica::net {

namespace {

constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kTextContentType = "text/plain; charset=utf-8";
// The status codes a refusal may carry; each has its own refused series.
constexpr int kRefusalStatuses[] = {400, 405, 408, 413, 431, 503, 505};
// The accept loop's pause after a passing accept failure (out of fds).
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(10);

}  // namespace

// Registered once per server, in the registry it serves (the same series for every server
// of one registry: they add up).
struct HttpServer::Counters {
  explicit Counters(MetricsRegistry* registry)
      : served(registry->counter("net", "http_requests_served_total",
                                 "HTTP requests answered (any route, any status).")),
        open(registry->gauge("net", "http_connections", "Open HTTP connections.")) {
    for (int status : kRefusalStatuses)
      refused[status] = &registry->counter(
          "net", "http_requests_refused_total",
          "HTTP requests and connections refused (malformed, too large, too slow, with a "
          "body, a method other than GET or HEAD, over the connection limit).",
          {{"status", std::to_string(status)}});
  }
  Counter& served;
  Gauge& open;
  std::map<int, Counter*> refused;
};

struct HttpServer::Connection {
  Socket socket;
  std::string peer;
  std::vector<char> buffer;  // request_head_bytes_max bytes; [0, filled) received, unread
  size_t filled = 0;
  TimePoint accepted;
  bool first = true;  // no request answered yet
};

HttpServer::HttpServer(HttpServerOptions options)
    : options_(std::move(options)),
      registry_(options_.registry != nullptr ? options_.registry : &metrics()),
      counters_(std::make_unique<Counters>(registry_)) {
  MICA_ASSERT_MSG(options_.request_head_bytes_max > 0 && options_.connections_max > 0,
                  "HttpServerOptions: a zero limit");
}

HttpServer::~HttpServer() {
  MICA_ASSERT_MSG(!started_ || (stopping_ && scope_.active() == 0),
                  "HttpServer destroyed without shutdown()");
}

void HttpServer::add_route(std::string path, HttpHandler handler) {
  MICA_ASSERT_MSG(!started_, "routes are added before start()");
  MICA_ASSERT_MSG(path.starts_with('/') && path != "/metrics" && path != "/health",
                  "an extra route is a path other than /metrics and /health");
  routes_[std::move(path)] = std::move(handler);
}

Result<SocketAddress> HttpServer::start(SocketAddress address) {
  MICA_ASSERT_MSG(!started_, "HttpServer started twice");
  ListenOptions listen_options;
  listen_options.backlog = static_cast<int>(options_.connections_max);
  listen_options.accept_queue_max = options_.connections_max;
  auto listener = Listener::listen(address, listen_options);
  if (!listener.ok()) return listener.status();
  listener_ = std::move(*listener);
  started_ = true;
  scope_.spawn(accept_loop());
  return listener_.address();
}

Task<void> HttpServer::shutdown() {
  if (!started_ || stopping_) co_return;
  stopping_ = true;
  co_await listener_.close();
  // Cancelling the scope ends every connection's wait; each closes its own socket.
  scope_.cancel();
  co_await scope_.join();
}

Task<void> HttpServer::accept_loop() {
  while (!stopping_) {
    auto accepting = listener_.accept();
    Result<Socket> socket = co_await std::move(accepting);
    if (stopping_) break;  // an accepted socket is closed by its destructor
    if (!socket.ok()) {
      StatusCode code = socket.status().code();
      if (code == StatusCode::kClosed || code == StatusCode::kCancelled) break;
      Status paused = co_await sleep_for(kAcceptRetryDelay);
      if (!paused.ok()) break;
      continue;
    }
    if (connections_ >= options_.connections_max) {
      auto refusing = refuse_connection(std::move(*socket));
      co_await std::move(refusing);
      continue;
    }
    ++connections_;  // here, not in serve(): the next accept must see it
    scope_.spawn(serve(std::move(*socket)));
  }
}

// Over the limit: a short 503 into the fresh socket's empty send buffer (it does not wait),
// then close, inline so no task is started for a connection we will not serve.
Task<void> HttpServer::refuse_connection(Socket socket) {
  auto peer = socket.peer_address();
  MICA_LOG(Info, "net", "http: refused a connection from {}: {} connections open (the maximum)",
           peer.ok() ? peer->to_string() : "unknown peer", connections_);
  counters_->refused[503]->add();
  std::string body = "too many connections\n";
  std::string out = render_response_head(503, kTextContentType, body.size(), true) + body;
  IoOptions io{Executor::current()->now() + options_.write_timeout};
  auto sending = socket.send_all(std::as_bytes(std::span(out)), io);
  Status sent = co_await std::move(sending);
  (void)sent;  // the client may have gone already
  Status shut = co_await socket.shutdown();
  (void)shut;
}  // the destructor closes the socket (synchronously: a close op could be cancelled unrun)

Task<void> HttpServer::serve(Socket socket) {
  Connection connection;
  connection.socket = std::move(socket);
  // Each response is one send; without this a pipelined second response waits for the
  // client's delayed ACK of the first (Nagle), 40 ms on Linux.
  (void)connection.socket.set_no_delay(true);
  auto peer = connection.socket.peer_address();
  connection.peer = peer.ok() ? peer->to_string() : "unknown peer";
  connection.buffer.resize(options_.request_head_bytes_max);
  connection.accepted = Executor::current()->now();
  counters_->open.add(1);
  for (;;) {
    auto serving = serve_one(&connection);
    bool keep_alive = co_await std::move(serving);
    if (!keep_alive || stopping_) break;
    connection.first = false;
  }
  // Connection's socket closes in its destructor: synchronously, because an awaited close
  // would not run at all under the cancelled token of shutdown() and leak the fd.
  counters_->open.sub(1);
  --connections_;
}

// Waits for one whole request head in c->buffer; its size, or 0 once the connection is to
// close (a refusal for a head too large or too slow has been sent then).
Task<size_t> HttpServer::read_head(Connection* c) {
  TimePoint now = Executor::current()->now();
  // The first head is due head_timeout after accept; a later one waits idle_timeout for its
  // first byte and is then due head_timeout after that (or now, if it is here already).
  TimePoint head_due = c->first        ? c->accepted + options_.request_head_timeout
                       : c->filled > 0 ? now + options_.request_head_timeout
                                       : kNoDeadline;
  TimePoint idle_due = c->first ? head_due : now + options_.idle_timeout;
  for (;;) {
    size_t head_bytes = find_head_end(std::string_view(c->buffer.data(), c->filled));
    if (head_bytes > 0) co_return head_bytes;
    if (c->filled == c->buffer.size()) {
      auto refusing = refuse(c, 431, fmt::format("a request head over {} bytes", c->filled), {});
      co_await std::move(refusing);
      co_return 0;
    }
    std::span<std::byte> space = std::as_writable_bytes(std::span(c->buffer)).subspan(c->filled);
    IoOptions io{c->filled > 0 ? head_due : idle_due};
    Result<size_t> got = co_await c->socket.recv(space, io);
    if (!got.ok() && got.status().code() == StatusCode::kTimedOut && c->filled > 0) {
      auto refusing = refuse(c, 408, "the request head did not arrive in time", {});
      co_await std::move(refusing);
      co_return 0;
    }
    if (!got.ok() || *got == 0) co_return 0;  // idle, closed, reset or shut down
    if (c->filled == 0 && head_due == kNoDeadline)
      head_due = Executor::current()->now() + options_.request_head_timeout;
    c->filled += *got;
  }
}

// Reads one request and answers it; true if the connection stays open for another.
Task<bool> HttpServer::serve_one(Connection* c) {
  auto reading = read_head(c);
  size_t head_bytes = co_await std::move(reading);
  if (head_bytes == 0) co_return false;
  HttpParseResult parsed = parse_request_head(std::string_view(c->buffer.data(), head_bytes));
  // The head is consumed; bytes behind it are the next (pipelined) request's.
  std::memmove(c->buffer.data(), c->buffer.data() + head_bytes, c->filled - head_bytes);
  c->filled -= head_bytes;
  const HttpRequestHead& head = parsed.head;
  int refusal = parsed.status;
  std::string reason = std::move(parsed.reason);
  std::string extra;
  if (refusal == 0 && head.method != "GET" && head.method != "HEAD") {
    refusal = 405;
    reason = fmt::format("method {} (only GET and HEAD are served)", head.method);
    extra = "Allow: GET, HEAD\r\n";
  } else if (refusal == 0 && (head.chunked || head.content_length > 0)) {
    refusal = head.chunked ? 400 : 413;
    reason = "a request with a body (only GET and HEAD without one are served)";
  }
  if (refusal != 0) {
    auto refusing = refuse(c, refusal, std::move(reason), std::move(extra));
    co_await std::move(refusing);
    co_return false;
  }
  bool close = head.close_requested || stopping_;
  HttpResponse response = route(head.path);
  auto sending = send_answer(c, std::move(response), head.method == "HEAD", close, {});
  Status sent = co_await std::move(sending);
  counters_->served.add();
  co_return sent.ok() && !close;
}

HttpResponse HttpServer::route(const std::string& path) const {
  if (path == "/metrics")
    return HttpResponse{200, std::string(kPrometheusContentType), registry_->render_prometheus()};
  if (path == "/health") {
    Status health = options_.health ? options_.health() : Status();
    if (health.ok()) return HttpResponse{200, std::string(kTextContentType), "ok\n"};
    return HttpResponse{503, std::string(kTextContentType),
                        fmt::format("unhealthy: {}\n", health.message())};
  }
  auto it = routes_.find(path);
  if (it != routes_.end()) return it->second();
  return HttpResponse{404, std::string(kTextContentType), "not found\n"};
}

Task<Status> HttpServer::send_answer(Connection* c, HttpResponse response, bool head_only,
                                     bool close, std::string extra) {
  std::string out = render_response_head(response.status, response.content_type,
                                         response.body.size(), close, extra);
  if (!head_only) out += response.body;
  IoOptions io{Executor::current()->now() + options_.write_timeout};
  auto sending = c->socket.send_all(std::as_bytes(std::span(out)), io);
  co_return co_await std::move(sending);
}

// One log line and one count, the answer with "Connection: close", then the lingering part of the
// close.
Task<void> HttpServer::refuse(Connection* c, int status, std::string reason, std::string extra) {
  MICA_LOG(Info, "net", "http: refused a request from {} with {}: {}", c->peer, status, reason);
  auto counter = counters_->refused.find(status);
  MICA_ASSERT(counter != counters_->refused.end());
  counter->second->add();
  HttpResponse response{status, std::string(kTextContentType), reason + "\n"};
  auto sending = send_answer(c, std::move(response), false, true, std::move(extra));
  Status sent = co_await std::move(sending);
  if (!sent.ok()) co_return;  // serve() closes the socket
  auto closing = linger_close(&c->socket);
  co_await std::move(closing);
}

// Stops sending (the client sees the answer and then end of stream) and drops what the
// client still sends for a while: closing with unread bytes would reset the connection, and
// a reset may destroy the answer before the client has read it.
Task<void> HttpServer::linger_close(Socket* socket) {
  Status shut = co_await socket->shutdown();
  if (shut.ok()) {
    IoOptions io{Executor::current()->now() + options_.linger_timeout};
    std::vector<std::byte> sink(4096);
    size_t dropped = 0;
    while (dropped < options_.linger_bytes_max) {
      Result<size_t> got = co_await socket->recv(sink, io);
      if (!got.ok() || *got == 0) break;
      dropped += *got;
    }
  }
}

}  // namespace mica::net
