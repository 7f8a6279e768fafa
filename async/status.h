// Status and Result<T>: errors as values, the one error model of every Mica module.
//
// A Status is a code from one closed list (StatusCode) plus an optional message. Codes are
// grouped in numeric ranges per module so a code says where it was born; the mapping to
// errno lives in exactly one place, the FUSE adapter. An ok Status costs one word and no
// allocation. Result<T> holds either a T or a non-ok Status. CO_TRY / CO_TRY_ASSIGN
// propagate a failure out of a coroutine returning Task<Result<U>> or Task<Status>.
// Value types: thread-compatible, never suspend.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include "async/assert.h"

namespace mica {

// The closed list. Ranges: 0 ok, 1-99 general, 100-199 async, 200-299 net, 300-399 chunk,
// 400-499 craq, 500-599 meta, 600-699 client and fuse. Append only: codes travel on the wire.
enum class StatusCode : uint16_t {
  kOk = 0,
  // general
  kInvalidArgument = 1,
  kNotFound = 2,
  kAlreadyExists = 3,
  kOutOfRange = 4,
  kNoSpace = 5,
  kIoError = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kNotSupported = 9,
  kCorruption = 10,
  kInternal = 11,
  kBusy = 12,
  kNameTooLong = 13,
  // async
  kCancelled = 100,
  kTimedOut = 101,
  kClosed = 102,
  kHostDown = 103,
  // net
  kConnectionRefused = 200,
  kConnectionReset = 201,
  kUnreachable = 202,
  kProtocolError = 203,
  kUnauthenticated = 204,  // the peer does not hold the cluster token (net/cluster_token.h)
  // chunk
  kChecksumMismatch = 300,
  kStaleVersion = 301,
  // craq
  kStaleChain = 400,   // the request's chain version is not the target's: refresh routing
  kNotHead = 401,      // an update reached a target that is not its chain's head
  kDirty = 402,        // the replica holds an uncommitted version it cannot serve: retry
  kNotServing = 403,   // the target is not serving (syncing, offline, or in no such chain)
  // meta (POSIX results; the one status -> errno mapping lives in client/)
  kNotDirectory = 500,   // ENOTDIR: a path component or an operand is not a directory
  kIsDirectory = 501,    // EISDIR: the operation needs a non-directory
  kNotEmpty = 502,       // ENOTEMPTY: the directory has entries
  kCrossDevice = 503,    // EXDEV
  kNotPermitted = 504,   // EPERM (kPermissionDenied is EACCES)
  kLoop = 505,           // ELOOP: too many symbolic links
  kNoData = 506,         // ENODATA: no such extended attribute
  kStaleSession = 507,   // the session (open handle) ended or never existed
  kTooBig = 508,         // E2BIG: an extended attribute value past the limit
  kWrongShard = 509,     // the process does not serve the inode's shard: refresh routing
  kTooManyLinks = 510,   // EMLINK
  kPastEnd = 511,        // ENXIO: lseek SEEK_DATA/SEEK_HOLE at or past the end of a file
};

// Stable, human-readable name of a code ("TimedOut").
std::string_view status_code_name(StatusCode code);
// False for a number that is not in the list (read off the wire from a newer peer, say).
bool status_code_known(uint16_t code);
// True for the codes by which a call learns that its peer did not answer: a timeout, a closed,
// reset or refused connection, no route, a crashed host. The request may or may not have been
// served; whether to retry is the caller's choice (every update carries an id for that).
bool is_transport_failure(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  explicit Status(StatusCode code) : code_(code) {}
  Status(StatusCode code, std::string message);
  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status ok_status() { return Status(); }
  // Maps a positive errno value to the closest code, keeping strerror as the message.
  static Status from_errno(int error_number, std::string_view context = {});

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  std::string_view message() const { return message_ ? std::string_view(*message_) : ""; }
  // "TimedOut: read of /x: deadline passed".
  std::string to_string() const;

  // The macros below treat Status as a Result<void>.
  Status&& status() && { return std::move(*this); }
  const Status& status() const& { return *this; }

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message() == b.message();
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::unique_ptr<std::string> message_;
};

// For test output and logs.
std::ostream& operator<<(std::ostream& out, const Status& status);

template <class T>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  Result(const T& value) : ok_(true) { new (&value_) T(value); }
  Result(T&& value) : ok_(true) { new (&value_) T(std::move(value)); }
  template <class U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, Status> &&
           !std::is_same_v<std::decay_t<U>, Result>) Result(U&& value)
      : ok_(true) {
    new (&value_) T(std::forward<U>(value));
  }
  Result(Status status) : ok_(false) {
    MICA_ASSERT_MSG(!status.ok(), "a Result without a value needs a failed Status");
    new (&status_) Status(std::move(status));
  }
  Result(const Result& other) : ok_(other.ok_) {
    if (ok_)
      new (&value_) T(other.value_);
    else
      new (&status_) Status(other.status_);
  }
  Result(Result&& other) noexcept : ok_(other.ok_) {
    if (ok_)
      new (&value_) T(std::move(other.value_));
    else
      new (&status_) Status(std::move(other.status_));
  }
  Result& operator=(Result other) noexcept {
    destroy();
    ok_ = other.ok_;
    if (ok_)
      new (&value_) T(std::move(other.value_));
    else
      new (&status_) Status(std::move(other.status_));
    return *this;
  }
  ~Result() { destroy(); }

  bool ok() const { return ok_; }
  T& value() & {
    check();
    return value_;
  }
  const T& value() const& {
    check();
    return value_;
  }
  T&& value() && {
    check();
    return std::move(value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // The failure; an ok Result answers an ok Status.
  Status status() const& { return ok_ ? Status() : status_; }
  Status status() && { return ok_ ? Status() : std::move(status_); }

 private:
  void check() const { MICA_ASSERT_MSG(ok_, "value() of a failed Result"); }
  void destroy() {
    if (ok_)
      value_.~T();
    else
      status_.~Status();
  }
  bool ok_;
  union {
    T value_;
    Status status_;
  };
};

// Result<void> is a Status under another name, so generic code can say Result<T>.
template <>
class [[nodiscard]] Result<void> : public Status {
 public:
  using value_type = void;
  Result() = default;
  Result(Status status) : Status(std::move(status)) {}
};

namespace detail {
template <class R>
decltype(auto) take_value(R&& r) {
  return std::move(r).value();
}
}  // namespace detail

}  // namespace mica

#define MICA_CONCAT_INNER(a, b) a##b
#define MICA_CONCAT(a, b) MICA_CONCAT_INNER(a, b)

// CO_TRY(expr): expr yields a Status or Result<T>; on failure co_return its Status.
#define CO_TRY(expr)                                                            \
  do {                                                                          \
    auto&& mica_try_result_ = (expr);                                           \
    if (!mica_try_result_.ok()) co_return std::move(mica_try_result_).status(); \
  } while (0)

// CO_TRY_ASSIGN(decl, expr): expr yields Result<T>; on success `decl = value`.
#define CO_TRY_ASSIGN(decl, expr)                                   \
  auto MICA_CONCAT(mica_try_, __LINE__) = (expr);                   \
  if (!MICA_CONCAT(mica_try_, __LINE__).ok())                       \
    co_return std::move(MICA_CONCAT(mica_try_, __LINE__)).status(); \
  decl = std::move(MICA_CONCAT(mica_try_, __LINE__)).value()

// Plain-function variants.
#define RETURN_IF_ERROR(expr)                                                \
  do {                                                                       \
    auto&& mica_try_result_ = (expr);                                        \
    if (!mica_try_result_.ok()) return std::move(mica_try_result_).status(); \
  } while (0)

template <>
struct fmt::formatter<mica::Status> : fmt::formatter<std::string_view> {
  auto format(const mica::Status& s, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(s.to_string(), ctx);
  }
};
