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

// rename(2)'s refusals that need no map, in the order Linux checks them.
Status check_rename(const RenameRequest& r, const RenameView& v) {
  bool cross = r.parent != r.new_parent;
  if (r.exchange && !v.dest) return Status(StatusCode::kNotFound, "nothing to exchange with");
  if (r.noreplace && v.dest) return Status(StatusCode::kAlreadyExists, "the new name exists");
  if (!may_write(r.cred, v.parent) || !may_write(r.cred, v.new_parent))
    return Status(StatusCode::kPermissionDenied, "no write permission on a parent");
  if (!may_delete_in(r.cred, v.parent, v.src) ||
      (v.dst && !may_delete_in(r.cred, v.new_parent, *v.dst)))
    return Status(StatusCode::kNotPermitted, "sticky directory");
  if (v.dst && !r.exchange) {
    if (is_dir(v.src) && !is_dir(*v.dst))
      return Status(StatusCode::kNotDirectory, "a directory over a non-directory");
    if (!is_dir(v.src) && is_dir(*v.dst))
      return Status(StatusCode::kIsDirectory, "a non-directory over a directory");
  }
  // A directory changing parents rewrites its "..": the caller needs write on it.
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
  CO_TRY(check_name(r.name));
  CO_TRY(check_name(r.new_name));
  if (r.exchange && r.noreplace)
    co_return Status(StatusCode::kInvalidArgument, "RENAME_EXCHANGE with RENAME_NOREPLACE");
  auto looking = look(stepper(), r);
  CO_TRY_ASSIGN(RenameView v, co_await std::move(looking));
  Planned planned;
  if (v.dest && v.dest->inode == v.source.inode) {  // the same inode: rename does nothing
    planned.answer = RenameReply{.moved = v.src};
    co_return planned;
  }
  CO_TRY(check_rename(r, v));
  bool cross = r.parent != r.new_parent;
  if (cross && is_dir(v.src)) {
    auto checking = is_ancestor(v.src.id, r.new_parent);
    CO_TRY_ASSIGN(bool loop, co_await std::move(checking));
    if (loop) co_return Status(StatusCode::kInvalidArgument, "a directory into its own subtree");
  }
  if (cross && r.exchange && v.dst && is_dir(*v.dst)) {
    auto checking = is_ancestor(v.dst->id, r.parent);
    CO_TRY_ASSIGN(bool loop, co_await std::move(checking));
    if (loop) co_return Status(StatusCode::kInvalidArgument, "a directory into its own subtree");
  }
  planned.moves_directory = cross && (is_dir(v.src) || (r.exchange && v.dst && is_dir(*v.dst)));
  planned.record = rename_plan(r, v, now_ns());
  co_return planned;
}

}  // namespace mica::meta
