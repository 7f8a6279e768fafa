// Running a piece of work on the executor that owns an object (a metadata shard, a storage
// client, an open file's handle) and coming back: the work is a lazy task made on the
// caller's executor, started on the target's after `co_await target->schedule()`, and its
// value handed back on the home executor. When both are the same executor (or target is
// null) nothing moves. Named coroutines only (g++ 12: no capturing lambda coroutines); the
// task's references must outlive it (the awaiting frame's). Any executor; suspends.
//
// Only plain values cross: the work runs under a CancelToken made on the target's thread
// (own_token), never the caller's, whose CancelState belongs to the home executor and must
// not be registered on from another thread (async/cancel.h asserts it). So a cancel of the
// caller does not reach the work: every hopped call carries its deadline as a value.
#pragma once

#include <utility>

#include "async/cancel.h"
#include "async/executor.h"
#include "async/task.h"

namespace mica {

// Awaits work on the current executor under a cancel source of this frame (made on this
// thread), instead of the awaiting task's token, which may belong to another executor.
template <class T>
Task<T> own_token(Task<T> work) {
  CancelSource own;
  work.handle().promise().set_token(own.token());
  T value = co_await std::move(work);
  co_return value;
}

// work on target, then back on home (the caller's executor).
template <class T>
Task<T> hop(Executor* home, Executor* target, Task<T> work) {
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

// work on target, then back on the executor that called hop.
template <class T>
Task<T> hop(Executor* target, Task<T> work) {
  auto hopping = hop(Executor::current(), target, std::move(work));
  T value = co_await std::move(hopping);
  co_return value;
}

// A synchronous call f() on target's thread, its value handed back on home.
template <class F>
Task<decltype(std::declval<F&>()())> hop_call(Executor* home, Executor* target, F f) {
  if (target == home || target == nullptr) co_return f();
  co_await target->schedule();
  auto value = f();
  co_await home->schedule();
  co_return value;
}

}  // namespace mica
