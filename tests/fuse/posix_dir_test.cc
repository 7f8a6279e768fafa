// The POSIX behaviour suite, directories and names: mkdir, rmdir, rename, link, unlink and
// symlink on the mount (or on a local folder with MICA_FUSE_TEST_DIR: tests/fuse/
// mount_fixture.h) — results, errno cases, which timestamps change, and permissions as
// other users (forked children).
//
// Heavy: the suite's cluster is one `mica dev up --mount` (about 5 s); each test is a few
// dozen system calls. Time cap: ctest's TIMEOUT for the fuse tests.
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "tests/fuse/mount_fixture.h"
#include "tests/fuse/posix_helpers.h"

namespace mica::testing {
namespace {

class PosixDir : public MountTest {};

TEST_F(PosixDir, MkdirMakesADirectoryAndUpdatesItsParent) {
  struct stat parent = stat_of(work());
  tick();
  ASSERT_EQ(errno_of(::mkdir(path("d").c_str(), 0750)), 0);
  struct stat d = stat_of(path("d"));
  EXPECT_TRUE(S_ISDIR(d.st_mode));
  EXPECT_EQ(d.st_mode & 07777, 0750u & ~0022u);
  EXPECT_EQ(d.st_nlink, 2u);
  EXPECT_EQ(d.st_uid, ::geteuid());
  struct stat after = stat_of(work());
  EXPECT_EQ(after.st_nlink, parent.st_nlink + 1);
  EXPECT_TRUE(later(after.st_mtim, parent.st_mtim));
  EXPECT_TRUE(later(after.st_ctim, parent.st_ctim));
}

TEST_F(PosixDir, MkdirErrors) {
  make_file(path("f"));
  ASSERT_EQ(errno_of(::mkdir(path("d").c_str(), 0755)), 0);
  EXPECT_EQ(errno_of(::mkdir(path("d").c_str(), 0755)), EEXIST);
  EXPECT_EQ(errno_of(::mkdir(path("f").c_str(), 0755)), EEXIST);
  EXPECT_EQ(errno_of(::mkdir(path("missing/d").c_str(), 0755)), ENOENT);
  EXPECT_EQ(errno_of(::mkdir(path("f/d").c_str(), 0755)), ENOTDIR);
  EXPECT_EQ(errno_of(::mkdir(path(std::string(256, 'n')).c_str(), 0755)), ENAMETOOLONG);
  EXPECT_EQ(errno_of(::mkdir(path(std::string(255, 'n')).c_str(), 0755)), 0);
}

TEST_F(PosixDir, MkdirInAnotherUsersDirectoryIsRefused) {
  ASSERT_EQ(errno_of(::mkdir(path("mine").c_str(), 0755)), 0);
  std::string inside = path("mine/x");
  EXPECT_EQ(as_user(kUserA, kGroupA, [&] { return errno_of(::mkdir(inside.c_str(), 0755)); }),
            EACCES);
  ASSERT_EQ(::chmod(path("mine").c_str(), 0777), 0);
  EXPECT_EQ(as_user(kUserA, kGroupA, [&] { return errno_of(::mkdir(inside.c_str(), 0755)); }), 0);
  EXPECT_EQ(stat_of(inside).st_uid, kUserA);
  EXPECT_EQ(stat_of(inside).st_gid, kGroupA);
}

TEST_F(PosixDir, MkdirInASetgidDirectoryInheritsItsGroupAndTheBit) {
  ASSERT_EQ(errno_of(::mkdir(path("g").c_str(), 0777)), 0);
  ASSERT_EQ(::chown(path("g").c_str(), 0, kGroupB), 0);
  ASSERT_EQ(::chmod(path("g").c_str(), 02777), 0);
  std::string sub = path("g/sub"), file = path("g/file");
  EXPECT_EQ(as_user(kUserA, kGroupA, [&] { return errno_of(::mkdir(sub.c_str(), 0755)); }), 0);
  EXPECT_EQ(as_user(kUserA, kGroupA,
                    [&] { return errno_of(::open(file.c_str(), O_CREAT | O_WRONLY, 0644)); }),
            0);
  EXPECT_EQ(stat_of(sub).st_gid, kGroupB);
  EXPECT_NE(stat_of(sub).st_mode & S_ISGID, 0u);
  EXPECT_EQ(stat_of(file).st_gid, kGroupB);
}

TEST_F(PosixDir, RmdirRemovesAnEmptyDirectoryAndUpdatesItsParent) {
  ASSERT_EQ(errno_of(::mkdir(path("d").c_str(), 0755)), 0);
  struct stat parent = stat_of(work());
  tick();
  ASSERT_EQ(errno_of(::rmdir(path("d").c_str())), 0);
  EXPECT_FALSE(exists(path("d")));
  struct stat after = stat_of(work());
  EXPECT_EQ(after.st_nlink, parent.st_nlink - 1);
  EXPECT_TRUE(later(after.st_mtim, parent.st_mtim));
}

TEST_F(PosixDir, RmdirErrors) {
  ASSERT_EQ(errno_of(::mkdir(path("d").c_str(), 0755)), 0);
  make_file(path("d/f"));
  EXPECT_EQ(errno_of(::rmdir(path("d").c_str())), ENOTEMPTY);
  EXPECT_EQ(errno_of(::rmdir(path("d/f").c_str())), ENOTDIR);
  EXPECT_EQ(errno_of(::rmdir(path("missing").c_str())), ENOENT);
  EXPECT_EQ(errno_of(::rmdir(path("d/.").c_str())), EINVAL);
  EXPECT_TRUE(exists(path("d/f")));
}

TEST_F(PosixDir, RenameReplacesAFileAndKeepsTheInode) {
  make_file(path("a"), "aaa");
  make_file(path("b"), "bbbbb");
  ino_t ino = stat_of(path("a")).st_ino;
  struct stat parent = stat_of(work());
  tick();
  ASSERT_EQ(errno_of(::rename(path("a").c_str(), path("b").c_str())), 0);
  EXPECT_FALSE(exists(path("a")));
  EXPECT_EQ(stat_of(path("b")).st_ino, ino);
  EXPECT_EQ(read_all(path("b")), "aaa");
  EXPECT_TRUE(later(stat_of(work()).st_mtim, parent.st_mtim));
}

TEST_F(PosixDir, RenameMovesADirectoryAndFixesBothParentsLinkCounts) {
  ASSERT_EQ(errno_of(::mkdir(path("from").c_str(), 0755)), 0);
  ASSERT_EQ(errno_of(::mkdir(path("to").c_str(), 0755)), 0);
  ASSERT_EQ(errno_of(::mkdir(path("from/d").c_str(), 0755)), 0);
  make_file(path("from/d/f"), "inside");
  ASSERT_EQ(errno_of(::rename(path("from/d").c_str(), path("to/d").c_str())), 0);
  EXPECT_EQ(stat_of(path("from")).st_nlink, 2u);
  EXPECT_EQ(stat_of(path("to")).st_nlink, 3u);
  EXPECT_EQ(read_all(path("to/d/f")), "inside");
  EXPECT_FALSE(exists(path("from/d")));
}

TEST_F(PosixDir, RenameErrors) {
  make_file(path("f"));
  ASSERT_EQ(errno_of(::mkdir(path("d").c_str(), 0755)), 0);
  ASSERT_EQ(errno_of(::mkdir(path("full").c_str(), 0755)), 0);
  make_file(path("full/x"));
  ASSERT_EQ(errno_of(::mkdir(path("empty").c_str(), 0755)), 0);
  EXPECT_EQ(errno_of(::rename(path("missing").c_str(), path("g").c_str())), ENOENT);
  EXPECT_EQ(errno_of(::rename(path("d").c_str(), path("f").c_str())), ENOTDIR);
  EXPECT_EQ(errno_of(::rename(path("f").c_str(), path("d").c_str())), EISDIR);
  EXPECT_EQ(errno_of(::rename(path("d").c_str(), path("full").c_str())), ENOTEMPTY);
  EXPECT_EQ(errno_of(::rename(path("d").c_str(), path("d/inner").c_str())), EINVAL);
  EXPECT_EQ(errno_of(::rename(path("f").c_str(), path("missing/f").c_str())), ENOENT);
  EXPECT_EQ(errno_of(::rename(path("d").c_str(), path("empty").c_str())), 0);
  EXPECT_FALSE(exists(path("d")));
  EXPECT_EQ(errno_of(::rename(path("f").c_str(), path("f").c_str())), 0);
  EXPECT_TRUE(exists(path("f")));
}

TEST_F(PosixDir, RenameNoreplaceRefusesAndExchangeSwaps) {
  make_file(path("a"), "aaa");
  make_file(path("b"), "bbb");
  EXPECT_EQ(errno_of(::renameat2(AT_FDCWD, path("a").c_str(), AT_FDCWD, path("b").c_str(),
                                 RENAME_NOREPLACE)),
            EEXIST);
  EXPECT_EQ(errno_of(::renameat2(AT_FDCWD, path("a").c_str(), AT_FDCWD, path("b").c_str(),
                                 RENAME_EXCHANGE)),
            0);
  EXPECT_EQ(read_all(path("a")), "bbb");
  EXPECT_EQ(read_all(path("b")), "aaa");
  EXPECT_EQ(errno_of(::renameat2(AT_FDCWD, path("a").c_str(), AT_FDCWD, path("c").c_str(),
                                 RENAME_NOREPLACE)),
            0);
  EXPECT_EQ(read_all(path("c")), "bbb");
}

TEST_F(PosixDir, RenameAndUnlinkInAStickyDirectoryNeedOwnership) {
  ASSERT_EQ(errno_of(::mkdir(path("tmp").c_str(), 01777)), 0);
  ASSERT_EQ(::chmod(path("tmp").c_str(), 01777), 0);
  std::string theirs = path("tmp/theirs"), mine = path("tmp/mine"), moved = path("tmp/moved");
  EXPECT_EQ(as_user(kUserB, kGroupB,
                    [&] { return errno_of(::open(theirs.c_str(), O_CREAT | O_WRONLY, 0666)); }),
            0);
  auto attempt = [&] {
    if (::unlink(theirs.c_str()) == 0) return 100;
    if (errno != EPERM) return errno;
    if (::rename(theirs.c_str(), moved.c_str()) == 0) return 101;
    if (errno != EPERM) return errno;
    if (::open(mine.c_str(), O_CREAT | O_WRONLY, 0644) < 0) return errno;
    return errno_of(::unlink(mine.c_str()));
  };
  EXPECT_EQ(as_user(kUserA, kGroupA, attempt), 0);
  EXPECT_TRUE(exists(theirs));
}

TEST_F(PosixDir, LinkAddsANameToTheSameInode) {
  make_file(path("f"), "data");
  struct stat before = stat_of(path("f"));
  struct stat parent = stat_of(work());
  tick();
  ASSERT_EQ(errno_of(::link(path("f").c_str(), path("g").c_str())), 0);
  struct stat g = stat_of(path("g"));
  EXPECT_EQ(g.st_ino, before.st_ino);
  EXPECT_EQ(g.st_nlink, 2u);
  EXPECT_EQ(stat_of(path("f")).st_nlink, 2u);
  EXPECT_TRUE(later(g.st_ctim, before.st_ctim));
  EXPECT_TRUE(same_time(g.st_mtim, before.st_mtim));
  EXPECT_TRUE(later(stat_of(work()).st_mtim, parent.st_mtim));
  EXPECT_EQ(read_all(path("g")), "data");
}

TEST_F(PosixDir, LinkErrors) {
  make_file(path("f"));
  make_file(path("g"));
  ASSERT_EQ(errno_of(::mkdir(path("d").c_str(), 0755)), 0);
  EXPECT_EQ(errno_of(::link(path("f").c_str(), path("g").c_str())), EEXIST);
  EXPECT_EQ(errno_of(::link(path("missing").c_str(), path("h").c_str())), ENOENT);
  EXPECT_EQ(errno_of(::link(path("f").c_str(), path("missing/h").c_str())), ENOENT);
  EXPECT_EQ(errno_of(::link(path("d").c_str(), path("d2").c_str())), EPERM);
  EXPECT_EQ(errno_of(::link(path("f").c_str(), path("g/h").c_str())), ENOTDIR);
}

TEST_F(PosixDir, UnlinkRemovesANameAndTheLastOneKeepsOpenDataReadable) {
  make_file(path("f"), "still here");
  ASSERT_EQ(errno_of(::link(path("f").c_str(), path("g").c_str())), 0);
  struct stat before = stat_of(path("g"));
  tick();
  ASSERT_EQ(errno_of(::unlink(path("f").c_str())), 0);
  struct stat g = stat_of(path("g"));
  EXPECT_EQ(g.st_nlink, 1u);
  EXPECT_TRUE(later(g.st_ctim, before.st_ctim));
  int fd = ::open(path("g").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(errno_of(::unlink(path("g").c_str())), 0);
  EXPECT_FALSE(exists(path("g")));
  char buffer[32] = {};
  EXPECT_EQ(::pread(fd, buffer, sizeof buffer, 0), 10);
  EXPECT_EQ(std::string(buffer), "still here");
  struct stat open_stat {};
  EXPECT_EQ(::fstat(fd, &open_stat), 0);
  EXPECT_EQ(open_stat.st_nlink, 0u);
  ::close(fd);
}

TEST_F(PosixDir, UnlinkErrors) {
  ASSERT_EQ(errno_of(::mkdir(path("d").c_str(), 0755)), 0);
  make_file(path("d/f"));
  make_file(path("f"));
  EXPECT_EQ(errno_of(::unlink(path("d").c_str())), EISDIR);
  EXPECT_EQ(errno_of(::unlink(path("missing").c_str())), ENOENT);
  EXPECT_EQ(errno_of(::unlink(path("f/x").c_str())), ENOTDIR);
  std::string inside = path("d/f");
  EXPECT_EQ(as_user(kUserA, kGroupA, [&] { return errno_of(::unlink(inside.c_str())); }), EACCES);
  EXPECT_TRUE(exists(inside));
}

TEST_F(PosixDir, SymlinkStoresItsTargetAndLoopsAreELOOP) {
  std::string target = "some/where/else";
  ASSERT_EQ(errno_of(::symlink(target.c_str(), path("l").c_str())), 0);
  struct stat l = stat_of(path("l"));
  EXPECT_TRUE(S_ISLNK(l.st_mode));
  EXPECT_EQ(static_cast<size_t>(l.st_size), target.size());
  char buffer[256] = {};
  EXPECT_EQ(::readlink(path("l").c_str(), buffer, sizeof buffer),
            static_cast<ssize_t>(target.size()));
  EXPECT_EQ(std::string(buffer), target);
  struct stat followed {};
  EXPECT_EQ(errno_of(::stat(path("l").c_str(), &followed)), ENOENT);  // dangling
  EXPECT_EQ(errno_of(::symlink("x", path("l").c_str())), EEXIST);
  ASSERT_EQ(errno_of(::symlink(path("b").c_str(), path("a").c_str())), 0);
  ASSERT_EQ(errno_of(::symlink(path("a").c_str(), path("b").c_str())), 0);
  EXPECT_EQ(errno_of(::open(path("a").c_str(), O_RDONLY)), ELOOP);
  EXPECT_EQ(errno_of(::stat(path("a/x").c_str(), &followed)), ELOOP);
  EXPECT_EQ(errno_of(::symlink(std::string(4096, 't').c_str(), path("long").c_str())),
            ENAMETOOLONG);
}

TEST_F(PosixDir, SymlinkToADirectoryIsFollowedAndONofollowIsELOOP) {
  ASSERT_EQ(errno_of(::mkdir(path("d").c_str(), 0755)), 0);
  make_file(path("d/f"), "through");
  ASSERT_EQ(errno_of(::symlink("d", path("l").c_str())), 0);
  EXPECT_EQ(read_all(path("l/f")), "through");
  EXPECT_EQ(errno_of(::open(path("l").c_str(), O_RDONLY | O_NOFOLLOW)), ELOOP);
  ASSERT_EQ(errno_of(::unlink(path("l").c_str())), 0);
  EXPECT_TRUE(exists(path("d/f")));
}

}  // namespace
}  // namespace mica::testing
