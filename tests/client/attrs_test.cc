// The client's attribute calls against a real dev cluster: chmod, chown, utimens
// (UTIME_NOW, UTIME_OMIT), truncate by path (metadata's setattr size), the xattr calls
// (XATTR_CREATE, XATTR_REPLACE) and statfs, each with its success and main refusals.
//
// Heavy: each test brings up a dev cluster (tests/client/path_fixture.h); well under ctest's
// 120 s cap for the client tests.
#include <sys/xattr.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "tests/client/path_fixture.h"

namespace mica::testing {
namespace {

class ClientAttrs : public ClientPathTest {};

constexpr int64_t kNs = 1'000'000'000;

Task<void> chmod_and_chown(client::Client* c) {
  CO_EXPECT_ERRNO(c->mkdir("/own", 0755), 0);
  auto filing = make_file(c, "/own", "file", 0644);
  Result<meta::Inode> file = co_await std::move(filing);
  CO_ASSERT_OK(file);
  CO_EXPECT_ERRNO(c->chmod("/own/file", 04751), 0);
  auto stating = c->stat("/own/file");
  Result<meta::Inode> changed = co_await std::move(stating);
  CO_ASSERT_OK(changed);
  EXPECT_EQ(changed->mode, 04751u);
  EXPECT_GE(changed->ctime_ns, file->ctime_ns);
  CO_EXPECT_ERRNO(c->chmod("/own/file", 0644, as_user()), EPERM);  // not the owner
  CO_EXPECT_ERRNO(c->chown("/own/file", 1000, 1000, as_user()), EPERM);
  CO_EXPECT_ERRNO(c->chown("/own/file", 1000, std::nullopt), 0);
  auto again = c->stat("/own/file");
  Result<meta::Inode> owned = co_await std::move(again);
  CO_ASSERT_OK(owned);
  EXPECT_EQ(owned->uid, 1000u);
  EXPECT_EQ(owned->gid, 0u);  // nullopt left the group
  EXPECT_EQ(owned->mode & meta::kSetUid, 0u);  // chown clears SUID
  // Now the owner, the user may chmod; as a member of group 1000 only, chgrp to 1000.
  CO_EXPECT_ERRNO(c->chmod("/own/file", 0600, as_user()), 0);
  CO_EXPECT_ERRNO(c->chown("/own/file", std::nullopt, 1000, as_user()), 0);
  CO_EXPECT_ERRNO(c->chown("/own/file", std::nullopt, 2000, as_user()), EPERM);
  CO_EXPECT_ERRNO(c->chmod("/own/missing", 0644), ENOENT);
}

TEST_F(ClientAttrs, ChmodAndChownChangeModeAndOwnerForWhoMay) { run(chmod_and_chown); }

Task<void> utimens_times(client::Client* c) {
  auto filing = make_file(c, "/", "times", 0644);
  Result<meta::Inode> file = co_await std::move(filing);
  CO_ASSERT_OK(file);
  struct timespec atime = {.tv_sec = 1'000'000, .tv_nsec = 5};
  struct timespec mtime = {.tv_sec = 2'000'000, .tv_nsec = 7};
  CO_EXPECT_ERRNO(c->utimens("/times", atime, mtime), 0);
  auto stating = c->stat("/times");
  Result<meta::Inode> set = co_await std::move(stating);
  CO_ASSERT_OK(set);
  EXPECT_EQ(set->atime_ns, 1'000'000 * kNs + 5);
  EXPECT_EQ(set->mtime_ns, 2'000'000 * kNs + 7);
  struct timespec omit = {.tv_sec = 0, .tv_nsec = UTIME_OMIT};
  struct timespec now = {.tv_sec = 0, .tv_nsec = UTIME_NOW};
  CO_EXPECT_ERRNO(c->utimens("/times", omit, now), 0);
  auto again = c->stat("/times");
  Result<meta::Inode> touched = co_await std::move(again);
  CO_ASSERT_OK(touched);
  EXPECT_EQ(touched->atime_ns, 1'000'000 * kNs + 5);  // omitted: unchanged
  EXPECT_GT(touched->mtime_ns, set->mtime_ns);      // now, long after 1970
  struct timespec bad = {.tv_sec = 0, .tv_nsec = kNs};
  CO_EXPECT_ERRNO(c->utimens("/times", bad, omit), EINVAL);
  CO_EXPECT_ERRNO(c->utimens("/times", atime, mtime, as_user()), EPERM);
  CO_EXPECT_ERRNO(c->utimens("/times", now, now, as_user()), EACCES);  // no write permission
  CO_EXPECT_ERRNO(c->utimens("/missing", now, now), ENOENT);
}

TEST_F(ClientAttrs, UtimensSetsTimesWithUtimeNowAndUtimeOmit) { run(utimens_times); }

Task<void> truncate_by_path(client::Client* c) {
  CO_EXPECT_ERRNO(c->mkdir("/tr", 0755), 0);
  auto filing = make_file(c, "/tr", "file", 0644);
  Result<meta::Inode> file = co_await std::move(filing);
  CO_ASSERT_OK(file);
  CO_EXPECT_ERRNO(c->truncate("/tr/file", uint64_t{3} << 20), 0);  // a hole past the end
  auto stating = c->stat("/tr/file");
  Result<meta::Inode> grown = co_await std::move(stating);
  CO_ASSERT_OK(grown);
  EXPECT_EQ(grown->length, uint64_t{3} << 20);
  CO_EXPECT_ERRNO(c->truncate("/tr/file", 10), 0);
  auto again = c->stat("/tr/file");
  Result<meta::Inode> cut = co_await std::move(again);
  CO_ASSERT_OK(cut);
  EXPECT_EQ(cut->length, 10u);
  CO_EXPECT_ERRNO(c->truncate("/tr", 0), EISDIR);
  CO_EXPECT_ERRNO(c->truncate("/tr/missing", 0), ENOENT);
  CO_EXPECT_ERRNO(c->truncate("/tr/file", 0, as_user()), EACCES);
}

TEST_F(ClientAttrs, TruncateByPathSetsTheLengthThroughMetadata) { run(truncate_by_path); }

Task<void> xattrs(client::Client* c) {
  auto filing = make_file(c, "/", "xa", 0644);
  Result<meta::Inode> file = co_await std::move(filing);
  CO_ASSERT_OK(file);
  CO_EXPECT_ERRNO(c->setxattr("/xa", "user.one", "1"), 0);
  CO_EXPECT_ERRNO(c->setxattr("/xa", "user.two", std::string(1000, 'v'), XATTR_CREATE), 0);
  CO_EXPECT_ERRNO(c->setxattr("/xa", "user.one", "again", XATTR_CREATE), EEXIST);
  CO_EXPECT_ERRNO(c->setxattr("/xa", "user.none", "x", XATTR_REPLACE), ENODATA);
  CO_EXPECT_ERRNO(c->setxattr("/xa", "user.one", "x", XATTR_CREATE | XATTR_REPLACE), EINVAL);
  CO_EXPECT_ERRNO(c->setxattr("/xa", "user.one", "11", XATTR_REPLACE), 0);
  auto getting = c->getxattr("/xa", "user.one");
  Result<std::string> value = co_await std::move(getting);
  CO_ASSERT_OK(value);
  EXPECT_EQ(*value, "11");
  auto listing = c->listxattr("/xa");
  Result<std::vector<std::string>> names = co_await std::move(listing);
  CO_ASSERT_OK(names);
  std::vector<std::string> sorted = *names;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<std::string>{"user.one", "user.two"}));
  CO_EXPECT_ERRNO(c->setxattr("/xa", "user.one", "x", 0, as_user()), EACCES);
  CO_EXPECT_ERRNO(c->getxattr("/xa", "user.one", as_user()), 0);  // 0644: readable
  CO_EXPECT_ERRNO(c->removexattr("/xa", "user.one"), 0);
  CO_EXPECT_ERRNO(c->getxattr("/xa", "user.one"), ENODATA);
  CO_EXPECT_ERRNO(c->removexattr("/xa", "user.one"), ENODATA);
  CO_EXPECT_ERRNO(c->getxattr("/missing", "user.one"), ENOENT);
}

TEST_F(ClientAttrs, XattrsAreSetGotListedAndRemovedWithCreateAndReplace) { run(xattrs); }

Task<void> statfs_capacity(client::Client* c) {
  auto asking = c->statfs();
  Result<meta::StatfsReply> fs = co_await std::move(asking);
  CO_ASSERT_OK(fs);
  EXPECT_GT(fs->total_bytes, 0u);
  EXPECT_GT(fs->free_bytes, 0u);
  EXPECT_LE(fs->free_bytes, fs->total_bytes);
  EXPECT_GE(fs->inodes, 1u);  // the root at least
  EXPECT_GT(fs->block_size, 0u);
  EXPECT_EQ(fs->name_max, meta::kNameMax);
}

TEST_F(ClientAttrs, StatfsReportsTheClustersCapacity) { run(statfs_capacity); }

}  // namespace
}  // namespace mica::testing
