// The shard's xattr mutations (meta/shard.h): set_xattr and remove_xattr, with the rules of
// meta/xattr_rules.h. Both change the inode's ctime and are remembered for retries.
#include "meta/shard_ops.h"
#include "meta/xattr_rules.h"

namespace mica::meta {

Task<Result<InodeReply>> Shard::set_xattr(const SetXattrRequest& request) {
  CO_TRY(check_local(request.inode));
  CO_TRY(check_xattr_name(request.name));
  CO_TRY(check_xattr_value(request.value));
  CO_TRY_ASSIGN(std::optional<InodeReply> again, remembered<InodeReply>(*this, request.tag));
  if (again) co_return std::move(*again);
  ShardTxn txn = begin();
  CO_TRY_ASSIGN(Inode inode, existing_inode(txn, request.inode));
  CO_TRY(check_xattr_write(request.cred, inode, request.name));
  CO_TRY_ASSIGN(std::optional<std::string> old, txn.xattr(request.inode, request.name));
  if (old && request.mode == XattrMode::kCreate) {
    co_return Status(StatusCode::kAlreadyExists,
                     fmt::format("{:#x} has xattr '{}' already", request.inode, request.name));
  }
  if (!old && request.mode == XattrMode::kReplace) {
    co_return xattr_missing(request.inode, request.name);
  }
  txn.put_xattr(request.inode, request.name, request.value);
  inode.ctime_ns = now_ns();
  txn.put_inode(inode);
  InodeReply reply{.inode = std::move(inode)};
  txn.remember_answer(request.tag, encode_record(reply));
  auto committing = txn.commit();
  CO_TRY(co_await std::move(committing));
  co_return reply;
}

Task<Result<InodeReply>> Shard::remove_xattr(const RemoveXattrRequest& request) {
  CO_TRY(check_local(request.inode));
  CO_TRY(check_xattr_name(request.name));
  CO_TRY_ASSIGN(std::optional<InodeReply> again, remembered<InodeReply>(*this, request.tag));
  if (again) co_return std::move(*again);
  ShardTxn txn = begin();
  CO_TRY_ASSIGN(Inode inode, existing_inode(txn, request.inode));
  CO_TRY(check_xattr_write(request.cred, inode, request.name));
  CO_TRY_ASSIGN(std::optional<std::string> old, txn.xattr(request.inode, request.name));
  if (!old) co_return xattr_missing(request.inode, request.name);
  txn.erase_xattr(request.inode, request.name);
  inode.ctime_ns = now_ns();
  txn.put_inode(inode);
  InodeReply reply{.inode = std::move(inode)};
  txn.remember_answer(request.tag, encode_record(reply));
  auto committing = txn.commit();
  CO_TRY(co_await std::move(committing));
  co_return reply;
}

}  // namespace mica::meta
