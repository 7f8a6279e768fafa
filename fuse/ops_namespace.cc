// The namespace operations of the Dispatcher (fuse/dispatcher.h): inode-level calls of the
// lane's meta::MetaClient with the caller's credentials.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "fuse/dispatcher.h"
#include "fuse/dispatcher_state.h"
#include "fuse/node_id.h"

namespace mica::fuse {

namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;
// How long a lane reuses its last STATFS answer (capacity and counts a second old).
constexpr Duration kStatfsCacheTtl = std::chrono::seconds(1);

void reply_error(Request& request, int error) {
  request.reply(error, {});
}

template <class T>
void reply_struct(Request& request, const T& value) {
  std::span<const std::byte> pieces[] = {as_bytes(value)};
  request.reply(0, pieces);
}

meta::InodeType type_of_mode(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFDIR:
      return meta::InodeType::kDirectory;
    case S_IFLNK:
      return meta::InodeType::kSymlink;
    case S_IFIFO:
      return meta::InodeType::kFifo;
    case S_IFSOCK:
      return meta::InodeType::kSocket;
    case S_IFCHR:
      return meta::InodeType::kCharDevice;
    case S_IFBLK:
      return meta::InodeType::kBlockDevice;
    default:
      return meta::InodeType::kFile;
  }
}

// A payload with one name: the name, or the error to answer.
struct OneName {
  std::string name;
  int error = 0;
};
OneName one_name(std::span<const std::byte> payload) {
  std::optional<std::string_view> name = read_one_name(payload);
  if (!name) return {.name = {}, .error = -EINVAL};
  return {.name = std::string(*name), .error = name_error(*name)};
}

}  // namespace

Task<void> Dispatcher::reply_inode(Request& request, Result<meta::Inode> inode, bool entry) {
  if (!inode.ok()) {
    reply_error(request, fuse_error(inode.status()));
    co_return;
  }
  std::optional<uint64_t> length;
  CacheTimes times = cache_times(*inode, &length);
  if (entry) {
    reply_struct(request, make_entry_out(*inode, times, length));
  } else {
    reply_struct(request, make_attr_out(*inode, times, length));
  }
  co_return;
}

Task<void> Dispatcher::lookup(Request& request) {
  OneName name = one_name(request.payload());
  if (name.error != 0) {
    reply_error(request, name.error);
    co_return;
  }
  meta::LookupRequest call{.cred = credentials(request),
                           .parent = to_inode(request.header().nodeid),
                           .name = std::move(name.name)};
  auto looking = client().meta().lookup(std::move(call));
  Result<meta::InodeReply> reply = co_await std::move(looking);
  if (!reply.ok() && reply.status().code() == StatusCode::kNotFound) {
    // A negative entry: the kernel caches the ENOENT for negative_ns.
    reply_struct(request, make_negative_entry(options_.times));
    co_return;
  }
  Result<meta::Inode> inode = reply.ok() ? Result<meta::Inode>(std::move(reply->inode))
                                         : Result<meta::Inode>(reply.status());
  auto replying = reply_inode(request, std::move(inode), true);
  co_await std::move(replying);
}

Task<void> Dispatcher::getattr(Request& request) {
  meta::GetattrRequest call{.inode = to_inode(request.header().nodeid)};
  auto getting = client().meta().getattr(call);
  Result<meta::InodeReply> reply = co_await std::move(getting);
  Result<meta::Inode> inode = reply.ok() ? Result<meta::Inode>(std::move(reply->inode))
                                         : Result<meta::Inode>(reply.status());
  auto replying = reply_inode(request, std::move(inode), false);
  co_await std::move(replying);
}

namespace {

// The time a setattr sets: now, a given time, or none.
void setattr_time(uint32_t valid, uint32_t set_bit, uint32_t now_bit, uint64_t seconds,
                  uint32_t nanos, meta::TimeSet* set, int64_t* ns) {
  if ((valid & now_bit) != 0) {
    *set = meta::TimeSet::kNow;
  } else if ((valid & set_bit) != 0) {
    *set = meta::TimeSet::kValue;
    *ns = static_cast<int64_t>(seconds) * kNanosPerSecond + nanos;
  }
}

}  // namespace

Task<void> Dispatcher::setattr(Request& request) {
  std::optional<SetattrIn> in = read_struct<SetattrIn>(request.op_in());
  if (!in) {
    reply_error(request, -EINVAL);
    co_return;
  }
  meta::InodeId ino = to_inode(request.header().nodeid);
  meta::SetattrRequest call{.cred = credentials(request), .inode = ino};
  if ((in->valid & kFattrMode) != 0) call.mode = in->mode & meta::kModeBits;
  if ((in->valid & kFattrUid) != 0) call.uid = in->uid;
  if ((in->valid & kFattrGid) != 0) call.gid = in->gid;
  setattr_time(in->valid, kFattrAtime, kFattrAtimeNow, in->atime, in->atimensec, &call.atime,
               &call.atime_ns);
  setattr_time(in->valid, kFattrMtime, kFattrMtimeNow, in->mtime, in->mtimensec, &call.mtime,
               &call.mtime_ns);
  // FATTR_CTIME alone (the kernel's "touch ctime"): any setattr updates ctime on the shard.
  if ((in->valid & kFattrSize) != 0) {
    call.size = in->size;
    if (files_ != nullptr) {
      // Open handles flush and forget what they knew past the new end first.
      auto preparing = files_->before_truncate(ino, in->size);
      Status prepared = co_await std::move(preparing);
      if (!prepared.ok()) {
        reply_error(request, fuse_error(prepared));
        co_return;
      }
    }
  }
  auto setting = client().meta().setattr(std::move(call));
  Result<meta::InodeReply> reply = co_await std::move(setting);
  Result<meta::Inode> inode = reply.ok() ? Result<meta::Inode>(std::move(reply->inode))
                                         : Result<meta::Inode>(reply.status());
  auto replying = reply_inode(request, std::move(inode), false);
  co_await std::move(replying);
}

Task<void> Dispatcher::readlink(Request& request) {
  meta::ReadlinkRequest call{.inode = to_inode(request.header().nodeid)};
  auto reading = client().meta().readlink(call);
  Result<meta::ReadlinkReply> reply = co_await std::move(reading);
  if (!reply.ok()) {
    reply_error(request, fuse_error(reply.status()));
    co_return;
  }
  std::span<const std::byte> pieces[] = {std::as_bytes(std::span(reply->target))};
  request.reply(0, pieces);
}

Task<void> Dispatcher::mknod(Request& request) {
  std::optional<MknodIn> in = read_struct<MknodIn>(request.op_in());
  OneName name = one_name(request.payload());
  if (!in || name.error != 0) {
    reply_error(request, !in ? -EINVAL : name.error);
    co_return;
  }
  meta::CreateRequest call{.cred = credentials(request),
                           .parent = to_inode(request.header().nodeid),
                           .name = std::move(name.name),
                           .type = type_of_mode(in->mode),
                           .mode = in->mode & meta::kModeBits,
                           .rdev = rdev_from_kernel(in->rdev)};
  if (call.type == meta::InodeType::kDirectory || call.type == meta::InodeType::kSymlink) {
    reply_error(request, -EINVAL);
    co_return;
  }
  call.flags.exclusive = true;
  auto creating = client().meta().create(std::move(call));
  Result<meta::CreateReply> reply = co_await std::move(creating);
  Result<meta::Inode> inode = reply.ok() ? Result<meta::Inode>(std::move(reply->inode))
                                         : Result<meta::Inode>(reply.status());
  auto replying = reply_inode(request, std::move(inode), true);
  co_await std::move(replying);
}

Task<void> Dispatcher::mkdir(Request& request) {
  std::optional<MkdirIn> in = read_struct<MkdirIn>(request.op_in());
  OneName name = one_name(request.payload());
  if (!in || name.error != 0) {
    reply_error(request, !in ? -EINVAL : name.error);
    co_return;
  }
  meta::MkdirRequest call{.cred = credentials(request),
                          .parent = to_inode(request.header().nodeid),
                          .name = std::move(name.name),
                          .mode = in->mode & meta::kModeBits};
  auto making = client().meta().mkdir(std::move(call));
  Result<meta::InodeReply> reply = co_await std::move(making);
  Result<meta::Inode> inode = reply.ok() ? Result<meta::Inode>(std::move(reply->inode))
                                         : Result<meta::Inode>(reply.status());
  auto replying = reply_inode(request, std::move(inode), true);
  co_await std::move(replying);
}

Task<void> Dispatcher::remove(Request& request, bool directory) {
  OneName name = one_name(request.payload());
  if (name.error != 0) {
    reply_error(request, name.error);
    co_return;
  }
  meta::RemoveRequest call{.cred = credentials(request),
                           .parent = to_inode(request.header().nodeid),
                           .name = std::move(name.name),
                           .directory = directory};
  auto removing = client().meta().remove(std::move(call));
  Result<meta::RemoveReply> reply = co_await std::move(removing);
  reply_error(request, reply.ok() ? 0 : fuse_error(reply.status()));
}

Task<void> Dispatcher::symlink(Request& request) {
  PayloadReader reader(request.payload());
  std::optional<std::string_view> name = reader.name();
  std::optional<std::string_view> target = reader.name();
  if (!name || !target || target->empty()) {
    reply_error(request, -EINVAL);
    co_return;
  }
  if (int error = name_error(*name); error != 0) {
    reply_error(request, error);
    co_return;
  }
  if (target->size() > meta::kSymlinkMax) {
    reply_error(request, -ENAMETOOLONG);
    co_return;
  }
  meta::CreateRequest call{.cred = credentials(request),
                           .parent = to_inode(request.header().nodeid),
                           .name = std::string(*name),
                           .type = meta::InodeType::kSymlink,
                           .mode = 0777,
                           .symlink_target = std::string(*target)};
  call.flags.exclusive = true;
  auto creating = client().meta().create(std::move(call));
  Result<meta::CreateReply> reply = co_await std::move(creating);
  Result<meta::Inode> inode = reply.ok() ? Result<meta::Inode>(std::move(reply->inode))
                                         : Result<meta::Inode>(reply.status());
  auto replying = reply_inode(request, std::move(inode), true);
  co_await std::move(replying);
}

Task<void> Dispatcher::rename(Request& request) {
  uint64_t newdir = 0;
  uint32_t flags = 0;
  if (request.opcode() == Opcode::kRename2) {
    std::optional<Rename2In> in = read_struct<Rename2In>(request.op_in());
    if (in) {
      newdir = in->newdir;
      flags = in->flags;
    }
  } else if (std::optional<RenameIn> in = read_struct<RenameIn>(request.op_in())) {
    newdir = in->newdir;
  }
  PayloadReader reader(request.payload());
  std::optional<std::string_view> from = reader.name();
  std::optional<std::string_view> to = reader.name();
  uint32_t known = kRenameNoreplace | kRenameExchange;
  bool bad_flags = (flags & ~known) != 0 || flags == known;  // WHITEOUT and unknown: EINVAL
  if (newdir == 0 || !from || !to || bad_flags) {
    reply_error(request, -EINVAL);
    co_return;
  }
  int error = name_error(*from);
  if (error == 0) error = name_error(*to);
  if (error != 0) {
    reply_error(request, error);
    co_return;
  }
  meta::RenameRequest call{.cred = credentials(request),
                           .parent = to_inode(request.header().nodeid),
                           .name = std::string(*from),
                           .new_parent = to_inode(newdir),
                           .new_name = std::string(*to),
                           .noreplace = (flags & kRenameNoreplace) != 0,
                           .exchange = (flags & kRenameExchange) != 0};
  auto renaming = client().meta().rename(std::move(call));
  Result<meta::RenameReply> reply = co_await std::move(renaming);
  reply_error(request, reply.ok() ? 0 : fuse_error(reply.status()));
}

Task<void> Dispatcher::link(Request& request) {
  std::optional<LinkIn> in = read_struct<LinkIn>(request.op_in());
  OneName name = one_name(request.payload());
  if (!in || name.error != 0) {
    reply_error(request, !in ? -EINVAL : name.error);
    co_return;
  }
  meta::LinkRequest call{.cred = credentials(request),
                         .inode = to_inode(in->oldnodeid),
                         .new_parent = to_inode(request.header().nodeid),
                         .new_name = std::move(name.name)};
  auto linking = client().meta().link(std::move(call));
  Result<meta::InodeReply> reply = co_await std::move(linking);
  Result<meta::Inode> inode = reply.ok() ? Result<meta::Inode>(std::move(reply->inode))
                                         : Result<meta::Inode>(reply.status());
  auto replying = reply_inode(request, std::move(inode), true);
  co_await std::move(replying);
}

Task<void> Dispatcher::statfs(Request& request) {
  TimePoint now = Executor::current()->now();
  if (lane().statfs && lane().statfs_expires > now) {
    reply_struct(request, make_statfs_out(*lane().statfs));
    co_return;
  }
  auto asking = client().meta().statfs(meta::StatfsRequest{});
  Result<meta::StatfsReply> reply = co_await std::move(asking);
  if (!reply.ok()) {
    reply_error(request, fuse_error(reply.status()));
    co_return;
  }
  // After the suspension: the lane (this executor's) is still the request's.
  lane().statfs = *reply;
  lane().statfs_expires = Executor::current()->now() + kStatfsCacheTtl;
  reply_struct(request, make_statfs_out(*reply));
}

namespace {

// access(2)'s check against the inode's bits: owner, then group (primary or supplementary),
// then other; root passes R/W always and X when any x bit is set (or on a directory).
bool may_access(const meta::Inode& inode, const Credentials& cred, uint32_t mask) {
  if (mask == F_OK) return true;
  uint32_t mode = inode.mode;
  if (cred.uid == 0) {
    if ((mask & X_OK) == 0) return true;
    return inode.type == meta::InodeType::kDirectory || (mode & 0111) != 0;
  }
  uint32_t bits = mode & 07;
  if (cred.uid == inode.uid) {
    bits = (mode >> 6) & 07;
  } else if (cred.in_group(inode.gid)) {
    bits = (mode >> 3) & 07;
  }
  return (bits & mask) == mask;
}

}  // namespace

Task<void> Dispatcher::access(Request& request) {
  std::optional<AccessIn> in = read_struct<AccessIn>(request.op_in());
  if (!in) {
    reply_error(request, -EINVAL);
    co_return;
  }
  Credentials cred = credentials(request);
  meta::GetattrRequest call{.inode = to_inode(request.header().nodeid)};
  auto getting = client().meta().getattr(call);
  Result<meta::InodeReply> reply = co_await std::move(getting);
  if (!reply.ok()) {
    reply_error(request, fuse_error(reply.status()));
    co_return;
  }
  reply_error(request, may_access(reply->inode, cred, in->mask & 07) ? 0 : -EACCES);
}

}  // namespace mica::fuse
