// UringTransport: FUSE over io_uring (kernel 6.14+, protocol 7.42+) on the runtime's rings.
//
// One queue per possible CPU (the kernel's count, /sys/devices/system/cpu/possible); queue q
// lives on executor q % runtime.size(), whose ring must have 128-byte SQEs
// (RuntimeOptions::big_sqes). Each queue has `depth` entries: a 288-byte UringReqHeader and
// a payload buffer the kernel copies requests into and replies out of. An entry is one
// request in flight: REGISTER hands it to the kernel, each completion with result 0 is a
// request (delivered to the RequestSink on that executor), and the Request's reply() fills
// the entry and submits COMMIT_AND_FETCH, whose completion is the entry's next request.
// Handlers never block the ring: every request runs as the dispatcher's task and commits
// when it is done, so `depth` requests per queue can wait on the network at once.
//
// Order (the kernel holds new requests once INIT advertises io_uring, until every queue has
// an entry): prepare() before the INIT reply (advertise only if it succeeded), reply INIT,
// then start(). The classic /dev/fuse reader stays: forgets, interrupts and notifications
// never use the ring. stop() waits until the kernel has ended every entry (-ENOTCONN after
// unmount or abort); call it after the connection is gone, before the runtime stops.
// Threads: prepare/start/stop from any thread (stop awaits on an executor); requests and
// replies on the queue's executor. Owned by the daemon; outlives start() until stop().
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "async/metrics.h"
#include "async/runtime.h"
#include "async/scope.h"
#include "async/status.h"
#include "async/task.h"
#include "fuse/protocol.h"
#include "fuse/request.h"

namespace mica::fuse {

// Entries per queue unless -o uring_depth=N says otherwise: requests in flight per CPU.
inline constexpr uint32_t kUringDefaultDepth = 64;
inline constexpr uint32_t kUringDepthMax = 1024;

class UringTransport {
 public:
  // Whether the kernel's INIT offers io_uring (INIT_EXT set and flags2 bit 9: the module
  // parameter enable_uring was on when the file system was mounted).
  static bool offered(const InitIn& in);

  // Allocates the queues and their buffers; submits nothing. payload_bytes must be at least
  // the kernel's max(8 KiB, max_write, max_pages * 4096) of the INIT reply. Fails when the
  // runtime's rings lack 128-byte SQEs or memory is short.
  static Result<std::unique_ptr<UringTransport>> prepare(Runtime& runtime, int dev_fd,
                                                         uint32_t depth, size_t payload_bytes,
                                                         RequestSink& sink);
  UringTransport(const UringTransport&) = delete;
  UringTransport& operator=(const UringTransport&) = delete;
  ~UringTransport();  // after stop() (or without start())

  // Submits every entry's REGISTER on its queue's executor (resubmitted on -EAGAIN/-EINTR).
  void start();
  // Waits until every entry has ended; entries end when the kernel says the connection is
  // gone (-ENOTCONN / -ECONNABORTED / -ECANCELED) or on an unexpected error (logged).
  Task<void> stop();

  size_t queues() const { return queues_.size(); }
  uint32_t depth() const { return depth_; }
  // Requests that arrived on the ring (all queues / one queue). Also the metric
  // mica_fuse_uring_requests_total{queue="q"}.
  uint64_t requests_received() const;
  uint64_t requests_received(size_t queue) const;
  // Entries still registered or serving a request (0 once stop() has returned).
  size_t entries_live() const { return live_.load(std::memory_order_acquire); }

  struct Entry;
  struct Queue;

 private:
  UringTransport(Runtime& runtime, int dev_fd, uint32_t depth, size_t payload_bytes,
                 RequestSink& sink);
  Status allocate(size_t queue_count);
  // One entry's life on its executor: REGISTER, then request / reply / COMMIT_AND_FETCH.
  static detail::DetachedTask serve(UringTransport* self, Entry* entry);
  void deliver(Entry* entry);
  void entry_ended(Entry* entry, int32_t result);

  friend class UringRequest;
  void commit(Entry* entry, int error, std::span<const std::span<const std::byte>> out);

  Runtime& runtime_;
  int dev_fd_;
  uint32_t depth_;
  size_t payload_bytes_;  // per entry, rounded up to whole pages
  RequestSink& sink_;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::atomic<size_t> live_{0};
  bool started_ = false;
};

// The kernel's number of possible CPUs (its ring queue count), from a list like "0-3,5".
Result<size_t> possible_cpus(std::string_view list);
Result<size_t> possible_cpus();

}  // namespace mica::fuse
