// The POSIX behaviour suite, files and attributes: open, mkfifo, mknod, chmod, chown,
// truncate and utimensat on the mount (or on a local folder with MICA_FUSE_TEST_DIR:
// tests/fuse/mount_fixture.h) — results, errno cases, which timestamps change, and
// ownership rules as other users (forked children).
//
// Heavy: the suite's cluster is one `mica dev up --mount` (about 5 s); each test is a few
// dozen system calls. Time cap: ctest's TIMEOUT for the fuse tests.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <string>

#include "tests/fuse/mount_fixture.h"
#include "tests/fuse/posix_helpers.h"

namespace mica::testing {
namespace {

class PosixFile : public MountTest {};

TEST_F(PosixFile, OpenCreatesWithTheUmaskedModeAndUpdatesTheParent) {
  struct stat parent = stat_of(work());
  tick();
  int fd = ::open(path("f").c_str(), O_CREAT | O_WRONLY, 0666);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ::close(fd);
  struct stat f = stat_of(path("f"));
  EXPECT_TRUE(S_ISREG(f.st_mode));
  EXPECT_EQ(f.st_mode & 07777, 0666u & ~0022u);
  EXPECT_EQ(f.st_size, 0);
  EXPECT_EQ(f.st_nlink, 1u);
  EXPECT_TRUE(later(stat_of(work()).st_mtim, parent.st_mtim));
  EXPECT_TRUE(later(stat_of(work()).st_ctim, parent.st_ctim));
}

TEST_F(PosixFile, OpenErrors) {
  make_file(path("f"));
  ASSERT_EQ(errno_of(::mkdir(path("d").c_str(), 0755)), 0);
  ASSERT_EQ(errno_of(::symlink("f", path("l").c_str())), 0);
  EXPECT_EQ(errno_of(::open(path("f").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644)), EEXIST);
  EXPECT_EQ(errno_of(::open(path("missing").c_str(), O_RDONLY)), ENOENT);
  EXPECT_EQ(errno_of(::open(path("d").c_str(), O_WRONLY)), EISDIR);
  EXPECT_EQ(errno_of(::open(path("f/x").c_str(), O_RDONLY)), ENOTDIR);
  EXPECT_EQ(errno_of(::open(path("f").c_str(), O_RDONLY | O_DIRECTORY)), ENOTDIR);
  EXPECT_EQ(errno_of(::open(path("l").c_str(), O_RDONLY | O_NOFOLLOW)), ELOOP);
  EXPECT_EQ(errno_of(::open(path(std::string(256, 'n')).c_str(), O_CREAT | O_WRONLY, 0644)),
            ENAMETOOLONG);
}

TEST_F(PosixFile, OpenTruncUpdatesMtimeAndEmptiesTheFile) {
  make_file(path("f"), "some bytes");
  struct stat before = stat_of(path("f"));
  tick();
  int fd = ::open(path("f").c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  ::close(fd);
  struct stat after = stat_of(path("f"));
  EXPECT_EQ(after.st_size, 0);
  EXPECT_TRUE(later(after.st_mtim, before.st_mtim));
  EXPECT_TRUE(later(after.st_ctim, before.st_ctim));
  EXPECT_EQ(after.st_ino, before.st_ino);
}

TEST_F(PosixFile, OpenHonoursTheModeBitsForOtherUsers) {
  make_file(path("secret"), "x", 0600);
  make_file(path("public"), "x", 0644);
  std::string secret = path("secret"), pub = path("public");
  EXPECT_EQ(as_user(kUserA, kGroupA, [&] { return errno_of(::open(secret.c_str(), O_RDONLY)); }),
            EACCES);
  EXPECT_EQ(as_user(kUserA, kGroupA, [&] { return errno_of(::open(pub.c_str(), O_RDONLY)); }), 0);
  EXPECT_EQ(as_user(kUserA, kGroupA, [&] { return errno_of(::open(pub.c_str(), O_WRONLY)); }),
            EACCES);
  ASSERT_EQ(::chown(pub.c_str(), 0, kGroupA), 0);
  ASSERT_EQ(::chmod(pub.c_str(), 0664), 0);
  EXPECT_EQ(as_user(kUserA, kGroupA, [&] { return errno_of(::open(pub.c_str(), O_WRONLY)); }), 0);
}

TEST_F(PosixFile, MkfifoMakesAPipeThatCarriesBytes) {
  ASSERT_EQ(errno_of(::mkfifo(path("p").c_str(), 0644)), 0);
  EXPECT_TRUE(S_ISFIFO(stat_of(path("p")).st_mode));
  EXPECT_EQ(errno_of(::mkfifo(path("p").c_str(), 0644)), EEXIST);
  int reader = ::open(path("p").c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0) << std::strerror(errno);
  int writer = ::open(path("p").c_str(), O_WRONLY | O_NONBLOCK);
  ASSERT_GE(writer, 0) << std::strerror(errno);
  EXPECT_EQ(::write(writer, "pipe", 4), 4);
  char buffer[8] = {};
  EXPECT_EQ(::read(reader, buffer, sizeof buffer), 4);
  EXPECT_EQ(std::string(buffer), "pipe");
  ::close(writer);
  ::close(reader);
}

TEST_F(PosixFile, MknodMakesFilesAndDevicesAndOnlyRootMakesDevices) {
  ASSERT_EQ(errno_of(::mknod(path("r").c_str(), S_IFREG | 0640, 0)), 0);
  EXPECT_TRUE(S_ISREG(stat_of(path("r")).st_mode));
  ASSERT_EQ(errno_of(::mknod(path("null").c_str(), S_IFCHR | 0666, makedev(1, 3))), 0);
  struct stat dev = stat_of(path("null"));
  EXPECT_TRUE(S_ISCHR(dev.st_mode));
  EXPECT_EQ(dev.st_rdev, makedev(1, 3));
  EXPECT_EQ(errno_of(::mknod(path("r").c_str(), S_IFREG | 0640, 0)), EEXIST);
  std::string as_a = path("dev-a");
  EXPECT_EQ(as_user(kUserA, kGroupA,
                    [&] { return errno_of(::mknod(as_a.c_str(), S_IFCHR | 0666, makedev(1, 3))); }),
            EPERM);
}

TEST_F(PosixFile, ChmodChangesTheModeAndCtimeOnly) {
  make_file(path("f"), "x", 0644);
  struct stat before = stat_of(path("f"));
  tick();
  ASSERT_EQ(errno_of(::chmod(path("f").c_str(), 0600)), 0);
  struct stat after = stat_of(path("f"));
  EXPECT_EQ(after.st_mode & 07777, 0600u);
  EXPECT_TRUE(later(after.st_ctim, before.st_ctim));
  EXPECT_TRUE(same_time(after.st_mtim, before.st_mtim));
  EXPECT_EQ(errno_of(::chmod(path("missing").c_str(), 0600)), ENOENT);
  EXPECT_EQ(errno_of(::chmod(path("f/x").c_str(), 0600)), ENOTDIR);
}

TEST_F(PosixFile, ChmodByANonOwnerIsEPERMAndTheOwnerLosesSetgidOutsideTheGroup) {
  make_file(path("f"), "x", 0644);
  std::string f = path("f");
  EXPECT_EQ(as_user(kUserA, kGroupA, [&] { return errno_of(::chmod(f.c_str(), 0666)); }), EPERM);
  ASSERT_EQ(::chown(f.c_str(), kUserA, kGroupB), 0);
  EXPECT_EQ(as_user(kUserA, kGroupA, [&] { return errno_of(::chmod(f.c_str(), 02755)); }), 0);
  EXPECT_EQ(stat_of(f).st_mode & 07777, 0755u);  // not in group kGroupB: S_ISGID dropped
}

TEST_F(PosixFile, ChownChangesOwnerAndClearsSetuid) {
  make_file(path("f"), "x", 0755);
  ASSERT_EQ(::chmod(path("f").c_str(), 04755), 0);
  struct stat before = stat_of(path("f"));
  tick();
  ASSERT_EQ(errno_of(::chown(path("f").c_str(), kUserA, kGroupA)), 0);
  struct stat after = stat_of(path("f"));
  EXPECT_EQ(after.st_uid, kUserA);
  EXPECT_EQ(after.st_gid, kGroupA);
  EXPECT_EQ(after.st_mode & 07777, 0755u);
  EXPECT_TRUE(later(after.st_ctim, before.st_ctim));
  EXPECT_TRUE(same_time(after.st_mtim, before.st_mtim));
  ASSERT_EQ(errno_of(::symlink("f", path("l").c_str())), 0);
  ASSERT_EQ(errno_of(::lchown(path("l").c_str(), kUserB, kGroupB)), 0);
  EXPECT_EQ(stat_of(path("l")).st_uid, kUserB);
  EXPECT_EQ(stat_of(path("f")).st_uid, kUserA);
}

TEST_F(PosixFile, ChownAsAnotherUserIsRefused) {
  make_file(path("f"));
  ASSERT_EQ(::chown(path("f").c_str(), kUserA, kGroupA), 0);
  std::string f = path("f");
  // The owner may not give the file away, nor move it to a group it is not in.
  EXPECT_EQ(as_user(kUserA, kGroupA, [&] { return errno_of(::chown(f.c_str(), kUserB, -1)); }),
            EPERM);
  EXPECT_EQ(as_user(kUserA, kGroupA, [&] { return errno_of(::chown(f.c_str(), -1, kGroupB)); }),
            EPERM);
  EXPECT_EQ(as_user(kUserB, kGroupB, [&] { return errno_of(::chown(f.c_str(), kUserB, -1)); }),
            EPERM);
  // Its own group is allowed (a no-op change).
  EXPECT_EQ(as_user(kUserA, kGroupA, [&] { return errno_of(::chown(f.c_str(), -1, kGroupA)); }), 0);
  EXPECT_EQ(stat_of(f).st_uid, kUserA);
}

TEST_F(PosixFile, TruncateGrowsWithZerosShrinksAndUpdatesMtime) {
  make_file(path("f"), "abcdef");
  struct stat before = stat_of(path("f"));
  tick();
  ASSERT_EQ(errno_of(::truncate(path("f").c_str(), 3)), 0);
  EXPECT_EQ(read_all(path("f")), "abc");
  struct stat after = stat_of(path("f"));
  EXPECT_TRUE(later(after.st_mtim, before.st_mtim));
  EXPECT_TRUE(later(after.st_ctim, before.st_ctim));
  ASSERT_EQ(errno_of(::truncate(path("f").c_str(), 6)), 0);
  EXPECT_EQ(read_all(path("f")), std::string("abc\0\0\0", 6));
  int fd = ::open(path("f").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(errno_of(::ftruncate(fd, 1)), 0);
  EXPECT_EQ(errno_of(::ftruncate(fd, -1)), EINVAL);
  ::close(fd);
  EXPECT_EQ(stat_of(path("f")).st_size, 1);
}

TEST_F(PosixFile, TruncateErrors) {
  ASSERT_EQ(errno_of(::mkdir(path("d").c_str(), 0755)), 0);
  make_file(path("f"), "x", 0644);
  EXPECT_EQ(errno_of(::truncate(path("d").c_str(), 0)), EISDIR);
  EXPECT_EQ(errno_of(::truncate(path("missing").c_str(), 0)), ENOENT);
  std::string f = path("f");
  EXPECT_EQ(as_user(kUserA, kGroupA, [&] { return errno_of(::truncate(f.c_str(), 0)); }), EACCES);
  EXPECT_EQ(stat_of(f).st_size, 1);
}

TEST_F(PosixFile, UtimensatSetsOmitsAndNowsTimes) {
  make_file(path("f"));
  timespec times[2] = {{.tv_sec = 1'000'000'000, .tv_nsec = 123'456'789},
                       {.tv_sec = 1'500'000'000, .tv_nsec = 987'654'321}};
  struct stat before = stat_of(path("f"));
  tick();
  ASSERT_EQ(errno_of(::utimensat(AT_FDCWD, path("f").c_str(), times, 0)), 0);
  struct stat set = stat_of(path("f"));
  EXPECT_TRUE(same_time(set.st_atim, times[0]));
  EXPECT_TRUE(same_time(set.st_mtim, times[1]));
  EXPECT_TRUE(later(set.st_ctim, before.st_ctim));
  timespec omit_now[2] = {{.tv_sec = 0, .tv_nsec = UTIME_OMIT},
                          {.tv_sec = 0, .tv_nsec = UTIME_NOW}};
  ASSERT_EQ(errno_of(::utimensat(AT_FDCWD, path("f").c_str(), omit_now, 0)), 0);
  struct stat now = stat_of(path("f"));
  EXPECT_TRUE(same_time(now.st_atim, times[0]));
  EXPECT_TRUE(later(now.st_mtim, set.st_ctim));
  EXPECT_EQ(errno_of(::utimensat(AT_FDCWD, path("missing").c_str(), times, 0)), ENOENT);
}

TEST_F(PosixFile, UtimensatAsAnotherUserNeedsOwnershipOrWriteForNow) {
  make_file(path("f"), "x", 0644);
  make_file(path("shared"), "x", 0666);
  std::string f = path("f"), shared = path("shared");
  timespec explicit_times[2] = {{.tv_sec = 5, .tv_nsec = 0}, {.tv_sec = 5, .tv_nsec = 0}};
  EXPECT_EQ(as_user(kUserA, kGroupA,
                    [&] { return errno_of(::utimensat(AT_FDCWD, f.c_str(), explicit_times, 0)); }),
            EPERM);
  EXPECT_EQ(as_user(kUserA, kGroupA,
                    [&] { return errno_of(::utimensat(AT_FDCWD, f.c_str(), nullptr, 0)); }),
            EACCES);
  EXPECT_EQ(as_user(kUserA, kGroupA,
                    [&] { return errno_of(::utimensat(AT_FDCWD, shared.c_str(), nullptr, 0)); }),
            0);
  EXPECT_EQ(
      as_user(kUserA, kGroupA,
              [&] { return errno_of(::utimensat(AT_FDCWD, shared.c_str(), explicit_times, 0)); }),
      EPERM);
}

}  // namespace
}  // namespace mica::testing
