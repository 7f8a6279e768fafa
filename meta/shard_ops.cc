#include "meta/shard_ops.h"

#include "async/executor.h"
#include "async/time.h"

namespace mica::meta::ops {

int64_t now_ns() { return to_ns(Executor::current()->now()); }

bool may(const Credentials& cred, const Inode& inode, uint32_t want) {
  if (cred.uid == 0) {
    // Root reads and writes anything; it searches any directory and executes a
    // non-directory only when some execute bit is set, as Linux does.
    if ((want & 1) == 0 || inode.type == InodeType::kDirectory) return true;
    return (inode.mode & 0111) != 0;
  }
  uint32_t bits = 0;
  if (cred.uid == inode.uid) {
    bits = (inode.mode >> 6) & 7;
  } else if (cred.in_group(inode.gid)) {
    bits = (inode.mode >> 3) & 7;
  } else {
    bits = inode.mode & 7;
  }
  return (bits & want) == want;
}

bool sticky_allows(const Credentials& cred, const Inode& dir, const Inode& victim) {
  if ((dir.mode & kSticky) == 0 || cred.uid == 0) return true;
  return cred.uid == victim.uid || cred.uid == dir.uid;
}

Result<Inode> existing_inode(ShardTxn& txn, InodeId id) {
  auto found = txn.inode(id);
  if (!found.ok()) return std::move(found).status();
  if (!found->has_value()) {
    return Status(StatusCode::kNotFound, fmt::format("no inode {:#x}", id));
  }
  return std::move(**found);
}

Result<Inode> search_dir(ShardTxn& txn, InodeId dir, const Credentials& cred) {
  auto found = existing_inode(txn, dir);
  if (!found.ok()) return found;
  if (found->type != InodeType::kDirectory) {
    return Status(StatusCode::kNotDirectory, fmt::format("{:#x} is not a directory", dir));
  }
  if (!may(cred, *found, 1)) {
    return Status(StatusCode::kPermissionDenied, fmt::format("no search on {:#x}", dir));
  }
  return found;
}

Status check_write(const Credentials& cred, const Inode& dir) {
  if (may(cred, dir, 3)) return Status::ok_status();
  return Status(StatusCode::kPermissionDenied, fmt::format("no write on {:#x}", dir.id));
}

Result<DirEntry> visible_entry(ShardTxn& txn, InodeId parent, std::string_view name) {
  auto found = txn.entry(parent, name);
  if (!found.ok()) return std::move(found).status();
  if (!found->has_value() || (*found)->created_locked) {
    return Status(StatusCode::kNotFound, fmt::format("no entry '{}' in {:#x}", name, parent));
  }
  if ((*found)->locked_by != 0) {
    return Status(StatusCode::kBusy, fmt::format("'{}' in {:#x} is being changed", name, parent));
  }
  return std::move(**found);
}

Result<std::optional<DirEntry>> target_entry(ShardTxn& txn, InodeId parent,
                                             std::string_view name) {
  auto found = txn.entry(parent, name);
  if (!found.ok()) return found;
  if (found->has_value() && ((*found)->locked_by != 0 || (*found)->created_locked)) {
    return Status(StatusCode::kBusy, fmt::format("'{}' in {:#x} is being changed", name, parent));
  }
  return found;
}

Result<bool> drop_link(ShardTxn& txn, Inode& inode, int64_t now) {
  MICA_ASSERT(inode.nlink > 0);
  inode.nlink -= 1;
  inode.ctime_ns = now;
  if (inode.nlink > 0) {
    txn.put_inode(inode);
    return false;
  }
  auto sessions = txn.sessions(inode.id);
  if (!sessions.ok()) return std::move(sessions).status();
  if (!sessions->empty()) {
    // Open handles keep the file readable and writable; the last close reclaims it.
    txn.put_inode(inode);
    return false;
  }
  txn.erase_inode(inode.id);
  if (inode.type == InodeType::kFile && (inode.length > 0 || inode.layout.stripe != 0)) {
    txn.queue_gc(GcRecord{.inode = inode.id,
                          .layout = inode.layout,
                          .length = inode.length,
                          .queued_ns = now});
  }
  return true;
}

void touch_dir(ShardTxn& txn, Inode& dir, int64_t now) {
  dir.mtime_ns = now;
  dir.ctime_ns = now;
  txn.put_inode(dir);
}

}  // namespace mica::meta::ops
