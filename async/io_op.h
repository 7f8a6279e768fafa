// IoOp: one I/O operation described as data, the currency of the backend seam.
//
// The file, socket and poll APIs fill an IoOp and hand it to their executor's Backend,
// which interprets it (io_uring prepares an SQE; the simulator acts on its hosts' files
// and network). The IoOp lives in the awaiting coroutine frame (or in a long-lived owner
// for multishot operations) and must not move or die until on_complete has been called
// with more=false. on_complete runs on the owning executor thread, from the backend's
// reaping step, never inside start(): completions are queued, then resumed.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

#include "async/time.h"

namespace mica {

enum class IoOpcode : uint8_t {
  kNop,
  kRead,
  kWrite,
  kReadv,
  kWritev,
  kReadFixed,
  kWriteFixed,
  kFsync,
  kFdatasync,
  kFallocate,
  kOpen,
  kClose,
  kAccept,           // one connection
  kAcceptMultishot,  // a stream of connections (on_complete with more=true each time)
  kConnect,
  kSend,
  kRecv,
  kSendmsg,
  kRecvmsg,
  kShutdown,
  kPoll,
  // Names (appended, so the trace numbers of the opcodes above never change). Paths are
  // relative to the process's working directory, as AT_FDCWD makes them.
  kMkdir,   // path, mode
  kRename,  // path -> new_path, flags (renameat2 flags)
  kUnlink,  // path, flags (AT_REMOVEDIR removes an empty directory)
  kStatx,   // fd (AT_FDCWD or a dir/file fd), path, flags (AT_*), buffer: a struct statx
  // A driver command (IORING_OP_URING_CMD): fd, command_op, the kUringCmdBytes command area
  // at `command` (copied into the SQE by start(), so it need not outlive it), buffer/length
  // as the SQE's addr/len. Only on a backend with big_sqes() (128-byte SQEs).
  kUringCmd,
};

// Bytes of command data a 128-byte SQE carries for kUringCmd.
inline constexpr size_t kUringCmdBytes = 80;

struct IoOp {
  using CompleteFn = void (*)(IoOp* op, int32_t result, bool more);

  // Copyable as a description; a started op must not be copied or moved (IoAwaiter
  // asserts this).
  IoOpcode opcode = IoOpcode::kNop;
  int fd = -1;
  void* buffer = nullptr;
  uint32_t length = 0;
  uint64_t offset = 0;  // file offset; fallocate length travels in `length64`
  uint64_t length64 = 0;
  const iovec* iov = nullptr;
  uint32_t iov_count = 0;
  msghdr* message = nullptr;
  // open flags, send/recv flags, poll event mask, fallocate mode, shutdown how, AT_* flags
  // (unlink, statx), renameat2 flags.
  int flags = 0;
  uint32_t mode = 0;
  uint16_t buffer_index = 0;  // registered buffer for kReadFixed / kWriteFixed
  // File reads and writes: preadv2/pwritev2 flags; RWF_DSYNC makes a write durable when it
  // completes (the written range only, as O_DSYNC does), with no separate fdatasync.
  int rw_flags = 0;
  const char* path = nullptr;
  const char* new_path = nullptr;     // kRename
  const sockaddr* address = nullptr;  // kConnect
  socklen_t address_length = 0;
  uint32_t command_op = 0;          // kUringCmd: the driver's command number (sqe->cmd_op)
  const void* command = nullptr;    // kUringCmd: kUringCmdBytes of command data, or null
  TimePoint deadline = kNoDeadline;

  // Result: >= 0 success (bytes, fd, revents), < 0 a negated errno; -ETIME when the
  // deadline passed first, -ECANCELED when cancelled.
  CompleteFn on_complete = nullptr;
  void* context = nullptr;

  // Backend bookkeeping; opaque to callers.
  uint8_t backend_pending = 0;
  bool backend_timed_out = false;
  int32_t backend_result = 0;
  void* backend_slot = nullptr;
  int64_t backend_timeout[2] = {0, 0};  // io_uring's __kernel_timespec, stable until submit
};

}  // namespace mica
