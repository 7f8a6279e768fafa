// Registered memory against the peer (TCP, on io_uring and on the simulator): a region that
// a peer's transfer is writing into or reading from is pinned, deregister() waits for the
// transfer or fails it at its deadline, and only then may the memory be freed; region keys
// come from the runtime's random source. The peer is a raw socket speaking the kData wire
// format, so a test can stop it halfway through a transfer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "async/scope.h"
#include "async/sim/world.h"
#include "async/socket.h"
#include "net/tcp_connection.h"
#include "net/tcp_transport.h"

namespace mica::net::testing {
namespace {

using namespace std::chrono_literals;

// Wire values of BulkOp (net/tcp_connection.cc).
constexpr uint8_t kReadRequest = 1, kReadReply = 2, kWriteRequest = 3, kWriteAck = 4;

std::vector<std::byte> pattern(size_t n, uint8_t seed) {
  std::vector<std::byte> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = std::byte((i * 7 + seed) & 0xff);
  return data;
}

// Header and descriptor of a kData request for `remote`, with `tail` bulk bytes to follow.
std::vector<std::byte> bulk_head(uint8_t op, RemoteBuffer remote, size_t tail) {
  std::vector<std::byte> descriptor = encode(BulkMessage{op, 1, remote, Status()});
  FrameHeader header;
  header.kind = FrameKind::kData;
  HeaderBytes head = seal_bulk_frame(header, descriptor, tail);
  std::vector<std::byte> bytes(head.size() + descriptor.size());
  std::memcpy(bytes.data(), head.data(), head.size());
  std::memcpy(bytes.data() + head.size(), descriptor.data(), descriptor.size());
  return bytes;
}

// Reads one kData reply on the raw peer: its descriptor, and its bulk bytes into `tail`
// (which must have the announced size).
Task<Result<BulkMessage>> read_reply(Socket* peer, std::vector<std::byte>* tail) {
  HeaderBytes head;
  auto reading = peer->recv_exact(head, IoOptions{deadline_after(5s)});
  CO_TRY(co_await std::move(reading));
  CO_TRY_ASSIGN(FrameHeader header, parse_header(head, 64 << 20));
  std::vector<std::byte> payload(header.payload_length);
  auto rest = peer->recv_exact(payload, IoOptions{deadline_after(10s)});
  CO_TRY(co_await std::move(rest));
  uint32_t body = 0;
  std::memcpy(&body, payload.data(), sizeof body);
  std::span<const std::byte> descriptor = std::span(payload).first(4 + body);
  CO_TRY(verify_bulk_descriptor(header, descriptor));
  CO_TRY_ASSIGN(BulkMessage message, decode<BulkMessage>(descriptor));
  tail->assign(payload.begin() + 4 + body, payload.end());
  co_return message;
}

// Serves our side of the connection (bulk requests are served inside next_frame) until it
// fails; records why.
Task<void> serve(Connection* connection, Status* ended) {
  for (;;) {
    auto next = connection->next_frame();
    Result<Frame> frame = co_await std::move(next);
    if (!frame.ok()) {
      *ended = frame.status();
      co_return;
    }
  }
}

Task<void> deregister_and_mark(MemoryRegion* region, TimePoint deadline, bool* done) {
  auto deregistering = region->deregister(deadline);
  co_await std::move(deregistering);
  *done = true;
}

// Waits (up to 2 s) until the transport holds `n` pins.
Task<bool> pins_reach(TcpTransport* transport, size_t n) {
  for (int i = 0; i < 2000 && transport->pins() != n; ++i) {
    Status slept = co_await sleep_for(1ms);
    (void)slept;
  }
  co_return transport->pins() == n;
}

// Our connection and a raw peer socket joined to it.
struct Link {
  std::unique_ptr<Connection> connection;
  Socket peer;
};

Task<Result<Link>> link(TcpTransport* transport, SocketAddress where) {
  CO_TRY_ASSIGN(std::unique_ptr<Acceptor> acceptor, transport->listen(where));
  auto connecting = Socket::connect(acceptor->address(), IoOptions{deadline_after(5s)});
  CO_TRY_ASSIGN(Socket peer, co_await std::move(connecting));
  auto accepting = acceptor->accept();
  CO_TRY_ASSIGN(std::unique_ptr<Connection> connection, co_await std::move(accepting));
  auto closing = acceptor->close();
  co_await std::move(closing);
  co_return Link{std::move(connection), std::move(peer)};
}

using Body = Task<void> (*)(TcpTransport* transport, SocketAddress where);

// Runs body with a fresh TcpTransport on io_uring ("tcp") or on one simulated host ("sim").
void run_on(const std::string& where, Body body) {
  if (where == "tcp") {
    auto executor = Executor::create_uring();
    TcpTransport transport;
    executor->block_on(body(&transport, SocketAddress::loopback(0)));
    return;
  }
  uint64_t seed = sim::sim_seed(42);
  SCOPED_TRACE(fmt::format("simulation seed={} (replay: MICA_SIM_SEED={})", seed, seed));
  sim::SimWorld world(seed);
  sim::SimHost& host = world.add_host("node");
  TcpTransport transport;
  world.run(host, body(&transport, host.address(7000)));
}

constexpr size_t kWriteBytes = 4 << 20;
constexpr size_t kWriteFirstBytes = 1 << 20;  // what the peer sends before it stalls

// The peer starts a 4 MiB write into our region and stalls after 1 MiB; deregister() must
// not return while the bytes are still landing, and returns once the rest has arrived.
Task<void> waits_for_write(TcpTransport* transport, SocketAddress where) {
  auto linking = link(transport, where);
  Result<Link> l = co_await std::move(linking);
  EXPECT_TRUE(l.ok()) << l.status();
  if (!l.ok()) co_return;
  auto memory = std::make_unique<std::vector<std::byte>>(kWriteBytes);
  auto region = transport->register_memory(*memory);
  EXPECT_TRUE(region.ok());
  TaskScope scope;
  Status ended;
  scope.spawn(serve(l->connection.get(), &ended));

  RemoteBuffer remote = (*region)->remote(0, kWriteBytes);
  std::vector<std::byte> data = pattern(kWriteBytes, 3);
  std::vector<std::byte> head = bulk_head(kWriteRequest, remote, kWriteBytes);
  auto sending_head = l->peer.send_all(head);
  Status sending_head_status = co_await std::move(sending_head);
  EXPECT_TRUE(sending_head_status.ok()) << sending_head_status;
  auto sending_first = l->peer.send_all(std::span(data).first(kWriteFirstBytes));
  Status sending_first_status = co_await std::move(sending_first);
  EXPECT_TRUE(sending_first_status.ok()) << sending_first_status;
  auto pinning = pins_reach(transport, 1);
  EXPECT_TRUE(co_await std::move(pinning)) << "the peer's transfer never pinned the region";

  bool deregistered = false;
  scope.spawn(deregister_and_mark(region->get(), kNoDeadline, &deregistered));
  Status slept = co_await sleep_for(20ms);
  (void)slept;
  EXPECT_FALSE(deregistered) << "deregister() returned while a peer's write was landing";
  auto sending_rest = l->peer.send_all(std::span(data).subspan(kWriteFirstBytes));
  Status sending_rest_status = co_await std::move(sending_rest);
  EXPECT_TRUE(sending_rest_status.ok()) << sending_rest_status;
  std::vector<std::byte> tail;
  auto acking = read_reply(&l->peer, &tail);
  Result<BulkMessage> ack = co_await std::move(acking);
  EXPECT_TRUE(ack.ok()) << ack.status();
  if (ack.ok()) {
    EXPECT_EQ(ack->op, kWriteAck);
    EXPECT_TRUE(ack->status.ok()) << ack->status;  // begun before deregistration: it finishes
  }
  for (int i = 0; i < 1000 && !deregistered; ++i) {
    Status waited = co_await sleep_for(1ms);
    (void)waited;
  }
  EXPECT_TRUE(deregistered);
  EXPECT_EQ(transport->pins(), 0u);
  EXPECT_EQ(*memory, data);
  region->reset();
  memory.reset();

  // The region is gone: the same request is now refused, and the connection carries on.
  std::vector<std::byte> small = pattern(64, 5);
  RemoteBuffer first_bytes{remote.region, 0, 64, remote.key};
  std::vector<std::byte> again = bulk_head(kWriteRequest, first_bytes, small.size());
  again.insert(again.end(), small.begin(), small.end());
  auto sending_again = l->peer.send_all(again);
  Status sending_again_status = co_await std::move(sending_again);
  EXPECT_TRUE(sending_again_status.ok()) << sending_again_status;
  auto refusing = read_reply(&l->peer, &tail);
  Result<BulkMessage> refused = co_await std::move(refusing);
  EXPECT_TRUE(refused.ok()) << refused.status();
  if (refused.ok()) {
    EXPECT_EQ(refused->status.code(), StatusCode::kPermissionDenied);
  }
  co_await l->connection->close();
  co_await scope.join();
}

// The peer stalls partway through a write of `bytes`, after `first`; deregister() fails the
// transfer at its deadline (the connection ends), and the memory is freed while the peer
// still has bytes to send: nothing may be written into it.
Task<void> fails_stalled_write_of(TcpTransport* transport, SocketAddress where, size_t bytes,
                                  size_t first) {
  auto linking = link(transport, where);
  Result<Link> l = co_await std::move(linking);
  EXPECT_TRUE(l.ok()) << l.status();
  if (!l.ok()) co_return;
  auto memory = std::make_unique<std::vector<std::byte>>(bytes);
  auto region = transport->register_memory(*memory);
  EXPECT_TRUE(region.ok());
  TaskScope scope;
  Status ended;
  scope.spawn(serve(l->connection.get(), &ended));

  RemoteBuffer remote = (*region)->remote(0, bytes);
  std::vector<std::byte> data = pattern(bytes, 4);
  std::vector<std::byte> head = bulk_head(kWriteRequest, remote, bytes);
  auto sending_head = l->peer.send_all(head);
  Status sending_head_status = co_await std::move(sending_head);
  EXPECT_TRUE(sending_head_status.ok()) << sending_head_status;
  auto sending_first = l->peer.send_all(std::span(data).first(first));
  Status sending_first_status = co_await std::move(sending_first);
  EXPECT_TRUE(sending_first_status.ok()) << sending_first_status;
  auto pinning = pins_reach(transport, 1);
  EXPECT_TRUE(co_await std::move(pinning)) << "the peer's transfer never pinned the region";

  TimePoint start = Executor::current()->now();
  auto deregistering = (*region)->deregister(start + 50ms);
  co_await std::move(deregistering);
  EXPECT_GE(Executor::current()->now() - start, 50ms);
  EXPECT_EQ(transport->pins(), 0u);
  region->reset();
  memory.reset();
  auto sending_rest = l->peer.send_all(std::span(data).subspan(first));
  Status rest = co_await std::move(sending_rest);
  (void)rest;  // lands in the socket buffer, or is refused; never in the freed memory
  Status slept = co_await sleep_for(10ms);
  (void)slept;
  co_await scope.join();  // the reader saw its transfer fail and stopped
  EXPECT_FALSE(ended.ok());
  co_await l->connection->close();
}

// Large writes land by a direct receive (the kernel writes the region, which ASan cannot
// see); small ones are copied out of the read buffer by our code, so under ASan a write
// into the freed region would be reported.
Task<void> fails_stalled_large_write(TcpTransport* transport, SocketAddress where) {
  auto writing = fails_stalled_write_of(transport, where, kWriteBytes, kWriteFirstBytes);
  co_await std::move(writing);
}

Task<void> fails_stalled_small_write(TcpTransport* transport, SocketAddress where) {
  auto writing = fails_stalled_write_of(transport, where, 4096, 1024);
  co_await std::move(writing);
}

// The reader's own cancellation (a server shutting down) still reaches a pinned transfer:
// the pin's token hangs off the reader's, so the reader stops and the pin drops.
Task<void> cancelled_reader_unpins(TcpTransport* transport, SocketAddress where) {
  auto linking = link(transport, where);
  Result<Link> l = co_await std::move(linking);
  EXPECT_TRUE(l.ok()) << l.status();
  if (!l.ok()) co_return;
  auto memory = std::make_unique<std::vector<std::byte>>(kWriteBytes);
  auto region = transport->register_memory(*memory);
  EXPECT_TRUE(region.ok());
  TaskScope scope;
  Status ended;
  scope.spawn(serve(l->connection.get(), &ended));

  std::vector<std::byte> data = pattern(kWriteBytes, 9);
  std::vector<std::byte> head =
      bulk_head(kWriteRequest, (*region)->remote(0, kWriteBytes), kWriteBytes);
  auto sending_head = l->peer.send_all(head);
  Status sending_head_status = co_await std::move(sending_head);
  EXPECT_TRUE(sending_head_status.ok()) << sending_head_status;
  auto sending_first = l->peer.send_all(std::span(data).first(kWriteFirstBytes));
  Status sending_first_status = co_await std::move(sending_first);
  EXPECT_TRUE(sending_first_status.ok()) << sending_first_status;
  auto pinning = pins_reach(transport, 1);
  EXPECT_TRUE(co_await std::move(pinning)) << "the peer's transfer never pinned the region";
  scope.cancel();
  co_await scope.join();
  EXPECT_EQ(ended.code(), StatusCode::kCancelled) << ended;
  EXPECT_EQ(transport->pins(), 0u);
  TimePoint start = Executor::current()->now();
  auto deregistering = (*region)->deregister(kNoDeadline);
  co_await std::move(deregistering);
  EXPECT_LT(Executor::current()->now() - start, 10ms);  // nothing left to wait for
  region->reset();
  co_await l->connection->close();
}

// A write whose length differs from its range is refused; while its bytes are skipped the
// region is not pinned, so deregistration does not wait for a peer that stalls in them.
Task<void> refused_write_pins_nothing(TcpTransport* transport, SocketAddress where) {
  auto linking = link(transport, where);
  Result<Link> l = co_await std::move(linking);
  EXPECT_TRUE(l.ok()) << l.status();
  if (!l.ok()) co_return;
  auto memory = std::make_unique<std::vector<std::byte>>(kWriteBytes);
  auto region = transport->register_memory(*memory);
  EXPECT_TRUE(region.ok());
  TaskScope scope;
  Status ended;
  scope.spawn(serve(l->connection.get(), &ended));

  // Announces 4 MiB for a 1 MiB range, then sends only the first 1 MiB.
  std::vector<std::byte> data = pattern(kWriteBytes, 8);
  RemoteBuffer remote = (*region)->remote(0, kWriteFirstBytes);
  std::vector<std::byte> head = bulk_head(kWriteRequest, remote, kWriteBytes);
  auto sending_head = l->peer.send_all(head);
  Status sending_head_status = co_await std::move(sending_head);
  EXPECT_TRUE(sending_head_status.ok()) << sending_head_status;
  auto sending_first = l->peer.send_all(std::span(data).first(kWriteFirstBytes));
  Status sending_first_status = co_await std::move(sending_first);
  EXPECT_TRUE(sending_first_status.ok()) << sending_first_status;
  Status slept = co_await sleep_for(20ms);
  (void)slept;
  EXPECT_EQ(transport->pins(), 0u);
  TimePoint start = Executor::current()->now();
  auto deregistering = (*region)->deregister(kNoDeadline);
  co_await std::move(deregistering);
  EXPECT_LT(Executor::current()->now() - start, 10ms);
  EXPECT_EQ(*memory, std::vector<std::byte>(kWriteBytes));  // nothing written
  region->reset();
  memory.reset();
  auto sending_rest = l->peer.send_all(std::span(data).subspan(kWriteFirstBytes));
  Status sending_rest_status = co_await std::move(sending_rest);
  EXPECT_TRUE(sending_rest_status.ok()) << sending_rest_status;
  std::vector<std::byte> tail;
  auto refusing = read_reply(&l->peer, &tail);
  Result<BulkMessage> refused = co_await std::move(refusing);
  EXPECT_TRUE(refused.ok()) << refused.status();
  if (refused.ok()) {
    EXPECT_EQ(refused->status.code(), StatusCode::kInvalidArgument);
  }
  co_await l->connection->close();
  co_await scope.join();
}

constexpr size_t kReadBytes = 32 << 20;  // more than loopback's socket buffers hold

// The peer asks to read 32 MiB and does not read the reply: our send of the region's bytes
// stalls. deregister() waits until the peer has taken them all.
Task<void> waits_for_read(TcpTransport* transport, SocketAddress where) {
  auto linking = link(transport, where);
  Result<Link> l = co_await std::move(linking);
  EXPECT_TRUE(l.ok()) << l.status();
  if (!l.ok()) co_return;
  auto memory = std::make_unique<std::vector<std::byte>>(pattern(kReadBytes, 6));
  auto region = transport->register_memory(*memory);
  EXPECT_TRUE(region.ok());
  TaskScope scope;
  Status ended;
  scope.spawn(serve(l->connection.get(), &ended));

  std::vector<std::byte> head = bulk_head(kReadRequest, (*region)->remote(0, kReadBytes), 0);
  auto sending_head = l->peer.send_all(head);
  Status sending_head_status = co_await std::move(sending_head);
  EXPECT_TRUE(sending_head_status.ok()) << sending_head_status;
  auto pinning = pins_reach(transport, 1);
  EXPECT_TRUE(co_await std::move(pinning)) << "the peer's transfer never pinned the region";
  bool deregistered = false;
  scope.spawn(deregister_and_mark(region->get(), kNoDeadline, &deregistered));
  Status slept = co_await sleep_for(20ms);
  (void)slept;
  EXPECT_FALSE(deregistered) << "deregister() returned while a peer's read was in progress";
  std::vector<std::byte> tail;
  auto replying = read_reply(&l->peer, &tail);
  Result<BulkMessage> reply = co_await std::move(replying);
  EXPECT_TRUE(reply.ok()) << reply.status();
  if (reply.ok()) {
    EXPECT_EQ(reply->op, kReadReply);
    EXPECT_TRUE(reply->status.ok()) << reply->status;
  }
  EXPECT_TRUE(tail == *memory);
  for (int i = 0; i < 1000 && !deregistered; ++i) {
    Status waited = co_await sleep_for(1ms);
    (void)waited;
  }
  EXPECT_TRUE(deregistered);
  region->reset();
  memory.reset();
  co_await l->connection->close();
  co_await scope.join();
}

// As above, but deregister() gives up after 50 ms: the send is failed, the memory freed
// while the peer has not read the reply.
Task<void> fails_stalled_read(TcpTransport* transport, SocketAddress where) {
  auto linking = link(transport, where);
  Result<Link> l = co_await std::move(linking);
  EXPECT_TRUE(l.ok()) << l.status();
  if (!l.ok()) co_return;
  auto memory = std::make_unique<std::vector<std::byte>>(pattern(kReadBytes, 7));
  auto region = transport->register_memory(*memory);
  EXPECT_TRUE(region.ok());
  TaskScope scope;
  Status ended;
  scope.spawn(serve(l->connection.get(), &ended));

  std::vector<std::byte> head = bulk_head(kReadRequest, (*region)->remote(0, kReadBytes), 0);
  auto sending_head = l->peer.send_all(head);
  Status sending_head_status = co_await std::move(sending_head);
  EXPECT_TRUE(sending_head_status.ok()) << sending_head_status;
  auto pinning = pins_reach(transport, 1);
  EXPECT_TRUE(co_await std::move(pinning)) << "the peer's transfer never pinned the region";
  TimePoint start = Executor::current()->now();
  auto deregistering = (*region)->deregister(start + 50ms);
  co_await std::move(deregistering);
  EXPECT_GE(Executor::current()->now() - start, 50ms);
  EXPECT_EQ(transport->pins(), 0u);
  region->reset();
  memory.reset();
  co_await scope.join();
  EXPECT_FALSE(ended.ok());
  co_await l->connection->close();
}

class Region : public ::testing::TestWithParam<std::string> {};

TEST_P(Region, DeregisterWaitsForAPeersWriteInProgress) {
  run_on(GetParam(), &waits_for_write);
}

TEST_P(Region, DeregisterFailsAPeersStalledWriteAtItsDeadline) {
  run_on(GetParam(), &fails_stalled_large_write);
}

TEST_P(Region, DeregisterFailsAPeersStalledSmallWriteAtItsDeadline) {
  run_on(GetParam(), &fails_stalled_small_write);
}

TEST_P(Region, ARefusedWritePinsNothingWhileItsBytesAreSkipped) {
  run_on(GetParam(), &refused_write_pins_nothing);
}

TEST_P(Region, CancellingTheReaderReleasesItsPin) {
  run_on(GetParam(), &cancelled_reader_unpins);
}

INSTANTIATE_TEST_SUITE_P(Tcp, Region, ::testing::Values("tcp", "sim"),
                         [](const auto& info) { return info.param; });

// The simulator's sockets have no send window (a send completes in one step), so only real
// TCP can hold a read reply halfway.
TEST(RegionTcp, DeregisterWaitsForAPeersReadInProgress) {
  run_on("tcp", &waits_for_read);
}

TEST(RegionTcp, DeregisterFailsAPeersStalledReadAtItsDeadline) {
  run_on("tcp", &fails_stalled_read);
}

// ---- keys ----

constexpr int kRegionsPerTransport = 16;

Task<void> register_keys(TcpTransport* transport, std::vector<uint32_t>* keys) {
  std::vector<std::byte> memory(4096);
  for (int i = 0; i < kRegionsPerTransport; ++i) {
    auto region = transport->register_memory(memory);
    EXPECT_TRUE(region.ok());
    if (region.ok()) keys->push_back((*region)->remote(0, 1).key);
  }
  co_return;
}

std::vector<uint32_t> keys_on_uring() {
  auto executor = Executor::create_uring();
  TcpTransport a, b;
  std::vector<uint32_t> keys;
  executor->block_on(register_keys(&a, &keys));
  executor->block_on(register_keys(&b, &keys));
  return keys;
}

std::vector<uint32_t> keys_in_simulation(uint64_t seed) {
  sim::SimWorld world(seed);
  sim::SimHost& host = world.add_host("node");
  TcpTransport transport;
  std::vector<uint32_t> keys;
  world.run(host, register_keys(&transport, &keys));
  return keys;
}

// 64 keys of 32 random bits collide with probability ~5e-7.
TEST(RegionKeys, DifferAcrossRegionsTransportsAndRuns) {
  std::vector<uint32_t> keys = keys_on_uring();
  std::vector<uint32_t> second_run = keys_on_uring();
  keys.insert(keys.end(), second_run.begin(), second_run.end());
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end());
}

TEST(RegionKeys, SimulationDrawsThemFromItsSeed) {
  EXPECT_EQ(keys_in_simulation(11), keys_in_simulation(11));
  EXPECT_NE(keys_in_simulation(11), keys_in_simulation(12));
}

}  // namespace
}  // namespace mica::net::testing
