// The client's namespace calls against a real dev cluster: stat/lstat, mkdir/rmdir, unlink,
// rename (with RENAME_NOREPLACE and RENAME_EXCHANGE), link, symlink/readlink and streamed
// readdir, each with its success and the errno of its main refusals, and a non-root
// caller's EACCES.
//
// Heavy: each test brings up a dev cluster (tests/client/path_fixture.h); well under ctest's
// 120 s cap for the client tests.
#include <linux/fs.h>

#include <algorithm>
#include <cerrno>

#include "async/scope.h"
#include "tests/client/path_fixture.h"

namespace mica::testing {
namespace {

using meta::InodeType;

class ClientPaths : public ClientPathTest {};

Task<void> stat_and_lstat(client::Client* c) {
  CO_EXPECT_ERRNO(c->mkdir("/st", 0755), 0);
  CO_EXPECT_ERRNO(c->mkdir("/st/dir", 0750), 0);
  CO_EXPECT_ERRNO(c->symlink("/st/dir", "/st/link"), 0);
  CO_EXPECT_ERRNO(c->symlink("/st/loop", "/st/loop"), 0);
  auto making = make_file(c, "/st", "file");
  Result<meta::Inode> making_done = co_await std::move(making);
  CO_ASSERT_OK(making_done);
  auto stating = c->stat("/st/link");
  Result<meta::Inode> followed = co_await std::move(stating);
  CO_ASSERT_OK(followed);
  EXPECT_EQ(followed->type, InodeType::kDirectory);
  EXPECT_EQ(followed->mode, 0750u);
  auto lstating = c->lstat("/st/link");
  Result<meta::Inode> link = co_await std::move(lstating);
  CO_ASSERT_OK(link);
  EXPECT_EQ(link->type, InodeType::kSymlink);
  CO_EXPECT_ERRNO(c->stat("/st/missing"), ENOENT);
  CO_EXPECT_ERRNO(c->stat("/st/file/x"), ENOTDIR);
  CO_EXPECT_ERRNO(c->stat("/st/file/"), ENOTDIR);
  CO_EXPECT_ERRNO(c->stat("/st/" + std::string(256, 'n')), ENAMETOOLONG);
  CO_EXPECT_ERRNO(c->stat("/st/loop"), ELOOP);
  CO_EXPECT_ERRNO(c->lstat("/st/loop"), 0);
  CO_EXPECT_ERRNO(c->stat("relative/path"), EINVAL);
}

TEST_F(ClientPaths, StatFollowsSymlinksLstatDoesNotAndBothAnswerPosixErrors) {
  run(stat_and_lstat);
}

Task<void> mkdir_and_rmdir(client::Client* c) {
  auto making = c->mkdir("/md", 0711);
  Result<meta::Inode> made = co_await std::move(making);
  CO_ASSERT_OK(made);
  EXPECT_EQ(made->type, InodeType::kDirectory);
  EXPECT_EQ(made->mode, 0711u);
  EXPECT_EQ(made->nlink, 2u);
  CO_EXPECT_ERRNO(c->mkdir("/md/", 0755), EEXIST);
  CO_EXPECT_ERRNO(c->mkdir("/", 0755), EEXIST);
  CO_EXPECT_ERRNO(c->mkdir("/md/no/such", 0755), ENOENT);
  auto filing = make_file(c, "/md", "file");
  Result<meta::Inode> filing_done = co_await std::move(filing);
  CO_ASSERT_OK(filing_done);
  CO_EXPECT_ERRNO(c->mkdir("/md/file/sub", 0755), ENOTDIR);
  CO_EXPECT_ERRNO(c->mkdir("/md/" + std::string(256, 'n'), 0755), ENAMETOOLONG);
  CO_EXPECT_ERRNO(c->mkdir("/md/" + std::string(255, 'n'), 0755), 0);
  CO_EXPECT_ERRNO(c->mkdir("/md/sub/", 0755), 0);
  CO_EXPECT_ERRNO(c->mkdir("/md/sub/inner", 0755), 0);
  auto stating = c->stat("/md");
  Result<meta::Inode> parent = co_await std::move(stating);
  CO_ASSERT_OK(parent);
  EXPECT_EQ(parent->nlink, 4u);  // 2 + the two subdirectories
  CO_EXPECT_ERRNO(c->rmdir("/md/sub"), ENOTEMPTY);
  CO_EXPECT_ERRNO(c->rmdir("/md/file"), ENOTDIR);
  CO_EXPECT_ERRNO(c->rmdir("/md/missing"), ENOENT);
  CO_EXPECT_ERRNO(c->rmdir("/md/sub/."), EINVAL);
  CO_EXPECT_ERRNO(c->rmdir("/"), EBUSY);
  CO_EXPECT_ERRNO(c->rmdir("/md/sub/inner"), 0);
  CO_EXPECT_ERRNO(c->rmdir("/md/sub/"), 0);
  CO_EXPECT_ERRNO(c->stat("/md/sub"), ENOENT);
}

TEST_F(ClientPaths, MkdirAndRmdirMakeAndRemoveDirectoriesWithPosixErrors) {
  run(mkdir_and_rmdir);
}

Task<void> unlink_entries(client::Client* c) {
  CO_EXPECT_ERRNO(c->mkdir("/ul", 0755), 0);
  CO_EXPECT_ERRNO(c->mkdir("/ul/dir", 0755), 0);
  auto filing = make_file(c, "/ul", "file");
  Result<meta::Inode> filing_done = co_await std::move(filing);
  CO_ASSERT_OK(filing_done);
  CO_EXPECT_ERRNO(c->symlink("/ul/dir", "/ul/link"), 0);
  CO_EXPECT_ERRNO(c->unlink("/ul/dir"), EISDIR);
  CO_EXPECT_ERRNO(c->unlink("/ul/dir/"), EISDIR);
  CO_EXPECT_ERRNO(c->unlink("/ul/file/"), ENOTDIR);
  CO_EXPECT_ERRNO(c->unlink("/ul/missing"), ENOENT);
  CO_EXPECT_ERRNO(c->unlink("/"), EISDIR);
  // A symlink goes, not what it names.
  CO_EXPECT_ERRNO(c->unlink("/ul/link"), 0);
  CO_EXPECT_ERRNO(c->lstat("/ul/link"), ENOENT);
  CO_EXPECT_ERRNO(c->stat("/ul/dir"), 0);
  CO_EXPECT_ERRNO(c->unlink("/ul/file"), 0);
  CO_EXPECT_ERRNO(c->stat("/ul/file"), ENOENT);
}

TEST_F(ClientPaths, UnlinkRemovesFilesAndSymlinksButNotDirectories) { run(unlink_entries); }

Task<void> rename_entries(client::Client* c) {
  CO_EXPECT_ERRNO(c->mkdir("/rn", 0755), 0);
  CO_EXPECT_ERRNO(c->mkdir("/rn/a", 0755), 0);
  CO_EXPECT_ERRNO(c->mkdir("/rn/full", 0755), 0);
  CO_EXPECT_ERRNO(c->mkdir("/rn/full/x", 0755), 0);
  auto one = make_file(c, "/rn", "one");
  Result<meta::Inode> first = co_await std::move(one);
  CO_ASSERT_OK(first);
  auto two = make_file(c, "/rn", "two");
  Result<meta::Inode> second = co_await std::move(two);
  CO_ASSERT_OK(second);
  CO_EXPECT_ERRNO(c->rename("/rn/one", "/rn/a/moved"), 0);
  CO_EXPECT_ERRNO(c->stat("/rn/one"), ENOENT);
  CO_EXPECT_ERRNO(c->rename("/rn/two", "/rn/a/moved", RENAME_NOREPLACE), EEXIST);
  CO_EXPECT_ERRNO(c->rename("/rn/two", "/rn/a/moved", RENAME_EXCHANGE), 0);
  auto looking = c->stat("/rn/two");
  Result<meta::Inode> swapped = co_await std::move(looking);
  CO_ASSERT_OK(swapped);
  EXPECT_EQ(swapped->id, first->id);  // the exchange swapped the two names
  CO_EXPECT_ERRNO(c->rename("/rn/two", "/rn/a/moved"), 0);  // replaces the other file
  CO_EXPECT_ERRNO(c->stat("/rn/two"), ENOENT);
  CO_EXPECT_ERRNO(c->rename("/rn/a", "/rn/full"), ENOTEMPTY);
  CO_EXPECT_ERRNO(c->rename("/rn/a/moved", "/rn/full"), EISDIR);
  CO_EXPECT_ERRNO(c->rename("/rn/full", "/rn/a/moved"), ENOTDIR);
  CO_EXPECT_ERRNO(c->rename("/rn/full", "/rn/full/x/inside"), EINVAL);
  CO_EXPECT_ERRNO(c->rename("/rn/a", "/rn/b", RENAME_NOREPLACE | RENAME_EXCHANGE), EINVAL);
  CO_EXPECT_ERRNO(c->rename("/rn/missing", "/rn/b"), ENOENT);
  CO_EXPECT_ERRNO(c->rename("/rn/a", "/rn/missing/b"), ENOENT);
  CO_EXPECT_ERRNO(c->rename("/rn/a", "/rn/b"), 0);  // a directory moves with its content
  CO_EXPECT_ERRNO(c->stat("/rn/b/moved"), 0);
}

TEST_F(ClientPaths, RenameMovesReplacesAndExchangesWithPosixErrors) { run(rename_entries); }

Task<void> links_and_symlinks(client::Client* c) {
  CO_EXPECT_ERRNO(c->mkdir("/ln", 0755), 0);
  CO_EXPECT_ERRNO(c->mkdir("/ln/dir", 0755), 0);
  auto filing = make_file(c, "/ln", "file");
  Result<meta::Inode> file = co_await std::move(filing);
  CO_ASSERT_OK(file);
  auto linking = c->link("/ln/file", "/ln/dir/hard");
  Result<meta::Inode> linked = co_await std::move(linking);
  CO_ASSERT_OK(linked);
  EXPECT_EQ(linked->id, file->id);
  EXPECT_EQ(linked->nlink, 2u);
  CO_EXPECT_ERRNO(c->link("/ln/file", "/ln/dir/hard"), EEXIST);
  CO_EXPECT_ERRNO(c->link("/ln/dir", "/ln/dir2"), EPERM);
  CO_EXPECT_ERRNO(c->link("/ln/missing", "/ln/x"), ENOENT);
  auto making = c->symlink("../file", "/ln/dir/soft");
  Result<meta::Inode> soft = co_await std::move(making);
  CO_ASSERT_OK(soft);
  EXPECT_EQ(soft->type, InodeType::kSymlink);
  auto reading = c->readlink("/ln/dir/soft");
  Result<std::string> target = co_await std::move(reading);
  CO_ASSERT_OK(target);
  EXPECT_EQ(*target, "../file");
  auto through = c->stat("/ln/dir/soft");
  Result<meta::Inode> named = co_await std::move(through);
  CO_ASSERT_OK(named);
  EXPECT_EQ(named->id, file->id);  // a relative target resolves from the link's directory
  CO_EXPECT_ERRNO(c->symlink("/x", "/ln/file"), EEXIST);
  CO_EXPECT_ERRNO(c->symlink("", "/ln/empty"), ENOENT);
  CO_EXPECT_ERRNO(c->symlink(std::string(4096, 't'), "/ln/long"), ENAMETOOLONG);
  CO_EXPECT_ERRNO(c->readlink("/ln/dir"), EINVAL);
  CO_EXPECT_ERRNO(c->readlink("/ln/missing"), ENOENT);
  CO_EXPECT_ERRNO(c->unlink("/ln/file"), 0);
  auto again = c->stat("/ln/dir/hard");
  Result<meta::Inode> kept = co_await std::move(again);
  CO_ASSERT_OK(kept);
  EXPECT_EQ(kept->nlink, 1u);
}

TEST_F(ClientPaths, LinkAndSymlinkNameInodesAndReadlinkAnswersTheTarget) {
  run(links_and_symlinks);
}

// More entries than one readdir page (the meta server's readdir_page_max, 1024).
constexpr int kManyEntries = 1100;
constexpr int kMakers = 10;

Task<Status> make_links(client::Client* c, int from, int to) {
  for (int i = from; i < to; ++i) {
    auto making = c->symlink("/target", fmt::format("/many/e{:05}", i));
    CO_TRY(co_await std::move(making));
  }
  co_return Status::ok_status();
}

Task<void> readdir_pages(client::Client* c) {
  CO_EXPECT_ERRNO(c->mkdir("/many", 0755), 0);
  std::vector<Task<Status>> makers;
  for (int m = 0; m < kMakers; ++m)
    makers.push_back(
        make_links(c, m * kManyEntries / kMakers, (m + 1) * kManyEntries / kMakers));
  auto making = when_all(std::move(makers));
  std::vector<Status> made = co_await std::move(making);
  for (const Status& one : made) CO_ASSERT_OK(one);
  std::vector<std::string> names;
  int pages = 0;
  std::string after;
  for (;;) {
    auto reading = c->readdir("/many", after);
    Result<client::DirPage> page = co_await std::move(reading);
    CO_ASSERT_OK(page);
    ++pages;
    for (const meta::ReaddirEntry& entry : page->entries) {
      names.push_back(entry.name);
      EXPECT_TRUE(entry.attrs.has_value()) << entry.name;
      if (entry.attrs) {
        EXPECT_EQ(entry.attrs->type, InodeType::kSymlink);
      }
    }
    if (page->done) break;
    CO_ASSERT_TRUE(!page->entries.empty());
    after = page->entries.back().name;
  }
  EXPECT_GE(pages, 2);
  EXPECT_EQ(names.size(), size_t{kManyEntries});
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
  auto filing = make_file(c, "/many", "file");
  Result<meta::Inode> filing_done = co_await std::move(filing);
  CO_ASSERT_OK(filing_done);
  CO_EXPECT_ERRNO(c->readdir("/many/file"), ENOTDIR);
  CO_EXPECT_ERRNO(c->readdir("/missing"), ENOENT);
}

TEST_F(ClientPaths, ReaddirStreamsManyEntriesInPagesInNameOrderWithAttributes) {
  run(readdir_pages);
}

Task<void> non_root_caller(client::Client* c) {
  CO_EXPECT_ERRNO(c->mkdir("/perm", 0755), 0);
  CO_EXPECT_ERRNO(c->mkdir("/perm/private", 0700), 0);
  CO_EXPECT_ERRNO(c->mkdir("/perm/open", 0777), 0);
  auto filing = make_file(c, "/perm", "file", 0644);
  Result<meta::Inode> filing_done = co_await std::move(filing);
  CO_ASSERT_OK(filing_done);
  client::CallOptions user = as_user();
  CO_EXPECT_ERRNO(c->mkdir("/perm/mine", 0755, user), EACCES);
  CO_EXPECT_ERRNO(c->unlink("/perm/file", user), EACCES);
  CO_EXPECT_ERRNO(c->rename("/perm/file", "/perm/open/file", 0, user), EACCES);
  CO_EXPECT_ERRNO(c->readdir("/perm/private", {}, user), EACCES);
  CO_EXPECT_ERRNO(c->stat("/perm/private/x", user), EACCES);
  CO_EXPECT_ERRNO(c->symlink("/x", "/perm/private/l", user), EACCES);
  CO_EXPECT_ERRNO(c->stat("/perm/file", user), 0);  // search on /perm is enough
  auto making = c->mkdir("/perm/open/mine", 0755, user);
  Result<meta::Inode> mine = co_await std::move(making);
  CO_ASSERT_OK(mine);
  EXPECT_EQ(mine->uid, 1000u);
  EXPECT_EQ(mine->gid, 1000u);
  CO_EXPECT_ERRNO(c->rmdir("/perm/open/mine", user), 0);
}

TEST_F(ClientPaths, ANonRootCallersCredentialsGetEacces) { run(non_root_caller); }

}  // namespace
}  // namespace mica::testing
