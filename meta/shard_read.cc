// The shard's pure reads (meta/shard.h): readdir, readlink, get_xattr and list_xattr. Each
// takes one committed read transaction and never suspends inside.
#include "meta/permission.h"
#include "meta/shard_ops.h"
#include "meta/xattr_rules.h"

namespace mica::meta {

namespace {

// Fills page with visible entries of dir after `after`; true when the table has no entry of
// dir past the last one looked at.
Result<bool> read_entries(Shard& shard, kv::ReadTxn& txn, const ReaddirRequest& request,
                          uint32_t limit, std::vector<ReaddirEntry>* page) {
  const std::string prefix = entry_prefix(request.dir);
  Result<std::unique_ptr<kv::Cursor>> cursor = txn.cursor(shard.tables().entries);
  if (!cursor.ok()) return cursor.status();
  Result<std::optional<kv::Entry>> at = (*cursor)->seek(entry_key(request.dir, request.after));
  for (;; at = (*cursor)->next()) {
    if (!at.ok()) return at.status();
    if (!*at || (*at)->key.substr(0, prefix.size()) != prefix) return true;
    std::string_view name = (*at)->key.substr(prefix.size());
    if (!request.after.empty() && name == request.after) continue;
    if (page->size() >= limit) return false;
    Result<DirEntry> entry = decode_record_named<DirEntry>((*at)->value, [&] {
      return fmt::format("entry '{}' of {:#x}", name, request.dir);
    });
    if (!entry.ok()) return entry.status();
    if (entry->created_locked) continue;
    ReaddirEntry out{.name = std::string(name), .inode = entry->inode, .type = entry->type};
    if (request.with_attrs && shard_of(entry->inode) == shard.id()) {
      Result<std::optional<Inode>> inode = read_inode(txn, shard.tables(), entry->inode);
      if (!inode.ok()) return inode.status();
      if (!*inode) {
        return Status(StatusCode::kCorruption,
                      fmt::format("entry '{}' of {:#x} names {:#x}, which does not exist", name,
                                  request.dir, entry->inode));
      }
      out.attrs = std::move(**inode);
    }
    page->push_back(std::move(out));
  }
}

}  // namespace

Task<Result<ReaddirReply>> Shard::readdir(const ReaddirRequest& request) {
  CO_TRY(check_local(request.dir));
  CO_TRY_ASSIGN(std::unique_ptr<kv::ReadTxn> txn, read());
  CO_TRY_ASSIGN(Inode dir, existing_inode(*txn, tables_, request.dir));
  if (dir.type != InodeType::kDirectory) {
    co_return Status(StatusCode::kNotDirectory,
                     fmt::format("{:#x} is not a directory", request.dir));
  }
  if (!may_read(request.cred, dir)) {
    co_return Status(StatusCode::kPermissionDenied,
                     fmt::format("no read permission on {:#x}", request.dir));
  }
  uint32_t page_max = std::max<uint32_t>(options_.readdir_page_max, 1);
  uint32_t limit = request.limit == 0 ? page_max : std::min(request.limit, page_max);
  ReaddirReply reply;
  CO_TRY_ASSIGN(reply.end, read_entries(*this, *txn, request, limit, &reply.entries));
  co_return reply;
}

Task<Result<ReadlinkReply>> Shard::readlink(const ReadlinkRequest& request) {
  CO_TRY(check_local(request.inode));
  CO_TRY_ASSIGN(std::unique_ptr<kv::ReadTxn> txn, read());
  CO_TRY_ASSIGN(Inode inode, existing_inode(*txn, tables_, request.inode));
  if (inode.type != InodeType::kSymlink) {
    co_return Status(StatusCode::kInvalidArgument,
                     fmt::format("{:#x} is not a symbolic link", request.inode));
  }
  co_return ReadlinkReply{.target = std::move(inode.symlink_target)};
}

Task<Result<XattrValue>> Shard::get_xattr(const GetXattrRequest& request) {
  CO_TRY(check_local(request.inode));
  CO_TRY(check_xattr_name(request.name));
  CO_TRY_ASSIGN(std::unique_ptr<kv::ReadTxn> txn, read());
  CO_TRY_ASSIGN(Inode inode, existing_inode(*txn, tables_, request.inode));
  CO_TRY(check_xattr_read(request.cred, inode, request.name));
  CO_TRY_ASSIGN(std::optional<std::string_view> value,
                txn->get(tables_.xattrs, xattr_key(request.inode, request.name)));
  if (!value) co_return xattr_missing(request.inode, request.name);
  co_return XattrValue{.value = std::string(*value)};
}

Task<Result<XattrNames>> Shard::list_xattr(const ListXattrRequest& request) {
  CO_TRY(check_local(request.inode));
  CO_TRY_ASSIGN(std::unique_ptr<kv::ReadTxn> txn, read());
  CO_TRY_ASSIGN(Inode inode, existing_inode(*txn, tables_, request.inode));
  (void)inode;  // it must exist; listing needs no permission (as Linux)
  const std::string prefix = xattr_prefix(request.inode);
  CO_TRY_ASSIGN(std::unique_ptr<kv::Cursor> cursor, txn->cursor(tables_.xattrs));
  XattrNames reply;
  Result<std::optional<kv::Entry>> at = cursor->seek(prefix);
  for (;; at = cursor->next()) {
    CO_TRY(at);
    if (!*at || (*at)->key.substr(0, prefix.size()) != prefix) break;
    std::string_view name = (*at)->key.substr(prefix.size());
    if (xattr_listed(request.cred, name)) reply.names.emplace_back(name);
  }
  co_return reply;
}

}  // namespace mica::meta
