// ByteRateLimiter: paces bulk work (resync copies, scrub reads) to a byte rate on the
// runtime clock, so background traffic leaves the disk and network to clients.
//
// A caller reserves the bytes it is about to move and gets the time point from which it may
// move them; it then sleeps until then (sleep_until). Reservations are granted in order, each
// starting when the one before it has "drained" at bytes_per_s, so the bytes granted by any
// time t since the first grant never exceed bytes_per_s * (t - first) plus one reservation.
// Idle time is not saved up (no burst after a pause). 0 bytes per second: no cap.
// Accounting (bytes granted, the grant schedule's end) is readable for tests and progress.
// Ownership and threads: a plain value owned by its user, used on one executor; never
// suspends (the caller does the waiting).
#pragma once

#include <algorithm>
#include <cstdint>

#include "async/time.h"

namespace mica::craq {

class ByteRateLimiter {
 public:
  explicit ByteRateLimiter(uint64_t bytes_per_s = 0) : bytes_per_s_(bytes_per_s) {}

  // Grants `bytes` and returns when the caller may move them (now when uncapped or idle).
  TimePoint reserve(uint64_t bytes, TimePoint now) {
    ++grants_;
    bytes_granted_ += bytes;
    if (bytes_per_s_ == 0) return now;
    if (bytes_granted_ == bytes) first_ = now;  // the first grant starts the schedule
    TimePoint start = std::max(next_, now);
    // Nanoseconds the bytes take at the rate, rounded up so the rate is never exceeded.
    uint64_t ns = (bytes * kNsPerS + bytes_per_s_ - 1) / bytes_per_s_;
    next_ = start + Duration(static_cast<int64_t>(ns));
    return start;
  }

  uint64_t bytes_per_s() const { return bytes_per_s_; }
  uint64_t bytes_granted() const { return bytes_granted_; }
  uint64_t grants() const { return grants_; }
  // The time the first grant was made at (capped limiters only).
  TimePoint first_grant() const { return first_; }
  // When everything granted so far has drained at the rate: with a cap, never earlier than
  // first_grant() + bytes_granted() / bytes_per_s().
  TimePoint schedule_end() const { return next_; }

 private:
  static constexpr uint64_t kNsPerS = 1'000'000'000;
  uint64_t bytes_per_s_;
  uint64_t bytes_granted_ = 0;
  uint64_t grants_ = 0;
  TimePoint first_{};
  TimePoint next_{};
};

}  // namespace mica::craq
