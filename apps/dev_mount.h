// The FUSE mount of a dev cluster (`mica dev up --mount MNT`, `mica dev down`): starts
// mica-fuse (found next to `mica`) against the cluster's mgmtd and token, waits until the
// mount answers, and unmounts it again — also a mount whose daemon died (ENOTCONN).
//
// The mount's daemon is the dev process named kDevFuseName (pids/fuse.pid, logs/fuse.log);
// DIR/kDevMountFile records the mount point so `dev down` and a later `dev up --mount` know
// what to unmount. Whether a mount answers is probed in a forked child (statfs + stat), so
// a daemon that hangs cannot hang `mica`: the probe has a deadline and is SIGKILLed past it
// (a FUSE request's waiter is killable). Blocking calls, on a thread that runs no executor.
#pragma once

#include <cerrno>
#include <chrono>
#include <string>

#include "apps/dev_process.h"
#include "async/status.h"

namespace mica::apps {

inline constexpr const char* kDevFuseName = "fuse";
inline constexpr const char* kDevMountFile = "mountpoint";
inline constexpr const char* kDevFuseBinary = "mica-fuse";
// statfs(2)'s f_type of a FUSE file system (the kernel's FUSE_SUPER_MAGIC).
inline constexpr long kFuseSuperMagic = 0x65735546;
// How long `dev up --mount` waits for the mount to answer; one probe's deadline.
inline constexpr std::chrono::milliseconds kDevMountTimeout{30'000};
inline constexpr std::chrono::milliseconds kDevProbeTimeout{5'000};

// Whether a call's errno says the mount's daemon is gone: ENOTCONN, or for a request the
// kernel had queued when the connection was torn down ECONNABORTED (on /dev/fuse) or
// ECANCELED (on a FUSE io_uring queue).
inline bool daemon_gone(int error) {
  return error == ENOTCONN || error == ECONNABORTED || error == ECANCELED;
}

enum class MountState {
  kNotFuse,  // a directory of another file system (nothing mounted on it)
  kLive,     // a FUSE mount that answers statfs and stat
  kDead,     // a FUSE mount whose daemon is gone (daemon_gone: ENOTCONN and kin)
  kHung,     // the probe did not finish within its deadline
  kMissing,  // no such directory (or another error: see the Status form)
};
const char* mount_state_name(MountState state);

// What the mount point answers now, probed in a child process within timeout.
MountState probe_mount(const std::string& path,
                       std::chrono::milliseconds timeout = kDevProbeTimeout);

// Unmounts path: umount2 as root (lazily — MNT_DETACH — when busy or when lazy is set),
// fusermount3 -u [-z] otherwise. Ok when nothing was mounted there.
Status unmount(const std::string& path, bool lazy);

struct DevMountPlan {
  std::string dir;         // the dev cluster's folder
  std::string mountpoint;  // absolute
  std::string binary;      // mica-fuse
  std::string mgmtd_address;
  std::string token_file;
};

// The mount point as an absolute, normal path; dir/mica-fuse next to `mica`.
Result<DevMountPlan> dev_mount_plan(const std::string& dir, const std::string& mountpoint,
                                    const std::string& mgmtd_address);

// Starts mica-fuse, records its pid file and DIR/mountpoint, and waits up to
// kDevMountTimeout until the mount answers. A stale dead mount on the mount point is
// lazily unmounted first; a live FUSE mount there is refused. On failure the daemon is
// stopped again and the error quotes the tail of its log.
Result<DevProcess> start_dev_mount(const DevMountPlan& plan);

// `dev down`'s half for the mount: unmounts DIR's recorded mount point (whatever state its
// daemon is in), stops the daemon by its pid file and removes both files. What it did, for
// the summary line ("" when there was no mount); an error when something survived.
Result<std::string> stop_dev_mount(const std::string& dir);

// `dev up --mount` on a running cluster: nothing to do when the mount answers at the same
// mount point; a dead or hung mount (its daemon killed) is unmounted lazily, its daemon
// stopped, and mica-fuse started again. The line to print.
Result<std::string> ensure_dev_mount(const DevMountPlan& plan);

}  // namespace mica::apps
