// Helpers of the rule tables of the namespace mutations inside one shard (create, unlink,
// rename, link): a shard on real LMDB files in the test's directory with a routing that has
// one chain table, directories and modes written straight through a ShardTxn (mkdir and
// chmod are other helpers' operations), peeks at the committed records, and request makers.
// Used by one coroutine test at a time on its executor; the coroutines here suspend only in
// commit().
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "meta/schema.h"
#include "meta/shard.h"
#include "tests/co_test.h"
#include "tests/meta/shard_fixture.h"

// `decl = co_await task`, the task named first (g++ 12 miscompiles temporaries inside a
// co_await expression). The task's request must be a named object that outlives it.
#define OPS_AWAIT(decl, task)                        \
  auto MICA_CONCAT(ops_task_, __LINE__) = (task); \
  decl = co_await std::move(MICA_CONCAT(ops_task_, __LINE__))

// In a MICA_CO_TEST body: `shard` (a Shard&) opened in the test's directory, and closed.
#define OPS_OPEN_SHARD(shard)                                                    \
  OPS_AWAIT(auto shard##_world, ::mica::meta::testing::open_ops_shard(dir.path)); \
  CO_ASSERT_OK(shard##_world);                                                   \
  ::mica::meta::Shard& shard = *(*shard##_world)->shard
#define OPS_CLOSE_SHARD(shard)                  \
  OPS_AWAIT(::mica::Status shard##_closed, shard.close()); \
  CO_ASSERT_OK(shard##_closed)

namespace mica::meta::testing {

// A shard and the routing it takes layouts from (heap-held: the routing callback points
// into it).
struct OpsShard {
  craq::RoutingSnapshot routing;
  std::unique_ptr<Shard> shard;
};

inline craq::RoutingSnapshot one_table_routing() {
  craq::RoutingSnapshot routing;
  routing.version = 1;
  craq::ChainTable table;
  table.id = 1;
  table.version = 1;
  table.replica_count = 1;
  for (craq::ChainId chain = 1; chain <= 4; ++chain) table.chains.push_back(chain);
  routing.tables.push_back(table);
  return routing;
}

// Opens shard 0 in dir; with_routing false leaves the routing without tables.
inline Task<Result<std::unique_ptr<OpsShard>>> open_ops_shard(std::string dir,
                                                              bool with_routing = true) {
  auto world = std::make_unique<OpsShard>();
  if (with_routing) world->routing = one_table_routing();
  ShardOptions options = test_shard_options(dir);
  OpsShard* raw = world.get();
  options.routing = [raw]() -> const craq::RoutingSnapshot* { return &raw->routing; };
  Task<Result<std::unique_ptr<Shard>>> opening = Shard::open(options);
  CO_TRY_ASSIGN(world->shard, co_await std::move(opening));
  co_return std::move(world);
}

inline Credentials user(uint32_t uid, uint32_t gid, std::vector<uint32_t> groups = {}) {
  return Credentials{.uid = uid, .gid = gid, .groups = std::move(groups)};
}
inline Credentials root() { return Credentials{}; }

// Reads through a txn that is never committed (changes nothing).
inline Result<std::optional<Inode>> peek_inode(Shard& shard, InodeId id) {
  ShardTxn txn = shard.begin();
  return txn.inode(id);
}
inline Result<std::optional<DirEntry>> peek_entry(Shard& shard, InodeId parent,
                                                  std::string_view name) {
  ShardTxn txn = shard.begin();
  return txn.entry(parent, name);
}
inline Result<size_t> session_count(Shard& shard, InodeId id) {
  ShardTxn txn = shard.begin();
  auto sessions = txn.sessions(id);
  if (!sessions.ok()) return std::move(sessions).status();
  return sessions->size();
}
// Records in the committed gc table.
inline Result<size_t> gc_count(Shard& shard) {
  auto read = shard.read();
  if (!read.ok()) return std::move(read).status();
  auto cursor = (*read)->cursor(shard.tables().gc);
  if (!cursor.ok()) return std::move(cursor).status();
  size_t count = 0;
  auto at = (*cursor)->first();
  while (at.ok() && at->has_value()) {
    ++count;
    at = (*cursor)->next();
  }
  if (!at.ok()) return std::move(at).status();
  return count;
}

// A directory `name` in parent, written directly (nlink 2, parent's nlink + 1).
inline Task<Result<Inode>> make_dir(Shard* shard, InodeId parent, std::string name,
                                    uint32_t uid, uint32_t gid, uint32_t mode) {
  ShardTxn txn = shard->begin();
  CO_TRY_ASSIGN(std::optional<Inode> up, txn.inode(parent));
  MICA_ASSERT(up.has_value());
  Inode dir{.id = txn.allocate_inode(), .type = InodeType::kDirectory, .mode = mode,
            .uid = uid, .gid = gid, .nlink = 2, .parent = parent};
  txn.put_inode(dir);
  txn.put_entry(parent, name, DirEntry{.inode = dir.id, .type = InodeType::kDirectory});
  up->nlink += 1;
  txn.put_inode(*up);
  Task<Status> committing = txn.commit();
  CO_TRY(co_await std::move(committing));
  co_return dir;
}

// Writes inode `id` changed by `change` (modes, owners, nlink the operations under test
// do not set).
template <class Change>
Task<Status> poke_inode(Shard* shard, InodeId id, Change change) {
  ShardTxn txn = shard->begin();
  CO_TRY_ASSIGN(std::optional<Inode> inode, txn.inode(id));
  MICA_ASSERT(inode.has_value());
  change(*inode);
  txn.put_inode(*inode);
  Task<Status> committing = txn.commit();
  co_return co_await std::move(committing);
}

inline Task<Status> put_raw_entry(Shard* shard, InodeId parent, std::string name,
                                  DirEntry entry) {
  ShardTxn txn = shard->begin();
  txn.put_entry(parent, name, entry);
  Task<Status> committing = txn.commit();
  co_return co_await std::move(committing);
}

inline CreateRequest create_request(Credentials cred, InodeId parent, std::string name,
                                    InodeType type = InodeType::kFile, uint32_t mode = 0644) {
  return CreateRequest{.cred = std::move(cred), .parent = parent, .name = std::move(name),
                       .type = type, .mode = mode};
}
inline RemoveRequest unlink_request(Credentials cred, InodeId parent, std::string name) {
  return RemoveRequest{.cred = std::move(cred), .parent = parent, .name = std::move(name)};
}
inline RenameRequest rename_request(Credentials cred, InodeId parent, std::string name,
                                    InodeId new_parent, std::string new_name) {
  return RenameRequest{.cred = std::move(cred), .parent = parent, .name = std::move(name),
                       .new_parent = new_parent, .new_name = std::move(new_name)};
}
inline LinkRequest link_request(Credentials cred, InodeId inode, InodeId new_parent,
                                std::string new_name) {
  return LinkRequest{.cred = std::move(cred), .inode = inode, .new_parent = new_parent,
                     .new_name = std::move(new_name)};
}

}  // namespace mica::meta::testing
