// Helpers the shard's operation files (meta/shard_*.cc) share: answers remembered for
// retries, the inode a request names, and the errors every operation words the same way.
//
// Executor-bound like the shard; nothing here suspends. Not for use outside meta/.
#pragma once

#include <string>

#include "meta/shard.h"

namespace mica::meta {

// The answer a retry gets (nullopt: a first try, run it). Answers are remembered as
// encode_record(reply) (meta/schema.h's decode_answer also reads format 1's bare ones).
template <net::Message T>
Result<std::optional<T>> remembered(Shard& shard, RequestTag tag) {
  Result<std::optional<std::string>> bytes = shard.remembered_answer(tag);
  if (!bytes.ok()) return bytes.status();
  if (!*bytes) return std::optional<T>();
  Result<T> decoded = decode_answer<T>(
      **bytes, fmt::format("the remembered answer of request {}/{}", tag.client, tag.request));
  if (!decoded.ok()) return decoded.status();
  return std::optional<T>(std::move(decoded).value());
}

inline Status no_inode(InodeId id) {
  return Status(StatusCode::kNotFound, fmt::format("no inode {:#x}", id));
}

// The inode id names, which must exist (kNotFound), through txn's overlay.
inline Result<Inode> existing_inode(ShardTxn& txn, InodeId id) {
  Result<std::optional<Inode>> inode = txn.inode(id);
  if (!inode.ok()) return inode.status();
  if (!*inode) return no_inode(id);
  return std::move(**inode);
}

// The same from the committed state.
inline Result<Inode> existing_inode(kv::ReadTxn& txn, const ShardTables& tables, InodeId id) {
  Result<std::optional<Inode>> inode = read_inode(txn, tables, id);
  if (!inode.ok()) return inode.status();
  if (!*inode) return no_inode(id);
  return std::move(**inode);
}

}  // namespace mica::meta
