#include "async/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "async/executor.h"
#include "async/sim/backend.h"

namespace mica {
namespace {

// The sink and the limits. The fd and limits are atomics so a line being written while
// log_configure runs reads either the old or the new value, never a torn one.
std::atomic<int> g_fd{STDERR_FILENO};
std::atomic<uint32_t> g_site_lines_max{LogConfig{}.site_lines_max};
std::atomic<int64_t> g_site_interval_ns{LogConfig{}.site_interval.count()};
// Guards the non-atomic copy of the configuration (the path) and serialises log_configure.
std::mutex g_config_mutex;
LogConfig g_config;

// Virtual time of the simulated executor running on this thread, or -1.
int64_t virtual_now_ns() {
  Executor* executor = Executor::current();
  if (executor == nullptr || dynamic_cast<sim::SimBackend*>(&executor->backend()) == nullptr)
    return -1;
  return to_ns(executor->now());
}

int64_t clock_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// The rate limiter's clock: virtual time in a simulation, else monotonic.
int64_t limiter_now_ns() {
  int64_t virtual_ns = virtual_now_ns();
  return virtual_ns >= 0 ? virtual_ns : clock_ns(CLOCK_MONOTONIC);
}

void append_timestamp(fmt::memory_buffer* out) {
  int64_t virtual_ns = virtual_now_ns();
  if (virtual_ns >= 0) {
    fmt::format_to(std::back_inserter(*out), "sim+{}.{:09}", virtual_ns / 1'000'000'000,
                   virtual_ns % 1'000'000'000);
    return;
  }
  int64_t wall_ns = clock_ns(CLOCK_REALTIME);
  time_t seconds = static_cast<time_t>(wall_ns / 1'000'000'000);
  tm utc{};
  gmtime_r(&seconds, &utc);
  fmt::format_to(std::back_inserter(*out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                 utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                 utc.tm_sec, (wall_ns % 1'000'000'000) / 1000);
}

// "chunk/fsck.cc" from whatever path the build gave __FILE__.
std::string_view short_file(std::string_view file) {
  size_t last = file.rfind('/');
  if (last == std::string_view::npos || last == 0) return file;
  size_t before = file.rfind('/', last - 1);
  return before == std::string_view::npos ? file : file.substr(before + 1);
}

// Appends one line: header, message with newlines escaped, truncated to the line cap.
void append_line(fmt::memory_buffer* out, LogLevel level, std::string_view module,
                 std::string_view message) {
  size_t start = out->size();
  append_timestamp(out);
  fmt::format_to(std::back_inserter(*out), " {} {}: ", log_level_name(level), module);
  constexpr std::string_view kEllipsis = "...";
  for (char c : message) {
    if (out->size() - start + 2 + kEllipsis.size() >= kLogLineBytesMax) {
      out->append(kEllipsis);
      break;
    }
    if (c == '\n') {
      out->append(std::string_view("\\n"));
    } else {
      out->push_back(c);
    }
  }
  out->push_back('\n');
}

void write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a sink that fails loses the line; there is nowhere to report it
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarn:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
    case LogLevel::kOff:
      return "OFF";
  }
  return "?";
}

Result<LogLevel> log_level_from_name(std::string_view name) {
  for (LogLevel level :
       {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError, LogLevel::kOff}) {
    std::string_view upper = log_level_name(level);
    bool same = upper.size() == name.size();
    for (size_t i = 0; same && i < name.size(); ++i)
      same = (name[i] & ~0x20) == upper[i];  // ASCII letters, any case
    if (same) return level;
  }
  return Status(StatusCode::kInvalidArgument, fmt::format("unknown log level '{}'", name));
}

Status log_configure(const LogConfig& config) {
  std::lock_guard lock(g_config_mutex);
  int fd = STDERR_FILENO;
  if (!config.path.empty()) {
    fd = ::open(config.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return Status::from_errno(errno, "opening the log file " + config.path);
  }
  int old_fd = g_fd.exchange(fd);
  if (old_fd != STDERR_FILENO) ::close(old_fd);
  g_site_lines_max.store(config.site_lines_max, std::memory_order_relaxed);
  g_site_interval_ns.store(config.site_interval.count(), std::memory_order_relaxed);
  detail::g_log_level.store(static_cast<uint8_t>(config.level), std::memory_order_relaxed);
  g_config = config;
  return Status();
}

LogConfig log_config() {
  std::lock_guard lock(g_config_mutex);
  return g_config;
}

namespace detail {

LogAdmission LogSite::admit() {
  uint32_t lines_max = g_site_lines_max.load(std::memory_order_relaxed);
  if (lines_max == 0) return LogAdmission{true, 0};
  int64_t now_ns = limiter_now_ns();
  std::lock_guard lock(mutex);
  LogAdmission admission;
  // A clock that reads earlier than the window's start (a site used both inside and outside
  // a simulation) also opens a new window.
  int64_t interval_ns = g_site_interval_ns.load(std::memory_order_relaxed);
  if (!started || now_ns < window_start_ns || now_ns - window_start_ns >= interval_ns) {
    admission.suppressed = suppressed;
    started = true;
    window_start_ns = now_ns;
    lines_in_window = 0;
    suppressed = 0;
  }
  if (lines_in_window < lines_max) {
    ++lines_in_window;
    admission.admitted = true;
  } else {
    ++suppressed;
  }
  return admission;
}

void log_line(LogLevel level, std::string_view module, const LogSite& site, LogAdmission admission,
              std::string_view message) {
  fmt::memory_buffer out;
  if (admission.suppressed > 0) {
    fmt::memory_buffer notice;
    fmt::format_to(std::back_inserter(notice), "suppressed {} more lines from {}:{}",
                   admission.suppressed, short_file(site.file), site.line);
    append_line(&out, level, module, std::string_view(notice.data(), notice.size()));
  }
  append_line(&out, level, module, message);
  write_all(g_fd.load(std::memory_order_relaxed), std::string_view(out.data(), out.size()));
}

}  // namespace detail
}  // namespace mica
