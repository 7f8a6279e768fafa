#include "meta/permission.h"

namespace mica::meta {

namespace {
constexpr uint32_t kAnyExec = 0111;
constexpr uint32_t kGroupExec = 0010;
}  // namespace

bool may_access(const Credentials& cred, const Inode& inode, uint32_t mask) {
  mask &= kAccessRead | kAccessWrite | kAccessExec;
  if (is_root(cred)) {
    // Root bypasses read and write; execute needs one x bit except on a directory.
    if ((mask & kAccessExec) == 0 || inode.type == InodeType::kDirectory) return true;
    return (inode.mode & kAnyExec) != 0;
  }
  uint32_t bits;
  if (cred.uid == inode.uid) {
    bits = (inode.mode >> 6) & 7;
  } else if (cred.in_group(inode.gid)) {
    bits = (inode.mode >> 3) & 7;
  } else {
    bits = inode.mode & 7;
  }
  return (bits & mask) == mask;
}

bool may_delete_in(const Credentials& cred, const Inode& dir, const Inode& victim) {
  if ((dir.mode & kSticky) == 0 || is_root(cred)) return true;
  return cred.uid == dir.uid || cred.uid == victim.uid;
}

uint32_t mode_after_write(const Credentials& cred, const Inode& inode) {
  uint32_t mode = inode.mode;
  if (is_root(cred)) return mode;
  mode &= ~kSetUid;
  if ((mode & kGroupExec) != 0 || !cred.in_group(inode.gid)) mode &= ~kSetGid;
  return mode;
}

bool may_hardlink(const Credentials& cred, const Inode& inode) {
  if (is_owner_or_root(cred, inode)) return true;
  if (inode.type != InodeType::kFile || (inode.mode & kSetUid) != 0) return false;
  if ((inode.mode & (kSetGid | kGroupExec)) == (kSetGid | kGroupExec)) return false;
  return may_access(cred, inode, kAccessRead | kAccessWrite);
}

uint32_t mode_after_chown(const Credentials& cred, const Inode& inode, uint32_t new_gid) {
  uint32_t mode = inode.mode;
  if (inode.type == InodeType::kDirectory) return mode;
  bool root = is_root(cred);
  bool kill_sgid = (mode & kSetGid) != 0 &&
                   ((mode & kGroupExec) != 0 || !(root || cred.in_group(inode.gid)));
  bool changed = (mode & kSetUid) != 0 || kill_sgid;
  mode &= ~kSetUid;
  if (kill_sgid) mode &= ~kSetGid;
  if (changed && !root && !cred.in_group(new_gid)) mode &= ~kSetGid;
  return mode;
}

uint32_t mode_for_chmod(const Credentials& cred, const Inode& inode, uint32_t requested) {
  uint32_t mode = requested & kModeBits;
  if (!is_root(cred) && !cred.in_group(inode.gid)) mode &= ~kSetGid;
  return mode;
}

void inherit_from_parent(const Credentials& cred, const Inode& parent, Inode* child) {
  if ((parent.mode & kSetGid) == 0) {
    child->gid = cred.gid;
    return;
  }
  child->gid = parent.gid;
  if (child->type == InodeType::kDirectory) child->mode |= kSetGid;
}

}  // namespace mica::meta
