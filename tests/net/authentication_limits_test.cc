// What a peer without the cluster token can cost an authenticated transport
// (net/authenticated_transport.h): before the handshake has succeeded, a frame larger than
// the handshake's frames is refused on its header, so it reserves no receive budget and
// ends its connection at once — on the server (TCP over io_uring, TCP on the simulator,
// RDMA on the fake verbs provider) and on the client (a raw-socket server); and the
// refusal text of a server reaches the client's Status only truncated and escaped.
#include <gtest/gtest.h>

#include <cstring>

#include "async/socket.h"
#include "net/authenticated_transport.h"
#include "net/tcp_transport.h"
#include "rpc_harness.h"

namespace mica::net::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kSecret = "the-cluster-secret-of-this-test-0123";
// Short, so a test that regresses to waiting for the deadline stays quick.
constexpr Duration kHandshakeTimeout = 1s;
// Larger than any handshake frame by far, small enough for every transport's limits.
constexpr size_t kLargePayloadBytes = 64 << 10;
// The handshake frames' limit (authenticated_transport.cc): what a stranger may reserve.
constexpr uint64_t kHandshakeFrameBytesMax = 256;
// The steps of the handshake, as FrameHeader::method of kAuth frames.
constexpr uint16_t kChallengeStep = 1;
constexpr uint16_t kAnswerStep = 2;
constexpr uint16_t kRefusedStep = 4;

ClusterToken token() {
  Result<ClusterToken> token = ClusterToken::from_secret(std::string(kSecret));
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
    return std::make_unique<AuthenticatedTransport>(inner, token(), test_options());
  });
  harness->run(body, RpcServerOptions{});
}

FrameHeader auth_header(uint16_t step, StatusCode status = StatusCode::kOk) {
  FrameHeader header;
  header.kind = FrameKind::kAuth;
  header.method = step;
  header.status = static_cast<uint16_t>(status);
  return header;
}

std::vector<std::byte> frame_bytes(FrameHeader header, std::span<const std::byte> payload) {
  HeaderBytes head = seal_frame(header, payload);
  // Sized once and copied into: g++ 12 -O2 warns falsely (-Warray-bounds) on inserting a
  // constant-propagated empty payload at the end.
  std::vector<std::byte> bytes(head.size() + payload.size());
  std::copy(head.begin(), head.end(), bytes.begin());
  std::copy(payload.begin(), payload.end(), bytes.begin() + std::ptrdiff_t(head.size()));
  return bytes;
}

Task<Status> echo(RpcEnv* env) {
  AuthenticatedTransport transport(env->client_transport, token(), test_options());
  auto connecting = RpcClient::connect(&transport, env->server_address, deadline_after(5s));
  CO_TRY_ASSIGN(std::shared_ptr<RpcClient> client, co_await std::move(connecting));
  auto calling = client->call<TestApi::echo>(EchoRequest{"hello"}, CallOptions{deadline_after(5s)});
  Result<EchoResponse> echoed = co_await std::move(calling);
  co_await client->close();
  co_return echoed.status();
}

// The payload-budget high-water mark of a TCP transport (io_uring or simulator); RDMA
// keeps its budgets in the device, which the stats below stand for.
uint64_t reserved_max(Transport* transport) {
  if (transport->name() != "tcp") return 0;
  return static_cast<TcpTransport*>(transport)->payload_budget()->reserved_max();
}

// ---- the server holds a stranger to the handshake's frame size ----

class AuthenticationLimits : public ::testing::TestWithParam<std::string> {};

Task<void> large_answer_case(RpcEnv* env) {
  // The inner transport: no handshake on our side, we play the stranger.
  auto connecting = env->client_transport->connect(env->server_address, deadline_after(5s));
  Result<std::unique_ptr<Connection>> connection = co_await std::move(connecting);
  EXPECT_TRUE(connection.ok()) << connection.status();
  if (!connection.ok()) co_return;
  TimePoint start = Executor::current()->now();
  auto challenging = (*connection)->next_frame();
  Result<Frame> challenge = co_await std::move(challenging);
  EXPECT_TRUE(challenge.ok()) << challenge.status();
  // An "answer" far larger than any: refused on its header, not decoded and refused.
  std::vector<std::byte> large(kLargePayloadBytes, std::byte{0x5a});
  auto sending = (*connection)->send(auth_header(kAnswerStep), large);
  Status sent = co_await std::move(sending);
  (void)sent;  // the server may already have closed
  auto replying = (*connection)->next_frame();
  Result<Frame> reply = co_await std::move(replying);
  EXPECT_FALSE(reply.ok()) << "a frame of kind " << int(reply->header.kind);
  EXPECT_LT(Executor::current()->now() - start, kHandshakeTimeout / 2);
  co_await (*connection)->close();
  const AuthStats& stats = server_auth(env)->stats();
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.refused, 0u);
  EXPECT_LE(reserved_max(server_auth(env)->inner()), kHandshakeFrameBytesMax);
  // And the server serves the next client as ever.
  Status served = co_await echo(env);
  EXPECT_TRUE(served.ok()) << served;
  EXPECT_EQ(stats.accepted, 1u);
}

TEST_P(AuthenticationLimits, LargeFrameBeforeTheHandshakeIsRefusedOnItsHeader) {
  auto harness = make_harness(GetParam());
  run_authenticated(harness.get(), large_answer_case);
}

INSTANTIATE_TEST_SUITE_P(Transports, AuthenticationLimits, ::testing::Values("tcp", "sim", "rdma"),
                         [](const auto& info) { return info.param; });

// A raw socket announces 64 MiB in a kAuth header as its first frame and sends part of it.
Task<void> announced_64_mib_case(RpcEnv* env) {
  auto connecting = Socket::connect(env->server_address, IoOptions{deadline_after(2s)});
  Result<Socket> socket = co_await std::move(connecting);
  EXPECT_TRUE(socket.ok()) << socket.status();
  if (!socket.ok()) co_return;
  TimePoint start = Executor::current()->now();
  FrameHeader header = auth_header(kAnswerStep);
  header.payload_length = (64u << 20) - uint32_t(kFrameHeaderBytes);
  HeaderBytes head;
  std::memcpy(head.data(), &header, sizeof header);  // the CRC is checked only at the end
  auto announcing = socket->send_all(head, IoOptions{deadline_after(2s)});
  Status announced = co_await std::move(announcing);
  EXPECT_TRUE(announced.ok()) << announced;
  std::vector<std::byte> part(1 << 20, std::byte{0x5a});
  auto sending = socket->send_all(part, IoOptions{deadline_after(2s)});
  Status sent = co_await std::move(sending);
  (void)sent;  // the server may already have closed: the point of the test
  std::byte sink[4096];
  for (;;) {  // the challenge, then the end of the stream (or a reset)
    Result<size_t> n = co_await socket->recv(sink, IoOptions{deadline_after(5s)});
    EXPECT_TRUE(n.ok() || n.status().code() == StatusCode::kConnectionReset) << n.status();
    if (!n.ok() || *n == 0) break;
  }
  EXPECT_LT(Executor::current()->now() - start, kHandshakeTimeout / 2);
  EXPECT_LE(reserved_max(server_auth(env)->inner()), kHandshakeFrameBytesMax);
  EXPECT_EQ(server_auth(env)->stats().failed, 1u);
  Status served = co_await echo(env);
  EXPECT_TRUE(served.ok()) << served;
}

TEST(AuthenticationLimitsTcp, AnnouncedSixtyFourMebibytesClosesAtOnceAndReservesNothing) {
  run_authenticated(make_tcp_harness().get(), announced_64_mib_case);
}

// ---- the client, against a raw-socket server ----

struct Challenge {
  uint8_t scheme = 1;
  std::vector<std::byte> nonce = std::vector<std::byte>(32, std::byte{7});
  MICA_FIELDS(Challenge, scheme, nonce)
};

// Serves one connection: `first` (raw bytes), then, once the client's answer is in,
// `second`; then waits for the client to hang up.
Task<void> raw_server(Listener* listener, std::vector<std::byte> first,
                      std::vector<std::byte> second) {
  auto accepting = listener->accept(IoOptions{deadline_after(5s)});
  Result<Socket> socket = co_await std::move(accepting);
  EXPECT_TRUE(socket.ok()) << socket.status();
  if (!socket.ok()) co_return;
  auto sending = socket->send_all(first, IoOptions{deadline_after(2s)});
  Status sent = co_await std::move(sending);
  (void)sent;  // the client may already have closed
  std::byte sink[4096];
  for (bool answered = false;;) {
    Result<size_t> n = co_await socket->recv(sink, IoOptions{deadline_after(5s)});
    if (!n.ok() || *n == 0) break;
    if (answered || second.empty()) continue;
    answered = true;  // the answer fits one segment on loopback
    auto replying = socket->send_all(second, IoOptions{deadline_after(2s)});
    Status replied = co_await std::move(replying);
    (void)replied;
  }
}

// Connects an authenticated client to a raw server that sends `first`, then `second`.
Task<Status> connect_to_raw(RpcEnv* env, std::vector<std::byte> first,
                            std::vector<std::byte> second) {
  Result<Listener> listener = Listener::listen(SocketAddress::loopback(0));
  CO_TRY(listener.status());
  TaskScope scope;
  scope.spawn(raw_server(&*listener, std::move(first), std::move(second)));
  AuthenticatedTransport transport(env->client_transport, token(), test_options());
  auto connecting = transport.connect(listener->address(), deadline_after(5s));
  Result<std::unique_ptr<Connection>> connection = co_await std::move(connecting);
  if (connection.ok()) co_await (*connection)->close();
  co_await scope.join();
  co_await listener->close();
  co_return connection.status();
}

Task<void> client_large_challenge_case(RpcEnv* env) {
  FrameHeader header = auth_header(kChallengeStep);
  header.payload_length = (64u << 20) - uint32_t(kFrameHeaderBytes);
  HeaderBytes head;
  std::memcpy(head.data(), &header, sizeof header);
  std::vector<std::byte> first(head.begin(), head.end());
  first.resize(first.size() + (1 << 20), std::byte{0x5a});  // part of the announced payload
  TimePoint start = Executor::current()->now();
  auto connecting = connect_to_raw(env, std::move(first), std::vector<std::byte>());
  Status connected = co_await std::move(connecting);
  EXPECT_EQ(connected.code(), StatusCode::kProtocolError) << connected;
  EXPECT_LT(Executor::current()->now() - start, kHandshakeTimeout / 2);
  EXPECT_LE(reserved_max(env->client_transport), kHandshakeFrameBytesMax);
}

TEST(AuthenticationLimitsTcp, ClientRefusesALargeChallengeOnItsHeader) {
  run_authenticated(make_tcp_harness().get(), client_large_challenge_case);
}

Task<void> hostile_refusal_case(RpcEnv* env) {
  std::vector<std::byte> challenge = encode(Challenge{});
  // A forged log line, control bytes and more text than a Status should carry (but a
  // frame within the handshake's limit).
  const std::string prefix = "no\n2026-01-01 [E] forged line\x1b[31m\\";
  const size_t kept = 200 - prefix.size();  // of the x's, within the first 200 bytes
  std::string reason = prefix + std::string(kept + 5, 'x');
  auto text = std::as_bytes(std::span(reason.data(), reason.size()));
  MICA_ASSERT(text.size() + kFrameHeaderBytes <= kHandshakeFrameBytesMax);
  std::vector<std::byte> first = frame_bytes(auth_header(kChallengeStep), challenge);
  std::vector<std::byte> second =
      frame_bytes(auth_header(kRefusedStep, StatusCode::kUnauthenticated), text);
  auto connecting = connect_to_raw(env, std::move(first), std::move(second));
  Status connected = co_await std::move(connecting);
  EXPECT_EQ(connected.code(), StatusCode::kUnauthenticated) << connected;
  std::string message(connected.message());
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_EQ(message.find('\x1b'), std::string::npos) << message;
  EXPECT_NE(message.find("no\\x0a2026-01-01 [E] forged line\\x1b[31m\\x5c"), std::string::npos)
      << message;
  // Cut after 200 bytes of the reason, and said so.
  EXPECT_NE(message.find(std::string(kept, 'x') + "..."), std::string::npos) << message;
  EXPECT_EQ(message.find(std::string(kept + 1, 'x')), std::string::npos) << message;
}

TEST(AuthenticationLimitsTcp, ServerRefusalReasonIsTruncatedAndEscaped) {
  run_authenticated(make_tcp_harness().get(), hostile_refusal_case);
}

}  // namespace
}  // namespace mica::net::testing
