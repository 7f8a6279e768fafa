// The RDMA transport shaped for real devices, on the fake verbs provider: link layers,
// RoCE GID choice and override, port choice and the TCP fallback, queue sizes clamped to
// the device, asynchronous events (port down, QP fatal) and deregistration while the peer
// transfers. Completions are asynchronous (seeded delays) throughout.
#include <gtest/gtest.h>

#include <fcntl.h>

#include <cstring>

#include "async/executor.h"
#include "net/rdma/rdma_device.h"
#include "net/transport_choice.h"
#include "tests/net/fake_verbs.h"
#include "tests/net/rdma_pair.h"

namespace mica::net {
namespace {

using fake_verbs::DeviceSpec;
using fake_verbs::FakeVerbs;
using namespace rdma_test;
using namespace std::chrono_literals;

class RdmaDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FakeVerbs::reset(/*key_seed=*/5);
    FakeVerbs::set_timing(fake_verbs::Timing{.async = true, .seed = 3, .delay_us_max = 200});
  }
  void TearDown() override {
    for (ibv_context* c : opened_) {
      EXPECT_EQ(FakeVerbs::open_objects(c), 0u);
      ibv_close_device(c);
    }
    EXPECT_EQ(FakeVerbs::unacked_async_events(), 0u);  // every event was acknowledged
    for (const std::string& m : FakeVerbs::misuse_log()) ADD_FAILURE() << "verbs misuse: " << m;
  }
  ibv_context* open(const std::string& name, const DeviceSpec& spec = DeviceSpec{}) {
    ibv_context* c = FakeVerbs::open_device(name, spec);
    opened_.push_back(c);
    return c;
  }
  std::unique_ptr<Executor> executor_ = Executor::create_uring();
  std::vector<ibv_context*> opened_;
};

// ---- discovery ----

TEST_F(RdmaDeviceTest, InfinibandPortIsRoutedByLidWithoutAGrh) {
  auto device = RdmaDevice::open(open("ib0"), false, RdmaConfig{});
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ((*device)->link_layer(), IBV_LINK_LAYER_INFINIBAND);
  EXPECT_EQ((*device)->port_num(), 1);
  EXPECT_FALSE((*device)->use_gid());
  EXPECT_NE((*device)->lid(), 0);
}

TEST_F(RdmaDeviceTest, RocePortChoosesTheIpv4MappedRoceV2Gid) {
  // The fake's RoCE table: 0 v1 link-local, 1 v2 link-local, 2 v1 IPv4-mapped, 3 v2 mapped.
  auto device = RdmaDevice::open(open("roce0", DeviceSpec::roce()), false, RdmaConfig{});
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ((*device)->link_layer(), IBV_LINK_LAYER_ETHERNET);
  EXPECT_TRUE((*device)->use_gid());
  EXPECT_EQ((*device)->gid_index(), 3);
  EXPECT_EQ((*device)->gid_type(), IBV_GID_TYPE_ROCE_V2);
  EXPECT_EQ((*device)->gid().raw[10], 0xff);  // ::ffff:a.b.c.d
}

GidEntry entry(uint32_t index, ibv_gid_type type, bool ipv4_mapped, bool empty = false) {
  GidEntry e;
  e.index = index;
  e.type = type;
  if (!empty) {
    e.gid.raw[0] = ipv4_mapped ? 0 : 0xfe;
    e.gid.raw[10] = e.gid.raw[11] = ipv4_mapped ? 0xff : 0;
    e.gid.raw[15] = 1;
  }
  return e;
}

TEST(RdmaGidChoice, PrefersRoceV2IpV4MappedThenAnyV2ThenV1AndSkipsEmptySlots) {
  using V = std::vector<GidEntry>;
  V mapped_v2_last = {entry(0, IBV_GID_TYPE_ROCE_V2, false), entry(1, IBV_GID_TYPE_ROCE_V1, true),
                      entry(2, IBV_GID_TYPE_ROCE_V2, true)};
  EXPECT_EQ(*choose_roce_gid(mapped_v2_last), 2u);
  V no_mapped = {entry(0, IBV_GID_TYPE_ROCE_V1, true), entry(1, IBV_GID_TYPE_ROCE_V2, false)};
  EXPECT_EQ(*choose_roce_gid(no_mapped), 1u);
  V v1_only = {entry(0, IBV_GID_TYPE_ROCE_V2, true, /*empty=*/true),
               entry(1, IBV_GID_TYPE_ROCE_V1, false)};
  EXPECT_EQ(*choose_roce_gid(v1_only), 1u);
  V none = {entry(0, IBV_GID_TYPE_ROCE_V2, true, /*empty=*/true)};
  EXPECT_EQ(choose_roce_gid(none).status().code(), StatusCode::kNotFound);
}

TEST_F(RdmaDeviceTest, GidIndexOverrideIsHonouredAndAMissingOneRefused) {
  ibv_context* ctx = open("roce0", DeviceSpec::roce());
  RdmaConfig config;
  config.gid_index = 1;
  auto forced = RdmaDevice::open(ctx, false, config);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_EQ((*forced)->gid_index(), 1);
  EXPECT_EQ((*forced)->gid_type(), IBV_GID_TYPE_ROCE_V2);
  forced->reset();
  config.gid_index = 9;
  EXPECT_EQ(RdmaDevice::open(ctx, false, config).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RdmaDeviceTest, FirstActivePortIsChosen) {
  DeviceSpec spec;
  spec.ports = {fake_verbs::PortSpec{}, fake_verbs::PortSpec{}};
  spec.ports[0].state = IBV_PORT_DOWN;
  spec.ports[1].link_layer = IBV_LINK_LAYER_ETHERNET;
  auto device = RdmaDevice::open(open("dual0", spec), false, RdmaConfig{});
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ((*device)->port_num(), 2);
  EXPECT_EQ((*device)->link_layer(), IBV_LINK_LAYER_ETHERNET);
}

TEST_F(RdmaDeviceTest, NoActivePortFallsBackToTcp) {
  DeviceSpec spec;
  spec.ports[0].state = IBV_PORT_DOWN;
  ibv_context* ctx = open("down0", spec);
  Result<std::unique_ptr<Transport>> rdma = open_rdma_transport();
  EXPECT_EQ(rdma.status().code(), StatusCode::kNotSupported);
  EXPECT_NE(rdma.status().message().find("no active RDMA port"), std::string::npos)
      << rdma.status();
  Result<std::unique_ptr<Transport>> chosen = make_transport(TransportChoice::kAuto);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ((*chosen)->name(), "tcp");
  EXPECT_EQ(make_transport(TransportChoice::kRdma).status().code(), StatusCode::kNotSupported);
  FakeVerbs::set_port_state(ctx, 1, IBV_PORT_ACTIVE);
  Result<std::unique_ptr<Transport>> back = make_transport(TransportChoice::kAuto);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ((*back)->name(), "rdma");
  // The events of the context opened here: read and acknowledged by nobody else.
  ibv_async_event event{};
  int flags = fcntl(ctx->async_fd, F_GETFL);
  fcntl(ctx->async_fd, F_SETFL, flags | O_NONBLOCK);
  while (ibv_get_async_event(ctx, &event) == 0) ibv_ack_async_event(&event);
}

// ---- limits ----

TEST(RdmaClamp, QueueSizesShrinkToTheDeviceLimits) {
  DeviceLimits limits{.max_qp_wr = 16,
                      .max_sge = 1,
                      .max_cqe = 30,
                      .max_mr_size = uint64_t(1) << 40,
                      .max_qp_rd_atom = 4,
                      .max_qp_init_rd_atom = 2,
                      .max_msg_bytes = 1 << 16};
  RdmaConfig wide;  // 32 send slots, 64 one-sided WRs, 32 + 6 receives
  Result<RdmaConfig> c = clamp_to_device(wide, limits);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_LE(rdma_send_wrs(*c), 16u);
  EXPECT_LE(rdma_recv_wrs(*c), 16u);
  EXPECT_LE(rdma_send_wrs(*c) + rdma_recv_wrs(*c), 30u);
  EXPECT_EQ(c->ack_recv_slots_max, wide.ack_recv_slots_max);  // the ack reserve stays whole
  EXPECT_LE(c->bulk_wrs_per_post_max, c->bulk_wrs_in_flight_max);
  EXPECT_LE(c->credit_batch_max, c->recv_slots_max);
  EXPECT_EQ(c->rd_atomic_max, 2);
  EXPECT_EQ(c->bulk_wr_bytes_max, 1u << 16);
  EXPECT_TRUE(c->validate().ok());
  RdmaConfig fits = *c;
  EXPECT_EQ(clamp_to_device(fits, limits)->recv_slots_max, fits.recv_slots_max);  // idempotent
  limits.max_qp_wr = 4;  // not even the ack reserve fits
  EXPECT_EQ(clamp_to_device(wide, limits).status().code(), StatusCode::kNotSupported);
}

Task<void> small_device_traffic(ibv_context* a, ibv_context* b) {
  Pair p;
  auto connecting = connect_pair(&p, a, b, RdmaConfig{});  // needs 103 WRs unclamped
  if (!co_await std::move(connecting)) co_return;
  for (uint64_t i = 0; i < 50; ++i) {
    std::vector<std::byte> payload = pattern(20000, static_cast<uint32_t>(i));
    auto sending = p.client->send(request(i), payload);
    Status sent = co_await std::move(sending);
    EXPECT_TRUE(sent.ok()) << sent;
    Result<Frame> got = co_await p.server->next_frame();
    EXPECT_TRUE(got.ok() && got->payload == payload) << got.status();
  }
  std::vector<std::byte> memory = pattern(300000, 9);
  auto region = p.client_transport->register_memory(memory);
  std::vector<std::byte> copy(memory.size());
  auto reading = p.server->read_from((*region)->remote(0, 300000), copy, kNoDeadline);
  Status read = co_await std::move(reading);
  EXPECT_TRUE(read.ok()) << read;
  EXPECT_EQ(copy, memory);
  region->reset();
  auto closing = close_pair(&p);
  co_await std::move(closing);
}

TEST_F(RdmaDeviceTest, ConnectionsWorkOnADeviceWithSmallQueues) {
  DeviceSpec spec;
  spec.max_qp_wr = 24;  // the fake refuses larger QPs and CQs, as hardware does
  spec.max_cqe = 40;
  spec.max_qp_rd_atom = 2;
  executor_->block_on(small_device_traffic(open("small_a", spec), open("small_b", spec)));
}

// ---- RoCE end to end ----

Task<void> roce_traffic(ibv_context* a, ibv_context* b) {
  Pair p;
  auto connecting = connect_pair(&p, a, b, small_config());
  if (!co_await std::move(connecting)) co_return;
  std::vector<std::byte> payload = pattern(1000, 4);
  auto sending = p.client->send(request(1), payload);
  Status sent = co_await std::move(sending);
  EXPECT_TRUE(sent.ok()) << sent;
  Result<Frame> got = co_await p.server->next_frame();
  EXPECT_TRUE(got.ok() && got->payload == payload) << got.status();
  auto closing = close_pair(&p);
  co_await std::move(closing);
}

TEST_F(RdmaDeviceTest, FramesTravelOverRoceWithTheChosenGids) {
  // The fake routes a GRH only to a GID of the same type: both ends must pick v2.
  executor_->block_on(
      roce_traffic(open("roce_a", DeviceSpec::roce()), open("roce_b", DeviceSpec::roce())));
}

// ---- asynchronous events ----

Task<void> wait_frame(Connection* c, Status* out) {
  Result<Frame> f = co_await c->next_frame();
  *out = f.status();
}

// Waits (up to 2 s) until the connection has failed.
Task<void> until_failed(Connection* c) {
  for (int i = 0; i < 2000 && status_of(c).ok(); ++i) {
    Status slept = co_await sleep_for(1ms);
    EXPECT_TRUE(slept.ok());
  }
}

Task<void> port_down(ibv_context* a, ibv_context* b) {
  Pair p;
  auto connecting = connect_pair(&p, a, b, small_config());
  if (!co_await std::move(connecting)) co_return;
  Status waiter = Status(StatusCode::kInternal, "not finished");
  TaskScope scope;
  scope.spawn(wait_frame(p.server.get(), &waiter));
  FakeVerbs::set_port_state(a, 1, IBV_PORT_DOWN);
  co_await scope.join();  // the event, not a timeout, wakes the waiter
  EXPECT_EQ(waiter.code(), StatusCode::kConnectionReset) << waiter;
  EXPECT_NE(waiter.message().find("went down"), std::string::npos) << waiter;
  // While the port is down, new connections from it are refused with a retryable status.
  auto listening = p.client_transport->listen(SocketAddress::loopback(0));
  EXPECT_TRUE(listening.ok());
  auto refused_task = p.server_transport->connect((*listening)->address(), kNoDeadline);
  Result<std::unique_ptr<Connection>> refused = co_await std::move(refused_task);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnreachable) << refused.status();
  co_await (*listening)->close();
  co_await p.client->close();
  co_await p.server->close();
  // The port comes back: a reconnect succeeds and carries frames.
  FakeVerbs::set_port_state(a, 1, IBV_PORT_ACTIVE);
  p.server.reset();
  scope.spawn(accept_into(p.acceptor.get(), &p.server));
  auto reconnecting = p.client_transport->connect(p.acceptor->address(), kNoDeadline);
  Result<std::unique_ptr<Connection>> again = co_await std::move(reconnecting);
  co_await scope.join();
  EXPECT_TRUE(again.ok()) << again.status();
  if (again.ok() && p.server) {
    p.client = std::move(again).value();
    std::vector<std::byte> payload = pattern(500, 8);
    auto sending = p.client->send(request(2), payload);
    Status sent = co_await std::move(sending);
    EXPECT_TRUE(sent.ok()) << sent;
    Result<Frame> got = co_await p.server->next_frame();
    EXPECT_TRUE(got.ok() && got->payload == payload) << got.status();
  }
  auto closing = close_pair(&p);
  co_await std::move(closing);
}

TEST_F(RdmaDeviceTest, PortDownEventFailsConnectionsAndAReconnectSucceeds) {
  executor_->block_on(port_down(open("mlx5_a"), open("mlx5_b")));
  EXPECT_GE(FakeVerbs::stats().async_events_acked, 2u);  // down and up, both acknowledged
}

Task<void> qp_fatal(ibv_context* a, ibv_context* b) {
  Pair p;
  auto connecting = connect_pair(&p, a, b, small_config());
  if (!co_await std::move(connecting)) co_return;
  std::unique_ptr<Connection> other_server;
  TaskScope scope;
  scope.spawn(accept_into(p.acceptor.get(), &other_server));
  auto second = p.client_transport->connect(p.acceptor->address(), kNoDeadline);
  Result<std::unique_ptr<Connection>> other_client = co_await std::move(second);
  co_await scope.join();
  EXPECT_TRUE(other_client.ok() && other_server) << other_client.status();
  if (!other_client.ok() || !other_server) co_return;
  uint32_t qpn = static_cast<RdmaConnection*>(p.server.get())->qp_num();
  FakeVerbs::raise_async_event(a, IBV_EVENT_QP_FATAL, qpn);
  auto waiting = until_failed(p.server.get());
  co_await std::move(waiting);
  EXPECT_EQ(status_of(p.server.get()).code(), StatusCode::kConnectionReset);
  EXPECT_TRUE(status_of(other_server.get()).ok());  // only the QP the event names
  auto sending = (*other_client)->send(request(3), {});
  Status sent = co_await std::move(sending);
  EXPECT_TRUE(sent.ok()) << sent;
  Result<Frame> got = co_await other_server->next_frame();
  EXPECT_TRUE(got.ok()) << got.status();
  co_await (*other_client)->close();
  co_await other_server->close();
  auto closing = close_pair(&p);
  co_await std::move(closing);
}

TEST_F(RdmaDeviceTest, QpFatalEventFailsOnlyItsConnection) {
  executor_->block_on(qp_fatal(open("mlx5_a"), open("mlx5_b")));
}

Task<void> device_fatal(ibv_context* a, ibv_context* b) {
  Pair p;
  auto connecting = connect_pair(&p, a, b, small_config());
  if (!co_await std::move(connecting)) co_return;
  FakeVerbs::raise_async_event(a, IBV_EVENT_DEVICE_FATAL);
  auto waiting = until_failed(p.server.get());
  co_await std::move(waiting);
  EXPECT_EQ(status_of(p.server.get()).code(), StatusCode::kConnectionReset);
  EXPECT_NE(status_of(p.server.get()).message().find("fatal"), std::string::npos);
  // The device stays unusable: the transport must be reopened.
  auto listening = p.client_transport->listen(SocketAddress::loopback(0));
  EXPECT_TRUE(listening.ok());
  auto refused_task = p.server_transport->connect((*listening)->address(), kNoDeadline);
  Result<std::unique_ptr<Connection>> refused = co_await std::move(refused_task);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnreachable) << refused.status();
  co_await (*listening)->close();
  auto closing = close_pair(&p);
  co_await std::move(closing);
}

TEST_F(RdmaDeviceTest, DeviceFatalEventFailsConnectionsAndRefusesNewOnes) {
  executor_->block_on(device_fatal(open("mlx5_a"), open("mlx5_b")));
}

// ---- deregistration during the peer's transfer ----

Task<void> read_into(Connection* c, RemoteBuffer remote, std::span<std::byte> local, Status* out) {
  auto reading = c->read_from(remote, local, Executor::current()->now() + 5s);
  *out = co_await std::move(reading);
}

Task<void> dereg_mid_transfer(ibv_context* a, ibv_context* b) {
  Pair p;
  auto connecting = connect_pair(&p, a, b, small_config());  // 4 KiB WRs, posts of 4
  if (!co_await std::move(connecting)) co_return;
  constexpr size_t kBytes = 100000;
  auto exposed = std::make_unique<std::vector<std::byte>>(pattern(kBytes, 5));
  auto region = p.client_transport->register_memory(*exposed);
  RemoteBuffer remote = (*region)->remote(0, kBytes);
  std::vector<std::byte> local(kBytes);
  auto registered = p.server_transport->register_memory(local);
  uint64_t executed = FakeVerbs::stats().executed_wrs;
  FakeVerbs::pause_after(a, 2);  // the server's QP runs two READs, then holds the rest
  Status read = Status(StatusCode::kInternal, "not finished");
  TaskScope scope;
  scope.spawn(read_into(p.server.get(), remote, local, &read));
  for (int i = 0; i < 2000 && FakeVerbs::stats().executed_wrs < executed + 2; ++i) {
    Status slept = co_await sleep_for(1ms);
    EXPECT_TRUE(slept.ok());
  }
  EXPECT_EQ(FakeVerbs::stats().executed_wrs, executed + 2);
  // The owner deregisters and frees its memory while the peer's READs are outstanding.
  region->reset();
  exposed.reset();
  FakeVerbs::resume(a);
  co_await scope.join();
  EXPECT_EQ(read.code(), StatusCode::kPermissionDenied) << read;  // refused, never touched
  EXPECT_EQ(std::memcmp(local.data(), pattern(kBytes, 5).data(), 8192), 0);  // the first two
  registered->reset();
  auto closing = close_pair(&p);
  co_await std::move(closing);
}

// Under ASan (-DMICA_SANITIZE=ON) a READ that touched the freed buffer would be reported.
TEST_F(RdmaDeviceTest, DeregisteringDuringAPeersTransferFailsItCleanly) {
  executor_->block_on(dereg_mid_transfer(open("mlx5_a"), open("mlx5_b")));
}

}  // namespace
}  // namespace mica::net
