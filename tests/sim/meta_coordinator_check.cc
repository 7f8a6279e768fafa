// Scenario meta_coordinator's node, workload and checks (tests/sim/meta_coordinator.h).
#include <map>
#include <set>

#include "async/file.h"
#include "async/sim/random.h"
#include "meta/schema.h"
#include "tests/sim/meta_coordinator.h"

namespace mica::sim::meta_coordinator {

using meta::DirEntry;
using meta::Inode;
using meta::InodeType;
using meta::kRootInode;

Task<Status> open_node(Node* node, std::function<void(uint64_t)> on_step) {
  for (ShardId id = 0; id < kShards; ++id) {
    meta::ShardOptions options;
    options.shard = id;
    options.dir = "/shard" + std::to_string(id);
    auto making = ensure_directory(options.dir);
    Status made = co_await std::move(making);
    if (!made.ok()) co_return made;
    auto opening = meta::Shard::open(std::move(options));
    auto shard = co_await std::move(opening);
    if (!shard.ok()) co_return shard.status();
    node->shards.push_back(std::move(*shard));
  }
  node->local = meta::local_shard_stepper(
      meta::LocalShards{.shard = [node](ShardId id) { return node->shard(id); }});
  node->counting = std::make_unique<CountingStepper>(node->local.get());
  node->counting->on_step = std::move(on_step);
  meta::CoordinatorOptions options;
  options.dir = "/coordinator";
  auto making = ensure_directory(options.dir);
  Status made = co_await std::move(making);
  if (!made.ok()) co_return made;
  // The directories' names survive a power loss only once their parent is synced.
  auto syncing = sync_directory("/");
  Status synced = co_await std::move(syncing);
  if (!synced.ok()) co_return synced;
  options.stepper = node->counting.get();
  options.shard_count = kShards;
  options.placement_seed = 11;
  auto opening = meta::Coordinator::open(std::move(options));
  auto coordinator = co_await std::move(opening);
  if (!coordinator.ok()) co_return coordinator.status();
  node->coordinator = std::move(*coordinator);
  co_return Status();
}

Task<void> close_node(Node* node) {
  if (node->coordinator) {
    auto closing = node->coordinator->close();
    Status closed = co_await std::move(closing);
    if (!closed.ok()) node->close_failures++;
    node->coordinator.reset();
  }
  for (auto& shard : node->shards) {
    auto closing = shard->close();
    Status closed = co_await std::move(closing);
    if (!closed.ok()) node->close_failures++;
  }
  node->shards.clear();
}

Task<Status> add_files(Node* node) {
  meta::ShardTxn txn = node->shard(0)->begin();
  for (const char* name : {"f", "g"}) {
    Inode file;
    file.id = txn.allocate_inode();
    file.type = InodeType::kFile;
    file.mode = 0644;
    file.nlink = 1;
    txn.put_inode(file);
    txn.put_entry(kRootInode, name, DirEntry{.inode = file.id, .type = InodeType::kFile});
  }
  auto committing = txn.commit();
  co_return co_await std::move(committing);
}

// ---- the workload ----

std::vector<Op> make_ops(uint64_t seed, size_t count) {
  SimRandom random(seed ^ 0x636f6f7264696e61ull);
  static const char* const kDirs[] = {"a", "b", "c"};
  static const char* const kNames[] = {"a", "b", "c", "f", "g"};
  auto path = [&](bool dir_last) {
    std::vector<std::string> p;
    uint64_t roll = random.below(100);
    size_t depth = roll < 55 ? 1 : roll < 90 ? 2 : 3;
    for (size_t i = 0; i + 1 < depth; ++i) p.push_back(kDirs[random.below(3)]);
    p.push_back(dir_last ? kDirs[random.below(3)] : kNames[random.below(5)]);
    return p;
  };
  std::vector<Op> ops;
  for (size_t i = 0; i < count; ++i) {
    uint64_t pick = random.below(100);
    Op op;
    if (pick < 35) {
      op.kind = OpKind::kMkdir;
      op.from = path(true);
    } else if (pick < 50) {
      op.kind = OpKind::kRmdir;
      op.from = path(true);
    } else {
      op.kind = pick < 75   ? OpKind::kRename
                : pick < 80 ? OpKind::kNoreplace
                : pick < 90 ? OpKind::kExchange
                            : OpKind::kLink;
      op.from = path(false);
      op.to = path(false);
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

std::string describe(const Op& op) {
  static const char* const kNames[] = {"mkdir",           "rmdir", "rename", "rename-noreplace",
                                       "rename-exchange", "link"};
  auto join = [](const std::vector<std::string>& p) {
    std::string s;
    for (const std::string& c : p) s += "/" + c;
    return s;
  };
  std::string text = std::string(kNames[static_cast<int>(op.kind)]) + " " + join(op.from);
  if (!op.to.empty()) text += " " + join(op.to);
  return text;
}

namespace {

// The inode a path names (directories all the way down but for the last), or kNotFound.
Task<Result<InodeId>> resolve(Node* node, std::vector<std::string> path, size_t components) {
  InodeId at = kRootInode;
  for (size_t i = 0; i < components; ++i) {
    meta::ProbeRequest probe{.shard = meta::shard_of(at), .parent = at, .name = path[i]};
    auto probing = node->local->probe(std::move(probe));
    Result<meta::ProbeReply> got = co_await std::move(probing);
    if (!got.ok()) co_return got.status();
    if (!got->entry || got->entry->created_locked)
      co_return Status(StatusCode::kNotFound, "no such path");
    if (i + 1 < components && got->entry->type != InodeType::kDirectory)
      co_return Status(StatusCode::kNotDirectory, "not a directory");
    at = got->entry->inode;
  }
  co_return at;
}

}  // namespace

Task<StatusCode> run_op(Node* node, Op op) {
  auto resolving = resolve(node, op.from, op.from.size() - 1);
  Result<InodeId> parent = co_await std::move(resolving);
  if (!parent.ok()) co_return parent.status().code();
  meta::Coordinator* c = node->coordinator.get();
  Status status;
  if (op.kind == OpKind::kMkdir) {
    meta::MkdirRequest request{.parent = *parent, .name = op.from.back(), .mode = 0755};
    auto making = c->mkdir(request);
    status = (co_await std::move(making)).status();
  } else if (op.kind == OpKind::kRmdir) {
    meta::RemoveRequest request{.parent = *parent, .name = op.from.back(), .directory = true};
    auto removing = c->rmdir(request);
    status = (co_await std::move(removing)).status();
  } else if (op.kind == OpKind::kLink) {
    auto finding = resolve(node, op.from, op.from.size());
    Result<InodeId> inode = co_await std::move(finding);
    auto to_parent = resolve(node, op.to, op.to.size() - 1);
    Result<InodeId> new_parent = co_await std::move(to_parent);
    if (!inode.ok()) co_return inode.status().code();
    if (!new_parent.ok()) co_return new_parent.status().code();
    meta::LinkRequest request{.inode = *inode, .new_parent = *new_parent, .new_name = op.to.back()};
    auto linking = c->link(request);
    status = (co_await std::move(linking)).status();
  } else {
    auto to_parent = resolve(node, op.to, op.to.size() - 1);
    Result<InodeId> new_parent = co_await std::move(to_parent);
    if (!new_parent.ok()) co_return new_parent.status().code();
    meta::RenameRequest request{.parent = *parent,
                                .name = op.from.back(),
                                .new_parent = *new_parent,
                                .new_name = op.to.back(),
                                .noreplace = op.kind == OpKind::kNoreplace,
                                .exchange = op.kind == OpKind::kExchange};
    auto renaming = c->rename(request);
    status = (co_await std::move(renaming)).status();
  }
  co_return status.code();
}

// ---- the checks ----

namespace {

struct Scanned {
  InodeId parent = 0;
  std::string name;
  DirEntry entry;
};

struct Snapshot {
  std::map<InodeId, Inode> inodes;
  std::map<InodeId, std::map<std::string, DirEntry>> dirs;  // parent -> name -> entry
  std::vector<Scanned> entries;
  uint64_t steps = 0;
};

Status scan_shard(meta::Shard* shard, Snapshot* out) {
  auto txn = shard->read();
  if (!txn.ok()) return txn.status();
  const meta::ShardTables& tables = shard->tables();
  for (kv::Table table : {tables.inodes, tables.entries, tables.steps}) {
    auto cursor = (*txn)->cursor(table);
    if (!cursor.ok()) return cursor.status();
    for (auto at = (*cursor)->first(); at.ok() && *at; at = (*cursor)->next()) {
      if (table == tables.steps) {
        ++out->steps;
      } else if (table == tables.inodes) {
        auto inode = meta::decode_record<Inode>((*at)->value, "inode");
        if (!inode.ok()) return inode.status();
        out->inodes[inode->id] = *inode;
      } else {
        auto key = meta::split_entry_key((*at)->key);
        auto entry = meta::decode_record<DirEntry>((*at)->value, "entry");
        if (!key.ok()) return key.status();
        if (!entry.ok()) return entry.status();
        std::string name(key->second);
        out->dirs[key->first][name] = *entry;
        out->entries.push_back(Scanned{key->first, name, *entry});
      }
    }
  }
  return Status();
}

Result<Snapshot> snapshot(Node* node) {
  Snapshot s;
  for (auto& shard : node->shards) {
    Status scanned = scan_shard(shard.get(), &s);
    if (!scanned.ok()) return scanned;
  }
  return s;
}

void walk(const Snapshot& s, InodeId dir, const std::string& path, size_t depth,
          std::map<InodeId, std::string>* first_path, std::vector<std::string>* lines) {
  auto it = s.dirs.find(dir);
  if (it == s.dirs.end() || depth > 16) return;
  for (const auto& [name, entry] : it->second) {
    std::string child = path + "/" + name;
    auto inode = s.inodes.find(entry.inode);
    std::string line = child + " " + std::string(meta::inode_type_name(entry.type));
    line += inode == s.inodes.end() ? " missing" : " nlink=" + std::to_string(inode->second.nlink);
    if (entry.locked_by != 0 || entry.created_locked) line += " locked";
    auto [first, fresh] = first_path->emplace(entry.inode, child);
    if (!fresh) line += " same-as=" + first->second;
    lines->push_back(line);
    if (entry.type == InodeType::kDirectory && fresh)
      walk(s, entry.inode, child, depth + 1, first_path, lines);
  }
}

}  // namespace

Result<std::string> canonical(Node* node) {
  auto s = snapshot(node);
  if (!s.ok()) return s.status();
  std::map<InodeId, std::string> first_path;
  std::vector<std::string> lines;
  walk(*s, kRootInode, "", 0, &first_path, &lines);
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

std::string fsck(Node* node) {
  auto s = snapshot(node);
  if (!s.ok()) return fmt::format("scan: {}", s.status());
  if (node->coordinator->pending() != 0)
    return fmt::format("{} operations pending", node->coordinator->pending());
  if (s->steps != 0) return fmt::format("{} step records left on the shards", s->steps);
  std::map<InodeId, uint32_t> links;
  std::map<InodeId, uint32_t> subdirs;
  std::map<InodeId, InodeId> dir_parent;
  for (const Scanned& e : s->entries) {
    if (e.entry.locked_by != 0 || e.entry.created_locked)
      return fmt::format("entry {} in {:#x} is locked", e.name, e.parent);
    auto inode = s->inodes.find(e.entry.inode);
    if (inode == s->inodes.end())
      return fmt::format("entry {} in {:#x} names no inode", e.name, e.parent);
    if (inode->second.type != e.entry.type) return fmt::format("entry {}: type", e.name);
    ++links[e.entry.inode];
    if (e.entry.type == InodeType::kDirectory) {
      ++subdirs[e.parent];
      dir_parent[e.entry.inode] = e.parent;
    }
  }
  std::map<InodeId, InodeId> expected_map{{kRootInode, kRootInode}};
  for (const auto& [id, inode] : s->inodes) {
    bool dir = inode.type == InodeType::kDirectory;
    if (id == kRootInode) {
      if (links[id] != 0) return "the root has an entry";
    } else if (links[id] == 0) {
      return fmt::format("inode {:#x} is named by no entry", id);
    } else if (dir && (links[id] != 1 || inode.parent != dir_parent[id])) {
      return fmt::format("directory {:#x}: {} entries, parent {:#x}", id, links[id], inode.parent);
    } else if (!dir && inode.nlink != links[id]) {
      return fmt::format("file {:#x}: nlink {} but {} entries", id, inode.nlink, links[id]);
    }
    if (dir && inode.nlink != 2 + subdirs[id])
      return fmt::format("directory {:#x}: nlink {} with {} subdirectories", id, inode.nlink,
                         subdirs[id]);
    if (dir && id != kRootInode) expected_map[id] = inode.parent;
  }
  if (node->coordinator->directory_parents() != expected_map)
    return "the coordinator's directory map differs from the directories' parents";
  return "";
}

}  // namespace mica::sim::meta_coordinator
