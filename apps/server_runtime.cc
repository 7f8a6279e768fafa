#include "apps/server_runtime.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

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

namespace {

Status usage_error(std::string message) {
  return Status(StatusCode::kInvalidArgument, std::move(message));
}

}  // namespace

Result<ServerArgs> parse_server_args(std::span<const std::string_view> args) {
  ServerArgs out;
  bool have_config = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      out.action = ServerArgs::Action::kHelp;
      return out;
    }
    if (arg == "--print-default-config") {
      out.action = ServerArgs::Action::kPrintDefaultConfig;
    } else if (arg == "--config" || arg.starts_with("--config=")) {
      if (arg == "--config" && i + 1 == args.size()) return usage_error("--config needs a file");
      out.config_path = std::string(arg == "--config" ? args[++i] : arg.substr(9));
      if (out.config_path.empty()) return usage_error("--config needs a file");
      have_config = true;
    } else {
      return usage_error(fmt::format("unknown argument \"{}\"", arg));
    }
  }
  if (out.action == ServerArgs::Action::kRun && !have_config) {
    return usage_error("--config FILE is required");
  }
  return out;
}

std::string server_usage(std::string_view program) {
  return fmt::format(
      "usage: {} --config FILE\n"
      "       {} --print-default-config   (a commented config with the defaults)\n",
      program, program);
}

std::optional<int> handle_server_args(int argc, char** argv, std::string_view program,
                                      const std::string& default_config, ServerArgs* out) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  Result<ServerArgs> parsed = parse_server_args(args);
  std::string name(program);
  if (!parsed.ok()) {
    std::fprintf(stderr, "%s: %s\n%s", name.c_str(), std::string(parsed.status().message()).c_str(),
                 server_usage(program).c_str());
    return kExitUsage;
  }
  if (parsed->action != ServerArgs::Action::kRun) {
    bool help = parsed->action == ServerArgs::Action::kHelp;
    std::fputs(help ? server_usage(program).c_str() : default_config.c_str(), stdout);
    return kExitOk;
  }
  *out = std::move(*parsed);
  return std::nullopt;
}

Result<std::optional<net::ClusterToken>> load_server_token(bool allow_unauthenticated,
                                                           const std::string& token_file,
                                                           const std::string& config_file) {
  if (allow_unauthenticated) return std::optional<net::ClusterToken>();
  Result<net::ClusterToken> token = net::load_cluster_token(token_file);
  if (!token.ok()) {
    return Status(token.status().code(),
                  fmt::format("{}: token_file: {}", config_file, token.status().to_string()));
  }
  return std::optional<net::ClusterToken>(std::move(*token));
}

Status make_directories(const std::vector<std::string>& dirs) {
  for (const std::string& dir : dirs) {
    std::error_code made;
    std::filesystem::create_directories(dir, made);
    if (made) {
      return Status(StatusCode::kIoError, fmt::format("creating {}: {}", dir, made.message()));
    }
  }
  return Status::ok_status();
}

std::string machine_host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

}  // namespace mica::apps
