// Event, Mutex, Semaphore, Latch, Channel and sleep: ordering, deadlines, cancellation.
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "async/channel.h"
#include "async/io_awaiter.h"
#include "async/scope.h"

namespace mica {
namespace {

using namespace std::chrono_literals;

class SyncTest : public ::testing::Test {
 protected:
  void SetUp() override { frames_before_ = live_frames(); }
  void TearDown() override { EXPECT_EQ(live_frames(), frames_before_) << "frame leak"; }
  std::unique_ptr<Executor> executor_ = Executor::create_uring();
  int64_t frames_before_ = 0;
};

Task<void> wait_and_record(Event* event, std::vector<int>* log, int id) {
  Status s = co_await event->wait();
  EXPECT_TRUE(s.ok());
  log->push_back(id);
}

Task<void> set_later(Event* event, std::vector<int>* log) {
  log->push_back(0);
  event->set();
  co_return;
}

Task<void> event_wakes_all_waiters(std::vector<int>* log) {
  Event event;
  TaskScope scope;
  scope.spawn(wait_and_record(&event, log, 1));
  scope.spawn(wait_and_record(&event, log, 2));
  scope.spawn(set_later(&event, log));
  co_await scope.join();
}

TEST_F(SyncTest, EventWakesEveryWaiterInOrder) {
  std::vector<int> log;
  executor_->block_on(event_wakes_all_waiters(&log));
  EXPECT_EQ(log, (std::vector<int>{0, 1, 2}));
}

Task<Status> wait_event_with_deadline(Duration d) {
  Event never_set;
  TimePoint deadline = deadline_after(d);
  co_return co_await never_set.wait(deadline);
}

TEST_F(SyncTest, EventWaitTimesOutAtItsDeadline) {
  auto start = std::chrono::steady_clock::now();
  Status s = executor_->block_on(wait_event_with_deadline(20ms));
  EXPECT_EQ(s.code(), StatusCode::kTimedOut);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
}

Task<void> critical_section(Mutex* mutex, int* inside, int* max_inside, std::vector<int>* order,
                            int id) {
  Status s = co_await mutex->lock();
  EXPECT_TRUE(s.ok());
  MutexGuard guard(*mutex);
  ++*inside;
  *max_inside = std::max(*max_inside, *inside);
  order->push_back(id);
  Status slept = co_await sleep_for(1ms);
  EXPECT_TRUE(slept.ok());
  --*inside;
}

Task<void> mutex_excludes(std::vector<int>* order, int* max_inside) {
  Mutex mutex;
  int inside = 0;
  TaskScope scope;
  for (int i = 0; i < 5; ++i) scope.spawn(critical_section(&mutex, &inside, max_inside, order, i));
  co_await scope.join();
  EXPECT_FALSE(mutex.is_locked());
}

TEST_F(SyncTest, MutexAdmitsOneTaskAtATimeInArrivalOrder) {
  std::vector<int> order;
  int max_inside = 0;
  executor_->block_on(mutex_excludes(&order, &max_inside));
  EXPECT_EQ(max_inside, 1);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

Task<void> hold_units(Semaphore* sem, int* held, int* max_held) {
  Status s = co_await sem->acquire(2);
  EXPECT_TRUE(s.ok());
  *held += 2;
  *max_held = std::max(*max_held, *held);
  Status slept = co_await sleep_for(1ms);
  EXPECT_TRUE(slept.ok());
  *held -= 2;
  sem->release(2);
}

Task<void> semaphore_bounds(int* max_held) {
  Semaphore sem(5);
  int held = 0;
  TaskScope scope;
  for (int i = 0; i < 8; ++i) scope.spawn(hold_units(&sem, &held, max_held));
  co_await scope.join();
  EXPECT_EQ(sem.available(), 5u);
}

TEST_F(SyncTest, SemaphoreNeverHandsOutMoreThanItHas) {
  int max_held = 0;
  executor_->block_on(semaphore_bounds(&max_held));
  EXPECT_EQ(max_held, 4);
}

Task<Status> semaphore_timeout_then_grant() {
  Semaphore sem(1);
  EXPECT_TRUE(sem.try_acquire());
  Status timed = co_await sem.acquire(1, deadline_after(5ms));
  EXPECT_EQ(timed.code(), StatusCode::kTimedOut);
  sem.release();
  co_return co_await sem.acquire(1, deadline_after(5ms));
}

TEST_F(SyncTest, SemaphoreTimedOutWaiterLeavesWithoutTakingUnits) {
  EXPECT_TRUE(executor_->block_on(semaphore_timeout_then_grant()).ok());
}

Task<void> count_down_after(Latch* latch, Duration d) {
  Status s = co_await sleep_for(d);
  EXPECT_TRUE(s.ok());
  latch->count_down();
}

Task<void> latch_waits_for_all() {
  Latch latch(3);
  TaskScope scope;
  for (int i = 1; i <= 3; ++i) scope.spawn(count_down_after(&latch, i * 1ms));
  Status s = co_await latch.wait();
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(latch.count(), 0u);
  co_await scope.join();
}

TEST_F(SyncTest, LatchReleasesWhenCountReachesZero) {
  executor_->block_on(latch_waits_for_all());
}

Task<void> produce(Channel<int>* channel, int n) {
  for (int i = 0; i < n; ++i) {
    Status s = co_await channel->send(i);
    EXPECT_TRUE(s.ok());
  }
  channel->close();
}

Task<void> channel_roundtrip(std::vector<int>* received, size_t* max_size) {
  Channel<int> channel(4);
  TaskScope scope;
  scope.spawn(produce(&channel, 100));
  for (;;) {
    *max_size = std::max(*max_size, channel.size());
    Result<int> v = co_await channel.recv();
    if (!v.ok()) {
      EXPECT_EQ(v.status().code(), StatusCode::kClosed);
      break;
    }
    received->push_back(*v);
  }
  co_await scope.join();
}

TEST_F(SyncTest, ChannelDeliversInOrderWithinCapacityThenReportsClosed) {
  std::vector<int> received;
  size_t max_size = 0;
  executor_->block_on(channel_roundtrip(&received, &max_size));
  ASSERT_EQ(received.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(received[i], i);
  EXPECT_LE(max_size, 4u);
}

Task<void> channel_full_send_times_out() {
  Channel<int> channel(1);
  Status first = co_await channel.send(1);
  EXPECT_TRUE(first.ok());
  Status second = co_await channel.send(2, deadline_after(2ms));
  EXPECT_EQ(second.code(), StatusCode::kTimedOut);
  EXPECT_EQ(channel.size(), 1u);
  channel.close();
  Result<int> drained = co_await channel.recv();
  EXPECT_EQ(*drained, 1);
  Status after_close = co_await channel.send(3);
  EXPECT_EQ(after_close.code(), StatusCode::kClosed);
}

TEST_F(SyncTest, ChannelSendTimesOutWhenFullAndFailsAfterClose) {
  executor_->block_on(channel_full_send_times_out());
}

Task<void> sleep_measures() {
  TimePoint start = Executor::current()->now();
  Status s = co_await sleep_for(10ms);
  EXPECT_TRUE(s.ok());
  EXPECT_GE(Executor::current()->now() - start, 10ms);
}

TEST_F(SyncTest, SleepForWaitsAtLeastItsDuration) {
  executor_->block_on(sleep_measures());
}

}  // namespace
}  // namespace mica
