// uring_cmd: one driver command (IORING_OP_URING_CMD) on the current executor's ring.
//
// The way a driver speaks through io_uring (FUSE over io_uring registers and commits its
// queue entries so). The ring must have 128-byte SQEs (RuntimeOptions::big_sqes; check
// Executor::current()->backend().big_sqes() first). The command area is copied into the
// SQE when the op starts; `addr`/`len` are the driver's (FUSE: an iovec array and its
// count) and must stay valid as long as the driver says. The awaiter is a named local of
// the awaiting coroutine; after co_await its result() is the raw CQE result (a driver's
// command may complete much later than it starts: a FUSE REGISTER completes when the
// kernel has a request for it). Thread: the executor that awaits it.
#pragma once

#include <cstdint>
#include <cstring>

#include "async/io_awaiter.h"

namespace mica {

struct UringCommand {
  int fd = -1;
  uint32_t op = 0;                       // sqe->cmd_op
  const void* area = nullptr;            // kUringCmdBytes of command data, or null (zeros)
  void* addr = nullptr;                  // sqe->addr
  uint32_t len = 0;                      // sqe->len
};

inline IoAwaiter<uint32_t> uring_cmd(const UringCommand& command) {
  IoAwaiter<uint32_t> awaiter;
  IoOp& op = awaiter.op();
  op.opcode = IoOpcode::kUringCmd;
  op.fd = command.fd;
  op.command_op = command.op;
  op.command = command.area;
  op.buffer = command.addr;
  op.length = command.len;
  return awaiter;
}

}  // namespace mica
