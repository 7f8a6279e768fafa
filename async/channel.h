// Channel<T>: a bounded first-in first-out queue between tasks of one executor.
//
// send() waits while the channel holds capacity items; recv() waits while it is empty.
// Values are handed straight to a waiting receiver. close() wakes everyone: later sends
// fail with kClosed, receives drain what is buffered and then fail with kClosed. Waits take
// a deadline and honour cancellation like every wait (wait_list.h). Not thread-safe.
#pragma once

#include <deque>
#include <optional>

#include "async/wait_list.h"

namespace mica {

template <class T>
class Channel {
 public:
  explicit Channel(size_t capacity) : capacity_(capacity) { MICA_ASSERT(capacity > 0); }
  ~Channel() = default;

  size_t size() const { return items_.size(); }
  size_t capacity() const { return capacity_; }
  bool closed() const { return closed_; }

  // Non-blocking variants: false / nullopt when they would wait.
  bool try_send(T& value) {
    if (closed_) return false;
    if (Waiter* r = receivers_.front()) {
      *static_cast<std::optional<T>*>(r->slot) = std::move(value);
      receivers_.wake(r);
      return true;
    }
    if (items_.size() >= capacity_) return false;
    items_.push_back(std::move(value));
    return true;
  }
  std::optional<T> try_recv() {
    if (items_.empty()) return std::nullopt;
    std::optional<T> value(std::move(items_.front()));
    items_.pop_front();
    admit_sender();
    return value;
  }

  void close() {
    closed_ = true;
    senders_.wake_all(Status(StatusCode::kClosed, "channel closed"));
    receivers_.wake_all(Status(StatusCode::kClosed, "channel closed"));
  }

  struct SendAwaiter {
    Channel* channel;
    std::optional<T> value;
    TimePoint deadline;
    Waiter waiter;
    bool await_ready() {
      if (channel->closed_) {
        waiter.status = Status(StatusCode::kClosed, "channel closed");
        return true;
      }
      return channel->senders_.empty() && channel->try_send(*value);
    }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
      waiter.slot = &value;
      return channel->senders_.suspend(&waiter, h, deadline);
    }
    Status await_resume() { return std::move(waiter.status); }
  };
  // The value is moved into the awaiter; on failure it is dropped.
  SendAwaiter send(T value, TimePoint deadline = kNoDeadline) {
    return SendAwaiter{this, std::move(value), deadline, {}};
  }

  struct RecvAwaiter {
    Channel* channel;
    TimePoint deadline;
    std::optional<T> value;
    Waiter waiter;
    bool await_ready() {
      value = channel->try_recv();
      if (value) return true;
      if (channel->closed_) {
        waiter.status = Status(StatusCode::kClosed, "channel closed");
        return true;
      }
      return false;
    }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
      waiter.slot = &value;
      return channel->receivers_.suspend(&waiter, h, deadline);
    }
    Result<T> await_resume() {
      if (value) return std::move(*value);
      return std::move(waiter.status);
    }
  };
  RecvAwaiter recv(TimePoint deadline = kNoDeadline) { return RecvAwaiter{this, deadline, {}, {}}; }

 private:
  // A slot freed up: move the oldest waiting sender's value into the buffer.
  void admit_sender() {
    if (Waiter* s = senders_.front(); s && items_.size() < capacity_) {
      auto* slot = static_cast<std::optional<T>*>(s->slot);
      items_.push_back(std::move(**slot));
      slot->reset();
      senders_.wake(s);
    }
  }

  size_t capacity_;
  bool closed_ = false;
  std::deque<T> items_;
  WaitList senders_;
  WaitList receivers_;
};

}  // namespace mica
