// Time as the runtime sees it: a monotonic clock owned by the I/O backend.
//
// On io_uring the clock is CLOCK_MONOTONIC; under the simulator it is virtual time that
// jumps to the next event. Code never reads the system clock directly: it asks its
// executor (`Executor::current()->now()`), so the same code is deterministic in simulation.
// Value types only; thread-compatible.
#pragma once

#include <chrono>
#include <cstdint>

namespace mica {

// A clock tag: time points of this clock come from a Backend, not from a static now().
struct RuntimeClock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<RuntimeClock, duration>;
  static constexpr bool is_steady = true;
};

using Duration = std::chrono::nanoseconds;
using TimePoint = RuntimeClock::time_point;

// "No deadline": waits with this deadline never time out.
inline constexpr TimePoint kNoDeadline = TimePoint::max();

inline int64_t to_ns(TimePoint t) {
  return t.time_since_epoch().count();
}
inline TimePoint from_ns(int64_t ns) {
  return TimePoint(Duration(ns));
}

}  // namespace mica
