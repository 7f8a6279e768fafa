// Logging: one line per event, with a level, a module tag and rate limiting per call site.
//
// `MICA_LOG(Warn, "net", "closing {}: {}", peer, status)` formats with fmt and writes
//     <timestamp> <LEVEL> <module>: <message>\n
// to the process's log sink (stderr, or a file chosen by log_configure at startup) in one
// write(2), so lines from several threads never interleave; a line is capped at
// kLogLineBytesMax. The level is checked before anything is evaluated or formatted: a
// disabled line costs one relaxed atomic load and a branch.
//
// Rate limiting: each call site writes at most LogConfig::site_lines_max lines per
// site_interval; the rest are counted, and the first line the site writes after the interval
// is preceded by one line saying how many were suppressed.
//
// Time: when the calling thread runs a simulated executor the timestamp and the rate
// limiter's clock are the simulation's virtual time ("sim+S.NNNNNNNNN"), so replays stay
// deterministic; otherwise the timestamp is UTC wall-clock time with microseconds and the
// limiter uses CLOCK_MONOTONIC. This file is the one place that reads the wall clock.
//
// Thread-safe from any thread; never suspends (a slow sink blocks the writing thread for
// the duration of its write). Not for per-request tracing: a hot path counts in a metric
// (async/metrics.h) and logs what is exceptional.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <mutex>
#include <string>
#include <string_view>

#include "async/status.h"

namespace mica {

enum class LogLevel : uint8_t { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

std::string_view log_level_name(LogLevel level);
// "debug", "info", "warn", "error" or "off" (as a flag or config file spells it).
Result<LogLevel> log_level_from_name(std::string_view name);

// One line including its newline fits in PIPE_BUF, the size a pipe writes atomically.
inline constexpr size_t kLogLineBytesMax = 4096;

struct LogConfig {
  // Lines below this level are dropped before formatting.
  LogLevel level = LogLevel::kInfo;
  // Empty: stderr. Otherwise the file is opened for appending (created 0644).
  std::string path;
  // Lines one call site may write per interval; 0 means no limit.
  uint32_t site_lines_max = 20;
  std::chrono::nanoseconds site_interval = std::chrono::seconds(10);
};

// Sets the level, the sink and the rate limits. Call at startup, before other threads log:
// the previous file sink is closed. On failure nothing changes.
Status log_configure(const LogConfig& config);
// The configuration in force.
LogConfig log_config();

namespace detail {
// The level, readable inline by every MICA_LOG; written only by log_configure.
inline std::atomic<uint8_t> g_log_level{static_cast<uint8_t>(LogLevel::kInfo)};

// What a call site may do now; `suppressed` is the count to report before this line.
struct LogAdmission {
  bool admitted = false;
  uint64_t suppressed = 0;
};

// One call site's rate-limit window (a static inside MICA_LOG, constant-initialised).
struct LogSite {
  constexpr LogSite(const char* file_in, int line_in) : file(file_in), line(line_in) {}
  LogAdmission admit();

  const char* const file;
  const int line;
  std::mutex mutex;
  bool started = false;
  int64_t window_start_ns = 0;
  uint32_t lines_in_window = 0;
  uint64_t suppressed = 0;
};

// Writes one event (and the suppression notice before it, if any) in one write(2).
void log_line(LogLevel level, std::string_view module, const LogSite& site, LogAdmission admission,
              std::string_view message);

template <class... Args>
void log_format(LogLevel level, std::string_view module, const LogSite& site,
                LogAdmission admission, fmt::format_string<Args...> format, Args&&... args) {
  fmt::memory_buffer message;
  fmt::format_to(std::back_inserter(message), format, std::forward<Args>(args)...);
  log_line(level, module, site, admission, std::string_view(message.data(), message.size()));
}
}  // namespace detail

inline bool log_enabled(LogLevel level) {
  return static_cast<uint8_t>(level) >= detail::g_log_level.load(std::memory_order_relaxed);
}

}  // namespace mica

// MICA_LOG(Level, module, format, args...): Level is Debug, Info, Warn or Error; the
// arguments are evaluated only when the level is enabled and the site is not rate limited.
#define MICA_LOG(level, module, ...)                                                     \
  do {                                                                                   \
    if (::mica::log_enabled(::mica::LogLevel::k##level)) {                               \
      static ::mica::detail::LogSite mica_log_site_(__FILE__, __LINE__);                 \
      ::mica::detail::LogAdmission mica_log_admission_ = mica_log_site_.admit();         \
      if (mica_log_admission_.admitted)                                                  \
        ::mica::detail::log_format(::mica::LogLevel::k##level, (module), mica_log_site_, \
                                   mica_log_admission_, __VA_ARGS__);                    \
    }                                                                                    \
  } while (0)
