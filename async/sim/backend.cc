// SimBackend: op bookkeeping, dispatch and the synchronous socket calls. File operations
// live in disk_ops.cc (on the model of disk.cc), network operations in net.cc.
#include "async/sim/backend.h"

#include <fcntl.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>

#include "async/sim/world.h"

namespace mica::sim {

SimBackend::SimBackend(SimWorld* world, SimHost* host, uint32_t executor_index, SimBackend* primary)
    : world_(world),
      host_(host),
      executor_index_(executor_index),
      shared_(primary ? primary->shared_ : std::make_shared<HostState>()),
      disk_(shared_->disk),
      fds_(shared_->fds),
      listeners_(shared_->listeners),
      sockets_(shared_->sockets),
      sockets_prune_at_(shared_->sockets_prune_at),
      next_ephemeral_port_(shared_->next_ephemeral_port) {}

SimBackend::~SimBackend() {
  MICA_ASSERT_MSG(pending_.empty(), "simulated backend destroyed with operations pending");
}

TimePoint SimBackend::now() {
  return host_->now();  // the host's clock, with its skew and drift
}

uint64_t SimBackend::random_u64() {
  return world_->random().next();
}

void SimBackend::wait(TimePoint) {
  MICA_ASSERT_MSG(false, "a simulated host's executor is driven by SimWorld, not by turn()");
}

uint32_t SimBackend::ip() const {
  return host_->ip();
}

// ---- op bookkeeping ----

IoOp* SimBackend::find(uint64_t id) {
  auto it = pending_.find(id);
  return it == pending_.end() ? nullptr : it->second.op;
}

void SimBackend::complete(uint64_t id, int32_t result, bool more) {
  auto it = pending_.find(id);
  MICA_ASSERT(it != pending_.end());
  IoOp* op = it->second.op;
  if (!more) {
    for (const SimEventKey& key : it->second.events) world_->cancel_event(key);
    pending_.erase(it);
    op->backend_pending = 0;
    if (result < 0) on_failed(op);
  }
  world_->trace(host_, uint32_t(op->opcode), op->fd, result);
  // Last: the callback may start new ops on this backend, or free op.
  op->on_complete(op, result, more);
}

void SimBackend::complete_if_pending(uint64_t id, int32_t result) {
  if (find(id) != nullptr) complete(id, result);
}

void SimBackend::op_event(uint64_t id, Duration delay, std::function<void()> fn) {
  auto it = pending_.find(id);
  MICA_ASSERT(it != pending_.end());
  it->second.events.push_back(
      world_->post_event(host_, world_->now() + delay, std::move(fn), executor_index_));
}

void SimBackend::host_event(TimePoint when, std::function<void()> fn) {
  world_->post_event(host_, when, std::move(fn), executor_index_);
}

// A connect that fails, times out or is cancelled leaves its socket unusable, as on Linux;
// a SYN-ACK arriving later finds it closed and resets the server's end.
void SimBackend::on_failed(IoOp* op) {
  if (op->opcode != IoOpcode::kConnect) return;
  FdEntry* e = entry(op->fd);
  if (e && e->socket && e->socket->state == SimSocket::State::kConnecting)
    e->socket->state = SimSocket::State::kClosed;
}

void SimBackend::start(IoOp* op) {
  MICA_ASSERT(op->on_complete != nullptr);
  uint64_t id = next_op_id_++;
  pending_.emplace(id, PendingOp{op, {}});
  op->backend_slot = reinterpret_cast<void*>(uintptr_t(id));
  op->backend_pending = 1;
  op->backend_timed_out = false;
  op->backend_result = 0;
  if (!host_->up()) {
    // The one gate for a crashed host: it runs only the unwinding of its cancelled tasks,
    // and nothing they attempt (a write, a send, a connect) may reach a disk or a peer.
    op_event(id, Duration(0), [this, id] { complete_if_pending(id, -ECANCELED); });
    return;
  }
  // As on io_uring, a multishot accept takes no deadline (it is stopped by cancel). The
  // deadline is in the host's clock.
  if (op->deadline != kNoDeadline && op->opcode != IoOpcode::kAcceptMultishot) {
    Duration delay = std::max(host_->world_time(op->deadline) - world_->now(), Duration(0));
    op_event(id, delay, [this, id] { complete_if_pending(id, -ETIME); });
  }
  switch (op->opcode) {
    case IoOpcode::kNop:
      op_event(id, Duration(0), [this, id] { complete_if_pending(id, 0); });
      break;
    case IoOpcode::kClose:
      op_event(id, Duration(0), [this, id] {
        IoOp* o = find(id);
        if (!o) return;
        bool known = fds_.count(o->fd) != 0;
        if (known) close_fd(o->fd);
        complete(id, known ? 0 : -EBADF);
      });
      break;
    case IoOpcode::kRead:
    case IoOpcode::kWrite:
    case IoOpcode::kReadv:
    case IoOpcode::kWritev:
    case IoOpcode::kReadFixed:
    case IoOpcode::kWriteFixed:
    case IoOpcode::kFsync:
    case IoOpcode::kFdatasync:
    case IoOpcode::kFallocate:
    case IoOpcode::kOpen:
    case IoOpcode::kMkdir:
    case IoOpcode::kRename:
    case IoOpcode::kUnlink:
    case IoOpcode::kStatx:
      start_disk(id);
      break;
    case IoOpcode::kConnect:
      start_connect(id);
      break;
    case IoOpcode::kAccept:
    case IoOpcode::kAcceptMultishot:
    case IoOpcode::kSend:
    case IoOpcode::kRecv:
    case IoOpcode::kSendmsg:
    case IoOpcode::kRecvmsg:
    case IoOpcode::kShutdown:
    case IoOpcode::kPoll:
      op_event(id, Duration(0), [this, id] { attempt_net(id); });
      break;
    case IoOpcode::kUringCmd:
      // No simulated device takes driver commands (big_sqes() is false).
      op_event(id, Duration(0), [this, id] { complete_if_pending(id, -EOPNOTSUPP); });
      break;
  }
}

void SimBackend::cancel(IoOp* op) {
  auto id = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(op->backend_slot));
  auto it = pending_.find(id);
  if (it == pending_.end() || it->second.op != op) return;  // already complete: nothing to do
  // Never inline: the caller may be inside the op's own awaiter.
  op_event(id, Duration(0), [this, id] { complete_if_pending(id, -ECANCELED); });
}

void SimBackend::crash() {
  // Before the writes in flight fail (and their buffers go): some may have reached the disk.
  land_in_flight_writes();
  // Fail pending ops in the order they started; callbacks may start new ops, which (the
  // host being down) fail on their own event.
  std::vector<uint64_t> ids;
  for (auto& [id, p] : pending_) ids.push_back(id);
  for (uint64_t id : ids) complete_if_pending(id, -ECANCELED);
  // The host's shared state goes with its first backend, which the world crashes last, so
  // every executor's in-flight writes still find their fds.
  if (executor_index_ != 0) return;
  // Silent death: the host's sockets vanish without a FIN or RST, and what waited in their
  // send queues never leaves. Peers find out by retransmission timeouts or their own.
  for (auto& weak : sockets_) {
    std::shared_ptr<SimSocket> s = weak.lock();
    if (!s) continue;
    s->state = SimSocket::State::kClosed;
    s->send_queue.clear();
    s->waiters.clear();
  }
  // Queued, unaccepted connections were in sockets_ too.
  for (auto& [port, l] : listeners_) {
    l->queue.clear();
    l->waiters.clear();
  }
  sockets_.clear();
  listeners_.clear();
  fds_.clear();
}

// ---- fds ----

int SimBackend::allocate_fd(FdEntry e) {
  int fd = kFirstFd;
  for (auto& [used, entry] : fds_) {
    if (used != fd) break;
    ++fd;
  }
  fds_.emplace(fd, std::move(e));
  return fd;
}

SimBackend::FdEntry* SimBackend::entry(int fd) {
  auto it = fds_.find(fd);
  return it == fds_.end() ? nullptr : &it->second;
}

void SimBackend::close_fd(int fd) {
  auto it = fds_.find(fd);
  if (it == fds_.end()) return;
  FdEntry e = std::move(it->second);
  fds_.erase(it);
  if (e.node != 0) disk_.close_fd(e.node);
  if (e.socket) close_socket(e.socket.get());
  if (e.listener) close_listener(e.listener.get());
}

void SimBackend::close_now(int fd) {
  close_fd(fd);
}

Status SimBackend::register_buffers(std::span<const iovec>) {
  return Status();
}

// ---- synchronous socket set-up ----

Result<int> SimBackend::open_socket(int family) {
  if (!host_->up()) return Status(StatusCode::kHostDown, "open_socket on a crashed host");
  if (family != AF_INET) return Status::from_errno(EAFNOSUPPORT, "simulated socket");
  FdEntry e;
  e.socket = new_socket();
  return allocate_fd(std::move(e));
}

Result<int> SimBackend::listen(const SocketAddress& address, int backlog) {
  if (!host_->up()) return Status(StatusCode::kHostDown, "listen on a crashed host");
  if (address.family() != AF_INET) return Status::from_errno(EAFNOSUPPORT, "simulated listen");
  auto* in = reinterpret_cast<const sockaddr_in*>(address.get());
  uint32_t addr = ntohl(in->sin_addr.s_addr);
  // The host's own address, the wildcard and 127.0.0.1 all mean "this host".
  if (addr != ip() && addr != INADDR_ANY && addr != INADDR_LOOPBACK)
    return Status::from_errno(EADDRNOTAVAIL, fmt::format("listen on {}", address.to_string()));
  uint16_t port = address.port();
  if (port == 0) {
    port = kListenPortFirst;
    while (listeners_.count(port)) ++port;
  } else if (listeners_.count(port)) {
    return Status::from_errno(EADDRINUSE, fmt::format("listen on {}", address.to_string()));
  }
  auto l = std::make_shared<SimListener>();
  l->local = SocketAddress::ipv4(ip(), port);
  l->backlog = backlog > 0 ? uint32_t(backlog) : 1;
  listeners_.emplace(port, l);
  FdEntry e;
  e.listener = std::move(l);
  return allocate_fd(std::move(e));
}

Result<SocketAddress> SimBackend::local_address(int fd) {
  FdEntry* e = entry(fd);
  if (!e || e->file) return Status::from_errno(e ? ENOTSOCK : EBADF, "getsockname");
  if (e->listener) return e->listener->local;
  return e->socket->local;
}

Result<SocketAddress> SimBackend::peer_address(int fd) {
  FdEntry* e = entry(fd);
  if (!e || e->file) return Status::from_errno(e ? ENOTSOCK : EBADF, "getpeername");
  if (!e->socket || e->socket->state != SimSocket::State::kConnected)
    return Status::from_errno(ENOTCONN, "getpeername");
  return e->socket->remote;
}

Status SimBackend::set_socket_option(int fd, int, int, int) {
  FdEntry* e = entry(fd);
  if (!e) return Status::from_errno(EBADF, "setsockopt");
  if (e->file) return Status::from_errno(ENOTSOCK, "setsockopt");
  return Status();
}

}  // namespace mica::sim
