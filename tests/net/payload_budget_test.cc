// PayloadBudget: nested budgets, waiting for bytes, the high-water mark.
#include <gtest/gtest.h>

#include "async/executor.h"
#include "async/scope.h"
#include "net/payload_budget.h"

namespace mica::net {
namespace {

using namespace std::chrono_literals;

TEST(PayloadBudget, AReservationTakesFromEveryLevelAndGivesBackOnDestruction) {
  PayloadBudget transport(100);
  PayloadBudget connection(60, &transport);
  {
    PayloadReservation held;
    ASSERT_TRUE(connection.try_acquire(50));
    held.add(&connection, 50);
    EXPECT_EQ(connection.reserved(), 50u);
    EXPECT_EQ(transport.reserved(), 50u);
    EXPECT_FALSE(connection.try_acquire(20));  // over the connection's 60
    EXPECT_EQ(transport.reserved(), 50u);      // and nothing left behind above it
    PayloadReservation moved = std::move(held);
    EXPECT_EQ(moved.bytes(), 50u);
  }
  EXPECT_EQ(connection.reserved(), 0u);
  EXPECT_EQ(transport.reserved(), 0u);
  EXPECT_EQ(transport.reserved_max(), 50u);
}

Task<void> wait_for_budget(PayloadBudget* budget, Status* got) {
  auto acquiring = budget->acquire(80, deadline_after(5s));
  *got = co_await std::move(acquiring);
}

Task<void> release_later(PayloadBudget* budget) {
  Status slept = co_await sleep_for(20ms);
  EXPECT_TRUE(slept.ok());
  budget->release(50);
}

Task<void> waiting_case(PayloadBudget* budget) {
  EXPECT_TRUE(budget->try_acquire(50));
  Status got(StatusCode::kInternal, "not run");
  TaskScope scope;
  scope.spawn(wait_for_budget(budget, &got));
  scope.spawn(release_later(budget));
  co_await scope.join();
  EXPECT_TRUE(got.ok()) << got;
  EXPECT_EQ(budget->reserved(), 80u);
  EXPECT_EQ(budget->reserved_max(), 80u);
  budget->release(80);
  auto too_late = budget->acquire(100, deadline_after(10ms));
  EXPECT_TRUE(budget->try_acquire(1));
  Status timed_out = co_await std::move(too_late);
  EXPECT_EQ(timed_out.code(), StatusCode::kTimedOut);
  budget->release(1);
  EXPECT_EQ(budget->reserved(), 0u);
}

TEST(PayloadBudget, AcquireWaitsForBytesWithinItsDeadline) {
  PayloadBudget budget(100);
  auto executor = Executor::create_uring();
  executor->block_on(waiting_case(&budget));
}

}  // namespace
}  // namespace mica::net
