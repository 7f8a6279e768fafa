// Task<T>: the lazy, move-only coroutine type of every Mica function that may suspend.
//
// A Task does nothing until it is awaited (or handed to an executor / TaskScope); awaiting
// it transfers control to it symmetrically and its completion transfers back, so chains of
// synchronously completing awaits use constant stack. Where the compiler fails to make
// those transfers tail calls (g++ 12 without sibling-call optimisation, or under ASan),
// a stack guard bounces the next resumption through the executor's ready queue once the
// stack is deeper than kStackGuardBytes. The Task owns its frame; destroying a Task that is
// suspended in the middle is a bug and asserts. A child inherits the CancelToken of the
// task that awaits it. Exceptions do not cross a Task: an escaping one terminates.
// Thread rule: a Task runs on the executor that resumes it; move it freely before start.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <new>
#include <type_traits>
#include <utility>

#include "async/assert.h"
#include "async/cancel.h"
#include "async/frame_alloc.h"

namespace mica {

template <class T = void>
class Task;

namespace detail {

// Returns h, or — when the stack is deeper than the executor's guard allows — posts h to
// the current executor and returns noop so the stack unwinds to the loop. Out of line on
// purpose: a thread_local read inlined into a coroutine may be cached across a hop to
// another thread by the optimiser.
std::coroutine_handle<> guarded(std::coroutine_handle<> h) noexcept;

class PromiseBase {
 public:
  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* frame, std::size_t size) noexcept {
    frame_deallocate(frame, size);
  }

  struct InitialAwaiter {
    PromiseBase* promise;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<>) const noexcept {}
    void await_resume() const noexcept { promise->started_ = true; }
  };
  InitialAwaiter initial_suspend() noexcept { return {this}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) const noexcept {
      return guarded(h.promise().continuation_);
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }

  CancelToken token() const { return token_; }
  void set_token(CancelToken token) { token_ = token; }
  void set_continuation(std::coroutine_handle<> h) { continuation_ = h; }
  bool started() const { return started_; }

 private:
  std::coroutine_handle<> continuation_ = std::noop_coroutine();
  CancelToken token_;
  bool started_ = false;
};

template <class T>
class Promise : public PromiseBase {
 public:
  Task<T> get_return_object() noexcept;
  template <class U>
  void return_value(U&& value) {
    new (&storage_) T(std::forward<U>(value));
    has_value_ = true;
  }
  T take() {
    MICA_ASSERT(has_value_);
    return std::move(*std::launder(reinterpret_cast<T*>(&storage_)));
  }
  ~Promise() {
    if (has_value_) std::launder(reinterpret_cast<T*>(&storage_))->~T();
  }

 private:
  alignas(T) unsigned char storage_[sizeof(T)];
  bool has_value_ = false;
};

template <>
class Promise<void> : public PromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {}
};

// Reads the awaiting task's token if its promise has one (foreign promises have none).
template <class P>
CancelToken token_of(std::coroutine_handle<P> h) {
  if constexpr (std::is_base_of_v<PromiseBase, P>)
    return h.promise().token();
  else
    return {};
}

}  // namespace detail

template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::Promise<T>;
  using value_type = T;
  using Handle = std::coroutine_handle<promise_type>;

  Task() = default;
  explicit Task(Handle h) : handle_(h) {}
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { destroy(); }

  bool valid() const { return static_cast<bool>(handle_); }
  bool done() const { return handle_ && handle_.done(); }

  struct Awaiter {
    Handle child;
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
      child.promise().set_continuation(parent);
      if (!child.promise().token()) child.promise().set_token(detail::token_of(parent));
      return detail::guarded(child);
    }
    T await_resume() { return child.promise().take(); }
  };
  Awaiter operator co_await() && noexcept {
    MICA_ASSERT_MSG(handle_ && !handle_.promise().started(), "task awaited twice");
    return Awaiter{handle_};
  }

  // For executors and combinators: the frame stays owned by this Task.
  Handle handle() const { return handle_; }

 private:
  void destroy() {
    if (!handle_) return;
    MICA_ASSERT_MSG(!handle_.promise().started() || handle_.done(),
                    "task destroyed while suspended");
    handle_.destroy();
    handle_ = {};
  }
  Handle handle_;
};

namespace detail {
template <class T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}
inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}
}  // namespace detail

// `co_await current_token()` yields the running task's CancelToken without suspending.
struct current_token {
  CancelToken token;
  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    token = detail::token_of(h);
    return false;
  }
  CancelToken await_resume() const noexcept { return token; }
};

}  // namespace mica
