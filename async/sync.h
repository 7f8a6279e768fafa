// Event, Mutex, Semaphore and Latch for tasks of one executor.
//
// Each wait takes an optional deadline and honours the waiting task's CancelToken; it
// yields ok, kTimedOut or the token's reason. Waiters are served first-come first-served
// and ownership is handed over directly (a released Mutex or Semaphore unit goes to the
// oldest waiter, so nobody starves). Not thread-safe: use each object on one executor
// (see wait_list.h). A primitive must outlive its waiters; destroying one with waiters
// asserts.
#pragma once

#include <utility>

#include "async/wait_list.h"

namespace mica {

// A level-triggered flag: wait() returns at once while set.
class Event {
 public:
  void set();
  void reset() { set_ = false; }
  bool is_set() const { return set_; }

  struct Awaiter {
    Event* event;
    TimePoint deadline;
    bool cancellable;
    Waiter waiter;
    bool await_ready() const noexcept { return event->set_; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
      CancelToken token = cancellable ? detail::token_of(h) : CancelToken();
      return event->waiters_.suspend_with_token(&waiter, h, deadline, token);
    }
    Status await_resume() { return std::move(waiter.status); }
  };
  Awaiter wait(TimePoint deadline = kNoDeadline) { return Awaiter{this, deadline, true, {}}; }
  // For combinators that must see their children finish even when cancelled themselves.
  Awaiter wait_uncancellable() { return Awaiter{this, kNoDeadline, false, {}}; }

 private:
  bool set_ = false;
  WaitList waiters_;
};

class Mutex {
 public:
  Mutex() = default;
  ~Mutex() { MICA_ASSERT_MSG(!locked_, "mutex destroyed while locked"); }

  bool try_lock();
  void unlock();
  bool is_locked() const { return locked_; }

  struct Awaiter {
    Mutex* mutex;
    TimePoint deadline;
    Waiter waiter;
    bool await_ready() noexcept { return mutex->try_lock(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
      return mutex->waiters_.suspend(&waiter, h, deadline);
    }
    Status await_resume() { return std::move(waiter.status); }
  };
  // Ok means the caller owns the mutex and must unlock() it (or use MutexGuard).
  Awaiter lock(TimePoint deadline = kNoDeadline) { return Awaiter{this, deadline, {}}; }

 private:
  bool locked_ = false;
  WaitList waiters_;
};

// Unlocks on scope exit. Adopt a lock obtained with `co_await mutex.lock()`.
class MutexGuard {
 public:
  explicit MutexGuard(Mutex& mutex) : mutex_(&mutex) {}
  MutexGuard(const MutexGuard&) = delete;
  MutexGuard& operator=(const MutexGuard&) = delete;
  ~MutexGuard() { mutex_->unlock(); }

 private:
  Mutex* mutex_;
};

class Semaphore {
 public:
  explicit Semaphore(uint64_t units);
  ~Semaphore();
  uint64_t available() const { return available_; }
  bool try_acquire(uint64_t units = 1);
  void release(uint64_t units = 1);

  struct Awaiter {
    Semaphore* semaphore;
    uint64_t units;
    TimePoint deadline;
    Waiter waiter;
    bool await_ready() noexcept { return semaphore->try_acquire(units); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
      waiter.amount = units;
      return semaphore->waiters_.suspend(&waiter, h, deadline);
    }
    Status await_resume() { return std::move(waiter.status); }
  };
  Awaiter acquire(uint64_t units = 1, TimePoint deadline = kNoDeadline) {
    return Awaiter{this, units, deadline, {}};
  }

 private:
  static void grant(void* self);
  uint64_t available_;
  WaitList waiters_;
};

// Releases units of a semaphore on scope exit. Adopt units obtained with
// `co_await semaphore.acquire(units)`. Movable, so a guard can be returned with other state.
class SemaphoreGuard {
 public:
  SemaphoreGuard(Semaphore& semaphore, uint64_t units = 1)
      : semaphore_(&semaphore), units_(units) {}
  SemaphoreGuard(SemaphoreGuard&& other) noexcept
      : semaphore_(std::exchange(other.semaphore_, nullptr)), units_(other.units_) {}
  SemaphoreGuard& operator=(SemaphoreGuard&&) = delete;
  SemaphoreGuard(const SemaphoreGuard&) = delete;
  ~SemaphoreGuard() {
    if (semaphore_ != nullptr) semaphore_->release(units_);
  }

 private:
  Semaphore* semaphore_;
  uint64_t units_;
};

// Counts down to zero once; wait() returns when it has.
class Latch {
 public:
  explicit Latch(uint64_t count) : count_(count) {}
  void count_down(uint64_t n = 1);
  uint64_t count() const { return count_; }

  struct Awaiter {
    Latch* latch;
    TimePoint deadline;
    Waiter waiter;
    bool await_ready() const noexcept { return latch->count_ == 0; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
      return latch->waiters_.suspend(&waiter, h, deadline);
    }
    Status await_resume() { return std::move(waiter.status); }
  };
  Awaiter wait(TimePoint deadline = kNoDeadline) { return Awaiter{this, deadline, {}}; }

 private:
  uint64_t count_;
  WaitList waiters_;
};

}  // namespace mica
