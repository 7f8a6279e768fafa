// The cluster-token handshake (net/authenticated_transport.h) against a real RpcServer:
// on TCP over io_uring, TCP on the simulator and RDMA on the fake verbs provider, the right
// token gets calls through, a wrong one is refused with kUnauthenticated while the server
// serves others, and a client without a token is closed. On TCP with raw sockets as the
// peer: a non-handshake first frame is closed at once (one log line), a silent peer is
// closed at the handshake deadline without holding up others, a recorded answer replayed
// on a new connection is refused, and the secret never crosses the wire.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "async/log.h"
#include "async/metrics.h"
#include "async/socket.h"
#include "net/authenticated_transport.h"
#include "net/tcp_connection.h"
#include "rpc_harness.h"
#include "tests/temp_dir.h"

namespace mica::net::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kGoodSecret = "the-cluster-secret-of-this-test-0123";
constexpr std::string_view kWrongSecret = "the-secret-of-some-other-cluster-99";
// Short, so the deadline cases stay quick (virtual time in the simulator).
constexpr Duration kHandshakeTimeout = 1s;

ClusterToken token_of(std::string_view secret) {
  Result<ClusterToken> token = ClusterToken::from_secret(std::string(secret));
  MICA_ASSERT(token.ok());
  return *token;
}

AuthOptions test_options() {
  AuthOptions options;
  options.handshake_timeout = kHandshakeTimeout;
  return options;
}

AuthenticatedTransport* server_auth(RpcEnv* env) {
  return static_cast<AuthenticatedTransport*>(env->server_transport);
}

void run_authenticated(Harness* harness, RpcCase body) {
  harness->wrap_server([](Transport* inner) -> std::unique_ptr<Transport> {
    return std::make_unique<AuthenticatedTransport>(inner, token_of(kGoodSecret), test_options());
  });
  harness->run(body, RpcServerOptions{});
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// Waits until the server has closed a connection that failed its handshake (or gives up
// after 5 s: past the handshake deadline).
Task<void> wait_for_a_failed_handshake(RpcEnv* env) {
  TimePoint give_up = deadline_after(5s);
  const AuthStats& stats = server_auth(env)->stats();
  while (stats.not_a_handshake + stats.failed == 0 && Executor::current()->now() < give_up) {
    Status slept = co_await sleep_for(10ms);
    EXPECT_TRUE(slept.ok());
  }
}

// One echo call through a fresh authenticated client holding `secret`.
Task<Status> echo_with(RpcEnv* env, std::string_view secret) {
  AuthenticatedTransport transport(env->client_transport, token_of(secret), test_options());
  auto connecting = RpcClient::connect(&transport, env->server_address, deadline_after(5s));
  CO_TRY_ASSIGN(std::shared_ptr<RpcClient> client, co_await std::move(connecting));
  auto calling = client->call<TestApi::echo>(EchoRequest{"hello"}, CallOptions{deadline_after(5s)});
  Result<EchoResponse> echoed = co_await std::move(calling);
  co_await client->close();
  CO_TRY(echoed.status());
  if (echoed->text != "hello") co_return Status(StatusCode::kInternal, "echo mangled");
  co_return Status();
}

class Authentication : public ::testing::TestWithParam<std::string> {};

Task<void> right_token_case(RpcEnv* env) {
  AuthenticatedTransport transport(env->client_transport, token_of(kGoodSecret), test_options());
  auto connecting = RpcClient::connect(&transport, env->server_address, deadline_after(5s));
  Result<std::shared_ptr<RpcClient>> client = co_await std::move(connecting);
  EXPECT_TRUE(client.ok()) << client.status();
  if (!client.ok()) co_return;
  auto calling = (*client)->call<TestApi::echo>(EchoRequest{"hi"}, CallOptions{deadline_after(5s)});
  Result<EchoResponse> echoed = co_await std::move(calling);
  EXPECT_TRUE(echoed.ok()) << echoed.status();
  // One-sided transfers go through the wrapper's register_memory to the inner transport.
  std::vector<std::byte> memory = bulk_pattern(64 << 10, 3);
  Result<std::unique_ptr<MemoryRegion>> region = transport.register_memory(memory);
  EXPECT_TRUE(region.ok()) << region.status();
  if (region.ok()) {
    auto pulling = TestApi::Stub(client->get()).pull(BulkRequest{(*region)->remote(0, 4096), 0});
    Result<BulkResponse> pulled = co_await std::move(pulling);
    EXPECT_TRUE(pulled.ok()) << pulled.status();
    co_await (*region)->deregister(deadline_after(5s));
    region->reset();
  }
  co_await (*client)->close();
  EXPECT_EQ(transport.stats().connected, 1u);
  EXPECT_EQ(server_auth(env)->stats().accepted, 1u);
}

TEST_P(Authentication, RightTokenGetsCallsThrough) {
  auto harness = make_harness(GetParam());
  run_authenticated(harness.get(), right_token_case);
}

Counter& refused_metric() {
  return metrics().counter("net", "auth_handshakes_total",
                           "Cluster-token handshakes by side and result.",
                           {{"side", "server"}, {"result", "refused"}});
}

Task<void> wrong_token_case(RpcEnv* env) {
  uint64_t refused_before = refused_metric().value();
  AuthenticatedTransport transport(env->client_transport, token_of(kWrongSecret), test_options());
  auto connecting = RpcClient::connect(&transport, env->server_address, deadline_after(5s));
  Result<std::shared_ptr<RpcClient>> client = co_await std::move(connecting);
  EXPECT_FALSE(client.ok());
  if (client.ok()) {
    co_await (*client)->close();
    co_return;
  }
  EXPECT_EQ(client.status().code(), StatusCode::kUnauthenticated) << client.status();
  Status refused = client.status();
  std::string_view message = refused.message();
  EXPECT_TRUE(contains(message, "cluster token does not match")) << client.status();
  EXPECT_TRUE(contains(message, env->server_address.to_string())) << client.status();
  EXPECT_EQ(server_auth(env)->stats().refused, 1u);
  EXPECT_EQ(refused_metric().value(), refused_before + 1);
  // The server goes on serving a client with the right token.
  Status good = co_await echo_with(env, kGoodSecret);
  EXPECT_TRUE(good.ok()) << good;
}

TEST_P(Authentication, WrongTokenIsRefusedAndTheServerKeepsServing) {
  auto harness = make_harness(GetParam());
  run_authenticated(harness.get(), wrong_token_case);
}

Task<void> no_token_case(RpcEnv* env) {
  auto connecting =
      RpcClient::connect(env->client_transport, env->server_address, deadline_after(5s));
  Result<std::shared_ptr<RpcClient>> client = co_await std::move(connecting);
  EXPECT_TRUE(client.ok()) << client.status();  // the plain transport's connect succeeds
  if (!client.ok()) co_return;
  auto calling = (*client)->call<TestApi::echo>(EchoRequest{"x"}, CallOptions{deadline_after(5s)});
  Result<EchoResponse> echoed = co_await std::move(calling);
  EXPECT_FALSE(echoed.ok());
  EXPECT_TRUE(contains(echoed.status().message(), "requires the cluster token")) << echoed.status();
  co_await (*client)->close();
  TimePoint closed = Executor::current()->now();
  co_await wait_for_a_failed_handshake(env);
  // At once, not at the handshake deadline: its request (or its hanging up) ends it.
  EXPECT_LT(Executor::current()->now() - closed, kHandshakeTimeout / 2);
  EXPECT_EQ(env->server->connections(), 0u);
  const AuthStats& stats = server_auth(env)->stats();
  EXPECT_EQ(stats.accepted, 0u);
  EXPECT_EQ(stats.not_a_handshake + stats.failed, 1u);
  EXPECT_EQ(env->service->stats.finished, 0);
}

TEST_P(Authentication, ClientWithoutATokenFailsAndIsClosed) {
  auto harness = make_harness(GetParam());
  run_authenticated(harness.get(), no_token_case);
}

// Reads frames until the connection fails (TCP completes one-sided transfers in there).
Task<void> drain_frames(Connection* connection) {
  for (;;) {
    auto reading = connection->next_frame();
    Result<Frame> frame = co_await std::move(reading);
    if (!frame.ok()) co_return;
  }
}

Task<void> stranger_transfer_case(RpcEnv* env) {
  std::vector<std::byte> memory = bulk_pattern(4096, 7);
  Result<std::unique_ptr<MemoryRegion>> region = env->server_transport->register_memory(memory);
  EXPECT_TRUE(region.ok()) << region.status();
  if (!region.ok()) co_return;
  auto connecting = env->client_transport->connect(env->server_address, deadline_after(5s));
  Result<std::unique_ptr<Connection>> connection = co_await std::move(connecting);
  EXPECT_TRUE(connection.ok()) << connection.status();
  if (connection.ok()) {
    TaskScope reader;
    reader.spawn(drain_frames(connection->get()));
    // The region's right address and key, as if they had leaked: still nothing.
    std::vector<std::byte> stolen(4096);
    auto reading =
        (*connection)
            ->read_from((*region)->remote(0, 4096), stolen, deadline_after(kHandshakeTimeout / 2));
    Status read = co_await std::move(reading);
    EXPECT_FALSE(read.ok());
    EXPECT_NE(stolen, memory);
    co_await (*connection)->close();
    co_await reader.join();
  }
  // The server never took it for one of its own (on RDMA the refused READ may even break
  // the queue pair before the RDMA acceptor hands the connection on).
  EXPECT_EQ(server_auth(env)->stats().accepted, 0u);
  EXPECT_EQ(env->server->connections(), 0u);
  co_await (*region)->deregister(deadline_after(2s));
  region->reset();
}

TEST_P(Authentication, OneSidedRequestBeforeTheHandshakeReachesNothing) {
  auto harness = make_harness(GetParam());
  run_authenticated(harness.get(), stranger_transfer_case);
}

INSTANTIATE_TEST_SUITE_P(Transports, Authentication, ::testing::Values("tcp", "sim", "rdma"),
                         [](const auto& info) { return info.param; });

// ---- raw sockets as the peer (TCP on io_uring) ----

struct RawFrame {
  FrameHeader header;
  std::vector<std::byte> payload;
};

Task<Result<RawFrame>> read_raw_frame(Socket* socket, TimePoint deadline) {
  HeaderBytes head;
  auto reading = socket->recv_exact(head, IoOptions{deadline});
  CO_TRY(co_await std::move(reading));
  CO_TRY_ASSIGN(FrameHeader header, parse_header(head, 64 << 20));
  RawFrame frame{header, std::vector<std::byte>(header.payload_length)};
  auto rest = socket->recv_exact(frame.payload, IoOptions{deadline});
  CO_TRY(co_await std::move(rest));
  co_return frame;
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

std::vector<std::byte> request_frame() {
  FrameHeader header;
  header.kind = FrameKind::kRequest;
  header.service = TestApi::kId;
  header.method = TestApi::echo.kId;
  header.request_id = 1;
  std::vector<std::byte> payload = encode(EchoRequest{"no token"});
  HeaderBytes head = seal_frame(header, payload);
  std::vector<std::byte> bytes(head.begin(), head.end());
  bytes.insert(bytes.end(), payload.begin(), payload.end());
  return bytes;
}

// Runs body against an authenticated TCP server on io_uring, with the log in a file of
// its own (returned as lines).
std::vector<std::string> run_tcp_logged(RpcCase body) {
  mica::testing::TempDir dir(mica::testing::binary_dir() + "/test-tmp", "auth-log");
  LogConfig config;
  config.path = dir.path() + "/log.txt";
  EXPECT_TRUE(log_configure(config).ok());
  run_authenticated(make_tcp_harness().get(), body);
  EXPECT_TRUE(log_configure(LogConfig{}).ok());
  std::ifstream in(config.path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

Task<void> request_first_case(RpcEnv* env) {
  auto connecting = Socket::connect(env->server_address, IoOptions{deadline_after(2s)});
  Result<Socket> socket = co_await std::move(connecting);
  EXPECT_TRUE(socket.ok()) << socket.status();
  if (!socket.ok()) co_return;
  TimePoint start = Executor::current()->now();
  std::vector<std::byte> request = request_frame();
  auto sending = socket->send_all(request, IoOptions{deadline_after(2s)});
  Status sent = co_await std::move(sending);
  EXPECT_TRUE(sent.ok()) << sent;
  Status closed = co_await wait_for_close(&*socket, deadline_after(5s));
  EXPECT_TRUE(closed.ok()) << closed;
  // At once: long before the handshake deadline.
  EXPECT_LT(Executor::current()->now() - start, kHandshakeTimeout / 2);
  EXPECT_EQ(server_auth(env)->stats().not_a_handshake, 1u);
  EXPECT_EQ(env->server->connections(), 0u);
}

TEST(AuthenticationTcp, RequestBeforeTheHandshakeIsClosedAtOnceWithALogLine) {
  std::vector<std::string> lines = run_tcp_logged(request_first_case);
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& line) {
                            return contains(line, "not the cluster-token handshake");
                          }),
            1);
}

Task<void> silent_peer_case(RpcEnv* env) {
  auto connecting = Socket::connect(env->server_address, IoOptions{deadline_after(2s)});
  Result<Socket> silent = co_await std::move(connecting);
  EXPECT_TRUE(silent.ok()) << silent.status();
  if (!silent.ok()) co_return;
  TimePoint start = Executor::current()->now();
  // Another client is served while the silent one holds its handshake open.
  Status served = co_await echo_with(env, kGoodSecret);
  EXPECT_TRUE(served.ok()) << served;
  EXPECT_LT(Executor::current()->now() - start, kHandshakeTimeout / 2);
  Status closed = co_await wait_for_close(&*silent, deadline_after(5s));
  EXPECT_TRUE(closed.ok()) << closed;
  Duration closed_after = Executor::current()->now() - start;
  EXPECT_GE(closed_after, kHandshakeTimeout);
  EXPECT_LT(closed_after, kHandshakeTimeout + 1s);
  EXPECT_EQ(server_auth(env)->stats().failed, 1u);
  EXPECT_EQ(server_auth(env)->stats().accepted, 1u);
}

// Time cap: about 1 s (the handshake deadline).
TEST(AuthenticationTcp, SilentPeerIsClosedAtTheDeadlineWhileOthersAreServed) {
  std::vector<std::string> lines = run_tcp_logged(silent_peer_case);
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& line) {
                            return contains(line, "no cluster-token handshake within 1000 ms");
                          }),
            1);
}

Task<void> bulk_first_case(RpcEnv* env) {
  std::vector<std::byte> memory = bulk_pattern(4096, 7);
  Result<std::unique_ptr<MemoryRegion>> region = env->server_transport->register_memory(memory);
  EXPECT_TRUE(region.ok()) << region.status();
  if (!region.ok()) co_return;
  auto connecting = Socket::connect(env->server_address, IoOptions{deadline_after(2s)});
  Result<Socket> socket = co_await std::move(connecting);
  EXPECT_TRUE(socket.ok()) << socket.status();
  if (socket.ok()) {
    // A read request naming the region with its right key, as if the key had leaked.
    BulkMessage message{1 /* kReadRequest */, 1, (*region)->remote(0, 4096), Status()};
    std::vector<std::byte> descriptor = encode(message);
    FrameHeader header;
    header.kind = FrameKind::kData;
    HeaderBytes head = seal_bulk_frame(header, descriptor, 0);
    std::vector<std::byte> bytes(head.begin(), head.end());
    bytes.insert(bytes.end(), descriptor.begin(), descriptor.end());
    auto sending = socket->send_all(bytes, IoOptions{deadline_after(2s)});
    Status sent = co_await std::move(sending);
    EXPECT_TRUE(sent.ok()) << sent;
    auto challenging = read_raw_frame(&*socket, deadline_after(2s));
    Result<RawFrame> challenge = co_await std::move(challenging);
    EXPECT_TRUE(challenge.ok() && challenge->header.kind == FrameKind::kAuth);
    // Then the end of the connection, not the region's bytes.
    auto replying = read_raw_frame(&*socket, deadline_after(2s));
    Result<RawFrame> reply = co_await std::move(replying);
    EXPECT_FALSE(reply.ok()) << "kind " << int(reply->header.kind);
    if (!reply.ok()) {
      EXPECT_NE(reply.status().code(), StatusCode::kTimedOut) << reply.status();
    }
  }
  co_await (*region)->deregister(deadline_after(2s));
  region->reset();
  EXPECT_EQ(server_auth(env)->stats().failed, 1u);
}

TEST(AuthenticationTcp, OneSidedRequestBeforeTheHandshakeIsRefused) {
  run_authenticated(make_tcp_harness().get(), bulk_first_case);
}

// ---- a recording proxy between a good client and the server ----

struct Recording {
  std::vector<std::byte> client_to_server;
  std::vector<std::byte> server_to_client;
};

Task<void> pump(Socket* from, Socket* to, std::vector<std::byte>* record) {
  std::vector<std::byte> buffer(4096);
  for (;;) {
    Result<size_t> n = co_await from->recv(buffer, IoOptions{deadline_after(10s)});
    if (!n.ok() || *n == 0) break;
    record->insert(record->end(), buffer.begin(), buffer.begin() + long(*n));
    auto sending = to->send_all(std::span(buffer).first(*n), IoOptions{deadline_after(10s)});
    Status sent = co_await std::move(sending);
    if (!sent.ok()) break;
  }
  Status down = co_await to->shutdown(SHUT_WR);
  (void)down;  // the other side may be gone already
}

Task<void> proxy_one(Listener* listener, SocketAddress server, Recording* recording) {
  auto accepting = listener->accept(IoOptions{deadline_after(5s)});
  Result<Socket> client = co_await std::move(accepting);
  auto connecting = Socket::connect(server, IoOptions{deadline_after(5s)});
  Result<Socket> upstream = co_await std::move(connecting);
  EXPECT_TRUE(client.ok() && upstream.ok());
  if (!client.ok() || !upstream.ok()) co_return;
  TaskScope scope;
  scope.spawn(pump(&*client, &*upstream, &recording->client_to_server));
  scope.spawn(pump(&*upstream, &*client, &recording->server_to_client));
  co_await scope.join();
}

// A good client's handshake and one call, through the proxy.
Task<void> record_good_client(RpcEnv* env, Recording* recording) {
  Result<Listener> listener = Listener::listen(SocketAddress::loopback(0));
  EXPECT_TRUE(listener.ok()) << listener.status();
  if (!listener.ok()) co_return;
  TaskScope scope;
  scope.spawn(proxy_one(&*listener, env->server_address, recording));
  RpcEnv through_proxy = *env;
  through_proxy.server_address = listener->address();
  Status served = co_await echo_with(&through_proxy, kGoodSecret);
  EXPECT_TRUE(served.ok()) << served;
  co_await scope.join();
  co_await listener->close();
}

bool holds(const std::vector<std::byte>& haystack, std::string_view needle) {
  auto bytes = std::as_bytes(std::span(needle.data(), needle.size()));
  return std::search(haystack.begin(), haystack.end(), bytes.begin(), bytes.end()) !=
         haystack.end();
}

Task<void> secret_on_wire_case(RpcEnv* env) {
  Recording recording;
  co_await record_good_client(env, &recording);
  EXPECT_GT(recording.client_to_server.size(), kFrameHeaderBytes);
  EXPECT_TRUE(holds(recording.client_to_server, "hello"));  // the capture works
  EXPECT_FALSE(holds(recording.client_to_server, kGoodSecret));
  EXPECT_FALSE(holds(recording.server_to_client, kGoodSecret));
}

TEST(AuthenticationTcp, TheSecretNeverCrossesTheWire) {
  run_authenticated(make_tcp_harness().get(), secret_on_wire_case);
}

Task<void> replay_case(RpcEnv* env) {
  Recording recording;
  co_await record_good_client(env, &recording);
  // The good client's first frame is its answer to the challenge of that connection.
  std::vector<std::byte>& sent = recording.client_to_server;
  EXPECT_GE(sent.size(), kFrameHeaderBytes);
  if (sent.size() < kFrameHeaderBytes) co_return;
  Result<FrameHeader> first = parse_header(std::span(sent).first<kFrameHeaderBytes>(), 1 << 20);
  EXPECT_TRUE(first.ok() && first->kind == FrameKind::kAuth);
  if (!first.ok()) co_return;
  std::vector<std::byte> answer(sent.begin(),
                                sent.begin() + long(kFrameHeaderBytes + first->payload_length));
  // Replayed on a new connection, which was challenged with a new nonce: refused.
  auto connecting = Socket::connect(env->server_address, IoOptions{deadline_after(2s)});
  Result<Socket> socket = co_await std::move(connecting);
  EXPECT_TRUE(socket.ok()) << socket.status();
  if (!socket.ok()) co_return;
  auto challenging = read_raw_frame(&*socket, deadline_after(2s));
  Result<RawFrame> challenge = co_await std::move(challenging);
  EXPECT_TRUE(challenge.ok() && challenge->header.kind == FrameKind::kAuth);
  auto replaying = socket->send_all(answer, IoOptions{deadline_after(2s)});
  Status replayed = co_await std::move(replaying);
  EXPECT_TRUE(replayed.ok()) << replayed;
  auto reading = read_raw_frame(&*socket, deadline_after(2s));
  Result<RawFrame> refusal = co_await std::move(reading);
  EXPECT_TRUE(refusal.ok()) << refusal.status();
  if (!refusal.ok()) co_return;
  EXPECT_EQ(refusal->header.kind, FrameKind::kAuth);
  EXPECT_EQ(refusal->header.status, uint16_t(StatusCode::kUnauthenticated));
  std::string why(reinterpret_cast<const char*>(refusal->payload.data()), refusal->payload.size());
  EXPECT_EQ(why, "cluster token does not match");
  Status closed = co_await wait_for_close(&*socket, deadline_after(3s));
  EXPECT_TRUE(closed.ok()) << closed;
  EXPECT_EQ(server_auth(env)->stats().accepted, 1u);  // the recorded connection
  EXPECT_EQ(server_auth(env)->stats().refused, 1u);   // the replay
}

// Time cap: about 1 s (the server waits that long for a refused peer to hang up).
TEST(AuthenticationTcp, ReplayedHandshakeAnswerIsRefused) {
  run_authenticated(make_tcp_harness().get(), replay_case);
}

}  // namespace
}  // namespace mica::net::testing
