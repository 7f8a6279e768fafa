// fsck of a whole namespace: every shard's inodes and entries (ScanReply pages, as
// MetaService::scan hands them out) checked against the namespace's invariants
// (docs/meta.md, "The server and the client half"):
//
//   - every inode is reachable from the root, or queued for garbage collection, or open
//     and unlinked (nlink 0, held by a session);
//   - a file's nlink equals the entries naming it; a directory's is 2 + its subdirectories,
//     and a directory has exactly one entry (the root none);
//   - no entry points to a missing inode or names another type than the inode's, and every
//     entry lives in a directory that exists;
//   - a directory's parent field names the directory holding its entry (the root: itself);
//   - no entry is left locked by a coordinator operation (locked_by, created_locked).
//
// NamespaceImage collects the pages and check_namespace() is a pure function of them (any
// thread, never suspends); fsck() pages every shard through a MetaClient (its executor;
// suspends). A namespace that changes during the scan may report problems that are not
// there: scan a quiet one.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "async/task.h"
#include "meta/meta_service.h"

namespace mica::meta {

class MetaClient;

struct FsckProblem {
  InodeId inode = 0;    // the inode concerned (0: none)
  std::string message;  // what is wrong, in a sentence
  friend bool operator==(const FsckProblem&, const FsckProblem&) = default;
};

struct NamespaceImage {
  std::map<InodeId, Inode> inodes;
  std::vector<ScannedEntry> entries;
  std::set<InodeId> gc_queued;
  std::set<InodeId> open_unlinked;
  void add(const ScanReply& page);
};

// Problems found (empty: clean), in inode order, then entry order.
std::vector<FsckProblem> check_namespace(const NamespaceImage& image);

struct FsckOptions {
  std::vector<ShardId> shards;  // empty: every shard in routing's meta_shards
  uint32_t page_limit = 1024;
  size_t records_max = size_t{1} << 24;  // inodes + entries held in memory at most
};

// Scans every shard through client (routing: the client's) (inodes, then entries, page by page) and
// checks.
Task<Result<std::vector<FsckProblem>>> fsck(MetaClient* client, FsckOptions options = {});

}  // namespace mica::meta
