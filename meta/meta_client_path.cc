// MetaClient::resolve: a path walk by lookups from the root (meta/meta_client.h).
#include <deque>

#include "meta/meta_client.h"

namespace mica::meta {

// The walk's state: where it is and what is left of the path (symlink targets spliced in
// front as they are met).
struct MetaClient::Walk {
  Credentials cred;
  Inode current;
  InodeId parent = kRootInode;
  std::string name;
  std::deque<std::string> left;
  uint32_t links = 0;
  bool trailing_slash = false;
};

namespace {

// The components of a path ("" and "." dropped); kNameTooLong for one past kNameMax.
Result<std::deque<std::string>> split_path(std::string_view path) {
  std::deque<std::string> out;
  size_t at = 0;
  while (at < path.size()) {
    size_t end = path.find('/', at);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(at, end - at);
    if (part.size() > kNameMax)
      return Status(
          StatusCode::kNameTooLong,
          fmt::format("a path component of {} bytes (at most {})", part.size(), kNameMax));
    if (!part.empty() && part != ".") out.emplace_back(part);
    at = end + 1;
  }
  return out;
}

}  // namespace

// One component: "..", a lookup, and a symlink spliced in when it is to be followed.
Task<Status> MetaClient::walk_component(Walk* walk, std::string name, bool last, bool follow_last,
                                        TimePoint deadline) {
  if (walk->current.type != InodeType::kDirectory)
    co_return Status(StatusCode::kNotDirectory,
                     fmt::format("a path component before '{}' is not a directory", name));
  CallOptions options{.deadline = deadline};
  if (name == "..") {
    // Search permission on the directory is what Linux checks for "..": a lookup of the
    // directory itself would need a name, so the parent is fetched by getattr.
    InodeId up = walk->current.parent == 0 ? kRootInode : walk->current.parent;
    auto getting = getattr(GetattrRequest{.inode = up}, options);
    CO_TRY_ASSIGN(InodeReply reply, co_await std::move(getting));
    walk->parent = reply.inode.parent == 0 ? kRootInode : reply.inode.parent;
    walk->name = name;
    walk->current = std::move(reply.inode);
    co_return Status::ok_status();
  }
  auto looking =
      lookup(LookupRequest{.cred = walk->cred, .parent = walk->current.id, .name = name}, options);
  CO_TRY_ASSIGN(InodeReply reply, co_await std::move(looking));
  bool follow = reply.inode.type == InodeType::kSymlink && (!last || follow_last);
  if (!follow) {
    walk->parent = walk->current.id;
    walk->name = std::move(name);
    walk->current = std::move(reply.inode);
    co_return Status::ok_status();
  }
  if (++walk->links > kSymlinkDepthMax)
    co_return Status(StatusCode::kLoop,
                     fmt::format("more than {} symbolic links in the path", kSymlinkDepthMax));
  std::string target = reply.inode.symlink_target;
  if (target.empty()) {
    auto reading = readlink(ReadlinkRequest{.inode = reply.inode.id}, options);
    CO_TRY_ASSIGN(ReadlinkReply link, co_await std::move(reading));
    target = std::move(link.target);
  }
  CO_TRY_ASSIGN(std::deque<std::string> parts, split_path(target));
  if (target.starts_with('/')) {
    auto getting = getattr(GetattrRequest{.inode = kRootInode}, options);
    CO_TRY_ASSIGN(InodeReply root, co_await std::move(getting));
    walk->current = std::move(root.inode);
    walk->parent = kRootInode;
    walk->name.clear();
  }
  // A link's target ending in '/' needs a directory, as a path ending in '/' does.
  if (last && target.ends_with('/')) walk->trailing_slash = true;
  walk->left.insert(walk->left.begin(), parts.begin(), parts.end());
  co_return Status::ok_status();
}

Task<Result<Resolved>> MetaClient::resolve(Credentials cred, std::string path, bool follow_last,
                                           CallOptions options) {
  if (path.empty() || path[0] != '/')
    co_return Status(StatusCode::kInvalidArgument,
                     fmt::format("'{}' is not an absolute path", path));
  if (path.size() > kPathMax)
    co_return Status(StatusCode::kNameTooLong,
                     fmt::format("a path of {} bytes (at most {})", path.size(), kPathMax));
  TimePoint deadline = deadline_of(options);
  Walk walk{.cred = std::move(cred)};
  CO_TRY_ASSIGN(walk.left, split_path(path));
  walk.trailing_slash = path.size() > 1 && path.back() == '/';
  auto getting = getattr(GetattrRequest{.inode = kRootInode}, CallOptions{.deadline = deadline});
  CO_TRY_ASSIGN(InodeReply root, co_await std::move(getting));
  walk.current = std::move(root.inode);
  while (!walk.left.empty()) {
    std::string name = std::move(walk.left.front());
    walk.left.pop_front();
    bool last = walk.left.empty();
    auto walking =
        walk_component(&walk, std::move(name), last, follow_last || walk.trailing_slash, deadline);
    CO_TRY(co_await std::move(walking));
  }
  if (walk.trailing_slash && walk.current.type != InodeType::kDirectory)
    co_return Status(StatusCode::kNotDirectory,
                     fmt::format("'{}' ends in '/' but is not a directory", path));
  co_return Resolved{
      .inode = std::move(walk.current), .parent = walk.parent, .name = std::move(walk.name)};
}

}  // namespace mica::meta
