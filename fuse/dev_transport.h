// DevTransport: the classic FUSE transport — requests read from /dev/fuse through the
// runtime, replies written back to the fd that read them.
//
// One lane per executor: lane 0 reads the mounted session fd itself, lane i > 0 a clone of
// it (FUSE_DEV_IOC_CLONE) so each executor has its own fd and its own kernel processing
// list. A lane's read loop (run(), a task on that lane's executor) keeps one read in flight;
// each request arrives in a pooled buffer of buffer_bytes (max_write plus headers), becomes a
// Request and goes to the RequestSink on that executor. A reply is one synchronous writev on
// the lane's fd (a /dev/fuse write only copies into the waiting kernel request, it never
// blocks), so Request::reply never suspends. Every fd is non-blocking (the transport sets
// O_NONBLOCK on the session fd): a read finding the shared input queue empty answers EAGAIN
// and the lane polls for POLLIN before it reads again, so no read ever blocks an executor's
// thread. A read answering ENODEV means the file system was unmounted: the loop ends.
// ENOENT (the request was interrupted and dropped before we read it) and EINTR read again.
//
// Ownership: the transport owns the clone fds (not the session fd) and the buffer pools; it
// must outlive every Request it delivered and every run() task. Threads: create() on any
// thread before the runtime runs the loops; run(i) on executor i; notify() from any
// executor (a write to the session fd, safe from any thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "async/runtime.h"
#include "async/status.h"
#include "async/task.h"
#include "fuse/request.h"

namespace mica::fuse {

struct DevTransportOptions {
  // Bytes of one request buffer: at least max_write + 4 KiB of headers and names, and at
  // least max_pages * 4096 (the buffer is also the reply area).
  size_t buffer_bytes = (size_t{1} << 20) + 4096;
  // Requests one lane holds at once; the lane stops reading while it is at this bound.
  uint32_t requests_in_flight_max = 256;
};

class DevTransport {
 public:
  // lanes: how many executors read (lane i runs on runtime executor i). Opens the clones.
  static Result<std::unique_ptr<DevTransport>> create(int session_fd, size_t lanes,
                                                      DevTransportOptions options,
                                                      RequestSink& sink);
  ~DevTransport();
  DevTransport(const DevTransport&) = delete;
  DevTransport& operator=(const DevTransport&) = delete;

  // Lane `lane`'s read loop: delivers requests until the mount goes away (or stop()). Runs
  // on the lane's executor; returns once the fd reports ENODEV or a fatal error.
  Task<Status> run(size_t lane);
  // The kernel's protocol minor, once INIT told it (op_in sizes may depend on it).
  void set_kernel_minor(uint32_t minor) { kernel_minor_ = minor; }
  // Writes a notification (codec.h build_inval_*) to the session fd; 0 or -errno (-ENOENT:
  // the kernel had nothing cached to drop).
  int notify(std::span<const std::byte> message);
  int session_fd() const { return session_fd_; }
  uint64_t requests_received() const;

 private:
  struct Lane;
  class DevRequest;
  DevTransport(int session_fd, DevTransportOptions options, RequestSink& sink);
  Task<Status> read_one(Lane* lane, bool* stop);

  int session_fd_;
  DevTransportOptions options_;
  RequestSink* sink_;
  uint32_t kernel_minor_ = kKernelMinorVersion;
  std::vector<std::unique_ptr<Lane>> lanes_;
};

}  // namespace mica::fuse
