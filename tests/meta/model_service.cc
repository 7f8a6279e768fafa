#include "tests/meta/model_service.h"

#include <algorithm>

#include <fmt/format.h>

#include "meta/permission.h"

// `decl = co_await task`, the task named first (g++ 12 and temporaries in co_await).
#define MODEL_AWAIT(decl, task)                       \
  auto MICA_CONCAT(model_task_, __LINE__) = (task); \
  decl = co_await std::move(MICA_CONCAT(model_task_, __LINE__))

namespace mica::meta::model {
namespace {

// One MetaService method called in process (no call context: no deadline).
template <class Request, class Reply>
Task<Result<Reply>> call(MetaServer* server,
                         Task<Result<Reply>> (MetaServer::*method)(Request, net::CallContext*),
                         Request request) {
  auto running = (server->*method)(std::move(request), nullptr);
  co_return co_await std::move(running);
}

Outcome outcome_of(const Status& status) { return Outcome{status.code(), {}}; }

template <class T>
Outcome outcome_of(const Result<T>& result) {
  return Outcome{result.ok() ? StatusCode::kOk : result.status().code(), {}};
}

Credentials root_cred() { return Credentials{}; }

}  // namespace

std::string service_attr_line(const Inode& inode) {
  uint64_t size = inode.type == InodeType::kDirectory ? 0 : inode.length;
  return fmt::format("{} 0{:o} {} {} {} {}", inode_type_name(inode.type), inode.mode, inode.uid,
                     inode.gid, inode.nlink, size);
}

Task<Result<InodeId>> ServiceDriver::walk(Credentials cred, Path path) {
  InodeId cur = kRootInode;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    LookupRequest request{.cred = cred, .parent = cur, .name = path[i]};
    MODEL_AWAIT(Result<InodeReply> found, call(server_, &MetaServer::lookup, request));
    if (!found.ok()) co_return found.status();
    if (found->inode.type == InodeType::kSymlink) co_return Status(StatusCode::kNotFound);
    if (found->inode.type != InodeType::kDirectory) {
      co_return Status(StatusCode::kNotDirectory);
    }
    cur = found->inode.id;
  }
  // Linux's path walk checks search on the last directory too, before the caller looks at
  // any other path (rename's second path, for one).
  GetattrRequest request{.inode = cur};
  MODEL_AWAIT(Result<InodeReply> dir, call(server_, &MetaServer::getattr, request));
  if (!dir.ok()) co_return dir.status();
  if (!may_search(cred, dir->inode)) co_return Status(StatusCode::kPermissionDenied);
  co_return cur;
}

Task<Result<Inode>> ServiceDriver::resolve(Credentials cred, Path path, bool follow) {
  if (path.empty()) {
    GetattrRequest request{.inode = kRootInode};
    MODEL_AWAIT(Result<InodeReply> root, call(server_, &MetaServer::getattr, request));
    if (!root.ok()) co_return root.status();
    co_return root->inode;
  }
  MODEL_AWAIT(Result<InodeId> dir, walk(cred, path));
  if (!dir.ok()) co_return dir.status();
  LookupRequest request{.cred = cred, .parent = *dir, .name = path.back()};
  MODEL_AWAIT(Result<InodeReply> found, call(server_, &MetaServer::lookup, request));
  if (!found.ok()) co_return found.status();
  if (follow && found->inode.type == InodeType::kSymlink) {
    co_return Status(StatusCode::kNotFound);
  }
  co_return found->inode;
}

Task<Outcome> ServiceDriver::make(Op op, Credentials cred) {
  MODEL_AWAIT(Result<InodeId> dir, walk(cred, op.path));
  if (!dir.ok()) co_return outcome_of(dir.status());
  if (op.kind == OpKind::kMkdir) {
    MkdirRequest request{.cred = cred, .tag = next_tag(), .parent = *dir,
                         .name = op.path.back(), .mode = op.mode};
    MODEL_AWAIT(Result<InodeReply> made, call(server_, &MetaServer::mkdir, request));
    co_return outcome_of(made);
  }
  CreateRequest request{.cred = cred, .tag = next_tag(), .parent = *dir, .name = op.path.back()};
  request.mode = op.mode;
  if (op.kind == OpKind::kMknod) request.type = InodeType::kFifo;
  if (op.kind == OpKind::kSymlink) {
    request.type = InodeType::kSymlink;
    request.symlink_target = op.target;
  }
  request.flags.exclusive = true;
  MODEL_AWAIT(Result<CreateReply> made, call(server_, &MetaServer::create, request));
  co_return outcome_of(made);
}

Task<Outcome> ServiceDriver::remove(Op op, Credentials cred) {
  MODEL_AWAIT(Result<InodeId> dir, walk(cred, op.path));
  if (!dir.ok()) co_return outcome_of(dir.status());
  RemoveRequest request{.cred = cred, .tag = next_tag(), .parent = *dir, .name = op.path.back(),
                        .directory = op.kind == OpKind::kRmdir};
  MODEL_AWAIT(Result<RemoveReply> removed, call(server_, &MetaServer::remove, request));
  co_return outcome_of(removed);
}

Task<Outcome> ServiceDriver::rename(Op op, Credentials cred) {
  // The VFS refuses RENAME_NOREPLACE with RENAME_EXCHANGE before any lookup.
  if (op.noreplace && op.exchange) co_return Outcome{StatusCode::kInvalidArgument};
  MODEL_AWAIT(Result<InodeId> from, walk(cred, op.path));
  if (!from.ok()) co_return outcome_of(from.status());
  MODEL_AWAIT(Result<InodeId> to, walk(cred, op.path2));
  if (!to.ok()) co_return outcome_of(to.status());
  RenameRequest request{.cred = cred, .tag = next_tag(), .parent = *from,
                        .name = op.path.back(), .new_parent = *to, .new_name = op.path2.back(),
                        .noreplace = op.noreplace, .exchange = op.exchange};
  MODEL_AWAIT(Result<RenameReply> renamed, call(server_, &MetaServer::rename, request));
  co_return outcome_of(renamed);
}

Task<Outcome> ServiceDriver::link(Op op, Credentials cred) {
  MODEL_AWAIT(Result<Inode> old, resolve(cred, op.path, false));
  if (!old.ok()) co_return outcome_of(old.status());
  MODEL_AWAIT(Result<InodeId> to, walk(cred, op.path2));
  if (!to.ok()) co_return outcome_of(to.status());
  LinkRequest request{.cred = cred, .tag = next_tag(), .inode = old->id, .new_parent = *to,
                      .new_name = op.path2.back()};
  MODEL_AWAIT(Result<InodeReply> linked, call(server_, &MetaServer::link, request));
  co_return outcome_of(linked);
}

Task<Outcome> ServiceDriver::setattr(Op op, Credentials cred) {
  // The VFS answers utimensat with both UTIME_OMIT before any lookup.
  if (op.kind == OpKind::kUtimens && op.atime == TimeSet::kOmit && op.mtime == TimeSet::kOmit) {
    co_return Outcome{};
  }
  bool follow = op.kind == OpKind::kChmod || op.kind == OpKind::kTruncate;
  MODEL_AWAIT(Result<Inode> inode, resolve(cred, op.path, follow));
  if (!inode.ok()) co_return outcome_of(inode.status());
  SetattrRequest request{.cred = cred, .tag = next_tag(), .inode = inode->id};
  switch (op.kind) {
    case OpKind::kChmod:
      request.mode = op.mode;
      break;
    case OpKind::kChown:
      request.uid = op.uid;
      request.gid = op.gid;
      break;
    case OpKind::kTruncate:
      request.size = op.size;
      break;
    default:
      request.atime = op.atime;
      request.atime_ns = op.atime_ns;
      request.mtime = op.mtime;
      request.mtime_ns = op.mtime_ns;
      break;
  }
  MODEL_AWAIT(Result<InodeReply> set, call(server_, &MetaServer::setattr, request));
  co_return outcome_of(set);
}

Task<Outcome> ServiceDriver::xattr(Op op, Credentials cred) {
  MODEL_AWAIT(Result<Inode> inode, resolve(cred, op.path, false));
  if (!inode.ok()) co_return outcome_of(inode.status());
  if (op.kind == OpKind::kSetxattr) {
    SetXattrRequest request{.cred = cred, .tag = next_tag(), .inode = inode->id,
                            .name = op.xname, .value = op.xvalue, .mode = op.xmode};
    MODEL_AWAIT(Result<InodeReply> set, call(server_, &MetaServer::set_xattr, request));
    co_return outcome_of(set);
  }
  if (op.kind == OpKind::kRemovexattr) {
    RemoveXattrRequest request{.cred = cred, .tag = next_tag(), .inode = inode->id,
                               .name = op.xname};
    MODEL_AWAIT(Result<InodeReply> removed, call(server_, &MetaServer::remove_xattr, request));
    co_return outcome_of(removed);
  }
  GetXattrRequest request{.cred = cred, .inode = inode->id, .name = op.xname};
  MODEL_AWAIT(Result<XattrValue> got, call(server_, &MetaServer::get_xattr, request));
  if (!got.ok()) co_return outcome_of(got.status());
  co_return Outcome{StatusCode::kOk, got->value};
}

Task<Result<std::string>> ServiceDriver::read_dir(Credentials cred, InodeId dir) {
  std::string names;
  std::string after;
  while (true) {
    ReaddirRequest request{.cred = cred, .dir = dir, .after = after, .limit = 3};
    MODEL_AWAIT(Result<ReaddirReply> page, call(server_, &MetaServer::readdir, request));
    if (!page.ok()) co_return page.status();
    for (const ReaddirEntry& entry : page->entries) {
      names += (names.empty() ? "" : ",") + entry.name;
      after = entry.name;
    }
    if (page->end || page->entries.empty()) break;
  }
  co_return names;
}

Task<Outcome> ServiceDriver::read_op(Op op, Credentials cred) {
  MODEL_AWAIT(Result<Inode> inode, resolve(cred, op.path, op.kind == OpKind::kReaddir));
  if (!inode.ok()) co_return outcome_of(inode.status());
  if (op.kind == OpKind::kStat) co_return Outcome{StatusCode::kOk, service_attr_line(*inode)};
  if (op.kind == OpKind::kReadlink) {
    ReadlinkRequest request{.inode = inode->id};
    MODEL_AWAIT(Result<ReadlinkReply> read, call(server_, &MetaServer::readlink, request));
    if (!read.ok()) co_return outcome_of(read.status());
    co_return Outcome{StatusCode::kOk, read->target};
  }
  MODEL_AWAIT(Result<std::string> names, read_dir(cred, inode->id));
  if (!names.ok()) co_return outcome_of(names.status());
  co_return Outcome{StatusCode::kOk, *names};
}

Task<Outcome> ServiceDriver::apply(Op op) {
  Credentials cred = users().at(op.user);
  switch (op.kind) {
    case OpKind::kCreate:
    case OpKind::kMknod:
    case OpKind::kMkdir:
    case OpKind::kSymlink: {
      MODEL_AWAIT(Outcome made, make(op, cred));
      co_return made;
    }
    case OpKind::kRmdir:
    case OpKind::kUnlink: {
      MODEL_AWAIT(Outcome removed, remove(op, cred));
      co_return removed;
    }
    case OpKind::kRename: {
      MODEL_AWAIT(Outcome renamed, rename(op, cred));
      co_return renamed;
    }
    case OpKind::kLink: {
      MODEL_AWAIT(Outcome linked, link(op, cred));
      co_return linked;
    }
    case OpKind::kChmod:
    case OpKind::kChown:
    case OpKind::kTruncate:
    case OpKind::kUtimens: {
      MODEL_AWAIT(Outcome set, setattr(op, cred));
      co_return set;
    }
    case OpKind::kSetxattr:
    case OpKind::kGetxattr:
    case OpKind::kRemovexattr: {
      MODEL_AWAIT(Outcome done, xattr(op, cred));
      co_return done;
    }
    default: {
      MODEL_AWAIT(Outcome read, read_op(op, cred));
      co_return read;
    }
  }
}

Task<Status> ServiceDriver::set_root_mode(uint32_t mode) {
  SetattrRequest request{.cred = root_cred(), .tag = next_tag(), .inode = kRootInode};
  request.mode = mode;
  MODEL_AWAIT(Result<InodeReply> set, call(server_, &MetaServer::setattr, request));
  co_return set.status();
}

Task<Result<std::string>> ServiceDriver::xattrs_of(InodeId inode) {
  ListXattrRequest list{.cred = root_cred(), .inode = inode};
  MODEL_AWAIT(Result<XattrNames> names, call(server_, &MetaServer::list_xattr, list));
  if (!names.ok()) co_return names.status();
  std::vector<std::string> keys;
  for (const std::string& key : names->names) {
    if (key.starts_with("user.") || key.starts_with("trusted.")) keys.push_back(key);
  }
  std::sort(keys.begin(), keys.end());
  std::string out;
  for (const std::string& key : keys) {
    GetXattrRequest request{.cred = root_cred(), .inode = inode, .name = key};
    MODEL_AWAIT(Result<XattrValue> value, call(server_, &MetaServer::get_xattr, request));
    if (!value.ok()) co_return value.status();
    out += " " + key + "=" + value->value;
  }
  co_return out;
}

Task<Status> ServiceDriver::dump_dir(InodeId dir, std::string prefix,
                                     std::map<InodeId, std::string>* seen, std::string* out) {
  std::string after;
  while (true) {
    ReaddirRequest request{.cred = root_cred(), .dir = dir, .after = after, .with_attrs = true};
    MODEL_AWAIT(Result<ReaddirReply> page, call(server_, &MetaServer::readdir, request));
    if (!page.ok()) co_return page.status();
    for (const ReaddirEntry& entry : page->entries) {
      after = entry.name;
      std::string path = prefix.empty() ? entry.name : prefix + "/" + entry.name;
      GetattrRequest get{.inode = entry.inode};
      MODEL_AWAIT(Result<InodeReply> inode, call(server_, &MetaServer::getattr, get));
      if (!inode.ok()) co_return inode.status();
      const Inode& n = inode->inode;
      *out += path + " " + service_attr_line(n);
      if (n.type != InodeType::kDirectory) {
        auto [it, fresh] = seen->emplace(n.id, path);
        if (!fresh) *out += " =" + it->second;
      }
      if (n.type == InodeType::kSymlink) *out += " ->" + n.symlink_target;
      MODEL_AWAIT(Result<std::string> xattrs, xattrs_of(n.id));
      if (!xattrs.ok()) co_return xattrs.status();
      *out += *xattrs + "\n";
      if (n.type == InodeType::kDirectory) {
        MODEL_AWAIT(Status inner, dump_dir(n.id, path, seen, out));
        if (!inner.ok()) co_return inner;
      }
    }
    if (page->end || page->entries.empty()) co_return Status::ok_status();
  }
}

Task<Result<std::string>> ServiceDriver::dump() {
  GetattrRequest get{.inode = kRootInode};
  MODEL_AWAIT(Result<InodeReply> root, call(server_, &MetaServer::getattr, get));
  if (!root.ok()) co_return root.status();
  MODEL_AWAIT(Result<std::string> xattrs, xattrs_of(kRootInode));
  if (!xattrs.ok()) co_return xattrs.status();
  std::string out = ". " + service_attr_line(root->inode) + *xattrs + "\n";
  std::map<InodeId, std::string> seen;
  MODEL_AWAIT(Status listed, dump_dir(kRootInode, "", &seen, &out));
  if (!listed.ok()) co_return listed;
  co_return out;
}

}  // namespace mica::meta::model
