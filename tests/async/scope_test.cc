// TaskScope, when_all, when_any, with_deadline and cancellation races.
#include <gtest/gtest.h>

#include <chrono>

#include "async/scope.h"
#include "async/socket.h"

namespace mica {
namespace {

using namespace std::chrono_literals;

class ScopeTest : public ::testing::Test {
 protected:
  void SetUp() override { frames_before_ = live_frames(); }
  void TearDown() override { EXPECT_EQ(live_frames(), frames_before_) << "frame leak"; }
  std::unique_ptr<Executor> executor_ = Executor::create_uring();
  int64_t frames_before_ = 0;
};

Task<void> bump(int64_t* counter) {
  ++*counter;
  co_return;
}

Task<void> spawn_million(int64_t* counter, int64_t* peak_frames) {
  TaskScope scope;
  for (int batch = 0; batch < 100; ++batch) {
    for (int i = 0; i < 10'000; ++i) scope.spawn(bump(counter));
    *peak_frames = std::max(*peak_frames, live_frames());
    co_await scope.join();
  }
}

TEST_F(ScopeTest, MillionSpawnedTasksRunAndLeaveNoFrames) {
  int64_t counter = 0, peak = 0;
  executor_->block_on(spawn_million(&counter, &peak));
  EXPECT_EQ(counter, 1'000'000);
  EXPECT_GT(peak, frames_before_ + 10'000);  // they really were alive at once
}

Task<int> value_after(int value, Duration d) {
  Status s = co_await sleep_for(d);
  if (!s.ok()) co_return -1;
  co_return value;
}

Task<void> when_all_collects() {
  std::vector<Task<int>> tasks;
  tasks.push_back(value_after(1, 3ms));
  tasks.push_back(value_after(2, 1ms));
  tasks.push_back(value_after(3, 2ms));
  TimePoint start = Executor::current()->now();
  std::vector<int> values = co_await when_all(std::move(tasks));
  EXPECT_EQ(values, (std::vector<int>{1, 2, 3}));
  // Concurrent, not sequential: about 3 ms, not 6.
  EXPECT_LT(Executor::current()->now() - start, 50ms);
}

TEST_F(ScopeTest, WhenAllReturnsEveryValueInTaskOrder) {
  executor_->block_on(when_all_collects());
}

Task<int> sleeper_observing_cancel(Duration d, int* cancelled_count) {
  Status s = co_await sleep_for(d);
  if (s.code() == StatusCode::kCancelled) ++*cancelled_count;
  co_return 7;
}

Task<void> when_any_cancels_losers(int* cancelled_count) {
  std::vector<Task<int>> tasks;
  tasks.push_back(sleeper_observing_cancel(10s, cancelled_count));
  tasks.push_back(value_after(5, 1ms));
  tasks.push_back(sleeper_observing_cancel(10s, cancelled_count));
  TimePoint start = Executor::current()->now();
  WhenAnyResult<int> first = co_await when_any(std::move(tasks));
  EXPECT_EQ(first.index, 1u);
  EXPECT_EQ(first.value, 5);
  EXPECT_LT(Executor::current()->now() - start, 1s);
}

TEST_F(ScopeTest, WhenAnyReturnsFirstAndCancelsAndAwaitsTheLosers) {
  int cancelled = 0;
  executor_->block_on(when_any_cancels_losers(&cancelled));
  EXPECT_EQ(cancelled, 2);  // both losers ran to their end before when_any returned
}

Task<Result<int>> slow_result(Duration d) {
  Status s = co_await sleep_for(d);
  if (!s.ok()) co_return s;
  co_return 1;
}

Task<void> deadline_cases() {
  auto slow = slow_result(10s);
  Result<int> timed_out = co_await with_deadline(std::move(slow), deadline_after(5ms));
  EXPECT_EQ(timed_out.status().code(), StatusCode::kTimedOut);
  auto fast = slow_result(1ms);
  Result<int> in_time = co_await with_deadline(std::move(fast), deadline_after(5s));
  EXPECT_TRUE(in_time.ok());
  if (!in_time.ok()) co_return;
  EXPECT_EQ(*in_time, 1);
}

TEST_F(ScopeTest, WithDeadlineTimesOutSlowTasksAndPassesFastOnes) {
  executor_->block_on(deadline_cases());
}

Task<void> wait_forever(Event* never, int* ended) {
  Status s = co_await never->wait();
  EXPECT_EQ(s.code(), StatusCode::kCancelled);
  ++*ended;
}

Task<void> cancel_after(TaskScope* scope, Duration d) {
  Status s = co_await sleep_for(d);
  EXPECT_TRUE(s.ok());
  scope->cancel();
}

Task<void> scope_cancel_ends_waits(int* ended) {
  Event never;
  TaskScope scope;
  for (int i = 0; i < 10; ++i) scope.spawn(wait_forever(&never, ended));
  TaskScope canceller;
  canceller.spawn(cancel_after(&scope, 2ms));
  co_await scope.join();
  co_await canceller.join();
}

TEST_F(ScopeTest, CancellingAScopeEndsEveryWaitWithCancelled) {
  int ended = 0;
  executor_->block_on(scope_cancel_ends_waits(&ended));
  EXPECT_EQ(ended, 10);
}

// Race a socket recv against its own deadline and a scope cancel at nearly the same time,
// many times: every op must end exactly once and nothing may leak or crash.
Task<void> recv_until_stopped(Socket* socket, int* outcomes, Duration timeout) {
  std::byte buffer[16];
  Result<size_t> n = co_await socket->recv(buffer, IoOptions{deadline_after(timeout)});
  EXPECT_FALSE(n.ok());
  StatusCode code = n.status().code();
  EXPECT_TRUE(code == StatusCode::kTimedOut || code == StatusCode::kCancelled) << n.status();
  ++*outcomes;
}

Task<void> cancel_timeout_race(int rounds, int* outcomes) {
  auto listener = Listener::listen(SocketAddress::loopback(0));
  EXPECT_TRUE(listener.ok());
  auto connect = Socket::connect(listener->address());
  Result<Socket> client = co_await std::move(connect);
  EXPECT_TRUE(client.ok());
  for (int i = 0; i < rounds; ++i) {
    TaskScope scope;
    scope.spawn(recv_until_stopped(&*client, outcomes, std::chrono::microseconds(i % 50)));
    TaskScope canceller;
    canceller.spawn(cancel_after(&scope, std::chrono::microseconds((i * 7) % 50)));
    co_await scope.join();
    co_await canceller.join();
  }
  co_await listener->close();
}

TEST_F(ScopeTest, CancelAndTimeoutRacesEndEveryOperationOnce) {
  int outcomes = 0;
  executor_->block_on(cancel_timeout_race(300, &outcomes));
  EXPECT_EQ(outcomes, 300);
}

}  // namespace
}  // namespace mica
