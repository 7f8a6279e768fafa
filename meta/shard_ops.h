// Helpers the shard's operation files (meta/shard_*.cc) share: answers remembered for
// retries, the inode a request names, and the errors every operation words the same way.
//
// Executor-bound like the shard; nothing here suspends. Not for use outside meta/.
#pragma once

#include <string>

#include "meta/shard.h"

namespace mica::meta {

// The bytes ShardTxn::remember_answer keeps for an answer.
template <net::Message T>
std::string encode_answer(const T& answer) {
  std::vector<std::byte> bytes = net::encode(answer);
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// The answer a retry gets (nullopt: a first try, run it).
template <net::Message T>
Result<std::optional<T>> remembered(Shard& shard, RequestTag tag) {
  Result<std::optional<std::string>> bytes = shard.remembered_answer(tag);
  if (!bytes.ok()) return bytes.status();
  if (!*bytes) return std::optional<T>();
  auto decoded = net::decode<T>(std::as_bytes(std::span((*bytes)->data(), (*bytes)->size())));
  if (!decoded.ok()) {
    return Status(StatusCode::kCorruption, fmt::format("the remembered answer of request {}/{}: {}",
                                                       tag.client, tag.request, decoded.status()));
  }
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
