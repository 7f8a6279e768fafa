// Bad input on the wire: malformed frames close only the connection that sent them, and a
// server process killed mid-call fails its callers within their deadline.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "async/socket.h"
#include "net/tcp_transport.h"
#include "rpc_harness.h"

namespace mica::net::testing {
namespace {

using namespace std::chrono_literals;

std::vector<std::byte> frame_bytes(FrameHeader header, std::span<const std::byte> payload) {
  HeaderBytes head = seal_frame(header, payload);
  // Sized once and filled by copy: growing the vector with insert() makes g++ 12 -O2 warn
  // (-Warray-bounds) about the reallocation path it inlines, though it never runs out of
  // bounds.
  std::vector<std::byte> bytes(head.size() + payload.size());
  std::copy(head.begin(), head.end(), bytes.begin());
  std::copy(payload.begin(), payload.end(), bytes.begin() + std::ptrdiff_t(head.size()));
  return bytes;
}

std::vector<std::byte> echo_frame(std::string text) {
  FrameHeader header;
  header.kind = FrameKind::kRequest;
  header.service = TestApi::kId;
  header.method = TestApi::echo.kId;
  header.request_id = 1;
  return frame_bytes(header, encode(EchoRequest{std::move(text)}));
}

// Sends `bytes` on a raw connection and expects the server to close it.
Task<void> send_and_expect_close(SocketAddress server, std::vector<std::byte> bytes,
                                 bool half_close) {
  auto connecting = Socket::connect(server, IoOptions{deadline_after(2s)});
  Result<Socket> raw = co_await std::move(connecting);
  EXPECT_TRUE(raw.ok());
  if (!raw.ok()) co_return;
  auto sending = raw->send_all(bytes);
  Status sent = co_await std::move(sending);
  (void)sent;  // the server may already have hung up
  if (half_close) {
    Status down = co_await raw->shutdown(SHUT_WR);
    (void)down;
  }
  std::byte sink[256];
  for (;;) {
    Result<size_t> n = co_await raw->recv(sink, IoOptions{deadline_after(2s)});
    if (!n.ok()) {
      EXPECT_EQ(n.status().code(), StatusCode::kConnectionReset) << n.status();
      break;
    }
    if (*n == 0) break;  // closed by the server: what we want
  }
}

Task<void> bad_frames_case(RpcEnv* env) {
  auto connecting =
      RpcClient::connect(env->client_transport, env->server_address, deadline_after(2s));
  Result<std::shared_ptr<RpcClient>> good = co_await std::move(connecting);
  EXPECT_TRUE(good.ok());
  if (!good.ok()) co_return;

  std::vector<std::vector<std::byte>> attacks;
  std::vector<std::byte> garbage(500);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = std::byte((i * 97 + 13) & 0xff);
  attacks.push_back(garbage);
  std::vector<std::byte> truncated = echo_frame("cut short");
  truncated.resize(truncated.size() - 5);
  attacks.push_back(truncated);
  std::vector<std::byte> corrupt = echo_frame("flipped");
  corrupt.back() ^= std::byte{0x40};
  attacks.push_back(corrupt);
  FrameHeader huge;
  huge.kind = FrameKind::kRequest;
  HeaderBytes head = seal_frame(huge, {});
  FrameHeader patched;
  std::memcpy(&patched, head.data(), sizeof patched);
  patched.payload_length = 1u << 31;  // beyond the 64 MiB limit: refused before reading
  std::vector<std::byte> oversized(sizeof patched);
  std::memcpy(oversized.data(), &patched, sizeof patched);
  attacks.push_back(oversized);

  for (size_t i = 0; i < attacks.size(); ++i) {
    auto attack = send_and_expect_close(env->server_address, attacks[i], i == 1);
    co_await std::move(attack);
    // The well-behaved client is still served after each attack.
    auto call =
        TestApi::Stub(good->get()).echo(EchoRequest{"fine"}, CallOptions{deadline_after(2s)});
    Result<EchoResponse> r = co_await std::move(call);
    EXPECT_TRUE(r.ok()) << "after attack " << i << ": " << r.status();
  }
  co_await (*good)->close();
}

TEST(BadInput, MalformedFramesCloseOnlyTheirConnection) {
  make_tcp_harness()->run(bad_frames_case, {});
}

// ---- a killed server process ----

Task<void> serve_forever(int ready_fd) {
  TcpTransport transport;
  TestService service;
  RpcServer server(&transport);
  server.add_service(&service.service());
  Result<SocketAddress> address = server.start(SocketAddress::loopback(0));
  uint16_t port = address.ok() ? address->port() : 0;
  MICA_ASSERT(write(ready_fd, &port, sizeof port) == sizeof port);
  Event never;
  Status s = co_await never.wait();
  (void)s;
}

Task<Status> call_slow(SocketAddress address, pid_t child) {
  TcpTransport transport;
  auto connecting = RpcClient::connect(&transport, address, deadline_after(2s));
  Result<std::shared_ptr<RpcClient>> client = co_await std::move(connecting);
  EXPECT_TRUE(client.ok());
  if (!client.ok()) co_return client.status();
  auto call =
      TestApi::Stub(client->get()).sleep(SleepRequest{60'000}, CallOptions{deadline_after(10s)});
  Status slept = co_await sleep_for(100ms);
  EXPECT_TRUE(slept.ok());
  kill(child, SIGKILL);
  Result<Empty> r = co_await std::move(call);
  co_await (*client)->close();
  co_return r.status();
}

TEST(BadInput, KilledServerFailsCallersWithinTheirDeadline) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[0]);
    auto executor = Executor::create_uring();
    executor->block_on(serve_forever(pipe_fds[1]));
    _exit(0);
  }
  close(pipe_fds[1]);
  uint16_t port = 0;
  ASSERT_EQ(read(pipe_fds[0], &port, sizeof port), ssize_t(sizeof port));
  close(pipe_fds[0]);
  ASSERT_NE(port, 0);
  auto executor = Executor::create_uring();
  auto start = std::chrono::steady_clock::now();
  Status s = executor->block_on(call_slow(SocketAddress::loopback(port), child));
  auto elapsed = std::chrono::steady_clock::now() - start;
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_EQ(s.code(), StatusCode::kConnectionReset) << s;
  EXPECT_LT(elapsed, 5s);  // well before the 10 s deadline: the dead peer was noticed
}

}  // namespace
}  // namespace mica::net::testing
