// HttpServer under the simulator: the same server code on SimBackend sockets between two
// simulated hosts, over a sweep of seeds (scheduling and latency differ per seed): /metrics,
// /health turning unhealthy, keep-alive, and a client that stalls in its head closed at the
// default 5 s head timeout, on virtual time, while another is served. 1,000 seeds by default
// (MICA_SIM_SEEDS overrides; MICA_SIM_SEED=N replays one): 0.2 s in Debug, 1.6 s under ASan.
#include <gtest/gtest.h>

#include <cstdlib>

#include "async/sim/world.h"
#include "http_test_client.h"
#include "net/http_server.h"

namespace mica::net::testing {
namespace {

using namespace std::chrono_literals;

constexpr uint16_t kPort = 9100;

struct Site {
  MetricsRegistry registry;
  bool healthy = true;
  std::unique_ptr<HttpServer> server;
};

Task<void> start_server(Site* site, SocketAddress address) {
  HttpServerOptions options;
  options.registry = &site->registry;
  options.health = [site] {
    return site->healthy ? Status() : Status(StatusCode::kHostDown, "lost the disk");
  };
  site->server = std::make_unique<HttpServer>(options);
  Result<SocketAddress> bound = site->server->start(address);
  MICA_ASSERT(bound.ok() && *bound == address);
  co_return;
}

Task<void> stop_server(Site* site) {
  co_await site->server->shutdown();
}

struct Outcome {
  bool stalled_closed = false;
  int stalled_status = 0;
  Duration stalled_after{0};
  int served_meanwhile = 0;
};

Task<void> stall(SocketAddress address, Outcome* out) {
  TimePoint start = Executor::current()->now();
  auto connecting = http_connect(address);
  Result<HttpTestConnection> c = co_await std::move(connecting);
  EXPECT_TRUE(c.ok());
  if (!c.ok()) co_return;
  auto sending = http_send(&*c, "GET /health HTTP/1.1\r\nHo");
  EXPECT_TRUE((co_await std::move(sending)).ok());
  auto reading = http_read_response(&*c, false, 10s);
  Result<HttpTestResponse> r = co_await std::move(reading);
  if (r.ok()) out->stalled_status = r->status;
  auto waiting = http_wait_closed(&*c, deadline_after(10s));
  out->stalled_closed = (co_await std::move(waiting)).ok();
  out->stalled_after = Executor::current()->now() - start;
}

Task<void> meanwhile(SocketAddress address, Outcome* out) {
  auto connecting = http_connect(address);
  Result<HttpTestConnection> c = co_await std::move(connecting);
  EXPECT_TRUE(c.ok());
  if (!c.ok()) co_return;
  while (!out->stalled_closed) {
    auto sending = http_send(&*c, http_get("/health"));
    EXPECT_TRUE((co_await std::move(sending)).ok());
    auto reading = http_read_response(&*c);
    Result<HttpTestResponse> r = co_await std::move(reading);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) co_return;
    ++out->served_meanwhile;
    Status slept = co_await sleep_for(500ms);
    EXPECT_TRUE(slept.ok());
  }
}

Task<void> stall_while_serving(SocketAddress address, Outcome* out) {
  TaskScope scope;
  scope.spawn(stall(address, out));
  scope.spawn(meanwhile(address, out));
  co_await scope.join();
}

Task<Result<HttpTestResponse>> get(SocketAddress address, std::string path) {
  auto exchanging = http_exchange(address, http_get(path));
  co_return co_await std::move(exchanging);
}

void run_seed(uint64_t seed) {
  SCOPED_TRACE(fmt::format("simulation seed={} (replay: MICA_SIM_SEED={})", seed, seed));
  sim::SimWorld world(seed);
  sim::SimHost& server_host = world.add_host("server");
  sim::SimHost& client_host = world.add_host("client");
  Site site;
  site.registry.counter("test", "scrapes_total", "Scrapes.").add(3);
  SocketAddress address = server_host.address(kPort);
  world.run(server_host, start_server(&site, address));

  Result<HttpTestResponse> metrics = world.run(client_host, get(address, "/metrics"));
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("\nmica_test_scrapes_total 3\n"), std::string::npos);
  site.healthy = false;
  Result<HttpTestResponse> sick = world.run(client_host, get(address, "/health"));
  ASSERT_TRUE(sick.ok()) << sick.status();
  EXPECT_EQ(sick->status, 503);
  EXPECT_EQ(sick->body, "unhealthy: lost the disk\n");
  site.healthy = true;

  Outcome out;
  world.run(client_host, stall_while_serving(address, &out));
  EXPECT_TRUE(out.stalled_closed);
  EXPECT_EQ(out.stalled_status, 408);
  // The default head timeout, from accept, plus a few one-way latencies.
  EXPECT_GE(out.stalled_after, 5s);
  EXPECT_LT(out.stalled_after, 5s + 50ms);
  EXPECT_GE(out.served_meanwhile, 8);  // one every 500 ms for 5 s
  world.run(server_host, stop_server(&site));
  EXPECT_EQ(site.server->connections(), 0u);
}

TEST(HttpServerSim, ServesAndTimesOutStalledClientsOnVirtualTimeOverSeeds) {
  int64_t frames = live_frames();
  const char* one = std::getenv("MICA_SIM_SEED");
  const char* count = std::getenv("MICA_SIM_SEEDS");
  uint64_t seeds = count != nullptr && *count != '\0' ? std::strtoull(count, nullptr, 0) : 1000;
  if (one != nullptr && *one != '\0') seeds = 1;
  for (uint64_t i = 0; i < seeds && !::testing::Test::HasFailure(); ++i)
    run_seed(one != nullptr && *one != '\0' ? sim::sim_seed(0) : 1000 + i);
  EXPECT_EQ(live_frames(), frames) << "coroutine frames leaked";
}

}  // namespace
}  // namespace mica::net::testing
