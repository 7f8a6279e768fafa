// The RDMA receive path's byte bound: received frames waiting for next_frame() hold back
// the peer's credits once their payload bytes reach frames_queued_bytes_max, so a peer
// cannot make a receiver that does not read hold more than that (plus the fragments it was
// already given credit for). Against the fake verbs provider.
#include <gtest/gtest.h>

#include "async/executor.h"
#include "async/frame_alloc.h"
#include "async/scope.h"
#include "net/rdma/rdma_transport.h"
#include "tests/net/fake_verbs.h"

namespace mica::net {
namespace {

using namespace std::chrono_literals;
using fake_verbs::FakeVerbs;

constexpr int kFrames = 40;
constexpr size_t kFrameBytes = 64 << 10;  // four 16 KiB fragments each

struct Pair {
  std::unique_ptr<Transport> server_transport;
  std::unique_ptr<Transport> client_transport;
  std::unique_ptr<Acceptor> acceptor;
  std::unique_ptr<Connection> server;
  std::unique_ptr<Connection> client;
};

Task<void> accept_into(Acceptor* acceptor, std::unique_ptr<Connection>* out) {
  Result<std::unique_ptr<Connection>> r = co_await acceptor->accept();
  EXPECT_TRUE(r.ok()) << r.status();
  if (r.ok()) *out = std::move(r).value();
}

Task<void> send_frames(Connection* connection, int* sent) {
  std::vector<std::byte> payload(kFrameBytes, std::byte{0x33});
  for (int i = 0; i < kFrames; ++i) {
    FrameHeader header;
    header.kind = FrameKind::kRequest;
    header.request_id = uint64_t(i) + 1;
    auto sending = connection->send(header, payload);
    Status s = co_await std::move(sending);
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok()) co_return;
    ++*sent;
  }
}

Task<void> budget_case(ibv_context* a, ibv_context* b, RdmaConfig config) {
  Pair p;
  auto server = make_rdma_transport(a, config);
  auto client = make_rdma_transport(b, config);
  EXPECT_TRUE(server.ok() && client.ok());
  if (!server.ok() || !client.ok()) co_return;
  p.server_transport = std::move(server).value();
  p.client_transport = std::move(client).value();
  auto acceptor = p.server_transport->listen(SocketAddress::loopback(0));
  EXPECT_TRUE(acceptor.ok());
  if (!acceptor.ok()) co_return;
  p.acceptor = std::move(acceptor).value();
  {
    TaskScope accepting;
    accepting.spawn(accept_into(p.acceptor.get(), &p.server));
    auto connecting = p.client_transport->connect(p.acceptor->address(), deadline_after(5s));
    Result<std::unique_ptr<Connection>> c = co_await std::move(connecting);
    co_await accepting.join();
    EXPECT_TRUE(c.ok()) << c.status();
    if (c.ok()) p.client = std::move(c).value();
  }
  if (p.client && p.server) {
    int sent = 0;
    TaskScope sender;
    sender.spawn(send_frames(p.client.get(), &sent));
    Status settle = co_await sleep_for(200ms);  // nobody reads on the server side
    EXPECT_TRUE(settle.ok());
    // 256 KiB queued (4 frames) stop the credits; the initial 32 and the batches returned
    // before that cover some 10 frames more — far from all 40.
    EXPECT_GE(sent, 4);
    EXPECT_LE(sent, 16);
    for (int i = 0; i < kFrames; ++i) {
      Result<Frame> frame = co_await p.server->next_frame();
      EXPECT_TRUE(frame.ok()) << frame.status();
      if (!frame.ok()) break;
      EXPECT_EQ(frame->payload.size(), kFrameBytes);
    }
    co_await sender.join();
    EXPECT_EQ(sent, kFrames);
  }
  if (p.client) co_await p.client->close();
  if (p.server) co_await p.server->close();
  co_await p.acceptor->close();
}

// Time cap: well under a second.
TEST(RdmaReceiveBudget, QueuedFrameBytesHoldBackThePeersCredits) {
  FakeVerbs::reset();
  ibv_context* a = FakeVerbs::open_device("mlx5_a");
  ibv_context* b = FakeVerbs::open_device("mlx5_b");
  int64_t frames = live_frames();
  RdmaConfig config;
  config.frames_queued_bytes_max = 4 * kFrameBytes;
  {
    auto executor = Executor::create_uring();
    executor->block_on(budget_case(a, b, config));
  }
  EXPECT_EQ(live_frames(), frames) << "frame leak";
  EXPECT_EQ(FakeVerbs::open_objects(a), 0u);
  EXPECT_EQ(FakeVerbs::open_objects(b), 0u);
  for (const std::string& m : FakeVerbs::misuse_log()) ADD_FAILURE() << "verbs misuse: " << m;
  ibv_close_device(a);
  ibv_close_device(b);
}

}  // namespace
}  // namespace mica::net
