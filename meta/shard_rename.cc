// Shard::rename for non-directories between directories of one shard: replace,
// RENAME_NOREPLACE, RENAME_EXCHANGE (docs/meta.md, "Operations inside a shard"). A
// directory operand, a new parent on another shard, or an entry naming an inode of another
// shard is the coordinator's: nullopt.
#include "meta/permission.h"
#include "meta/shard.h"
#include "meta/shard_name_ops.h"
#include "meta/shard_ops.h"

namespace mica::meta {
namespace {

using Decided = std::optional<RenameReply>;

// What a rename reads before it decides.
struct RenameView {
  Inode parent;
  Inode new_parent;  // == parent when the directories are one
  DirEntry source;
  std::optional<DirEntry> target;
};

// Nothing past the reads: the coordinator's (nullopt), refused, or ready to decide.
Result<std::optional<RenameView>> read_rename(ShardTxn& txn, const RenameRequest& request,
                                              bool& coordinator) {
  using View = std::optional<RenameView>;
  RenameView view;
  auto parent = ops::search_dir(txn, request.parent, request.cred);
  if (!parent.ok()) return std::move(parent).status();
  view.parent = std::move(parent).value();
  if (request.new_parent == request.parent) {
    view.new_parent = view.parent;
  } else {
    auto new_parent = ops::search_dir(txn, request.new_parent, request.cred);
    if (!new_parent.ok()) return std::move(new_parent).status();
    view.new_parent = std::move(new_parent).value();
  }
  Status name = check_name(request.name);
  if (!name.ok()) return name;
  Status new_name = check_name(request.new_name);
  if (!new_name.ok()) return new_name;
  auto source = ops::visible_entry(txn, request.parent, request.name);
  if (!source.ok()) return std::move(source).status();
  view.source = std::move(source).value();
  auto target = ops::target_entry(txn, request.new_parent, request.new_name);
  if (!target.ok()) return std::move(target).status();
  view.target = std::move(target).value();
  if (request.noreplace && view.target) {
    return Status(StatusCode::kAlreadyExists, fmt::format("'{}' exists", request.new_name));
  }
  if (request.exchange && !view.target) {
    return Status(StatusCode::kNotFound, fmt::format("no '{}' to exchange with", request.new_name));
  }
  // An inode of another shard has its nlink, ctime and owner (the sticky rule) there.
  ShardId here = shard_of(request.parent);
  coordinator = view.source.type == InodeType::kDirectory ||
                (view.target && view.target->type == InodeType::kDirectory) ||
                shard_of(view.source.inode) != here ||
                (view.target && shard_of(view.target->inode) != here);
  if (coordinator) return View();
  return View(std::move(view));
}

Status check_sticky(const Credentials& cred, const Inode& dir, const Inode& victim,
                    std::string_view name) {
  if (may_delete_in(cred, dir, victim)) return Status::ok_status();
  return Status(StatusCode::kNotPermitted,
                fmt::format("'{}' in a sticky directory is not the caller's", name));
}

// Writes the decided rename: entries, the operands' ctime, the parents' m/ctime.
Result<RenameReply> apply_rename(ShardTxn& txn, const RenameRequest& request, RenameView& view,
                                 Inode& source, std::optional<Inode>& target, int64_t now) {
  RenameReply reply;
  DirEntry moved{.inode = source.id, .type = source.type};
  source.ctime_ns = now;
  txn.put_inode(source);
  if (request.exchange) {
    target->ctime_ns = now;
    txn.put_inode(*target);
    txn.put_entry(request.parent, request.name,
                  DirEntry{.inode = target->id, .type = target->type});
  } else {
    txn.erase_entry(request.parent, request.name);
    if (target) {
      auto reclaimed = ops::drop_link(txn, *target, now);
      if (!reclaimed.ok()) return std::move(reclaimed).status();
      reply.replaced_reclaimed = *reclaimed;
    }
  }
  txn.put_entry(request.new_parent, request.new_name, moved);
  ops::touch_dir(txn, view.parent, now);
  if (request.new_parent != request.parent) ops::touch_dir(txn, view.new_parent, now);
  reply.moved = source;
  reply.replaced = target;
  return reply;
}

Result<Decided> decide_rename(ShardTxn& txn, const RenameRequest& request, int64_t now,
                              bool& changed) {
  if (request.noreplace && request.exchange) {
    return Status(StatusCode::kInvalidArgument, "noreplace and exchange exclude each other");
  }
  bool coordinator = false;
  auto read = read_rename(txn, request, coordinator);
  if (!read.ok()) return std::move(read).status();
  if (coordinator) return Decided();
  RenameView& view = **read;
  auto source = existing_inode(txn, view.source.inode);
  if (!source.ok()) return std::move(source).status();
  if (view.target && view.target->inode == view.source.inode) {
    // Two names of one inode (or one name twice): POSIX's rename does nothing, successfully.
    return Decided(RenameReply{.moved = *source});
  }
  // Linux's order (vfs_rename's may_delete, then may_create or may_delete of the target):
  // the old directory's write and sticky rules before the new directory's.
  Status write = ops::check_write(request.cred, view.parent);
  if (!write.ok()) return write;
  Status sticky = check_sticky(request.cred, view.parent, *source, request.name);
  if (!sticky.ok()) return sticky;
  Status new_write = ops::check_write(request.cred, view.new_parent);
  if (!new_write.ok()) return new_write;
  std::optional<Inode> target;
  if (view.target) {
    auto found = existing_inode(txn, view.target->inode);
    if (!found.ok()) return std::move(found).status();
    target = std::move(found).value();
    Status target_sticky = check_sticky(request.cred, view.new_parent, *target, request.new_name);
    if (!target_sticky.ok()) return target_sticky;
  }
  auto applied = apply_rename(txn, request, view, *source, target, now);
  if (!applied.ok()) return std::move(applied).status();
  changed = true;
  return Decided(std::move(applied).value());
}

}  // namespace

Task<Result<std::optional<RenameReply>>> Shard::rename(const RenameRequest& request) {
  CO_TRY(check_local(request.parent));
  if (shard_of(request.new_parent) != id()) co_return Decided();
  CO_TRY_ASSIGN(std::optional<RenameReply> again, remembered<RenameReply>(*this, request.tag));
  if (again) co_return std::move(again);
  ShardTxn txn = begin();
  bool changed = false;
  CO_TRY_ASSIGN(Decided reply, decide_rename(txn, request, now_ns(), changed));
  if (!changed) co_return reply;  // the coordinator's, or a rename onto itself
  ops::remember(txn, request.tag, *reply);
  Task<Status> committing = txn.commit();
  CO_TRY(co_await std::move(committing));
  if (reply->replaced_reclaimed && gc() != nullptr) gc()->wake();
  co_return reply;
}

}  // namespace mica::meta
