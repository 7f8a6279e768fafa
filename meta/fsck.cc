// fsck: collecting every shard's records and checking the namespace's invariants
// (meta/fsck.h).
#include "meta/fsck.h"

#include <fmt/format.h>

#include "meta/meta_client.h"

namespace mica::meta {

void NamespaceImage::add(const ScanReply& page) {
  for (const Inode& inode : page.inodes) inodes[inode.id] = inode;
  entries.insert(entries.end(), page.entries.begin(), page.entries.end());
  gc_queued.insert(page.gc_queued.begin(), page.gc_queued.end());
  open_unlinked.insert(page.open_unlinked.begin(), page.open_unlinked.end());
}

namespace {

std::string id_text(InodeId id) {
  return fmt::format("{:#x}", id);
}

struct Tally {
  uint32_t entries = 0;         // entries naming the inode
  uint32_t subdirectories = 0;  // of a directory: its entries that name directories
  InodeId holder = 0;           // the directory holding its (last seen) entry
};

// Entry-side checks; fills the tallies the inode-side checks compare with.
void check_entries(const NamespaceImage& image, std::map<InodeId, Tally>* tally,
                   std::vector<FsckProblem>* out) {
  for (const ScannedEntry& scanned : image.entries) {
    const DirEntry& entry = scanned.entry;
    std::string where = fmt::format("entry '{}' in {}", scanned.name, id_text(scanned.parent));
    auto parent = image.inodes.find(scanned.parent);
    if (parent == image.inodes.end())
      out->push_back({scanned.parent, where + " lives in a directory that does not exist"});
    else if (parent->second.type != InodeType::kDirectory)
      out->push_back({scanned.parent, where + " lives in a non-directory"});
    if (entry.locked_by != 0 || entry.created_locked)
      out->push_back(
          {entry.inode, fmt::format("{} is left locked (operation {}{})", where, entry.locked_by,
                                    entry.created_locked ? ", created locked" : "")});
    auto target = image.inodes.find(entry.inode);
    if (target == image.inodes.end()) {
      out->push_back({entry.inode, fmt::format("{} points to {}, which does not exist", where,
                                               id_text(entry.inode))});
      continue;
    }
    if (target->second.type != entry.type)
      out->push_back({entry.inode, fmt::format("{} says {}, the inode is a {}", where,
                                               inode_type_name(entry.type),
                                               inode_type_name(target->second.type))});
    Tally& t = (*tally)[entry.inode];
    ++t.entries;
    t.holder = scanned.parent;
    if (target->second.type == InodeType::kDirectory) ++(*tally)[scanned.parent].subdirectories;
  }
}

void check_directory(const Inode& inode, const Tally& t, std::vector<FsckProblem>* out) {
  std::string id = id_text(inode.id);
  uint32_t expected = 2 + t.subdirectories;
  if (inode.nlink != expected)
    out->push_back({inode.id, fmt::format("directory {} has nlink {}, expected {} (2 + {} "
                                          "subdirectories)",
                                          id, inode.nlink, expected, t.subdirectories)});
  if (inode.id == kRootInode) {
    if (inode.parent != kRootInode)
      out->push_back(
          {inode.id, fmt::format("the root's parent is {}, not itself", id_text(inode.parent))});
    if (t.entries != 0)
      out->push_back({inode.id, fmt::format("the root is named by {} entries", t.entries)});
    return;
  }
  if (t.entries > 1)
    out->push_back({inode.id, fmt::format("directory {} is named by {} entries", id, t.entries)});
  if (t.entries >= 1 && inode.parent != t.holder)
    out->push_back({inode.id, fmt::format("directory {} names parent {}, its entry is in {}", id,
                                          id_text(inode.parent), id_text(t.holder))});
}

// Reachability: from the root through entries, breadth first.
std::set<InodeId> reachable(const NamespaceImage& image) {
  std::map<InodeId, std::vector<InodeId>> children;
  for (const ScannedEntry& scanned : image.entries)
    children[scanned.parent].push_back(scanned.entry.inode);
  std::set<InodeId> seen{kRootInode};
  std::vector<InodeId> queue{kRootInode};
  while (!queue.empty()) {
    InodeId dir = queue.back();
    queue.pop_back();
    auto it = children.find(dir);
    if (it == children.end()) continue;
    for (InodeId child : it->second)
      if (seen.insert(child).second) queue.push_back(child);
  }
  return seen;
}

}  // namespace

std::vector<FsckProblem> check_namespace(const NamespaceImage& image) {
  std::vector<FsckProblem> entry_problems;
  std::map<InodeId, Tally> tally;
  check_entries(image, &tally, &entry_problems);
  std::vector<FsckProblem> out;
  if (image.inodes.count(kRootInode) == 0) out.push_back({kRootInode, "the root does not exist"});
  std::set<InodeId> seen = reachable(image);
  for (const auto& [id, inode] : image.inodes) {
    const Tally& t = tally[id];
    bool unlinked = image.gc_queued.count(id) != 0 || image.open_unlinked.count(id) != 0;
    if (seen.count(id) == 0 && !unlinked)
      out.push_back({id, fmt::format("{} {} is not reachable from the root, nor queued for "
                                     "collection, nor open",
                                     inode_type_name(inode.type), id_text(id))});
    if (inode.type == InodeType::kDirectory) {
      check_directory(inode, t, &out);
    } else if (inode.nlink != t.entries) {
      out.push_back(
          {id, fmt::format("{} {} has nlink {} and {} entries", inode_type_name(inode.type),
                           id_text(id), inode.nlink, t.entries)});
    }
  }
  out.insert(out.end(), entry_problems.begin(), entry_problems.end());
  return out;
}

namespace {

// Every page of one kind (inodes or entries) of one shard into image.
Task<Status> scan_shard(MetaClient* client, ShardId shard, bool entries, FsckOptions options,
                        NamespaceImage* image) {
  ScanRequest request{.shard = shard, .entries = entries, .limit = options.page_limit};
  for (;;) {
    auto scanning = client->scan(request);
    CO_TRY_ASSIGN(ScanReply page, co_await std::move(scanning));
    if (entries && !page.entries.empty()) {
      request.after_inode = page.entries.back().parent;
      request.after_name = page.entries.back().name;
    } else if (!entries && !page.inodes.empty()) {
      request.after_inode = page.inodes.back().id;
    }
    bool end = page.end || (page.inodes.empty() && page.entries.empty());
    image->add(page);
    if (image->inodes.size() + image->entries.size() > options.records_max)
      co_return Status(StatusCode::kResourceExhausted,
                       fmt::format("fsck holds more than {} records", options.records_max));
    if (end) co_return Status::ok_status();
  }
}

}  // namespace

Task<Result<std::vector<FsckProblem>>> fsck(MetaClient* client, FsckOptions options) {
  std::vector<ShardId> shards = options.shards;
  if (shards.empty()) {
    craq::RoutingClient::SnapshotPtr routing = client->routing()->current();
    if (!routing) {
      auto refreshing = client->routing()->refresh(0, deadline_after(std::chrono::seconds(5)));
      CO_TRY_ASSIGN(routing, co_await std::move(refreshing));
    }
    for (const craq::MetaShardRoute& route : routing->meta_shards) shards.push_back(route.shard);
  }
  NamespaceImage image;
  for (ShardId shard : shards) {
    for (bool entries : {false, true}) {
      auto scanning = scan_shard(client, shard, entries, options, &image);
      CO_TRY(co_await std::move(scanning));
    }
  }
  co_return check_namespace(image);
}

}  // namespace mica::meta
