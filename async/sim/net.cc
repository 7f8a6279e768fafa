// SimBackend's network: TCP-like stream connections between simulated hosts.
//
// A connection is two SimSockets, one per host, linked by weak pointers. Everything that
// crosses the network is a world event on the receiving host: SYN, SYN-ACK, data and FIN
// segments, and RSTs. Each segment draws its own latency, but never arrives before the
// previous segment of the same direction, so bytes stay in order within a connection while
// different connections interleave freely. A lost segment (drop, a partition in its
// direction, a down destination) is retransmitted with a doubling delay; the segments
// behind it wait, so a stream is late but never has a hole. Past the retransmission limit
// the sender's end resets with -ETIMEDOUT and an RST goes to the peer. A down host sends
// nothing at all (no FIN, no RST), and a frozen host's segments wait with it. Flow control
// bounds the bytes sent but not yet read by the peer: a send takes what fits, then waits.
// Segments, retransmission, resets and close live in segment.cc.
#include <netinet/in.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "async/sim/backend.h"
#include "async/sim/world.h"

namespace mica::sim {
namespace {

// Received bytes are compacted once this many have been read from the front.
constexpr size_t kCompactBytesMin = 64 << 10;

void consume(SimSocket* s, size_t n) {
  s->rx_offset += n;
  if (s->rx_offset == s->rx.size()) {
    s->rx.clear();
    s->rx_offset = 0;
  } else if (s->rx_offset >= kCompactBytesMin && s->rx_offset * 2 >= s->rx.size()) {
    s->rx.erase(0, s->rx_offset);
    s->rx_offset = 0;
  }
}

}  // namespace

Duration SimBackend::net_latency() {
  const SimNetConfig& net = world_->net_config();
  return world_->random().between(net.latency_min, net.latency_max);
}

std::shared_ptr<SimSocket> SimBackend::new_socket() {
  auto s = std::make_shared<SimSocket>();
  s->owner = this;
  if (sockets_.size() >= sockets_prune_at_) {
    std::erase_if(sockets_, [](const std::weak_ptr<SimSocket>& w) { return w.expired(); });
    sockets_prune_at_ = std::max(kSocketsPruneMin, sockets_.size() * 2);
  }
  sockets_.push_back(s);
  return s;
}

uint16_t SimBackend::ephemeral_port() {
  uint16_t port = next_ephemeral_port_++;
  if (next_ephemeral_port_ == 0) next_ephemeral_port_ = kEphemeralPortFirst;
  return port;
}

void SimBackend::attempt_net(uint64_t id) {
  IoOp* op = find(id);
  if (op == nullptr) return;  // completed meanwhile (deadline, cancel, crash)
  switch (op->opcode) {
    case IoOpcode::kAccept:
    case IoOpcode::kAcceptMultishot:
      attempt_accept(id, op);
      break;
    case IoOpcode::kSend:
    case IoOpcode::kSendmsg:
      attempt_send(id, op);
      break;
    case IoOpcode::kRecv:
    case IoOpcode::kRecvmsg:
      attempt_recv(id, op);
      break;
    case IoOpcode::kShutdown:
      do_shutdown(id, op);
      break;
    case IoOpcode::kPoll:
      attempt_poll(id, op);
      break;
    default:
      MICA_ASSERT_MSG(false, "not a network opcode");
  }
}

// ---- connection set-up ----

void SimBackend::start_connect(uint64_t id) {
  IoOp* op = find(id);
  FdEntry* e = entry(op->fd);
  int32_t error = 0;
  if (e == nullptr)
    error = -EBADF;
  else if (!e->socket)
    error = -ENOTSOCK;
  else if (e->socket->state == SimSocket::State::kConnected)
    error = -EISCONN;
  else if (e->socket->state == SimSocket::State::kConnecting)
    error = -EALREADY;
  else if (e->socket->state != SimSocket::State::kFresh)
    error = -EINVAL;
  else if (op->address == nullptr || op->address->sa_family != AF_INET ||
           op->address_length < sizeof(sockaddr_in))
    error = -EAFNOSUPPORT;
  uint32_t to_ip = 0;
  SimHost* target = nullptr;
  const SimNetConfig& net = world_->net_config();
  if (error == 0) {
    to_ip = ntohl(reinterpret_cast<const sockaddr_in*>(op->address)->sin_addr.s_addr);
    target = to_ip == INADDR_LOOPBACK ? host_ : world_->host_by_ip(to_ip);
    if (target == nullptr) error = -ENETUNREACH;
  }
  if (error != 0) {
    op_event(id, Duration(0), [this, id, error] { complete_if_pending(id, error); });
    return;
  }
  uint16_t port = ntohs(reinterpret_cast<const sockaddr_in*>(op->address)->sin_port);
  std::shared_ptr<SimSocket> client = e->socket;
  client->state = SimSocket::State::kConnecting;
  client->owner = this;
  client->connect_op = id;
  client->connect_backend = this;
  client->remote_host = target;
  client->local = SocketAddress::ipv4(ip(), ephemeral_port());
  client->remote = SocketAddress::ipv4(to_ip, port);
  // Unanswered (the SYN or SYN-ACK blocked, the target down), connect gives up after its
  // timeout, or its deadline comes first.
  op_event(id, net.connect_timeout, [this, id] { complete_if_pending(id, -ETIMEDOUT); });
  if (world_->blocked(host_->index(), target->index()) || !target->up()) return;
  SimBackend* dest = &target->backend();
  world_->post_event(target, world_->now() + net_latency(),
                     [dest, client, port] { dest->on_syn(client, port); });
}

void SimBackend::on_syn(std::shared_ptr<SimSocket> client, uint16_t port) {
  if (client->state != SimSocket::State::kConnecting) return;  // the client gave up
  SimBackend* back = client->connect_backend;
  // A down host answers nothing; an answer into a partition is lost.
  if (!host_->up() || world_->blocked(host_->index(), back->host_->index())) return;
  auto it = listeners_.find(port);
  if (it == listeners_.end() || it->second->queue.size() >= it->second->backlog) {
    world_->post_event(
        back->host_, world_->now() + net_latency(), [back, client] { back->on_refused(client); },
        back->executor_index_);
    return;
  }
  std::shared_ptr<SimListener> l = it->second;
  std::shared_ptr<SimSocket> server = new_socket();
  server->state = SimSocket::State::kConnected;
  server->local = l->local;
  server->remote = client->local;
  server->remote_host = back->host_;
  server->peer = client;
  client->peer = server;
  // The SYN-ACK is the first segment of the server->client direction, so data the server
  // sends right after accept cannot overtake it.
  TimePoint arrival = std::max(world_->now() + net_latency(), server->last_arrival_out);
  server->last_arrival_out = arrival;
  world_->post_event(
      back->host_, arrival, [back, client, server] { back->on_synack(client, server); },
      back->executor_index_);
  l->queue.push_back(std::move(server));
  wake(l.get());
}

void SimBackend::on_refused(std::shared_ptr<SimSocket> client) {
  if (client->state != SimSocket::State::kConnecting) return;
  client->state = SimSocket::State::kClosed;
  complete_if_pending(client->connect_op, -ECONNREFUSED);  // this is the connect's backend
}

void SimBackend::on_synack(std::shared_ptr<SimSocket> client, std::shared_ptr<SimSocket> server) {
  if (client->state != SimSocket::State::kConnecting || find(client->connect_op) == nullptr) {
    // Deadline, cancel or close got there first: the server's end is reset (a crashed
    // client host answers nothing).
    if (host_->up()) reset_later(server, net_latency());
    return;
  }
  client->state = SimSocket::State::kConnected;
  complete(client->connect_op, 0);
  wake(client.get());
}

void SimBackend::attempt_accept(uint64_t id, IoOp* op) {
  FdEntry* e = entry(op->fd);
  if (e == nullptr || !e->listener) {
    complete(id, e == nullptr ? -EBADF : -EINVAL);
    return;
  }
  std::shared_ptr<SimListener> l = e->listener;
  bool multishot = op->opcode == IoOpcode::kAcceptMultishot;
  int listen_fd = op->fd;
  while (!l->queue.empty()) {
    FdEntry accepted;
    accepted.socket = std::move(l->queue.front());
    accepted.socket->owner = this;  // its segments are delivered on the accepting executor
    l->queue.pop_front();
    int fd = allocate_fd(std::move(accepted));
    if (!multishot) {
      complete(id, fd);
      return;
    }
    complete(id, fd, /*more=*/true);
    // The callback may have closed the listener (close_now) or cancelled the op.
    FdEntry* now_entry = entry(listen_fd);
    if (find(id) == nullptr) return;
    if (now_entry == nullptr || now_entry->listener != l) {
      complete(id, -ECANCELED);
      return;
    }
  }
  l->waiters.push_back({this, id});
}

// ---- data ----

void SimBackend::attempt_send(uint64_t id, IoOp* op) {
  FdEntry* e = entry(op->fd);
  if (e == nullptr || !e->socket) {
    complete(id, e == nullptr ? -EBADF : -ENOTSOCK);
    return;
  }
  SimSocket* s = e->socket.get();
  int32_t error = 0;
  if (s->state == SimSocket::State::kReset)
    error = -s->reset_errno;
  else if (s->shut_wr || s->state == SimSocket::State::kClosed)
    error = -EPIPE;
  else if (s->state != SimSocket::State::kConnected)
    error = -ENOTCONN;
  if (error != 0) {
    complete(id, error);
    return;
  }
  std::string data;
  if (op->opcode == IoOpcode::kSendmsg) {
    for (size_t i = 0; i < op->message->msg_iovlen; ++i)
      data.append(static_cast<const char*>(op->message->msg_iov[i].iov_base),
                  op->message->msg_iov[i].iov_len);
  } else {
    data.assign(static_cast<const char*>(op->buffer), op->length);
  }
  // Flow control: take what fits in the send and receive buffers, wait while nothing does.
  const SimNetConfig& net = world_->net_config();
  uint64_t limit = net.send_buffer_bytes + net.receive_buffer_bytes;
  uint64_t space = limit > s->unread_out_bytes ? limit - s->unread_out_bytes : 0;
  if (space == 0 && !data.empty()) {
    s->waiters.push_back({this, id});
    return;
  }
  auto n = int32_t(std::min<uint64_t>({data.size(), space, uint64_t(INT32_MAX)}));
  data.resize(size_t(n));
  s->unread_out_bytes += uint64_t(n);
  if (n > 0) transmit(s, Segment::kData, std::move(data));
  complete(id, n);
}

void SimBackend::attempt_recv(uint64_t id, IoOp* op) {
  FdEntry* e = entry(op->fd);
  if (e == nullptr || !e->socket) {
    complete(id, e == nullptr ? -EBADF : -ENOTSOCK);
    return;
  }
  SimSocket* s = e->socket.get();
  if (s->state == SimSocket::State::kReset) {
    complete(id, -s->reset_errno);
    return;
  }
  bool vector = op->opcode == IoOpcode::kRecvmsg;
  uint64_t want = 0;
  if (vector) {
    for (size_t i = 0; i < op->message->msg_iovlen; ++i) want += op->message->msg_iov[i].iov_len;
  } else {
    want = op->length;
  }
  want = std::min<uint64_t>(want, INT32_MAX);
  size_t available = s->available();
  bool read_closed = s->rx_eof || s->shut_rd;
  bool wait_all = op->flags & MSG_WAITALL;
  if (want == 0 || (available == 0 && read_closed)) {
    complete(id, 0);
    return;
  }
  if (available > 0 && (!wait_all || available >= want || read_closed)) {
    size_t n = std::min<uint64_t>(want, available);
    const char* from = s->rx.data() + s->rx_offset;
    if (!vector) {
      std::memcpy(op->buffer, from, n);
    } else {
      size_t done = 0;
      for (size_t i = 0; i < op->message->msg_iovlen && done < n; ++i) {
        size_t part = std::min(op->message->msg_iov[i].iov_len, n - done);
        std::memcpy(op->message->msg_iov[i].iov_base, from + done, part);
        done += part;
      }
      op->message->msg_flags = 0;
      op->message->msg_controllen = 0;
    }
    if (!(op->flags & MSG_PEEK)) {
      consume(s, n);
      on_read(s, n);
    }
    complete(id, int32_t(n));
    return;
  }
  if (s->state != SimSocket::State::kConnected) {
    complete(id, -ENOTCONN);
    return;
  }
  s->waiters.push_back({this, id});
}

// The reader made room: the sender learns it one latency later (a window update).
void SimBackend::on_read(SimSocket* s, size_t n) {
  std::shared_ptr<SimSocket> peer = s->peer.lock();
  if (!peer) return;
  SimBackend* b = peer->owner;
  world_->post_event(
      b->host_, world_->now() + net_latency(),
      [b, peer, n] {
        peer->unread_out_bytes -= std::min<uint64_t>(peer->unread_out_bytes, n);
        b->wake(peer.get());
      },
      b->executor_index_);
}

void SimBackend::do_shutdown(uint64_t id, IoOp* op) {
  FdEntry* e = entry(op->fd);
  if (e == nullptr || !e->socket) {
    complete(id, e == nullptr ? -EBADF : -ENOTSOCK);
    return;
  }
  SimSocket* s = e->socket.get();
  if (s->state != SimSocket::State::kConnected) {
    complete(id, -ENOTCONN);
    return;
  }
  int how = op->flags;
  if (how == SHUT_RD || how == SHUT_RDWR) s->shut_rd = true;
  if ((how == SHUT_WR || how == SHUT_RDWR) && !s->shut_wr) {
    s->shut_wr = true;
    transmit(s, Segment::kFin, {});
  }
  std::shared_ptr<SimSocket> keep = e->socket;
  complete(id, 0);
  wake(keep.get());
}

int SimBackend::poll_mask(int fd) {
  FdEntry* e = entry(fd);
  if (e == nullptr) return POLLNVAL;
  if (e->file) return POLLIN | POLLOUT;
  if (e->listener) return e->listener->queue.empty() ? 0 : POLLIN;
  const SimSocket& s = *e->socket;
  switch (s.state) {
    case SimSocket::State::kFresh:
      return POLLOUT | POLLHUP;  // as Linux for a fresh socket
    case SimSocket::State::kConnecting:
      return 0;
    case SimSocket::State::kReset:
      return POLLIN | POLLOUT | POLLERR | POLLHUP;
    case SimSocket::State::kClosed:
      return POLLOUT | POLLERR | POLLHUP;
    case SimSocket::State::kConnected:
      break;
  }
  const SimNetConfig& net = world_->net_config();
  bool room = s.unread_out_bytes < net.send_buffer_bytes + net.receive_buffer_bytes;
  int mask = s.shut_wr || !room ? 0 : POLLOUT;
  if (s.available() > 0 || s.rx_eof || s.shut_rd) mask |= POLLIN;
  if (s.rx_eof && s.shut_wr) mask |= POLLHUP;
  return mask;
}

void SimBackend::attempt_poll(uint64_t id, IoOp* op) {
  int mask = poll_mask(op->fd);
  int want = (op->flags & 0xFFFF) | POLLERR | POLLHUP | POLLNVAL;
  if (mask & want) {
    complete(id, mask & want);
    return;
  }
  FdEntry* e = entry(op->fd);
  if (e->listener)
    e->listener->waiters.push_back({this, id});
  else
    e->socket->waiters.push_back({this, id});
}

}  // namespace mica::sim
