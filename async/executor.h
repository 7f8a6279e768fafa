// Executor: one thread's scheduler — a ready queue, a timer heap, an inbox for other
// threads, and one Backend (one io_uring, or one simulated host).
//
// Tasks are resumed only from the loop: I/O completions, timers and wake-ups post handles
// to the ready queue, and the loop runs them after reaping, so no completion resumes a
// task re-entrantly. A loop turn: run the ready queue (bounded by ready_budget so I/O is
// reaped regularly), drain the inbox, wait in the backend (not past the next timer; not at
// all if work is ready), fire due timers.
//
// Thread rule: everything except post_remote() and wake-ups runs on the owner thread.
// Executor::current() is the executor whose loop runs on the calling thread.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "async/backend.h"
#include "async/task.h"
#include "async/time.h"

namespace mica {

struct ExecutorOptions {
  // Handles resumed per loop turn before the backend is polled again.
  uint32_t ready_budget = 4096;
  // Hand each task's new I/O to the kernel as soon as the task suspends, instead of once
  // per loop turn: a device's queue refills while the loop still runs other tasks (random
  // 4 KiB reads at queue depth 32: 0.93 of fio batched per turn, 1.02 eager; see
  // docs/async.md). Costs one submit syscall per resumption that queued I/O, none otherwise.
  bool submit_eagerly = true;
  // Stack depth after which resumptions are bounced through the ready queue.
  uint32_t stack_guard_bytes = 256 << 10;
};

// A timer entry, owned by the waiter (it lives in a coroutine frame). fire() runs on the
// executor thread from the loop.
struct Timer {
  TimePoint when = kNoDeadline;
  void (*fire)(Timer* timer) = nullptr;
  void* context = nullptr;
  uint32_t heap_index = kNotQueued;
  static constexpr uint32_t kNotQueued = UINT32_MAX;
  bool queued() const { return heap_index != kNotQueued; }
};

class Executor {
 public:
  explicit Executor(std::unique_ptr<Backend> backend, ExecutorOptions options = {});
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  ~Executor();

  // An executor on a fresh io_uring owned by the calling thread; big_sqes: 128-byte SQEs
  // (UringOptions::big_sqes, for kUringCmd).
  static std::unique_ptr<Executor> create_uring(bool big_sqes = false);

  static Executor* current();
  Backend& backend() { return *backend_; }
  TimePoint now() { return backend_->now(); }

  // Queues h to be resumed by this executor's loop. Owner thread only.
  void post(std::coroutine_handle<> h);
  // Queues h from any thread and wakes the loop.
  void post_remote(std::coroutine_handle<> h);

  void add_timer(Timer* timer);
  void remove_timer(Timer* timer);

  // Runs task on this thread until it completes and returns its value. The loop keeps
  // running other work meanwhile. Owner thread only; not re-entrant.
  template <class T>
  T block_on(Task<T> task);

  // Awaitable: resumes the awaiting task on this executor's thread.
  struct ScheduleAwaiter {
    Executor* target;
    bool await_ready() const noexcept { return Executor::current() == target; }
    void await_suspend(std::coroutine_handle<> h) const { target->post_remote(h); }
    void await_resume() const noexcept {}
  };
  ScheduleAwaiter schedule() { return ScheduleAwaiter{this}; }

  // Loop pieces, public for the simulator which drives many executors on one thread.
  // Runs up to budget ready handles with this executor as current; returns how many ran.
  size_t run_ready(size_t budget);
  bool has_ready() const { return ready_head_ != ready_tail_; }
  // Permutes the ready queue (Fisher-Yates); below(n) returns a value in [0, n). The
  // simulator's seeded scheduling perturbation; a real loop never calls it.
  template <class Below>
  void shuffle_ready(Below&& below) {
    size_t mask = ready_.size() - 1;
    for (size_t n = ready_tail_ - ready_head_; n > 1; --n) {
      size_t j = static_cast<size_t>(below(n));
      std::swap(ready_[(ready_head_ + n - 1) & mask], ready_[(ready_head_ + j) & mask]);
    }
  }
  void drain_inbox();
  // Fires timers due at or before now; returns how many fired.
  size_t fire_due_timers(TimePoint now);
  TimePoint next_timer() const { return heap_.empty() ? kNoDeadline : heap_[0]->when; }
  size_t pending_timers() const { return heap_.size(); }
  // One full turn of the real loop (drain, wait, timers, run).
  void turn();
  // Makes a blocked turn() return (from any thread).
  void interrupt() { backend_->wake(); }

 private:
  void push_ready(std::coroutine_handle<> h);
  void heap_up(uint32_t i);
  void heap_down(uint32_t i);
  void heap_swap(uint32_t a, uint32_t b);

  std::unique_ptr<Backend> backend_;
  ExecutorOptions options_;
  // Ready queue: a power-of-two ring buffer of handles.
  std::vector<std::coroutine_handle<>> ready_;
  size_t ready_head_ = 0;
  size_t ready_tail_ = 0;
  std::vector<Timer*> heap_;
  // Inbox from other threads.
  std::mutex inbox_mutex_;
  std::vector<std::coroutine_handle<>> inbox_;
  std::vector<std::coroutine_handle<>> inbox_spare_;
  std::atomic<bool> inbox_nonempty_{false};
  std::atomic<bool> sleeping_{false};
};

// Deadline `d` from now on the current executor's clock.
inline TimePoint deadline_after(Duration d) {
  return Executor::current()->now() + d;
}

namespace detail {
// Storage for block_on's result; void becomes an empty struct.
template <class T>
struct BlockOnSlot {
  alignas(T) unsigned char storage[sizeof(T)];
  bool filled = false;
  T take() {
    T* p = std::launder(reinterpret_cast<T*>(storage));
    T value = std::move(*p);
    p->~T();
    return value;
  }
};
template <>
struct BlockOnSlot<void> {
  bool filled = false;
  void take() {}
};

template <class T>
Task<void> block_on_body(Task<T> task, BlockOnSlot<T>* slot) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
  } else {
    T value = co_await std::move(task);
    new (slot->storage) T(std::move(value));
  }
  slot->filled = true;
}
}  // namespace detail

template <class T>
T Executor::block_on(Task<T> task) {
  detail::BlockOnSlot<T> slot;
  Task<void> root = detail::block_on_body<T>(std::move(task), &slot);
  post(root.handle());
  while (!slot.filled) turn();
  return slot.take();
}

}  // namespace mica
