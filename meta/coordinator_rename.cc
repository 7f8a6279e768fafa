// Planning a rename through the coordinator (meta/coordinator_plan.cc has the others): the
// checks of rename(2) and renameat2's RENAME_NOREPLACE and RENAME_EXCHANGE, the loop check
// against the directory -> parent map, and the plan. docs/meta.md ("Coordinator").
#include "meta/coordinator.h"
#include "meta/coordinator_state.h"
#include "meta/permission.h"

namespace mica::meta {
namespace {

Task<Result<ProbeReply>> probe_entry(ShardStepper* stepper, InodeId parent, std::string name) {
  ProbeRequest request{.shard = shard_of(parent),
                       .inode = parent,
                       .parent = parent,
                       .name = std::move(name),
                       .check_empty = false};
  auto probing = stepper->probe(std::move(request));
  co_return co_await std::move(probing);
}

Task<Result<ProbeReply>> probe_inode(ShardStepper* stepper, InodeId inode, bool check_empty) {
  ProbeRequest request{.shard = shard_of(inode), .inode = inode, .check_empty = check_empty};
  auto probing = stepper->probe(std::move(request));
  co_return co_await std::move(probing);
}

bool is_dir(const Inode& inode) {
  return inode.type == InodeType::kDirectory;
}

// What a rename's checks look at.
struct RenameView {
  Inode parent;
  Inode new_parent;
  DirEntry source;
  std::optional<DirEntry> dest;
  Inode src;
  std::optional<Inode> dst;
  bool dst_has_entries = false;
};

Status check_dir(const std::optional<Inode>& dir, const Credentials& cred) {
  if (!dir) return Status(StatusCode::kNotFound, "no such directory");
  if (!is_dir(*dir)) return Status(StatusCode::kNotDirectory, "the parent is not a directory");
  if (!may_search(cred, *dir))
    return Status(StatusCode::kPermissionDenied, "no search permission on a parent");
  return Status();
}

Task<Result<RenameView>> look(ShardStepper* stepper, const RenameRequest& r) {
  RenameView v;
  auto first = probe_entry(stepper, r.parent, r.name);
  CO_TRY_ASSIGN(ProbeReply p, co_await std::move(first));
  auto second = probe_entry(stepper, r.new_parent, r.new_name);
  CO_TRY_ASSIGN(ProbeReply np, co_await std::move(second));
  CO_TRY(check_dir(p.inode, r.cred));
  CO_TRY(check_dir(np.inode, r.cred));
  v.parent = *p.inode;
  v.new_parent = *np.inode;
  if (!p.entry || p.entry->created_locked) co_return Status(StatusCode::kNotFound, "no such entry");
  v.source = *p.entry;
  if (np.entry && np.entry->created_locked)
    co_return Status(StatusCode::kBusy, "the new name is being created");
  v.dest = np.entry;
  auto src = probe_inode(stepper, v.source.inode, false);
  CO_TRY_ASSIGN(ProbeReply s, co_await std::move(src));
  if (!s.inode) co_return Status(StatusCode::kNotFound, "the entry's inode is gone");
  v.src = *s.inode;
  if (v.dest && v.dest->inode != v.source.inode) {
    auto dst = probe_inode(stepper, v.dest->inode, true);
    CO_TRY_ASSIGN(ProbeReply d, co_await std::move(dst));
    if (!d.inode) co_return Status(StatusCode::kNotFound, "the new name's inode is gone");
    v.dst = d.inode;
    v.dst_has_entries = d.has_entries;
  }
  co_return v;
}

// What names the rename refers to, checked before the loop check (Linux's do_renameat2).
Status check_names(const RenameRequest& r, const RenameView& v) {
  if (r.noreplace && v.dest) return Status(StatusCode::kAlreadyExists, "the new name exists");
  if (r.exchange && !v.dest) return Status(StatusCode::kNotFound, "nothing to exchange with");
  return Status();
}

// may_delete of Linux for one side: write and search on the directory, the sticky rule,
// then the type of the victim against what replaces it.
Status check_delete(const Credentials& cred, const Inode& dir, const Inode& victim,
                    bool replaced_by_dir) {
  if (!may_write(cred, dir))
    return Status(StatusCode::kPermissionDenied, "no write permission on a parent");
  if (!may_delete_in(cred, dir, victim)) return Status(StatusCode::kNotPermitted, "sticky");
  if (replaced_by_dir && !is_dir(victim))
    return Status(StatusCode::kNotDirectory, "a directory over a non-directory");
  if (!replaced_by_dir && is_dir(victim))
    return Status(StatusCode::kIsDirectory, "a non-directory over a directory");
  return Status();
}

// rename(2)'s refusals after the loop check, in the order Linux checks them (vfs_rename).
Status check_rename(const RenameRequest& r, const RenameView& v) {
  bool cross = r.parent != r.new_parent;
  Status s = check_delete(r.cred, v.parent, v.src, is_dir(v.src));
  if (!s.ok()) return s;
  if (!v.dst) {
    if (!may_write(r.cred, v.new_parent))
      return Status(StatusCode::kPermissionDenied, "no write permission on the new parent");
  } else {
    s = check_delete(r.cred, v.new_parent, *v.dst, r.exchange ? is_dir(*v.dst) : is_dir(v.src));
    if (!s.ok()) return s;
  }
  if (cross && ((is_dir(v.src) && !may_write(r.cred, v.src)) ||
                (r.exchange && v.dst && is_dir(*v.dst) && !may_write(r.cred, *v.dst))))
    return Status(StatusCode::kPermissionDenied, "no write permission on a moved directory");
  if (v.source.locked_by != 0 || (v.dest && v.dest->locked_by != 0))
    return Status(StatusCode::kBusy, "an entry is changing");
  if (v.dst && !r.exchange && is_dir(*v.dst) && v.dst_has_entries)
    return Status(StatusCode::kNotEmpty, "the directory replaced has entries");
  if (cross && is_dir(v.src) && !(v.dst && is_dir(*v.dst) && !r.exchange) &&
      v.new_parent.nlink >= kLinkMax)
    return Status(StatusCode::kTooManyLinks, "the new parent's nlink");
  return Status();
}

StepRequest rename_entry_step(StepKind kind, InodeId parent, const std::string& name,
                              DirEntry entry, int64_t now) {
  StepRequest step;
  step.shard = shard_of(parent);
  step.kind = kind;
  step.parent = parent;
  step.name = name;
  step.entry = DirEntry{.inode = entry.inode, .type = entry.type};
  step.time_ns = now;
  return step;
}

// The moved (or exchanged) inode: a directory that changes parents gets its new one.
StepRequest set_inode_step(const Inode& inode, InodeId new_parent, bool cross, int64_t now) {
  StepRequest step;
  step.shard = shard_of(inode.id);
  step.kind = StepKind::kSetInode;
  step.inode.id = inode.id;
  step.new_parent = (cross && is_dir(inode)) ? new_parent : 0;
  step.time_ns = now;
  return step;
}

// After the locks: set both inodes (the first is the decision), then put both entries.
void plan_exchange(const RenameRequest& r, const RenameView& v, int64_t now, OpRecord* op,
                   StepRequest put_new, StepRequest old) {
  bool cross = r.parent != r.new_parent;
  bool src_dir = is_dir(v.src);
  bool dst_dir = is_dir(*v.dst);
  op->plan.push_back(set_inode_step(v.src, r.new_parent, cross, now));
  op->plan.push_back(set_inode_step(*v.dst, r.parent, cross, now));
  old.entry = DirEntry{.inode = v.dst->id, .type = v.dst->type};
  if (cross) {
    put_new.nlink_delta = (src_dir ? 1 : 0) - (dst_dir ? 1 : 0);
    old.nlink_delta = (dst_dir ? 1 : 0) - (src_dir ? 1 : 0);
    if (src_dir) op->map_set.push_back({.dir = v.src.id, .parent = r.new_parent});
    if (dst_dir) op->map_set.push_back({.dir = v.dst->id, .parent = r.parent});
  }
  op->inode_step = 2;
  op->replaced_step = 3;
  op->plan.push_back(std::move(put_new));
  op->plan.push_back(std::move(old));
}

// After the locks: drop what the new name named (the decision, when there is one), set the
// moved inode, put the new entry, erase the old one.
void plan_move(const RenameRequest& r, const RenameView& v, int64_t now, OpRecord* op,
               StepRequest put_new, StepRequest old) {
  bool cross = r.parent != r.new_parent;
  bool src_dir = is_dir(v.src);
  bool dst_dir = v.dst && is_dir(*v.dst);
  if (v.dst) {
    StepRequest drop;
    drop.shard = shard_of(v.dst->id);
    drop.kind = dst_dir ? StepKind::kRemoveDir : StepKind::kDropLink;
    drop.inode.id = v.dst->id;
    drop.time_ns = now;
    op->plan.push_back(drop);
    op->replaced_step = 2;
    if (dst_dir) op->map_erase = {v.dst->id};
  }
  op->inode_step = static_cast<int32_t>(op->plan.size());
  op->plan.push_back(set_inode_step(v.src, r.new_parent, cross, now));
  put_new.nlink_delta = (cross && src_dir ? 1 : 0) - (dst_dir ? 1 : 0);
  old.erase = true;
  old.nlink_delta = cross && src_dir ? -1 : 0;
  op->plan.push_back(std::move(put_new));
  op->plan.push_back(std::move(old));
  if (cross && src_dir) op->map_set.push_back({.dir = v.src.id, .parent = r.new_parent});
}

// Steps: lock both names (or create the new one locked), decide, then put the new name and
// erase (or swap) the old one.
OpRecord rename_plan(const RenameRequest& r, const RenameView& v, int64_t now) {
  OpRecord op;
  op.kind = OpKind::kRename;
  op.tag = r.tag;
  DirEntry moved{.inode = v.src.id, .type = v.src.type};
  op.plan.push_back(rename_entry_step(StepKind::kLockEntry, r.parent, r.name, v.source, now));
  if (v.dest)
    op.plan.push_back(
        rename_entry_step(StepKind::kLockEntry, r.new_parent, r.new_name, *v.dest, now));
  else
    op.plan.push_back(
        rename_entry_step(StepKind::kCreateEntry, r.new_parent, r.new_name, moved, now));
  op.decision = 2;
  StepRequest put_new =
      rename_entry_step(StepKind::kFinishEntry, r.new_parent, r.new_name, moved, now);
  StepRequest old = rename_entry_step(StepKind::kFinishEntry, r.parent, r.name, v.source, now);
  if (r.exchange)
    plan_exchange(r, v, now, &op, std::move(put_new), std::move(old));
  else
    plan_move(r, v, now, &op, std::move(put_new), std::move(old));
  return op;
}

}  // namespace

Task<Result<Planned>> Coordinator::State::plan_rename(RenameRequest r) {
  // renameat2 refuses the flag combination before it looks at any name.
  if (r.exchange && r.noreplace)
    co_return Status(StatusCode::kInvalidArgument, "RENAME_EXCHANGE with RENAME_NOREPLACE");
  CO_TRY(check_name(r.name));
  CO_TRY(check_name(r.new_name));
  auto looking = look(stepper(), r);
  CO_TRY_ASSIGN(RenameView v, co_await std::move(looking));
  CO_TRY(check_names(r, v));
  Planned planned;
  bool cross = r.parent != r.new_parent;
  // lock_rename's trap, before any permission check: the source may not be an ancestor of
  // the new parent (EINVAL), the new name may not be an ancestor of the old parent
  // (ENOTEMPTY; EINVAL for an exchange).
  if (cross && is_dir(v.src)) {
    auto checking = is_ancestor(v.src.id, r.new_parent);
    CO_TRY_ASSIGN(bool loop, co_await std::move(checking));
    if (loop) co_return Status(StatusCode::kInvalidArgument, "a directory into its own subtree");
  }
  if (cross && v.dst && is_dir(*v.dst)) {
    auto checking = is_ancestor(v.dst->id, r.parent);
    CO_TRY_ASSIGN(bool loop, co_await std::move(checking));
    if (loop && r.exchange)
      co_return Status(StatusCode::kInvalidArgument, "a directory into its own subtree");
    if (loop) co_return Status(StatusCode::kNotEmpty, "the new name is an ancestor");
  }
  if (v.dest && v.dest->inode == v.source.inode) {  // the same inode: rename does nothing
    planned.answer = RenameReply{.moved = v.src};
    co_return planned;
  }
  CO_TRY(check_rename(r, v));
  planned.moves_directory = cross && (is_dir(v.src) || (r.exchange && v.dst && is_dir(*v.dst)));
  planned.record = rename_plan(r, v, now_ns());
  co_return planned;
}

}  // namespace mica::meta
