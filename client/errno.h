// The one mapping of Mica statuses to errno for the whole project: the native client's
// callers that want POSIX numbers and the FUSE daemon (which answers the kernel with them)
// both use it, so a status means the same error everywhere.
//
// Codes with a POSIX meaning map to it (kNotFound ENOENT, kPermissionDenied EACCES,
// kNotPermitted EPERM, ...). Retryable transport and chain refusals that reach a caller
// (its deadline passed while retrying) map to what a program can act on: ETIMEDOUT for a
// deadline, EIO for a broken peer or data that failed its checksum on every replica.
// Pure functions: any thread, never suspend.
#pragma once

#include "async/status.h"

namespace mica::client {

// 0 for an ok status; a positive errno otherwise (never 0 for an error).
int status_to_errno(StatusCode code);
inline int status_to_errno(const Status& status) { return status_to_errno(status.code()); }
// Whether the table names code (a code added to async/status.h must be added here too: a
// test checks every known code).
bool status_has_errno(StatusCode code);

}  // namespace mica::client
