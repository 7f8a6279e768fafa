// Planning the coordinator's operations: every refusal POSIX names is decided here from
// probes of the shards, before any step; a plan is the list of steps that does the
// operation, with the index of its decision step. docs/meta.md ("Coordinator") lists the
// plans. The steps re-check what they rely on (a concurrent change makes one refuse, and
// the operation rolls back), so a probe's answer only has to be right most of the time.
#include "async/log.h"
#include "meta/coordinator.h"
#include "meta/coordinator_state.h"
#include "meta/permission.h"

namespace mica::meta {
namespace {

constexpr uint32_t kNewDirModeBits = 01777;  // mkdir's mode: SGID comes from the parent only

StepRequest make_step(ShardId shard, StepKind kind, int64_t time_ns) {
  StepRequest step;
  step.shard = shard;
  step.kind = kind;
  step.time_ns = time_ns;
  return step;
}

StepRequest entry_step(StepKind kind, InodeId parent, std::string_view name, DirEntry entry,
                       int64_t time_ns) {
  StepRequest step = make_step(shard_of(parent), kind, time_ns);
  step.parent = parent;
  step.name = std::string(name);
  step.entry = entry;
  return step;
}

StepRequest inode_step(StepKind kind, InodeId inode, int64_t time_ns) {
  StepRequest step = make_step(shard_of(inode), kind, time_ns);
  step.inode.id = inode;
  return step;
}

Task<Result<ProbeReply>> probe(ShardStepper* stepper, InodeId inode, InodeId parent,
                               std::string name, bool check_empty) {
  ProbeRequest request{.shard = shard_of(inode != 0 ? inode : parent),
                       .inode = inode,
                       .parent = parent,
                       .name = std::move(name),
                       .check_empty = check_empty};
  auto probing = stepper->probe(std::move(request));
  co_return co_await std::move(probing);
}

// A directory the caller may search, and its entry `name` if there is one.
struct DirLookup {
  Inode dir;
  std::optional<DirEntry> entry;
};

Task<Result<DirLookup>> lookup_dir(ShardStepper* stepper, Credentials cred, InodeId parent,
                                   std::string name) {
  auto probing = probe(stepper, parent, parent, std::move(name), false);
  Result<ProbeReply> got = co_await std::move(probing);
  if (!got.ok()) co_return got.status();
  if (!got->inode) co_return Status(StatusCode::kNotFound, "no such directory");
  if (got->inode->type != InodeType::kDirectory)
    co_return Status(StatusCode::kNotDirectory, "the parent is not a directory");
  if (!may_search(cred, *got->inode))
    co_return Status(StatusCode::kPermissionDenied, "no search permission on the parent");
  co_return DirLookup{.dir = *got->inode, .entry = got->entry};
}

// The visible entry, or kNotFound (an entry being created is not there yet).
Result<DirEntry> visible(const std::optional<DirEntry>& entry) {
  if (!entry || entry->created_locked) return Status(StatusCode::kNotFound, "no such entry");
  return *entry;
}

Task<Result<Inode>> inode_of(ShardStepper* stepper, InodeId inode, bool check_empty,
                             bool* has_entries) {
  auto probing = probe(stepper, inode, 0, "", check_empty);
  Result<ProbeReply> got = co_await std::move(probing);
  if (!got.ok()) co_return got.status();
  if (!got->inode) co_return Status(StatusCode::kNotFound, "the entry's inode is gone");
  if (has_entries != nullptr) *has_entries = got->has_entries;
  co_return *got->inode;
}

bool is_dir(const Inode& inode) {
  return inode.type == InodeType::kDirectory;
}

}  // namespace

Task<Result<bool>> Coordinator::State::is_ancestor(InodeId dir, InodeId x) {
  InodeId at = x;
  for (size_t hops = 0; hops <= parents.size() + 1; ++hops) {
    if (at == dir) co_return true;
    if (at == kRootInode) co_return false;
    auto it = parents.find(at);
    if (it != parents.end()) {
      at = it->second;
      continue;
    }
    auto reading = inode_of(stepper(), at, false, nullptr);
    Result<Inode> inode = co_await std::move(reading);
    if (!inode.ok() && inode.status().code() == StatusCode::kNotFound) co_return false;
    if (!inode.ok()) co_return inode.status();
    at = inode->parent;
  }
  co_return Status(StatusCode::kCorruption, "the directory -> parent map has a cycle");
}

Task<Result<Planned>> Coordinator::State::plan_mkdir(MkdirRequest r) {
  CO_TRY(check_name(r.name));
  auto looking = lookup_dir(stepper(), r.cred, r.parent, r.name);
  CO_TRY_ASSIGN(DirLookup p, co_await std::move(looking));
  if (p.entry && p.entry->created_locked)
    co_return Status(StatusCode::kBusy, "the name is being created");
  if (p.entry) co_return Status(StatusCode::kAlreadyExists, "the name exists");
  if (!may_write(r.cred, p.dir))
    co_return Status(StatusCode::kPermissionDenied, "no write permission on the parent");
  if (p.dir.nlink >= kLinkMax) co_return Status(StatusCode::kTooManyLinks, "parent nlink");
  int64_t now = now_ns();
  Inode dir;
  dir.type = InodeType::kDirectory;
  dir.mode = r.mode & kNewDirModeBits;
  dir.uid = r.cred.uid;
  dir.gid = r.cred.gid;
  dir.nlink = 2;
  dir.atime_ns = dir.mtime_ns = dir.ctime_ns = now;
  dir.parent = r.parent;
  inherit_from_parent(r.cred, p.dir, &dir);
  ShardId shard = directory_shard(options.placement_seed, r.parent, r.name, options.shard_count);
  Planned planned;
  OpRecord& op = planned.record;
  op.kind = OpKind::kMkdir;
  op.tag = r.tag;
  StepRequest create = make_step(shard, StepKind::kCreateInode, now);
  create.inode = dir;
  DirEntry entry{.inode = 0, .type = InodeType::kDirectory};
  StepRequest finish = entry_step(StepKind::kFinishEntry, r.parent, r.name, entry, now);
  finish.nlink_delta = 1;
  op.plan = {create, entry_step(StepKind::kCreateEntry, r.parent, r.name, entry, now), finish};
  op.decision = 1;
  op.inode_step = 0;
  op.map_set = {DirectoryLink{.dir = 0, .parent = r.parent}};
  co_return planned;
}

Task<Result<Planned>> Coordinator::State::plan_rmdir(RemoveRequest r) {
  if (!r.directory) {
    auto unlinking = plan_unlink(std::move(r));
    co_return co_await std::move(unlinking);
  }
  if (r.name == ".") co_return Status(StatusCode::kInvalidArgument, "rmdir of \".\"");
  if (r.name == "..") co_return Status(StatusCode::kNotEmpty, "rmdir of \"..\"");
  CO_TRY(check_name(r.name));
  auto looking = lookup_dir(stepper(), r.cred, r.parent, r.name);
  CO_TRY_ASSIGN(DirLookup p, co_await std::move(looking));
  CO_TRY_ASSIGN(DirEntry entry, visible(p.entry));
  if (!may_write(r.cred, p.dir))
    co_return Status(StatusCode::kPermissionDenied, "no write permission on the parent");
  bool has_entries = false;
  auto reading = inode_of(stepper(), entry.inode, true, &has_entries);
  CO_TRY_ASSIGN(Inode victim, co_await std::move(reading));
  if (!may_delete_in(r.cred, p.dir, victim))
    co_return Status(StatusCode::kNotPermitted, "sticky directory");
  if (!is_dir(victim)) co_return Status(StatusCode::kNotDirectory, "not a directory");
  if (victim.id == kRootInode) co_return Status(StatusCode::kBusy, "the root");
  if (entry.locked_by != 0) co_return Status(StatusCode::kBusy, "the entry is changing");
  if (has_entries) co_return Status(StatusCode::kNotEmpty, "the directory has entries");
  int64_t now = now_ns();
  Planned planned;
  OpRecord& op = planned.record;
  op.kind = OpKind::kRmdir;
  op.tag = r.tag;
  StepRequest erase = entry_step(StepKind::kFinishEntry, r.parent, r.name, entry, now);
  erase.erase = true;
  erase.nlink_delta = -1;
  op.plan = {entry_step(StepKind::kLockEntry, r.parent, r.name, entry, now),
             inode_step(StepKind::kRemoveDir, victim.id, now), erase};
  op.decision = 1;
  op.inode_step = 1;
  op.map_erase = {victim.id};
  co_return planned;
}

// An unlink whose entry names an inode of another shard (Shard::unlink_here's nullopt): the
// inode's shard drops the link (queueing GC at the last one, or keeping the inode at nlink 0
// while a session holds it); the entry is locked before and erased after.
Task<Result<Planned>> Coordinator::State::plan_unlink(RemoveRequest r) {
  CO_TRY(check_name(r.name));
  auto looking = lookup_dir(stepper(), r.cred, r.parent, r.name);
  CO_TRY_ASSIGN(DirLookup p, co_await std::move(looking));
  CO_TRY_ASSIGN(DirEntry entry, visible(p.entry));
  if (!may_write(r.cred, p.dir))
    co_return Status(StatusCode::kPermissionDenied, "no write permission on the parent");
  auto reading = inode_of(stepper(), entry.inode, false, nullptr);
  CO_TRY_ASSIGN(Inode victim, co_await std::move(reading));
  if (!may_delete_in(r.cred, p.dir, victim))
    co_return Status(StatusCode::kNotPermitted, "sticky directory");
  if (is_dir(victim)) co_return Status(StatusCode::kIsDirectory, "a directory");
  if (entry.locked_by != 0) co_return Status(StatusCode::kBusy, "the entry is changing");
  int64_t now = now_ns();
  Planned planned;
  OpRecord& op = planned.record;
  op.kind = OpKind::kUnlink;
  op.tag = r.tag;
  StepRequest erase = entry_step(StepKind::kFinishEntry, r.parent, r.name, entry, now);
  erase.erase = true;
  op.plan = {entry_step(StepKind::kLockEntry, r.parent, r.name, entry, now),
             inode_step(StepKind::kDropLink, victim.id, now), erase};
  op.decision = 1;
  op.inode_step = 1;
  co_return planned;
}

Task<Result<Planned>> Coordinator::State::plan_link(LinkRequest r) {
  CO_TRY(check_name(r.new_name));
  auto looking = lookup_dir(stepper(), r.cred, r.new_parent, r.new_name);
  CO_TRY_ASSIGN(DirLookup np, co_await std::move(looking));
  auto reading = inode_of(stepper(), r.inode, false, nullptr);
  CO_TRY_ASSIGN(Inode target, co_await std::move(reading));
  // Linux's order: EEXIST (filename_create), protected_hardlinks, then vfs_link's checks.
  if (np.entry && np.entry->created_locked)
    co_return Status(StatusCode::kBusy, "the name is being created");
  if (np.entry) co_return Status(StatusCode::kAlreadyExists, "the name exists");
  if (!may_hardlink(r.cred, target))
    co_return Status(StatusCode::kNotPermitted, "protected_hardlinks");
  if (!may_write(r.cred, np.dir))
    co_return Status(StatusCode::kPermissionDenied, "no write permission on the directory");
  if (is_dir(target)) co_return Status(StatusCode::kNotPermitted, "a link to a directory");
  if (target.nlink == 0) co_return Status(StatusCode::kNotFound, "the inode has no links");
  if (target.nlink >= kLinkMax) co_return Status(StatusCode::kTooManyLinks, "nlink");
  int64_t now = now_ns();
  Planned planned;
  OpRecord& op = planned.record;
  op.kind = OpKind::kLink;
  op.tag = r.tag;
  DirEntry entry{.inode = target.id, .type = target.type};
  op.plan = {entry_step(StepKind::kCreateEntry, r.new_parent, r.new_name, entry, now),
             inode_step(StepKind::kAddLink, target.id, now),
             entry_step(StepKind::kFinishEntry, r.new_parent, r.new_name, entry, now)};
  op.decision = 1;
  op.inode_step = 1;
  co_return planned;
}

}  // namespace mica::meta
