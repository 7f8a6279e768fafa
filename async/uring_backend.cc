#include "async/uring_backend.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <ctime>

namespace mica {
namespace {

// user_data tags: op addresses are 8-byte aligned, so the low bits are free.
constexpr uint64_t kTagTimeout = 1;      // the linked-timeout CQE of an op
constexpr uint64_t kIgnore = 0;          // cancel requests: their own CQE carries nothing
constexpr unsigned kReapBatchMax = 256;  // CQEs copied out per reaping pass
constexpr int kShutdownRoundsMax = 500;  // 10 ms each: cancelled ops end in far less

uint64_t op_tag(IoOp* op, uint64_t tag) {
  return reinterpret_cast<uint64_t>(op) | tag;
}

}  // namespace

UringBackend::UringBackend(UringOptions options) : options_(options) {
  io_uring_params params{};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                 IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
  if (options_.big_sqes) params.flags |= IORING_SETUP_SQE128;
  params.cq_entries = options_.cq_entries;
  int rc = io_uring_queue_init_params(options_.sq_entries, &ring_, &params);
  MICA_ASSERT_MSG(rc == 0, "io_uring_queue_init_params failed (is io_uring enabled?)");
  MICA_ASSERT_MSG(params.features & IORING_FEAT_NODROP, "kernel lacks IORING_FEAT_NODROP");
  io_uring_register_ring_fd(&ring_);  // an optimisation; failure is harmless
  cqes_.resize(kReapBatchMax);
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  MICA_ASSERT(wake_fd_ >= 0);
  arm_wake_read();
}

UringBackend::~UringBackend() {
  // Cancel whatever is still in the ring (the wake read; the accept of a Listener destroyed
  // without close()) and reap until the kernel holds no pointer into our memory.
  shutting_down_ = true;
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
  io_uring_sqe_set_data64(sqe, kIgnore);
  for (int round = 0; in_flight_ > 0 && round < kShutdownRoundsMax; ++round)
    wait(now() + std::chrono::milliseconds(10));
  MICA_ASSERT_MSG(in_flight_ == 0, "io_uring backend destroyed with operations in flight");
  close(wake_fd_);
  io_uring_queue_exit(&ring_);
}

TimePoint UringBackend::now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return from_ns(int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec);
}

uint64_t UringBackend::random_u64() {
  uint64_t value = 0;
  ssize_t n;
  do n = getrandom(&value, sizeof value, 0);
  while (n < 0 && errno == EINTR);
  // 8 bytes from an initialised pool always come whole; anything else leaves us with no
  // secret to hand out, and a guessable one would be worse than stopping.
  MICA_ASSERT_MSG(n == ssize_t(sizeof value), "getrandom failed");
  return value;
}

io_uring_sqe* UringBackend::next_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (!sqe) {
    // SQ full: hand what we have to the kernel and retry.
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void UringBackend::prepare(io_uring_sqe* sqe, IoOp* op) {
  switch (op->opcode) {
    case IoOpcode::kNop:
      io_uring_prep_nop(sqe);
      break;
    case IoOpcode::kRead:
      io_uring_prep_read(sqe, op->fd, op->buffer, op->length, op->offset);
      break;
    case IoOpcode::kWrite:
      io_uring_prep_write(sqe, op->fd, op->buffer, op->length, op->offset);
      break;
    case IoOpcode::kReadv:
      io_uring_prep_readv(sqe, op->fd, op->iov, op->iov_count, op->offset);
      break;
    case IoOpcode::kWritev:
      io_uring_prep_writev(sqe, op->fd, op->iov, op->iov_count, op->offset);
      break;
    case IoOpcode::kReadFixed:
      io_uring_prep_read_fixed(sqe, op->fd, op->buffer, op->length, op->offset, op->buffer_index);
      break;
    case IoOpcode::kWriteFixed:
      io_uring_prep_write_fixed(sqe, op->fd, op->buffer, op->length, op->offset, op->buffer_index);
      break;
    case IoOpcode::kFsync:
    case IoOpcode::kFdatasync:
      io_uring_prep_fsync(sqe, op->fd,
                          op->opcode == IoOpcode::kFdatasync ? IORING_FSYNC_DATASYNC : 0);
      break;
    case IoOpcode::kFallocate:
      io_uring_prep_fallocate(sqe, op->fd, op->flags, op->offset, op->length64);
      break;
    case IoOpcode::kOpen:
      io_uring_prep_openat(sqe, AT_FDCWD, op->path, op->flags, op->mode);
      break;
    case IoOpcode::kClose:
      io_uring_prep_close(sqe, op->fd);
      break;
    case IoOpcode::kAccept:
      io_uring_prep_accept(sqe, op->fd, nullptr, nullptr, SOCK_CLOEXEC);
      break;
    case IoOpcode::kAcceptMultishot:
      io_uring_prep_multishot_accept(sqe, op->fd, nullptr, nullptr, SOCK_CLOEXEC);
      break;
    case IoOpcode::kConnect:
      io_uring_prep_connect(sqe, op->fd, op->address, op->address_length);
      break;
    case IoOpcode::kSend:
      io_uring_prep_send(sqe, op->fd, op->buffer, op->length, op->flags | MSG_NOSIGNAL);
      break;
    case IoOpcode::kRecv:
      io_uring_prep_recv(sqe, op->fd, op->buffer, op->length, op->flags);
      break;
    case IoOpcode::kSendmsg:
      io_uring_prep_sendmsg(sqe, op->fd, op->message, op->flags | MSG_NOSIGNAL);
      break;
    case IoOpcode::kRecvmsg:
      io_uring_prep_recvmsg(sqe, op->fd, op->message, op->flags);
      break;
    case IoOpcode::kShutdown:
      io_uring_prep_shutdown(sqe, op->fd, op->flags);
      break;
    case IoOpcode::kPoll:
      io_uring_prep_poll_add(sqe, op->fd, static_cast<unsigned>(op->flags));
      break;
    case IoOpcode::kMkdir:
      io_uring_prep_mkdirat(sqe, AT_FDCWD, op->path, op->mode);
      break;
    case IoOpcode::kRename:
      io_uring_prep_renameat(sqe, AT_FDCWD, op->path, AT_FDCWD, op->new_path,
                             static_cast<unsigned>(op->flags));
      break;
    case IoOpcode::kUnlink:
      io_uring_prep_unlinkat(sqe, AT_FDCWD, op->path, op->flags);
      break;
    case IoOpcode::kStatx:
      io_uring_prep_statx(sqe, op->fd, op->path, op->flags, STATX_BASIC_STATS,
                          static_cast<struct statx*>(op->buffer));
      break;
    case IoOpcode::kUringCmd:
      return prepare_uring_cmd(sqe, op);
  }
}

void UringBackend::prepare_uring_cmd(io_uring_sqe* sqe, IoOp* op) {
  // A 64-byte ring has only 16 bytes where the command goes: writing 80 would corrupt the
  // next SQE, so this is a caller's bug (Backend::big_sqes() says which ring can).
  MICA_ASSERT_MSG(options_.big_sqes, "kUringCmd on a ring without 128-byte SQEs");
  // liburing 2.3 has no prep helper for it and get_sqe does not clear: zero all 128 bytes
  // (the driver reads the whole command area, and stale bytes of an earlier op would be
  // taken as flags).
  constexpr size_t kBigSqeBytes = 2 * sizeof(io_uring_sqe);
  static_assert(offsetof(io_uring_sqe, cmd) + kUringCmdBytes == kBigSqeBytes);
  std::memset(static_cast<void*>(sqe), 0, kBigSqeBytes);
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = op->fd;
  sqe->cmd_op = op->command_op;
  sqe->addr = reinterpret_cast<uint64_t>(op->buffer);
  sqe->len = op->length;
  if (op->command != nullptr) std::memcpy(sqe->cmd, op->command, kUringCmdBytes);
}

void UringBackend::start(IoOp* op) {
  MICA_ASSERT(op->on_complete != nullptr);
  ++in_flight_;
  op->backend_timed_out = false;
  op->backend_result = 0;
  bool linked = op->deadline != kNoDeadline && op->opcode != IoOpcode::kAcceptMultishot;
  // A linked timeout must be submitted together with its op: make room for both first.
  if (linked && io_uring_sq_space_left(&ring_) < 2) io_uring_submit(&ring_);
  io_uring_sqe* sqe = next_sqe();
  prepare(sqe, op);
  if (op->rw_flags != 0) sqe->rw_flags = static_cast<__kernel_rwf_t>(op->rw_flags);
  io_uring_sqe_set_data64(sqe, op_tag(op, 0));
  if (!linked) {
    op->backend_pending = 1;
    return;
  }
  sqe->flags |= IOSQE_IO_LINK;
  auto* ts = reinterpret_cast<__kernel_timespec*>(op->backend_timeout);
  static_assert(sizeof(op->backend_timeout) >= sizeof(__kernel_timespec));
  int64_t ns = to_ns(op->deadline);
  ts->tv_sec = ns / 1'000'000'000;
  ts->tv_nsec = ns % 1'000'000'000;
  io_uring_sqe* timeout_sqe = io_uring_get_sqe(&ring_);
  MICA_ASSERT(timeout_sqe != nullptr);
  io_uring_prep_link_timeout(timeout_sqe, ts, IORING_TIMEOUT_ABS);
  io_uring_sqe_set_data64(timeout_sqe, op_tag(op, kTagTimeout));
  op->backend_pending = 2;
}

void UringBackend::cancel(IoOp* op) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_cancel64(sqe, op_tag(op, 0), 0);
  io_uring_sqe_set_data64(sqe, kIgnore);
}

void UringBackend::dispatch(const io_uring_cqe* cqe) {
  uint64_t data = cqe->user_data;
  if (data == kIgnore) return;
  auto* op = reinterpret_cast<IoOp*>(data & ~uint64_t{7});
  if (data & kTagTimeout) {
    // -ETIME: the deadline fired and cancelled the op; -ECANCELED/-ENOENT: the op won.
    if (cqe->res == -ETIME) op->backend_timed_out = true;
  } else {
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (more) {
      op->on_complete(op, cqe->res, true);
      return;
    }
    op->backend_result = cqe->res;
  }
  if (--op->backend_pending > 0) return;
  --in_flight_;
  int32_t result = op->backend_result;
  if (op->backend_timed_out && result == -ECANCELED) result = -ETIME;
  op->on_complete(op, result, false);
}

void UringBackend::reap() {
  for (;;) {
    unsigned count = io_uring_peek_batch_cqe(&ring_, cqes_.data(), kReapBatchMax);
    if (count == 0) return;
    // Copy out and advance before dispatching, so callbacks never see a half-walked CQ.
    io_uring_cqe local[kReapBatchMax];
    for (unsigned i = 0; i < count; ++i) local[i] = *cqes_[i];
    io_uring_cq_advance(&ring_, count);
    for (unsigned i = 0; i < count; ++i) dispatch(&local[i]);
  }
}

void UringBackend::submit() {
  if (io_uring_sq_ready(&ring_) > 0) io_uring_submit(&ring_);
}

void UringBackend::wait(TimePoint until) {
  io_uring_cqe* cqe = nullptr;
  int rc;
  if (until == kNoDeadline) {
    rc = io_uring_submit_and_wait(&ring_, 1);
  } else {
    TimePoint now_time = now();
    if (until <= now_time) {
      rc = io_uring_submit_and_get_events(&ring_);
    } else {
      int64_t ns = to_ns(until) - to_ns(now_time);
      __kernel_timespec ts{.tv_sec = ns / 1'000'000'000, .tv_nsec = ns % 1'000'000'000};
      rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
  }
  MICA_ASSERT_MSG(rc >= 0 || rc == -ETIME || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY,
                  "io_uring submit/wait failed");
  reap();
}

void UringBackend::arm_wake_read() {
  wake_op_.opcode = IoOpcode::kRead;
  wake_op_.fd = wake_fd_;
  wake_op_.buffer = &wake_value_;
  wake_op_.length = sizeof wake_value_;
  wake_op_.offset = 0;
  wake_op_.on_complete = &UringBackend::on_wake;
  wake_op_.context = this;
  start(&wake_op_);
}

void UringBackend::on_wake(IoOp* op, int32_t result, bool) {
  auto* self = static_cast<UringBackend*>(op->context);
  if (self->shutting_down_) return;
  MICA_ASSERT_MSG(result == sizeof self->wake_value_, "eventfd read failed");
  self->arm_wake_read();
}

void UringBackend::wake() {
  uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof one);
  MICA_ASSERT(n == sizeof one);
}

Result<int> UringBackend::open_socket(int family) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::from_errno(errno, "socket");
  return fd;
}

Result<int> UringBackend::listen(const SocketAddress& address, int backlog) {
  auto fd = open_socket(address.family());
  if (!fd.ok()) return fd.status();
  int one = 1;
  setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(*fd, address.get(), address.length()) != 0 || ::listen(*fd, backlog) != 0) {
    Status s = Status::from_errno(errno, fmt::format("listen on {}", address.to_string()));
    ::close(*fd);
    return s;
  }
  return fd;
}

Result<SocketAddress> UringBackend::local_address(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0)
    return Status::from_errno(errno, "getsockname");
  return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&storage), length);
}

Result<SocketAddress> UringBackend::peer_address(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0)
    return Status::from_errno(errno, "getpeername");
  return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&storage), length);
}

Status UringBackend::set_socket_option(int fd, int level, int name, int value) {
  if (setsockopt(fd, level, name, &value, sizeof value) != 0)
    return Status::from_errno(errno, "setsockopt");
  return Status();
}

Result<FsSpace> UringBackend::statvfs(const std::string& path) {
  struct statvfs vfs;
  if (::statvfs(path.c_str(), &vfs) != 0) return Status::from_errno(errno, "statvfs " + path);
  return FsSpace{.total_bytes = uint64_t{vfs.f_blocks} * vfs.f_frsize,
                 .available_bytes = uint64_t{vfs.f_bavail} * vfs.f_frsize};
}

void UringBackend::close_now(int fd) {
  ::close(fd);
}

Status UringBackend::register_buffers(std::span<const iovec> buffers) {
  if (buffers_registered_) {
    io_uring_unregister_buffers(&ring_);
    buffers_registered_ = false;
  }
  int rc = io_uring_register_buffers(&ring_, buffers.data(), static_cast<unsigned>(buffers.size()));
  if (rc < 0) return Status::from_errno(-rc, "io_uring_register_buffers");
  buffers_registered_ = true;
  return Status();
}

}  // namespace mica
