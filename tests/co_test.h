// Coroutine tests: MICA_CO_TEST(Suite, Name) { ... } declares a GoogleTest test whose body
// is a Task<void> coroutine, run to completion on a fresh io_uring Executor (block_on, on
// the test's thread). The body sees `dir`, a CoTestDir naming an empty directory made for
// this test in the build tree (the real disk: /tmp may be a tmpfs that refuses O_DIRECT);
// the directory and everything in it is removed when the body returns, and the test fails
// if the body leaked coroutine frames.
//
// CO_ASSERT_OK(expr) (expr a Status or Result<T>), CO_ASSERT_TRUE(cond) and
// CO_ASSERT_EQ(a, b) are ASSERT_* for coroutines: on failure they record a fatal gtest
// failure (with the status message) and co_return from the enclosing Task<void> — ASSERT_*
// cannot be used there, and aborting the binary would hide the other tests. Like ASSERT_*
// they accept `<< "more context"`. Only the current coroutine returns: a helper that uses
// them returns to its caller, which goes on unless it checks HasFatalFailure(). Spawned
// children must be joined before such an early return (a TaskScope asserts they are).
// CO_SKIP() is GTEST_SKIP() for them. The body must be a coroutine (contain a co_await or
// co_return).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "async/executor.h"
#include "async/frame_alloc.h"
#include "async/status.h"

namespace mica::testing {

// The test's scratch directory; a value, so it can be a coroutine parameter.
struct CoTestDir {
  std::string path;
  // path/name
  std::string file(std::string_view name) const { return path + "/" + std::string(name); }
};

// Makes an empty directory for the running test under the test binary's folder.
inline std::string make_co_test_dir() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path parent =
      std::filesystem::read_symlink("/proc/self/exe").parent_path() / "co-test-data";
  std::filesystem::create_directories(parent);
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "test";
  std::string pattern = (parent / (name + "-XXXXXX")).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  char* made = ::mkdtemp(buffer.data());
  MICA_ASSERT_MSG(made != nullptr, "mkdtemp for a coroutine test");
  return buffer.data();
}

// Runs body(dir) on a new io_uring executor, then removes the directory and checks that
// every coroutine frame the body made was freed.
inline void run_co_test(Task<void> (*body)(CoTestDir)) {
  CoTestDir dir{make_co_test_dir()};
  int64_t frames_before = live_frames();
  {
    auto executor = Executor::create_uring();
    executor->block_on(body(dir));
  }
  EXPECT_EQ(live_frames(), frames_before) << "the test body leaked coroutine frames";
  std::error_code ignored;
  std::filesystem::remove_all(dir.path, ignored);
}

inline ::testing::AssertionResult status_is_ok(const char* text, const Status& status) {
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << text << " failed: " << status;
}

template <class T>
::testing::AssertionResult status_is_ok(const char* text, const Result<T>& result) {
  if (result.ok()) return ::testing::AssertionSuccess();
  return status_is_ok(text, result.status());
}

inline ::testing::AssertionResult is_true(const char* text, bool value) {
  if (value) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << text << " is false";
}

}  // namespace mica::testing

// `co_return e;` with e of type void evaluates e, then returns: the gtest message helper's
// assignment is that void expression, so `<< context` streams into the failure.
#define MICA_CO_ASSERT_(assertion)                                       \
  GTEST_AMBIGUOUS_ELSE_BLOCKER_                                          \
  if (const ::testing::AssertionResult mica_co_assertion_ = (assertion)) \
    ;                                                                    \
  else                                                                   \
    co_return GTEST_MESSAGE_(mica_co_assertion_.failure_message(),       \
                             ::testing::TestPartResult::kFatalFailure)

#define CO_ASSERT_OK(expr) MICA_CO_ASSERT_(::mica::testing::status_is_ok(#expr, (expr)))
#define CO_ASSERT_TRUE(cond) \
  MICA_CO_ASSERT_(::mica::testing::is_true(#cond, static_cast<bool>(cond)))
#define CO_ASSERT_EQ(a, b) MICA_CO_ASSERT_(::testing::internal::EqHelper::Compare(#a, #b, (a), (b)))

// GTEST_SKIP() for coroutines: marks the test skipped and returns (`<< why` streams too).
#define CO_SKIP() co_return GTEST_MESSAGE_("Skipped", ::testing::TestPartResult::kSkip)

#define MICA_CO_TEST_BODY_(Suite, Name) MicaCoTestBody_##Suite##_##Name
#define MICA_CO_TEST(Suite, Name)                                    \
  static ::mica::Task<void> MICA_CO_TEST_BODY_(                      \
      Suite, Name)([[maybe_unused]] ::mica::testing::CoTestDir dir); \
  TEST(Suite, Name) {                                                \
    ::mica::testing::run_co_test(&MICA_CO_TEST_BODY_(Suite, Name));  \
  }                                                                  \
  static ::mica::Task<void> MICA_CO_TEST_BODY_(                      \
      Suite, Name)([[maybe_unused]] ::mica::testing::CoTestDir dir)
