// UringBackend: the real Backend, one io_uring owned by one executor thread.
//
// The ring is created with SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN | SUBMIT_ALL on the
// thread that constructs it, which must be the thread that runs the executor. SQEs are
// prepared by start() and submitted once per loop turn by wait(); completions are reaped
// in batches and delivered through IoOp::on_complete after the kernel call returns. A
// deadline becomes a linked timeout (IORING_OP_LINK_TIMEOUT, absolute CLOCK_MONOTONIC),
// so such an op produces two CQEs and completes when both have arrived. Cancellation is
// IORING_OP_ASYNC_CANCEL keyed by the op's address; the op still reports its own CQE.
// Cross-thread wake-ups write an eventfd that the ring keeps a read posted on. With
// UringOptions::big_sqes the ring has 128-byte SQEs and also runs kUringCmd.
#pragma once

#include <liburing.h>

#include <vector>

#include "async/backend.h"

namespace mica {

struct UringOptions {
  uint32_t sq_entries = 256;
  uint32_t cq_entries = 4096;
  // IORING_SETUP_SQE128: 128-byte SQEs, needed by kUringCmd (FUSE over io_uring). Off by
  // default: the SQ array doubles (32 KiB at 256 entries) and nothing else needs it; the
  // other ops fill only the first 64 bytes either way.
  bool big_sqes = false;
};

class UringBackend final : public Backend {
 public:
  explicit UringBackend(UringOptions options = {});
  ~UringBackend() override;

  TimePoint now() override;
  uint64_t random_u64() override;
  void start(IoOp* op) override;
  void cancel(IoOp* op) override;
  void submit() override;
  void wait(TimePoint until) override;
  void wake() override;

  Result<int> open_socket(int family) override;
  Result<int> listen(const SocketAddress& address, int backlog) override;
  Result<SocketAddress> local_address(int fd) override;
  Result<SocketAddress> peer_address(int fd) override;
  Status set_socket_option(int fd, int level, int name, int value) override;
  void close_now(int fd) override;
  Result<FsSpace> statvfs(const std::string& path) override;
  Status register_buffers(std::span<const iovec> buffers) override;
  bool big_sqes() const override { return options_.big_sqes; }

  // Operations started and not yet completed (for tests and shutdown checks).
  size_t in_flight() const { return in_flight_; }

 private:
  io_uring_sqe* next_sqe();
  void prepare(io_uring_sqe* sqe, IoOp* op);
  void prepare_uring_cmd(io_uring_sqe* sqe, IoOp* op);
  void reap();
  void dispatch(const io_uring_cqe* cqe);
  void arm_wake_read();
  static void on_wake(IoOp* op, int32_t result, bool more);

  io_uring ring_{};
  UringOptions options_;
  int wake_fd_ = -1;
  uint64_t wake_value_ = 0;
  IoOp wake_op_;
  size_t in_flight_ = 0;
  bool buffers_registered_ = false;
  bool shutting_down_ = false;
  std::vector<io_uring_cqe*> cqes_;
};

}  // namespace mica
