// The rules of extended attributes as pure functions (docs/meta.md, "Permissions"), as
// Linux's VFS has them: a name is "<namespace>.<rest>" with namespace user, trusted,
// security or system; trusted.* is root's alone (invisible to others: reads kNoData,
// writes kNotPermitted); user.* exists only on files and directories (elsewhere reads
// kNoData, writes kNotPermitted), is read with read permission and written with write
// permission, and in a sticky directory written only by its owner or root; security.* and
// system.* are read by anyone and written by the owner or root. Any thread, never suspend.
#pragma once

#include <string_view>

#include "meta/types.h"

namespace mica::meta {

// kNameTooLong past kXattrNameMax, kNotSupported for an unknown namespace,
// kInvalidArgument for a namespace with nothing after it.
Status check_xattr_name(std::string_view name);
// kTooBig past kXattrValueMax.
Status check_xattr_value(std::string_view value);
// Whether cred may read name of inode (name checked already).
Status check_xattr_read(const Credentials& cred, const Inode& inode, std::string_view name);
// Whether cred may set or remove name of inode.
Status check_xattr_write(const Credentials& cred, const Inode& inode, std::string_view name);
// Whether listxattr shows name to cred.
bool xattr_listed(const Credentials& cred, std::string_view name);
// The kNoData of an attribute that does not exist.
Status xattr_missing(InodeId inode, std::string_view name);

}  // namespace mica::meta
