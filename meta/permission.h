// POSIX permission rules of the metadata service as pure functions of the caller's
// credentials and the inodes involved (docs/meta.md, "Permissions").
//
// Access: uid 0 reads and writes anything, searches every directory, and executes a
// non-directory only when some execute bit is set; anyone else gets the owner's bits when
// they own the inode, the group's when in_group(gid), the others' otherwise (the first
// class that matches decides, as in Linux). The set-id rules say which mode bits a write,
// a chown or a chmod clears and what a new inode takes from an SGID directory. Pure
// functions: any thread, never suspend. The operations (meta/shard.h) call them.
#pragma once

#include <cstdint>

#include "meta/types.h"

namespace mica::meta {

inline constexpr uint32_t kAccessRead = 4;
inline constexpr uint32_t kAccessWrite = 2;
inline constexpr uint32_t kAccessExec = 1;

// Whether cred may access inode for every bit of `mask` (kAccessRead | ...).
bool may_access(const Credentials& cred, const Inode& inode, uint32_t mask);
inline bool may_read(const Credentials& cred, const Inode& inode) {
  return may_access(cred, inode, kAccessRead);
}
inline bool may_write(const Credentials& cred, const Inode& inode) {
  return may_access(cred, inode, kAccessWrite);
}
// Execute a non-directory, search (x) a directory.
inline bool may_exec(const Credentials& cred, const Inode& inode) {
  return may_access(cred, inode, kAccessExec);
}
inline bool may_search(const Credentials& cred, const Inode& dir) {
  return may_exec(cred, dir);
}

inline bool is_root(const Credentials& cred) {
  return cred.uid == 0;
}
inline bool is_owner(const Credentials& cred, const Inode& inode) {
  return cred.uid == inode.uid;
}
inline bool is_owner_or_root(const Credentials& cred, const Inode& inode) {
  return is_root(cred) || is_owner(cred, inode);
}

// A sticky directory: a caller other than root removes or renames an entry only if it owns
// the entry's inode or the directory. True when dir is not sticky.
bool may_delete_in(const Credentials& cred, const Inode& dir, const Inode& victim);

// The mode after a data write (size change, a reported write) by cred, as Linux's
// file_remove_privs does: any caller but root (the owner too) clears SUID, and SGID when
// group-executable or when the caller is not in the file's group.
uint32_t mode_after_write(const Credentials& cred, const Inode& inode);
// protected_hardlinks (Linux's default): a caller that is neither the owner nor root may
// link only a regular file that is not set-id and that it may both read and write.
bool may_hardlink(const Credentials& cred, const Inode& inode);
// The mode after a chown of a non-directory to new_gid (by anyone, root too), as Linux's
// ATTR_KILL_SUID/SGID and setattr_copy: SUID cleared; SGID cleared when group-executable or
// when the caller is neither root nor in the file's group; and when a bit was cleared, SGID
// also when the caller is neither root nor in new_gid. Directories keep their bits.
uint32_t mode_after_chown(const Credentials& cred, const Inode& inode, uint32_t new_gid);
// The mode chmod stores: `requested` (kModeBits only) without SGID when the caller is not
// root and not in the inode's group.
uint32_t mode_for_chmod(const Credentials& cred, const Inode& inode, uint32_t requested);

// What a new inode takes from its parent: the caller's gid, or the parent's when the parent
// is SGID, in which case a new directory is SGID too.
void inherit_from_parent(const Credentials& cred, const Inode& parent, Inode* child);

}  // namespace mica::meta
