// Shard::unlink: removing a non-directory's name inside one shard, and reclaiming the inode
// at its last link (docs/meta.md, "Operations inside a shard"). An entry naming an inode of
// another shard is the coordinator's: its nlink (and its owner, for the sticky rule) is there.
#include "meta/permission.h"
#include "meta/shard.h"
#include "meta/shard_name_ops.h"
#include "meta/shard_ops.h"

namespace mica::meta {
namespace {

using Decided = std::optional<RemoveReply>;

Result<Decided> decide_unlink(ShardTxn& txn, const RemoveRequest& request, int64_t now) {
  auto parent = ops::search_dir(txn, request.parent, request.cred);
  if (!parent.ok()) return std::move(parent).status();
  Status name = check_name(request.name);
  if (!name.ok()) return name;
  auto entry = ops::visible_entry(txn, request.parent, request.name);
  if (!entry.ok()) return std::move(entry).status();
  Status write = ops::check_write(request.cred, *parent);
  if (!write.ok()) return write;
  bool foreign = shard_of(entry->inode) != shard_of(request.parent);
  if (entry->type == InodeType::kDirectory) {
    // Linux checks the sticky rule before EISDIR; a directory on another shard has its
    // owner there: in a sticky directory the coordinator probes it.
    if (foreign && (parent->mode & kSticky) != 0) return Decided();
    if (!foreign) {
      auto dir = existing_inode(txn, entry->inode);
      if (dir.ok() && !may_delete_in(request.cred, *parent, *dir)) {
        return Status(StatusCode::kNotPermitted,
                      fmt::format("'{}' in a sticky directory is not the caller's", request.name));
      }
    }
    return Status(StatusCode::kIsDirectory, fmt::format("'{}' is a directory", request.name));
  }
  if (foreign) return Decided();
  auto found = existing_inode(txn, entry->inode);
  if (!found.ok()) return std::move(found).status();
  Inode inode = std::move(found).value();
  if (!may_delete_in(request.cred, *parent, inode)) {
    return Status(StatusCode::kNotPermitted,
                  fmt::format("'{}' in a sticky directory is not the caller's", request.name));
  }
  txn.erase_entry(request.parent, request.name);
  auto reclaimed = ops::drop_link(txn, inode, now);
  if (!reclaimed.ok()) return std::move(reclaimed).status();
  ops::touch_dir(txn, *parent, now);
  return Decided(RemoveReply{.inode = inode, .reclaimed = *reclaimed});
}

}  // namespace

Task<Result<std::optional<RemoveReply>>> Shard::unlink_here(const RemoveRequest& request) {
  if (request.directory) {
    co_return Status(StatusCode::kInvalidArgument, "rmdir is the coordinator's");
  }
  CO_TRY(check_local(request.parent));
  CO_TRY_ASSIGN(std::optional<RemoveReply> again, remembered<RemoveReply>(*this, request.tag));
  if (again) co_return std::move(again);
  ShardTxn txn = begin();
  CO_TRY_ASSIGN(Decided decided, decide_unlink(txn, request, now_ns()));
  if (!decided) co_return decided;  // the coordinator's
  RemoveReply reply = std::move(*decided);
  ops::remember(txn, request.tag, reply);
  Task<Status> committing = txn.commit();
  CO_TRY(co_await std::move(committing));
  if (reply.reclaimed && gc() != nullptr) gc()->wake();
  co_return Decided(std::move(reply));
}

Task<Result<RemoveReply>> Shard::unlink(const RemoveRequest& request) {
  auto removing = unlink_here(request);
  CO_TRY_ASSIGN(Decided decided, co_await std::move(removing));
  if (!decided) {
    co_return Status(
        StatusCode::kCrossDevice,
        fmt::format("'{}' names an inode of another shard: the coordinator's", request.name));
  }
  co_return std::move(*decided);
}

}  // namespace mica::meta
