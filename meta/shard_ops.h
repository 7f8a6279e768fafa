// The checks and bookkeeping the namespace mutations inside one shard share (create, mknod,
// symlink, unlink, rename and link: meta/shard_create.cc, meta/shard_remove.cc,
// meta/shard_rename.cc): the parent directory's checks, the visible and the free name, the
// sticky rule, dropping one link of an inode (and its reclamation), and the RequestTag
// answers encoded as records.
//
// Everything here works on a ShardTxn the calling mutation owns, on the shard's executor,
// between Shard::begin() and commit(): plain functions that never suspend.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "meta/schema.h"
#include "meta/shard.h"

namespace mica::meta::ops {

// The time a mutation stamps (nanoseconds, the executor's clock).
int64_t now_ns();

// A tag that names a request (not (0, 0)).
inline bool tagged(RequestTag tag) { return tag.client != 0 || tag.request != 0; }

// The answer remembered for tag, decoded (nullopt: a first try).
template <net::Message Reply>
Result<std::optional<Reply>> remembered(Shard& shard, RequestTag tag) {
  if (!tagged(tag)) return std::optional<Reply>();
  auto answer = shard.remembered_answer(tag);
  if (!answer.ok()) return std::move(answer).status();
  if (!answer->has_value()) return std::optional<Reply>();
  auto decoded = decode_record<Reply>(**answer, "remembered answer");
  if (!decoded.ok()) return std::move(decoded).status();
  return std::optional<Reply>(std::move(decoded).value());
}

template <net::Message Reply>
void remember(ShardTxn& txn, RequestTag tag, const Reply& reply) {
  if (tagged(tag)) txn.remember_answer(tag, encode_record(reply));
}

// Permission bits of inode for cred: 4 read, 2 write, 1 execute/search (root bypasses
// read and write, and search on directories).
bool may(const Credentials& cred, const Inode& inode, uint32_t want);
// In a sticky directory a non-root caller removes or replaces only entries it owns or whose
// directory it owns.
bool sticky_allows(const Credentials& cred, const Inode& dir, const Inode& victim);

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
Result<std::optional<DirEntry>> target_entry(ShardTxn& txn, InodeId parent,
                                             std::string_view name);

// A present inode of this shard (kNotFound otherwise).
Result<Inode> existing_inode(ShardTxn& txn, InodeId id);

// Drops one link of `inode` (nlink - 1, ctime = now) and writes it; at its last link with no
// session the inode (and its xattrs) is erased instead and a file is queued for garbage
// collection. Answers whether the inode was reclaimed.
Result<bool> drop_link(ShardTxn& txn, Inode& inode, int64_t now);

// Parent's mtime and ctime to now, written.
void touch_dir(ShardTxn& txn, Inode& dir, int64_t now);

}  // namespace mica::meta::ops
