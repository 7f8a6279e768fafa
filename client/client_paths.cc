// Client's path calls (client/client.h): each walks its path with the call's credentials
// under the call's one deadline (the walk and the request share it), then sends the one
// MetaService request the operation maps to. POSIX's rules live on the server
// (meta/meta_service.h); what is checked here is what only the path shows: the root, "."
// and ".." as a last component, a trailing '/', and the flags of rename and setxattr.
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <ctime>
#include <utility>

#include "client/client.h"

namespace mica::client {

namespace {

using MetaCall = meta::MetaClient::CallOptions;

constexpr int64_t kNanosPerSecond = 1'000'000'000;

// A path cut into the directory holding its last component and that component.
struct SplitPath {
  std::string parent;  // "/" for a name in the root
  std::string name;    // "" for the root itself
  bool trailing_slash = false;
};

// "/a/b/c" -> ("/a/b", "c"); "/a/b/" -> ("/a", "b", trailing); "/" -> ("/", "").
// Relative paths are resolve()'s to refuse (kInvalidArgument).
SplitPath split_path(std::string_view path) {
  SplitPath out;
  size_t end = path.size();
  while (end > 1 && path[end - 1] == '/') --end;
  out.trailing_slash = end < path.size();
  std::string_view trimmed = path.substr(0, end);
  size_t slash = trimmed.rfind('/');
  if (slash == std::string_view::npos) {
    out.parent = std::string(trimmed);  // relative: resolve() refuses it
    return out;
  }
  out.name = std::string(trimmed.substr(slash + 1));
  std::string_view parent = trimmed.substr(0, slash);
  out.parent = parent.empty() ? "/" : std::string(parent);
  return out;
}

bool is_dot_name(const std::string& name) { return name.empty() || name == "." || name == ".."; }

Status name_status(StatusCode code, const std::string& what, std::string_view path) {
  return Status(code, fmt::format("{} '{}'", what, path));
}

Result<meta::XattrMode> xattr_mode(int flags) {
  if ((flags & ~(XATTR_CREATE | XATTR_REPLACE)) != 0 ||
      flags == (XATTR_CREATE | XATTR_REPLACE))
    return Status(StatusCode::kInvalidArgument, fmt::format("setxattr flags {:#x}", flags));
  if (flags == XATTR_CREATE) return meta::XattrMode::kCreate;
  if (flags == XATTR_REPLACE) return meta::XattrMode::kReplace;
  return meta::XattrMode::kAny;
}

// utimensat(2)'s timespec: UTIME_NOW, UTIME_OMIT, or a time (tv_nsec within a second).
Status set_time(const struct timespec& time, meta::TimeSet* set, int64_t* ns) {
  if (time.tv_nsec == UTIME_OMIT) {
    *set = meta::TimeSet::kOmit;
  } else if (time.tv_nsec == UTIME_NOW) {
    *set = meta::TimeSet::kNow;
  } else if (time.tv_nsec < 0 || time.tv_nsec >= kNanosPerSecond) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("a time with {} nanoseconds", time.tv_nsec));
  } else {
    *set = meta::TimeSet::kValue;
    *ns = static_cast<int64_t>(time.tv_sec) * kNanosPerSecond + time.tv_nsec;
  }
  return Status::ok_status();
}

// The directory named by path's parent part (a directory, else kNotDirectory), walked as
// cred; the last component stays in split->name.
Task<Result<Inode>> resolve_parent(meta::MetaClient* meta, Credentials cred,
                                          SplitPath split, TimePoint deadline) {
  auto resolving = meta->resolve(std::move(cred), split.parent, true, MetaCall{deadline});
  CO_TRY_ASSIGN(meta::Resolved parent, co_await std::move(resolving));
  if (parent.inode.type != meta::InodeType::kDirectory)
    co_return Status(StatusCode::kNotDirectory,
                     fmt::format("'{}' is not a directory", split.parent));
  co_return std::move(parent.inode);
}

// The inode path names (follow_last: a symlink at the end is followed).
Task<Result<Inode>> resolve_inode(meta::MetaClient* meta, Credentials cred,
                                         std::string path, bool follow_last,
                                         TimePoint deadline) {
  auto resolving = meta->resolve(std::move(cred), std::move(path), follow_last,
                                 MetaCall{deadline});
  CO_TRY_ASSIGN(meta::Resolved resolved, co_await std::move(resolving));
  co_return std::move(resolved.inode);
}

}  // namespace

Task<Result<Inode>> Client::stat(std::string path, CallOptions options) {
  auto resolving = resolve_inode(meta_.get(), credentials(options), std::move(path), true,
                                 deadline(options));
  co_return co_await std::move(resolving);
}

Task<Result<Inode>> Client::lstat(std::string path, CallOptions options) {
  auto resolving = resolve_inode(meta_.get(), credentials(options), std::move(path), false,
                                 deadline(options));
  co_return co_await std::move(resolving);
}

Task<Result<Inode>> Client::mkdir(std::string path, uint32_t mode, CallOptions options) {
  TimePoint until = deadline(options);
  SplitPath split = split_path(path);
  auto resolving = resolve_parent(meta_.get(), credentials(options), split, until);
  CO_TRY_ASSIGN(Inode parent, co_await std::move(resolving));
  // "/", "/a/." and "/a/.." exist already (Linux answers EEXIST, not EINVAL).
  if (is_dot_name(split.name)) co_return name_status(StatusCode::kAlreadyExists, "mkdir", path);
  meta::MkdirRequest request{.cred = credentials(options),
                             .parent = parent.id,
                             .name = split.name,
                             .mode = mode & meta::kModeBits};
  auto making = meta_->mkdir(std::move(request), MetaCall{until});
  CO_TRY_ASSIGN(meta::InodeReply reply, co_await std::move(making));
  co_return std::move(reply.inode);
}

namespace {

// unlink and rmdir: one RemoveRequest, after the checks Linux makes on the path itself.
Task<Status> remove_path(meta::MetaClient* meta, Credentials cred, std::string path,
                                bool directory, TimePoint deadline) {
  SplitPath split = split_path(path);
  auto resolving = resolve_parent(meta, cred, split, deadline);
  CO_TRY_ASSIGN(Inode parent, co_await std::move(resolving));
  if (split.name.empty())
    co_return name_status(directory ? StatusCode::kBusy : StatusCode::kIsDirectory,
                          directory ? "rmdir of the root" : "unlink of the root", path);
  if (directory && split.name == ".")
    co_return name_status(StatusCode::kInvalidArgument, "rmdir of '.'", path);
  if (directory && split.name == "..")
    co_return name_status(StatusCode::kNotEmpty, "rmdir of '..'", path);
  if (!directory && is_dot_name(split.name))
    co_return name_status(StatusCode::kIsDirectory, "unlink of a directory", path);
  if (!directory && split.trailing_slash) {
    // "file/" is ENOTDIR, "dir/" EISDIR: the entry decides, as Linux's walk does.
    auto looking = resolve_inode(meta, cred, path, false, deadline);
    CO_TRY_ASSIGN(Inode entry, co_await std::move(looking));
    (void)entry;  // resolve() answered kNotDirectory for anything but a directory
    co_return name_status(StatusCode::kIsDirectory, "unlink of a directory", path);
  }
  meta::RemoveRequest request{
      .cred = std::move(cred), .parent = parent.id, .name = split.name, .directory = directory};
  auto removing = meta->remove(std::move(request), MetaCall{deadline});
  CO_TRY(co_await std::move(removing));
  co_return Status::ok_status();
}

}  // namespace

Task<Status> Client::rmdir(std::string path, CallOptions options) {
  auto removing =
      remove_path(meta_.get(), credentials(options), std::move(path), true, deadline(options));
  co_return co_await std::move(removing);
}

Task<Status> Client::unlink(std::string path, CallOptions options) {
  auto removing =
      remove_path(meta_.get(), credentials(options), std::move(path), false, deadline(options));
  co_return co_await std::move(removing);
}

Task<Status> Client::rename(std::string from, std::string to, unsigned flags,
                            CallOptions options) {
  if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) != 0 ||
      flags == (RENAME_NOREPLACE | RENAME_EXCHANGE))
    co_return Status(StatusCode::kInvalidArgument, fmt::format("rename flags {:#x}", flags));
  TimePoint until = deadline(options);
  const Credentials& cred = credentials(options);
  SplitPath old_split = split_path(from);
  SplitPath new_split = split_path(to);
  auto resolving_old = resolve_parent(meta_.get(), cred, old_split, until);
  CO_TRY_ASSIGN(Inode old_parent, co_await std::move(resolving_old));
  auto resolving_new = resolve_parent(meta_.get(), cred, new_split, until);
  CO_TRY_ASSIGN(Inode new_parent, co_await std::move(resolving_new));
  // The root, "." and ".." are busy mount points or the walk itself to Linux.
  if (is_dot_name(old_split.name) || is_dot_name(new_split.name))
    co_return Status(StatusCode::kBusy, fmt::format("rename '{}' -> '{}'", from, to));
  meta::RenameRequest request{.cred = cred,
                              .parent = old_parent.id,
                              .name = old_split.name,
                              .new_parent = new_parent.id,
                              .new_name = new_split.name,
                              .noreplace = (flags & RENAME_NOREPLACE) != 0,
                              .exchange = (flags & RENAME_EXCHANGE) != 0};
  auto renaming = meta_->rename(std::move(request), MetaCall{until});
  CO_TRY(co_await std::move(renaming));
  co_return Status::ok_status();
}

Task<Result<Inode>> Client::link(std::string existing, std::string new_path,
                                 CallOptions options) {
  TimePoint until = deadline(options);
  const Credentials& cred = credentials(options);
  // link(2) does not follow a symlink at the end of the existing path.
  auto resolving = resolve_inode(meta_.get(), cred, existing, false, until);
  CO_TRY_ASSIGN(Inode target, co_await std::move(resolving));
  SplitPath split = split_path(new_path);
  auto resolving_parent = resolve_parent(meta_.get(), cred, split, until);
  CO_TRY_ASSIGN(Inode parent, co_await std::move(resolving_parent));
  if (is_dot_name(split.name))
    co_return name_status(StatusCode::kAlreadyExists, "link to", new_path);
  meta::LinkRequest request{
      .cred = cred, .inode = target.id, .new_parent = parent.id, .new_name = split.name};
  auto linking = meta_->link(std::move(request), MetaCall{until});
  CO_TRY_ASSIGN(meta::InodeReply reply, co_await std::move(linking));
  co_return std::move(reply.inode);
}

Task<Result<Inode>> Client::symlink(std::string target, std::string link_path,
                                    CallOptions options) {
  if (target.empty()) co_return Status(StatusCode::kNotFound, "a symlink to an empty target");
  if (target.size() > meta::kSymlinkMax)
    co_return Status(StatusCode::kNameTooLong,
                     fmt::format("a symlink target of {} bytes (at most {})", target.size(),
                                 meta::kSymlinkMax));
  TimePoint until = deadline(options);
  SplitPath split = split_path(link_path);
  auto resolving = resolve_parent(meta_.get(), credentials(options), split, until);
  CO_TRY_ASSIGN(Inode parent, co_await std::move(resolving));
  if (is_dot_name(split.name))
    co_return name_status(StatusCode::kAlreadyExists, "symlink at", link_path);
  meta::CreateRequest request{.cred = credentials(options),
                              .parent = parent.id,
                              .name = split.name,
                              .type = meta::InodeType::kSymlink,
                              .mode = 0777,
                              .symlink_target = std::move(target)};
  auto creating = meta_->create(std::move(request), MetaCall{until});
  CO_TRY_ASSIGN(meta::CreateReply reply, co_await std::move(creating));
  co_return std::move(reply.inode);
}

Task<Result<std::string>> Client::readlink(std::string path, CallOptions options) {
  TimePoint until = deadline(options);
  auto resolving = resolve_inode(meta_.get(), credentials(options), path, false, until);
  CO_TRY_ASSIGN(Inode inode, co_await std::move(resolving));
  if (inode.type != meta::InodeType::kSymlink)
    co_return name_status(StatusCode::kInvalidArgument, "readlink of a non-symlink", path);
  if (!inode.symlink_target.empty()) co_return std::move(inode.symlink_target);
  auto reading = meta_->readlink(meta::ReadlinkRequest{.inode = inode.id}, MetaCall{until});
  CO_TRY_ASSIGN(meta::ReadlinkReply reply, co_await std::move(reading));
  co_return std::move(reply.target);
}

Task<Result<DirPage>> Client::readdir(std::string path, std::string after, CallOptions options) {
  TimePoint until = deadline(options);
  auto resolving = resolve_inode(meta_.get(), credentials(options), path, true, until);
  CO_TRY_ASSIGN(Inode dir, co_await std::move(resolving));
  if (dir.type != meta::InodeType::kDirectory)
    co_return name_status(StatusCode::kNotDirectory, "readdir of a non-directory", path);
  meta::ReaddirRequest request{
      .cred = credentials(options), .dir = dir.id, .after = std::move(after), .with_attrs = true};
  auto reading = meta_->readdir(std::move(request), MetaCall{until});
  CO_TRY_ASSIGN(meta::ReaddirReply reply, co_await std::move(reading));
  co_return DirPage{.entries = std::move(reply.entries), .done = reply.end};
}

namespace {

// chmod, chown, utimens and truncate: the path's inode (symlinks followed), then setattr.
Task<Status> setattr_path(meta::MetaClient* meta, Credentials cred, std::string path,
                                 meta::SetattrRequest request, TimePoint deadline) {
  auto resolving = resolve_inode(meta, cred, std::move(path), true, deadline);
  CO_TRY_ASSIGN(Inode inode, co_await std::move(resolving));
  if (request.size && inode.type == meta::InodeType::kDirectory)
    co_return Status(StatusCode::kIsDirectory, "truncate of a directory");
  if (request.size && inode.type != meta::InodeType::kFile)
    co_return Status(StatusCode::kInvalidArgument, "truncate of a non-regular file");
  request.cred = std::move(cred);
  request.inode = inode.id;
  auto setting = meta->setattr(std::move(request), MetaCall{deadline});
  CO_TRY(co_await std::move(setting));
  co_return Status::ok_status();
}

}  // namespace

Task<Status> Client::chmod(std::string path, uint32_t mode, CallOptions options) {
  meta::SetattrRequest request{.mode = mode & meta::kModeBits};
  auto setting = setattr_path(meta_.get(), credentials(options), std::move(path),
                              std::move(request), deadline(options));
  co_return co_await std::move(setting);
}

Task<Status> Client::chown(std::string path, std::optional<uint32_t> uid,
                           std::optional<uint32_t> gid, CallOptions options) {
  meta::SetattrRequest request{.uid = uid, .gid = gid};
  auto setting = setattr_path(meta_.get(), credentials(options), std::move(path),
                              std::move(request), deadline(options));
  co_return co_await std::move(setting);
}

Task<Status> Client::utimens(std::string path, struct timespec atime, struct timespec mtime,
                             CallOptions options) {
  meta::SetattrRequest request;
  CO_TRY(set_time(atime, &request.atime, &request.atime_ns));
  CO_TRY(set_time(mtime, &request.mtime, &request.mtime_ns));
  auto setting = setattr_path(meta_.get(), credentials(options), std::move(path),
                              std::move(request), deadline(options));
  co_return co_await std::move(setting);
}

Task<Status> Client::truncate(std::string path, uint64_t length, CallOptions options) {
  // The shard cuts the chunks past the new end on storage before it commits the length.
  meta::SetattrRequest request{.size = length};
  auto setting = setattr_path(meta_.get(), credentials(options), std::move(path),
                              std::move(request), deadline(options));
  co_return co_await std::move(setting);
}

Task<Result<std::string>> Client::getxattr(std::string path, std::string name,
                                           CallOptions options) {
  TimePoint until = deadline(options);
  auto resolving = resolve_inode(meta_.get(), credentials(options), std::move(path), true, until);
  CO_TRY_ASSIGN(Inode inode, co_await std::move(resolving));
  meta::GetXattrRequest request{
      .cred = credentials(options), .inode = inode.id, .name = std::move(name)};
  auto getting = meta_->get_xattr(std::move(request), MetaCall{until});
  CO_TRY_ASSIGN(meta::XattrValue value, co_await std::move(getting));
  co_return std::move(value.value);
}

Task<Status> Client::setxattr(std::string path, std::string name, std::string value, int flags,
                              CallOptions options) {
  CO_TRY_ASSIGN(meta::XattrMode mode, xattr_mode(flags));
  TimePoint until = deadline(options);
  auto resolving = resolve_inode(meta_.get(), credentials(options), std::move(path), true, until);
  CO_TRY_ASSIGN(Inode inode, co_await std::move(resolving));
  meta::SetXattrRequest request{.cred = credentials(options),
                                .inode = inode.id,
                                .name = std::move(name),
                                .value = std::move(value),
                                .mode = mode};
  auto setting = meta_->set_xattr(std::move(request), MetaCall{until});
  CO_TRY(co_await std::move(setting));
  co_return Status::ok_status();
}

Task<Result<std::vector<std::string>>> Client::listxattr(std::string path, CallOptions options) {
  TimePoint until = deadline(options);
  auto resolving = resolve_inode(meta_.get(), credentials(options), std::move(path), true, until);
  CO_TRY_ASSIGN(Inode inode, co_await std::move(resolving));
  meta::ListXattrRequest request{.cred = credentials(options), .inode = inode.id};
  auto listing = meta_->list_xattr(std::move(request), MetaCall{until});
  CO_TRY_ASSIGN(meta::XattrNames names, co_await std::move(listing));
  co_return std::move(names.names);
}

Task<Status> Client::removexattr(std::string path, std::string name, CallOptions options) {
  TimePoint until = deadline(options);
  auto resolving = resolve_inode(meta_.get(), credentials(options), std::move(path), true, until);
  CO_TRY_ASSIGN(Inode inode, co_await std::move(resolving));
  meta::RemoveXattrRequest request{
      .cred = credentials(options), .inode = inode.id, .name = std::move(name)};
  auto removing = meta_->remove_xattr(std::move(request), MetaCall{until});
  CO_TRY(co_await std::move(removing));
  co_return Status::ok_status();
}

Task<Result<meta::StatfsReply>> Client::statfs(CallOptions options) {
  auto asking = meta_->statfs(meta::StatfsRequest{}, MetaCall{deadline(options)});
  co_return co_await std::move(asking);
}

}  // namespace mica::client
