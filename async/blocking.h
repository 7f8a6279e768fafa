// run_blocking: run a blocking function (an LMDB commit, a getaddrinfo, a large fsync
// batch) on a small pool of threads and resume the awaiting task on its own executor.
//
// The pool is process-wide, started on first use with blocking_threads threads. Its queue
// holds at most blocking_queue_max jobs; when it is full the function runs on the calling
// thread instead (caller-runs back-pressure: slower, never lost). A job cannot be
// cancelled once queued: the awaiting task always waits for it, because the function may
// reference the task's frame. The function must not touch executor-owned objects.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include "async/executor.h"

namespace mica {

struct BlockingPoolOptions {
  uint32_t threads = 4;
  uint32_t queue_max = 4096;
};

class BlockingPool {
 public:
  struct Job {
    void (*run)(Job* job) = nullptr;
  };

  static BlockingPool& shared();
  explicit BlockingPool(BlockingPoolOptions options);
  ~BlockingPool();

  // Queues job; false when the queue is full (the caller then runs it itself).
  bool try_submit(Job* job);

 private:
  void worker();
  BlockingPoolOptions options_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job*> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

template <class F>
class BlockingAwaiter : BlockingPool::Job {
 public:
  using R = std::invoke_result_t<F&>;
  explicit BlockingAwaiter(F fn) : fn_(std::move(fn)) { run = &BlockingAwaiter::execute; }

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    waiter_ = h;
    executor_ = Executor::current();
    if (BlockingPool::shared().try_submit(this)) return true;
    invoke();  // caller runs
    return false;
  }
  R await_resume() {
    if constexpr (!std::is_void_v<R>) return std::move(*result_);
  }

 private:
  void invoke() {
    if constexpr (std::is_void_v<R>)
      fn_();
    else
      result_.emplace(fn_());
  }
  static void execute(BlockingPool::Job* job) {
    auto* self = static_cast<BlockingAwaiter*>(job);
    self->invoke();
    self->executor_->post_remote(self->waiter_);
  }
  F fn_;
  std::optional<std::conditional_t<std::is_void_v<R>, int, R>> result_;
  std::coroutine_handle<> waiter_;
  Executor* executor_ = nullptr;
};

// `co_await run_blocking(fn)` yields fn()'s result. fn is moved into the awaiter.
template <class F>
BlockingAwaiter<F> run_blocking(F fn) {
  return BlockingAwaiter<F>(std::move(fn));
}

}  // namespace mica
