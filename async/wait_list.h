// WaitList: the one way a task waits for something in the runtime's primitives.
//
// A Waiter lives in the awaiting frame. While linked it may be woken by its primitive
// (status ok), by its deadline (kTimedOut) or by its task's CancelToken (the token's
// reason); whichever comes first unlinks it, disarms the others and posts the task to its
// executor, so the task is resumed from the loop, never from inside notify(). Primitives
// built on it (Event, Mutex, Semaphore, Latch, Channel, Listener) belong to one executor:
// they are not thread-safe, and waiting on one from another executor's thread asserts.
#pragma once

#include <coroutine>

#include "async/executor.h"

namespace mica {

class WaitList;

struct Waiter {
  std::coroutine_handle<> handle;
  Executor* executor = nullptr;
  WaitList* list = nullptr;
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
  Timer timer;
  CancelCallback cancel;
  Status status;
  uint64_t amount = 0;   // what the waiter asks for (semaphore units); primitive-defined
  void* slot = nullptr;  // where a channel hands a value over; primitive-defined
  CancelState* token_state = nullptr;
  bool deadline_fired = false;
  bool linked() const { return list != nullptr; }
};

class WaitList {
 public:
  WaitList() = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;
  ~WaitList() { MICA_ASSERT_MSG(head_ == nullptr, "primitive destroyed with waiters"); }

  bool empty() const { return head_ == nullptr; }
  Waiter* front() const { return head_; }

  // Links w (from an await_suspend) with its deadline and token. Returns false, linking
  // nothing, when the token is already cancelled; w->status then says why.
  template <class P>
  bool suspend(Waiter* w, std::coroutine_handle<P> h, TimePoint deadline) {
    return suspend_with_token(w, h, deadline, detail::token_of(h));
  }
  bool suspend_with_token(Waiter* w, std::coroutine_handle<> h, TimePoint deadline,
                          CancelToken token);

  // Unlinks w and resumes it (via its executor) with status.
  void wake(Waiter* w, Status status = Status());
  void wake_all(const Status& status = Status());

  // Called when a waiter leaves early (timeout or cancel); primitives that hand out
  // resources use it to re-check who can proceed now.
  void (*on_leave)(void* context) = nullptr;
  void* on_leave_context = nullptr;

 private:
  void unlink(Waiter* w);
  void push_back(Waiter* w);
  static void on_timer(Timer* t);
  static void on_cancel(void* context);
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

// Awaitable sleep on the current executor. Yields ok, or the token's status if cancelled.
class SleepAwaiter {
 public:
  explicit SleepAwaiter(TimePoint until) : until_(until) {}
  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    executor_ = Executor::current();
    if (until_ <= executor_->now()) return false;
    // A sleep is a wait whose deadline firing is the success case.
    return list_.suspend(&waiter_, h, until_);
  }
  Status await_resume() {
    if (waiter_.deadline_fired) return Status();
    return std::move(waiter_.status);
  }

 private:
  TimePoint until_;
  Executor* executor_ = nullptr;
  WaitList list_;
  Waiter waiter_;
};

inline SleepAwaiter sleep_until(TimePoint until) {
  return SleepAwaiter(until);
}
inline SleepAwaiter sleep_for(Duration d) {
  return SleepAwaiter(Executor::current()->now() + d);
}

}  // namespace mica
