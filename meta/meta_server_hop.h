// Moving a piece of work to the executor that owns a shard and back (meta/meta_server.h):
// the work is a lazy task made on the server's executor, started on the target's after
// `co_await target->schedule()`, and its result handed back on the home executor. When
// both are the same executor nothing moves. Named coroutines only (g++ 12: no capturing
// lambda coroutines); the task's references must outlive it (the awaiting frame's).
// Internal to meta/; any executor; suspends.
#pragma once

#include <utility>

#include "async/executor.h"
#include "async/task.h"

namespace mica::meta::detail {

template <class T>
Task<T> hop(Executor* home, Executor* target, Task<T> work) {
  if (target == home || target == nullptr) {
    T value = co_await std::move(work);
    co_return value;
  }
  co_await target->schedule();
  T value = co_await std::move(work);
  co_await home->schedule();
  co_return value;
}

// A synchronous call f() on target's thread (Shard::status, Shard::scan).
template <class F>
Task<decltype(std::declval<F&>()())> hop_call(Executor* home, Executor* target, F f) {
  if (target == home || target == nullptr) co_return f();
  co_await target->schedule();
  auto value = f();
  co_await home->schedule();
  co_return value;
}

}  // namespace mica::meta::detail
