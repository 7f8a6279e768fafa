// RdmaCore, second half: one-sided operations, the completion poller, the liveness
// watcher, close and the RdmaConnection handle (see rdma_connection.h).
#include <poll.h>

#include <algorithm>
#include <array>
#include <cstring>

#include <fmt/format.h>

#include "async/io_awaiter.h"
#include "net/rdma/rdma_connection.h"

namespace mica::net {

using namespace rdma_wire;

namespace {

constexpr uint32_t kPollBatchMax = 64;

Status reset_status(std::string why) {
  return Status(StatusCode::kConnectionReset, std::move(why));
}

}  // namespace

// Lives in the frame of the task that posted the batch; only the batch's last (signaled)
// WR carries its address, and that task waits for the WR's completion before returning.
struct alignas(8) RdmaCore::BulkOp {
  Event done;
  Status status;
  uint64_t first_seq = 0;
  uint64_t seq = 0;
};

// ---- one-sided operations ----

Task<Status> RdmaCore::bulk(bool is_read, RemoteBuffer remote, std::byte* local, size_t size,
                            TimePoint deadline) {
  CallGuard guard(this);
  if (failed()) co_return failure_;
  if (size != remote.length)
    co_return Status(StatusCode::kInvalidArgument, "local and remote lengths differ");
  if (size == 0) co_return Status();
  uint64_t addr = remote.region + remote.offset;
  if (addr < remote.region || addr + size < addr)
    co_return Status(StatusCode::kOutOfRange, "remote range wraps around");
  if (std::optional<uint32_t> lkey = device_->find_lkey(local, size)) {
    auto direct = post_and_wait(is_read, addr, remote.key, local, size, *lkey, deadline);
    co_return co_await std::move(direct);
  }
  // Unregistered memory: copy through a registered bounce buffer of the pool.
  Status got = co_await bounces_.acquire(1, deadline);
  if (failed()) co_return failure_;
  if (!got.ok()) co_return got;
  uint32_t index = free_bounces_.back();
  free_bounces_.pop_back();
  Status result;
  for (size_t done = 0; done < size && result.ok();) {
    size_t n = std::min<size_t>(config_.bounce_buffer_bytes, size - done);
    std::byte* buffer = bounce(index);
    if (!is_read) std::memcpy(buffer, local + done, n);
    auto piece = post_and_wait(is_read, addr + done, remote.key, buffer, n, mr_->lkey, deadline);
    result = co_await std::move(piece);
    if (result.ok() && is_read) std::memcpy(local + done, buffer, n);
    done += n;
  }
  free_bounces_.push_back(index);
  bounces_.release(1);
  co_return result;
}

Task<Status> RdmaCore::post_and_wait(bool is_read, uint64_t remote_addr, uint32_t rkey,
                                     std::byte* local, size_t size, uint32_t lkey,
                                     TimePoint deadline) {
  std::vector<ibv_send_wr> wrs;
  std::vector<ibv_sge> sges;
  size_t done = 0;
  while (done < size) {
    size_t left = size - done;
    uint64_t wr_bytes = config_.bulk_wr_bytes_max;
    auto count = static_cast<uint32_t>(
        std::min<uint64_t>(config_.bulk_wrs_per_post_max, (left + wr_bytes - 1) / wr_bytes));
    Status got = co_await bulk_wrs_.acquire(count, deadline);
    if (failed()) co_return failure_;
    if (!got.ok()) co_return got;
    BulkOp op;
    wrs.assign(count, ibv_send_wr{});
    sges.assign(count, ibv_sge{});
    op.first_seq = sq_seq_ + 1;
    size_t batch = 0;
    for (uint32_t i = 0; i < count; ++i) {
      auto n = static_cast<uint32_t>(std::min<uint64_t>(wr_bytes, left - batch));
      bool last = i + 1 == count;
      uint64_t seq = ++sq_seq_;
      sges[i] = ibv_sge{reinterpret_cast<uintptr_t>(local + done + batch), n, lkey};
      ibv_send_wr& wr = wrs[i];
      // Only the last WR names the op: an earlier one's completion (an error, or a flush)
      // may come after this task has gone, so it carries its sequence number instead.
      wr.wr_id =
          last ? reinterpret_cast<uintptr_t>(&op) | kSignaledBit | kBulkWr : (seq << 3) | kBulkWr;
      wr.opcode = is_read ? IBV_WR_RDMA_READ : IBV_WR_RDMA_WRITE;
      wr.sg_list = &sges[i];
      wr.num_sge = 1;
      wr.send_flags = last ? IBV_SEND_SIGNALED : 0;
      wr.wr.rdma.remote_addr = remote_addr + done + batch;
      wr.wr.rdma.rkey = rkey;
      wr.next = last ? nullptr : &wrs[i + 1];
      batch += n;
    }
    op.seq = sq_seq_;
    retire_.push_back(Retire{op.seq, kBulkEntries, count});
    signaled_in_flight_++;
    ibv_send_wr* bad = nullptr;
    if (int rc = ibv_post_send(qp_, wrs.data(), &bad); rc != 0) {
      auto posted = static_cast<size_t>(bad - wrs.data());
      // The posted prefix is unsignaled and cannot be tracked: fail the QP (3FS does the
      // same), then post a signaled fence that is flushed after the prefix.
      fail(reset_status(
          fmt::format("ibv_post_send failed after {} of {} WRs: {}", posted, count, rc)));
      if (posted == 0 || !fence(&op).ok()) {
        signaled_done();
        co_return failure_;
      }
      Status flushed = co_await op.done.wait_uncancellable();
      MICA_ASSERT(flushed.ok());
      co_return failure_;
    }
    Status waited = co_await op.done.wait(deadline);
    if (!waited.ok()) {
      // The HCA may still touch the local buffer: stop the QP and wait for the flush.
      fail(reset_status("one-sided operation abandoned at its deadline or cancellation"));
      Status flushed = co_await op.done.wait_uncancellable();
      MICA_ASSERT(flushed.ok());
      co_return waited;
    }
    if (!op.status.ok()) co_return op.status;
    done += batch;
  }
  co_return Status();
}

Status RdmaCore::fence(BulkOp* op) {
  ibv_send_wr wr{};
  wr.wr_id = reinterpret_cast<uintptr_t>(op) | kSignaledBit | kBulkWr;
  wr.opcode = IBV_WR_SEND;
  wr.send_flags = IBV_SEND_SIGNALED;
  ibv_send_wr* bad = nullptr;
  if (int rc = ibv_post_send(qp_, &wr, &bad); rc != 0)
    return reset_status(fmt::format("fence: {}", rc));
  return Status();
}

// ---- completions ----

void RdmaCore::retire_through(uint64_t seq) {
  while (!retire_.empty() && retire_.front().seq <= seq) {
    Retire r = retire_.front();
    retire_.pop_front();
    if (r.kind == kSendSlot) send_slots_.release(1);
    if (r.kind == kAckEntry) acks_unretired_--;
    if (r.kind == kBulkEntries) bulk_wrs_.release(r.units);
  }
}

void RdmaCore::signaled_done() {
  MICA_ASSERT(signaled_in_flight_ > 0);
  if (--signaled_in_flight_ == 0) drained_.set();
}

void RdmaCore::on_completion(const ibv_wc& wc) {
  if (wc.status != IBV_WC_SUCCESS)
    fail(reset_status(fmt::format("work completion: {}", ibv_wc_status_str(wc.status))));
  switch (wc.wr_id & kKindMask) {
    case kRecvWr:
      if (wc.status == IBV_WC_SUCCESS && !failed())
        on_receive(static_cast<uint32_t>(wc.wr_id >> 3), wc);
      return;
    case kBulkWr:
      if (wc.status != IBV_WC_SUCCESS && wc.status != IBV_WC_WR_FLUSH_ERR && bulk_error_.ok()) {
        // A bad rkey, range or access right is the caller's error, not the link's.
        bulk_error_ = wc.status == IBV_WC_REM_ACCESS_ERR
                          ? Status(StatusCode::kPermissionDenied,
                                   "remote access refused (key, range or access rights)")
                          : failure_;
        bulk_error_seq_ = wc.wr_id & kSignaledBit ? UINT64_MAX : wc.wr_id >> 3;
      }
      if (wc.wr_id & kSignaledBit) {
        auto* op = reinterpret_cast<BulkOp*>(wc.wr_id & ~uint64_t(7));
        if (!bulk_error_.ok() &&
            (bulk_error_seq_ == UINT64_MAX ||
             (bulk_error_seq_ >= op->first_seq && bulk_error_seq_ <= op->seq))) {
          op->status = std::move(bulk_error_);
          bulk_error_ = Status();
        } else if (wc.status != IBV_WC_SUCCESS) {
          op->status = failure_;
        }
        retire_through(op->seq);
        signaled_done();
        op->done.set();
      }
      return;
    default:
      if (wc.wr_id & kSignaledBit) {
        retire_through(wc.wr_id >> 3);
        signaled_done();
      }
  }
}

void RdmaCore::take_events() {
  ibv_cq* cq = nullptr;
  void* context = nullptr;
  // The fd is non-blocking: the loop ends when no event is left (at most one per arm).
  while (ibv_get_cq_event(channel_, &cq, &context) == 0) {
    MICA_ASSERT(cq == cq_);
    // Acknowledging takes a lock in libibverbs; batch it.
    if (++unacked_events_ >= config_.cq_event_ack_batch_max) {
      ibv_ack_cq_events(cq_, unacked_events_);
      unacked_events_ = 0;
    }
  }
}

void RdmaCore::drain_cq() {
  std::array<ibv_wc, kPollBatchMax> wcs;
  int batch = static_cast<int>(std::min(config_.cq_poll_batch_max, kPollBatchMax));
  while (true) {
    int n = ibv_poll_cq(cq_, batch, wcs.data());
    if (n < 0) {
      fail(reset_status("ibv_poll_cq failed"));
      return;
    }
    for (int i = 0; i < n; ++i) on_completion(wcs[i]);
    if (n < batch) break;
  }
  maybe_send_ack();
}

detail::DetachedTask RdmaCore::poll_loop(std::shared_ptr<RdmaCore> core) {
  RdmaCore* c = core.get();
  c->drain_cq();
  while (true) {
    Result<int> ready = co_await poll_fd(c->channel_->fd, POLLIN);
    if (!ready.ok()) break;  // cancelled: the connection is closing
    c->take_events();
    // Poll, arm, poll: a completion that lands between the first drain and the arm
    // raises no event, so the second drain is what keeps it from being lost.
    c->drain_cq();
    ibv_req_notify_cq(c->cq_, 0);
    c->drain_cq();
  }
  c->take_events();
  c->drain_cq();
  c->poller_done_.set();
}

detail::DetachedTask RdmaCore::watch_loop(std::shared_ptr<RdmaCore> core) {
  RdmaCore* c = core.get();
  std::byte byte{};
  // The peer never writes after the handshake: any outcome means it is gone.
  Result<size_t> got = co_await c->socket_.recv(std::span<std::byte>(&byte, 1));
  if (!c->closing_ && !c->failed()) {
    // What the peer sent before going away is already in our CQ: deliver it first.
    c->drain_cq();
    c->fail(reset_status(got.ok() ? "peer went away" : got.status().to_string()));
  }
  c->watcher_done_.set();
}

detail::DetachedTask RdmaCore::event_loop(std::shared_ptr<RdmaCore> core) {
  RdmaCore* c = core.get();
  // Every connection of the device waits on the same fd; whichever wakes first reads
  // all pending events for all of them (the others find none and wait again).
  while (true) {
    c->device_->take_async_events();
    Result<int> ready = co_await poll_fd(c->device_->context()->async_fd, POLLIN);
    if (!ready.ok()) break;  // cancelled: the connection is closing
  }
  c->events_done_.set();
}

void RdmaCore::stop_tasks() {
  poller_cancel_.cancel();
  watcher_cancel_.cancel();
  events_cancel_.cancel();
}

// ---- lifecycle ----

Task<void> RdmaCore::close() {
  if (closing_) {
    Status waited = co_await close_done_.wait_uncancellable();
    MICA_ASSERT(waited.ok());
    co_return;
  }
  closing_ = true;
  if (!failed() && started_ && post_control(kClose, take_credits(), true).ok()) {
    // Let what we sent reach the peer before the QP goes to ERR (RC completes in order).
    TimePoint until =
        Executor::current()->now() + std::chrono::milliseconds(config_.close_timeout_ms);
    while (signaled_in_flight_ > 0 && !failed()) {
      drained_.reset();
      // Bounded by the close timeout only: an owner that is being cancelled (a server
      // shutting down) still wants its last responses to reach the peer.
      Event::Awaiter drain{&drained_, until, false, {}};
      Status s = co_await drain;
      if (!s.ok()) break;
    }
  }
  fail(Status(StatusCode::kClosed, "connection closed"));
  while (active_calls_ > 0) {
    idle_.reset();
    Status s = co_await idle_.wait_uncancellable();
    MICA_ASSERT(s.ok());
  }
  while (started_ && signaled_in_flight_ > 0) {  // flushes are on their way
    drained_.reset();
    Status s = co_await drained_.wait_uncancellable();
    MICA_ASSERT(s.ok());
  }
  if (started_) {
    stop_tasks();
    Status a = co_await poller_done_.wait_uncancellable();
    Status b = co_await watcher_done_.wait_uncancellable();
    Status e = co_await events_done_.wait_uncancellable();
    MICA_ASSERT(a.ok() && b.ok() && e.ok());
  }
  close_done_.set();
}

void RdmaCore::abandon() {
  MICA_ASSERT_MSG(active_calls_ == 0, "RDMA connection destroyed while calls are in progress");
  MICA_ASSERT_MSG(!closing_ || close_done_.is_set(), "RDMA connection destroyed while closing");
  if (closing_) return;
  closing_ = true;
  fail(Status(StatusCode::kClosed, "connection destroyed"));
  if (started_) stop_tasks();
}

// ---- the handle ----

RdmaConnection::~RdmaConnection() {
  if (core_) core_->abandon();
}

Task<Status> RdmaConnection::send(FrameHeader header, std::span<const std::byte> payload) {
  return core_->send(header, payload);
}

Task<Result<Frame>> RdmaConnection::next_frame() {
  return core_->next_frame();
}

Task<Status> RdmaConnection::read_from(RemoteBuffer remote, std::span<std::byte> local,
                                       TimePoint deadline) {
  return core_->bulk(true, remote, local.data(), local.size(), deadline);
}

Task<Status> RdmaConnection::write_to(RemoteBuffer remote, std::span<const std::byte> local,
                                      TimePoint deadline) {
  // The HCA only reads local memory for an RDMA WRITE.
  return core_->bulk(false, remote, const_cast<std::byte*>(local.data()), local.size(), deadline);
}

Task<void> RdmaConnection::close() {
  return core_->close();
}

void RdmaConnection::refuse_peer_transfers(bool refuse) {
  Status changed = core_->set_remote_access(!refuse);
  (void)changed;  // a failure fails the connection, which its next call reports
}

void RdmaConnection::limit_incoming_frames(uint32_t frames, uint32_t frame_bytes_max) {
  core_->limit_incoming_frames(frames, frame_bytes_max);
}

std::string RdmaConnection::peer() const {
  return core_->peer();
}

Status RdmaConnection::status() const {
  return core_->status();
}

uint32_t RdmaConnection::qp_num() const {
  return core_->qp_num();
}

uint64_t RdmaConnection::receive_reserved_bytes() const {
  return core_->receive_reserved_bytes();
}

}  // namespace mica::net
