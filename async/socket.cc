#include "async/socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <climits>

namespace mica {

namespace {
Backend& backend() {
  Executor* e = Executor::current();
  MICA_ASSERT_MSG(e != nullptr, "socket used outside an executor");
  return e->backend();
}

template <class T>
IoAwaiter<T> make_op(IoOpcode opcode, int fd, void* buffer, size_t length, IoOptions options) {
  MICA_ASSERT_MSG(length <= UINT32_MAX, "single transfer larger than 4 GiB");
  IoAwaiter<T> a;
  IoOp& op = a.op();
  op.opcode = opcode;
  op.fd = fd;
  op.buffer = buffer;
  op.length = static_cast<uint32_t>(length);
  op.deadline = options.deadline;
  return a;
}
}  // namespace

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) backend().close_now(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Socket::~Socket() {
  if (fd_ >= 0) backend().close_now(fd_);
}

namespace {
// Holds the address for the duration of the connect operation.
struct ConnectAwaiter : IoAwaiter<void> {
  SocketAddress address;
};
}  // namespace

Task<Result<Socket>> Socket::connect(SocketAddress address, IoOptions options) {
  CO_TRY_ASSIGN(int fd, backend().open_socket(address.family()));
  Socket socket(fd);
  ConnectAwaiter a;
  a.address = address;
  IoOp& op = a.op();
  op.opcode = IoOpcode::kConnect;
  op.fd = fd;
  op.address = a.address.get();
  op.address_length = a.address.length();
  op.deadline = options.deadline;
  Result<void> connected = co_await a;
  if (!connected.ok())
    co_return Status(connected.code(),
                     fmt::format("connect to {}: {}", address.to_string(), connected.message()));
  co_return std::move(socket);
}

IoAwaiter<size_t> Socket::send(std::span<const std::byte> data, IoOptions options) {
  return make_op<size_t>(IoOpcode::kSend, fd_, const_cast<std::byte*>(data.data()), data.size(),
                         options);
}

IoAwaiter<size_t> Socket::recv(std::span<std::byte> buffer, IoOptions options, int flags) {
  auto a = make_op<size_t>(IoOpcode::kRecv, fd_, buffer.data(), buffer.size(), options);
  a.op().flags = flags;
  return a;
}

IoAwaiter<size_t> Socket::sendmsg(msghdr* message, IoOptions options, int flags) {
  auto a = make_op<size_t>(IoOpcode::kSendmsg, fd_, nullptr, 0, options);
  a.op().message = message;
  a.op().flags = flags;
  return a;
}

IoAwaiter<size_t> Socket::recvmsg(msghdr* message, IoOptions options) {
  auto a = make_op<size_t>(IoOpcode::kRecvmsg, fd_, nullptr, 0, options);
  a.op().message = message;
  return a;
}

IoAwaiter<void> Socket::shutdown(int how) {
  auto a = make_op<void>(IoOpcode::kShutdown, fd_, nullptr, 0, {});
  a.op().flags = how;
  return a;
}

IoAwaiter<void> Socket::close() {
  auto a = make_op<void>(IoOpcode::kClose, fd_, nullptr, 0, {});
  fd_ = -1;
  return a;
}

Task<Status> Socket::send_all(std::span<const std::byte> data, IoOptions options) {
  while (!data.empty()) {
    CO_TRY_ASSIGN(size_t n, co_await send(data, options));
    if (n == 0) co_return Status(StatusCode::kConnectionReset, "send made no progress");
    data = data.subspan(n);
  }
  co_return Status();
}

Task<Status> Socket::recv_exact(std::span<std::byte> buffer, IoOptions options,
                                size_t low_water_bytes) {
  if (low_water_bytes > 0 && buffer.size() > low_water_bytes) {
    auto batched = recv_exact_batched(buffer, options, low_water_bytes);
    co_return co_await std::move(batched);
  }
  while (!buffer.empty()) {
    // MSG_WAITALL: the kernel keeps receiving into the buffer until it is full, one
    // operation instead of one per arriving segment burst.
    CO_TRY_ASSIGN(size_t n, co_await recv(buffer, options, MSG_WAITALL));
    if (n == 0) co_return Status(StatusCode::kClosed, "peer closed the connection");
    buffer = buffer.subspan(n);
  }
  co_return Status();
}

// Every receive asks for no more than is missing, so the low-water mark never waits for
// bytes beyond the buffer.
Task<Status> Socket::recv_exact_batched(std::span<std::byte> buffer, IoOptions options,
                                        size_t low_water_bytes) {
  MICA_ASSERT(low_water_bytes <= INT_MAX);  // SO_RCVLOWAT takes an int
  size_t mark = 1;
  Status status;
  while (status.ok() && !buffer.empty()) {
    size_t wanted = std::min(buffer.size(), low_water_bytes);
    if (wanted != mark) {
      status = backend().set_socket_option(fd_, SOL_SOCKET, SO_RCVLOWAT, static_cast<int>(wanted));
      mark = wanted;
      if (!status.ok()) break;
    }
    Result<size_t> n = co_await recv(buffer, options);
    if (!n.ok())
      status = n.status();
    else if (*n == 0)
      status = Status(StatusCode::kClosed, "peer closed the connection");
    else
      buffer = buffer.subspan(*n);
  }
  if (mark != 1) {
    Status reset = backend().set_socket_option(fd_, SOL_SOCKET, SO_RCVLOWAT, 1);
    if (status.ok()) status = reset;
  }
  co_return status;
}

Status Socket::set_no_delay(bool on) {
  return backend().set_socket_option(fd_, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0);
}

Result<SocketAddress> Socket::local_address() const {
  return backend().local_address(fd_);
}
Result<SocketAddress> Socket::peer_address() const {
  return backend().peer_address(fd_);
}

// ---- Listener ----

struct Listener::State {
  int fd = -1;
  SocketAddress address;
  ListenOptions options;
  Executor* executor = nullptr;
  IoOp accept_op;
  bool armed = false;     // the multishot accept is in the backend
  bool closing = false;   // close() or the destructor ran; do not re-arm
  bool orphaned = false;  // the Listener is gone; free this state on the final completion
  std::deque<int> ready;  // accepted fds nobody has taken yet
  Status error;           // a failure to hand to the next accept()
  WaitList waiters;
  Event released;  // set once the accept op has completed for good
  // accept() calls inside this state; close() frees it only once they have all left, since
  // one woken with a connection may not have resumed yet when close() runs.
  uint32_t accepting = 0;
  Event accepts_done;  // set while accepting == 0

  void arm() {
    accept_op.opcode = IoOpcode::kAcceptMultishot;
    accept_op.fd = fd;
    accept_op.on_complete = &Listener::on_accept;
    accept_op.context = this;
    armed = true;
    released.reset();
    executor->backend().start(&accept_op);
  }
  void drop_ready() {
    for (int queued : ready) executor->backend().close_now(queued);
    ready.clear();
  }
};

Listener::Listener() = default;
Listener::Listener(Listener&&) noexcept = default;
Listener& Listener::operator=(Listener&& other) noexcept {
  MICA_ASSERT_MSG(!state_, "a Listener is assigned to only while closed");
  state_ = std::move(other.state_);
  return *this;
}

Result<Listener> Listener::listen(SocketAddress address, ListenOptions options) {
  Backend& b = backend();
  auto fd = b.listen(address, options.backlog);
  if (!fd.ok()) return fd.status();
  Listener listener;
  listener.state_ = std::make_unique<State>();
  State& s = *listener.state_;
  s.fd = *fd;
  s.options = options;
  s.executor = Executor::current();
  auto bound = b.local_address(s.fd);
  if (!bound.ok()) {
    b.close_now(s.fd);
    listener.state_.reset();
    return bound.status();
  }
  s.address = *bound;
  s.arm();
  return listener;
}

const SocketAddress& Listener::address() const {
  return state_->address;
}

void Listener::on_accept(IoOp* op, int32_t result, bool more) {
  auto* s = static_cast<State*>(op->context);
  if (!more) {
    s->armed = false;
    s->released.set();
    if (s->orphaned) {
      if (result >= 0) s->executor->backend().close_now(result);
      s->drop_ready();
      s->executor->backend().close_now(s->fd);
      delete s;
      return;
    }
  }
  if (result >= 0) {
    if (s->closing) {
      s->executor->backend().close_now(result);
    } else if (Waiter* w = s->waiters.front()) {
      s->ready.push_back(result);
      s->waiters.wake(w);
    } else if (s->ready.size() < s->options.accept_queue_max) {
      s->ready.push_back(result);
    } else {
      s->executor->backend().close_now(result);  // queue full: shed the connection
    }
  } else if (!s->closing) {
    s->error = io_status(result, IoOpcode::kAccept);
    if (Waiter* w = s->waiters.front()) s->waiters.wake(w);
  }
  // A multishot accept that ends after a success was ended by the kernel: re-arm it. One
  // that ends in an error is re-armed by the next accept() call, so a persistent error
  // (fds exhausted, fd gone, host down) is paced by the caller instead of spinning here.
  if (!more && !s->closing && result >= 0) s->arm();
}

namespace {
struct AcceptWait {
  WaitList* list;
  TimePoint deadline;
  Waiter waiter;
  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    return list->suspend(&waiter, h, deadline);
  }
  Status await_resume() { return std::move(waiter.status); }
};
}  // namespace

Task<Result<Socket>> Listener::accept(IoOptions options) {
  MICA_ASSERT_MSG(state_ != nullptr, "accept on a closed Listener");
  State* s = state_.get();
  ++s->accepting;
  s->accepts_done.reset();
  struct Leave {
    State* s;
    ~Leave() {
      if (--s->accepting == 0) s->accepts_done.set();
    }
  } leave{s};
  for (;;) {
    if (!s->ready.empty()) {
      int fd = s->ready.front();
      s->ready.pop_front();
      co_return Socket(fd);
    }
    if (!s->error.ok()) co_return std::exchange(s->error, Status());
    if (s->closing) co_return Status(StatusCode::kClosed, "listener closed");
    if (!s->armed) s->arm();
    AcceptWait wait{&s->waiters, options.deadline, {}};
    Status woke = co_await wait;
    if (!woke.ok()) co_return woke;
  }
}

Task<void> Listener::close() {
  if (!state_) co_return;
  State* s = state_.get();
  s->closing = true;
  s->waiters.wake_all(Status(StatusCode::kClosed, "listener closed"));
  if (s->armed) {
    s->executor->backend().cancel(&s->accept_op);
    Status released = co_await s->released.wait_uncancellable();
    MICA_ASSERT(released.ok());
  }
  while (s->accepting > 0) {
    Status left = co_await s->accepts_done.wait_uncancellable();
    MICA_ASSERT(left.ok());
  }
  s->drop_ready();
  s->executor->backend().close_now(s->fd);
  state_.reset();
}

Listener::~Listener() {
  if (!state_) return;
  State* s = state_.release();
  s->closing = true;
  MICA_ASSERT_MSG(s->waiters.empty() && s->accepting == 0,
                  "Listener destroyed while accept() waits");
  if (!s->armed) {
    s->drop_ready();
    s->executor->backend().close_now(s->fd);
    delete s;
    return;
  }
  s->orphaned = true;  // on_accept frees it when the cancelled accept completes
  s->executor->backend().cancel(&s->accept_op);
}

IoAwaiter<int> poll_fd(int fd, short events, IoOptions options) {
  auto a = make_op<int>(IoOpcode::kPoll, fd, nullptr, 0, options);
  a.op().flags = events;
  return a;
}

}  // namespace mica
