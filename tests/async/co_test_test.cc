// MICA_CO_TEST and the CO_ASSERT_* macros of tests/co_test.h: the body runs on an executor
// in a fresh directory that is removed afterwards, and a failed CO_ASSERT_* records a
// fatal failure with its message and returns from the coroutine at once.
#include "tests/co_test.h"

#include <fcntl.h>
#include <gtest/gtest-spi.h>

#include <filesystem>
#include <fstream>

#include "async/file.h"

namespace mica {
namespace {

MICA_CO_TEST(CoTest, BodyRunsOnAnExecutorInAnEmptyDirectory) {
  CO_ASSERT_TRUE(Executor::current() != nullptr);
  CO_ASSERT_TRUE(std::filesystem::is_directory(dir.path));
  CO_ASSERT_TRUE(std::filesystem::is_empty(dir.path));
  auto opening = File::open(dir.file("a"), O_RDWR | O_CREAT | O_TRUNC);
  Result<File> file = co_await std::move(opening);
  CO_ASSERT_OK(file);
  CO_ASSERT_OK(co_await file->close());
  CO_ASSERT_TRUE(std::filesystem::exists(dir.file("a")));
}

// What the bodies below saw, for the checks made after they returned. Statics: gtest's
// EXPECT_FATAL_FAILURE cannot see local variables.
std::string seen_path;
int steps_after_assert = 0;

Task<void> remember_dir(testing::CoTestDir dir) {
  seen_path = dir.path;
  std::ofstream(dir.file("left-behind")) << "x";
  co_return;
}

TEST(CoTest, TheDirectoryIsRemovedAfterTheBody) {
  testing::run_co_test(&remember_dir);
  ASSERT_FALSE(seen_path.empty());
  EXPECT_FALSE(std::filesystem::exists(seen_path));
}

Task<void> assert_ok_on_failure(testing::CoTestDir) {
  Status gone(StatusCode::kNotFound, "chunk 7 is gone");
  CO_ASSERT_OK(gone) << "while reading chunk 7";
  ++steps_after_assert;
}

TEST(CoTest, AssertOkRecordsTheStatusAndReturns) {
  steps_after_assert = 0;
  EXPECT_FATAL_FAILURE(testing::run_co_test(&assert_ok_on_failure), "chunk 7 is gone");
  EXPECT_FATAL_FAILURE(testing::run_co_test(&assert_ok_on_failure), "while reading chunk 7");
  EXPECT_EQ(steps_after_assert, 0);
}

Task<Result<int>> failing_op() {
  co_return Status(StatusCode::kIoError, "disk said no");
}

Task<void> assert_ok_on_awaited_result(testing::CoTestDir) {
  CO_ASSERT_OK(co_await failing_op());
  ++steps_after_assert;
}

TEST(CoTest, AssertOkTakesAnAwaitedResult) {
  steps_after_assert = 0;
  EXPECT_FATAL_FAILURE(testing::run_co_test(&assert_ok_on_awaited_result), "disk said no");
  EXPECT_EQ(steps_after_assert, 0);
}

Task<void> assert_eq_on_failure(testing::CoTestDir) {
  int answer = 41;
  CO_ASSERT_EQ(answer, 42);
  ++steps_after_assert;
}

Task<void> assert_true_on_failure(testing::CoTestDir) {
  bool ready = false;
  CO_ASSERT_TRUE(ready);
  ++steps_after_assert;
}

TEST(CoTest, AssertEqAndAssertTrueReturnOnFailure) {
  steps_after_assert = 0;
  EXPECT_FATAL_FAILURE(testing::run_co_test(&assert_eq_on_failure), "41");
  EXPECT_FATAL_FAILURE(testing::run_co_test(&assert_true_on_failure), "ready is false");
  EXPECT_EQ(steps_after_assert, 0);
}

Task<void> asserts_that_pass(testing::CoTestDir) {
  Status fine;
  CO_ASSERT_OK(fine);
  Result<int> value = 42;
  CO_ASSERT_OK(value);
  CO_ASSERT_EQ(*value, 42);
  CO_ASSERT_TRUE(value.ok());
  ++steps_after_assert;
}

TEST(CoTest, PassingAssertsGoOn) {
  steps_after_assert = 0;
  testing::run_co_test(&asserts_that_pass);
  EXPECT_EQ(steps_after_assert, 1);
}

Task<void> skip_body(testing::CoTestDir) {
  CO_SKIP() << "no O_DIRECT here";
  ++steps_after_assert;
}

TEST(CoTest, SkipRecordsASkipAndEndsTheBody) {
  steps_after_assert = 0;
  ::testing::TestPartResultArray results;
  {
    // Catches the skip, so this test itself is not reported as skipped.
    ::testing::ScopedFakeTestPartResultReporter catching(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    testing::run_co_test(&skip_body);
  }
  ASSERT_EQ(results.size(), 1);
  EXPECT_TRUE(results.GetTestPartResult(0).skipped());
  EXPECT_NE(std::string(results.GetTestPartResult(0).message()).find("no O_DIRECT here"),
            std::string::npos);
  EXPECT_EQ(steps_after_assert, 0);
}

}  // namespace
}  // namespace mica
