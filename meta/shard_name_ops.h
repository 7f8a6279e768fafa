// The checks and bookkeeping the namespace mutations inside one shard share (create, mknod,
// symlink, unlink, rename and link: meta/shard_create.cc, meta/shard_remove.cc,
// meta/shard_rename.cc): the parent directory's checks, the visible and the free name,
// dropping one link of an inode (and its reclamation), and the RequestTag
// answers (meta/shard_ops.h's encoding).
//
// Everything here works on a ShardTxn the calling mutation owns, on the shard's executor,
// between Shard::begin() and commit(): plain functions that never suspend.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "meta/schema.h"
#include "meta/shard.h"
#include "meta/shard_ops.h"

namespace mica::meta::ops {

// A tagged request's answer, kept with the mutation's writes (meta/shard_ops.h decodes it).
template <net::Message Reply>
void remember(ShardTxn& txn, RequestTag tag, const Reply& reply) {
  txn.remember_answer(tag, encode_record(reply));
}

// The directory `dir` of this shard that a name operation works in: kNotFound when it
// does not exist, kNotDirectory when it is not one, kPermissionDenied without search.
Result<Inode> search_dir(ShardTxn& txn, InodeId dir, const Credentials& cred);
// kPermissionDenied unless cred may write and search dir.
Status check_write(const Credentials& cred, const Inode& dir);

// The entry `name` of parent as a mutation that removes or moves it sees it: kNotFound when
// absent or created locked (not there yet), kBusy while a coordinator operation locks it.
Result<DirEntry> visible_entry(ShardTxn& txn, InodeId parent, std::string_view name);
// The entry `name` of parent as a mutation that writes it sees it: nullopt when free,
// kBusy when a coordinator operation holds it (created locked included: it is taken).
Result<std::optional<DirEntry>> target_entry(ShardTxn& txn, InodeId parent, std::string_view name);

// Drops one link of `inode` (nlink - 1, ctime = now) and writes it; at its last link with no
// session the inode (and its xattrs) is erased instead and a file is queued for garbage
// collection. Answers whether the inode was reclaimed.
Result<bool> drop_link(ShardTxn& txn, Inode& inode, int64_t now);

// Parent's mtime and ctime to now, written.
void touch_dir(ShardTxn& txn, Inode& dir, int64_t now);

}  // namespace mica::meta::ops
