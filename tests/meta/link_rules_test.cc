// Shard::link's POSIX rules inside one shard: a new name for a non-directory (nlink + 1,
// ctime, the parent's m/ctime) and each refusal: EPERM for a directory and for
// protected_hardlinks, EMLINK at the limit, EEXIST, EACCES, ENOENT; and a retry applying once.
#include <gtest/gtest.h>

#include "tests/meta/ops_test_util.h"

namespace mica::meta {
namespace {

using testing::create_request;
using testing::link_request;
using testing::make_dir;
using testing::peek_entry;
using testing::peek_inode;
using testing::user;

const Credentials kAlice = user(1000, 1000);
const Credentials kBob = user(1001, 1001);

Task<Result<Inode>> make_file(Shard* shard, Credentials cred, InodeId parent, std::string name) {
  CreateRequest request = create_request(std::move(cred), parent, std::move(name));
  OPS_AWAIT(auto created, shard->create(request));
  CO_TRY(created);
  co_return created->inode;
}

MICA_CO_TEST(LinkRules, AddsANameAndALink) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "d", 1000, 1000, 0755));
  CO_ASSERT_OK(dir_made);
  OPS_AWAIT(auto file, make_file(&shard, kAlice, dir_made->id, "a"));
  CO_ASSERT_OK(file);
  LinkRequest request = link_request(kAlice, file->id, dir_made->id, "b");
  OPS_AWAIT(auto linked, shard.link(request));
  CO_ASSERT_OK(linked);
  EXPECT_EQ(linked->inode.nlink, 2u);
  EXPECT_GE(linked->inode.ctime_ns, file->ctime_ns);
  auto entry = peek_entry(shard, dir_made->id, "b");
  CO_ASSERT_OK(entry);
  CO_ASSERT_TRUE(entry->has_value());
  EXPECT_EQ((*entry)->inode, file->id);
  auto stored = peek_inode(shard, file->id);
  CO_ASSERT_OK(stored);
  EXPECT_EQ((*stored)->nlink, 2u);
  auto parent = peek_inode(shard, dir_made->id);
  CO_ASSERT_OK(parent);
  EXPECT_EQ((*parent)->mtime_ns, linked->inode.ctime_ns);
  EXPECT_EQ((*parent)->ctime_ns, linked->inode.ctime_ns);
  EXPECT_EQ((*parent)->nlink, 2u);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(LinkRules, DirectoryIsNotPermitted) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "d", 0, 0, 0755));
  CO_ASSERT_OK(dir_made);
  LinkRequest request = link_request(testing::root(), dir_made->id, kRootInode, "e");
  OPS_AWAIT(auto linked, shard.link(request));
  EXPECT_EQ(linked.status().code(), StatusCode::kNotPermitted);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(LinkRules, AtTheLinkLimitIsTooManyLinks) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto file, make_file(&shard, testing::root(), kRootInode, "a"));
  CO_ASSERT_OK(file);
  OPS_AWAIT(Status full,
            testing::poke_inode(&shard, file->id, [](Inode& inode) { inode.nlink = kLinkMax; }));
  CO_ASSERT_OK(full);
  LinkRequest request = link_request(testing::root(), file->id, kRootInode, "b");
  OPS_AWAIT(auto linked, shard.link(request));
  EXPECT_EQ(linked.status().code(), StatusCode::kTooManyLinks);
  OPS_AWAIT(Status below, testing::poke_inode(&shard, file->id,
                                              [](Inode& inode) { inode.nlink = kLinkMax - 1; }));
  CO_ASSERT_OK(below);
  OPS_AWAIT(auto last, shard.link(request));
  CO_ASSERT_OK(last);
  EXPECT_EQ(last->inode.nlink, kLinkMax);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(LinkRules, ExistingNameIsAlreadyExists) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto a, make_file(&shard, testing::root(), kRootInode, "a"));
  OPS_AWAIT(auto b, make_file(&shard, testing::root(), kRootInode, "b"));
  CO_ASSERT_OK(a);
  CO_ASSERT_OK(b);
  LinkRequest request = link_request(testing::root(), a->id, kRootInode, "b");
  OPS_AWAIT(auto linked, shard.link(request));
  EXPECT_EQ(linked.status().code(), StatusCode::kAlreadyExists);
  auto stored = peek_inode(shard, a->id);
  CO_ASSERT_OK(stored);
  EXPECT_EQ((*stored)->nlink, 1u);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(LinkRules, NoWriteOnTheNewParentIsPermissionDenied) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "d", 1000, 1000, 0755));
  CO_ASSERT_OK(dir_made);
  OPS_AWAIT(auto file, make_file(&shard, kAlice, dir_made->id, "a"));
  CO_ASSERT_OK(file);
  // Bob may read and write the file, so protected_hardlinks lets him; the directory does not.
  OPS_AWAIT(Status shared,
            testing::poke_inode(&shard, file->id, [](Inode& inode) { inode.mode = 0666; }));
  CO_ASSERT_OK(shared);
  LinkRequest request = link_request(kBob, file->id, dir_made->id, "b");
  OPS_AWAIT(auto linked, shard.link(request));
  EXPECT_EQ(linked.status().code(), StatusCode::kPermissionDenied);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(LinkRules, ANonOwnerWhoMayNotReadAndWriteIsNotPermitted) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "d", 1001, 1001, 0777));
  CO_ASSERT_OK(dir_made);
  OPS_AWAIT(auto file, make_file(&shard, kAlice, dir_made->id, "a"));
  CO_ASSERT_OK(file);
  OPS_AWAIT(Status readable,
            testing::poke_inode(&shard, file->id, [](Inode& inode) { inode.mode = 0644; }));
  CO_ASSERT_OK(readable);
  // protected_hardlinks (Linux's default): EPERM, even in a directory Bob may write.
  LinkRequest request = link_request(kBob, file->id, dir_made->id, "b");
  OPS_AWAIT(auto linked, shard.link(request));
  EXPECT_EQ(linked.status().code(), StatusCode::kNotPermitted);
  auto stored = peek_inode(shard, file->id);
  CO_ASSERT_OK(stored);
  EXPECT_EQ((*stored)->nlink, 1u);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(LinkRules, MissingInodeOrParentIsNotFound) {
  OPS_OPEN_SHARD(shard);
  LinkRequest no_inode = link_request(testing::root(), make_inode_id(0, 900), kRootInode, "x");
  OPS_AWAIT(auto refused, shard.link(no_inode));
  EXPECT_EQ(refused.status().code(), StatusCode::kNotFound);
  OPS_AWAIT(auto file, make_file(&shard, testing::root(), kRootInode, "a"));
  CO_ASSERT_OK(file);
  LinkRequest no_parent = link_request(testing::root(), file->id, make_inode_id(0, 901), "x");
  OPS_AWAIT(auto orphan, shard.link(no_parent));
  EXPECT_EQ(orphan.status().code(), StatusCode::kNotFound);
  LinkRequest file_parent = link_request(testing::root(), file->id, file->id, "x");
  OPS_AWAIT(auto not_dir, shard.link(file_parent));
  EXPECT_EQ(not_dir.status().code(), StatusCode::kNotDirectory);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(LinkRules, RetryWithTheSameTagAppliesOnceAndAnswersTheSame) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto file, make_file(&shard, testing::root(), kRootInode, "a"));
  CO_ASSERT_OK(file);
  LinkRequest request = link_request(testing::root(), file->id, kRootInode, "b");
  request.tag = RequestTag{.client = 2, .request = 6};
  OPS_AWAIT(auto first, shard.link(request));
  CO_ASSERT_OK(first);
  OPS_AWAIT(auto again, shard.link(request));
  CO_ASSERT_OK(again);  // not kAlreadyExists
  EXPECT_EQ(again->inode.nlink, 2u);
  auto stored = peek_inode(shard, file->id);
  CO_ASSERT_OK(stored);
  EXPECT_EQ((*stored)->nlink, 2u);
  OPS_CLOSE_SHARD(shard);
}

}  // namespace
}  // namespace mica::meta
