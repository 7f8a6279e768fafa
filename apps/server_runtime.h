// What every server program (mica-storage, mica-meta) does around its service: its command
// line (--config FILE, --print-default-config, --help), its token file, its directories,
// stop signals, and the serve loop (start, wait for SIGINT/SIGTERM, stop, log each step).
//
// StopSignals turns SIGINT and SIGTERM into a value a task awaits: install() blocks both in
// the calling thread, so every thread started afterwards (executors, the blocking pool)
// inherits the mask and the default action (death) never runs, and opens a signalfd that
// wait() polls through the executor's backend (poll_fd): no signal handler, no thread of
// its own, nothing async-signal-unsafe. Call install() first in main, before any thread
// exists; keep the object until the program ends. wait() suspends until a signal arrives
// and must run on an executor; the rest are plain calls on the main thread (blocking file
// I/O included: before the executor runs). serve_until_signal runs on the executor.
#pragma once

#include <csignal>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "apps/cli_args.h"
#include "async/log.h"
#include "async/status.h"
#include "async/task.h"
#include "net/cluster_token.h"

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

struct ServerArgs {
  enum class Action { kRun, kPrintDefaultConfig, kHelp };
  Action action = Action::kRun;
  std::string config_path;
};

// `--config FILE`, `--print-default-config`, `--help`; anything else is kInvalidArgument.
Result<ServerArgs> parse_server_args(std::span<const std::string_view> args);
std::string server_usage(std::string_view program);

// The start of a server's main: parses argv; prints usage (an error: kExitUsage), the help
// or default_config (kExitOk). The exit code to end with, or nullopt with *out to run.
std::optional<int> handle_server_args(int argc, char** argv, std::string_view program,
                                      const std::string& default_config, ServerArgs* out);

// The cluster token a config names, or none when it allows unauthenticated service; a
// problem names the config file and the key ("meta.toml: token_file: ...").
Result<std::optional<net::ClusterToken>> load_server_token(bool allow_unauthenticated,
                                                           const std::string& token_file,
                                                           const std::string& config_file);
// Creates each directory (and its parents); kIoError naming the first that fails.
Status make_directories(const std::vector<std::string>& dirs);
// The machine's host name ("localhost" when it has none).
std::string machine_host_name();

// What a server's main has once it may serve: its stop signals, its config and its token.
template <class Config>
struct ServerSetup {
  std::optional<StopSignals> signals;
  Config config;
  std::optional<net::ClusterToken> token;
};

// The start of a server's main, on the main thread before any other exists: installs the
// stop signals (first, so every later thread inherits the mask), parses argv, loads the
// config (load(path) -> Result<Config>) and its token, sets the log level and makes the
// directories (dirs(config) -> Status). A problem is one "PROGRAM: ..." line on stderr; the
// exit code to end with (kExitUsage for arguments, config and token), or nullopt with *out.
template <class Config, class Load, class Dirs>
std::optional<int> prepare_server(int argc, char** argv, std::string_view program,
                                  const std::string& default_config, Load load, Dirs dirs,
                                  ServerSetup<Config>* out) {
  std::string name(program);
  Result<StopSignals> signals = StopSignals::install();
  if (!signals.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), signals.status().to_string().c_str());
    return kExitFailure;
  }
  out->signals.emplace(std::move(*signals));
  ServerArgs args;
  if (std::optional<int> done = handle_server_args(argc, argv, program, default_config, &args)) {
    return *done;
  }
  Result<Config> config = load(args.config_path);
  Result<std::optional<net::ClusterToken>> token =
      config.ok()
          ? load_server_token(config->allow_unauthenticated, config->token_file, args.config_path)
          : config.status();
  if (!token.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), std::string(token.status().message()).c_str());
    return kExitUsage;
  }
  Status logging = log_configure(LogConfig{.level = config->log_level});
  Status made = logging.ok() ? dirs(*config) : logging;
  if (!made.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), made.to_string().c_str());
    return kExitFailure;
  }
  out->config = std::move(*config);
  out->token = std::move(*token);
  return std::nullopt;
}

// The program once its config is loaded: start, serve until a stop signal, stop. Process
// has Task<Status> start() and Task<void> stop() (stop also after a failed start). Logs
// "PROGRAM cannot start: ...", "PROGRAM received SIGTERM, stopping", "PROGRAM stopped".
template <class Process>
Task<int> serve_until_signal(Process* process, StopSignals* signals, std::string program,
                             std::string module) {
  auto starting = process->start();
  Status started = co_await std::move(starting);
  if (!started.ok()) {
    MICA_LOG(Error, module, "{} cannot start: {}", program, started);
    auto stopping = process->stop();
    co_await std::move(stopping);
    co_return kExitFailure;
  }
  auto waiting = signals->wait();
  Result<int> signal = co_await std::move(waiting);
  if (signal.ok()) {
    MICA_LOG(Info, module, "{} received {}, stopping", program, signal_name(*signal));
  } else {
    MICA_LOG(Error, module, "{} cannot wait for signals ({}), stopping", program, signal.status());
  }
  auto stopping = process->stop();
  co_await std::move(stopping);
  MICA_LOG(Info, module, "{} stopped", program);
  co_return signal.ok() ? kExitOk : kExitFailure;
}

}  // namespace mica::apps
