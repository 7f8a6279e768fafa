// The status -> errno table: every code a program may see maps to the errno POSIX names
// for it, and no error maps to 0.
#include "client/errno.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace mica::client {
namespace {

TEST(StatusToErrno, NamespaceErrorsMapToTheirPosixNumbers) {
  EXPECT_EQ(status_to_errno(StatusCode::kNotFound), ENOENT);
  EXPECT_EQ(status_to_errno(StatusCode::kAlreadyExists), EEXIST);
  EXPECT_EQ(status_to_errno(StatusCode::kPermissionDenied), EACCES);
  EXPECT_EQ(status_to_errno(StatusCode::kNotPermitted), EPERM);
  EXPECT_EQ(status_to_errno(StatusCode::kNotDirectory), ENOTDIR);
  EXPECT_EQ(status_to_errno(StatusCode::kIsDirectory), EISDIR);
  EXPECT_EQ(status_to_errno(StatusCode::kNotEmpty), ENOTEMPTY);
  EXPECT_EQ(status_to_errno(StatusCode::kCrossDevice), EXDEV);
  EXPECT_EQ(status_to_errno(StatusCode::kLoop), ELOOP);
  EXPECT_EQ(status_to_errno(StatusCode::kNameTooLong), ENAMETOOLONG);
  EXPECT_EQ(status_to_errno(StatusCode::kNoData), ENODATA);
  EXPECT_EQ(status_to_errno(StatusCode::kTooBig), E2BIG);
  EXPECT_EQ(status_to_errno(StatusCode::kTooManyLinks), EMLINK);
  EXPECT_EQ(status_to_errno(StatusCode::kNoSpace), ENOSPC);
}

TEST(StatusToErrno, EveryKnownCodeHasAnEntryAndOnlyOkIsZero) {
  EXPECT_EQ(status_to_errno(Status::ok_status()), 0);
  for (int code = 1; code < 1000; ++code) {
    if (!status_code_known(static_cast<uint16_t>(code))) continue;
    EXPECT_TRUE(status_has_errno(static_cast<StatusCode>(code))) << code;
    EXPECT_GT(status_to_errno(static_cast<StatusCode>(code)), 0) << code;
  }
}

TEST(StatusToErrno, RetriesThatRanOutAndBrokenDataAreTimeoutsAndIoErrors) {
  EXPECT_EQ(status_to_errno(StatusCode::kTimedOut), ETIMEDOUT);
  EXPECT_EQ(status_to_errno(StatusCode::kChecksumMismatch), EIO);
  EXPECT_EQ(status_to_errno(StatusCode::kCorruption), EIO);
  EXPECT_EQ(status_to_errno(StatusCode::kNotServing), EAGAIN);
}

}  // namespace
}  // namespace mica::client
