// Workloads shared by the simulator's network and host tests (sim_net_test.cc,
// sim_host_test.cc): an echo server and client, a fixture that checks for leaked frames
// and prints the seed, and small socket steps as named coroutines (no capturing lambda
// coroutines). Everything runs on a simulated host's executor and may suspend.
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "async/file.h"
#include "async/sim/world.h"
#include "async/socket.h"
#include "async/sync.h"

namespace mica::sim_testing {

using namespace mica::sim;
using namespace std::chrono_literals;

inline constexpr uint64_t kDefaultSeed = 20240601;
inline constexpr uint16_t kPort = 7000;

// Seeds a sweep runs: MICA_SIM_SEEDS from the environment, else `fallback`.
inline uint64_t sweep_seeds(uint64_t fallback) {
  const char* text = std::getenv("MICA_SIM_SEEDS");
  if (text == nullptr || *text == '\0') return fallback;
  return std::strtoull(text, nullptr, 0);
}

class SimFixture : public ::testing::Test {
 protected:
  void SetUp() override { frames_before_ = live_frames(); }
  void TearDown() override {
    EXPECT_EQ(live_frames(), frames_before_) << "coroutine frames leaked";
    if (HasFailure())
      std::printf("simulation seed=%llu (replay: MICA_SIM_SEED=%llu)\n",
                  static_cast<unsigned long long>(seed_), static_cast<unsigned long long>(seed_));
  }
  const uint64_t seed_ = sim::sim_seed(kDefaultSeed);
  int64_t frames_before_ = 0;
};

inline std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

inline Task<Status> sleep_task(Duration d) {
  SleepAwaiter nap = sleep_for(d);
  co_return co_await nap;
}

// Accepts `connections` connections one after another and echoes each until its peer
// shuts down.
inline Task<void> echo_server(int connections) {
  SocketAddress address = SocketAddress::loopback(kPort);
  Result<Listener> listener = Listener::listen(address);
  MICA_ASSERT(listener.ok());
  for (int i = 0; i < connections; ++i) {
    Task<Result<Socket>> accepting = listener->accept();
    Result<Socket> socket = co_await std::move(accepting);
    if (!socket.ok()) break;
    std::vector<std::byte> buffer(4096);
    std::span<std::byte> span(buffer);
    for (;;) {
      Result<size_t> n = co_await socket->recv(span);
      if (!n.ok() || *n == 0) break;
      Task<Status> sending = socket->send_all(span.first(*n));
      if (!(co_await std::move(sending)).ok()) break;
    }
    (void)co_await socket->close();
  }
  Task<void> closing = listener->close();
  co_await std::move(closing);
}

// Sends message, reads the same number of bytes back, returns them.
inline Task<Result<std::string>> echo_client(SocketAddress server, std::string message,
                                             IoOptions options) {
  Task<Result<Socket>> connecting = Socket::connect(server, options);
  CO_TRY_ASSIGN(Socket socket, co_await std::move(connecting));
  Task<Status> sending = socket.send_all(bytes_of(message), options);
  CO_TRY(co_await std::move(sending));
  std::string reply(message.size(), '\0');
  std::span<std::byte> span = std::as_writable_bytes(std::span(reply.data(), reply.size()));
  Task<Status> receiving = socket.recv_exact(span, options);
  CO_TRY(co_await std::move(receiving));
  CO_TRY(co_await socket.shutdown(SHUT_WR));
  CO_TRY(co_await socket.close());
  co_return reply;
}

// Accepts one connection into *out (the listener is closed afterwards).
inline Task<Status> accept_one(Socket* out) {
  SocketAddress address = SocketAddress::loopback(kPort);
  Result<Listener> listener = Listener::listen(address);
  MICA_ASSERT(listener.ok());
  Task<Result<Socket>> accepting = listener->accept();
  Result<Socket> socket = co_await std::move(accepting);
  Task<void> closing = listener->close();
  co_await std::move(closing);
  CO_TRY(socket.status());
  *out = std::move(*socket);
  co_return Status();
}

inline Task<Status> connect_to(SimHost* server, Socket* out) {
  Task<Result<Socket>> connecting = Socket::connect(server->address(kPort), {});
  CO_TRY_ASSIGN(*out, co_await std::move(connecting));
  co_return Status();
}

inline Task<Status> send_text(Socket* socket, std::string text, Duration timeout) {
  IoOptions options{.deadline = deadline_after(timeout)};
  Task<Status> sending = socket->send_all(bytes_of(text), options);
  co_return co_await std::move(sending);
}

// Receives exactly `length` bytes within timeout.
inline Task<Result<std::string>> recv_text(Socket* socket, size_t length, Duration timeout) {
  std::string text(length, '\0');
  std::span<std::byte> span = std::as_writable_bytes(std::span(text.data(), text.size()));
  IoOptions options{.deadline = deadline_after(timeout)};
  Task<Status> receiving = socket->recv_exact(span, options);
  CO_TRY(co_await std::move(receiving));
  co_return text;
}

inline Task<void> close_socket(Socket* socket) {
  (void)co_await socket->close();
}

inline Task<void> report(Task<Status> body, Status* out) {
  *out = co_await std::move(body);
}

}  // namespace mica::sim_testing
