#include "tests/meta/posix_model.h"

#include <fmt/format.h>

namespace mica::meta::model {
namespace {

constexpr uint32_t kRead = 4;
constexpr uint32_t kWrite = 2;
constexpr uint32_t kExec = 1;
constexpr uint32_t kGroupExec = 0010;

bool is_root(const Credentials& cred) { return cred.uid == 0; }

}  // namespace

std::string outcome_string(const Outcome& outcome) {
  std::string out(status_code_name(outcome.code));
  if (!outcome.value.empty()) out += " [" + outcome.value + "]";
  return out;
}

PosixModel::PosixModel(ModelOptions options) : options_(options) {
  Node root;
  root.type = InodeType::kDirectory;
  root.mode = options_.root_mode;
  root.links = 1;
  root.parent = kRoot;
  nodes_[kRoot] = root;
}

bool PosixModel::may(const Credentials& cred, uint32_t id, uint32_t mask) const {
  const Node& n = nodes_.at(id);
  if (is_root(cred)) {
    // Root reads and writes anything; it executes a non-directory only with an x bit.
    if ((mask & kExec) == 0 || n.type == InodeType::kDirectory) return true;
    return (n.mode & 0111) != 0;
  }
  uint32_t bits = n.mode & 7;
  if (cred.uid == n.uid) {
    bits = (n.mode >> 6) & 7;
  } else if (cred.in_group(n.gid)) {
    bits = (n.mode >> 3) & 7;
  }
  return (bits & mask) == mask;
}

bool PosixModel::owner_or_root(const Credentials& cred, uint32_t id) const {
  return is_root(cred) || cred.uid == nodes_.at(id).uid;
}

bool PosixModel::sticky_denies(const Credentials& cred, uint32_t dir, uint32_t victim) const {
  const Node& d = nodes_.at(dir);
  if ((d.mode & kSticky) == 0 || is_root(cred)) return false;
  return cred.uid != nodes_.at(victim).uid && cred.uid != d.uid;
}

StatusCode PosixModel::may_delete(const Credentials& cred, uint32_t dir, uint32_t victim,
                                  bool is_dir) const {
  if (!may(cred, dir, kWrite | kExec)) return StatusCode::kPermissionDenied;
  if (sticky_denies(cred, dir, victim)) return StatusCode::kNotPermitted;
  bool victim_dir = nodes_.at(victim).type == InodeType::kDirectory;
  if (is_dir && !victim_dir) return StatusCode::kNotDirectory;
  if (!is_dir && victim_dir) return StatusCode::kIsDirectory;
  return StatusCode::kOk;
}

bool PosixModel::is_ancestor(uint32_t ancestor, uint32_t id) const {
  while (true) {
    if (id == ancestor) return true;
    if (id == kRoot) return false;
    id = nodes_.at(id).parent;
  }
}

uint32_t PosixModel::child_towards(uint32_t ancestor, uint32_t id) const {
  while (nodes_.at(id).parent != ancestor) id = nodes_.at(id).parent;
  return id;
}

PosixModel::Resolved PosixModel::resolve(const Credentials& cred, const Path& path) const {
  Resolved r;
  uint32_t cur = kRoot;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    if (!may(cred, cur, kExec)) return {.code = StatusCode::kPermissionDenied};
    const Node& d = nodes_.at(cur);
    auto it = d.children.find(path[i]);
    if (it == d.children.end()) return {.code = StatusCode::kNotFound};
    const Node& c = nodes_.at(it->second);
    // Symlink targets never resolve (model_ops.h).
    if (c.type == InodeType::kSymlink) return {.code = StatusCode::kNotFound};
    if (c.type != InodeType::kDirectory) return {.code = StatusCode::kNotDirectory};
    cur = it->second;
  }
  if (!may(cred, cur, kExec)) return {.code = StatusCode::kPermissionDenied};
  r.dir = cur;
  r.name = path.back();
  const Node& d = nodes_.at(cur);
  auto it = d.children.find(r.name);
  r.child = it == d.children.end() ? 0 : it->second;
  return r;
}

Result<uint32_t> PosixModel::resolve_nofollow(const Credentials& cred, const Path& path) const {
  if (path.empty()) return kRoot;
  Resolved r = resolve(cred, path);
  if (r.code != StatusCode::kOk) return Status(r.code);
  if (r.child == 0) return Status(StatusCode::kNotFound);
  return r.child;
}

Result<uint32_t> PosixModel::resolve_follow(const Credentials& cred, const Path& path) const {
  Result<uint32_t> id = resolve_nofollow(cred, path);
  if (id.ok() && nodes_.at(*id).type == InodeType::kSymlink) {
    return Status(StatusCode::kNotFound);
  }
  return id;
}

uint32_t PosixModel::nlink(uint32_t id) const {
  const Node& n = nodes_.at(id);
  if (n.type != InodeType::kDirectory) return n.links;
  uint32_t count = 2;
  for (const auto& [name, child] : n.children) {
    if (nodes_.at(child).type == InodeType::kDirectory) ++count;
  }
  return count;
}

std::string PosixModel::attr_line(uint32_t id) const {
  const Node& n = nodes_.at(id);
  uint64_t size = n.type == InodeType::kDirectory ? 0 : n.size;
  return fmt::format("{} 0{:o} {} {} {} {}", inode_type_name(n.type), n.mode, n.uid, n.gid,
                     nlink(id), size);
}

uint32_t PosixModel::find_id(const Path& path) const {
  uint32_t cur = kRoot;
  for (const std::string& part : path) {
    const Node& d = nodes_.at(cur);
    auto it = d.children.find(part);
    if (it == d.children.end()) return 0;
    cur = it->second;
  }
  return cur;
}

const Node* PosixModel::find(const Path& path) const {
  uint32_t id = find_id(path);
  return id == 0 ? nullptr : &nodes_.at(id);
}

std::vector<Path> PosixModel::paths() const {
  std::vector<Path> out;
  std::vector<Path> stack = {Path{}};
  while (!stack.empty()) {
    Path dir = stack.back();
    stack.pop_back();
    const Node& d = nodes_.at(find_id(dir));
    for (const auto& [name, child] : d.children) {
      Path p = dir;
      p.push_back(name);
      out.push_back(p);
      if (nodes_.at(child).type == InodeType::kDirectory) stack.push_back(p);
    }
  }
  return out;
}

void PosixModel::dump_dir(uint32_t dir, const std::string& prefix,
                          std::map<uint32_t, std::string>& seen, std::string& out) const {
  for (const auto& [name, child] : nodes_.at(dir).children) {
    std::string path = prefix.empty() ? name : prefix + "/" + name;
    const Node& n = nodes_.at(child);
    out += path + " " + attr_line(child);
    if (n.type != InodeType::kDirectory) {
      auto [it, fresh] = seen.emplace(child, path);
      if (!fresh) out += " =" + it->second;
    }
    if (n.type == InodeType::kSymlink) out += " ->" + n.target;
    for (const auto& [key, value] : n.xattrs) out += " " + key + "=" + value;
    out += "\n";
    if (n.type == InodeType::kDirectory) dump_dir(child, path, seen, out);
  }
}

std::string PosixModel::dump() const {
  std::string out = ". " + attr_line(kRoot);
  for (const auto& [key, value] : nodes_.at(kRoot).xattrs) out += " " + key + "=" + value;
  out += "\n";
  std::map<uint32_t, std::string> seen;
  dump_dir(kRoot, "", seen, out);
  return out;
}

void PosixModel::unlink_entry(uint32_t dir, const std::string& name) {
  Node& d = nodes_.at(dir);
  uint32_t id = d.children.at(name);
  d.children.erase(name);
  Node& n = nodes_.at(id);
  if (n.type == InodeType::kDirectory || --n.links == 0) nodes_.erase(id);
}

Outcome PosixModel::apply(const Op& op) {
  const Credentials& cred = users().at(op.user);
  switch (op.kind) {
    case OpKind::kCreate:
    case OpKind::kMknod:
    case OpKind::kMkdir:
    case OpKind::kSymlink:
      return make(op, cred);
    case OpKind::kRmdir:
    case OpKind::kUnlink:
      return remove(op, cred);
    case OpKind::kRename:
      return rename(op, cred);
    case OpKind::kLink:
      return link(op, cred);
    case OpKind::kChmod:
      return chmod(op, cred);
    case OpKind::kChown:
      return chown(op, cred);
    case OpKind::kTruncate:
      return truncate(op, cred);
    case OpKind::kUtimens:
      return utimens(op, cred);
    case OpKind::kSetxattr:
    case OpKind::kGetxattr:
    case OpKind::kRemovexattr:
      return xattr(op, cred);
    default:
      return read_op(op, cred);
  }
}

Outcome PosixModel::make(const Op& op, const Credentials& cred) {
  Resolved r = resolve(cred, op.path);
  if (r.code != StatusCode::kOk) return {r.code};
  if (r.child != 0) return {StatusCode::kAlreadyExists};
  if (!may(cred, r.dir, kWrite | kExec)) return {StatusCode::kPermissionDenied};
  const Node& d = nodes_.at(r.dir);
  bool sgid_dir = (d.mode & kSetGid) != 0;
  Node n;
  n.uid = cred.uid;
  n.gid = sgid_dir ? d.gid : cred.gid;
  n.links = 1;
  switch (op.kind) {
    case OpKind::kMkdir:
      n.type = InodeType::kDirectory;
      // Linux drops SUID/SGID from mkdir's mode and sets SGID under an SGID parent.
      n.mode = (op.mode & (0777 | kSticky)) | (sgid_dir ? kSetGid : 0);
      n.parent = r.dir;
      break;
    case OpKind::kSymlink:
      n.type = InodeType::kSymlink;
      n.mode = 0777;
      n.target = op.target;
      n.size = op.target.size();
      break;
    default:
      n.type = op.kind == OpKind::kMknod ? InodeType::kFifo : InodeType::kFile;
      n.mode = op.mode & kModeBits;
      // mode_strip_sgid: an SGID-executable file in an SGID directory whose group the
      // creator is not in loses SGID.
      if ((n.mode & (kSetGid | kGroupExec)) == (kSetGid | kGroupExec) && sgid_dir &&
          !is_root(cred) && !cred.in_group(d.gid)) {
        n.mode &= ~kSetGid;
      }
      break;
  }
  uint32_t id = next_id_++;
  nodes_[id] = n;
  nodes_.at(r.dir).children[r.name] = id;
  return {};
}

Outcome PosixModel::remove(const Op& op, const Credentials& cred) {
  Resolved r = resolve(cred, op.path);
  if (r.code != StatusCode::kOk) return {r.code};
  if (r.child == 0) return {StatusCode::kNotFound};
  bool rmdir = op.kind == OpKind::kRmdir;
  StatusCode code = may_delete(cred, r.dir, r.child, rmdir);
  if (code != StatusCode::kOk) return {code};
  if (rmdir && !nodes_.at(r.child).children.empty()) return {StatusCode::kNotEmpty};
  unlink_entry(r.dir, r.name);
  return {};
}

StatusCode PosixModel::rename_checks(const Op& op, const Credentials& cred,
                                     const Resolved& from, const Resolved& to) const {
  if (from.child == 0) return StatusCode::kNotFound;
  if (op.noreplace && to.child != 0) return StatusCode::kAlreadyExists;
  if (op.exchange && to.child == 0) return StatusCode::kNotFound;
  // lock_rename's trap: the child of the common ancestor on the way to the other parent.
  uint32_t trap = 0;
  if (from.dir != to.dir) {
    if (is_ancestor(from.dir, to.dir)) {
      trap = child_towards(from.dir, to.dir);
    } else if (is_ancestor(to.dir, from.dir)) {
      trap = child_towards(to.dir, from.dir);
    }
  }
  if (trap != 0 && from.child == trap) return StatusCode::kInvalidArgument;
  if (trap != 0 && to.child == trap) {
    return op.exchange ? StatusCode::kInvalidArgument : StatusCode::kNotEmpty;
  }
  if (from.child == to.child) return StatusCode::kOk;  // the same inode: nothing to do
  bool is_dir = nodes_.at(from.child).type == InodeType::kDirectory;
  StatusCode code = may_delete(cred, from.dir, from.child, is_dir);
  if (code != StatusCode::kOk) return code;
  bool to_dir = to.child != 0 && nodes_.at(to.child).type == InodeType::kDirectory;
  if (to.child == 0) {
    if (!may(cred, to.dir, kWrite | kExec)) return StatusCode::kPermissionDenied;
  } else {
    code = may_delete(cred, to.dir, to.child, op.exchange ? to_dir : is_dir);
    if (code != StatusCode::kOk) return code;
  }
  // A directory changing parents rewrites its "..": it needs write permission itself.
  if (from.dir != to.dir) {
    if (is_dir && !may(cred, from.child, kWrite)) return StatusCode::kPermissionDenied;
    if (op.exchange && to_dir && !may(cred, to.child, kWrite)) {
      return StatusCode::kPermissionDenied;
    }
  }
  if (!op.exchange && to_dir && !nodes_.at(to.child).children.empty()) {
    return StatusCode::kNotEmpty;
  }
  return StatusCode::kOk;
}

void PosixModel::do_rename(const Op& op, const Resolved& from, const Resolved& to) {
  uint32_t moved = from.child;
  if (op.exchange) {
    nodes_.at(from.dir).children[from.name] = to.child;
    nodes_.at(to.dir).children[to.name] = moved;
    if (nodes_.at(to.child).type == InodeType::kDirectory) nodes_.at(to.child).parent = from.dir;
  } else {
    if (to.child != 0) unlink_entry(to.dir, to.name);
    nodes_.at(from.dir).children.erase(from.name);
    nodes_.at(to.dir).children[to.name] = moved;
  }
  if (nodes_.at(moved).type == InodeType::kDirectory) nodes_.at(moved).parent = to.dir;
}

Outcome PosixModel::rename(const Op& op, const Credentials& cred) {
  if (op.noreplace && op.exchange) return {StatusCode::kInvalidArgument};
  Resolved from = resolve(cred, op.path);
  if (from.code != StatusCode::kOk) return {from.code};
  Resolved to = resolve(cred, op.path2);
  if (to.code != StatusCode::kOk) return {to.code};
  StatusCode code = rename_checks(op, cred, from, to);
  if (code != StatusCode::kOk || from.child == to.child) return {code};
  do_rename(op, from, to);
  return {};
}

Outcome PosixModel::link(const Op& op, const Credentials& cred) {
  Result<uint32_t> old = resolve_nofollow(cred, op.path);
  if (!old.ok()) return {old.status().code()};
  Resolved to = resolve(cred, op.path2);
  if (to.code != StatusCode::kOk) return {to.code};
  if (to.child != 0) return {StatusCode::kAlreadyExists};
  const Node& n = nodes_.at(*old);
  if (options_.protected_hardlinks && !owner_or_root(cred, *old)) {
    bool safe = n.type == InodeType::kFile && (n.mode & kSetUid) == 0 &&
                (n.mode & (kSetGid | kGroupExec)) != (kSetGid | kGroupExec) &&
                may(cred, *old, kRead | kWrite);
    if (!safe) return {StatusCode::kNotPermitted};
  }
  if (!may(cred, to.dir, kWrite | kExec)) return {StatusCode::kPermissionDenied};
  if (n.type == InodeType::kDirectory) return {StatusCode::kNotPermitted};
  nodes_.at(*old).links++;
  nodes_.at(to.dir).children[to.name] = *old;
  return {};
}

Outcome PosixModel::chmod(const Op& op, const Credentials& cred) {
  Result<uint32_t> id = resolve_follow(cred, op.path);
  if (!id.ok()) return {id.status().code()};
  if (!owner_or_root(cred, *id)) return {StatusCode::kNotPermitted};
  Node& n = nodes_.at(*id);
  uint32_t mode = op.mode & kModeBits;
  if (!is_root(cred) && !cred.in_group(n.gid)) mode &= ~kSetGid;
  n.mode = mode;
  return {};
}

Outcome PosixModel::chown(const Op& op, const Credentials& cred) {
  Result<uint32_t> id = resolve_nofollow(cred, op.path);
  if (!id.ok()) return {id.status().code()};
  Node& n = nodes_.at(*id);
  bool root = is_root(cred);
  if (op.uid && !root && !(cred.uid == n.uid && *op.uid == n.uid)) {
    return {StatusCode::kNotPermitted};
  }
  if (op.gid && !root && !(cred.uid == n.uid && (cred.in_group(*op.gid) || *op.gid == n.gid))) {
    return {StatusCode::kNotPermitted};
  }
  if (n.type != InodeType::kDirectory) {
    // ATTR_KILL_SUID always; SGID when group-executable or the caller is not in the group.
    bool kill_sgid = (n.mode & kSetGid) != 0 &&
                     ((n.mode & kGroupExec) != 0 || !(root || cred.in_group(n.gid)));
    bool mode_set = false;
    if ((n.mode & kSetUid) != 0) {
      n.mode &= ~kSetUid;
      mode_set = true;
    }
    if (kill_sgid) {
      n.mode &= ~kSetGid;
      mode_set = true;
    }
    uint32_t new_gid = op.gid ? *op.gid : n.gid;
    if (mode_set && !root && !cred.in_group(new_gid)) n.mode &= ~kSetGid;
  }
  if (op.uid) n.uid = *op.uid;
  if (op.gid) n.gid = *op.gid;
  return {};
}

Outcome PosixModel::truncate(const Op& op, const Credentials& cred) {
  Result<uint32_t> id = resolve_follow(cred, op.path);
  if (!id.ok()) return {id.status().code()};
  Node& n = nodes_.at(*id);
  if (n.type == InodeType::kDirectory) return {StatusCode::kIsDirectory};
  if (n.type != InodeType::kFile) return {StatusCode::kInvalidArgument};
  if (!may(cred, *id, kWrite)) return {StatusCode::kPermissionDenied};
  if (!is_root(cred)) {
    n.mode &= ~kSetUid;
    if ((n.mode & kSetGid) != 0 && ((n.mode & kGroupExec) != 0 || !cred.in_group(n.gid))) {
      n.mode &= ~kSetGid;
    }
  }
  n.size = op.size;
  return {};
}

Outcome PosixModel::utimens(const Op& op, const Credentials& cred) {
  // Linux answers both UTIME_OMIT before it even looks the path up (do_utimes).
  if (op.atime == TimeSet::kOmit && op.mtime == TimeSet::kOmit) return {};
  Result<uint32_t> id = resolve_nofollow(cred, op.path);
  if (!id.ok()) return {id.status().code()};
  if (op.atime == TimeSet::kNow && op.mtime == TimeSet::kNow) {
    if (!owner_or_root(cred, *id) && !may(cred, *id, kWrite)) {
      return {StatusCode::kPermissionDenied};
    }
    return {};
  }
  if (!owner_or_root(cred, *id)) return {StatusCode::kNotPermitted};
  return {};
}

Outcome PosixModel::xattr(const Op& op, const Credentials& cred) {
  Result<uint32_t> id = resolve_nofollow(cred, op.path);
  if (!id.ok()) return {id.status().code()};
  Node& n = nodes_.at(*id);
  bool write = op.kind != OpKind::kGetxattr;
  StatusCode refused = write ? StatusCode::kNotPermitted : StatusCode::kNoData;
  if (op.xname.starts_with("trusted.")) {
    if (!is_root(cred)) return {refused};
  } else if (op.xname.starts_with("user.")) {
    if (n.type != InodeType::kFile && n.type != InodeType::kDirectory) return {refused};
    if (n.type == InodeType::kDirectory && (n.mode & kSticky) != 0 && write &&
        !owner_or_root(cred, *id)) {
      return {StatusCode::kNotPermitted};
    }
  }
  if (!may(cred, *id, write ? kWrite : kRead)) return {StatusCode::kPermissionDenied};
  auto it = n.xattrs.find(op.xname);
  switch (op.kind) {
    case OpKind::kSetxattr:
      if (op.xmode == XattrMode::kCreate && it != n.xattrs.end()) {
        return {StatusCode::kAlreadyExists};
      }
      if (op.xmode == XattrMode::kReplace && it == n.xattrs.end()) {
        return {StatusCode::kNoData};
      }
      n.xattrs[op.xname] = op.xvalue;
      return {};
    case OpKind::kGetxattr:
      if (it == n.xattrs.end()) return {StatusCode::kNoData};
      return {StatusCode::kOk, it->second};
    default:
      if (it == n.xattrs.end()) return {StatusCode::kNoData};
      n.xattrs.erase(it);
      return {};
  }
}

Outcome PosixModel::read_op(const Op& op, const Credentials& cred) {
  if (op.kind == OpKind::kReaddir) {
    Result<uint32_t> id = resolve_follow(cred, op.path);
    if (!id.ok()) return {id.status().code()};
    const Node& n = nodes_.at(*id);
    if (n.type != InodeType::kDirectory) return {StatusCode::kNotDirectory};
    if (!may(cred, *id, kRead)) return {StatusCode::kPermissionDenied};
    std::string names;
    for (const auto& [name, child] : n.children) names += (names.empty() ? "" : ",") + name;
    return {StatusCode::kOk, names};
  }
  Result<uint32_t> id = resolve_nofollow(cred, op.path);
  if (!id.ok()) return {id.status().code()};
  const Node& n = nodes_.at(*id);
  if (op.kind == OpKind::kReadlink) {
    if (n.type != InodeType::kSymlink) return {StatusCode::kInvalidArgument};
    return {StatusCode::kOk, n.target};
  }
  return {StatusCode::kOk, attr_line(*id)};
}

}  // namespace mica::meta::model
