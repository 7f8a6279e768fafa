// The fake verbs provider itself: RC semantics, completions, channel events and faults.
#include "tests/net/fake_verbs.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <tuple>
#include <vector>

namespace mica::fake_verbs {
namespace {

constexpr size_t kBufferBytes = 4096;
constexpr int kAllAccess =
    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE;

// One side of a connection: context, PD, channel, CQ, QP and a registered buffer.
struct Host {
  ibv_context* ctx = nullptr;
  ibv_pd* pd = nullptr;
  ibv_comp_channel* channel = nullptr;
  ibv_cq* cq = nullptr;
  ibv_qp* qp = nullptr;
  std::vector<std::byte> buffer = std::vector<std::byte>(kBufferBytes);
  ibv_mr* mr = nullptr;

  void open(const char* name, uint32_t max_send_wr = 16) {
    ctx = FakeVerbs::open_device(name);
    pd = ibv_alloc_pd(ctx);
    channel = ibv_create_comp_channel(ctx);
    cq = ibv_create_cq(ctx, 64, this, channel, 0);
    ibv_qp_init_attr init{};
    init.send_cq = cq;
    init.recv_cq = cq;
    init.qp_type = IBV_QPT_RC;
    init.cap.max_send_wr = max_send_wr;
    init.cap.max_recv_wr = 16;
    init.cap.max_send_sge = 2;
    init.cap.max_recv_sge = 2;
    qp = ibv_create_qp(pd, &init);
    mr = ibv_reg_mr(pd, buffer.data(), buffer.size(), kAllAccess);
  }
  void close() {
    ibv_destroy_qp(qp);
    ibv_dereg_mr(mr);
    ibv_destroy_cq(cq);
    ibv_destroy_comp_channel(channel);
    ibv_dealloc_pd(pd);
    EXPECT_EQ(FakeVerbs::open_objects(ctx), 0u);
    ibv_close_device(ctx);
  }
  int to_init(int access = kAllAccess) {
    ibv_qp_attr a{};
    a.qp_state = IBV_QPS_INIT;
    a.port_num = 1;
    a.qp_access_flags = access;
    return ibv_modify_qp(qp, &a,
                         IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
  }
  int to_rtr(const Host& peer) {
    ibv_port_attr port{};
    EXPECT_EQ(ibv_query_port(peer.ctx, 1, &port), 0);
    ibv_qp_attr a{};
    a.qp_state = IBV_QPS_RTR;
    a.path_mtu = IBV_MTU_4096;
    a.dest_qp_num = peer.qp->qp_num;
    a.rq_psn = 100;
    a.max_dest_rd_atomic = 1;
    a.min_rnr_timer = 1;
    a.ah_attr.dlid = port.lid;
    a.ah_attr.port_num = 1;
    return ibv_modify_qp(qp, &a,
                         IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                             IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
  }
  int to_rts(uint8_t rnr_retry) {
    ibv_qp_attr a{};
    a.qp_state = IBV_QPS_RTS;
    a.sq_psn = 100;
    a.timeout = 14;
    a.retry_cnt = 7;
    a.rnr_retry = rnr_retry;
    a.max_rd_atomic = 1;
    return ibv_modify_qp(qp, &a,
                         IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
                             IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC);
  }
  int post_recv(uint64_t wr_id, uint32_t length = kBufferBytes) {
    ibv_sge sge{reinterpret_cast<uintptr_t>(buffer.data()), length, mr->lkey};
    ibv_recv_wr wr{};
    wr.wr_id = wr_id;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    ibv_recv_wr* bad = nullptr;
    return ibv_post_recv(qp, &wr, &bad);
  }
  std::vector<ibv_wc> poll() {
    std::vector<ibv_wc> out;
    std::array<ibv_wc, 8> wc;
    int n;
    while ((n = ibv_poll_cq(cq, static_cast<int>(wc.size()), wc.data())) > 0)
      out.insert(out.end(), wc.begin(), wc.begin() + n);
    return out;
  }
};

ibv_send_wr make_wr(ibv_wr_opcode op, ibv_sge* sge, uint64_t wr_id, bool signaled) {
  ibv_send_wr wr{};
  wr.wr_id = wr_id;
  wr.opcode = op;
  wr.sg_list = sge;
  wr.num_sge = 1;
  wr.send_flags = signaled ? IBV_SEND_SIGNALED : 0;
  return wr;
}

class FakeVerbsTest : public ::testing::Test {
 protected:
  void SetUp() override { FakeVerbs::reset(); }
  void connect(uint8_t rnr_retry = 0) {
    a.open("fake0");
    b.open("fake1");
    ASSERT_EQ(a.to_init(), 0);
    ASSERT_EQ(b.to_init(), 0);
    ASSERT_EQ(a.to_rtr(b), 0);
    ASSERT_EQ(b.to_rtr(a), 0);
    ASSERT_EQ(a.to_rts(rnr_retry), 0);
    ASSERT_EQ(b.to_rts(rnr_retry), 0);
  }
  void TearDown() override {
    if (a.ctx) {
      a.poll();
      b.poll();
      a.close();
      b.close();
    }
    EXPECT_EQ(FakeVerbs::stats().misuse, 0u);
  }
  ibv_sge sge_of(Host& h, size_t offset, uint32_t length) {
    return ibv_sge{reinterpret_cast<uintptr_t>(h.buffer.data() + offset), length, h.mr->lkey};
  }
  int post(Host& h, ibv_send_wr* wr) {
    ibv_send_wr* bad = nullptr;
    return ibv_post_send(h.qp, wr, &bad);
  }
  Host a;
  Host b;
};

TEST_F(FakeVerbsTest, DeviceListIsEmptyWithEnosysUntilADeviceIsOpened) {
  int n = -1;
  errno = 0;
  EXPECT_EQ(ibv_get_device_list(&n), nullptr);
  EXPECT_EQ(errno, ENOSYS);
  ibv_context* ctx = FakeVerbs::open_device("mlx5_0");
  ibv_device** list = ibv_get_device_list(&n);
  ASSERT_NE(list, nullptr);
  EXPECT_EQ(n, 1);
  EXPECT_STREQ(ibv_get_device_name(list[0]), "mlx5_0");
  ibv_free_device_list(list);
  ibv_close_device(ctx);
}

TEST_F(FakeVerbsTest, QpStateMachineRefusesSkippedStatesAndMissingAttributes) {
  a.open("fake0");
  b.open("fake1");
  EXPECT_EQ(a.to_rtr(b), EINVAL);  // RESET → RTR skips INIT
  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_INIT;
  EXPECT_EQ(ibv_modify_qp(a.qp, &attr, IBV_QP_STATE), EINVAL);  // no port/access flags
  EXPECT_EQ(a.to_init(), 0);
  EXPECT_EQ(a.to_rts(0), EINVAL);  // INIT → RTS skips RTR
  ibv_sge sge = sge_of(a, 0, 8);
  ibv_send_wr wr = make_wr(IBV_WR_SEND, &sge, 1, true);
  EXPECT_EQ(post(a, &wr), EINVAL);  // sends need RTS
  ibv_qp_attr q{};
  ibv_qp_init_attr init{};
  EXPECT_EQ(ibv_query_qp(a.qp, &q, IBV_QP_STATE, &init), 0);
  EXPECT_EQ(q.qp_state, IBV_QPS_INIT);
}

TEST_F(FakeVerbsTest, SendWithImmediateLandsInThePostedReceive) {
  connect();
  ASSERT_EQ(b.post_recv(7), 0);
  std::memcpy(a.buffer.data(), "hello", 5);
  ibv_sge sge = sge_of(a, 0, 5);
  ibv_send_wr wr = make_wr(IBV_WR_SEND_WITH_IMM, &sge, 1, true);
  wr.imm_data = htonl(42);
  ASSERT_EQ(post(a, &wr), 0);
  auto sent = a.poll();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].status, IBV_WC_SUCCESS);
  EXPECT_EQ(sent[0].opcode, IBV_WC_SEND);
  auto got = b.poll();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].wr_id, 7u);
  EXPECT_EQ(got[0].opcode, IBV_WC_RECV);
  EXPECT_EQ(got[0].byte_len, 5u);
  EXPECT_TRUE(got[0].wc_flags & IBV_WC_WITH_IMM);
  EXPECT_EQ(ntohl(got[0].imm_data), 42u);
  EXPECT_EQ(std::memcmp(b.buffer.data(), "hello", 5), 0);
}

TEST_F(FakeVerbsTest, UnsignaledSendsProduceNoCompletionAndFillTheSendQueue) {
  a.open("fake0", /*max_send_wr=*/4);
  b.open("fake1");
  ASSERT_EQ(a.to_init(), 0);
  ASSERT_EQ(b.to_init(), 0);
  ASSERT_EQ(a.to_rtr(b), 0);
  ASSERT_EQ(b.to_rtr(a), 0);
  ASSERT_EQ(a.to_rts(0), 0);
  for (int i = 0; i < 8; ++i) ASSERT_EQ(b.post_recv(i, 64), 0);
  ibv_sge sge = sge_of(a, 0, 8);
  for (int i = 0; i < 4; ++i) {
    ibv_send_wr wr = make_wr(IBV_WR_SEND, &sge, i, false);
    ASSERT_EQ(post(a, &wr), 0);
  }
  EXPECT_TRUE(a.poll().empty());
  ibv_send_wr wr = make_wr(IBV_WR_SEND, &sge, 9, true);
  EXPECT_EQ(post(a, &wr), ENOMEM);  // nothing signaled, nothing retired
}

TEST_F(FakeVerbsTest, SignaledCompletionRetiresEarlierUnsignaledSlots) {
  a.open("fake0", /*max_send_wr=*/2);
  b.open("fake1");
  ASSERT_EQ(a.to_init(), 0);
  ASSERT_EQ(b.to_init(), 0);
  ASSERT_EQ(a.to_rtr(b), 0);
  ASSERT_EQ(b.to_rtr(a), 0);
  ASSERT_EQ(a.to_rts(0), 0);
  for (int i = 0; i < 8; ++i) ASSERT_EQ(b.post_recv(i, 64), 0);
  ibv_sge sge = sge_of(a, 0, 8);
  for (int round = 0; round < 3; ++round) {
    ibv_send_wr first = make_wr(IBV_WR_SEND, &sge, 1, false);
    ibv_send_wr last = make_wr(IBV_WR_SEND, &sge, 2, true);
    first.next = &last;
    ASSERT_EQ(post(a, &first), 0);
    auto wcs = a.poll();
    ASSERT_EQ(wcs.size(), 1u);
    EXPECT_EQ(wcs[0].wr_id, 2u);
    b.poll();
    for (int i = 0; i < 2; ++i) ASSERT_EQ(b.post_recv(i, 64), 0);
  }
}

TEST_F(FakeVerbsTest, ReceiverNotReadyFailsAtOnceWithoutRnrRetries) {
  connect(/*rnr_retry=*/0);
  ibv_sge sge = sge_of(a, 0, 8);
  ibv_send_wr wr = make_wr(IBV_WR_SEND, &sge, 1, false);
  ASSERT_EQ(post(a, &wr), 0);
  auto wcs = a.poll();
  ASSERT_EQ(wcs.size(), 1u);  // errors complete even when unsignaled
  EXPECT_EQ(wcs[0].status, IBV_WC_RNR_RETRY_EXC_ERR);
  EXPECT_EQ(FakeVerbs::qp_state(a.qp->qp_num), IBV_QPS_ERR);
}

TEST_F(FakeVerbsTest, InfiniteRnrRetryStallsTheSendQueueUntilAReceiveIsPosted) {
  connect(/*rnr_retry=*/7);
  ibv_sge sge = sge_of(a, 0, 8);
  ibv_send_wr first = make_wr(IBV_WR_SEND, &sge, 1, true);
  ibv_send_wr second = make_wr(IBV_WR_SEND, &sge, 2, true);
  first.next = &second;
  ASSERT_EQ(post(a, &first), 0);
  EXPECT_TRUE(a.poll().empty());
  ASSERT_EQ(b.post_recv(10), 0);  // releases the first send only
  auto wcs = a.poll();
  ASSERT_EQ(wcs.size(), 1u);
  EXPECT_EQ(wcs[0].wr_id, 1u);
  ASSERT_EQ(b.post_recv(11), 0);
  wcs = a.poll();
  ASSERT_EQ(wcs.size(), 1u);
  EXPECT_EQ(wcs[0].wr_id, 2u);
}

TEST_F(FakeVerbsTest, ReceiveTooSmallFailsBothEnds) {
  connect();
  ASSERT_EQ(b.post_recv(5, 4), 0);
  ibv_sge sge = sge_of(a, 0, 8);
  ibv_send_wr wr = make_wr(IBV_WR_SEND, &sge, 1, true);
  ASSERT_EQ(post(a, &wr), 0);
  auto sent = a.poll();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].status, IBV_WC_REM_INV_REQ_ERR);
  auto got = b.poll();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].status, IBV_WC_LOC_LEN_ERR);
}

TEST_F(FakeVerbsTest, RdmaWriteAndReadMoveBytesWithTheRightKey) {
  connect();
  std::memcpy(a.buffer.data(), "payload!", 8);
  ibv_sge sge = sge_of(a, 0, 8);
  ibv_send_wr wr = make_wr(IBV_WR_RDMA_WRITE, &sge, 1, true);
  wr.wr.rdma.remote_addr = reinterpret_cast<uintptr_t>(b.buffer.data()) + 100;
  wr.wr.rdma.rkey = b.mr->rkey;
  ASSERT_EQ(post(a, &wr), 0);
  EXPECT_EQ(std::memcmp(b.buffer.data() + 100, "payload!", 8), 0);
  ibv_sge back = sge_of(a, 200, 8);
  ibv_send_wr read = make_wr(IBV_WR_RDMA_READ, &back, 2, true);
  read.wr.rdma.remote_addr = reinterpret_cast<uintptr_t>(b.buffer.data()) + 100;
  read.wr.rdma.rkey = b.mr->rkey;
  ASSERT_EQ(post(a, &read), 0);
  EXPECT_EQ(std::memcmp(a.buffer.data() + 200, "payload!", 8), 0);
  auto wcs = a.poll();
  ASSERT_EQ(wcs.size(), 2u);
  EXPECT_EQ(wcs[0].opcode, IBV_WC_RDMA_WRITE);
  EXPECT_EQ(wcs[1].opcode, IBV_WC_RDMA_READ);
  EXPECT_EQ(wcs[1].byte_len, 8u);
  EXPECT_TRUE(b.poll().empty());  // one-sided: the target sees nothing
}

TEST_F(FakeVerbsTest, BadKeyOrRangeOrAccessIsARemoteAccessError) {
  for (int variant = 0; variant < 3; ++variant) {
    FakeVerbs::reset();
    a = Host{};
    b = Host{};
    connect();
    ibv_mr* read_only = nullptr;
    std::vector<std::byte> other(64);
    ibv_sge sge = sge_of(a, 0, 8);
    ibv_send_wr wr = make_wr(IBV_WR_RDMA_WRITE, &sge, 1, false);
    wr.wr.rdma.remote_addr = reinterpret_cast<uintptr_t>(b.buffer.data());
    wr.wr.rdma.rkey = b.mr->rkey;
    if (variant == 0) wr.wr.rdma.rkey = b.mr->lkey;                // an lkey is not an rkey
    if (variant == 1) wr.wr.rdma.remote_addr += kBufferBytes - 4;  // runs past the end
    if (variant == 2) {
      int read_access = IBV_ACCESS_REMOTE_READ;
      read_only = ibv_reg_mr(b.pd, other.data(), other.size(), read_access);
      wr.wr.rdma.remote_addr = reinterpret_cast<uintptr_t>(other.data());
      wr.wr.rdma.rkey = read_only->rkey;
    }
    ASSERT_EQ(post(a, &wr), 0);
    auto wcs = a.poll();
    ASSERT_EQ(wcs.size(), 1u) << variant;
    EXPECT_EQ(wcs[0].status, IBV_WC_REM_ACCESS_ERR) << variant;
    EXPECT_EQ(FakeVerbs::qp_state(a.qp->qp_num), IBV_QPS_ERR);
    if (read_only) ibv_dereg_mr(read_only);
    a.poll();
    b.poll();
    a.close();
    b.close();
  }
  a.ctx = nullptr;
}

TEST_F(FakeVerbsTest, QpErrorFlushesOutstandingWorkRequests) {
  connect(/*rnr_retry=*/7);
  ASSERT_EQ(a.post_recv(1), 0);
  ASSERT_EQ(a.post_recv(2), 0);
  ibv_sge sge = sge_of(a, 0, 8);
  ibv_send_wr wr = make_wr(IBV_WR_SEND, &sge, 3, false);  // stalls: b has no receive
  ASSERT_EQ(post(a, &wr), 0);
  FakeVerbs::force_error(a.ctx);
  auto wcs = a.poll();
  ASSERT_EQ(wcs.size(), 3u);
  for (const ibv_wc& wc : wcs) EXPECT_EQ(wc.status, IBV_WC_WR_FLUSH_ERR);
  ASSERT_EQ(post(a, &wr), 0);  // posting in ERR flushes at once
  wcs = a.poll();
  ASSERT_EQ(wcs.size(), 1u);
  EXPECT_EQ(wcs[0].status, IBV_WC_WR_FLUSH_ERR);
}

TEST_F(FakeVerbsTest, PostFailureMidwayKeepsThePrefix) {
  connect();
  FakeVerbs::fail_next_posts(a.ctx, 1, /*accepted_wrs=*/1, ENOMEM);
  std::memcpy(a.buffer.data(), "ab", 2);
  ibv_sge s0 = sge_of(a, 0, 1);
  ibv_sge s1 = sge_of(a, 1, 1);
  ibv_send_wr w0 = make_wr(IBV_WR_RDMA_WRITE, &s0, 1, false);
  ibv_send_wr w1 = make_wr(IBV_WR_RDMA_WRITE, &s1, 2, true);
  for (ibv_send_wr* w : {&w0, &w1}) {
    w->wr.rdma.remote_addr = reinterpret_cast<uintptr_t>(b.buffer.data()) + (w == &w1);
    w->wr.rdma.rkey = b.mr->rkey;
  }
  w0.next = &w1;
  ibv_send_wr* bad = nullptr;
  EXPECT_EQ(ibv_post_send(a.qp, &w0, &bad), ENOMEM);
  EXPECT_EQ(bad, &w1);
  EXPECT_EQ(b.buffer[0], std::byte{'a'});
  EXPECT_EQ(b.buffer[1], std::byte{0});
  EXPECT_EQ(post(a, &w1), 0);  // the fault was for one post only
}

TEST_F(FakeVerbsTest, InjectedErrorCompletionMovesTheQpToError) {
  connect();
  FakeVerbs::complete_next_with_error(a.ctx, IBV_WC_GENERAL_ERR);
  ibv_sge sge = sge_of(a, 0, 8);
  ibv_send_wr wr = make_wr(IBV_WR_RDMA_WRITE, &sge, 1, false);
  wr.wr.rdma.remote_addr = reinterpret_cast<uintptr_t>(b.buffer.data());
  wr.wr.rdma.rkey = b.mr->rkey;
  ASSERT_EQ(post(a, &wr), 0);
  auto wcs = a.poll();
  ASSERT_EQ(wcs.size(), 1u);
  EXPECT_EQ(wcs[0].status, IBV_WC_GENERAL_ERR);
  EXPECT_EQ(FakeVerbs::qp_state(a.qp->qp_num), IBV_QPS_ERR);
}

TEST_F(FakeVerbsTest, ChannelFdBecomesReadableOnlyForCompletionsAfterArming) {
  connect();
  ASSERT_EQ(b.post_recv(1), 0);
  ASSERT_EQ(b.post_recv(2), 0);
  ibv_sge sge = sge_of(a, 0, 8);
  ibv_send_wr wr = make_wr(IBV_WR_SEND, &sge, 1, false);
  ASSERT_EQ(post(a, &wr), 0);  // b's CQ is not armed: no event
  pollfd p{b.channel->fd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);
  ASSERT_EQ(ibv_req_notify_cq(b.cq, 0), 0);
  EXPECT_EQ(::poll(&p, 1, 0), 0);  // arming does not report what is already there
  ASSERT_EQ(post(a, &wr), 0);
  EXPECT_EQ(::poll(&p, 1, 0), 1);
  ibv_cq* cq = nullptr;
  void* context = nullptr;
  ASSERT_EQ(ibv_get_cq_event(b.channel, &cq, &context), 0);
  EXPECT_EQ(cq, b.cq);
  EXPECT_EQ(context, &b);
  ibv_ack_cq_events(cq, 1);
  EXPECT_EQ(b.poll().size(), 2u);
  EXPECT_EQ(FakeVerbs::stats().channel_events, 1u);
}

}  // namespace
}  // namespace mica::fake_verbs

namespace mica::fake_verbs {
namespace {

std::vector<uint32_t> keys_with_seed(uint64_t seed) {
  FakeVerbs::reset(seed);
  ibv_context* ctx = FakeVerbs::open_device("keys");
  ibv_pd* pd = ibv_alloc_pd(ctx);
  std::vector<std::byte> memory(256);
  ibv_mr* first = ibv_reg_mr(pd, memory.data(), 128, kAllAccess);
  ibv_mr* second = ibv_reg_mr(pd, memory.data() + 128, 128, kAllAccess);
  std::vector<uint32_t> keys = {first->lkey, first->rkey, second->lkey, second->rkey};
  ibv_dereg_mr(first);
  ibv_dereg_mr(second);
  ibv_dealloc_pd(pd);
  ibv_close_device(ctx);
  return keys;
}

TEST(FakeVerbsKeys, RegionKeysAreDrawnFromTheSeedNotACounter) {
  std::vector<uint32_t> one = keys_with_seed(1);
  EXPECT_EQ(keys_with_seed(1), one);  // a seed replays
  std::vector<uint32_t> other = keys_with_seed(2);
  EXPECT_NE(other, one);
  for (const std::vector<uint32_t>& k : {one, other}) {
    EXPECT_NE(k[0], k[1]);  // lkey and rkey differ
    uint32_t step = k[3] - k[1];
    EXPECT_GT(std::min(step, 0u - step), 1024u) << "rkeys look sequential";
  }
}

// A QP on host's PD and CQ connected to peer's QP (both INIT → RTR → RTS).
void join(ibv_qp* qp, ibv_context* ctx, ibv_qp* peer_qp, ibv_context* peer_ctx) {
  for (auto [q, c, p] : {std::tuple{qp, peer_ctx, peer_qp}, std::tuple{peer_qp, ctx, qp}}) {
    ibv_qp_attr a{};
    a.qp_state = IBV_QPS_INIT;
    a.port_num = 1;
    a.qp_access_flags = kAllAccess;
    ASSERT_EQ(
        ibv_modify_qp(q, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS),
        0);
    ibv_port_attr port{};
    ASSERT_EQ(ibv_query_port(c, 1, &port), 0);
    ibv_qp_attr r{};
    r.qp_state = IBV_QPS_RTR;
    r.path_mtu = IBV_MTU_4096;
    r.dest_qp_num = p->qp_num;
    r.ah_attr.dlid = port.lid;
    r.ah_attr.port_num = 1;
    ASSERT_EQ(ibv_modify_qp(q, &r,
                            IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                                IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER),
              0);
  }
  for (ibv_qp* q : {qp, peer_qp}) {
    ibv_qp_attr s{};
    s.qp_state = IBV_QPS_RTS;
    ASSERT_EQ(ibv_modify_qp(q, &s,
                            IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
                                IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC),
              0);
  }
}

TEST(FakeVerbsAsync, CompletionsArriveLaterInOrderPerQpAndOutOfOrderAcrossQps) {
  FakeVerbs::reset();
  FakeVerbs::set_timing(Timing{.async = true, .seed = 9, .delay_us_max = 300});
  Host a, b, c;
  a.open("fake0");
  b.open("fake1");
  c.open("fake2");
  // a.qp talks to b, a second QP on a's PD and CQ talks to c: one CQ sees both.
  ibv_qp_init_attr init{};
  init.send_cq = a.cq;
  init.recv_cq = a.cq;
  init.qp_type = IBV_QPT_RC;
  init.cap = {16, 16, 2, 2, 0};
  ibv_qp* second = ibv_create_qp(a.pd, &init);
  join(a.qp, a.ctx, b.qp, b.ctx);
  join(second, a.ctx, c.qp, c.ctx);
  constexpr uint64_t kWrs = 24;  // 12 per QP, within the send queues
  for (uint64_t i = 0; i < kWrs; ++i) {
    Host& target = i % 2 == 0 ? b : c;
    ibv_sge sge{reinterpret_cast<uintptr_t>(a.buffer.data()), 64, a.mr->lkey};
    ibv_send_wr wr = make_wr(IBV_WR_RDMA_WRITE, &sge, i, true);
    wr.wr.rdma.remote_addr = reinterpret_cast<uintptr_t>(target.buffer.data());
    wr.wr.rdma.rkey = target.mr->rkey;
    ibv_send_wr* bad = nullptr;
    ASSERT_EQ(ibv_post_send(i % 2 == 0 ? a.qp : second, &wr, &bad), 0);
  }
  // Not all done inside the posts; what is done already counts.
  std::vector<ibv_wc> done = a.poll();
  EXPECT_LT(done.size(), kWrs);
  for (int i = 0; i < 2000 && done.size() < kWrs; ++i) {
    std::vector<ibv_wc> more = a.poll();
    done.insert(done.end(), more.begin(), more.end());
    usleep(1000);
  }
  ASSERT_EQ(done.size(), kWrs);
  uint64_t last[2] = {0, 1};
  bool first[2] = {true, true};
  bool crossed = false;
  for (size_t i = 0; i < done.size(); ++i) {
    EXPECT_EQ(done[i].status, IBV_WC_SUCCESS);
    uint64_t id = done[i].wr_id;
    int qp = static_cast<int>(id % 2);
    EXPECT_TRUE(first[qp] || id > last[qp]) << "RC completes in order within a QP";
    first[qp] = false;
    last[qp] = id;
    if (i > 0 && id < done[i - 1].wr_id) crossed = true;
  }
  EXPECT_TRUE(crossed) << "a later WR of one QP completed before an earlier one of the other";
  ibv_destroy_qp(second);
  a.close();
  b.close();
  c.close();
  FakeVerbs::reset();
}

}  // namespace
}  // namespace mica::fake_verbs
