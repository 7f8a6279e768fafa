// Shard::status() counts what the shard holds; Shard::scan() pages through its inodes and
// entries in key order and names, on its first page, what waits for garbage collection and
// what is unlinked but still open.
#include "tests/meta/shard_fixture.h"

namespace mica::meta {
namespace {

using testing::add_inode;
using testing::NewInode;
using testing::open_test_shard;
using testing::test_shard_options;

Task<Status> close_shard(Shard* shard) {
  auto closing = shard->close();
  co_return co_await std::move(closing);
}

// Three files in the root; the third unlinked (nlink 0) but held by a session; a fourth
// inode queued for collection.
Task<Result<std::vector<Inode>>> populate(Shard* s) {
  std::vector<Inode> files;
  for (std::string name : {"a", "b", "c"}) {
    auto adding = add_inode(s, kRootInode, name, NewInode{});
    auto file = co_await std::move(adding);
    CO_TRY(file);
    files.push_back(*file);
  }
  ShardTxn txn = s->begin();
  Inode held = files[2];
  held.nlink = 0;
  txn.erase_entry(kRootInode, "c");
  txn.put_inode(held);
  txn.put_session(SessionRecord{.inode = held.id, .session = 1, .client = 9});
  txn.queue_gc(GcRecord{.inode = make_inode_id(0, 500), .length = 1000});
  auto committing = txn.commit();
  CO_TRY(co_await std::move(committing));
  co_return files;
}

MICA_CO_TEST(ShardStatus, CountsWhatTheShardHolds) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto populating = populate(shard->get());
  CO_ASSERT_OK(co_await std::move(populating));
  auto status = (*shard)->status();
  CO_ASSERT_OK(status);
  EXPECT_EQ(status->shard, 0u);
  EXPECT_EQ(status->inodes, 4u);  // the root and three files
  EXPECT_EQ(status->entries, 2u);
  EXPECT_EQ(status->sessions, 1u);
  EXPECT_EQ(status->gc_queued_files, 1u);
  EXPECT_EQ(status->gc_queued_bytes, 1000u);
  EXPECT_EQ(status->operations, 4u);
  EXPECT_GE(status->commits, 4u);
  EXPECT_GT(status->used_bytes, 0u);
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

MICA_CO_TEST(ShardStatus, ScanPagesInodesAndEntriesInKeyOrder) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto populating = populate(shard->get());
  auto files = co_await std::move(populating);
  CO_ASSERT_OK(files);
  std::vector<InodeId> ids;
  ScanRequest request{.shard = 0, .limit = 3};
  for (int page = 0;; ++page) {
    CO_ASSERT_TRUE(page < 10);
    auto scanned = (*shard)->scan(request);
    CO_ASSERT_OK(scanned);
    if (page == 0) {
      EXPECT_EQ(scanned->gc_queued, std::vector<InodeId>{make_inode_id(0, 500)});
      EXPECT_EQ(scanned->open_unlinked, std::vector<InodeId>{(*files)[2].id});
    } else {
      EXPECT_TRUE(scanned->gc_queued.empty());
    }
    for (const Inode& inode : scanned->inodes) ids.push_back(inode.id);
    if (scanned->end) break;
    CO_ASSERT_TRUE(!scanned->inodes.empty());
    request.after_inode = scanned->inodes.back().id;
  }
  EXPECT_EQ(ids,
            (std::vector<InodeId>{kRootInode, (*files)[0].id, (*files)[1].id, (*files)[2].id}));
  std::vector<std::string> names;
  ScanRequest entries{.shard = 0, .entries = true, .limit = 1};
  for (int page = 0;; ++page) {
    CO_ASSERT_TRUE(page < 10);
    auto scanned = (*shard)->scan(entries);
    CO_ASSERT_OK(scanned);
    for (const ScannedEntry& e : scanned->entries) {
      EXPECT_EQ(e.parent, kRootInode);
      names.push_back(e.name);
    }
    if (scanned->end) break;
    CO_ASSERT_TRUE(!scanned->entries.empty());
    entries.after_inode = scanned->entries.back().parent;
    entries.after_name = scanned->entries.back().name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
  auto elsewhere = (*shard)->scan(ScanRequest{.shard = 2});
  EXPECT_EQ(elsewhere.status().code(), StatusCode::kWrongShard);
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

}  // namespace
}  // namespace mica::meta
