#include "apps/dev_process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

namespace mica::apps {
namespace {

// Ports are searched in [kPortLowest, min(kPortHighest, ephemeral low)).
constexpr int kPortLowest = 20000;
constexpr int kPortHighest = 32000;
constexpr std::chrono::milliseconds kStopPoll{20};

bool port_free(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(static_cast<uint16_t>(port));
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0;
  ::close(fd);
  return bound;
}

bool all_gone(const std::vector<DevProcess>& processes) {
  return std::none_of(processes.begin(), processes.end(), dev_process_alive);
}

bool wait_gone(const std::vector<DevProcess>& processes, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (!all_gone(processes)) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(kStopPoll);
  }
  return true;
}

}  // namespace

Result<DevProcess> spawn_detached(std::string name, const std::vector<std::string>& argv,
                                  const std::string& log_path) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // Its own session: a terminal's hangup or Ctrl-C in the shell that ran `mica dev up`
  // does not reach it; default signal dispositions and an empty mask, whatever ours are.
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int error = posix_spawn(&pid, args[0], &actions, &attributes, args.data(), environ);
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) return Status::from_errno(error, fmt::format("starting {}", argv[0]));
  DevProcess process{.name = std::move(name), .pid = pid, .start_time = process_start_time(pid)};
  return process;
}

uint64_t process_start_time(pid_t pid) {
  std::ifstream file(fmt::format("/proc/{}/stat", pid));
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 1));
  std::string state;
  fields >> state;
  if (state == "Z" || state == "X") return 0;
  std::string skipped;
  for (int field = 4; field < 22; ++field) fields >> skipped;  // fields 4..21
  uint64_t start = 0;
  fields >> start;
  return start;
}

bool dev_process_alive(const DevProcess& process) {
  return process.pid > 0 && process.start_time != 0 &&
         process_start_time(process.pid) == process.start_time;
}

Status write_pid_file(const std::string& path, const DevProcess& process) {
  std::string temp = path + ".tmp";
  {
    std::ofstream file(temp, std::ios::trunc);
    file << process.pid << " " << process.start_time << " " << process.name << "\n";
    if (!file.flush()) return Status(StatusCode::kIoError, fmt::format("writing {}", temp));
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) return Status::from_errno(errno, path);
  return Status::ok_status();
}

std::vector<DevProcess> read_pid_files(const std::string& dir) {
  std::vector<std::string> paths;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (entry.path().extension() == ".pid") paths.push_back(entry.path().string());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<DevProcess> out;
  for (const std::string& path : paths) {
    std::ifstream file(path);
    DevProcess process;
    if (file >> process.pid >> process.start_time >> process.name) out.push_back(process);
  }
  return out;
}

Result<std::vector<int>> free_ports(size_t count) {
  int ephemeral_low = 32768;  // the kernel default
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  int high = std::min(kPortHighest, ephemeral_low);
  int span = high - kPortLowest;
  uint32_t seed = 0;
  if (span <= 0 || ::getrandom(&seed, sizeof seed, 0) != sizeof seed) {
    return Status(StatusCode::kResourceExhausted, "no port range below the ephemeral ports");
  }
  std::vector<int> out;
  for (int i = 0; i < span && out.size() < count; ++i) {
    int port = kPortLowest + static_cast<int>((seed + static_cast<uint32_t>(i)) % span);
    if (port_free(port)) out.push_back(port);
  }
  if (out.size() < count) {
    return Status(
        StatusCode::kResourceExhausted,
        fmt::format("only {} free ports between {} and {}", out.size(), kPortLowest, high));
  }
  return out;
}

size_t stop_dev_processes(const std::vector<DevProcess>& processes,
                          std::chrono::milliseconds term_timeout,
                          std::chrono::milliseconds kill_timeout, std::vector<DevProcess>* left) {
  for (const DevProcess& process : processes) {
    if (dev_process_alive(process)) ::kill(process.pid, SIGTERM);
  }
  size_t killed = 0;
  if (!wait_gone(processes, term_timeout)) {
    for (const DevProcess& process : processes) {
      if (!dev_process_alive(process)) continue;
      ::kill(process.pid, SIGKILL);
      ++killed;
    }
    wait_gone(processes, kill_timeout);
  }
  for (const DevProcess& process : processes) {
    if (dev_process_alive(process)) left->push_back(process);
  }
  return killed;
}

Result<std::string> own_binary_dir() {
  std::error_code error;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return Status(StatusCode::kNotFound, "cannot read /proc/self/exe: " + error.message());
  return exe.parent_path().string();
}

}  // namespace mica::apps
