// Child processes for the apps tests: start a program with its output in files, wait for a
// line in them, run one to completion, and stop one by its pid.
//
// Every child is started with posix_spawn (no shell), stdout and stderr redirected to files
// the test names; a Child object SIGKILLs and reaps its process if the test leaves early,
// so no stray process outlives a failed test. Every wait has a deadline: a child that outlives
// it is SIGKILLed, so a hung program fails its test instead of hanging ctest. Blocking calls
// (polling waitpid or a file every few milliseconds) on the test's thread; one thread.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace mica::testing {

inline std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// Starts argv[0] with stdout and stderr appended to the two files; -1 on failure.
inline pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path,
                   const std::string& err_path) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// The exit code of a reaped child, or 128 + the signal that ended it.
inline int exit_code_of(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

// How long stop() waits for a signalled child to end, and run() for a program to finish,
// before SIGKILL. Generous: a Debug or ASan build on a loaded machine is slow to shut down.
constexpr std::chrono::milliseconds kStopTimeout{10'000};
constexpr std::chrono::milliseconds kRunTimeout{30'000};

// Reaps pid, waiting up to timeout; past it SIGKILLs it and reaps it. Its exit code.
inline int reap_within(pid_t pid, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (true) {
    pid_t reaped = ::waitpid(pid, &status, WNOHANG);
    if (reaped == pid) return exit_code_of(status);
    if (reaped < 0) return -1;
    if (std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);  // SIGKILL cannot be ignored: this wait ends
  ::waitpid(pid, &status, 0);
  return exit_code_of(status);
}

// A running child; killed (SIGKILL) and reaped on destruction unless already reaped.
class Child {
 public:
  Child() = default;
  Child(std::vector<std::string> argv, std::string out_path, std::string err_path)
      : out_path_(std::move(out_path)), err_path_(std::move(err_path)) {
    pid_ = spawn(argv, out_path_, err_path_);
  }
  Child(Child&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)),
        out_path_(std::move(other.out_path_)),
        err_path_(std::move(other.err_path_)) {}
  Child& operator=(Child&& other) noexcept {
    kill_and_reap();
    pid_ = std::exchange(other.pid_, -1);
    out_path_ = std::move(other.out_path_);
    err_path_ = std::move(other.err_path_);
    return *this;
  }
  ~Child() { kill_and_reap(); }

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  std::string out() const { return read_file(out_path_); }
  std::string err() const { return read_file(err_path_); }

  // Sends sig and waits for the child to end, up to kStopTimeout, then SIGKILLs it; its
  // exit code (see exit_code_of), 128 + SIGKILL when it had to be killed.
  int stop(int sig) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int code = reap_within(pid_, kStopTimeout);
    pid_ = -1;
    return code;
  }

  // Reaps the child if it has ended; false then (and its exit code in *code), else true.
  bool alive(int* code = nullptr) {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return true;
    pid_ = -1;
    if (code) *code = exit_code_of(status);
    return false;
  }

  // Waits until the child's stderr holds `needle`, up to timeout; the text then, or nullopt.
  std::optional<std::string> wait_for_err(const std::string& needle,
                                          std::chrono::milliseconds timeout) const {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      std::string text = err();
      if (text.find(needle) != std::string::npos) return text;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::nullopt;
  }

 private:
  void kill_and_reap() {
    if (pid_ > 0) stop(SIGKILL);
  }
  pid_t pid_ = -1;
  std::string out_path_;
  std::string err_path_;
};

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv to completion, SIGKILLing it past timeout (exit code 128 + SIGKILL then); out
// and err go through files named by prefix.
inline RunResult run(const std::vector<std::string>& argv, const std::string& prefix,
                     std::chrono::milliseconds timeout = kRunTimeout) {
  std::string out = prefix + ".out", err = prefix + ".err";
  ::unlink(out.c_str());
  ::unlink(err.c_str());
  pid_t pid = spawn(argv, out, err);
  RunResult result;
  if (pid <= 0) return result;
  result.exit_code = reap_within(pid, timeout);
  result.out = read_file(out);
  result.err = read_file(err);
  return result;
}

// A TCP port on 127.0.0.1 that was free a moment ago, other than not_this, chosen below the
// kernel's ephemeral range (ip_local_port_range) so that no other process's bind to port 0
// can take it while a test restarts a server on it. Searched from a pid-seeded start so
// that concurrent tests rarely probe the same ports; 0 when none is free.
inline int free_port_below_ephemeral(int not_this = 0) {
  constexpr int kLowest = 20000, kHighest = 32000;  // [kLowest, kHighest)
  int ephemeral_low = 32768;                        // the kernel default
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  int high = std::min(kHighest, ephemeral_low);
  if (high <= kLowest) return 0;
  int span = high - kLowest;
  int start = static_cast<int>((static_cast<unsigned>(::getpid()) * 7919u) % span);
  for (int i = 0; i < span; ++i) {
    int port = kLowest + (start + i) % span;
    if (port == not_this) continue;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(static_cast<uint16_t>(port));
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0;
    ::close(fd);
    if (bound) return port;
  }
  return 0;
}

}  // namespace mica::testing
