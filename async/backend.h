// Backend: the I/O seam between Mica's code and the world.
//
// Everything that is not pure computation (clock, randomness, files, sockets, polling of
// foreign fds) goes through the Backend of the executor a task runs on. Two implementations exist:
// UringBackend (io_uring, real) and SimBackend (one simulated host of a SimWorld: virtual
// time, seeded faults). Asynchronous work is an IoOp: start() begins it and the backend
// later calls op->on_complete from its reaping step. Quick, never-blocking socket set-up
// calls (socket, bind+listen, options, addresses) and statvfs (see below) are synchronous
// methods.
//
// Thread rule: a backend belongs to one executor thread; only wake() may be called from
// any thread. No method suspends; wait() may block the calling thread.
#pragma once

#include <sys/uio.h>

#include <span>
#include <string>

#include "async/io_op.h"
#include "async/socket_address.h"
#include "async/status.h"
#include "async/time.h"

namespace mica {

// What statvfs reports of the file system that holds a path.
struct FsSpace {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;  // free to an unprivileged writer (f_bavail)
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual TimePoint now() = 0;
  // 64 random bits for what a peer must not guess (memory region keys): the kernel's
  // getrandom(2) on io_uring, the world's seeded generator in the simulator, so a simulated
  // run still replays from its seed. Never blocks (the kernel's pool is ready after boot).
  virtual uint64_t random_u64() = 0;

  // Begins op. Its completion is delivered later through op->on_complete.
  virtual void start(IoOp* op) = 0;
  // Asks op to finish early with -ECANCELED; op still completes through on_complete.
  virtual void cancel(IoOp* op) = 0;

  // Hands what start() queued to the kernel now, without waiting or reaping. Cheap when
  // nothing is queued.
  virtual void submit() {}

  // Submits what start() queued and delivers completions. Blocks until at least one
  // completion or wake(), but not past `until` (kNoDeadline: no bound; a time in the past:
  // do not block).
  virtual void wait(TimePoint until) = 0;
  // Interrupts a blocked wait(); safe from any thread.
  virtual void wake() = 0;

  // Socket set-up. Returned fds belong to the caller, who closes them with kClose or
  // close_now().
  virtual Result<int> open_socket(int family) = 0;  // a non-blocking TCP stream socket
  virtual Result<int> listen(const SocketAddress& address, int backlog) = 0;
  virtual Result<SocketAddress> local_address(int fd) = 0;
  virtual Result<SocketAddress> peer_address(int fd) = 0;
  virtual Status set_socket_option(int fd, int level, int name, int value) = 0;
  // Closes fd synchronously (for destructors, which cannot await).
  virtual void close_now(int fd) = 0;

  // Space of the file system holding path. Synchronous because io_uring has no statvfs op
  // and the call never waits for a disk on a local file system: it copies the superblock's
  // in-memory free counters (about a microsecond). A trip through the blocking pool would
  // cost two thread hand-offs for that, and would force every caller (the chunk engine's
  // space report and growth check) to suspend.
  virtual Result<FsSpace> statvfs(const std::string& path) = 0;

  // Whether the ring has 128-byte SQEs (IORING_SETUP_SQE128), which kUringCmd needs.
  // The simulator has none: its kUringCmd completes with -EOPNOTSUPP.
  virtual bool big_sqes() const { return false; }

  // Registers buffers for kReadFixed / kWriteFixed; index i names buffers[i]. Replaces any
  // earlier registration. The memory must outlive the registration.
  virtual Status register_buffers(std::span<const iovec> buffers) = 0;
};

}  // namespace mica
