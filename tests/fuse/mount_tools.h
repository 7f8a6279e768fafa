// Running the real programs of the mount tests (fio, stress-ng, git, tar, sqlite3) from a
// test: a shell command line to completion with a deadline, its output kept for the failure
// message, and the fio job lines the verify tests share.
//
// Blocking calls on the test thread (tests/apps/process.h run(): the child is SIGKILLed past
// its deadline, so a hung program fails its test instead of hanging ctest).
#pragma once

#include <gtest/gtest.h>
#include <sys/statfs.h>

#include <chrono>
#include <string>
#include <thread>

#include "apps/dev_mount.h"
#include "tests/apps/process.h"
#include "tests/fuse/mount_fixture.h"

namespace mica::testing {

// `sh -c command` to completion within timeout; its output lands in prefix.out/.err.
inline RunResult shell(const std::string& command, const std::string& prefix,
                       std::chrono::milliseconds timeout) {
  return run({"/bin/sh", "-c", command}, prefix, timeout);
}

// Whether a program is on PATH (scripts/install-deps.sh installs every one the tests use).
inline bool have_program(const std::string& name) {
  RunResult found =
      run({"/bin/sh", "-c", "command -v " + name},
          "/tmp/mica-fuse-which-" + std::to_string(::getpid()), std::chrono::milliseconds(5000));
  return found.exit_code == 0;
}

inline std::string describe(const RunResult& result) {
  return "exit code " + std::to_string(result.exit_code) + "\n--- stdout\n" + result.out +
         "\n--- stderr\n" + result.err;
}

// The options of one fio verify job; `extra` adds or overrides (--direct=1, --rw=...).
inline std::string fio_job(const std::string& directory, const std::string& name,
                           const std::string& rw, const std::string& bs, uint64_t size_mib,
                           const std::string& extra) {
  return "fio --name=" + name + " --directory=" + directory + " --rw=" + rw + " --bs=" + bs +
         " --size=" + std::to_string(size_mib) + "M --verify=crc32c --do_verify=1" +
         " --verify_fatal=1 --ioengine=psync --end_fsync=1 --randrepeat=1 --norandommap=0 " + extra;
}

// Waits until path answers as a live FUSE mount (a second mica-fuse started by the test).
inline bool wait_live_mount(const std::string& path, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (apps::probe_mount(path) == apps::MountState::kLive) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace mica::testing
