// The RDMA transport against the fake verbs provider: two fake devices are two hosts,
// connected through the TCP handshake on 127.0.0.1.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <set>

#include "async/executor.h"
#include "async/frame_alloc.h"
#include "async/scope.h"
#include "async/wait_list.h"
#include "net/rdma/rdma_connection.h"
#include "net/rdma/rdma_transport.h"
#include "tests/net/fake_verbs.h"
#include "tests/net/rdma_pair.h"

namespace mica::net {
namespace {

using fake_verbs::FakeVerbs;
using namespace rdma_test;

class RdmaTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FakeVerbs::reset();
    // Completions arrive later, from another thread, out of order across QPs (seeded).
    FakeVerbs::set_timing(fake_verbs::Timing{.async = true, .seed = 7, .delay_us_max = 200});
    a_ = FakeVerbs::open_device("mlx5_a");
    b_ = FakeVerbs::open_device("mlx5_b");
    frames_before_ = live_frames();
  }
  void TearDown() override {
    EXPECT_EQ(live_frames(), frames_before_) << "frame leak";
    EXPECT_EQ(FakeVerbs::open_objects(a_), 0u);
    EXPECT_EQ(FakeVerbs::open_objects(b_), 0u);
    for (const std::string& m : FakeVerbs::misuse_log()) ADD_FAILURE() << "verbs misuse: " << m;
    ibv_close_device(a_);
    ibv_close_device(b_);
  }
  std::unique_ptr<Executor> executor_ = Executor::create_uring();
  ibv_context* a_ = nullptr;
  ibv_context* b_ = nullptr;
  uint64_t frames_before_ = 0;
};

// ---- frames ----

Task<void> frames_both_ways(ibv_context* a, ibv_context* b) {
  Pair p;
  auto connecting = connect_pair(&p, a, b, RdmaConfig{});
  if (!co_await std::move(connecting)) co_return;
  std::vector<std::byte> ping = pattern(100, 1);
  auto sent_task = p.client->send(request(7), ping);
  Status sent = co_await std::move(sent_task);
  EXPECT_TRUE(sent.ok()) << sent;
  Result<Frame> got = co_await p.server->next_frame();
  EXPECT_TRUE(got.ok()) << got.status();
  if (got.ok()) {
    EXPECT_EQ(got->header.request_id, 7u);
    EXPECT_EQ(got->header.service, 3);
    EXPECT_EQ(got->payload, ping);
  }
  FrameHeader response = request(7);
  response.kind = FrameKind::kResponse;
  auto back_task = p.server->send(response, {});
  Status back = co_await std::move(back_task);
  EXPECT_TRUE(back.ok()) << back;
  Result<Frame> reply = co_await p.client->next_frame();
  EXPECT_TRUE(reply.ok() && reply->header.kind == FrameKind::kResponse && reply->payload.empty());
  EXPECT_NE(p.client->peer().find("rdma://127.0.0.1"), std::string::npos);
  EXPECT_EQ(p.server_transport->name(), "rdma");
  auto closing = close_pair(&p);
  co_await std::move(closing);
}

TEST_F(RdmaTransportTest, FramesTravelBothWaysThroughTheHandshake) {
  executor_->block_on(frames_both_ways(a_, b_));
}

Task<void> send_one(Connection* c, uint64_t id, size_t bytes) {
  std::vector<std::byte> payload = pattern(bytes, static_cast<uint32_t>(id));
  auto s_task = c->send(request(id), payload);
  Status s = co_await std::move(s_task);
  EXPECT_TRUE(s.ok()) << s;
}

size_t size_of_frame(uint64_t id) {
  return (id * 37) % 900;  // up to four 256-byte slots
}

Task<void> many_senders(ibv_context* a, ibv_context* b) {
  Pair p;
  auto connecting = connect_pair(&p, a, b, small_config());
  if (!co_await std::move(connecting)) co_return;
  constexpr uint64_t kFrames = 300;
  TaskScope scope;
  for (uint64_t i = 0; i < kFrames; ++i) scope.spawn(send_one(p.client.get(), i, size_of_frame(i)));
  std::set<uint64_t> seen;
  for (uint64_t i = 0; i < kFrames; ++i) {
    Result<Frame> f = co_await p.server->next_frame();
    EXPECT_TRUE(f.ok()) << f.status();
    if (!f.ok()) break;
    uint64_t id = f->header.request_id;
    EXPECT_EQ(f->payload, pattern(size_of_frame(id), static_cast<uint32_t>(id)));
    seen.insert(id);
  }
  co_await scope.join();
  EXPECT_EQ(seen.size(), kFrames);
  EXPECT_TRUE(status_of(p.client.get()).ok());
  auto closing = close_pair(&p);
  co_await std::move(closing);
}

TEST_F(RdmaTransportTest, ManyConcurrentSendsAreFlowControlledByCredits) {
  executor_->block_on(many_senders(a_, b_));
  EXPECT_EQ(FakeVerbs::stats().rnr_stalls, 0u);  // never a SEND without a receive
}

Task<void> large_frames(ibv_context* a, ibv_context* b) {
  Pair p;
  auto connecting = connect_pair(&p, a, b, small_config());
  if (!co_await std::move(connecting)) co_return;
  std::vector<std::byte> big = pattern(100000, 9);  // ~400 fragments of 256 bytes
  TaskScope scope;
  scope.spawn(send_one(p.client.get(), 1, 0));
  auto s_task = p.client->send(request(2), big);
  Status s = co_await std::move(s_task);
  EXPECT_TRUE(s.ok()) << s;
  Result<Frame> first = co_await p.server->next_frame();
  Result<Frame> second = co_await p.server->next_frame();
  EXPECT_TRUE(first.ok() && second.ok());
  if (first.ok() && second.ok()) {  // the spawned small frame may go first or second
    const Frame& large = first->header.request_id == 2 ? *first : *second;
    EXPECT_EQ(large.payload, big);
  }
  co_await scope.join();
  std::vector<std::byte> too_big(1 << 20);
  auto refused_task = p.client->send(request(3), too_big);
  Status refused = co_await std::move(refused_task);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(status_of(p.client.get()).ok());  // refusing a frame does not fail the link
  auto closing = close_pair(&p);
  co_await std::move(closing);
}

TEST_F(RdmaTransportTest, FramesLargerThanASlotAreFragmentedAndOversizedOnesRefused) {
  executor_->block_on(large_frames(a_, b_));
}

// ---- one-sided operations ----

Task<void> read_and_write(ibv_context* a, ibv_context* b) {
  Pair p;
  auto connecting = connect_pair(&p, a, b, small_config());
  if (!co_await std::move(connecting)) co_return;
  // The client exposes a buffer; the server pulls from and pushes into it.
  std::vector<std::byte> client_memory = pattern(100000, 3);
  auto region = p.client_transport->register_memory(client_memory);
  EXPECT_TRUE(region.ok());
  if (!region.ok()) co_return;
  std::vector<std::byte> server_memory(100000);
  auto local = p.server_transport->register_memory(server_memory);
  EXPECT_TRUE(local.ok());
  RemoteBuffer whole = (*region)->remote(0, 100000);
  // Registered local memory: used in place, 25 WRs of 4 KiB in posts of 4.
  auto r1_task = p.server->read_from(whole, server_memory, kNoDeadline);
  Status r1 = co_await std::move(r1_task);
  EXPECT_TRUE(r1.ok()) << r1;
  EXPECT_EQ(server_memory, client_memory);
  // Unregistered local memory: bounces through the pooled registered buffer.
  std::vector<std::byte> plain(30000);
  RemoteBuffer middle = (*region)->remote(5000, 30000);
  auto r2_task = p.server->read_from(middle, plain, kNoDeadline);
  Status r2 = co_await std::move(r2_task);
  EXPECT_TRUE(r2.ok()) << r2;
  EXPECT_TRUE(std::equal(plain.begin(), plain.end(), client_memory.begin() + 5000));
  std::vector<std::byte> fresh = pattern(30000, 4);
  auto w1_task = p.server->write_to(middle, fresh, kNoDeadline);
  Status w1 = co_await std::move(w1_task);
  EXPECT_TRUE(w1.ok()) << w1;
  EXPECT_TRUE(std::equal(fresh.begin(), fresh.end(), client_memory.begin() + 5000));
  auto mismatch_task = p.server->write_to(middle, std::span(fresh).first(10), kNoDeadline);
  Status mismatch = co_await std::move(mismatch_task);
  EXPECT_EQ(mismatch.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(status_of(p.server.get()).ok());
  local->reset();
  region->reset();
  auto closing = close_pair(&p);
  co_await std::move(closing);
}

TEST_F(RdmaTransportTest, ReadFromAndWriteToMoveBytesInPlaceOrThroughBounceBuffers) {
  executor_->block_on(read_and_write(a_, b_));
}

Task<void> bad_remote(ibv_context* a, ibv_context* b, int variant) {
  Pair p;
  auto connecting = connect_pair(&p, a, b, small_config());
  if (!co_await std::move(connecting)) co_return;
  std::vector<std::byte> client_memory(4096);
  auto region = p.client_transport->register_memory(client_memory);
  std::vector<std::byte> local(64);
  RemoteBuffer target = (*region)->remote(0, 64);
  if (variant == 0) target.key ^= 0x100;        // somebody else's key
  if (variant == 1) target.offset = 4096 - 32;  // runs past the region
  TaskScope scope;
  Result<Frame> waiting = Status(StatusCode::kInternal);
  auto s_task = p.server->read_from(target, local, kNoDeadline);
  Status s = co_await std::move(s_task);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s;
  // The QP is in ERR now: the connection stays failed with a retryable status.
  EXPECT_EQ(status_of(p.server.get()).code(), StatusCode::kConnectionReset);
  auto after_task = p.server->send(request(1), {});
  Status after = co_await std::move(after_task);
  EXPECT_EQ(after.code(), StatusCode::kConnectionReset);
  co_await scope.join();
  region->reset();
  auto closing = close_pair(&p);
  co_await std::move(closing);
}

TEST_F(RdmaTransportTest, WrongKeyIsRefusedAndFailsTheConnection) {
  executor_->block_on(bad_remote(a_, b_, 0));
}

TEST_F(RdmaTransportTest, OutOfBoundsRangeIsRefusedAndFailsTheConnection) {
  executor_->block_on(bad_remote(a_, b_, 1));
}

// ---- failures ----

Task<void> wait_frame(Connection* c, Status* out) {
  Result<Frame> f = co_await c->next_frame();
  *out = f.status();
}

Task<void> injected_error(ibv_context* a, ibv_context* b) {
  Pair p;
  auto connecting = connect_pair(&p, a, b, small_config());
  if (!co_await std::move(connecting)) co_return;
  std::vector<std::byte> client_memory(8192);
  auto region = p.client_transport->register_memory(client_memory);
  Status waiter = Status(StatusCode::kInternal, "not finished");
  TaskScope scope;
  scope.spawn(wait_frame(p.server.get(), &waiter));
  FakeVerbs::complete_next_with_error(a, IBV_WC_GENERAL_ERR);
  std::vector<std::byte> local(8192);
  auto s_task = p.server->write_to((*region)->remote(0, 8192), local, kNoDeadline);
  Status s = co_await std::move(s_task);
  EXPECT_EQ(s.code(), StatusCode::kConnectionReset) << s;
  co_await scope.join();
  EXPECT_EQ(waiter.code(), StatusCode::kConnectionReset) << waiter;
  EXPECT_EQ(status_of(p.server.get()).code(), StatusCode::kConnectionReset);
  auto later_task =
      p.server->read_from((*region)->remote(0, 8), std::span(local).first(8), kNoDeadline);
  Status later = co_await std::move(later_task);
  EXPECT_EQ(later.code(), StatusCode::kConnectionReset);
  region->reset();
  auto closing = close_pair(&p);
  co_await std::move(closing);
}

TEST_F(RdmaTransportTest, InjectedErrorCompletionFailsWaitersWithARetryableStatus) {
  executor_->block_on(injected_error(a_, b_));
}

Task<void> post_failure(ibv_context* a, ibv_context* b) {
  Pair p;
  auto connecting = connect_pair(&p, a, b, small_config());
  if (!co_await std::move(connecting)) co_return;
  std::vector<std::byte> client_memory(16384);
  auto region = p.client_transport->register_memory(client_memory);
  std::vector<std::byte> local(16384);
  auto registered = p.server_transport->register_memory(local);
  FakeVerbs::fail_next_posts(a, 1, /*accepted_wrs=*/2);  // 4 WRs in the post, 2 accepted
  auto s_task = p.server->read_from((*region)->remote(0, 16384), local, kNoDeadline);
  Status s = co_await std::move(s_task);
  EXPECT_EQ(s.code(), StatusCode::kConnectionReset) << s;
  EXPECT_EQ(status_of(p.server.get()).code(), StatusCode::kConnectionReset);
  registered->reset();
  region->reset();
  auto closing = close_pair(&p);
  co_await std::move(closing);
}

TEST_F(RdmaTransportTest, PostFailureMidwayFailsTheConnectionAndWaitsForTheFlush) {
  executor_->block_on(post_failure(a_, b_));
}

Task<void> receiver_not_ready(ibv_context* a, ibv_context* b) {
  Pair p;
  auto connecting = connect_pair(&p, a, b, small_config());
  if (!co_await std::move(connecting)) co_return;
  FakeVerbs::set_receiver_not_ready(a, true);  // the server stops posting receives
  auto sent_task = p.client->send(request(1), {});
  Status sent = co_await std::move(sent_task);
  EXPECT_TRUE(sent.ok());  // posted; the RNR error arrives as a completion
  Result<Frame> f = co_await p.client->next_frame();
  EXPECT_EQ(f.status().code(), StatusCode::kConnectionReset) << f.status();
  EXPECT_NE(status_of(p.client.get()).message().find("RNR"), std::string::npos)
      << status_of(p.client.get());
  FakeVerbs::set_receiver_not_ready(a, false);
  auto closing = close_pair(&p);
  co_await std::move(closing);
}

TEST_F(RdmaTransportTest, ReceiverNotReadyFailsTheSenderInsteadOfHanging) {
  executor_->block_on(receiver_not_ready(a_, b_));
}

Task<void> peer_close(ibv_context* a, ibv_context* b) {
  Pair p;
  auto connecting = connect_pair(&p, a, b, small_config());
  if (!co_await std::move(connecting)) co_return;
  for (uint64_t i = 0; i < 3; ++i) {
    std::vector<std::byte> s_payload = pattern(300, 1);
    auto s_task = p.client->send(request(i), s_payload);
    Status s = co_await std::move(s_task);
    EXPECT_TRUE(s.ok());
  }
  co_await p.client->close();
  co_await p.client->close();  // idempotent
  for (uint64_t i = 0; i < 3; ++i) {
    Result<Frame> f = co_await p.server->next_frame();  // sent before close: delivered
    EXPECT_TRUE(f.ok() && f->header.request_id == i) << f.status();
  }
  Result<Frame> end = co_await p.server->next_frame();
  EXPECT_EQ(end.status().code(), StatusCode::kClosed) << end.status();
  auto s_task = p.client->send(request(9), {});
  Status s = co_await std::move(s_task);
  EXPECT_EQ(s.code(), StatusCode::kClosed);
  auto closing = close_pair(&p);
  co_await std::move(closing);
}

TEST_F(RdmaTransportTest, PeerCloseDeliversEarlierFramesThenReportsClosed) {
  executor_->block_on(peer_close(a_, b_));
}

Task<void> abandon(ibv_context* a, ibv_context* b) {
  Pair p;
  auto connecting = connect_pair(&p, a, b, small_config());
  if (!co_await std::move(connecting)) co_return;
  std::vector<std::byte> s_payload = pattern(600, 2);
  auto s_task = p.client->send(request(1), s_payload);
  Status s = co_await std::move(s_task);
  EXPECT_TRUE(s.ok());
  // Received before the client goes: destruction moves the QP to ERR, which flushes
  // sends the HCA has not executed yet (completions are asynchronous).
  Result<Frame> f = co_await p.server->next_frame();
  EXPECT_TRUE(f.ok());
  p.client.reset();  // no close(): the poller and watcher tear the core down
  Result<Frame> end = co_await p.server->next_frame();
  EXPECT_FALSE(end.ok());
  p.server.reset();
  co_await p.acceptor->close();
  p.acceptor.reset();
  Status slept = co_await sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(slept.ok());
}

TEST_F(RdmaTransportTest, ConnectionsDestroyedWithoutCloseReleaseEverything) {
  executor_->block_on(abandon(a_, b_));
}

// ---- the receive budget ----

Task<void> send_frames(Connection* c, uint64_t first, int count, size_t bytes) {
  for (int i = 0; i < count; ++i) {
    std::vector<std::byte> payload = pattern(bytes, static_cast<uint32_t>(first + i));
    auto sending = c->send(request(first + i), payload);
    Status sent = co_await std::move(sending);
    EXPECT_TRUE(sent.ok()) << sent;
  }
}

Task<void> take_frames(Connection* c, int count, size_t bytes, int* intact) {
  for (int i = 0; i < count; ++i) {
    Result<Frame> f = co_await c->next_frame();
    EXPECT_TRUE(f.ok()) << f.status();
    if (!f.ok()) co_return;
    uint32_t seed = static_cast<uint32_t>(f->header.request_id);
    if (f->payload == pattern(bytes, seed)) ++*intact;
  }
}

Task<void> budget_case(ibv_context* a, ibv_context* b) {
  constexpr size_t kFrameBytes = 60000;
  constexpr int kConnections = 3, kFramesEach = 4;
  RdmaConfig config = small_config();
  config.slot_bytes = 4096;
  config.frame_bytes_max = 64 << 10;
  config.recv_budget_bytes_max = 64 << 10;                  // one frame per connection
  config.transport_recv_budget_bytes_max = 2 * (64 << 10);  // two in the whole server
  Pair p;
  auto connecting = connect_pair(&p, a, b, config);
  if (!co_await std::move(connecting)) co_return;
  std::vector<std::unique_ptr<Connection>> servers, clients;
  servers.push_back(std::move(p.server));
  clients.push_back(std::move(p.client));
  TaskScope scope;
  for (int i = 1; i < kConnections; ++i) {
    std::unique_ptr<Connection> server;
    scope.spawn(accept_into(p.acceptor.get(), &server));
    auto more = p.client_transport->connect(p.acceptor->address(), kNoDeadline);
    Result<std::unique_ptr<Connection>> client = co_await std::move(more);
    co_await scope.join();
    EXPECT_TRUE(client.ok() && server) << client.status();
    if (!client.ok() || !server) co_return;
    servers.push_back(std::move(server));
    clients.push_back(std::move(client).value());
  }
  for (int i = 0; i < kConnections; ++i)
    scope.spawn(send_frames(clients[i].get(), uint64_t(i) * 100, kFramesEach, kFrameBytes));
  // Nobody consumes yet: the server admits what its budgets hold and keeps the rest out.
  for (int i = 0; i < 2000 && rdma_receive_counters(*p.server_transport)->refusals == 0; ++i) {
    Status slept = co_await sleep_for(std::chrono::milliseconds(1));
    EXPECT_TRUE(slept.ok());
  }
  RdmaReceiveCounters held = *rdma_receive_counters(*p.server_transport);
  EXPECT_EQ(held.bytes_max, 2u * (64 << 10));
  EXPECT_EQ(held.reserved_bytes, 2 * kFrameBytes);  // two frames admitted, never more
  EXPECT_GT(held.refusals, 0u);
  for (auto& s : servers)
    EXPECT_LE(static_cast<RdmaConnection*>(s.get())->receive_reserved_bytes(), 64u << 10);
  int intact = 0;
  for (int i = 0; i < kConnections; ++i)
    scope.spawn(take_frames(servers[i].get(), kFramesEach, kFrameBytes, &intact));
  co_await scope.join();
  EXPECT_EQ(intact, kConnections * kFramesEach);  // back-pressure, not loss
  EXPECT_EQ(rdma_receive_counters(*p.server_transport)->reserved_bytes, 0u);
  for (int i = 0; i < kConnections; ++i) {
    EXPECT_TRUE(status_of(servers[i].get()).ok());
    co_await clients[i]->close();
    co_await servers[i]->close();
  }
  auto closing = close_pair(&p);
  co_await std::move(closing);
}

TEST_F(RdmaTransportTest, ReceivedPayloadNeverReservesMoreThanTheBudgets) {
  executor_->block_on(budget_case(a_, b_));
}

// ---- device selection ----

TEST_F(RdmaTransportTest, OpenSaysNoRdmaDeviceWhenThereIsNone) {
  ibv_close_device(a_);
  ibv_close_device(b_);
  FakeVerbs::reset();  // the machine as it really is here: ENOSYS
  Result<std::unique_ptr<Transport>> none = open_rdma_transport();
  EXPECT_EQ(none.status().code(), StatusCode::kNotSupported);
  EXPECT_NE(none.status().message().find("no RDMA device"), std::string::npos);
  a_ = FakeVerbs::open_device("mlx5_a");
  b_ = FakeVerbs::open_device("mlx5_b");
  Result<std::unique_ptr<Transport>> some = open_rdma_transport();
  EXPECT_TRUE(some.ok()) << some.status();
  if (some.ok()) {
    EXPECT_EQ((*some)->name(), "rdma");
  }
}

TEST_F(RdmaTransportTest, BadConfigIsRefused) {
  RdmaConfig c = small_config();
  c.credit_batch_max = c.recv_slots_max + 1;
  EXPECT_EQ(make_rdma_transport(a_, c).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mica::net
