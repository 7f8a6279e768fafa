// HttpServer on real io_uring sockets on 127.0.0.1: /metrics in Prometheus text, /health,
// the refusals (404, 405, 400, 413, 431, 408, 505), keep-alive and Connection: close, the
// connection limit, a stalled client closed at its deadline while others are served, the
// head, idle and write timeouts, extra routes, the server's own counters, and shutdown with
// connections open. Each test runs the server and its clients as tasks on one executor and
// takes under 2 s.
#include "net/http_server.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "http_test_client.h"
#include "tests/co_test.h"

namespace mica::net::testing {
namespace {

using namespace std::chrono_literals;

struct Env {
  HttpServer* server;
  MetricsRegistry* registry;
  SocketAddress address;
};

using Body = Task<void> (*)(Env* env);

Task<void> run_server(Body body, HttpServerOptions options,
                      std::map<std::string, HttpHandler> routes) {
  MetricsRegistry registry;  // per test, so counts start at zero
  options.registry = &registry;
  HttpServer server(options);
  for (auto& [path, handler] : routes) server.add_route(path, handler);
  Result<SocketAddress> address = server.start(SocketAddress::loopback(0));
  MICA_ASSERT(address.ok());
  Env env{&server, &registry, *address};
  co_await body(&env);
  co_await server.shutdown();
  EXPECT_EQ(server.connections(), 0u);
}

void run(Body body, HttpServerOptions options = {},
         std::map<std::string, HttpHandler> routes = {}) {
  int64_t frames = live_frames();
  {
    auto executor = Executor::create_uring();
    executor->block_on(run_server(body, std::move(options), std::move(routes)));
  }
  EXPECT_EQ(live_frames(), frames) << "frame leak";
}

// Checks that text is Prometheus text format 0.0.4 as far as a scraper relies on it: every
// line is a HELP, a TYPE or a sample `name{labels} value`, and every sample belongs to a
// family whose TYPE came before it. Returns the first offending line, or "" if all parse.
std::string prometheus_violation(const std::string& text) {
  static const std::regex help(R"(# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*)");
  static const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
  static const std::regex sample(R"(([a-zA-Z_:][a-zA-Z0-9_:]*))"
                                 R"((\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")"
                                 R"((,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? )"
                                 R"(([-+]?[0-9.eE+-]+|\+Inf|NaN))");
  if (text.empty() || text.back() != '\n') return "(no final newline)";
  std::istringstream lines(text);
  std::string line;
  std::string family;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_match(line, m, type)) {
      family = m[1];
    } else if (std::regex_match(line, m, sample)) {
      std::string name = m[1];
      if (family.empty() || !name.starts_with(family)) return line;
    } else if (!std::regex_match(line, help)) {
      return line;
    }
  }
  return {};
}

// ---- routes ----

Task<void> metrics_case(Env* env) {
  env->registry->counter("test", "widgets_total", "Widgets made.").add(7);
  auto exchanging = http_exchange(env->address, http_get("/metrics"));
  Result<HttpTestResponse> r = co_await std::move(exchanging);
  CO_ASSERT_OK(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r->body.find("# HELP mica_test_widgets_total Widgets made.\n"
                         "# TYPE mica_test_widgets_total counter\n"
                         "mica_test_widgets_total 7\n"),
            std::string::npos)
      << r->body;
  EXPECT_EQ(prometheus_violation(r->body), "");
  // The check itself refuses a sample without its TYPE, and a line that is no sample.
  EXPECT_NE(prometheus_violation("mica_x_total 1\n"), "");
  EXPECT_NE(prometheus_violation("# TYPE mica_x_total counter\nmica_x_total one\n"), "");
  // The server's own series are in it too.
  EXPECT_NE(r->body.find("mica_net_http_requests_refused_total{status=\"431\"} 0"),
            std::string::npos);
}

TEST(HttpServer, MetricsServesTheRegistryInPrometheusText) {
  run(&metrics_case);
}

Task<void> health_case(Env* env) {
  auto exchanging = http_exchange(env->address, http_get("/health"));
  Result<HttpTestResponse> r = co_await std::move(exchanging);
  CO_ASSERT_OK(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
}

TEST(HttpServer, HealthIs200WhileTheOwnerSaysHealthy) {
  HttpServerOptions options;
  options.health = [] { return Status(); };
  run(&health_case, options);
}

Task<void> unhealthy_case(Env* env) {
  auto exchanging = http_exchange(env->address, http_get("/health"));
  Result<HttpTestResponse> r = co_await std::move(exchanging);
  CO_ASSERT_OK(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "unhealthy: no quorum of storage nodes\n");
}

TEST(HttpServer, HealthIs503WithTheReasonWhenTheOwnerSaysUnhealthy) {
  HttpServerOptions options;
  options.health = [] { return Status(StatusCode::kHostDown, "no quorum of storage nodes"); };
  run(&unhealthy_case, options);
}

// HEAD sends the head GET would (same Content-Length) and no body: the GET behind it on the
// same connection reads cleanly only if no body bytes came.
Task<void> head_case(Env* env) {
  auto connecting = http_connect(env->address);
  Result<HttpTestConnection> c = co_await std::move(connecting);
  CO_ASSERT_OK(c);
  auto sending = http_send(&*c, "HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n" + http_get("/health"));
  CO_ASSERT_OK(co_await std::move(sending));
  auto first = http_read_response(&*c, true);
  Result<HttpTestResponse> head = co_await std::move(first);
  CO_ASSERT_OK(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("Content-Length"), "3");
  auto second = http_read_response(&*c);
  Result<HttpTestResponse> get = co_await std::move(second);
  CO_ASSERT_OK(get);
  EXPECT_EQ(get->body, "ok\n");
}

TEST(HttpServer, HeadSendsTheHeadOfGetWithoutTheBody) {
  run(&head_case);
}

Task<void> extra_route_case(Env* env) {
  auto exchanging = http_exchange(env->address, http_get("/status?verbose=1"));
  Result<HttpTestResponse> r = co_await std::move(exchanging);
  CO_ASSERT_OK(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Content-Type"), "application/json");
  EXPECT_EQ(r->body, "{\"nodes\":3}");
}

TEST(HttpServer, AnExtraRouteServesTheOwnersAnswer) {
  std::map<std::string, HttpHandler> routes;
  routes["/status"] = [] { return HttpResponse{200, "application/json", "{\"nodes\":3}"}; };
  run(&extra_route_case, {}, routes);
}

// ---- refusals ----

// Sends `request`, expects `status` and, if `closes`, the end of the connection after it.
Task<void> expect_answer(SocketAddress address, std::string request, int status, bool closes) {
  auto connecting = http_connect(address);
  Result<HttpTestConnection> c = co_await std::move(connecting);
  CO_ASSERT_OK(c);
  auto sending = http_send(&*c, request);
  CO_ASSERT_OK(co_await std::move(sending));
  auto reading = http_read_response(&*c);
  Result<HttpTestResponse> r = co_await std::move(reading);
  CO_ASSERT_OK(r) << request;
  EXPECT_EQ(r->status, status) << request;
  if (status == 405) {
    EXPECT_EQ(r->header("Allow"), "GET, HEAD");
  }
  if (!closes) co_return;
  EXPECT_EQ(r->header("Connection"), "close") << request;
  auto waiting = http_wait_closed(&*c, deadline_after(2s));
  EXPECT_TRUE((co_await std::move(waiting)).ok()) << "still open after " << request;
}

Task<void> refusals_case(Env* env) {
  struct Case {
    std::string request;
    int status;
    bool closes;
  };
  std::vector<Case> cases = {
      {http_get("/nowhere"), 404, false},
      {"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi", 405, true},
      {"DELETE /health HTTP/1.1\r\nHost: t\r\n\r\n", 405, true},
      {"GET /metrics\r\nHost: t\r\n\r\n", 400, true},            // no version
      {"GET  /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 400, true},  // two spaces
      {"GET /metrics HTTP/1.1\r\nHost t\r\n\r\n", 400, true},    // no colon
      {"GET /metrics HTTP/1.1\r\nHost : t\r\n\r\n", 400, true},  // space before colon
      {"GET /metrics HTTP/1.1\r\n\r\n", 400, true},              // 1.1 without Host
      {"GET /metrics HTTP/2.0\r\nHost: t\r\n\r\n", 505, true},   // not 1.x
      {http_get("/metrics", "Content-Length: 5\r\n") + "hello", 413, true},
      {http_get("/metrics", "Transfer-Encoding: chunked\r\n") + "0\r\n\r\n", 400, true},
      {http_get("/metrics", "X-Big: " + std::string(9000, 'a') + "\r\n"), 431, true},
  };
  for (const Case& c : cases) {
    auto answering = expect_answer(env->address, c.request, c.status, c.closes);
    co_await std::move(answering);
  }
  // Each refusal counted once under its status; the 404 was served.
  auto refused = [&](const char* status) {
    return env->registry->counter("net", "http_requests_refused_total", "", {{"status", status}})
        .value();
  };
  EXPECT_EQ(refused("400"), 6u);
  EXPECT_EQ(refused("405"), 2u);
  EXPECT_EQ(refused("413"), 1u);
  EXPECT_EQ(refused("431"), 1u);
  EXPECT_EQ(refused("505"), 1u);
  EXPECT_EQ(env->registry->counter("net", "http_requests_served_total", "").value(), 1u);
}

TEST(HttpServer, RefusesUnknownPathsOtherMethodsMalformedHeadsBodiesAndLargeHeads) {
  run(&refusals_case);
}

// ---- connections ----

Task<void> keep_alive_case(Env* env) {
  auto connecting = http_connect(env->address);
  Result<HttpTestConnection> c = co_await std::move(connecting);
  CO_ASSERT_OK(c);
  for (int i = 0; i < 2; ++i) {
    auto sending = http_send(&*c, http_get("/health"));
    CO_ASSERT_OK(co_await std::move(sending));
    auto reading = http_read_response(&*c);
    Result<HttpTestResponse> r = co_await std::move(reading);
    CO_ASSERT_OK(r) << "request " << i;
    EXPECT_EQ(r->body, "ok\n");
    EXPECT_EQ(r->header("Connection"), "");
  }
  // Two pipelined in one segment are answered in order too.
  auto sending = http_send(&*c, http_get("/health") + http_get("/nowhere"));
  CO_ASSERT_OK(co_await std::move(sending));
  auto first = http_read_response(&*c);
  Result<HttpTestResponse> a = co_await std::move(first);
  auto second = http_read_response(&*c);
  Result<HttpTestResponse> b = co_await std::move(second);
  CO_ASSERT_OK(a);
  CO_ASSERT_OK(b);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(b->status, 404);
  EXPECT_EQ(env->server->connections(), 1u);
}

TEST(HttpServer, KeepAliveServesSeveralRequestsOnOneConnection) {
  run(&keep_alive_case);
}

Task<void> close_case(Env* env) {
  auto closing =
      expect_answer(env->address, http_get("/health", "Connection: close\r\n"), 200, true);
  co_await std::move(closing);
  auto old = expect_answer(env->address, "GET /health HTTP/1.0\r\n\r\n", 200, true);
  co_await std::move(old);
}

TEST(HttpServer, ConnectionCloseAndHttp10CloseAfterTheResponse) {
  run(&close_case);
}

Task<void> idle_case(Env* env) {
  auto connecting = http_connect(env->address);
  Result<HttpTestConnection> c = co_await std::move(connecting);
  CO_ASSERT_OK(c);
  auto sending = http_send(&*c, http_get("/health"));
  CO_ASSERT_OK(co_await std::move(sending));
  auto reading = http_read_response(&*c);
  CO_ASSERT_OK(co_await std::move(reading));
  TimePoint start = Executor::current()->now();
  auto waiting = http_wait_closed(&*c, deadline_after(3s));
  CO_ASSERT_OK(co_await std::move(waiting));
  Duration open = Executor::current()->now() - start;
  EXPECT_GE(open, 280ms);
  EXPECT_LT(open, 1500ms);
}

TEST(HttpServer, AnIdleKeptAliveConnectionIsClosedAfterTheIdleTimeout) {
  HttpServerOptions options;
  options.idle_timeout = 300ms;
  run(&idle_case, options);
}

// ---- slow clients, the connection limit, shutdown ----

struct Stall {
  bool closed = false;
  int status = 0;  // what the stalled client was answered
  Duration closed_after{0};
};

// Sends half a request head and nothing more; records when the server ends it.
Task<void> stall_half_a_head(SocketAddress address, Stall* stall) {
  TimePoint start = Executor::current()->now();
  auto connecting = http_connect(address);
  Result<HttpTestConnection> c = co_await std::move(connecting);
  CO_ASSERT_OK(c);
  auto sending = http_send(&*c, "GET /metr");
  CO_ASSERT_OK(co_await std::move(sending));
  auto reading = http_read_response(&*c, false, 5s);
  Result<HttpTestResponse> r = co_await std::move(reading);
  if (r.ok()) stall->status = r->status;
  auto waiting = http_wait_closed(&*c, deadline_after(5s));
  Status closed = co_await std::move(waiting);
  stall->closed = closed.ok();
  stall->closed_after = Executor::current()->now() - start;
}

// Keeps asking for /health on one connection until the stalled client is closed.
Task<void> serve_meanwhile(SocketAddress address, const Stall* stall, int* served) {
  auto connecting = http_connect(address);
  Result<HttpTestConnection> c = co_await std::move(connecting);
  CO_ASSERT_OK(c);
  TimePoint give_up = deadline_after(5s);
  while (!stall->closed && Executor::current()->now() < give_up) {
    auto sending = http_send(&*c, http_get("/health"));
    CO_ASSERT_OK(co_await std::move(sending));
    auto reading = http_read_response(&*c);
    Result<HttpTestResponse> r = co_await std::move(reading);
    CO_ASSERT_OK(r);
    ++*served;
    Status slept = co_await sleep_for(20ms);
    CO_ASSERT_OK(slept);
  }
}

Task<void> stalled_case(Env* env) {
  Stall stall;
  int served = 0;
  TaskScope scope;
  scope.spawn(stall_half_a_head(env->address, &stall));
  scope.spawn(serve_meanwhile(env->address, &stall, &served));
  co_await scope.join();
  EXPECT_TRUE(stall.closed);
  EXPECT_EQ(stall.status, 408);
  EXPECT_GE(stall.closed_after, 480ms);
  EXPECT_LT(stall.closed_after, 1500ms);
  EXPECT_GE(served, 10);  // the other client was served all along
}

TEST(HttpServer, AClientStalledInItsHeadIsClosedAtTheTimeoutWhileOthersAreServed) {
  HttpServerOptions options;
  options.request_head_timeout = 500ms;
  run(&stalled_case, options);
}

// A client that connects and sends nothing holds its slot only for the head timeout: the
// first head is due that long after the accept, and nothing is answered to no request.
Task<void> silent_case(Env* env) {
  TimePoint start = Executor::current()->now();
  auto connecting = http_connect(env->address);
  Result<HttpTestConnection> c = co_await std::move(connecting);
  CO_ASSERT_OK(c);
  auto waiting = http_wait_closed(&*c, deadline_after(3s));
  CO_ASSERT_OK(co_await std::move(waiting));
  Duration open = Executor::current()->now() - start;
  EXPECT_GE(open, 280ms);
  EXPECT_LT(open, 1500ms);
  EXPECT_EQ(c->pending, "");
}

TEST(HttpServer, AConnectionThatSendsNothingIsClosedAtTheHeadTimeout) {
  HttpServerOptions options;
  options.request_head_timeout = 300ms;
  run(&silent_case, options);
}

// A client that asks for a large body and never reads it is cut off at the write timeout
// (32 MiB is far more than the loopback socket buffers hold) and its slot is given back.
Task<void> slow_reader_case(Env* env) {
  auto connecting = http_connect(env->address);
  Result<HttpTestConnection> c = co_await std::move(connecting);
  CO_ASSERT_OK(c);
  auto sending = http_send(&*c, http_get("/large"));
  CO_ASSERT_OK(co_await std::move(sending));
  while (env->server->connections() == 0) CO_ASSERT_OK(co_await sleep_for(1ms));
  TimePoint start = Executor::current()->now();
  TimePoint give_up = deadline_after(3s);
  while (env->server->connections() > 0 && Executor::current()->now() < give_up)
    CO_ASSERT_OK(co_await sleep_for(10ms));
  Duration open = Executor::current()->now() - start;
  EXPECT_EQ(env->server->connections(), 0u);
  EXPECT_GE(open, 250ms);
  EXPECT_LT(open, 1500ms);
}

TEST(HttpServer, AClientThatDoesNotReadIsCutOffAtTheWriteTimeout) {
  HttpServerOptions options;
  options.write_timeout = 300ms;
  std::map<std::string, HttpHandler> routes;
  routes["/large"] = [] { return HttpResponse{200, "text/plain", std::string(32 << 20, 'x')}; };
  run(&slow_reader_case, options, routes);
}

// Opens a connection and completes one request on it, so the server surely counts it.
Task<Result<HttpTestConnection>> served_connection(SocketAddress address) {
  auto connecting = http_connect(address);
  CO_TRY_ASSIGN(HttpTestConnection c, co_await std::move(connecting));
  auto sending = http_send(&c, http_get("/health"));
  CO_TRY(co_await std::move(sending));
  auto reading = http_read_response(&c);
  CO_TRY(co_await std::move(reading));
  co_return c;
}

Task<void> limit_case(Env* env) {
  std::vector<HttpTestConnection> open;
  for (int i = 0; i < 2; ++i) {
    auto connecting = served_connection(env->address);
    Result<HttpTestConnection> c = co_await std::move(connecting);
    CO_ASSERT_OK(c);
    open.push_back(std::move(*c));
  }
  // The third is answered 503 (or, if it raced the close, reset) and closed.
  auto connecting = http_connect(env->address);
  Result<HttpTestConnection> extra = co_await std::move(connecting);
  CO_ASSERT_OK(extra);
  auto reading = http_read_response(&*extra);
  Result<HttpTestResponse> refused = co_await std::move(reading);
  if (refused.ok()) {
    EXPECT_EQ(refused->status, 503);
  }
  auto waiting = http_wait_closed(&*extra, deadline_after(2s));
  CO_ASSERT_OK(co_await std::move(waiting));
  // The two are still served.
  for (HttpTestConnection& c : open) {
    auto sending = http_send(&c, http_get("/health"));
    CO_ASSERT_OK(co_await std::move(sending));
    auto answer = http_read_response(&c);
    Result<HttpTestResponse> r = co_await std::move(answer);
    CO_ASSERT_OK(r);
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(
      env->registry->counter("net", "http_requests_refused_total", "", {{"status", "503"}}).value(),
      1u);
  // Once one closes, a new connection is served again.
  open.pop_back();
  while (env->server->connections() > 1) CO_ASSERT_OK(co_await sleep_for(5ms));
  auto again = served_connection(env->address);
  CO_ASSERT_OK(co_await std::move(again));
}

TEST(HttpServer, ConnectionsBeyondTheMaximumAreRefusedWithoutHarmingTheOthers) {
  HttpServerOptions options;
  options.connections_max = 2;
  run(&limit_case, options);
}

Task<void> shutdown_case(Env* env) {
  // One kept alive after a request, one half-way through a head, one that sent nothing.
  auto serving = served_connection(env->address);
  Result<HttpTestConnection> kept = co_await std::move(serving);
  CO_ASSERT_OK(kept);
  auto connecting = http_connect(env->address);
  Result<HttpTestConnection> half = co_await std::move(connecting);
  CO_ASSERT_OK(half);
  auto sending = http_send(&*half, "GET /hea");
  CO_ASSERT_OK(co_await std::move(sending));
  auto silent_connecting = http_connect(env->address);
  Result<HttpTestConnection> silent = co_await std::move(silent_connecting);
  CO_ASSERT_OK(silent);
  while (env->server->connections() < 3) CO_ASSERT_OK(co_await sleep_for(5ms));
  TimePoint start = Executor::current()->now();
  co_await env->server->shutdown();
  EXPECT_LT(Executor::current()->now() - start, 1s);
  EXPECT_EQ(env->server->connections(), 0u);
  for (HttpTestConnection* c : {&*kept, &*half, &*silent}) {
    auto waiting = http_wait_closed(c, deadline_after(2s));
    EXPECT_TRUE((co_await std::move(waiting)).ok());
  }
  auto late = http_connect(env->address);
  EXPECT_FALSE((co_await std::move(late)).ok()) << "still listening after shutdown";
}

TEST(HttpServer, ShutdownWithOpenConnectionsClosesThemAndReturns) {
  run(&shutdown_case);
}

}  // namespace
}  // namespace mica::net::testing
