#include "async/io_awaiter.h"

namespace mica {

static const char* opcode_name(IoOpcode opcode) {
  switch (opcode) {
    case IoOpcode::kNop:
      return "nop";
    case IoOpcode::kRead:
    case IoOpcode::kReadv:
    case IoOpcode::kReadFixed:
      return "read";
    case IoOpcode::kWrite:
    case IoOpcode::kWritev:
    case IoOpcode::kWriteFixed:
      return "write";
    case IoOpcode::kFsync:
      return "fsync";
    case IoOpcode::kFdatasync:
      return "fdatasync";
    case IoOpcode::kFallocate:
      return "fallocate";
    case IoOpcode::kOpen:
      return "open";
    case IoOpcode::kClose:
      return "close";
    case IoOpcode::kAccept:
    case IoOpcode::kAcceptMultishot:
      return "accept";
    case IoOpcode::kConnect:
      return "connect";
    case IoOpcode::kSend:
    case IoOpcode::kSendmsg:
      return "send";
    case IoOpcode::kRecv:
    case IoOpcode::kRecvmsg:
      return "recv";
    case IoOpcode::kShutdown:
      return "shutdown";
    case IoOpcode::kPoll:
      return "poll";
    case IoOpcode::kMkdir:
      return "mkdir";
    case IoOpcode::kRename:
      return "rename";
    case IoOpcode::kUnlink:
      return "unlink";
    case IoOpcode::kStatx:
      return "statx";
    case IoOpcode::kUringCmd:
      return "uring_cmd";
  }
  return "io";
}

Status io_status(int32_t result, IoOpcode opcode) {
  MICA_ASSERT(result < 0);
  if (result == -ETIME)
    return Status(StatusCode::kTimedOut, fmt::format("{}: deadline passed", opcode_name(opcode)));
  if (result == -ECANCELED)
    return Status(StatusCode::kCancelled, fmt::format("{}: cancelled", opcode_name(opcode)));
  return Status::from_errno(-result, opcode_name(opcode));
}

}  // namespace mica
