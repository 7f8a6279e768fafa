// Task<T>, Result and the executor loop: laziness, values, symmetric transfer depth.
#include <gtest/gtest.h>

#include "async/executor.h"

namespace mica {
namespace {

Task<int> answer() {
  co_return 42;
}

Task<int> add_answers() {
  int a = co_await answer();
  int b = co_await answer();
  co_return a + b;
}

TEST(Task, ReturnsValueThroughAwaitChain) {
  auto executor = Executor::create_uring();
  EXPECT_EQ(executor->block_on(add_answers()), 84);
}

Task<void> set_flag(bool* flag) {
  *flag = true;
  co_return;
}

TEST(Task, IsLazyUntilAwaited) {
  auto executor = Executor::create_uring();
  bool ran = false;
  {
    Task<void> t = set_flag(&ran);
    EXPECT_FALSE(ran);
  }
  EXPECT_FALSE(ran);  // destroyed without running
  Task<void> t = set_flag(&ran);
  executor->block_on(std::move(t));
  EXPECT_TRUE(ran);
}

TEST(Task, FramesAreFreed) {
  auto executor = Executor::create_uring();
  int64_t before = live_frames();
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(executor->block_on(add_answers()), 84);
  EXPECT_EQ(live_frames(), before);
}

Task<int> leaf(int i) {
  co_return i & 1;
}

Task<int64_t> long_loop(int64_t n) {
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += co_await leaf(static_cast<int>(i));
  co_return sum;
}

// 10M synchronously completing awaits in a row: with symmetric transfer as a tail call or
// with the stack guard bouncing through the loop, the stack stays bounded.
TEST(Task, TenMillionSynchronousAwaitsDoNotOverflowTheStack) {
  auto executor = Executor::create_uring();
  EXPECT_EQ(executor->block_on(long_loop(10'000'000)), 5'000'000);
}

Task<int64_t> nested(int64_t depth) {
  if (depth == 0) co_return 0;
  int64_t below = co_await nested(depth - 1);
  co_return below + 1;
}

// A chain of 1M frames awaiting each other: completion unwinds through final_suspend
// transfers, which must not grow the stack either.
TEST(Task, MillionDeepNestedAwaitChain) {
  auto executor = Executor::create_uring();
  int64_t before = live_frames();
  EXPECT_EQ(executor->block_on(nested(1'000'000)), 1'000'000);
  EXPECT_EQ(live_frames(), before);
}

Task<Result<int>> parse_positive(int x) {
  if (x <= 0) co_return Status(StatusCode::kInvalidArgument, "not positive");
  co_return x;
}

Task<Result<int>> double_positive(int x) {
  CO_TRY_ASSIGN(int v, co_await parse_positive(x));
  co_return v * 2;
}

Task<Status> check_positive(int x) {
  CO_TRY(co_await parse_positive(x));
  co_return Status();
}

TEST(Result, CoTryPropagatesFailureAndValue) {
  auto executor = Executor::create_uring();
  Result<int> good = executor->block_on(double_positive(21));
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 42);
  Result<int> bad = executor->block_on(double_positive(-1));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "not positive");
  EXPECT_TRUE(executor->block_on(check_positive(3)).ok());
  EXPECT_EQ(executor->block_on(check_positive(0)).code(), StatusCode::kInvalidArgument);
}

TEST(Status, FromErrnoMapsCodesAndKeepsContext) {
  Status s = Status::from_errno(ENOENT, "open /x");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.to_string(), "NotFound: open /x: No such file or directory");
  EXPECT_EQ(Status::from_errno(ENOSPC).code(), StatusCode::kNoSpace);
  EXPECT_EQ(Status::from_errno(ECONNRESET).code(), StatusCode::kConnectionReset);
  EXPECT_TRUE(Status().ok());
  EXPECT_EQ(Status().to_string(), "Ok");
}

TEST(Result, CopyAndMoveKeepContents) {
  Result<std::string> a = std::string("hello");
  Result<std::string> b = a;
  EXPECT_EQ(*b, "hello");
  Result<std::string> c = Status(StatusCode::kNotFound, "gone");
  c = b;
  EXPECT_EQ(*c, "hello");
  Result<std::string> d = std::move(c);
  EXPECT_EQ(*d, "hello");
  d = Status(StatusCode::kBusy);
  EXPECT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kBusy);
}

}  // namespace
}  // namespace mica
