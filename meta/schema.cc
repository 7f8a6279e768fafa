#include "meta/schema.h"

namespace mica::meta {

Result<ShardTables> open_shard_tables(kv::Env* env) {
  ShardTables tables;
  kv::Table* slots[] = {&tables.shard,    &tables.inodes, &tables.entries,  &tables.xattrs,
                        &tables.sessions, &tables.gc,     &tables.requests, &tables.steps};
  std::string_view names[] = {kShardTable,   kInodeTable, kEntryTable,   kXattrTable,
                              kSessionTable, kGcTable,    kRequestTable, kStepTable};
  for (size_t i = 0; i < std::size(slots); ++i) {
    Result<kv::Table> table = env->open_table(names[i]);
    if (!table.ok()) return table.status();
    *slots[i] = *table;
  }
  return tables;
}

std::string be64(uint64_t value) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(value >> (56 - 8 * i));
  return out;
}

uint64_t read_be64(std::string_view bytes) {
  MICA_ASSERT_MSG(bytes.size() >= 8, "read_be64 needs 8 bytes");
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

std::string inode_key(InodeId inode) {
  return be64(inode);
}

std::string entry_key(InodeId parent, std::string_view name) {
  std::string key = be64(parent);
  key.append(name);
  return key;
}

std::string entry_prefix(InodeId parent) {
  return be64(parent);
}

std::string xattr_key(InodeId inode, std::string_view name) {
  std::string key = be64(inode);
  key.append(name);
  return key;
}

std::string xattr_prefix(InodeId inode) {
  return be64(inode);
}

std::string session_key(InodeId inode, SessionId session) {
  return be64(inode) + be64(session);
}

std::string session_prefix(InodeId inode) {
  return be64(inode);
}

std::string gc_key(uint64_t sequence) {
  return be64(sequence);
}

std::string request_key(RequestTag tag) {
  return be64(tag.client) + be64(tag.request);
}

Result<std::pair<InodeId, std::string_view>> split_entry_key(std::string_view key) {
  if (key.size() < 8) {
    return Status(StatusCode::kCorruption,
                  fmt::format("an entry key of {} bytes (at least 8)", key.size()));
  }
  return std::pair<InodeId, std::string_view>(read_be64(key), key.substr(8));
}

Result<std::optional<Inode>> read_inode(kv::ReadTxn& txn, const ShardTables& tables, InodeId id) {
  Result<std::optional<std::string_view>> value = txn.get(tables.inodes, inode_key(id));
  if (!value.ok()) return value.status();
  if (!*value) return std::optional<Inode>();
  Result<Inode> inode =
      decode_record_named<Inode>(**value, [id] { return fmt::format("inode {:#x}", id); });
  if (!inode.ok()) return inode.status();
  return std::optional<Inode>(std::move(inode).value());
}

Result<std::optional<DirEntry>> read_entry(kv::ReadTxn& txn, const ShardTables& tables,
                                           InodeId parent, std::string_view name) {
  Result<std::optional<std::string_view>> value = txn.get(tables.entries, entry_key(parent, name));
  if (!value.ok()) return value.status();
  if (!*value) return std::optional<DirEntry>();
  Result<DirEntry> entry = decode_record_named<DirEntry>(
      **value, [name, parent] { return fmt::format("entry '{}' of {:#x}", name, parent); });
  if (!entry.ok()) return entry.status();
  return std::optional<DirEntry>(std::move(entry).value());
}

}  // namespace mica::meta
