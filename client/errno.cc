// The status -> errno table (client/errno.h).
#include "client/errno.h"

#include <cerrno>

namespace mica::client {

int status_to_errno(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kInvalidArgument:
      return EINVAL;
    case StatusCode::kNotFound:
      return ENOENT;
    case StatusCode::kAlreadyExists:
      return EEXIST;
    case StatusCode::kOutOfRange:
      return EFBIG;
    case StatusCode::kNoSpace:
      return ENOSPC;
    case StatusCode::kPermissionDenied:
      return EACCES;
    case StatusCode::kResourceExhausted:
      return ENOMEM;
    case StatusCode::kNotSupported:
      return EOPNOTSUPP;
    case StatusCode::kBusy:
      return EBUSY;
    case StatusCode::kNameTooLong:
      return ENAMETOOLONG;
    case StatusCode::kCancelled:
      return EINTR;
    case StatusCode::kTimedOut:
      return ETIMEDOUT;
    case StatusCode::kUnauthenticated:
      return EACCES;
    case StatusCode::kNotDirectory:
      return ENOTDIR;
    case StatusCode::kIsDirectory:
      return EISDIR;
    case StatusCode::kNotEmpty:
      return ENOTEMPTY;
    case StatusCode::kCrossDevice:
      return EXDEV;
    case StatusCode::kNotPermitted:
      return EPERM;
    case StatusCode::kLoop:
      return ELOOP;
    case StatusCode::kNoData:
      return ENODATA;
    case StatusCode::kStaleSession:
      return EBADF;
    case StatusCode::kTooBig:
      return E2BIG;
    case StatusCode::kTooManyLinks:
      return EMLINK;
    case StatusCode::kUnreachable:
    case StatusCode::kHostDown:
      return EHOSTUNREACH;
    case StatusCode::kConnectionRefused:
    case StatusCode::kConnectionReset:
    case StatusCode::kClosed:
      return ENOTCONN;
    // Storage refusals the client retries; reaching a caller means its deadline passed.
    case StatusCode::kStaleChain:
    case StatusCode::kNotHead:
    case StatusCode::kDirty:
    case StatusCode::kNotServing:
    case StatusCode::kWrongShard:
    case StatusCode::kStaleVersion:
      return EAGAIN;
    case StatusCode::kIoError:
    case StatusCode::kCorruption:
    case StatusCode::kInternal:
    case StatusCode::kProtocolError:
    case StatusCode::kChecksumMismatch:
      return EIO;
  }
  return EIO;
}

}  // namespace mica::client
