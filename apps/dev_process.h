// Background processes of a dev cluster (`mica dev up` / `mica dev down`): started detached
// with their output in a log file, named by pid files, stopped only by those files.
//
// A pid file holds "PID START_TIME NAME": the start time (field 22 of /proc/PID/stat, in
// clock ticks since boot) tells the process `dev up` started from a later one that reuses
// its pid, so `dev down` never signals a stranger and never looks processes up by name.
// A zombie counts as gone (its parent, which is not `mica`, reaps it). free_ports() picks
// TCP ports on 127.0.0.1 that were free a moment ago, below the kernel's ephemeral range
// (an outgoing connection never takes them later) and from a random start, so two dev
// clusters brought up at once rarely probe the same ones. Blocking system calls; any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "async/status.h"

namespace mica::apps {

struct DevProcess {
  std::string name;  // "mgmtd", "storage-1", ...
  pid_t pid = 0;
  uint64_t start_time = 0;
};

// Starts argv[0] (an absolute path) in its own session with stdin /dev/null and stdout and
// stderr appended to log_path, no other descriptor inherited. Its pid and start time.
Result<DevProcess> spawn_detached(std::string name, const std::vector<std::string>& argv,
                                  const std::string& log_path);
// The start time of pid, or 0 when there is no such process or it is a zombie.
uint64_t process_start_time(pid_t pid);
bool dev_process_alive(const DevProcess& process);

Status write_pid_file(const std::string& path, const DevProcess& process);
// Every pid file of dir (sorted by name); unreadable ones are skipped.
std::vector<DevProcess> read_pid_files(const std::string& dir);

// count distinct ports, or kResourceExhausted when not enough are free.
Result<std::vector<int>> free_ports(size_t count);

// Sends SIGTERM to each live process, waits up to term_timeout for all to be gone, then
// SIGKILLs the rest and waits up to kill_timeout. How many needed SIGKILL; those still
// alive after it (which cannot happen short of an unkillable process) stay in *left.
size_t stop_dev_processes(const std::vector<DevProcess>& processes,
                          std::chrono::milliseconds term_timeout,
                          std::chrono::milliseconds kill_timeout, std::vector<DevProcess>* left);

// The folder the running program's binary lives in (/proc/self/exe).
Result<std::string> own_binary_dir();

}  // namespace mica::apps
