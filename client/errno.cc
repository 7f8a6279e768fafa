// The status -> errno table (client/errno.h).
#include "client/errno.h"

#include <cerrno>

namespace mica::client {

namespace {

struct CodeErrno {
  StatusCode code;
  int error_number;
};

// Retryable storage and routing refusals (kStaleChain ... kWrongShard) reach a caller only
// when its deadline passed while retrying: EAGAIN says "try again".
constexpr CodeErrno kTable[] = {
    {StatusCode::kOk, 0},
    {StatusCode::kInvalidArgument, EINVAL},
    {StatusCode::kNotFound, ENOENT},
    {StatusCode::kAlreadyExists, EEXIST},
    {StatusCode::kOutOfRange, EFBIG},
    {StatusCode::kNoSpace, ENOSPC},
    {StatusCode::kPermissionDenied, EACCES},
    {StatusCode::kResourceExhausted, ENOMEM},
    {StatusCode::kNotSupported, EOPNOTSUPP},
    {StatusCode::kBusy, EBUSY},
    {StatusCode::kNameTooLong, ENAMETOOLONG},
    {StatusCode::kCancelled, EINTR},
    {StatusCode::kTimedOut, ETIMEDOUT},
    {StatusCode::kUnauthenticated, EACCES},
    {StatusCode::kNotDirectory, ENOTDIR},
    {StatusCode::kIsDirectory, EISDIR},
    {StatusCode::kNotEmpty, ENOTEMPTY},
    {StatusCode::kCrossDevice, EXDEV},
    {StatusCode::kNotPermitted, EPERM},
    {StatusCode::kLoop, ELOOP},
    {StatusCode::kNoData, ENODATA},
    {StatusCode::kStaleSession, EBADF},
    {StatusCode::kTooBig, E2BIG},
    {StatusCode::kTooManyLinks, EMLINK},
    {StatusCode::kPastEnd, ENXIO},
    {StatusCode::kUnreachable, EHOSTUNREACH},
    {StatusCode::kHostDown, EHOSTUNREACH},
    {StatusCode::kConnectionRefused, ENOTCONN},
    {StatusCode::kConnectionReset, ENOTCONN},
    {StatusCode::kClosed, ENOTCONN},
    {StatusCode::kStaleChain, EAGAIN},
    {StatusCode::kNotHead, EAGAIN},
    {StatusCode::kDirty, EAGAIN},
    {StatusCode::kNotServing, EAGAIN},
    {StatusCode::kWrongShard, EAGAIN},
    {StatusCode::kStaleVersion, EAGAIN},
    {StatusCode::kIoError, EIO},
    {StatusCode::kCorruption, EIO},
    {StatusCode::kInternal, EIO},
    {StatusCode::kProtocolError, EIO},
    {StatusCode::kChecksumMismatch, EIO},
};

}  // namespace

bool status_has_errno(StatusCode code) {
  for (const CodeErrno& entry : kTable) {
    if (entry.code == code) return true;
  }
  return false;
}

int status_to_errno(StatusCode code) {
  for (const CodeErrno& entry : kTable) {
    if (entry.code == code) return entry.error_number;
  }
  return EIO;  // a code this table does not know yet is an I/O error, never success
}

}  // namespace mica::client
