#include "apps/dev_mount.h"

#include <errno.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <thread>

namespace mica::apps {
namespace {

namespace fs = std::filesystem;

constexpr std::chrono::milliseconds kMountPoll{50};
constexpr std::chrono::milliseconds kFuseStopTimeout{10'000};
constexpr std::chrono::milliseconds kFuseKillTimeout{5'000};
constexpr size_t kLogTailLines = 12;
// The probe child's exit codes.
constexpr int kProbeLive = 0;
constexpr int kProbeNotFuse = 1;
constexpr int kProbeDead = 2;
constexpr int kProbeMissing = 3;

std::string pid_path(const std::string& dir) {
  return fmt::format("{}/pids/{}.pid", dir, kDevFuseName);
}
std::string log_path(const std::string& dir) {
  return fmt::format("{}/logs/{}.log", dir, kDevFuseName);
}
std::string mount_file(const std::string& dir) {
  return dir + "/" + kDevMountFile;
}

std::string log_tail(const std::string& path) {
  std::ifstream file(path);
  std::deque<std::string> lines;
  for (std::string line; std::getline(file, line);) {
    lines.push_back(line);
    if (lines.size() > kLogTailLines) lines.pop_front();
  }
  std::string out;
  for (const std::string& line : lines) out += "\n  | " + line;
  return out.empty() ? "\n  | (the log is empty)" : out;
}

// Waits for a child up to timeout; SIGKILLs it past it. Its exit code, -1 when killed.
int wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= until) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Status run_fusermount(const std::string& path, bool lazy) {
  std::vector<std::string> argv{"/usr/bin/fusermount3", lazy ? "-uz" : "-u", path};
  Result<DevProcess> child = spawn_detached("fusermount3", argv, "/dev/null");
  if (!child.ok()) return child.status();
  int code = wait_child(child->pid, kDevProbeTimeout);
  if (code != 0) {
    return Status(StatusCode::kIoError,
                  fmt::format("fusermount3 {} {} exited with code {}", argv[1], path, code));
  }
  return Status::ok_status();
}

DevProcess read_fuse_process(const std::string& dir) {
  for (const DevProcess& process : read_pid_files(dir + "/pids")) {
    if (process.name == kDevFuseName) return process;
  }
  return DevProcess{};
}

std::string read_mountpoint(const std::string& dir) {
  std::ifstream file(mount_file(dir));
  std::string line;
  std::getline(file, line);
  return line;
}

void stop_fuse(const std::string& dir, const DevProcess& process) {
  std::vector<DevProcess> left;
  if (dev_process_alive(process)) {
    stop_dev_processes({process}, kFuseStopTimeout, kFuseKillTimeout, &left);
  }
  ::waitpid(process.pid, nullptr, WNOHANG);  // our child when this `mica` started it
  if (left.empty()) {
    std::error_code error;
    fs::remove(pid_path(dir), error);
  }
}

// Clears whatever FUSE mount is on path: a dead or hung one lazily.
Status clear_mount(const std::string& path) {
  MountState state = probe_mount(path);
  if (state == MountState::kDead || state == MountState::kHung) return unmount(path, true);
  if (state == MountState::kLive) return unmount(path, false);
  return Status::ok_status();
}

Status wait_mounted(const DevMountPlan& plan, const DevProcess& process) {
  auto until = std::chrono::steady_clock::now() + kDevMountTimeout;
  MountState state = MountState::kNotFuse;
  while (true) {
    int status = 0;
    if (::waitpid(process.pid, &status, WNOHANG) == process.pid) {
      int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return Status(StatusCode::kHostDown,
                    fmt::format("mica-fuse exited with code {} before {} answered; {}:{}", code,
                                plan.mountpoint, log_path(plan.dir), log_tail(log_path(plan.dir))));
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    state = probe_mount(plan.mountpoint, std::min(left, kDevProbeTimeout));
    if (state == MountState::kLive) return Status::ok_status();
    std::this_thread::sleep_for(kMountPoll);
  }
  return Status(
      StatusCode::kTimedOut,
      fmt::format("{} did not answer as a FUSE mount within {} s (it is {}); {}:{}",
                  plan.mountpoint, kDevMountTimeout.count() / 1000, mount_state_name(state),
                  log_path(plan.dir), log_tail(log_path(plan.dir))));
}

}  // namespace

const char* mount_state_name(MountState state) {
  switch (state) {
    case MountState::kNotFuse:
      return "not a FUSE mount";
    case MountState::kLive:
      return "a live FUSE mount";
    case MountState::kDead:
      return "a dead FUSE mount (ENOTCONN)";
    case MountState::kHung:
      return "a FUSE mount that does not answer";
    case MountState::kMissing:
      return "missing";
  }
  return "?";
}

MountState probe_mount(const std::string& path, std::chrono::milliseconds timeout) {
  pid_t pid = ::fork();
  if (pid < 0) return MountState::kHung;
  if (pid == 0) {
    // The child: only async-signal-safe calls (the parent may have other threads).
    struct statfs fs_info;
    if (::statfs(path.c_str(), &fs_info) != 0) {
      ::_exit(daemon_gone(errno) ? kProbeDead : kProbeMissing);
    }
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) ::_exit(daemon_gone(errno) ? kProbeDead : kProbeMissing);
    ::_exit(static_cast<long>(fs_info.f_type) == kFuseSuperMagic ? kProbeLive : kProbeNotFuse);
  }
  switch (wait_child(pid, timeout)) {
    case kProbeLive:
      return MountState::kLive;
    case kProbeNotFuse:
      return MountState::kNotFuse;
    case kProbeDead:
      return MountState::kDead;
    case kProbeMissing:
      return MountState::kMissing;
    default:
      return MountState::kHung;
  }
}

Status unmount(const std::string& path, bool lazy) {
  if (::geteuid() != 0) return run_fusermount(path, lazy);
  if (::umount2(path.c_str(), lazy ? MNT_DETACH : 0) == 0) return Status::ok_status();
  if (errno == EINVAL || errno == ENOENT) return Status::ok_status();  // nothing mounted
  if (errno == EBUSY && !lazy && ::umount2(path.c_str(), MNT_DETACH) == 0) {
    return Status::ok_status();
  }
  return Status::from_errno(errno, fmt::format("unmounting {}", path));
}

Result<DevMountPlan> dev_mount_plan(const std::string& dir, const std::string& mountpoint,
                                    const std::string& mgmtd_address) {
  std::error_code error;
  fs::path absolute = fs::absolute(mountpoint, error);
  if (error) return Status(StatusCode::kInvalidArgument, "--mount: " + error.message());
  Result<std::string> bin = own_binary_dir();
  if (!bin.ok()) return bin.status();
  DevMountPlan plan{.dir = dir,
                    .mountpoint = absolute.lexically_normal().string(),
                    .binary = *bin + "/" + kDevFuseBinary,
                    .mgmtd_address = mgmtd_address,
                    .token_file = dir + "/cluster.token"};
  while (plan.mountpoint.size() > 1 && plan.mountpoint.back() == '/') plan.mountpoint.pop_back();
  if (::access(plan.binary.c_str(), X_OK) != 0) {
    return Status(
        StatusCode::kNotFound,
        fmt::format("{} is missing: build it next to mica (ninja mica-fuse)", plan.binary));
  }
  return plan;
}

Result<DevProcess> start_dev_mount(const DevMountPlan& plan) {
  std::error_code error;
  fs::create_directories(plan.mountpoint, error);  // fails on a dead mount: probed below
  MountState before = probe_mount(plan.mountpoint);
  if (before == MountState::kLive) {
    return Status(StatusCode::kAlreadyExists,
                  fmt::format("{} is already a live FUSE mount; unmount it first (fusermount3 "
                              "-u {})",
                              plan.mountpoint, plan.mountpoint));
  }
  if (before == MountState::kDead || before == MountState::kHung) {
    RETURN_IF_ERROR(unmount(plan.mountpoint, true));
  }
  if (!fs::is_directory(plan.mountpoint, error)) {
    return Status(StatusCode::kNotFound,
                  fmt::format("the mount point {} is not a directory", plan.mountpoint));
  }
  {
    std::ofstream file(mount_file(plan.dir), std::ios::trunc);
    file << plan.mountpoint << "\n";
    if (!file.flush()) return Status(StatusCode::kIoError, "writing " + mount_file(plan.dir));
  }
  std::vector<std::string> argv{plan.binary,    "--mgmtd",       plan.mgmtd_address,
                                "--token-file", plan.token_file, plan.mountpoint};
  Result<DevProcess> process = spawn_detached(kDevFuseName, argv, log_path(plan.dir));
  if (!process.ok()) return process.status();
  Status status = write_pid_file(pid_path(plan.dir), *process);
  if (status.ok()) status = wait_mounted(plan, *process);
  if (!status.ok()) {
    stop_fuse(plan.dir, *process);
    Status cleared = clear_mount(plan.mountpoint);
    (void)cleared;  // the first error is the one to report
    fs::remove(mount_file(plan.dir), error);
    return status;
  }
  return process;
}

Result<std::string> stop_dev_mount(const std::string& dir) {
  std::string mountpoint = read_mountpoint(dir);
  DevProcess process = read_fuse_process(dir);
  if (mountpoint.empty() && process.pid == 0) return std::string();
  Status cleared = mountpoint.empty() ? Status::ok_status() : clear_mount(mountpoint);
  bool was_running = dev_process_alive(process);
  if (process.pid != 0) stop_fuse(dir, process);
  if (dev_process_alive(process)) {
    return Status(StatusCode::kBusy,
                  fmt::format("mica-fuse (pid {}) survived SIGKILL", process.pid));
  }
  if (!cleared.ok()) return cleared;
  std::error_code error;
  fs::remove(mount_file(dir), error);
  if (mountpoint.empty()) return std::string("stopped mica-fuse");
  return fmt::format("unmounted {}{}", mountpoint,
                     was_running ? "" : " (its mica-fuse had already ended)");
}

Result<std::string> ensure_dev_mount(const DevMountPlan& plan) {
  std::string recorded = read_mountpoint(plan.dir);
  DevProcess process = read_fuse_process(plan.dir);
  bool alive = dev_process_alive(process);
  if (alive && !recorded.empty() && recorded != plan.mountpoint) {
    return Status(StatusCode::kAlreadyExists,
                  fmt::format("the dev cluster in {} is already mounted at {}; `mica dev down "
                              "--dir {}` first to mount it elsewhere",
                              plan.dir, recorded, plan.dir));
  }
  MountState state = probe_mount(plan.mountpoint);
  if (alive && state == MountState::kLive) {
    return fmt::format(
        "mica dev up: a dev cluster is already running in {}, mounted at {} "
        "(nothing to do)\n",
        plan.dir, plan.mountpoint);
  }
  // Its daemon died or hangs (or it never was mounted): start over on this mount point.
  if (process.pid != 0) stop_fuse(plan.dir, process);
  if (!recorded.empty() && recorded != plan.mountpoint) RETURN_IF_ERROR(clear_mount(recorded));
  RETURN_IF_ERROR(clear_mount(plan.mountpoint));
  Result<DevProcess> started = start_dev_mount(plan);
  if (!started.ok()) return started.status();
  return fmt::format(
      "mica dev up: the dev cluster in {} was running; {} was {}, mica-fuse "
      "(pid {}) mounts it again\n",
      plan.dir, plan.mountpoint, mount_state_name(state), started->pid);
}

}  // namespace mica::apps
