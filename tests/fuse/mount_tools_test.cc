// Real programs on the mount: fio verify jobs (sequential and random, buffered, O_DIRECT and
// mmap, each writing then reading back every block with its crc32c), stress-ng's file-system
// stressors with --verify, git (init, commits, fsck), tar of a source tree in and out with
// diff -r, and sqlite3 creating and querying a database. With MICA_FUSE_TEST_DIR they run
// on a local folder instead (tests/fuse/mount_fixture.h).
//
// Heavy. Time caps (Release; Debug and ASan builds use a quarter of the sequential size):
// each fio job at most 60 s (32 MiB sequential, 1 MiB random 4 KiB, 4 MiB mmap), stress-ng
// 10 s of stressors plus its start (cap 60 s), its link and symlink rounds (cap 170 s, about
// 20 s in Release), git, tar and sqlite 60 s each. ctest's TIMEOUT caps the whole test.
#include <string>

#include "tests/fuse/mount_fixture.h"
#include "tests/fuse/mount_tools.h"

namespace mica::testing {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kToolTimeout{60'000};
constexpr milliseconds kLinkRoundsTimeout{170'000};
constexpr uint64_t kSeqMib = kOptimisedBuild ? 32 : 8;
// Random 4 KiB writes on the mount run at ~13/s today (each one synchronous end to end).
constexpr uint64_t kRandMib = 1;

class MountTools : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    for (const char* tool : {"fio", "stress-ng", "git", "tar", "sqlite3", "diff"}) {
      ASSERT_TRUE(have_program(tool)) << tool << " is missing: run scripts/install-deps.sh";
    }
  }
  RunResult sh(const std::string& command, milliseconds timeout = kToolTimeout) {
    return shell(command, work_log(), timeout);
  }
  // Logs live outside the mount, in the build tree's test folder.
  std::string work_log() const { return binary_dir() + "/fuse-tool-" + std::to_string(::getpid()); }
};

TEST_F(MountTools, FioSequentialBufferedWriteVerifies) {
  RunResult fio = sh(fio_job(work(), "seq", "write", "1M", kSeqMib, ""));
  EXPECT_EQ(fio.exit_code, 0) << describe(fio);
}

TEST_F(MountTools, FioSequentialDirectWriteVerifies) {
  RunResult fio = sh(fio_job(work(), "seqdirect", "write", "1M", kSeqMib, "--direct=1"));
  EXPECT_EQ(fio.exit_code, 0) << describe(fio);
}

TEST_F(MountTools, FioRandomBufferedWriteVerifies) {
  RunResult fio = sh(fio_job(work(), "rand", "randwrite", "4k", kRandMib, ""));
  EXPECT_EQ(fio.exit_code, 0) << describe(fio);
}

TEST_F(MountTools, FioRandomDirectWriteVerifies) {
  RunResult fio = sh(fio_job(work(), "randdirect", "randwrite", "4k", kRandMib, "--direct=1"));
  EXPECT_EQ(fio.exit_code, 0) << describe(fio);
}

TEST_F(MountTools, FioMmapWriteVerifies) {
  RunResult fio = sh(fio_job(work(), "mmap", "randwrite", "64k", 4 * kRandMib, "--ioengine=mmap"));
  EXPECT_EQ(fio.exit_code, 0) << describe(fio);
}

TEST_F(MountTools, StressNgFileSystemStressorsVerify) {
  // Small counts: the stressors' own checks (--verify) are what this test is for.
  std::string command =
      "stress-ng --temp-path " + work() +
      " --verify --timeout 10s --metrics-brief"
      " --hdd 1 --hdd-ops 200 --hdd-bytes 4M --dir 1 --dir-ops 200 --dir-dirs 64"
      " --rename 1 --rename-ops 500 --dentry 1 --dentry-ops 200 --dentries 64";
  RunResult stress = sh(command);
  EXPECT_EQ(stress.exit_code, 0) << describe(stress);
}

TEST_F(MountTools, StressNgLinkAndSymlinkRoundsVerify) {
  // One round each: a round makes 8192 hard (or symbolic) links, checks each and removes
  // them. A round cut short by --timeout leaves names behind (stress-ng's own cleanup), so
  // the timeout is the cap, not the measure.
  std::string command = "stress-ng --temp-path " + work() +
                        " --verify --timeout 150s --metrics-brief"
                        " --link 1 --link-ops 1 --symlink 1 --symlink-ops 1";
  RunResult stress = sh(command, kLinkRoundsTimeout);
  EXPECT_EQ(stress.exit_code, 0) << describe(stress);
}

TEST_F(MountTools, GitCommitsAndFsckOnTheMount) {
  std::string repo = path("repo");
  std::string command = "set -e; git init -q " + repo + "; cd " + repo +
                        "; git config user.email t@example.com; git config user.name t;"
                        " for i in 1 2 3; do mkdir -p dir$i; seq 1 $((i * 1000)) > dir$i/f;"
                        " echo $i >> log; git add -A; git commit -q -m \"commit $i\"; done;"
                        " git mv dir1 moved; git commit -q -m move; git gc -q;"
                        " git fsck --full --strict; git log --oneline | wc -l";
  RunResult git = sh(command);
  ASSERT_EQ(git.exit_code, 0) << describe(git);
  EXPECT_NE(git.out.find("4"), std::string::npos) << describe(git);
}

TEST_F(MountTools, TarOfASourceTreeInAndOutIsIdentical) {
  TempDir local(binary_dir() + "/fuse-test-data", "tar");
  std::string source = MICA_SOURCE_DIR;
  std::string command = "set -e; tar -C " + source + " -cf " + path("in.tar") + " async; mkdir " +
                        path("x") + "; tar -C " + path("x") + " -xf " + path("in.tar") +
                        "; diff -r " + source + "/async " + path("x") + "/async; tar -C " +
                        path("x") + " -cf " + local.path() + "/out.tar async; mkdir " +
                        local.path() + "/y; tar -C " + local.path() + "/y -xf " + local.path() +
                        "/out.tar; diff -r " + source + "/async " + local.path() + "/y/async";
  RunResult tar = sh(command);
  EXPECT_EQ(tar.exit_code, 0) << describe(tar);
}

TEST_F(MountTools, SqliteCreatesAndQueriesADatabase) {
  std::string db = path("test.db");
  std::string sql =
      "create table t(a integer primary key, b text);"
      " with recursive n(i) as (select 1 union all select i + 1 from n where i < 2000)"
      " insert into t select i, printf('row %d', i) from n;"
      " create index tb on t(b); update t set b = 'x' || b where a % 2 = 0;"
      " delete from t where a > 1500; select count(*), sum(a) from t;"
      " pragma integrity_check;";
  RunResult first = sh("sqlite3 " + db + " \"" + sql + "\"");
  ASSERT_EQ(first.exit_code, 0) << describe(first);
  EXPECT_NE(first.out.find("1500|1125750"), std::string::npos) << describe(first);
  EXPECT_NE(first.out.find("ok"), std::string::npos) << describe(first);
  RunResult wal = sh("sqlite3 " + db +
                     " \"pragma journal_mode=wal; insert into t(b) values('w');"
                     " select count(*) from t where b like 'xrow%';\"");
  ASSERT_EQ(wal.exit_code, 0) << describe(wal);
  EXPECT_NE(wal.out.find("750"), std::string::npos) << describe(wal);
}

}  // namespace
}  // namespace mica::testing
