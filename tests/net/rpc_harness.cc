#include "rpc_harness.h"

#include <gtest/gtest.h>

#include "async/crc32c.h"
#include "async/sim/world.h"
#include "net/rdma/rdma_transport.h"
#include "net/tcp_transport.h"
#include "tests/net/fake_verbs.h"

namespace mica::net::testing {

Task<Result<EchoResponse>> TestService::echo(EchoRequest request, CallContext*) {
  co_return EchoResponse{std::move(request.text)};
}

Task<Result<Empty>> TestService::sleep(SleepRequest request, CallContext*) {
  ++stats.running;
  stats.running_max = std::max(stats.running_max, stats.running);
  Status slept = co_await sleep_for(std::chrono::milliseconds(request.ms));
  --stats.running;
  if (slept.code() == StatusCode::kCancelled) ++stats.cancelled;
  if (slept.code() == StatusCode::kTimedOut) ++stats.timed_out;
  if (!slept.ok()) co_return slept;
  ++stats.finished;
  co_return Empty{};
}

Task<Result<Empty>> TestService::fail(FailRequest request, CallContext*) {
  co_return Status(static_cast<StatusCode>(request.code), request.message);
}

std::vector<std::byte> bulk_pattern(size_t n, uint8_t seed) {
  std::vector<std::byte> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = std::byte((i * 13 + seed) & 0xff);
  return data;
}

Task<Result<BulkResponse>> TestService::pull(BulkRequest request, CallContext* context) {
  std::vector<std::byte> data(request.buffer.length);
  auto reading = context->connection->read_from(request.buffer, data, context->deadline);
  CO_TRY(co_await std::move(reading));
  co_return BulkResponse{crc32c(data)};
}

Task<Result<BulkResponse>> TestService::push(BulkRequest request, CallContext* context) {
  std::vector<std::byte> data = bulk_pattern(request.buffer.length, request.seed);
  auto writing = context->connection->write_to(request.buffer, data, context->deadline);
  CO_TRY(co_await std::move(writing));
  co_return BulkResponse{crc32c(data)};
}

Task<Result<BulkResponse>> TestService::exchange(ExchangeRequest request, CallContext* context) {
  ++stats.running;
  stats.running_max = std::max(stats.running_max, stats.running);
  Status waited;
  while (!exchange_open && waited.ok()) waited = co_await sleep_for(std::chrono::milliseconds(1));
  std::vector<std::byte> pulled(request.pull.length);
  if (waited.ok()) {
    auto reading = context->connection->read_from(request.pull, pulled, context->deadline);
    waited = co_await std::move(reading);
  }
  std::vector<std::byte> pushed = bulk_pattern(request.push.length, request.seed);
  if (waited.ok()) {
    auto writing = context->connection->write_to(request.push, pushed, context->deadline);
    waited = co_await std::move(writing);
  }
  --stats.running;
  if (!waited.ok()) co_return waited;
  ++stats.finished;
  co_return BulkResponse{crc32c(pulled)};
}

namespace {

Task<void> run_real(RpcCase body, RpcServerOptions options, Transport* server_transport,
                    Transport* client_transport, bool refused_bulk_fails_connection,
                    ServerWrap wrap) {
  std::unique_ptr<Transport> wrapped = wrap ? wrap(server_transport) : nullptr;
  if (wrapped) server_transport = wrapped.get();
  TestService service;
  RpcServer server(server_transport, options);
  server.add_service(&service.service());
  Result<SocketAddress> address = server.start(SocketAddress::loopback(0));
  MICA_ASSERT(address.ok());
  RpcEnv env{client_transport, *address, &service, &server, refused_bulk_fails_connection,
             server_transport};
  co_await body(&env);
  co_await server.shutdown();
}

class TcpHarness final : public Harness {
 public:
  std::string name() const override { return "tcp"; }
  void run(RpcCase body, RpcServerOptions options) override {
    auto executor = Executor::create_uring();
    TcpTransport server_transport, client_transport;
    executor->block_on(run_real(body, options, &server_transport, &client_transport, false, wrap_));
  }
};

class RdmaHarness final : public Harness {
 public:
  std::string name() const override { return "rdma"; }
  void run(RpcCase body, RpcServerOptions options) override {
    fake_verbs::FakeVerbs::reset();
    fake_verbs::FakeVerbs::set_timing(fake_verbs::Timing{.async = true, .seed = 11});
    ibv_context* server_device = fake_verbs::FakeVerbs::open_device("fake-server");
    ibv_context* client_device = fake_verbs::FakeVerbs::open_device("fake-client");
    {
      auto executor = Executor::create_uring();
      auto server_transport = make_rdma_transport(server_device, RdmaConfig{});
      auto client_transport = make_rdma_transport(client_device, RdmaConfig{});
      MICA_ASSERT(server_transport.ok() && client_transport.ok());
      executor->block_on(
          run_real(body, options, server_transport->get(), client_transport->get(), true, wrap_));
    }
    EXPECT_TRUE(fake_verbs::FakeVerbs::misuse_log().empty());
    ibv_close_device(client_device);
    ibv_close_device(server_device);
  }
};

struct SimServer {
  TcpTransport transport;
  std::unique_ptr<Transport> wrapped;
  TestService service;
  std::unique_ptr<RpcServer> server;
  Transport* serving() { return wrapped ? wrapped.get() : &transport; }
};

Task<void> sim_start(SimServer* s, SocketAddress address, RpcServerOptions options,
                     ServerWrap wrap) {
  if (wrap) s->wrapped = wrap(&s->transport);
  s->server = std::make_unique<RpcServer>(s->serving(), options);
  s->server->add_service(&s->service.service());
  MICA_ASSERT(s->server->start(address).ok());
  co_return;
}

Task<void> sim_stop(SimServer* s) {
  co_await s->server->shutdown();
}

Task<void> sim_body(RpcCase body, RpcEnv* env, TcpTransport* client) {
  env->client_transport = client;
  co_await body(env);
}

class SimHarness final : public Harness {
 public:
  std::string name() const override { return "sim"; }
  void run(RpcCase body, RpcServerOptions options) override {
    uint64_t seed = sim::sim_seed(42);
    SCOPED_TRACE(fmt::format("simulation seed={} (replay: MICA_SIM_SEED={})", seed, seed));
    sim::SimWorld world(seed);
    sim::SimHost& server_host = world.add_host("server");
    sim::SimHost& client_host = world.add_host("client");
    SimServer server;
    SocketAddress address = server_host.address(7000);
    world.run(server_host, sim_start(&server, address, options, wrap_));
    TcpTransport client_transport;
    RpcEnv env{nullptr, address, &server.service, server.server.get(), false, server.serving()};
    world.run(client_host, sim_body(body, &env, &client_transport));
    world.run(server_host, sim_stop(&server));
  }
};

}  // namespace

std::unique_ptr<Harness> make_tcp_harness() {
  return std::make_unique<TcpHarness>();
}
std::unique_ptr<Harness> make_sim_harness() {
  return std::make_unique<SimHarness>();
}

std::unique_ptr<Harness> make_rdma_harness() {
  return std::make_unique<RdmaHarness>();
}
std::unique_ptr<Harness> make_harness(const std::string& name) {
  if (name == "tcp") return make_tcp_harness();
  if (name == "rdma") return make_rdma_harness();
  return make_sim_harness();
}

}  // namespace mica::net::testing
