// RdmaCore: rings, credits, signaling, one-sided operations and failure handling of one
// RC queue pair (see rdma_connection.h and docs/net-rdma.md).
#include "net/rdma/rdma_connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace mica::net {

using namespace rdma_wire;

namespace {

// Waking every waiter of a failed connection: they each get a unit, then see the failure.
constexpr uint64_t kFloodUnits = uint64_t(1) << 40;

// QP access rights (ints: the v44 macros mix enum types). Without the remote ones a peer's
// RDMA READ or WRITE fails and takes the QP down (refuse_peer_transfers).
constexpr int kLocalAccess = IBV_ACCESS_LOCAL_WRITE;
constexpr int kRemoteAccess =
    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE;

Status reset_status(std::string why) {
  return Status(StatusCode::kConnectionReset, std::move(why));
}

}  // namespace

RdmaCore::RdmaCore(std::shared_ptr<RdmaDevice> device, RdmaConfig config)
    : device_(std::move(device)),
      config_(config),
      recv_total_(config.recv_slots_max + config.ack_recv_slots_max),
      send_slots_(config.send_slots_max),
      bulk_wrs_(config.bulk_wrs_in_flight_max),
      bounces_(config.bounce_buffers_max),
      recv_budget_(config.recv_budget_bytes_max),
      receiver_(config.frame_bytes_max, &recv_budget_, &device_->recv_budget(),
                [this](uint32_t slot, uint32_t length) {
                  return std::span<const std::byte>(recv_slot(slot), length);
                }) {
  for (uint32_t i = 0; i < config.bounce_buffers_max; ++i) free_bounces_.push_back(i);
  if (config.frame_bytes_max_at_start != 0)
    receiver_.limit_frames(kFramesUntilLifted, config.frame_bytes_max_at_start);
}

Result<std::shared_ptr<RdmaCore>> RdmaCore::create(std::shared_ptr<RdmaDevice> device,
                                                   RdmaConfig config) {
  RETURN_IF_ERROR(config.validate());
  std::shared_ptr<RdmaCore> core(new RdmaCore(std::move(device), config));
  RETURN_IF_ERROR(core->create_verbs());
  return core;
}

Status RdmaCore::create_verbs() {
  const RdmaConfig& c = config_;
  // One registration per connection, made here and never on the data path: send ring,
  // receive ring and bounce buffers side by side.
  memory_bytes_ = size_t(c.send_slots_max + recv_total_) * c.slot_bytes +
                  size_t(c.bounce_buffers_max) * c.bounce_buffer_bytes;
  memory_bytes_ = (memory_bytes_ + 4095) & ~size_t(4095);
  memory_ = static_cast<std::byte*>(std::aligned_alloc(4096, memory_bytes_));
  if (memory_ == nullptr) return Status(StatusCode::kResourceExhausted, "ring memory");
  int access = IBV_ACCESS_LOCAL_WRITE;  // an int: the v44 macro mixes enum types
  mr_ = ibv_reg_mr(device_->pd(), memory_, memory_bytes_, access);
  if (mr_ == nullptr) return Status::from_errno(errno ? errno : ENOMEM, "ibv_reg_mr (rings)");
  channel_ = ibv_create_comp_channel(device_->context());
  if (channel_ == nullptr) return Status::from_errno(errno ? errno : ENOMEM, "comp channel");
  // The runtime polls the fd; ibv_get_cq_event must then never block the executor.
  int flags = fcntl(channel_->fd, F_GETFL);
  if (flags < 0 || fcntl(channel_->fd, F_SETFL, flags | O_NONBLOCK) != 0)
    return Status::from_errno(errno, "fcntl(completion channel)");
  // Both within the device's limits: the device clamped the config (clamp_to_device).
  uint32_t send_wrs = rdma_send_wrs(c);
  // Every WR of both queues may complete (flushes complete unsignaled WRs too).
  int cqe = static_cast<int>(send_wrs + recv_total_);
  cq_ = ibv_create_cq(device_->context(), cqe, this, channel_, 0);
  if (cq_ == nullptr) return Status::from_errno(errno ? errno : ENOMEM, "ibv_create_cq");
  ibv_qp_init_attr init{};
  init.send_cq = cq_;
  init.recv_cq = cq_;
  init.qp_type = IBV_QPT_RC;
  init.cap.max_send_wr = send_wrs;
  init.cap.max_recv_wr = recv_total_;
  init.cap.max_send_sge = 1;
  init.cap.max_recv_sge = 1;
  qp_ = ibv_create_qp(device_->pd(), &init);
  if (qp_ == nullptr) return Status::from_errno(errno ? errno : ENOMEM, "ibv_create_qp");
  // A PSN that differs per QP without another source of randomness (keeps runs replayable).
  psn_ = (qp_->qp_num * 2654435761u) & kCreditMask;
  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_INIT;
  attr.port_num = device_->port_num();
  attr.pkey_index = 0;
  attr.qp_access_flags = config_.peer_transfers_refused_at_start ? kLocalAccess : kRemoteAccess;
  int mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS;
  if (int rc = ibv_modify_qp(qp_, &attr, mask); rc != 0)
    return Status::from_errno(rc, "QP to INIT");
  return Status();
}

RdmaCore::~RdmaCore() {
  if (started_) device_->detach(this);
  if (qp_) ibv_destroy_qp(qp_);
  if (cq_) {
    if (unacked_events_ > 0) ibv_ack_cq_events(cq_, unacked_events_);
    ibv_destroy_cq(cq_);
  }
  if (channel_) ibv_destroy_comp_channel(channel_);
  if (mr_) ibv_dereg_mr(mr_);
  std::free(memory_);
}

std::byte* RdmaCore::send_slot(uint32_t i) const {
  return memory_ + size_t(i) * config_.slot_bytes;
}
std::byte* RdmaCore::recv_slot(uint32_t i) const {
  return memory_ + size_t(config_.send_slots_max + i) * config_.slot_bytes;
}
std::byte* RdmaCore::bounce(uint32_t i) const {
  return memory_ + size_t(config_.send_slots_max + recv_total_) * config_.slot_bytes +
         size_t(i) * config_.bounce_buffer_bytes;
}

RdmaHello RdmaCore::hello() const {
  RdmaHello h;
  h.qp_num = qp_->qp_num;
  h.psn = psn_;
  h.lid = device_->lid();
  h.gid.assign(device_->gid().raw, device_->gid().raw + 16);
  h.use_gid = device_->use_gid();
  h.mtu_bytes = std::min(mtu_bytes(device_->active_mtu()), config_.path_mtu_bytes_max);
  h.recv_slots = config_.recv_slots_max;
  h.ack_recv_slots = config_.ack_recv_slots_max;
  h.slot_bytes = config_.slot_bytes;
  return h;
}

Status RdmaCore::post_recv(uint32_t slot) {
  ibv_sge sge{reinterpret_cast<uintptr_t>(recv_slot(slot)), config_.slot_bytes, mr_->lkey};
  ibv_recv_wr wr{};
  wr.wr_id = (uint64_t(slot) << 3) | kRecvWr;
  wr.sg_list = &sge;
  wr.num_sge = 1;
  ibv_recv_wr* bad = nullptr;
  if (int rc = ibv_post_recv(qp_, &wr, &bad); rc != 0)
    return Status(StatusCode::kConnectionReset, fmt::format("ibv_post_recv: {}", rc));
  return Status();
}

Status RdmaCore::to_rtr(const RdmaHello& peer) {
  if (peer.magic != kRdmaHelloMagic || peer.version != kRdmaHelloVersion || peer.gid.size() != 16 ||
      peer.use_gid != device_->use_gid() || peer.recv_slots == 0 || peer.recv_slots > kCreditMask ||
      peer.ack_recv_slots < 2 || peer.slot_bytes < 2 * kFrameHeaderBytes)
    return Status(StatusCode::kProtocolError, "bad RDMA handshake from peer");
  fragment_bytes_ = std::min(config_.slot_bytes, peer.slot_bytes);
  peer_recv_slots_ = peer.recv_slots;
  credits_.release(peer.recv_slots);
  // Our acks land in the peer's reserved receives: at most recv_slots / batch of them can
  // be unread there (each returns a full batch), so the batch grows to fit that reserve,
  // one receive kept for the close notice.
  uint32_t reserve = peer.ack_recv_slots - 1;
  credit_batch_ =
      std::max(config_.credit_batch_max, (config_.recv_slots_max + reserve - 1) / reserve);
  credit_batch_ = std::min(credit_batch_, config_.recv_slots_max);
  // Receives go up before RTR: the peer may send as soon as it is in RTS.
  for (uint32_t i = 0; i < recv_total_; ++i) RETURN_IF_ERROR(post_recv(i));
  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_RTR;
  attr.path_mtu = mtu_from_bytes(std::min(peer.mtu_bytes, hello().mtu_bytes));
  attr.dest_qp_num = peer.qp_num;
  attr.rq_psn = peer.psn;
  attr.max_dest_rd_atomic = config_.rd_atomic_max;
  attr.min_rnr_timer = config_.min_rnr_timer;
  attr.ah_attr.port_num = device_->port_num();
  if (peer.use_gid) {
    attr.ah_attr.is_global = 1;
    std::memcpy(attr.ah_attr.grh.dgid.raw, peer.gid.data(), 16);
    attr.ah_attr.grh.sgid_index = static_cast<uint8_t>(device_->gid_index());
    attr.ah_attr.grh.hop_limit = 64;
  } else {
    attr.ah_attr.dlid = peer.lid;
  }
  int mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
             IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
  if (int rc = ibv_modify_qp(qp_, &attr, mask); rc != 0) return Status::from_errno(rc, "RTR");
  return Status();
}

Status RdmaCore::set_remote_access(bool allowed) {
  if (failed()) return failure_;
  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_RTS;
  attr.qp_access_flags = allowed ? kRemoteAccess : kLocalAccess;
  if (int rc = ibv_modify_qp(qp_, &attr, IBV_QP_STATE | IBV_QP_ACCESS_FLAGS); rc != 0) {
    fail(reset_status(fmt::format("QP access flags: {}", rc)));
    return failure_;
  }
  return Status();
}

Status RdmaCore::to_rts() {
  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_RTS;
  attr.sq_psn = psn_;
  attr.timeout = config_.timeout_exp;
  attr.retry_cnt = config_.retry_count;
  attr.rnr_retry = config_.rnr_retry_count;
  attr.max_rd_atomic = config_.rd_atomic_max;
  int mask = IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
             IBV_QP_MAX_QP_RD_ATOMIC;
  if (int rc = ibv_modify_qp(qp_, &attr, mask); rc != 0) return Status::from_errno(rc, "RTS");
  return Status();
}

void RdmaCore::start(Socket socket, std::string peer_name) {
  socket_ = std::move(socket);
  peer_ = std::move(peer_name);
  started_ = true;
  // Arm before the first wait; poll_loop drains whatever arrived before arming.
  ibv_req_notify_cq(cq_, 0);
  std::shared_ptr<RdmaCore> self = shared_from_this();
  device_->attach(this);
  poll_loop(self).start(poller_cancel_.token());
  watch_loop(self).start(watcher_cancel_.token());
  event_loop(self).start(events_cancel_.token());
}

// ---- failure ----

void RdmaCore::fail(Status why) {
  if (failed()) return;
  failure_ = std::move(why);
  // ERR flushes every outstanding WR, so each waiter still gets its own completion.
  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_ERR;
  ibv_modify_qp(qp_, &attr, IBV_QP_STATE);
  credits_.release(kFloodUnits);
  send_slots_.release(kFloodUnits);
  bulk_wrs_.release(kFloodUnits);
  bounces_.release(kFloodUnits);
  frame_ready_.set();
}

// ---- sending frames ----

uint32_t RdmaCore::take_credits() {
  // While next_frame's queue is full (in frames or bytes), credits stay here: the peer
  // stops sending. A frame being assembled still gets its credits, so it always completes.
  if (receiver_.frames_ready() >= config_.frames_queued_max ||
      receiver_.queued_bytes() >= config_.frames_queued_bytes_max)
    return 0;
  uint32_t n = std::min(credits_owed_, kCreditMask);
  credits_owed_ -= n;
  return n;
}

Status RdmaCore::post_fragment(uint32_t slot, uint32_t length, bool signaled) {
  ibv_sge sge{reinterpret_cast<uintptr_t>(send_slot(slot)), length, mr_->lkey};
  ibv_send_wr wr{};
  uint64_t seq = ++sq_seq_;
  wr.wr_id = (seq << 3) | (signaled ? kSignaledBit : 0) | kFrameWr;
  wr.opcode = IBV_WR_SEND_WITH_IMM;
  wr.imm_data = htonl((uint32_t(kData) << 24) | take_credits());
  wr.sg_list = &sge;
  wr.num_sge = 1;
  wr.send_flags = signaled ? IBV_SEND_SIGNALED : 0;
  retire_.push_back(Retire{seq, kSendSlot, 1});
  ibv_send_wr* bad = nullptr;
  if (int rc = ibv_post_send(qp_, &wr, &bad); rc != 0) {
    fail(reset_status(fmt::format("ibv_post_send (frame): {}", rc)));
    return failure_;
  }
  if (signaled) signaled_in_flight_++;
  return Status();
}

Status RdmaCore::post_control(uint8_t type, uint32_t credits, bool signaled) {
  ibv_send_wr wr{};
  uint64_t seq = ++sq_seq_;
  wr.wr_id = (seq << 3) | (signaled ? kSignaledBit : 0) | kControlWr;
  wr.opcode = IBV_WR_SEND_WITH_IMM;
  wr.imm_data = htonl((uint32_t(type) << 24) | credits);
  wr.send_flags = signaled ? IBV_SEND_SIGNALED : 0;
  retire_.push_back(Retire{seq, kAckEntry, 1});
  ibv_send_wr* bad = nullptr;
  if (int rc = ibv_post_send(qp_, &wr, &bad); rc != 0) {
    fail(reset_status(fmt::format("ibv_post_send (control): {}", rc)));
    return failure_;
  }
  acks_unretired_++;
  if (signaled) signaled_in_flight_++;
  return Status();
}

void RdmaCore::maybe_send_ack() {
  if (failed() || credits_owed_ < credit_batch_) return;
  // One reserved send-queue entry stays free for the close notice.
  uint32_t reserve = config_.ack_recv_slots_max;
  if (acks_unretired_ >= reserve) return;  // retried when a signaled ack retires them
  uint32_t credits = take_credits();
  if (credits == 0) return;
  // The entry that fills the reserve is signaled, so the reserve always comes back.
  (void)post_control(kAck, credits, acks_unretired_ + 1 == reserve);
}

Task<Status> RdmaCore::send(FrameHeader header, std::span<const std::byte> payload) {
  CallGuard guard(this);
  if (failed()) co_return failure_;
  uint64_t total = kFrameHeaderBytes + payload.size();
  if (total > config_.frame_bytes_max)
    co_return Status(StatusCode::kInvalidArgument,
                     fmt::format("frame of {} bytes exceeds {}", total, config_.frame_bytes_max));
  HeaderBytes head = seal_frame(header, payload);
  Status locked = co_await send_mutex_.lock();
  if (!locked.ok()) co_return locked;
  MutexGuard unlock(send_mutex_);
  uint64_t sent = 0;
  while (sent < total) {
    Status got = co_await credits_.acquire(1);
    if (failed()) co_return failure_;
    if (got.ok()) {
      got = co_await send_slots_.acquire(1);
      if (failed()) co_return failure_;
      if (!got.ok()) credits_.release(1);
    }
    if (!got.ok()) {
      // Half a frame on the wire cannot be taken back: the stream is unusable.
      if (sent > 0) fail(reset_status("frame abandoned midway"));
      co_return got;
    }
    uint32_t slot = next_send_slot_;
    next_send_slot_ = (next_send_slot_ + 1) % config_.send_slots_max;
    uint32_t length = static_cast<uint32_t>(std::min<uint64_t>(fragment_bytes_, total - sent));
    std::byte* out = send_slot(slot);
    for (uint32_t i = 0; i < length;) {  // the wire stream is header then payload
      uint64_t at = sent + i;
      if (at < kFrameHeaderBytes) {
        size_t n = std::min<size_t>(kFrameHeaderBytes - at, length - i);
        std::memcpy(out + i, head.data() + at, n);
        i += static_cast<uint32_t>(n);
      } else {
        size_t n = length - i;
        std::memcpy(out + i, payload.data() + (at - kFrameHeaderBytes), n);
        i += static_cast<uint32_t>(n);
      }
    }
    // Signal every batch, and whenever this took the last free slot: slots come back only
    // through a signaled completion, so a waiter for a slot is always followed by one.
    bool signaled =
        ++unsignaled_sends_ >= config_.send_signal_batch_max || send_slots_.available() == 0;
    if (signaled) unsignaled_sends_ = 0;
    CO_TRY(post_fragment(slot, length, signaled));
    sent += length;
  }
  co_return Status();
}

// ---- receiving frames ----

Task<Result<Frame>> RdmaCore::next_frame() {
  CallGuard guard(this);
  while (receiver_.frames_ready() == 0) {
    if (failed()) co_return failure_;
    frame_ready_.reset();
    Status s = co_await frame_ready_.wait();
    if (!s.ok()) co_return s;
  }
  Frame frame = std::move(*receiver_.pop_frame());
  // Its bytes went back to both budgets: held slots here and elsewhere may go on.
  retry_held();
  device_->budget_released();
  maybe_send_ack();  // credits held back while the queue was full may go now
  co_return frame;
}

void RdmaCore::repost(const std::vector<uint32_t>& freed) {
  for (uint32_t slot : freed) {
    credits_owed_++;  // the slot's credit goes back to the peer with the next message
    if (Status s = post_recv(slot); !s.ok()) return fail(std::move(s));
  }
}

void RdmaCore::retry_held() {
  if (failed() || !receiver_.holding()) return;
  freed_.clear();
  Status s = receiver_.retry(&freed_);
  if (!s.ok()) return fail(std::move(s));
  repost(freed_);
  if (receiver_.frames_ready() > 0) frame_ready_.set();
  if (receiver_.holding()) {
    device_->wait_for_budget(this);
  } else if (close_pending_) {
    fail(Status(StatusCode::kClosed, "peer closed the connection"));
  }
  maybe_send_ack();
}

void RdmaCore::on_receive(uint32_t slot, const ibv_wc& wc) {
  if (!(wc.wc_flags & IBV_WC_WITH_IMM)) {
    fail(Status(StatusCode::kProtocolError, "message without immediate data"));
    return;
  }
  ImmData imm = decode_imm(ntohl(wc.imm_data));
  uint32_t credits = imm.credits;
  if (credits > 0) {
    if (credits_.available() + credits > peer_recv_slots_) {
      fail(Status(StatusCode::kProtocolError, "peer returned more credits than it has"));
      return;
    }
    credits_.release(credits);
  }
  switch (imm.type) {
    case kData: {
      freed_.clear();  // reused: no allocation per message
      Status s = receiver_.on_data(slot, wc.byte_len, &freed_);
      if (!s.ok()) return fail(std::move(s));
      repost(freed_);
      if (receiver_.frames_ready() > 0) frame_ready_.set();
      if (receiver_.holding()) device_->wait_for_budget(this);
      return;  // the slot was reposted with the freed ones, or is held
    }
    case kAck:
      break;
    case kClose:
      // Frames still held for budget come first; the close takes effect after them.
      if (receiver_.holding()) {
        close_pending_ = true;
        return;
      }
      return fail(Status(StatusCode::kClosed, "peer closed the connection"));
    default:
      return fail(Status(StatusCode::kProtocolError, "unknown message type"));
  }
  if (Status s = post_recv(slot); !s.ok()) fail(std::move(s));
}

}  // namespace mica::net
