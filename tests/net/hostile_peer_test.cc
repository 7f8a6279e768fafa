// Hostile and slow peers on TCP: a trickling client is closed at the partial-frame deadline
// while others are served; headers announcing huge frames never push the server's reserved
// payload past its budget; idle connections are closed, busy ones are not; a request that
// names no deadline gets the server's default budget.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstring>

#include "async/socket.h"
#include "net/tcp_transport.h"
#include "rpc_harness.h"

namespace mica::net::testing {
namespace {

using namespace std::chrono_literals;

struct Env {
  TcpTransport* server_transport;
  TcpTransport* client_transport;
  RpcServer* server;
  TestService* service;
  SocketAddress address;
};

using Body = Task<void> (*)(Env* env);

Task<void> run_server(Body body, TcpTransportOptions transport_options,
                      RpcServerOptions server_options) {
  TcpTransport transport(transport_options);
  TcpTransport client_transport;
  TestService service;
  RpcServer server(&transport, server_options);
  server.add_service(&service.service());
  Result<SocketAddress> address = server.start(SocketAddress::loopback(0));
  MICA_ASSERT(address.ok());
  Env env{&transport, &client_transport, &server, &service, *address};
  co_await body(&env);
  co_await server.shutdown();
}

void run(Body body, TcpTransportOptions transport_options, RpcServerOptions server_options) {
  int64_t frames = live_frames();
  auto executor = Executor::create_uring();
  executor->block_on(run_server(body, transport_options, server_options));
  EXPECT_EQ(live_frames(), frames) << "frame leak";
}

std::vector<std::byte> request_bytes(FrameHeader header, std::span<const std::byte> payload) {
  HeaderBytes head = seal_frame(header, payload);
  std::vector<std::byte> bytes(head.begin(), head.end());
  bytes.insert(bytes.end(), payload.begin(), payload.end());
  return bytes;
}

FrameHeader echo_header() {
  FrameHeader header;
  header.kind = FrameKind::kRequest;
  header.service = TestApi::kId;
  header.method = TestApi::echo.kId;
  header.request_id = 1;
  return header;
}

// Waits until the peer closes `socket` (end of stream or reset), or until `deadline`.
Task<Status> wait_for_close(Socket* socket, TimePoint deadline) {
  std::byte sink[256];
  for (;;) {
    Result<size_t> n = co_await socket->recv(sink, IoOptions{deadline});
    if (!n.ok())
      co_return n.status().code() == StatusCode::kConnectionReset ? Status() : n.status();
    if (*n == 0) co_return Status();
  }
}

// ---- a client trickling one byte a second ----

constexpr uint32_t kPartialFrameMs = 1500;

struct Trickle {
  Socket socket;
  bool closed = false;
  Duration closed_after{0};
};

Task<void> trickle_bytes(Trickle* trickle, std::vector<std::byte> bytes) {
  for (std::byte b : bytes) {
    Result<size_t> sent = co_await trickle->socket.send(std::span(&b, 1));
    if (!sent.ok() || trickle->closed) co_return;
    Status slept = co_await sleep_for(1s);
    if (!slept.ok() || trickle->closed) co_return;
  }
}

Task<void> watch_trickle(Trickle* trickle) {
  TimePoint start = Executor::current()->now();
  Status closed = co_await wait_for_close(&trickle->socket, deadline_after(10s));
  EXPECT_TRUE(closed.ok()) << closed;
  trickle->closed = closed.ok();
  trickle->closed_after = Executor::current()->now() - start;
}

Task<void> echo_until(RpcClient* client, const Trickle* trickle, int* served) {
  TimePoint give_up = deadline_after(10s);
  while (!trickle->closed && Executor::current()->now() < give_up) {
    auto call =
        client->call<TestApi::echo>(EchoRequest{"meanwhile"}, CallOptions{deadline_after(1s)});
    Result<EchoResponse> r = co_await std::move(call);
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) ++*served;
    Status slept = co_await sleep_for(20ms);
    EXPECT_TRUE(slept.ok());
  }
}

Task<void> slow_client_case(Env* env) {
  auto connecting = RpcClient::connect(env->client_transport, env->address, deadline_after(2s));
  Result<std::shared_ptr<RpcClient>> good = co_await std::move(connecting);
  EXPECT_TRUE(good.ok());
  if (!good.ok()) co_return;
  Trickle trickle;
  auto raw = Socket::connect(env->address, IoOptions{deadline_after(2s)});
  Result<Socket> socket = co_await std::move(raw);
  EXPECT_TRUE(socket.ok());
  if (!socket.ok()) co_return;
  trickle.socket = std::move(*socket);
  int served = 0;
  TaskScope scope;
  scope.spawn(watch_trickle(&trickle));
  scope.spawn(trickle_bytes(&trickle, request_bytes(echo_header(), encode(EchoRequest{"slow"}))));
  scope.spawn(echo_until(good->get(), &trickle, &served));
  co_await scope.join();
  EXPECT_TRUE(trickle.closed);
  EXPECT_GE(trickle.closed_after, std::chrono::milliseconds(kPartialFrameMs));
  EXPECT_LT(trickle.closed_after, std::chrono::milliseconds(kPartialFrameMs) + 2s);
  EXPECT_GE(served, 20);  // the others were served all along
  co_await (*good)->close();
}

// Time cap: about 2 s (the partial-frame deadline).
TEST(HostilePeer, ClientSendingOneByteASecondIsClosedAtThePartialFrameDeadline) {
  TcpTransportOptions transport;
  transport.partial_frame_timeout_ms = kPartialFrameMs;
  run(slow_client_case, transport, {});
}

// ---- a thousand connections announcing 64 MiB each ----

constexpr int kHugeConnections = 1000;
constexpr uint32_t kFrameBytesMax = 64 << 20;
constexpr uint64_t kBudgetBytes = 64 << 20;  // transport-wide: one largest frame
constexpr size_t kBytesSentEach = 64 << 10;  // the first step of each payload, then silence

void raise_open_files(rlim_t wanted) {
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_cur >= wanted) return;
  limit.rlim_cur = std::min(wanted, limit.rlim_max);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  ASSERT_GE(limit.rlim_cur, wanted) << "the hard limit on open files is too low";
}

Task<void> announce_huge_frame(SocketAddress address, Socket* out) {
  auto connecting = Socket::connect(address, IoOptions{deadline_after(5s)});
  Result<Socket> socket = co_await std::move(connecting);
  EXPECT_TRUE(socket.ok()) << socket.status();
  if (!socket.ok()) co_return;
  // A header announcing the largest frame (its CRC is never checked: the payload never
  // arrives whole).
  HeaderBytes head = seal_frame(echo_header(), {});
  FrameHeader announced;
  std::memcpy(&announced, head.data(), sizeof announced);
  announced.payload_length = kFrameBytesMax - kFrameHeaderBytes;
  std::vector<std::byte> bytes(kFrameHeaderBytes);
  std::memcpy(bytes.data(), &announced, sizeof announced);
  bytes.resize(bytes.size() + kBytesSentEach, std::byte{0x5a});
  auto sending = socket->send_all(bytes, IoOptions{deadline_after(5s)});
  Status sent = co_await std::move(sending);
  EXPECT_TRUE(sent.ok()) << sent;
  *out = std::move(*socket);
}

Task<void> huge_frames_case(Env* env) {
  std::vector<Socket> sockets(kHugeConnections);
  TaskScope scope;
  for (int i = 0; i < kHugeConnections; ++i)
    scope.spawn(announce_huge_frame(env->address, &sockets[i]));
  co_await scope.join();
  const PayloadBudget* budget = env->server_transport->payload_budget();
  // Every connection now has its first step in and waits for budget for the next one.
  TimePoint give_up = deadline_after(10s);
  while (Executor::current()->now() < give_up &&
         (env->server->connections() < size_t(kHugeConnections) ||
          budget->reserved() < kBudgetBytes)) {
    Status slept = co_await sleep_for(10ms);
    EXPECT_TRUE(slept.ok());
  }
  EXPECT_EQ(env->server->connections(), size_t(kHugeConnections));
  EXPECT_LE(budget->reserved_max(), kBudgetBytes);
  EXPECT_EQ(budget->reserved(), kBudgetBytes);  // the budget, not 1000 × 64 MiB
  for (Socket& socket : sockets) {
    if (socket.is_open()) {
      Status closed = co_await socket.close();
      EXPECT_TRUE(closed.ok());
    }
  }
  // Closed peers give their reservations back.
  give_up = deadline_after(10s);
  while (Executor::current()->now() < give_up &&
         (budget->reserved() > 0 || env->server->connections() > 0)) {
    Status slept = co_await sleep_for(10ms);
    EXPECT_TRUE(slept.ok());
  }
  EXPECT_EQ(budget->reserved(), 0u);
  EXPECT_EQ(env->server->connections(), 0u);
  EXPECT_LE(budget->reserved_max(), kBudgetBytes);
}

// Time cap: about 5 s in a debug build (1,000 connects and 62.5 MiB over loopback).
TEST(HostilePeer, AThousandHugeFrameHeadersNeverPushReservedPayloadPastTheBudget) {
  raise_open_files(2 * kHugeConnections + 256);
  TcpTransportOptions transport;
  transport.limits.frame_bytes_max = kFrameBytesMax;
  transport.payload_bytes_per_connection_max = kFrameBytesMax;
  transport.payload_bytes_max = kBudgetBytes;
  transport.partial_frame_timeout_ms = 30'000;  // longer than the case: the budget holds them
  run(huge_frames_case, transport, {});
}

// ---- idle connections ----

Task<void> idle_case(Env* env) {
  auto connecting = RpcClient::connect(env->client_transport, env->address, deadline_after(2s));
  Result<std::shared_ptr<RpcClient>> client = co_await std::move(connecting);
  EXPECT_TRUE(client.ok());
  if (!client.ok()) co_return;
  auto call = (*client)->call<TestApi::echo>(EchoRequest{"once"}, {});
  Result<EchoResponse> r = co_await std::move(call);
  EXPECT_TRUE(r.ok()) << r.status();
  TimePoint start = Executor::current()->now();
  while ((*client)->healthy() && Executor::current()->now() - start < 5s) {
    Status slept = co_await sleep_for(10ms);
    EXPECT_TRUE(slept.ok());
  }
  Duration idle_for = Executor::current()->now() - start;
  EXPECT_FALSE((*client)->healthy());
  EXPECT_GE(idle_for, 250ms);  // 300 ms after the last activity, less the call's own time
  EXPECT_LT(idle_for, 2s);
  co_await (*client)->close();
}

TEST(HostilePeer, IdleConnectionIsClosedAfterTheIdleTimeout) {
  RpcServerOptions server;
  server.idle_timeout = 300ms;
  run(idle_case, {}, server);
}

Task<void> busy_case(Env* env) {
  auto connecting = RpcClient::connect(env->client_transport, env->address, deadline_after(2s));
  Result<std::shared_ptr<RpcClient>> client = co_await std::move(connecting);
  EXPECT_TRUE(client.ok());
  if (!client.ok()) co_return;
  // No frame for 800 ms, but a request in flight: the connection is not idle.
  auto call = (*client)->call<TestApi::sleep>(SleepRequest{800}, CallOptions{deadline_after(5s)});
  Result<Empty> r = co_await std::move(call);
  EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE((*client)->healthy());
  co_await (*client)->close();
}

TEST(HostilePeer, IdleTimeoutSparesAConnectionWithARequestInFlight) {
  RpcServerOptions server;
  server.idle_timeout = 200ms;
  run(busy_case, {}, server);
}

// ---- the default budget ----

Task<void> default_budget_case(Env* env) {
  auto connecting = env->client_transport->connect(env->address, deadline_after(2s));
  Result<std::unique_ptr<Connection>> connection = co_await std::move(connecting);
  EXPECT_TRUE(connection.ok());
  if (!connection.ok()) co_return;
  FrameHeader header = echo_header();
  header.method = TestApi::sleep.kId;
  header.timeout_us = 0;  // names no deadline
  std::vector<std::byte> payload = encode(SleepRequest{10'000});
  TimePoint start = Executor::current()->now();
  auto sending = (*connection)->send(header, payload);
  Status sent = co_await std::move(sending);
  EXPECT_TRUE(sent.ok()) << sent;
  {  // the frame goes before its connection
    auto reading = with_deadline((*connection)->next_frame(), deadline_after(5s));
    Result<Frame> response = co_await std::move(reading);
    EXPECT_TRUE(response.ok()) << response.status();
    if (response.ok()) {
      EXPECT_EQ(response->header.kind, FrameKind::kResponse);
      EXPECT_EQ(static_cast<StatusCode>(response->header.status), StatusCode::kTimedOut);
    }
  }
  EXPECT_LT(Executor::current()->now() - start, 2s);  // 100 ms, not the 10 s asked for
  EXPECT_EQ(env->service->stats.timed_out, 1);
  co_await (*connection)->close();
}

TEST(HostilePeer, RequestWithoutDeadlineGetsTheServerDefaultBudget) {
  RpcServerOptions server;
  server.default_request_timeout = 100ms;
  run(default_budget_case, {}, server);
}

}  // namespace
}  // namespace mica::net::testing
