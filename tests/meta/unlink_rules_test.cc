// Shard::unlink's POSIX rules: refusals (EISDIR, ENOENT, EACCES, the sticky EPERM), nlink
// bookkeeping with hard links, a file unlinked while open kept at nlink 0, and the last link
// queueing the file for garbage collection in the same transaction; real LMDB files.
#include <gtest/gtest.h>

#include "tests/meta/ops_test_util.h"

namespace mica::meta {
namespace {

using testing::create_request;
using testing::gc_count;
using testing::link_request;
using testing::make_dir;
using testing::peek_entry;
using testing::peek_inode;
using testing::unlink_request;
using testing::user;

const Credentials kAlice = user(1000, 1000);
const Credentials kBob = user(1001, 1001);
const Credentials kCarol = user(1002, 1002);

MICA_CO_TEST(UnlinkRules, LastLinkErasesTheInodeAndQueuesGc) {
  OPS_OPEN_SHARD(shard);
  CreateRequest file = create_request(testing::root(), kRootInode, "f");
  OPS_AWAIT(auto made, shard.create(file));
  CO_ASSERT_OK(made);
  {
    ShardTxn txn = shard.begin();
    txn.put_xattr(made->inode.id, "user.a", "1");
    Task<Status> committing = txn.commit();
    CO_ASSERT_OK(co_await std::move(committing));
  }
  RemoveRequest request = unlink_request(testing::root(), kRootInode, "f");
  OPS_AWAIT(auto removed, shard.unlink(request));
  CO_ASSERT_OK(removed);
  EXPECT_TRUE(removed->reclaimed);
  EXPECT_EQ(removed->inode.nlink, 0u);
  auto inode = peek_inode(shard, made->inode.id);
  CO_ASSERT_OK(inode);
  EXPECT_FALSE(inode->has_value());
  auto entry = peek_entry(shard, kRootInode, "f");
  CO_ASSERT_OK(entry);
  EXPECT_FALSE(entry->has_value());
  {
    ShardTxn txn = shard.begin();
    auto xattr = txn.xattr(made->inode.id, "user.a");
    CO_ASSERT_OK(xattr);
    EXPECT_FALSE(xattr->has_value());
  }
  auto queued = gc_count(shard);
  CO_ASSERT_OK(queued);
  EXPECT_EQ(*queued, 1u);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(UnlinkRules, ParentTimesAndHardLinkCountsChange) {
  OPS_OPEN_SHARD(shard);
  CreateRequest file = create_request(testing::root(), kRootInode, "a");
  OPS_AWAIT(auto made, shard.create(file));
  CO_ASSERT_OK(made);
  LinkRequest link = link_request(testing::root(), made->inode.id, kRootInode, "b");
  OPS_AWAIT(auto linked, shard.link(link));
  CO_ASSERT_OK(linked);
  EXPECT_EQ(linked->inode.nlink, 2u);
  RemoveRequest first = unlink_request(testing::root(), kRootInode, "a");
  OPS_AWAIT(auto removed, shard.unlink(first));
  CO_ASSERT_OK(removed);
  EXPECT_FALSE(removed->reclaimed);
  EXPECT_EQ(removed->inode.nlink, 1u);
  EXPECT_GE(removed->inode.ctime_ns, linked->inode.ctime_ns);
  auto parent = peek_inode(shard, kRootInode);
  CO_ASSERT_OK(parent);
  EXPECT_EQ((*parent)->mtime_ns, removed->inode.ctime_ns);
  EXPECT_EQ((*parent)->ctime_ns, removed->inode.ctime_ns);
  auto kept = peek_inode(shard, made->inode.id);
  CO_ASSERT_OK(kept);
  CO_ASSERT_TRUE(kept->has_value());
  EXPECT_EQ((*kept)->nlink, 1u);
  auto queued = gc_count(shard);
  CO_ASSERT_OK(queued);
  EXPECT_EQ(*queued, 0u);
  RemoveRequest second = unlink_request(testing::root(), kRootInode, "b");
  OPS_AWAIT(auto last, shard.unlink(second));
  CO_ASSERT_OK(last);
  EXPECT_TRUE(last->reclaimed);
  queued = gc_count(shard);
  CO_ASSERT_OK(queued);
  EXPECT_EQ(*queued, 1u);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(UnlinkRules, OpenFileStaysAtNlinkZeroAndQueuesNothing) {
  OPS_OPEN_SHARD(shard);
  CreateRequest file = create_request(testing::root(), kRootInode, "f");
  file.open = true;
  file.tag = RequestTag{.client = 5, .request = 1};
  file.flags = OpenFlags{.read = true, .write = true};
  OPS_AWAIT(auto made, shard.create(file));
  CO_ASSERT_OK(made);
  RemoveRequest request = unlink_request(testing::root(), kRootInode, "f");
  OPS_AWAIT(auto removed, shard.unlink(request));
  CO_ASSERT_OK(removed);
  EXPECT_FALSE(removed->reclaimed);
  EXPECT_EQ(removed->inode.nlink, 0u);
  auto inode = peek_inode(shard, made->inode.id);
  CO_ASSERT_OK(inode);
  CO_ASSERT_TRUE(inode->has_value());
  EXPECT_EQ((*inode)->nlink, 0u);
  auto queued = gc_count(shard);
  CO_ASSERT_OK(queued);
  EXPECT_EQ(*queued, 0u);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(UnlinkRules, NonFileAtItsLastLinkIsErasedWithoutGc) {
  OPS_OPEN_SHARD(shard);
  CreateRequest fifo = create_request(testing::root(), kRootInode, "p", InodeType::kFifo);
  OPS_AWAIT(auto made, shard.create(fifo));
  CO_ASSERT_OK(made);
  RemoveRequest request = unlink_request(testing::root(), kRootInode, "p");
  OPS_AWAIT(auto removed, shard.unlink(request));
  CO_ASSERT_OK(removed);
  EXPECT_TRUE(removed->reclaimed);
  auto inode = peek_inode(shard, made->inode.id);
  CO_ASSERT_OK(inode);
  EXPECT_FALSE(inode->has_value());
  auto queued = gc_count(shard);
  CO_ASSERT_OK(queued);
  EXPECT_EQ(*queued, 0u);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(UnlinkRules, DirectoryIsIsDirectory) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "d", 0, 0, 0755));
  CO_ASSERT_OK(dir_made);
  RemoveRequest request = unlink_request(testing::root(), kRootInode, "d");
  OPS_AWAIT(auto removed, shard.unlink(request));
  EXPECT_EQ(removed.status().code(), StatusCode::kIsDirectory);
  auto entry = peek_entry(shard, kRootInode, "d");
  CO_ASSERT_OK(entry);
  EXPECT_TRUE(entry->has_value());
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(UnlinkRules, MissingNameIsNotFound) {
  OPS_OPEN_SHARD(shard);
  RemoveRequest request = unlink_request(testing::root(), kRootInode, "nothing");
  OPS_AWAIT(auto removed, shard.unlink(request));
  EXPECT_EQ(removed.status().code(), StatusCode::kNotFound);
  RemoveRequest no_parent = unlink_request(testing::root(), make_inode_id(0, 777), "x");
  OPS_AWAIT(auto orphan, shard.unlink(no_parent));
  EXPECT_EQ(orphan.status().code(), StatusCode::kNotFound);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(UnlinkRules, NoWriteOrSearchOnParentIsPermissionDenied) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "w", 1000, 1000, 0755));
  CO_ASSERT_OK(dir_made);
  CreateRequest file = create_request(kAlice, dir_made->id, "f");
  OPS_AWAIT(auto made, shard.create(file));
  CO_ASSERT_OK(made);
  RemoveRequest request = unlink_request(kBob, dir_made->id, "f");
  OPS_AWAIT(auto removed, shard.unlink(request));
  EXPECT_EQ(removed.status().code(), StatusCode::kPermissionDenied);
  OPS_AWAIT(Status closed_dir, testing::poke_inode(&shard, dir_made->id,
                                                   [](Inode& d) { d.mode = 0666; }));
  CO_ASSERT_OK(closed_dir);
  OPS_AWAIT(auto no_search, shard.unlink(request));
  EXPECT_EQ(no_search.status().code(), StatusCode::kPermissionDenied);
  auto entry = peek_entry(shard, dir_made->id, "f");
  CO_ASSERT_OK(entry);
  EXPECT_TRUE(entry->has_value());
  OPS_CLOSE_SHARD(shard);
}

// A sticky, world-writable directory owned by alice holding carol's file: bob may not remove
// it; carol (the file's owner), alice (the directory's owner) and root may.
MICA_CO_TEST(UnlinkRules, StickyDirectoryLetsOnlyOwnersAndRootRemove) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "tmp", 1000, 1000, 01777));
  CO_ASSERT_OK(dir_made);
  for (const Credentials& remover : {kCarol, kAlice, testing::root()}) {
    CreateRequest file = create_request(kCarol, dir_made->id, "f", InodeType::kFile, 0666);
    OPS_AWAIT(auto made, shard.create(file));
    CO_ASSERT_OK(made);
    RemoveRequest by_bob = unlink_request(kBob, dir_made->id, "f");
    OPS_AWAIT(auto refused, shard.unlink(by_bob));
    EXPECT_EQ(refused.status().code(), StatusCode::kNotPermitted);
    RemoveRequest request = unlink_request(remover, dir_made->id, "f");
    OPS_AWAIT(auto removed, shard.unlink(request));
    CO_ASSERT_OK(removed) << remover.uid;
  }
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(UnlinkRules, LockedEntryIsBusyAndCreatedLockedIsNotFound) {
  OPS_OPEN_SHARD(shard);
  CreateRequest file = create_request(testing::root(), kRootInode, "f");
  OPS_AWAIT(auto made, shard.create(file));
  CO_ASSERT_OK(made);
  DirEntry locked{.inode = made->inode.id, .type = InodeType::kFile, .locked_by = 3};
  OPS_AWAIT(Status put, testing::put_raw_entry(&shard, kRootInode, "f", locked));
  CO_ASSERT_OK(put);
  RemoveRequest request = unlink_request(testing::root(), kRootInode, "f");
  OPS_AWAIT(auto busy, shard.unlink(request));
  EXPECT_EQ(busy.status().code(), StatusCode::kBusy);
  locked.created_locked = true;
  OPS_AWAIT(Status put_new, testing::put_raw_entry(&shard, kRootInode, "g", locked));
  CO_ASSERT_OK(put_new);
  RemoveRequest unborn = unlink_request(testing::root(), kRootInode, "g");
  OPS_AWAIT(auto missing, shard.unlink(unborn));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(UnlinkRules, RetryWithTheSameTagAppliesOnceAndAnswersTheSame) {
  OPS_OPEN_SHARD(shard);
  CreateRequest file = create_request(testing::root(), kRootInode, "a");
  OPS_AWAIT(auto made, shard.create(file));
  CO_ASSERT_OK(made);
  LinkRequest link = link_request(testing::root(), made->inode.id, kRootInode, "b");
  OPS_AWAIT(auto linked, shard.link(link));
  CO_ASSERT_OK(linked);
  RemoveRequest request = unlink_request(testing::root(), kRootInode, "a");
  request.tag = RequestTag{.client = 9, .request = 2};
  OPS_AWAIT(auto first, shard.unlink(request));
  CO_ASSERT_OK(first);
  OPS_AWAIT(auto again, shard.unlink(request));
  CO_ASSERT_OK(again);  // not kNotFound: the remembered answer
  EXPECT_EQ(again->inode.nlink, first->inode.nlink);
  EXPECT_EQ(again->reclaimed, first->reclaimed);
  auto inode = peek_inode(shard, made->inode.id);
  CO_ASSERT_OK(inode);
  CO_ASSERT_TRUE(inode->has_value());
  EXPECT_EQ((*inode)->nlink, 1u);  // dropped once
  OPS_CLOSE_SHARD(shard);
}

}  // namespace
}  // namespace mica::meta
