// Test helpers for the RDMA transport on the fake verbs provider: a connected pair of
// transports and connections (two fake devices are two hosts, joined through the TCP
// handshake on 127.0.0.1), small configs and payload patterns. Test-only; the coroutines
// run on the test's executor and suspend.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "async/scope.h"
#include "net/rdma/rdma_connection.h"
#include "net/rdma/rdma_transport.h"

namespace mica::net::rdma_test {

struct Pair {
  std::unique_ptr<Transport> server_transport;
  std::unique_ptr<Transport> client_transport;
  std::unique_ptr<Acceptor> acceptor;
  std::unique_ptr<Connection> server;
  std::unique_ptr<Connection> client;
};

inline Task<void> accept_into(Acceptor* acceptor, std::unique_ptr<Connection>* out) {
  Result<std::unique_ptr<Connection>> r = co_await acceptor->accept();
  EXPECT_TRUE(r.ok()) << r.status();
  if (r.ok()) *out = std::move(r).value();
}

// Connects a client on device b to a server on device a.
inline Task<bool> connect_pair(Pair* p, ibv_context* a, ibv_context* b, RdmaConfig config) {
  auto server = make_rdma_transport(a, config);
  auto client = make_rdma_transport(b, config);
  EXPECT_TRUE(server.ok() && client.ok());
  if (!server.ok() || !client.ok()) co_return false;
  p->server_transport = std::move(server).value();
  p->client_transport = std::move(client).value();
  auto acceptor = p->server_transport->listen(SocketAddress::loopback(0));
  EXPECT_TRUE(acceptor.ok());
  if (!acceptor.ok()) co_return false;
  p->acceptor = std::move(acceptor).value();
  TaskScope scope;
  scope.spawn(accept_into(p->acceptor.get(), &p->server));
  auto connecting = p->client_transport->connect(p->acceptor->address(), kNoDeadline);
  Result<std::unique_ptr<Connection>> c = co_await std::move(connecting);
  // A client that failed leaves the acceptor waiting for the next one: stop it.
  if (!c.ok()) co_await p->acceptor->close();
  co_await scope.join();
  EXPECT_TRUE(c.ok()) << c.status();
  if (c.ok()) p->client = std::move(c).value();
  co_return c.ok() && p->server != nullptr;
}

inline Task<void> close_pair(Pair* p) {
  if (p->client) co_await p->client->close();
  if (p->server) co_await p->server->close();
  if (p->acceptor) co_await p->acceptor->close();  // idempotent
  p->client.reset();
  p->server.reset();
  p->acceptor.reset();
}

inline FrameHeader request(uint64_t id) {
  FrameHeader h;
  h.kind = FrameKind::kRequest;
  h.service = 3;
  h.method = 4;
  h.request_id = id;
  return h;
}

inline std::vector<std::byte> pattern(size_t n, uint32_t seed) {
  std::vector<std::byte> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1103515245u + 12345u;
    b = std::byte(x >> 24);
  }
  return v;
}

inline Status status_of(Connection* c) {
  return static_cast<RdmaConnection*>(c)->status();
}

// Small rings and pieces so every test crosses slot, WR and bounce-buffer boundaries.
inline RdmaConfig small_config() {
  RdmaConfig c;
  c.slot_bytes = 256;
  c.send_slots_max = 3;
  c.recv_slots_max = 4;
  c.ack_recv_slots_max = 3;
  c.credit_batch_max = 2;
  c.send_signal_batch_max = 2;
  c.frames_queued_max = 4;
  c.frame_bytes_max = 1 << 20;
  c.bulk_wrs_in_flight_max = 8;
  c.bulk_wrs_per_post_max = 4;
  c.bulk_wr_bytes_max = 4096;
  c.bounce_buffers_max = 1;
  c.bounce_buffer_bytes = 8192;
  return c;
}

}  // namespace mica::net::rdma_test
