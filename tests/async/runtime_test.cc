// Runtime: executor threads, hops, cross-thread posting under load, the blocking pool.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <thread>

#include "async/blocking.h"
#include "async/runtime.h"
#include "async/scope.h"

namespace mica {
namespace {

// gettid(), not std::this_thread::get_id(): pthread_self() is declared const, so clang
// keeps its first value across the suspension points of one coroutine.
Task<bool> hop_between(Runtime* runtime) {
  pid_t first = gettid();
  co_await runtime->executor(1).schedule();
  pid_t second = gettid();
  EXPECT_EQ(Executor::current(), &runtime->executor(1));
  co_await runtime->executor(0).schedule();
  EXPECT_EQ(gettid(), first);
  EXPECT_EQ(Executor::current(), &runtime->executor(0));
  co_return first != second;
}

TEST(Runtime, TasksHopBetweenExecutorThreads) {
  Runtime runtime(RuntimeOptions{.threads = 2});
  EXPECT_TRUE(runtime.block_on(hop_between(&runtime)));
}

// Many foreign threads post handles to one executor at once; every one must run exactly
// once and the executor must keep up (no lost wake-up leaves it sleeping).
struct Counter {
  std::atomic<int64_t> value{0};
};

Task<void> count_once(Counter* counter) {
  counter->value.fetch_add(1);
  co_return;
}

detail::DetachedTask counted(Counter* counter) {
  co_await count_once(counter);
}

TEST(Runtime, CrossThreadPostingUnderLoadLosesNothing) {
  int64_t frames_before = live_frames();
  Counter counter;
  constexpr int kThreads = 4, kPerThread = 50'000;
  {
    Runtime runtime(RuntimeOptions{.threads = 2});
    std::vector<std::thread> posters;
    for (int t = 0; t < kThreads; ++t) {
      posters.emplace_back([&runtime, &counter, t] {
        for (int i = 0; i < kPerThread; ++i) {
          auto task = counted(&counter);
          runtime.executor((t + i) % 2).post_remote(task.handle);
        }
      });
    }
    for (auto& p : posters) p.join();
    while (counter.value.load() < int64_t{kThreads} * kPerThread) std::this_thread::yield();
  }
  EXPECT_EQ(counter.value.load(), int64_t{kThreads} * kPerThread);
  EXPECT_EQ(live_frames(), frames_before);
}

Task<int> blocking_sum(pid_t loop_thread) {
  auto work = run_blocking([loop_thread] {
    EXPECT_NE(gettid(), loop_thread);
    int sum = 0;
    for (int i = 1; i <= 100; ++i) sum += i;
    return sum;
  });
  int sum = co_await std::move(work);
  EXPECT_EQ(gettid(), loop_thread);  // resumed on its own executor
  co_return sum;
}

Task<int> blocking_from_loop() {
  auto t = blocking_sum(gettid());
  co_return co_await std::move(t);
}

TEST(Runtime, BlockingWorkRunsOffLoopAndResumesOnTheExecutor) {
  Runtime runtime;
  EXPECT_EQ(runtime.block_on(blocking_from_loop()), 5050);
}

Task<void> bump_off_loop(std::atomic<int>* done) {
  auto work = run_blocking([done] { done->fetch_add(1); });
  co_await std::move(work);
}

Task<void> many_blocking(int n, std::atomic<int>* done) {
  TaskScope scope;
  for (int i = 0; i < n; ++i) scope.spawn(bump_off_loop(done));
  co_await scope.join();
}

TEST(Runtime, BlockingPoolAbsorbsBurstsBeyondItsQueue) {
  Runtime runtime;
  std::atomic<int> done{0};
  runtime.block_on(many_blocking(10'000, &done));
  EXPECT_EQ(done.load(), 10'000);
}

}  // namespace
}  // namespace mica
