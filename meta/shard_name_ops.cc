#include "meta/shard_name_ops.h"

#include "meta/permission.h"

namespace mica::meta::ops {

Result<Inode> search_dir(ShardTxn& txn, InodeId dir, const Credentials& cred) {
  auto found = meta::existing_inode(txn, dir);
  if (!found.ok()) return found;
  if (found->type != InodeType::kDirectory) {
    return Status(StatusCode::kNotDirectory, fmt::format("{:#x} is not a directory", dir));
  }
  if (!may_search(cred, *found)) {
    return Status(StatusCode::kPermissionDenied, fmt::format("no search on {:#x}", dir));
  }
  return found;
}

Status check_write(const Credentials& cred, const Inode& dir) {
  if (may_write(cred, dir) && may_search(cred, dir)) return Status::ok_status();
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
