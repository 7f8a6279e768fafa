#include "async/status.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ostream>

namespace mica {

namespace detail {
void assert_failed(const char* expr, const char* file, int line, const char* why) {
  std::fprintf(stderr, "MICA_ASSERT failed: %s at %s:%d%s%s\n", expr, file, line, why ? ": " : "",
               why ? why : "");
  std::fflush(stderr);
  std::abort();
}
}  // namespace detail

namespace {

struct CodeName {
  StatusCode code;
  std::string_view name;
};

constexpr CodeName kCodeNames[] = {
    {StatusCode::kOk, "Ok"},
    {StatusCode::kInvalidArgument, "InvalidArgument"},
    {StatusCode::kNotFound, "NotFound"},
    {StatusCode::kAlreadyExists, "AlreadyExists"},
    {StatusCode::kOutOfRange, "OutOfRange"},
    {StatusCode::kNoSpace, "NoSpace"},
    {StatusCode::kIoError, "IoError"},
    {StatusCode::kPermissionDenied, "PermissionDenied"},
    {StatusCode::kResourceExhausted, "ResourceExhausted"},
    {StatusCode::kNotSupported, "NotSupported"},
    {StatusCode::kCorruption, "Corruption"},
    {StatusCode::kInternal, "Internal"},
    {StatusCode::kBusy, "Busy"},
    {StatusCode::kNameTooLong, "NameTooLong"},
    {StatusCode::kCancelled, "Cancelled"},
    {StatusCode::kTimedOut, "TimedOut"},
    {StatusCode::kClosed, "Closed"},
    {StatusCode::kHostDown, "HostDown"},
    {StatusCode::kConnectionRefused, "ConnectionRefused"},
    {StatusCode::kConnectionReset, "ConnectionReset"},
    {StatusCode::kUnreachable, "Unreachable"},
    {StatusCode::kProtocolError, "ProtocolError"},
    {StatusCode::kUnauthenticated, "Unauthenticated"},
    {StatusCode::kChecksumMismatch, "ChecksumMismatch"},
    {StatusCode::kStaleVersion, "StaleVersion"},
    {StatusCode::kStaleChain, "StaleChain"},
    {StatusCode::kNotHead, "NotHead"},
    {StatusCode::kDirty, "Dirty"},
    {StatusCode::kNotServing, "NotServing"},
    {StatusCode::kNotDirectory, "NotDirectory"},
    {StatusCode::kIsDirectory, "IsDirectory"},
    {StatusCode::kNotEmpty, "NotEmpty"},
    {StatusCode::kCrossDevice, "CrossDevice"},
    {StatusCode::kNotPermitted, "NotPermitted"},
    {StatusCode::kLoop, "Loop"},
    {StatusCode::kNoData, "NoData"},
    {StatusCode::kStaleSession, "StaleSession"},
    {StatusCode::kTooBig, "TooBig"},
    {StatusCode::kWrongShard, "WrongShard"},
    {StatusCode::kTooManyLinks, "TooManyLinks"},
    {StatusCode::kPastEnd, "PastEnd"},
};

}  // namespace

std::string_view status_code_name(StatusCode code) {
  for (const CodeName& entry : kCodeNames) {
    if (entry.code == code) return entry.name;
  }
  return "Unknown";
}

bool status_code_known(uint16_t code) {
  return code == 0 || status_code_name(static_cast<StatusCode>(code)) != "Unknown";
}

bool is_transport_failure(StatusCode code) {
  switch (code) {
    case StatusCode::kTimedOut:
    case StatusCode::kClosed:
    case StatusCode::kHostDown:
    case StatusCode::kConnectionRefused:
    case StatusCode::kConnectionReset:
    case StatusCode::kUnreachable:
      return true;
    default:
      return false;
  }
}

Status::Status(StatusCode code, std::string message) : code_(code) {
  if (!message.empty()) message_ = std::make_unique<std::string>(std::move(message));
}

Status::Status(const Status& other) : code_(other.code_) {
  if (other.message_) message_ = std::make_unique<std::string>(*other.message_);
}

Status& Status::operator=(const Status& other) {
  if (this != &other) {
    code_ = other.code_;
    message_ = other.message_ ? std::make_unique<std::string>(*other.message_) : nullptr;
  }
  return *this;
}

static StatusCode code_for_errno(int e) {
  switch (e) {
    case EINVAL:
    case EBADF:
    case EFAULT:
    case ENOTSOCK:
    case EISDIR:
    case ENOTDIR:
    case ENOTEMPTY:  // rmdir, or rename over a directory that still has names
      return StatusCode::kInvalidArgument;
    case ENOENT:
      return StatusCode::kNotFound;
    case EEXIST:
      return StatusCode::kAlreadyExists;
    case ERANGE:
    case EOVERFLOW:
    case EFBIG:
      return StatusCode::kOutOfRange;
    case ENOSPC:
    case EDQUOT:
      return StatusCode::kNoSpace;
    case EACCES:
    case EPERM:
      return StatusCode::kPermissionDenied;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOBUFS:
      return StatusCode::kResourceExhausted;
    case EOPNOTSUPP:
    case ENOSYS:
      return StatusCode::kNotSupported;
    case EAGAIN:
    case EBUSY:
      return StatusCode::kBusy;
    case ENAMETOOLONG:
      return StatusCode::kNameTooLong;
    case ECANCELED:
      return StatusCode::kCancelled;
    case ETIME:
    case ETIMEDOUT:
      return StatusCode::kTimedOut;
    case ECONNREFUSED:
      return StatusCode::kConnectionRefused;
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
      return StatusCode::kConnectionReset;
    case ENETUNREACH:
    case EHOSTUNREACH:
      return StatusCode::kUnreachable;
    default:
      return StatusCode::kIoError;
  }
}

Status Status::from_errno(int error_number, std::string_view context) {
  std::string message = context.empty()
                            ? std::string(std::strerror(error_number))
                            : fmt::format("{}: {}", context, std::strerror(error_number));
  return Status(code_for_errno(error_number), std::move(message));
}

std::ostream& operator<<(std::ostream& out, const Status& status) {
  return out << status.to_string();
}

std::string Status::to_string() const {
  if (!message_) return std::string(status_code_name(code_));
  return fmt::format("{}: {}", status_code_name(code_), *message_);
}

}  // namespace mica
