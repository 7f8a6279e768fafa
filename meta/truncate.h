// Cutting a file's chunks to a new length on the storage service: every chunk that lies
// wholly past the new end is removed from the file's chains, and the chunk the new end
// falls inside is truncated to the bytes before it. Used by setattr's size change and by
// O_TRUNC (meta/shard.h) before the inode's length changes, so a reader never sees bytes
// past the end the metadata names.
//
// The caller's storage client and routing snapshot outlive the call; the inode is copied.
// Called on the shard's executor; each storage call hops to `storage_executor` (the one the
// storage client belongs to; nullptr: the caller's) and back, and routing is read before the
// first hop. Suspends; idempotent, so a retry after a failure (or a crash between it and
// the metadata commit) is safe.
#pragma once

#include "async/task.h"
#include "async/time.h"
#include "craq/types.h"
#include "meta/types.h"

namespace mica {
class Executor;
}

namespace mica::craq {
class StorageClient;
}

namespace mica::meta {

// kNotFound when routing has no chain table of the layout; kInvalidArgument for a layout
// that does not fit its table; the storage client's status otherwise.
Task<Status> truncate_chunks(craq::StorageClient* storage, Executor* storage_executor,
                             const craq::RoutingSnapshot& routing, const Inode& inode,
                             uint64_t new_length, TimePoint deadline);

}  // namespace mica::meta
