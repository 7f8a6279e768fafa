// Runtime: N executor threads, each with its own io_uring, started together.
//
// A task starts on one executor (block_on uses executor 0) and may move to another with
// `co_await runtime.executor(i).schedule()`; work crosses threads only that way or by
// post_remote. block_on() is called from a thread that is not an executor thread and
// blocks it until the task finishes. The destructor stops and joins the threads; tasks
// must have finished by then.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "async/executor.h"

namespace mica {

struct RuntimeOptions {
  uint32_t threads = 2;
  // Every executor's ring gets 128-byte SQEs (UringOptions::big_sqes): the FUSE daemon's
  // runtime, whose rings carry FUSE-over-io_uring commands.
  bool big_sqes = false;
};

class Runtime {
 public:
  explicit Runtime(RuntimeOptions options = {});
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  ~Runtime();

  size_t size() const { return executors_.size(); }
  Executor& executor(size_t index) { return *executors_.at(index); }

  // Runs task on executor `index` and waits for its value on this (non-executor) thread.
  template <class T>
  T block_on(Task<T> task, size_t index = 0);

 private:
  struct Completion {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    void signal() {
      std::lock_guard lock(mutex);
      done = true;
      cv.notify_one();  // under the lock: the waiter may destroy us right after it wakes
    }
    void wait() {
      std::unique_lock lock(mutex);
      cv.wait(lock, [this] { return done; });
    }
  };
  template <class T>
  static Task<void> run_and_signal(Task<T> task, detail::BlockOnSlot<T>* slot,
                                   Completion* completion);
  // A frame that owns the root task and frees itself when done.
  static void start_detached(Executor& executor, Task<void> root);

  void thread_main(size_t index);

  std::vector<std::thread> threads_;
  std::vector<Executor*> executors_;
  std::mutex start_mutex_;
  std::condition_variable start_cv_;
  size_t started_ = 0;
  bool big_sqes_ = false;
  std::atomic<bool> stopping_{false};
};

template <class T>
Task<void> Runtime::run_and_signal(Task<T> task, detail::BlockOnSlot<T>* slot,
                                   Completion* completion) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
  } else {
    T value = co_await std::move(task);
    new (slot->storage) T(std::move(value));
  }
  completion->signal();
}

template <class T>
T Runtime::block_on(Task<T> task, size_t index) {
  MICA_ASSERT_MSG(Executor::current() == nullptr, "Runtime::block_on from an executor thread");
  detail::BlockOnSlot<T> slot;
  Completion completion;
  start_detached(executor(index), run_and_signal<T>(std::move(task), &slot, &completion));
  completion.wait();
  return slot.take();
}

}  // namespace mica
