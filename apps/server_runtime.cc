#include "apps/server_runtime.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

#include "async/socket.h"

namespace mica::apps {

Result<StopSignals> StopSignals::install() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  // pthread_sigmask, not sigprocmask: the mask of this (still the only) thread.
  if (int error = pthread_sigmask(SIG_BLOCK, &set, nullptr); error != 0) {
    return Status::from_errno(error, "blocking SIGINT and SIGTERM");
  }
  int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return Status::from_errno(errno, "signalfd");
  return StopSignals(fd);
}

StopSignals::~StopSignals() {
  if (fd_ >= 0) ::close(fd_);
}

Task<Result<int>> StopSignals::wait() {
  while (true) {
    auto polling = poll_fd(fd_, POLLIN);
    Result<int> ready = co_await std::move(polling);
    if (!ready.ok()) co_return ready.status();
    signalfd_siginfo info{};
    // Non-blocking: poll said a signal is queued; EAGAIN means another reader took it.
    ssize_t n = ::read(fd_, &info, sizeof info);
    if (n == static_cast<ssize_t>(sizeof info)) co_return static_cast<int>(info.ssi_signo);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      co_return Status::from_errno(errno, "reading the signalfd");
    }
  }
}

std::string signal_name(int signal_number) {
  switch (signal_number) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    default:
      return fmt::format("signal {}", signal_number);
  }
}

}  // namespace mica::apps
