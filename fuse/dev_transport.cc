// DevTransport (fuse/dev_transport.h): the /dev/fuse read loops, pooled request buffers and
// writev replies.
#include "fuse/dev_transport.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <coroutine>
#include <cstring>

#include "async/executor.h"
#include "async/io_op.h"
#include "async/log.h"
#include "async/socket.h"
#include "async/sync.h"
#include "fuse/codec.h"

namespace mica::fuse {

namespace {

// Out args of one reply: the header plus at most this many pieces.
constexpr size_t kReplyPiecesMax = 8;

// One read of /dev/fuse through the executor's backend, answering the raw result (bytes or
// -errno): the loop needs the errno itself (ENODEV ends it, ENOENT does not).
class RawRead {
 public:
  RawRead(int fd, std::span<std::byte> buffer) {
    op_.opcode = IoOpcode::kRead;
    op_.fd = fd;
    op_.buffer = buffer.data();
    op_.length = static_cast<uint32_t>(buffer.size());
    op_.offset = 0;  // /dev/fuse is a stream: the offset is ignored
  }
  RawRead(const RawRead&) = delete;
  RawRead& operator=(const RawRead&) = delete;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    waiter_ = h;
    executor_ = Executor::current();
    op_.on_complete = &RawRead::on_complete;
    op_.context = this;
    executor_->backend().start(&op_);
  }
  int32_t await_resume() const { return result_; }

 private:
  static void on_complete(IoOp* op, int32_t result, bool more) {
    MICA_ASSERT(!more);
    auto* self = static_cast<RawRead*>(op->context);
    self->result_ = result;
    self->executor_->post(self->waiter_);
  }
  IoOp op_;
  int32_t result_ = 0;
  Executor* executor_ = nullptr;
  std::coroutine_handle<> waiter_;
};

}  // namespace

struct DevTransport::Lane {
  explicit Lane(uint32_t slots_max) : slots(slots_max) {}
  int fd = -1;
  bool owned = false;  // a clone (closed with the lane); lane 0 uses the session fd
  std::vector<std::unique_ptr<std::byte[]>> free_buffers;
  Semaphore slots;  // requests this lane may still hold
  uint64_t received = 0;
};

class DevTransport::DevRequest final : public Request {
 public:
  DevRequest(Lane* lane, std::unique_ptr<std::byte[]> buffer, size_t buffer_bytes,
             const SplitRequest& split)
      : Request(RequestPath::kClassic),
        lane_(lane),
        buffer_(std::move(buffer)),
        buffer_bytes_(buffer_bytes) {
    header_ = split.header;
    op_in_ = split.op_in;
    payload_ = split.payload;
    extensions_ = split.extensions;
  }
  ~DevRequest() override {
    lane_->free_buffers.push_back(std::move(buffer_));
    lane_->slots.release();
  }
  // The read buffer itself: the handler has copied what it needs from op_in/payload first
  // (the same rule as on the ring, where the payload buffer is also the reply's).
  std::span<std::byte> reply_area() override { return {buffer_.get(), buffer_bytes_}; }
  void reply(int error, std::span<const std::span<const std::byte>> out) override;
  void finish() override {}

 private:
  Lane* lane_;
  std::unique_ptr<std::byte[]> buffer_;
  size_t buffer_bytes_;
};

void DevTransport::DevRequest::reply(int error, std::span<const std::span<const std::byte>> out) {
  MICA_ASSERT(error <= 0);
  MICA_ASSERT(out.size() <= kReplyPiecesMax);
  OutHeader header{.len = sizeof(OutHeader), .error = error, .unique = header_.unique};
  iovec iov[kReplyPiecesMax + 1];
  iov[0] = {.iov_base = &header, .iov_len = sizeof(header)};
  size_t count = 1;
  if (error == 0) {
    for (std::span<const std::byte> piece : out) {
      iov[count++] = {.iov_base = const_cast<std::byte*>(piece.data()), .iov_len = piece.size()};
      header.len += static_cast<uint32_t>(piece.size());
    }
  }
  ssize_t written = ::writev(lane_->fd, iov, static_cast<int>(count));
  // ENOENT: the kernel dropped the request (interrupted, or the caller died) — nothing to do.
  if (written < 0 && errno != ENOENT && errno != ENODEV)
    MICA_LOG(Warn, "fuse", "reply to request {} (opcode {}): {}", header_.unique, header_.opcode,
             std::strerror(errno));
}

DevTransport::DevTransport(int session_fd, DevTransportOptions options, RequestSink& sink)
    : session_fd_(session_fd), options_(options), sink_(&sink) {}

DevTransport::~DevTransport() {
  for (auto& lane : lanes_)
    if (lane->owned && lane->fd >= 0) ::close(lane->fd);
}

Result<std::unique_ptr<DevTransport>> DevTransport::create(int session_fd, size_t lanes,
                                                           DevTransportOptions options,
                                                           RequestSink& sink) {
  MICA_ASSERT(lanes >= 1);
  MICA_ASSERT(options.buffer_bytes >= kMinReadBufferBytes);
  // Non-blocking, every fd: /dev/fuse ignores a non-blocking read asked by io_uring and only
  // honours O_NONBLOCK, so on a blocking fd a read io_uring retries after its poll fired,
  // but that another lane's fd answered first, blocks the executor's own thread until the
  // next request — and with it every request that lane holds.
  int session_flags = ::fcntl(session_fd, F_GETFL);
  if (session_flags < 0 || ::fcntl(session_fd, F_SETFL, session_flags | O_NONBLOCK) != 0)
    return Status(StatusCode::kIoError,
                  "O_NONBLOCK on the FUSE session fd: " + std::string(std::strerror(errno)));
  std::unique_ptr<DevTransport> transport(new DevTransport(session_fd, options, sink));
  for (size_t i = 0; i < lanes; ++i) {
    auto lane = std::make_unique<Lane>(options.requests_in_flight_max);
    lane->fd = session_fd;
    if (i > 0) {
      int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
      if (fd < 0)
        return Status(StatusCode::kIoError, "open /dev/fuse: " + std::string(std::strerror(errno)));
      uint32_t source = static_cast<uint32_t>(session_fd);
      if (::ioctl(fd, kDevIocClone, &source) != 0) {
        int error = errno;
        ::close(fd);
        return Status(StatusCode::kIoError,
                      "FUSE_DEV_IOC_CLONE: " + std::string(std::strerror(error)));
      }
      lane->fd = fd;
      lane->owned = true;
    }
    transport->lanes_.push_back(std::move(lane));
  }
  return transport;
}

uint64_t DevTransport::requests_received() const {
  uint64_t total = 0;
  for (const auto& lane : lanes_) total += lane->received;
  return total;
}

int DevTransport::notify(std::span<const std::byte> message) {
  if (message.empty()) return -EINVAL;
  ssize_t written = ::write(session_fd_, message.data(), message.size());
  return written < 0 ? -errno : 0;
}

Task<Status> DevTransport::read_one(Lane* lane, bool* stop) {
  Semaphore::Awaiter slot = lane->slots.acquire();
  Status acquired = co_await slot;
  if (!acquired.ok()) co_return acquired;
  std::unique_ptr<std::byte[]> buffer;
  if (!lane->free_buffers.empty()) {
    buffer = std::move(lane->free_buffers.back());
    lane->free_buffers.pop_back();
  } else {
    buffer = std::make_unique<std::byte[]>(options_.buffer_bytes);
  }
  std::span<std::byte> bytes(buffer.get(), options_.buffer_bytes);
  int32_t result = 0;
  {
    RawRead reading(lane->fd, bytes);
    result = co_await reading;
  }
  if (result < 0) {
    lane->free_buffers.push_back(std::move(buffer));
    lane->slots.release();
    if (result == -ENODEV) {
      *stop = true;
      co_return Status::ok_status();
    }
    if (result == -EAGAIN) {
      // Nothing queued (or another lane took it first): wait until a request is.
      auto waiting = poll_fd(lane->fd, POLLIN);
      Result<int> polled = co_await waiting;
      if (!polled.ok()) {
        *stop = true;
        co_return polled.status();
      }
      co_return Status::ok_status();
    }
    if (result == -ENOENT || result == -EINTR) co_return Status::ok_status();
    *stop = true;
    co_return Status(StatusCode::kIoError,
                     "read /dev/fuse: " + std::string(std::strerror(-result)));
  }
  ++lane->received;
  SplitRequest split;
  int error = split_request(std::span<const std::byte>(bytes).first(static_cast<size_t>(result)),
                            kernel_minor_, &split);
  auto request =
      std::make_unique<DevRequest>(lane, std::move(buffer), options_.buffer_bytes, split);
  if (error != 0) {
    MICA_LOG(Warn, "fuse", "malformed request ({} bytes, opcode {})", result, split.header.opcode);
    if (static_cast<size_t>(result) >= sizeof(InHeader)) request->reply(error, {});
    co_return Status::ok_status();
  }
  sink_->deliver(std::move(request));
  co_return Status::ok_status();
}

Task<Status> DevTransport::run(size_t lane_index) {
  Lane* lane = lanes_.at(lane_index).get();
  bool stop = false;
  while (!stop) {
    auto reading = read_one(lane, &stop);
    Status status = co_await std::move(reading);
    if (!status.ok()) co_return status;
  }
  co_return Status::ok_status();
}

}  // namespace mica::fuse
