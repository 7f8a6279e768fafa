// What every server program does around its service: stop signals, and its first log line.
//
// StopSignals turns SIGINT and SIGTERM into a value a task awaits: install() blocks both in
// the calling thread, so every thread started afterwards (executors, the blocking pool)
// inherits the mask and the default action (death) never runs, and opens a signalfd that
// wait() polls through the executor's backend (poll_fd): no signal handler, no thread of
// its own, nothing async-signal-unsafe. Call install() first in main, before any thread
// exists; keep the object until the program ends. wait() suspends until a signal arrives
// and must run on an executor; the rest are plain calls on the main thread.
#pragma once

#include <csignal>
#include <string>

#include "async/status.h"
#include "async/task.h"

namespace mica::apps {

class StopSignals {
 public:
  static Result<StopSignals> install();
  StopSignals(StopSignals&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  StopSignals& operator=(StopSignals&&) = delete;
  StopSignals(const StopSignals&) = delete;
  ~StopSignals();

  // The number of the first stop signal received (SIGINT or SIGTERM).
  Task<Result<int>> wait();

 private:
  explicit StopSignals(int fd) : fd_(fd) {}
  int fd_;
};

// "SIGTERM", "SIGINT", or "signal N".
std::string signal_name(int signal_number);

}  // namespace mica::apps
