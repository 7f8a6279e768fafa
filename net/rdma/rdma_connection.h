// RdmaConnection: a Connection over one reliable-connected queue pair.
//
// Frames travel as SEND_WITH_IMM messages through rings of pre-registered, fixed-size
// buffers: a frame is copied into send slots (cut into slot-sized fragments when larger,
// never interleaved with another frame) and lands in the peer's pre-posted receive slots.
// The immediate data carries a message type and the credits the sender returns for the
// receive slots it has drained; a sender spends one credit per fragment, so a receive is
// always posted when a message arrives. read_from/write_to are RDMA READ/WRITE work
// requests against the peer's registered memory, at most bulk_wrs_per_post_max per post,
// only the last signaled, bounded by a Semaphore of bulk_wrs_in_flight_max WRs; local
// memory registered through the transport is used in place, other memory bounces through
// a pooled registered buffer. Completions arrive on a completion channel whose fd the
// runtime polls; one poller task per connection drains the CQ. The TCP socket of the
// handshake stays open as a liveness signal: the peer's process going away closes it. A
// third task waits on the context's async fd and hands events to the device, which fails
// the connections a port-down, device-fatal or QP/CQ error concerns (kConnectionReset:
// the caller reconnects).
//
// Failure: any failed work completion, failed post, protocol violation, async error
// event, or a one-sided operation abandoned at its deadline moves the QP to ERR, fails
// every waiter with
// kConnectionReset (kClosed after close() or the peer's close notice) and the connection
// stays failed; a bad remote key or range reports kPermissionDenied to that operation.
//
// Ownership: RdmaConnection is a handle on a shared Core; the poller and the liveness
// watcher also hold it, so a connection destroyed without close() is torn down by them.
// Thread rule: one executor (the creator's). Methods may suspend; calls into a connection
// must finish before it is destroyed.
#pragma once

#include <deque>
#include <memory>
#include <string>

#include "async/scope.h"
#include "async/socket.h"
#include "async/sync.h"
#include "net/connection.h"
#include "net/rdma/rdma_device.h"
#include "net/rdma/rdma_receive.h"

namespace mica::net {

// Wire and bookkeeping encodings shared by the two halves of RdmaCore.
namespace rdma_wire {
// Immediate data: 8-bit message type, 24-bit credits returned (network order on the wire).
enum MessageType : uint8_t { kData = 1, kAck = 2, kClose = 3 };
inline constexpr uint32_t kCreditMask = 0xffffff;
// wr_id: bits 0-1 kind, bit 2 signaled, the rest a receive slot, a send-queue sequence
// number, or (the signaled WR of a one-sided batch) the address of its 8-aligned BulkOp.
enum WrKind : uint64_t { kRecvWr = 0, kBulkWr = 1, kFrameWr = 2, kControlWr = 3 };
inline constexpr uint64_t kSignaledBit = 4;
inline constexpr uint64_t kKindMask = 3;
// What a send-queue entry gives back once a signaled WR at or after it completes.
enum RetireKind : uint8_t { kSendSlot = 0, kAckEntry = 1, kBulkEntries = 2 };
}  // namespace rdma_wire

class RdmaCore;

class RdmaConnection final : public Connection {
 public:
  explicit RdmaConnection(std::shared_ptr<RdmaCore> core) : core_(std::move(core)) {}
  ~RdmaConnection() override;

  Task<Status> send(FrameHeader header, std::span<const std::byte> payload) override;
  Task<Result<Frame>> next_frame() override;
  Task<Status> read_from(RemoteBuffer remote, std::span<std::byte> local,
                         TimePoint deadline) override;
  Task<Status> write_to(RemoteBuffer remote, std::span<const std::byte> local,
                        TimePoint deadline) override;
  Task<void> close() override;
  std::string peer() const override;
  void refuse_peer_transfers(bool refuse) override;
  void limit_incoming_frames(uint32_t frames, uint32_t frame_bytes_max) override;

  // Ok while healthy; otherwise why the connection failed (it stays failed).
  Status status() const;
  uint32_t qp_num() const;
  // Payload bytes reserved for received frames not yet consumed (rdma_receive.h).
  uint64_t receive_reserved_bytes() const;

 private:
  std::shared_ptr<RdmaCore> core_;
};

// The connection's state; used by the handshake (rdma_transport.cc) and RdmaConnection.
class RdmaCore final : public std::enable_shared_from_this<RdmaCore>, public RdmaEventSink {
 public:
  // Allocates and registers the rings and creates channel, CQ and QP (in INIT).
  static Result<std::shared_ptr<RdmaCore>> create(std::shared_ptr<RdmaDevice> device,
                                                  RdmaConfig config);
  RdmaCore(const RdmaCore&) = delete;
  RdmaCore& operator=(const RdmaCore&) = delete;
  ~RdmaCore();

  RdmaHello hello() const;
  // Posts every receive and moves the QP to RTR against the peer; then to RTS.
  Status to_rtr(const RdmaHello& peer);
  Status to_rts();
  // Gives the peer remote read and write access through the QP, or takes it away (RTS).
  Status set_remote_access(bool allowed);
  // Connection::limit_incoming_frames: applies to frames whose first fragment is taken
  // from now on (rdma_receive.h).
  void limit_incoming_frames(uint32_t frames, uint32_t frame_bytes_max) {
    receiver_.limit_frames(frames, frame_bytes_max);
  }
  // Starts the poller and the liveness watcher on the current executor.
  void start(Socket socket, std::string peer_name);

  Task<Status> send(FrameHeader header, std::span<const std::byte> payload);
  Task<Result<Frame>> next_frame();
  Task<Status> bulk(bool is_read, RemoteBuffer remote, std::byte* local, size_t size,
                    TimePoint deadline);
  Task<void> close();
  // Destruction without close(): fail, stop the tasks; they free the core when done.
  void abandon();

  // RdmaEventSink, for the device's async event handling.
  ibv_qp* event_qp() const override { return qp_; }
  ibv_cq* event_cq() const override { return cq_; }
  void on_device_failure(Status why) override { fail(std::move(why)); }
  void on_budget_released() override { retry_held(); }
  // Payload bytes this connection has reserved for frames not yet consumed.
  uint64_t receive_reserved_bytes() const { return receiver_.reserved_bytes(); }

  const Status& status() const { return failure_; }
  const std::string& peer() const { return peer_; }
  uint32_t qp_num() const { return qp_->qp_num; }

 private:
  struct BulkOp;
  struct Retire {
    uint64_t seq;
    uint8_t kind;
    uint32_t units;
  };
  // Counts a call in progress so close() can wait until every caller has left.
  class CallGuard {
   public:
    explicit CallGuard(RdmaCore* core) : core_(core) { core_->active_calls_++; }
    ~CallGuard() {
      if (--core_->active_calls_ == 0) core_->idle_.set();
    }
    CallGuard(const CallGuard&) = delete;
    CallGuard& operator=(const CallGuard&) = delete;

   private:
    RdmaCore* core_;
  };

  RdmaCore(std::shared_ptr<RdmaDevice> device, RdmaConfig config);
  Status create_verbs();
  Status post_recv(uint32_t slot);
  std::byte* send_slot(uint32_t i) const;
  std::byte* recv_slot(uint32_t i) const;
  std::byte* bounce(uint32_t i) const;

  void fail(Status why);
  bool failed() const { return !failure_.ok(); }
  Status post_fragment(uint32_t slot, uint32_t length, bool signaled);
  Status post_control(uint8_t type, uint32_t credits, bool signaled);
  uint32_t take_credits();
  void maybe_send_ack();
  void retire_through(uint64_t seq);
  void signaled_done();
  Task<Status> post_and_wait(bool is_read, uint64_t remote_addr, uint32_t rkey, std::byte* local,
                             size_t size, uint32_t lkey, TimePoint deadline);
  Status fence(BulkOp* op);

  // Completion handling.
  void take_events();
  void drain_cq();
  void on_completion(const ibv_wc& wc);
  void on_receive(uint32_t slot, const ibv_wc& wc);
  void repost(const std::vector<uint32_t>& freed);
  void retry_held();
  static detail::DetachedTask poll_loop(std::shared_ptr<RdmaCore> core);
  static detail::DetachedTask watch_loop(std::shared_ptr<RdmaCore> core);
  static detail::DetachedTask event_loop(std::shared_ptr<RdmaCore> core);
  void stop_tasks();

  std::shared_ptr<RdmaDevice> device_;
  RdmaConfig config_;
  uint32_t recv_total_;  // recv_slots_max + ack_recv_slots_max
  std::byte* memory_ = nullptr;
  size_t memory_bytes_ = 0;
  ibv_mr* mr_ = nullptr;
  ibv_comp_channel* channel_ = nullptr;
  ibv_cq* cq_ = nullptr;
  ibv_qp* qp_ = nullptr;
  uint32_t psn_ = 0;
  uint32_t unacked_events_ = 0;

  // Negotiated with the peer.
  uint32_t fragment_bytes_ = 0;
  uint32_t peer_recv_slots_ = 0;
  uint32_t credit_batch_ = 0;

  // Sending.
  Mutex send_mutex_;
  Semaphore credits_{0};
  Semaphore send_slots_;
  Semaphore bulk_wrs_;
  Semaphore bounces_;
  std::vector<uint32_t> free_bounces_;
  uint32_t next_send_slot_ = 0;
  uint32_t unsignaled_sends_ = 0;
  uint32_t acks_unretired_ = 0;
  uint64_t sq_seq_ = 0;
  std::deque<Retire> retire_;
  uint32_t signaled_in_flight_ = 0;
  // The first error of an unsignaled one-sided WR, until its batch's last WR completes.
  Status bulk_error_;
  uint64_t bulk_error_seq_ = 0;

  // Receiving.
  uint32_t credits_owed_ = 0;
  ByteBudget recv_budget_;
  RdmaReceiver receiver_;
  bool close_pending_ = false;   // the peer's close notice came while slots were held
  std::vector<uint32_t> freed_;  // slots the receiver gave back, reposted at once
  Event frame_ready_;

  // Lifecycle.
  Status failure_;
  bool started_ = false;
  bool closing_ = false;
  uint32_t active_calls_ = 0;
  Event idle_;
  Event drained_;
  Event close_done_;
  Socket socket_;
  std::string peer_;
  CancelSource poller_cancel_;
  CancelSource watcher_cancel_;
  CancelSource events_cancel_;
  Event poller_done_;
  Event watcher_done_;
  Event events_done_;
};

}  // namespace mica::net
