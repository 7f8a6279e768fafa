// RPC over TCP on the simulator with faults in transit: a bit flipped on the wire is caught
// by the frame CRC (the call fails, it never returns altered bytes), and a fresh
// connection works once the corruption stops. A failing test prints its seed;
// MICA_SIM_SEED=N replays it.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "async/sim/world.h"
#include "net/tcp_transport.h"
#include "rpc_harness.h"

namespace mica::net::testing {
namespace {

using namespace std::chrono_literals;

struct Server {
  TcpTransport transport;
  TestService service;
  std::unique_ptr<RpcServer> server;
};

Task<void> start_server(Server* s, SocketAddress address) {
  s->server = std::make_unique<RpcServer>(&s->transport, RpcServerOptions{});
  s->server->add_service(&s->service.service());
  MICA_ASSERT(s->server->start(address).ok());
  co_return;
}

Task<void> stop_server(Server* s) {
  co_await s->server->shutdown();
}

// Connects, makes one echo call with a deadline, closes; returns the echoed text.
Task<Result<std::string>> echo_once(TcpTransport* transport, SocketAddress address,
                                    std::string text) {
  auto connecting = RpcClient::connect(transport, address, deadline_after(5s));
  CO_TRY_ASSIGN(std::shared_ptr<RpcClient> client, co_await std::move(connecting));
  CallOptions options{.deadline = deadline_after(5s)};
  auto call = TestApi::Stub(client.get()).echo(EchoRequest{text}, options);
  Result<EchoResponse> reply = co_await std::move(call);
  co_await client->close();
  CO_TRY(reply.status());
  co_return reply->text;
}

// Flips one bit inside the first client->server segment that carries `marker`.
struct FlipOnce {
  std::string marker;
  int flipped = 0;
  void operator()(const sim::SimHost& from, const sim::SimHost&, std::string& data) {
    size_t at = data.find(marker);
    if (flipped > 0 || from.name() != "client" || at == std::string::npos) return;
    data[at] = char(data[at] ^ 0x04);
    ++flipped;
  }
};

TEST(RpcSimFaults, ABitFlippedInTransitIsCaughtByTheFrameCrc) {
  uint64_t seed = sim::sim_seed(42);
  SCOPED_TRACE(fmt::format("simulation seed={} (replay: MICA_SIM_SEED={})", seed, seed));
  sim::SimWorld world(seed);
  sim::SimHost& server_host = world.add_host("server");
  sim::SimHost& client_host = world.add_host("client");
  auto flip = std::make_shared<FlipOnce>(FlipOnce{"flip-me", 0});
  world.net_config().tamper = [flip](const sim::SimHost& from, const sim::SimHost& to,
                                     std::string& data) { (*flip)(from, to, data); };
  Server server;
  SocketAddress address = server_host.address(7000);
  world.run(server_host, start_server(&server, address));
  TcpTransport client;
  Result<std::string> corrupted = world.run(client_host, echo_once(&client, address, "flip-me"));
  EXPECT_EQ(flip->flipped, 1);
  EXPECT_FALSE(corrupted.ok()) << "a corrupted request was answered: " << *corrupted;
  Result<std::string> clean = world.run(client_host, echo_once(&client, address, "clean"));
  ASSERT_TRUE(clean.ok()) << clean.status();
  EXPECT_EQ(*clean, "clean");
  world.run(server_host, stop_server(&server));
}

// Random flips at a high rate: no call ever returns bytes other than those it sent.
TEST(RpcSimFaults, RandomBitFlipsNeverYieldAWrongAnswer) {
  uint64_t seed = sim::sim_seed(42);
  SCOPED_TRACE(fmt::format("simulation seed={} (replay: MICA_SIM_SEED={})", seed, seed));
  sim::SimWorld world(seed);
  sim::SimHost& server_host = world.add_host("server");
  sim::SimHost& client_host = world.add_host("client");
  world.net_config().bit_flip_probability = 0.3;
  Server server;
  SocketAddress address = server_host.address(7000);
  world.run(server_host, start_server(&server, address));
  TcpTransport client;
  int failed = 0, succeeded = 0;
  for (int i = 0; i < 40; ++i) {
    std::string text = fmt::format("call {} {}", i, std::string(size_t(i * 7), 'p'));
    Result<std::string> reply = world.run(client_host, echo_once(&client, address, text));
    if (!reply.ok()) {
      ++failed;
      continue;
    }
    EXPECT_EQ(*reply, text) << "a flipped bit got through the CRC";
    ++succeeded;
  }
  EXPECT_GT(world.net_stats().bit_flips, 0u);
  EXPECT_GT(failed, 0);
  EXPECT_GT(succeeded, 0);
  world.net_config().bit_flip_probability = 0;
  world.run(server_host, stop_server(&server));
}

}  // namespace
}  // namespace mica::net::testing
