// Shard::create (create, mknod, symlink; create with open) and Shard::link: the namespace
// mutations that add a name inside one shard (docs/meta.md, "Operations inside a shard").
#include "craq/chain_table.h"
#include "meta/layout.h"
#include "meta/lease.h"
#include "meta/permission.h"
#include "meta/shard.h"
#include "meta/shard_name_ops.h"
#include "meta/shard_ops.h"

namespace mica::meta {
namespace {

// Mixed into a file's inode id to draw its layout seed, so the seed is a pure function of
// the id (replays and restarts give the same layout) yet unrelated to the id's bits.
constexpr uint64_t kLayoutSeedSalt = 0x6d6963612d6c6179;  // "mica-lay"
// O_TRUNC of an existing file that writers keep growing between the cut and the open: the
// create gives up (kBusy, the client retries) after this many cuts.
constexpr uint32_t kTruncateRoundsMax = 3;

Status check_create_shape(const CreateRequest& request) {
  if (request.type == InodeType::kDirectory) {
    return Status(StatusCode::kInvalidArgument, "directories are made by mkdir");
  }
  if (request.open && request.type != InodeType::kFile) {
    return Status(StatusCode::kInvalidArgument, "only a regular file is created open");
  }
  if (request.type == InodeType::kSymlink) {
    // Linux refuses an empty target with ENOENT (the empty path names nothing).
    if (request.symlink_target.empty()) {
      return Status(StatusCode::kNotFound, "a symlink needs a target");
    }
    if (request.symlink_target.size() > kSymlinkMax) {
      return Status(StatusCode::kNameTooLong,
                    fmt::format("a symlink target is at most {} bytes", kSymlinkMax));
    }
  }
  return Status::ok_status();
}

// The new inode's owner, group and mode: an SGID parent passes its group on; SGID on a
// group-executable file is dropped when the caller is not in that group (Linux's rule).
void set_owner(Inode& inode, const Credentials& cred, const Inode& parent, uint32_t mode) {
  inode.uid = cred.uid;
  inode.mode = mode & kModeBits;
  inherit_from_parent(cred, parent, &inode);
  if (inode.type == InodeType::kSymlink) inode.mode = 0777;
  if ((inode.mode & kSetGid) != 0 && (inode.mode & 010) != 0 && cred.uid != 0 &&
      !cred.in_group(inode.gid)) {
    inode.mode &= ~kSetGid;
  }
}

Result<Layout> file_layout(Shard& shard, ShardTxn& txn, const CreateRequest& request, InodeId id) {
  const craq::RoutingSnapshot* routing =
      shard.options().routing ? shard.options().routing() : nullptr;
  if (routing == nullptr) {  // a process just started: the client retries until it has one
    return Status(StatusCode::kBusy, "no routing yet to take a file layout from; retry");
  }
  craq::PlacementRandom random(id ^ kLayoutSeedSalt);
  LayoutChoice choice{.chunk_size_bytes = request.chunk_size_bytes, .stripe = request.stripe};
  return new_layout(*routing, choice, txn.next_layout_start(), random.next());
}

SessionRecord new_session(ShardTxn& txn, const Inode& inode, const CreateRequest& request,
                          int64_t now) {
  return SessionRecord{.inode = inode.id,
                       .session = txn.allocate_session(),
                       .client = request.tag.client,
                       .flags = request.flags,
                       .length = inode.length,
                       .opened_ns = now,
                       .cred = request.cred};
}

// open(O_CREAT) without O_EXCL of a name that exists: the file is opened as open() would
// (permissions as the flags ask; O_TRUNC of an empty file only stamps m/ctime).
Result<CreateReply> open_existing(ShardTxn& txn, const CreateRequest& request,
                                  const DirEntry& entry, int64_t now) {
  if (entry.type == InodeType::kDirectory) {
    return Status(StatusCode::kIsDirectory, fmt::format("'{}' is a directory", request.name));
  }
  if (entry.type == InodeType::kSymlink) {
    // The client resolves symlinks before it creates; one here is a name that is taken.
    return Status(StatusCode::kAlreadyExists, fmt::format("'{}' is a symlink", request.name));
  }
  auto found = existing_inode(txn, entry.inode);
  if (!found.ok()) return std::move(found).status();
  Inode inode = std::move(found).value();
  if ((request.flags.read && !may_read(request.cred, inode)) ||
      ((request.flags.write || request.flags.truncate) && !may_write(request.cred, inode))) {
    return Status(StatusCode::kPermissionDenied, fmt::format("may not open '{}'", request.name));
  }
  if (request.flags.truncate && inode.type == InodeType::kFile) {
    MICA_ASSERT(inode.length == 0);  // a longer one is cut by setattr first
    inode.mode = mode_after_write(request.cred, inode);
    inode.mtime_ns = now;
    inode.ctime_ns = now;
    txn.put_inode(inode);
  }
  CreateReply reply{.inode = inode, .session = 0, .created = false};
  SessionRecord session = new_session(txn, inode, request, now);
  txn.put_session(session);
  reply.session = session.session;
  return reply;
}

Result<CreateReply> create_new(Shard& shard, ShardTxn& txn, const CreateRequest& request,
                               Inode& parent, int64_t now) {
  Inode inode{.id = txn.allocate_inode(), .type = request.type, .nlink = 1};
  set_owner(inode, request.cred, parent, request.mode);
  inode.atime_ns = inode.mtime_ns = inode.ctime_ns = now;
  if (request.type == InodeType::kFile) {
    auto layout = file_layout(shard, txn, request, inode.id);
    if (!layout.ok()) return std::move(layout).status();
    inode.layout = *layout;
  } else if (request.type == InodeType::kSymlink) {
    inode.symlink_target = request.symlink_target;
    inode.length = request.symlink_target.size();
  } else if (request.type == InodeType::kCharDevice || request.type == InodeType::kBlockDevice) {
    inode.rdev = request.rdev;
  }
  txn.put_inode(inode);
  txn.put_entry(parent.id, request.name, DirEntry{.inode = inode.id, .type = inode.type});
  ops::touch_dir(txn, parent, now);
  CreateReply reply{.inode = inode, .session = 0, .created = true};
  if (request.open) {
    SessionRecord session = new_session(txn, inode, request, now);
    txn.put_session(session);
    reply.session = session.session;
  }
  return reply;
}

// Whether an existing file must be cut before it is opened (O_TRUNC of a file with bytes:
// the storage service cuts its chunks first, which suspends).
bool needs_storage_truncate(ShardTxn& txn, const CreateRequest& request,
                            const std::optional<DirEntry>& existing) {
  if (!existing || !request.open || request.flags.exclusive || !request.flags.truncate ||
      existing->type != InodeType::kFile) {
    return false;
  }
  auto inode = txn.inode(existing->inode);
  return inode.ok() && inode->has_value() && (*inode)->length > 0;
}

// open(O_CREAT) without O_EXCL of a name whose file inode lives on another shard (after a
// rename or link across shards): nothing here can open it. A directory or a symlink is
// refused from the entry alone (open_existing), wherever its inode lives.
bool foreign_file(const Shard& shard, const CreateRequest& request, const DirEntry& entry) {
  return request.open && !request.flags.exclusive && entry.type != InodeType::kDirectory &&
         entry.type != InodeType::kSymlink && shard_of(entry.inode) != shard.id();
}

// Decides a create on txn (no suspension): the reply to commit, or the refusal; nullopt:
// the existing file is to be cut first (needs_storage_truncate).
Result<std::optional<CreateReply>> decide_create(Shard& shard, ShardTxn& txn,
                                                 const CreateRequest& request, int64_t now) {
  using Decided = std::optional<CreateReply>;
  Status shape = check_create_shape(request);
  if (!shape.ok()) return shape;
  auto parent = ops::search_dir(txn, request.parent, request.cred);
  if (!parent.ok()) return std::move(parent).status();
  Status name = check_name(request.name);
  if (!name.ok()) return name;
  auto existing = ops::target_entry(txn, request.parent, request.name);
  if (!existing.ok()) return std::move(existing).status();
  if (existing->has_value()) {
    if (!request.open || request.flags.exclusive) {
      return Status(StatusCode::kAlreadyExists, fmt::format("'{}' exists", request.name));
    }
    if (foreign_file(shard, request, **existing)) {
      // Its session and O_TRUNC belong to the inode's shard: the server opens it there.
      return Decided(CreateReply{.inode = Inode{.id = (*existing)->inode,
                                                .type = (*existing)->type},
                                 .session = 0,
                                 .created = false});
    }
    if (needs_storage_truncate(txn, request, *existing)) return Decided();
    auto opened = open_existing(txn, request, **existing, now);
    if (!opened.ok()) return std::move(opened).status();
    return Decided(std::move(opened).value());
  }
  Status write = ops::check_write(request.cred, *parent);
  if (!write.ok()) return write;
  auto created = create_new(shard, txn, request, *parent, now);
  if (!created.ok()) return std::move(created).status();
  return Decided(std::move(created).value());
}

}  // namespace

Task<Result<CreateReply>> Shard::create(const CreateRequest& request) {
  CO_TRY(check_local(request.parent));
  CO_TRY_ASSIGN(std::optional<CreateReply> again, remembered<CreateReply>(*this, request.tag));
  if (again) co_return std::move(*again);
  for (uint32_t round = 0; round < kTruncateRoundsMax; ++round) {
    InodeId to_cut = 0;
    {
      ShardTxn txn = begin();
      CO_TRY_ASSIGN(std::optional<CreateReply> reply, decide_create(*this, txn, request, now_ns()));
      if (reply && is_open_elsewhere(request, *reply)) co_return std::move(*reply);
      if (reply) {
        ops::remember(txn, request.tag, *reply);
        Task<Status> committing = txn.commit();
        CO_TRY(co_await std::move(committing));
        // The new session is under its client's lease (meta/lease.h).
        if (reply->session != 0 && options_.leases != nullptr) {
          options_.leases->opened(request.tag.client);
        }
        co_return std::move(*reply);
      }
      CO_TRY_ASSIGN(DirEntry entry, ops::visible_entry(txn, request.parent, request.name));
      to_cut = entry.inode;
    }  // the txn ends before the storage service is awaited
    // O_TRUNC of an existing file with bytes: setattr cuts its chunks (storage first, with
    // write permission and the set-id rules); the open is decided again on the empty file.
    SetattrRequest cut{.cred = request.cred, .inode = to_cut, .size = 0};
    Task<Result<InodeReply>> cutting = setattr(cut);
    CO_TRY(co_await std::move(cutting));
  }
  co_return Status(StatusCode::kBusy,
                   fmt::format("'{}' grew again while opened with O_TRUNC", request.name));
}

namespace {

Result<InodeReply> decide_link(ShardTxn& txn, const LinkRequest& request, int64_t now) {
  auto found = existing_inode(txn, request.inode);
  if (!found.ok()) return std::move(found).status();
  Inode inode = std::move(found).value();
  auto parent = ops::search_dir(txn, request.new_parent, request.cred);
  if (!parent.ok()) return std::move(parent).status();
  Status name = check_name(request.new_name);
  if (!name.ok()) return name;
  auto existing = ops::target_entry(txn, request.new_parent, request.new_name);
  if (!existing.ok()) return std::move(existing).status();
  if (existing->has_value()) {
    return Status(StatusCode::kAlreadyExists, fmt::format("'{}' exists", request.new_name));
  }
  if (!may_hardlink(request.cred, inode)) {
    return Status(StatusCode::kNotPermitted,
                  fmt::format("protected_hardlinks: may not link {:#x}", inode.id));
  }
  Status write = ops::check_write(request.cred, *parent);
  if (!write.ok()) return write;
  if (inode.type == InodeType::kDirectory) {
    return Status(StatusCode::kNotPermitted, "a directory has no hard links");
  }
  if (inode.nlink == 0) {
    // Unlinked while open: Linux refuses to give it a name again (ENOENT).
    return Status(StatusCode::kNotFound, fmt::format("{:#x} has no links", inode.id));
  }
  if (inode.nlink >= kLinkMax) {
    return Status(StatusCode::kTooManyLinks,
                  fmt::format("{:#x} has {} links already", inode.id, inode.nlink));
  }
  inode.nlink += 1;
  inode.ctime_ns = now;
  txn.put_inode(inode);
  txn.put_entry(parent->id, request.new_name, DirEntry{.inode = inode.id, .type = inode.type});
  ops::touch_dir(txn, *parent, now);
  return InodeReply{.inode = inode};
}

}  // namespace

Task<Result<InodeReply>> Shard::link(const LinkRequest& request) {
  // A link across shards is the coordinator's (meta/coordinator.h).
  CO_TRY(check_local(request.new_parent));
  CO_TRY(check_local(request.inode));
  CO_TRY_ASSIGN(std::optional<InodeReply> again, remembered<InodeReply>(*this, request.tag));
  if (again) co_return std::move(*again);
  ShardTxn txn = begin();
  CO_TRY_ASSIGN(InodeReply reply, decide_link(txn, request, now_ns()));
  ops::remember(txn, request.tag, reply);
  Task<Status> committing = txn.commit();
  CO_TRY(co_await std::move(committing));
  co_return reply;
}

}  // namespace mica::meta
