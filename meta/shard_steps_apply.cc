// The shard's side of the coordinator's steps (meta/shard_steps.h): each step one ShardTxn,
// its reply recorded under (operation, step) in the steps table in the same transaction.
#include "meta/schema.h"
#include "meta/shard.h"
#include "meta/shard_steps.h"

// CO_TRY_ASSIGN for plain functions.
#define STEP_TRY_ASSIGN(decl, expr)                              \
  auto MICA_CONCAT(step_try_, __LINE__) = (expr);                \
  if (!MICA_CONCAT(step_try_, __LINE__).ok())                    \
    return std::move(MICA_CONCAT(step_try_, __LINE__)).status(); \
  decl = std::move(MICA_CONCAT(step_try_, __LINE__)).value()

namespace mica::meta {
namespace {

constexpr uint32_t kUndoBit = 0x80000000u;        // an undo's record: its step's number | this
constexpr uint32_t kScannedPerDirectoryMax = 16;  // inodes a page looks at per directory

std::string step_key(uint64_t op, uint32_t step) {
  std::string key = be64(op);
  for (int shift = 24; shift >= 0; shift -= 8) key.push_back(static_cast<char>(step >> shift));
  return key;
}

Result<std::optional<StepReply>> read_record(ShardTxn& txn, const std::string& key) {
  STEP_TRY_ASSIGN(auto bytes, txn.step(key));
  if (!bytes) return std::optional<StepReply>();
  STEP_TRY_ASSIGN(StepReply reply, decode_record<StepReply>(*bytes, "coordinator step"));
  return std::optional<StepReply>(std::move(reply));
}

StepReply refuse(StatusCode code, std::string_view why) {
  return StepReply::refused(Status(code, std::string(why)));
}

StepReply applied(std::optional<Inode> inode = std::nullopt) {
  StepReply reply;
  reply.applied = true;
  reply.inode = std::move(inode);
  return reply;
}

Result<StepReply> create_entry(ShardTxn& txn, const StepRequest& r) {
  STEP_TRY_ASSIGN(auto parent, txn.inode(r.parent));
  if (!parent) return refuse(StatusCode::kNotFound, "the parent is gone");
  if (parent->type != InodeType::kDirectory)
    return refuse(StatusCode::kNotDirectory, "the parent is not a directory");
  STEP_TRY_ASSIGN(auto entry, txn.entry(r.parent, r.name));
  if (entry) return refuse(StatusCode::kAlreadyExists, "the name exists");
  DirEntry made{
      .inode = r.entry.inode, .type = r.entry.type, .locked_by = r.op, .created_locked = true};
  txn.put_entry(r.parent, r.name, made);
  return applied();
}

Result<StepReply> lock_entry(ShardTxn& txn, const StepRequest& r) {
  STEP_TRY_ASSIGN(auto entry, txn.entry(r.parent, r.name));
  if (!entry || entry->created_locked) return refuse(StatusCode::kNotFound, "no such entry");
  if (entry->inode != r.entry.inode || entry->locked_by != 0)
    return refuse(StatusCode::kBusy, "the entry changed");
  entry->locked_by = r.op;
  txn.put_entry(r.parent, r.name, *entry);
  return applied();
}

Result<StepReply> remove_dir(ShardTxn& txn, const StepRequest& r) {
  STEP_TRY_ASSIGN(auto inode, txn.inode(r.inode.id));
  if (!inode) return refuse(StatusCode::kNotFound, "the directory is gone");
  if (inode->type != InodeType::kDirectory)
    return refuse(StatusCode::kNotDirectory, "not a directory");
  STEP_TRY_ASSIGN(bool has_entries, txn.has_entries(inode->id));
  if (has_entries) return refuse(StatusCode::kNotEmpty, "the directory has entries");
  txn.erase_inode(inode->id);
  inode->nlink = 0;
  inode->ctime_ns = r.time_ns;
  return applied(inode);
}

Result<StepReply> drop_link(ShardTxn& txn, const StepRequest& r) {
  STEP_TRY_ASSIGN(auto inode, txn.inode(r.inode.id));
  if (!inode) return applied();
  if (inode->type == InodeType::kDirectory)
    return refuse(StatusCode::kIsDirectory, "a directory loses no links here");
  inode->nlink = inode->nlink > 0 ? inode->nlink - 1 : 0;
  inode->ctime_ns = r.time_ns;
  StepReply reply = applied(inode);
  if (inode->nlink == 0) {
    STEP_TRY_ASSIGN(auto sessions, txn.sessions(inode->id));
    if (sessions.empty()) {
      if (inode->type == InodeType::kFile && (inode->length > 0 || inode->layout.stripe != 0))
        txn.queue_gc(GcRecord{.inode = inode->id,
                              .layout = inode->layout,
                              .length = inode->length,
                              .queued_ns = r.time_ns});
      txn.erase_inode(inode->id);
      reply.reclaimed = true;
      return reply;
    }
  }
  txn.put_inode(*inode);
  return reply;
}

Result<StepReply> add_link(ShardTxn& txn, const StepRequest& r) {
  STEP_TRY_ASSIGN(auto inode, txn.inode(r.inode.id));
  if (!inode || inode->nlink == 0) return refuse(StatusCode::kNotFound, "the inode is gone");
  if (inode->type == InodeType::kDirectory)
    return refuse(StatusCode::kNotPermitted, "a link to a directory");
  if (inode->nlink >= kLinkMax) return refuse(StatusCode::kTooManyLinks, "nlink");
  ++inode->nlink;
  inode->ctime_ns = r.time_ns;
  txn.put_inode(*inode);
  return applied(inode);
}

Result<StepReply> set_inode(ShardTxn& txn, const StepRequest& r) {
  STEP_TRY_ASSIGN(auto inode, txn.inode(r.inode.id));
  if (!inode) return applied();
  if (r.new_parent != 0) inode->parent = r.new_parent;
  inode->ctime_ns = r.time_ns;
  txn.put_inode(*inode);
  return applied(inode);
}

Result<StepReply> finish_entry(ShardTxn& txn, const StepRequest& r) {
  if (r.erase)
    txn.erase_entry(r.parent, r.name);
  else
    txn.put_entry(r.parent, r.name, DirEntry{.inode = r.entry.inode, .type = r.entry.type});
  STEP_TRY_ASSIGN(auto parent, txn.inode(r.parent));
  if (!parent) return applied();
  int64_t nlink = int64_t{parent->nlink} + r.nlink_delta;
  parent->nlink = static_cast<uint32_t>(std::max<int64_t>(nlink, 0));
  parent->mtime_ns = parent->ctime_ns = r.time_ns;
  txn.put_inode(*parent);
  return applied(parent);
}

Result<StepReply> forward(ShardTxn& txn, const StepRequest& r) {
  switch (r.kind) {
    case StepKind::kCreateInode: {
      Inode inode = r.inode;
      inode.id = txn.allocate_inode();
      txn.put_inode(inode);
      return applied(inode);
    }
    case StepKind::kCreateEntry:
      return create_entry(txn, r);
    case StepKind::kLockEntry:
      return lock_entry(txn, r);
    case StepKind::kRemoveDir:
      return remove_dir(txn, r);
    case StepKind::kDropLink:
      return drop_link(txn, r);
    case StepKind::kAddLink:
      return add_link(txn, r);
    case StepKind::kSetInode:
      return set_inode(txn, r);
    case StepKind::kFinishEntry:
      return finish_entry(txn, r);
    case StepKind::kForget:
      break;
  }
  return Status(StatusCode::kInvalidArgument, "not a forward step");
}

// Inverts a step that applied (only the reversible ones come before a decision).
Status invert(ShardTxn& txn, const StepRequest& r, const StepReply& done) {
  switch (r.kind) {
    case StepKind::kCreateInode:
      if (done.inode) txn.erase_inode(done.inode->id);
      return Status();
    case StepKind::kCreateEntry:
    case StepKind::kLockEntry: {
      STEP_TRY_ASSIGN(auto entry, txn.entry(r.parent, r.name));
      if (!entry || entry->locked_by != r.op) return Status();
      if (entry->created_locked) {
        txn.erase_entry(r.parent, r.name);
      } else {
        entry->locked_by = 0;
        txn.put_entry(r.parent, r.name, *entry);
      }
      return Status();
    }
    default:
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("a {} step is not undone", step_kind_name(r.kind)));
  }
}

Result<StepReply> undo(ShardTxn& txn, const StepRequest& r) {
  std::string key = step_key(r.op, r.step);
  STEP_TRY_ASSIGN(auto done, read_record(txn, key));
  if (!done) {  // never applied: a tombstone makes sure a late copy never will
    txn.put_step(key, encode_record(refuse(StatusCode::kCancelled, "undone before applied")));
    return StepReply{};
  }
  if (done->code != 0 || !done->applied) return StepReply{};
  Status inverted = invert(txn, r, *done);
  if (!inverted.ok()) return inverted;
  return applied();
}

// Decides a step in txn (no suspension): a recorded answer, or the step applied now.
Result<StepReply> decide(ShardTxn& txn, const StepRequest& r) {
  if (r.kind == StepKind::kForget) {
    for (uint32_t step = 0; step < r.steps; ++step) {
      txn.erase_step(step_key(r.op, step));
      txn.erase_step(step_key(r.op, step | kUndoBit));
    }
    return applied();
  }
  std::string key = step_key(r.op, r.undo ? (r.step | kUndoBit) : r.step);
  STEP_TRY_ASSIGN(auto recorded, read_record(txn, key));
  if (recorded) return *recorded;
  StepReply reply;
  if (r.resolve) {
    reply = refuse(StatusCode::kCancelled, "resolved before applied");
  } else if (r.undo) {
    STEP_TRY_ASSIGN(reply, undo(txn, r));
  } else {
    STEP_TRY_ASSIGN(reply, forward(txn, r));
    if (reply.code == 0 && !r.answer.empty()) txn.remember_answer(r.tag, r.answer);
  }
  txn.put_step(key, encode_record(reply));
  return reply;
}

}  // namespace

Task<Result<StepReply>> Shard::apply_step(const StepRequest& request) {
  ShardTxn txn = begin();
  Result<StepReply> reply = decide(txn, request);
  if (!reply.ok()) co_return reply.status();
  // Also for an answer already recorded: it is given only once durable.
  auto committing = txn.commit();
  Status committed = co_await std::move(committing);
  if (!committed.ok()) co_return committed;
  // A coordinator's unlink or rename dropped the last link here: its GC record is queued.
  if (reply->reclaimed && gc() != nullptr) gc()->wake();
  co_return reply;
}

Result<ProbeReply> Shard::probe_for_step(const ProbeRequest& request) {
  ShardTxn txn = begin();
  ProbeReply reply;
  if (request.inode != 0) {
    STEP_TRY_ASSIGN(reply.inode, txn.inode(request.inode));
  }
  if (request.parent != 0) {
    STEP_TRY_ASSIGN(reply.entry, txn.entry(request.parent, request.name));
  }
  if (request.check_empty && reply.inode) {
    STEP_TRY_ASSIGN(reply.has_entries, txn.has_entries(request.inode));
  }
  return reply;
}

Result<DirectoryPage> Shard::directory_page(const DirectoryPageRequest& request) {
  uint32_t limit =
      request.limit == 0 ? kDirectoryPageMax : std::min(request.limit, kDirectoryPageMax);
  uint64_t scanned_max = uint64_t{limit} * kScannedPerDirectoryMax;
  STEP_TRY_ASSIGN(auto txn, read());
  STEP_TRY_ASSIGN(auto cursor, txn->cursor(tables().inodes));
  DirectoryPage page;
  page.last = request.after;
  STEP_TRY_ASSIGN(auto at, cursor->seek(inode_key(request.after + 1)));
  for (uint64_t scanned = 0; at; ++scanned) {
    if (page.dirs.size() >= limit || scanned >= scanned_max) return page;
    STEP_TRY_ASSIGN(Inode inode, decode_record<Inode>(at->value, "inode"));
    if (inode.type == InodeType::kDirectory)
      page.dirs.push_back(DirectoryLink{.dir = inode.id, .parent = inode.parent});
    page.last = inode.id;
    STEP_TRY_ASSIGN(at, cursor->next());
  }
  page.end = true;
  return page;
}

}  // namespace mica::meta
