// MICA_ASSERT: an invariant check that stays on in release builds.
//
// A broken invariant means the process no longer knows what state it is in, so it stops
// loudly (message with file and line to stderr, then abort) instead of limping on. Use it
// for programmer errors and impossible states, never for bad input, which gets a Status.
// Safe to call from any thread; never suspends.
#pragma once

namespace mica::detail {
[[noreturn]] void assert_failed(const char* expr, const char* file, int line, const char* why);
}  // namespace mica::detail

#define MICA_ASSERT(expr)                                                \
  do {                                                                   \
    if (!(expr)) [[unlikely]]                                            \
      ::mica::detail::assert_failed(#expr, __FILE__, __LINE__, nullptr); \
  } while (0)

#define MICA_ASSERT_MSG(expr, why)                                     \
  do {                                                                 \
    if (!(expr)) [[unlikely]]                                          \
      ::mica::detail::assert_failed(#expr, __FILE__, __LINE__, (why)); \
  } while (0)
