// Shard::status() and Shard::scan() (meta/shard.h): counts for `mica status` and metrics,
// and pages of records for fsck and tests. Both read one committed snapshot and never
// suspend; status() reads table sizes off the store, without walking a table.
#include "meta/gc.h"
#include "meta/shard_ops.h"
#include "meta/shard_overlay.h"

namespace mica::meta {

namespace {

// Every queued GcRecord (the queue is bounded by what was unlinked and not yet collected).
Result<std::vector<GcRecord>> gc_queue(kv::ReadTxn& txn, kv::Table table) {
  Result<std::unique_ptr<kv::Cursor>> cursor = txn.cursor(table);
  if (!cursor.ok()) return cursor.status();
  std::vector<GcRecord> out;
  for (Result<std::optional<kv::Entry>> at = (*cursor)->first();; at = (*cursor)->next()) {
    if (!at.ok()) return at.status();
    if (!*at) return out;
    Result<GcRecord> record = decode_record<GcRecord>((*at)->value, "a gc record");
    if (!record.ok()) return record.status();
    out.push_back(std::move(record).value());
  }
}

// Inodes with nlink 0 that a session still holds.
Result<std::vector<InodeId>> open_unlinked(kv::ReadTxn& txn, const ShardTables& tables) {
  Result<std::unique_ptr<kv::Cursor>> cursor = txn.cursor(tables.sessions);
  if (!cursor.ok()) return cursor.status();
  std::vector<InodeId> out;
  for (Result<std::optional<kv::Entry>> at = (*cursor)->first();; at = (*cursor)->next()) {
    if (!at.ok()) return at.status();
    if (!*at) return out;
    if ((*at)->key.size() < 8) return Status(StatusCode::kCorruption, "a short session key");
    InodeId inode = read_be64((*at)->key);
    if (!out.empty() && out.back() == inode) continue;
    Result<std::optional<Inode>> held = read_inode(txn, tables, inode);
    if (!held.ok()) return held.status();
    if (*held && (*held)->nlink == 0) out.push_back(inode);
  }
}

Status scan_inodes(kv::ReadTxn& txn, const ShardTables& tables, const ScanRequest& request,
                   uint32_t limit, ScanReply* reply) {
  Result<std::unique_ptr<kv::Cursor>> cursor = txn.cursor(tables.inodes);
  if (!cursor.ok()) return cursor.status();
  Result<std::optional<kv::Entry>> at = (*cursor)->seek(inode_key(request.after_inode));
  for (;; at = (*cursor)->next()) {
    if (!at.ok()) return at.status();
    if (!*at) break;
    if ((*at)->key.size() != 8) return Status(StatusCode::kCorruption, "a bad inode key");
    InodeId id = read_be64((*at)->key);
    if (id <= request.after_inode && request.after_inode != 0) continue;
    if (reply->inodes.size() >= limit) return Status::ok_status();
    Result<Inode> inode = decode_record<Inode>((*at)->value, fmt::format("inode {:#x}", id));
    if (!inode.ok()) return inode.status();
    reply->inodes.push_back(std::move(inode).value());
  }
  reply->end = true;
  return Status::ok_status();
}

Status scan_entries(kv::ReadTxn& txn, const ShardTables& tables, const ScanRequest& request,
                    uint32_t limit, ScanReply* reply) {
  Result<std::unique_ptr<kv::Cursor>> cursor = txn.cursor(tables.entries);
  if (!cursor.ok()) return cursor.status();
  const std::string after = entry_key(request.after_inode, request.after_name);
  const bool from_start = request.after_inode == 0 && request.after_name.empty();
  Result<std::optional<kv::Entry>> at = (*cursor)->seek(after);
  for (;; at = (*cursor)->next()) {
    if (!at.ok()) return at.status();
    if (!*at) break;
    if (!from_start && (*at)->key == after) continue;
    if (reply->entries.size() >= limit) return Status::ok_status();
    auto split = split_entry_key((*at)->key);
    if (!split.ok()) return split.status();
    auto [parent, name] = *split;
    Result<DirEntry> entry =
        decode_record<DirEntry>((*at)->value, fmt::format("entry '{}' of {:#x}", name, parent));
    if (!entry.ok()) return entry.status();
    reply->entries.push_back(
        ScannedEntry{.parent = parent, .name = std::string(name), .entry = *entry});
  }
  reply->end = true;
  return Status::ok_status();
}

}  // namespace

Result<ShardStatus> Shard::status() {
  Result<std::unique_ptr<kv::ReadTxn>> txn = read();
  if (!txn.ok()) return txn.status();
  ShardStatus status{.shard = id()};
  Result<uint64_t> inodes = (*txn)->count(tables_.inodes);
  if (!inodes.ok()) return inodes.status();
  Result<uint64_t> entries = (*txn)->count(tables_.entries);
  if (!entries.ok()) return entries.status();
  Result<uint64_t> sessions = (*txn)->count(tables_.sessions);
  if (!sessions.ok()) return sessions.status();
  Result<uint64_t> used = env_->used_bytes();
  if (!used.ok()) return used.status();
  status.inodes = *inodes;
  status.entries = *entries;
  status.sessions = *sessions;
  // The collector's counts: kept as it goes, new records picked up now (meta/gc.h).
  gc_->fill_status(&status);
  status.used_bytes = *used;
  status.commits = env_->counters().transactions;
  status.operations = overlay_->operations;
  return status;
}

Result<ScanReply> Shard::scan(const ScanRequest& request) {
  if (request.shard != id()) {
    return Status(StatusCode::kWrongShard,
                  fmt::format("shard {} asked of shard {}", request.shard, id()));
  }
  Result<std::unique_ptr<kv::ReadTxn>> txn = read();
  if (!txn.ok()) return txn.status();
  uint32_t page_max = std::max<uint32_t>(options_.readdir_page_max, 1);
  uint32_t limit = request.limit == 0 ? page_max : std::min(request.limit, page_max);
  ScanReply reply;
  Status scanned = request.entries ? scan_entries(**txn, tables_, request, limit, &reply)
                                   : scan_inodes(**txn, tables_, request, limit, &reply);
  if (!scanned.ok()) return scanned;
  if (request.after_inode == 0 && request.after_name.empty()) {
    Result<std::vector<GcRecord>> gc = gc_queue(**txn, tables_.gc);
    if (!gc.ok()) return gc.status();
    for (const GcRecord& record : *gc) reply.gc_queued.push_back(record.inode);
    Result<std::vector<InodeId>> held = open_unlinked(**txn, tables_);
    if (!held.ok()) return held.status();
    reply.open_unlinked = std::move(held).value();
  }
  return reply;
}

}  // namespace mica::meta
