// SimBackend's segments: how bytes, FINs and RSTs cross the simulated network (see the
// header of net.cc for the model), retransmission of lost segments, giving up, bit flips,
// waking the ops that wait on a socket, and closing sockets and listeners.
//
// A socket's send queue holds segments not yet on the wire; only its head may be lost, and
// while it is, a retransmission event for it is pending, so the rest wait and the stream
// never has a hole. Everything runs on the world's thread, inside world events or ops.
#include <algorithm>
#include <cerrno>

#include "async/sim/backend.h"
#include "async/sim/world.h"

namespace mica::sim {

// ---- segments ----

void SimBackend::transmit(SimSocket* from, Segment kind, std::string data) {
  bool idle = from->send_queue.empty();
  from->send_queue.push_back({kind, std::move(data), world_->now(), 0});
  // A non-empty queue means its head is lost and its retransmission is scheduled.
  if (idle) pump(from->shared_from_this());
}

bool SimBackend::lost_in_transit(SimHost* to_host) {
  if (world_->blocked(host_->index(), to_host->index()) || !to_host->up()) return true;
  return world_->random().chance(world_->net_config().drop_probability);
}

void SimBackend::pump(std::shared_ptr<SimSocket> from) {
  SimBackend* self = from->owner;
  SimWorld* world = self->world_;
  const SimNetConfig& net = world->net_config();
  while (!from->send_queue.empty()) {
    // Nothing leaves a crashed host; a reset connection sends nothing more.
    if (!self->host_->up() || from->state == SimSocket::State::kReset) {
      from->send_queue.clear();
      return;
    }
    SimSocket::Outgoing& head = from->send_queue.front();
    if (self->lost_in_transit(from->remote_host)) {
      if (head.retransmissions >= net.retransmit_attempts_max ||
          world->now() - head.first_sent >= net.retransmit_timeout) {
        self->give_up(from.get());
        return;
      }
      Duration delay = net.retransmit_delay;
      for (uint32_t i = 0; i < head.retransmissions && delay < net.retransmit_delay_max; ++i)
        delay *= 2;
      delay = std::min(delay, net.retransmit_delay_max);
      ++head.retransmissions;
      ++world->net_stats().retransmissions;
      world->trace(self->host_, uint32_t(SimTraceKind::kRetransmit), -1,
                   int64_t(head.retransmissions));
      world->post_event(
          self->host_, world->now() + delay, [from] { pump(from); }, self->executor_index_);
      return;
    }
    std::shared_ptr<SimSocket> to = from->peer.lock();
    if (!to) {
      // The other end no longer exists and its host is up: it answers with an RST.
      from->send_queue.clear();
      reset_later(from, self->net_latency());
      return;
    }
    if (world->random().chance(net.reset_probability)) {
      reset_later(from, self->net_latency());
      reset_later(to, self->net_latency());
      from->send_queue.clear();
      return;
    }
    SimSocket::Outgoing segment = std::move(head);
    from->send_queue.pop_front();
    if (segment.kind == Segment::kData) self->flip_bits(from->remote_host, segment.data);
    TimePoint arrival = std::max(world->now() + self->net_latency(), from->last_arrival_out);
    from->last_arrival_out = arrival;
    SimBackend* dest = to->owner;
    std::weak_ptr<SimSocket> sender = from;
    world->post_event(
        dest->host_, arrival,
        [dest, to, kind = segment.kind, data = std::move(segment.data), sender] {
          dest->deliver(to, kind, data, sender);
        },
        dest->executor_index_);
  }
}

void SimBackend::flip_bits(SimHost* to_host, std::string& data) {
  const SimNetConfig& net = world_->net_config();
  if (net.tamper) net.tamper(*host_, *to_host, data);
  if (data.empty() || !world_->random().chance(net.bit_flip_probability)) return;
  uint64_t bit = world_->random().below(uint64_t(data.size()) * 8);
  data[bit / 8] = char(uint8_t(data[bit / 8]) ^ uint8_t(1u << (bit % 8)));
  world_->trace(host_, uint32_t(SimTraceKind::kBitFlip), -1, int64_t(bit));
  ++world_->net_stats().bit_flips;
}

// The sender's retransmissions of one segment failed for too long: its end resets with
// -ETIMEDOUT, and the RST it sends reaches the peer only if the way is open.
void SimBackend::give_up(SimSocket* from) {
  world_->trace(host_, uint32_t(SimTraceKind::kGiveUp), -1, 0);
  ++world_->net_stats().give_ups;
  send_rst(from);
  reset_end(from, ETIMEDOUT);
}

void SimBackend::send_rst(SimSocket* from) {
  std::shared_ptr<SimSocket> to = from->peer.lock();
  SimHost* to_host = from->remote_host;
  if (!to || to_host == nullptr || !to_host->up()) return;
  if (world_->blocked(host_->index(), to_host->index())) return;
  reset_later(to, net_latency());
}

void SimBackend::deliver(std::shared_ptr<SimSocket> to, Segment kind, std::string data,
                         std::weak_ptr<SimSocket> from) {
  // Crashed after the segment left: it reaches nobody, and a down host answers nothing.
  if (!host_->up()) return;
  world_->trace(host_, uint32_t(SimTraceKind::kSegment), -1,
                kind == Segment::kFin ? -1 : int64_t(data.size()));
  ++world_->net_stats().segments_delivered;
  if (to->state == SimSocket::State::kClosed) {
    // Nobody reads this end any more (closed, or its host crashed and came back): answer
    // with an RST.
    if (kind == Segment::kData)
      if (auto sender = from.lock()) reset_later(sender, net_latency());
    return;
  }
  if (to->state != SimSocket::State::kConnected) return;  // reset meanwhile
  if (kind == Segment::kData)
    to->rx.append(data);
  else
    to->rx_eof = true;
  wake(to.get());
}

void SimBackend::reset_later(std::shared_ptr<SimSocket> s, Duration delay) {
  SimBackend* b = s->owner;
  b->world_->post_event(
      b->host_, b->world_->now() + delay, [b, s] { b->reset_end(s.get()); }, b->executor_index_);
}

void SimBackend::reset_end(SimSocket* s, int error) {
  if (s->state != SimSocket::State::kConnected && s->state != SimSocket::State::kConnecting) return;
  bool was_connecting = s->state == SimSocket::State::kConnecting;
  s->state = SimSocket::State::kReset;
  s->reset_errno = error;
  s->rx.clear();
  s->rx_offset = 0;
  s->send_queue.clear();
  world_->trace(host_, uint32_t(SimTraceKind::kReset), -1, error);
  if (was_connecting && s->connect_backend != nullptr)
    s->connect_backend->complete_if_pending(s->connect_op, -ECONNREFUSED);
  wake(s);
}

void SimBackend::retry(SimWaiter w) {
  // On the waiter's own executor at once; another executor's op is retried by an event
  // on that executor, so its completion runs with the executor that started it current.
  Executor* current = Executor::current();
  if (current != nullptr && &current->backend() == w.backend) {
    w.backend->attempt_net(w.id);
    return;
  }
  SimBackend* b = w.backend;
  uint64_t id = w.id;
  if (b->find(id) != nullptr) b->op_event(id, Duration(0), [b, id] { b->attempt_net(id); });
}

void SimBackend::retry_all(std::vector<SimWaiter> waiters) {
  for (SimWaiter w : waiters) w.backend->retry(w);
}

void SimBackend::wake(SimSocket* s) {
  std::vector<SimWaiter> waiters;
  waiters.swap(s->waiters);
  retry_all(std::move(waiters));
}

void SimBackend::wake(SimListener* l) {
  std::vector<SimWaiter> waiters;
  waiters.swap(l->waiters);
  retry_all(std::move(waiters));
}

// Fails waiters of a closed fd on their own events: close_now runs inside tasks.
void SimBackend::cancel_all(std::vector<SimWaiter> waiters) {
  for (SimWaiter w : waiters) {
    SimBackend* b = w.backend;
    uint64_t id = w.id;
    if (b->find(id))
      b->op_event(id, Duration(0), [b, id] { b->complete_if_pending(id, -ECANCELED); });
  }
}

// ---- close ----

void SimBackend::close_socket(SimSocket* s) {
  std::shared_ptr<SimSocket> peer = s->peer.lock();
  if (s->state == SimSocket::State::kConnected && peer) {
    // As Linux: closing with unread data resets the connection; otherwise a FIN follows
    // whatever is still queued or in flight.
    if (s->available() > 0) {
      s->send_queue.clear();
      send_rst(s);
    } else if (!s->shut_wr) {
      transmit(s, Segment::kFin, {});
    }
  }
  bool was_connecting = s->state == SimSocket::State::kConnecting;
  s->state = SimSocket::State::kClosed;
  std::vector<SimWaiter> waiters;
  waiters.swap(s->waiters);
  if (was_connecting && s->connect_backend) waiters.push_back({s->connect_backend, s->connect_op});
  cancel_all(std::move(waiters));
}

void SimBackend::close_listener(SimListener* l) {
  for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
    if (it->second.get() != l) continue;
    listeners_.erase(it);
    break;
  }
  // Unaccepted connections are reset, as when a listening socket closes.
  for (auto& s : l->queue) {
    send_rst(s.get());
    s->state = SimSocket::State::kClosed;
  }
  l->queue.clear();
  std::vector<SimWaiter> waiters;
  waiters.swap(l->waiters);
  cancel_all(std::move(waiters));
}

}  // namespace mica::sim
