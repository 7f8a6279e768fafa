// Running a piece of work on the executor that owns an object (an open file's handle is
// bound to the executor whose client::Client opened it) and coming back: the work is a lazy
// task made on the caller's executor, started on the target's after `co_await
// target->schedule()`, and its value handed back on the caller's. Same executor: nothing
// moves. Only plain values cross: the work runs under a cancel source made on the target's
// thread (a token of the caller's thread must not be registered on from another one, see
// async/cancel.h), so every hopped call carries its deadline as a value. Any executor;
// suspends. Named coroutines only (g++ 12).
#pragma once

#include <utility>

#include "async/cancel.h"
#include "async/executor.h"
#include "async/task.h"

namespace mica::fuse::detail {

// Awaits work under a cancel source of this frame (made on this thread).
template <class T>
Task<T> own_token(Task<T> work) {
  CancelSource own;
  work.handle().promise().set_token(own.token());
  T value = co_await std::move(work);
  co_return value;
}

template <class T>
Task<T> hop(Executor* target, Task<T> work) {
  Executor* home = Executor::current();
  if (target == home || target == nullptr) {
    T value = co_await std::move(work);
    co_return value;
  }
  co_await target->schedule();
  auto running = own_token(std::move(work));
  T value = co_await std::move(running);
  co_await home->schedule();
  co_return value;
}

}  // namespace mica::fuse::detail
