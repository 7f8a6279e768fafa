// Socket and Listener: TCP streams through the executor's backend.
//
// A Socket owns a connected stream fd. send/recv are single operations that may transfer
// less than asked; send_all/recv_exact loop. recv of 0 bytes means the peer closed its
// side. A Listener keeps one multishot accept armed and queues up to accept_queue_max
// connections for accept(); beyond that new connections are closed at once (back-pressure
// the kernel's backlog cannot give us once multishot drained it). Both are move-only and
// belong to the executor that created them; a Socket destroyed open is closed
// synchronously; a Listener destroyed without close() cancels its accept and frees its
// state when the backend reports the cancellation.
#pragma once

#include <deque>
#include <memory>
#include <span>

#include "async/io_awaiter.h"
#include "async/socket_address.h"
#include "async/sync.h"
#include "async/task.h"

namespace mica {

class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&& other) noexcept;
  ~Socket();

  static Task<Result<Socket>> connect(SocketAddress address, IoOptions options = {});

  int fd() const { return fd_; }
  bool is_open() const { return fd_ >= 0; }

  IoAwaiter<size_t> send(std::span<const std::byte> data, IoOptions options = {});
  // flags: recv(2) flags, e.g. MSG_WAITALL to wait until the whole buffer is filled.
  IoAwaiter<size_t> recv(std::span<std::byte> buffer, IoOptions options = {}, int flags = 0);
  // message (and what it points to) must stay valid until the result is back.
  IoAwaiter<size_t> sendmsg(msghdr* message, IoOptions options = {}, int flags = 0);
  IoAwaiter<size_t> recvmsg(msghdr* message, IoOptions options = {});
  IoAwaiter<void> shutdown(int how = SHUT_WR);
  IoAwaiter<void> close();

  Task<Status> send_all(std::span<const std::byte> data, IoOptions options = {});
  // Fills the buffer; kClosed if the peer closes first. With low_water_bytes > 0 and a
  // larger buffer the socket's SO_RCVLOWAT is set to min(low_water_bytes, bytes still
  // missing) while it fills, so a receive that has to wait wakes once that many bytes have
  // arrived instead of once per segment burst (fewer wake-ups and retries: docs/net.md has
  // the measurement), and reset to 1 at the end. Only for a socket with one receiver at a
  // time.
  Task<Status> recv_exact(std::span<std::byte> buffer, IoOptions options = {},
                          size_t low_water_bytes = 0);

  Status set_no_delay(bool on);
  Result<SocketAddress> local_address() const;
  Result<SocketAddress> peer_address() const;

 private:
  Task<Status> recv_exact_batched(std::span<std::byte> buffer, IoOptions options,
                                  size_t low_water_bytes);

  int fd_ = -1;
};

struct ListenOptions {
  int backlog = 1024;
  size_t accept_queue_max = 1024;
};

class Listener {
 public:
  Listener();
  Listener(Listener&&) noexcept;
  Listener& operator=(Listener&&) noexcept;
  ~Listener();

  // Binds and listens (port 0 picks a free port; see address()).
  static Result<Listener> listen(SocketAddress address, ListenOptions options = {});

  const SocketAddress& address() const;
  // The next connection; waits for one (deadline, cancellation honoured).
  Task<Result<Socket>> accept(IoOptions options = {});
  // Stops accepting, fails waiting accepts with kClosed, closes queued connections and
  // waits until the backend has released the accept operation.
  Task<void> close();

 private:
  struct State;
  static void on_accept(IoOp* op, int32_t result, bool more);
  std::unique_ptr<State> state_;
};

// Waits until fd is ready for `events` (POLLIN, POLLOUT, ...); yields the ready events.
// For foreign fds: RDMA completion channels, /dev/fuse.
IoAwaiter<int> poll_fd(int fd, short events, IoOptions options = {});

}  // namespace mica
