// Helpers for tests of one metadata shard: open a shard in a coroutine test's directory
// (tests/co_test.h: a real LMDB environment on the build disk, a real io_uring executor)
// and put inodes and entries straight through a ShardTxn, so a test sets up a tree without
// the operations under test.
//
// Test-only; call from the test body's coroutine on its executor. Every helper that writes
// awaits its commit; the shard must be close()d before the body returns.
#pragma once

#include <memory>
#include <string>

#include "meta/shard.h"
#include "tests/co_test.h"

namespace mica::meta::testing {

inline ShardOptions test_shard_options(const std::string& dir, ShardId shard = 0) {
  ShardOptions options;
  options.shard = shard;
  options.dir = dir;
  options.env.map_size_bytes = uint64_t{1} << 30;
  return options;
}

inline Task<Result<std::unique_ptr<Shard>>> open_test_shard(ShardOptions options) {
  auto opening = Shard::open(std::move(options));
  co_return co_await std::move(opening);
}

// Runs one operation with the request owned by this frame (an operation's request is a
// reference: never a temporary of the awaiting expression). Name the task before awaiting:
//   auto getting = call(shard, &Shard::getattr, GetattrRequest{...});
template <class Request, class Reply>
Task<Result<Reply>> call(Shard* shard, Task<Result<Reply>> (Shard::*method)(const Request&),
                         Request request) {
  auto running = (shard->*method)(request);
  co_return co_await std::move(running);
}

// Who the tests act as.
inline Credentials root_cred() {
  return Credentials{};
}
inline Credentials user_cred(uint32_t uid, uint32_t gid, std::vector<uint32_t> groups = {}) {
  return Credentials{.uid = uid, .gid = gid, .groups = std::move(groups)};
}

struct NewInode {
  InodeType type = InodeType::kFile;
  uint32_t mode = 0644;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string symlink_target;
  uint64_t length = 0;
  bool created_locked = false;
};

// A new inode of the shard named `name` in parent (whose nlink and times are left alone
// except a directory's parent nlink), committed. The answer is the inode as stored.
inline Task<Result<Inode>> add_inode(Shard* shard, InodeId parent, std::string name,
                                     NewInode what) {
  ShardTxn txn = shard->begin();
  Inode inode;
  inode.id = txn.allocate_inode();
  inode.type = what.type;
  inode.mode = what.mode;
  inode.uid = what.uid;
  inode.gid = what.gid;
  inode.nlink = what.type == InodeType::kDirectory ? 2 : 1;
  inode.atime_ns = inode.mtime_ns = inode.ctime_ns = shard->now_ns();
  inode.symlink_target = what.symlink_target;
  inode.length = what.type == InodeType::kSymlink ? what.symlink_target.size() : what.length;
  inode.parent = what.type == InodeType::kDirectory ? parent : 0;
  txn.put_inode(inode);
  txn.put_entry(
      parent, name,
      DirEntry{.inode = inode.id, .type = inode.type, .created_locked = what.created_locked});
  if (what.type == InodeType::kDirectory) {
    auto parent_inode = txn.inode(parent);
    if (!parent_inode.ok()) co_return parent_inode.status();
    if (*parent_inode) {
      Inode updated = **parent_inode;
      ++updated.nlink;
      txn.put_inode(updated);
    }
  }
  auto committing = txn.commit();
  Status committed = co_await std::move(committing);
  if (!committed.ok()) co_return committed;
  co_return inode;
}

// Replaces an inode as stored (for tests that set modes or owners directly).
inline Task<Status> put_inode(Shard* shard, Inode inode) {
  ShardTxn txn = shard->begin();
  txn.put_inode(inode);
  auto committing = txn.commit();
  co_return co_await std::move(committing);
}

// The inode as committed, or a failed test.
inline Result<Inode> stored_inode(Shard* shard, InodeId id) {
  auto txn = shard->read();
  if (!txn.ok()) return txn.status();
  auto inode = read_inode(**txn, shard->tables(), id);
  if (!inode.ok()) return inode.status();
  if (!*inode) return Status(StatusCode::kNotFound, "no such inode");
  return **inode;
}

}  // namespace mica::meta::testing
