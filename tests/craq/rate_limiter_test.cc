// ByteRateLimiter (craq/rate_limiter.h): the pacing of resync copies and scrub reads. The
// schedule is checked on explicit time points, never against a real clock.
#include "craq/rate_limiter.h"

#include <gtest/gtest.h>

namespace mica::craq {
namespace {

constexpr uint64_t kMiB = 1 << 20;

TimePoint at_ms(int64_t ms) {
  return TimePoint(std::chrono::milliseconds(ms));
}

TEST(ByteRateLimiter, UncappedGrantsAtOnce) {
  ByteRateLimiter limiter(0);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(limiter.reserve(64 * kMiB, at_ms(10)), at_ms(10));
  EXPECT_EQ(limiter.bytes_granted(), 5 * 64 * kMiB);
  EXPECT_EQ(limiter.grants(), 5u);
}

TEST(ByteRateLimiter, BackToBackGrantsAreSpacedAtTheRate) {
  ByteRateLimiter limiter(4 * kMiB);  // 1 MiB takes 250 ms
  EXPECT_EQ(limiter.reserve(kMiB, at_ms(0)), at_ms(0));
  EXPECT_EQ(limiter.reserve(kMiB, at_ms(0)), at_ms(250));
  EXPECT_EQ(limiter.reserve(2 * kMiB, at_ms(1)), at_ms(500));
  EXPECT_EQ(limiter.reserve(kMiB, at_ms(2)), at_ms(1000));
  EXPECT_EQ(limiter.schedule_end(), at_ms(1250));
}

TEST(ByteRateLimiter, IdleTimeIsNotSavedUpForABurst) {
  ByteRateLimiter limiter(kMiB);
  EXPECT_EQ(limiter.reserve(kMiB, at_ms(0)), at_ms(0));
  // A long pause, then two grants: the second still waits a full second after the first.
  EXPECT_EQ(limiter.reserve(kMiB, at_ms(10'000)), at_ms(10'000));
  EXPECT_EQ(limiter.reserve(kMiB, at_ms(10'000)), at_ms(11'000));
}

TEST(ByteRateLimiter, GrantedBytesNeverOutrunTheRate) {
  // Any grant start t: bytes granted before it <= rate * (t - first grant).
  const uint64_t rate = 3 * kMiB + 12345;
  ByteRateLimiter limiter(rate);
  uint64_t before = 0;
  for (uint64_t i = 0; i < 200; ++i) {
    uint64_t bytes = (i * 7919) % (5 * kMiB) + 1;
    TimePoint now = at_ms(static_cast<int64_t>(i * 3));
    TimePoint start = limiter.reserve(bytes, now);
    EXPECT_GE(start, now);
    double elapsed_s = std::chrono::duration<double>(start - limiter.first_grant()).count();
    EXPECT_LE(static_cast<double>(before), static_cast<double>(rate) * elapsed_s + 1.0);
    before += bytes;
  }
  EXPECT_EQ(limiter.bytes_granted(), before);
}

}  // namespace
}  // namespace mica::craq
