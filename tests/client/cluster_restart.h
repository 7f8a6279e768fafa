// Killing and restarting one process of a ClientCluster (tests/client/client_cluster.h), for
// the "a process killed and restarted costs latency, not an error" tests.
//
// kill_process SIGKILLs the process by the pid `dev up` wrote (never by name) and waits for it
// to be gone; start_process starts it again exactly as `dev up` did (apps/dev_cluster.cc):
// the binary next to `mica` (mica-meta for "meta", mica-storage for "storage-N",
// mica-mgmtd), `--config DIR/NAME.toml`, output appended to DIR/logs/NAME.log, and a new pid
// file, so `dev down` stops the new process. The restarted process is this test's child; a
// zombie left after `dev down` counts as gone and ends with the test binary. Blocking calls
// (a few milliseconds of polling); any thread, also from inside a test's coroutine.
#pragma once

#include <signal.h>

#include <chrono>
#include <string>
#include <thread>

#include "apps/dev_process.h"
#include "tests/client/client_cluster.h"

namespace mica::testing {

inline constexpr std::chrono::milliseconds kProcessGoneTimeout{10'000};

inline std::string dev_binary_of(const std::string& name) {
  std::string cli = MICA_CLI_BINARY;
  std::string dir = cli.substr(0, cli.rfind('/'));
  std::string program = name.starts_with("storage") ? "storage" : name;
  return dir + "/mica-" + program;
}

// SIGKILLs the cluster's process `name` ("meta", "storage-1", ...); false when it is not
// running or outlives kProcessGoneTimeout.
inline bool kill_process(const ClientCluster& cluster, const std::string& name) {
  for (const apps::DevProcess& process : cluster.processes()) {
    if (process.name != name || !apps::dev_process_alive(process)) continue;
    if (::kill(process.pid, SIGKILL) != 0) return false;
    auto until = std::chrono::steady_clock::now() + kProcessGoneTimeout;
    while (apps::dev_process_alive(process)) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }
  return false;
}

// Starts `name` again with the command line and config `dev up` used.
inline Status start_process(const ClientCluster& cluster, const std::string& name) {
  const std::string& dir = cluster.dir();
  Result<apps::DevProcess> started = apps::spawn_detached(
      name, {dev_binary_of(name), "--config", dir + "/" + name + ".toml"},
      dir + "/logs/" + name + ".log");
  if (!started.ok()) return started.status();
  return apps::write_pid_file(dir + "/pids/" + name + ".pid", *started);
}

}  // namespace mica::testing
