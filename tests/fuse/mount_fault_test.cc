// The mount across restarts and faults: data written by fio verifies after an unmount and a
// remount (`mica dev up --mount` on the running cluster) and from a second mount (a second
// mica-fuse on another directory); a storage process SIGKILLed (by its pid file) under a
// running fio verify job loses nothing fio wrote; a killed FUSE daemon leaves the mount
// answering ENOTCONN until `mica dev up --mount` mounts it again. These need a real mount:
// skipped with MICA_FUSE_TEST_DIR.
//
// Heavy. Time caps (Release; Debug and ASan use a quarter of the sequential size): each fio
// job 90 s (32 MiB sequential, 1 MiB random 4 KiB),
// a remount 120 s (dev up's own deadline is 30 s for the mount), the whole test ctest's
// TIMEOUT for the fuse tests.
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cstring>
#include <string>

#include "apps/dev_mount.h"
#include "tests/fuse/mount_fixture.h"
#include "tests/fuse/mount_tools.h"
#include "tests/fuse/posix_helpers.h"

namespace mica::testing {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kFioTimeout{90'000};
constexpr uint64_t kSeqMib = kOptimisedBuild ? 32 : 8;
// Random 4 KiB writes on the mount run at ~13/s today (each one synchronous end to end).
constexpr uint64_t kRandMib = 1;

class MountFault : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (!on_mount()) GTEST_SKIP() << "needs a real mount (MICA_FUSE_TEST_DIR is set)";
    ASSERT_TRUE(have_program("fio")) << "fio is missing: run scripts/install-deps.sh";
  }
  RunResult sh(const std::string& command, milliseconds timeout = kFioTimeout) {
    return shell(command, binary_dir() + "/fuse-fault-" + std::to_string(::getpid()), timeout);
  }
  apps::DevProcess process(const std::string& name) {
    for (const apps::DevProcess& p : cluster()->processes()) {
      if (p.name == name) return p;
    }
    return apps::DevProcess{};
  }
  // Unmounts the mount (its mica-fuse ends) and mounts it again with `dev up --mount`.
  void remount() {
    ASSERT_EQ(shell("fusermount3 -u " + cluster()->mountpoint(), work_log(), kFioTimeout).exit_code,
              0);
    RunResult up = cluster()->mount(cluster()->mountpoint());
    ASSERT_EQ(up.exit_code, 0) << describe(up);
    ASSERT_EQ(apps::probe_mount(cluster()->mountpoint()), apps::MountState::kLive);
  }
  std::string work_log() const {
    return binary_dir() + "/fuse-fault-log-" + std::to_string(::getpid());
  }
};

// fio's write phase, then (elsewhere) its verify-only phase over the same files.
std::string write_job(const std::string& dir, const std::string& name, const std::string& rw,
                      const std::string& bs, uint64_t mib, const std::string& extra = "") {
  return fio_job(dir, name, rw, bs, mib, extra);
}
std::string verify_job(const std::string& dir, const std::string& name, const std::string& rw,
                       const std::string& bs, uint64_t mib, const std::string& extra = "") {
  return fio_job(dir, name, rw, bs, mib, "--verify_only=1 " + extra);
}

TEST_F(MountFault, FioDataVerifiesAfterUnmountAndRemount) {
  ASSERT_EQ(sh(write_job(work(), "seq", "write", "1M", kSeqMib)).exit_code, 0);
  ASSERT_EQ(sh(write_job(work(), "rand", "randwrite", "4k", kRandMib, "--direct=1")).exit_code, 0);
  remount();
  RunResult seq = sh(verify_job(work(), "seq", "write", "1M", kSeqMib));
  EXPECT_EQ(seq.exit_code, 0) << describe(seq);
  RunResult rand = sh(verify_job(work(), "rand", "randwrite", "4k", kRandMib, "--direct=1"));
  EXPECT_EQ(rand.exit_code, 0) << describe(rand);
}

TEST_F(MountFault, FioDataVerifiesFromASecondMount) {
  ASSERT_EQ(sh(write_job(work(), "seq", "write", "1M", kSeqMib)).exit_code, 0);
  std::string second = cluster()->root() + "/mnt2";
  ASSERT_TRUE(std::filesystem::create_directories(second));
  Child fuse({std::string(MICA_FUSE_BINARY), "--mgmtd", cluster()->mgmtd(), "--token-file",
              cluster()->token_file(), second},
             cluster()->root() + "/fuse2.out", cluster()->root() + "/fuse2.err");
  ASSERT_TRUE(wait_live_mount(second, milliseconds(30'000))) << fuse.err();
  std::string there = second + work().substr(cluster()->mountpoint().size());
  RunResult buffered = sh(verify_job(there, "seq", "write", "1M", kSeqMib));
  EXPECT_EQ(buffered.exit_code, 0) << describe(buffered);
  RunResult direct = sh(verify_job(there, "seq", "write", "1M", kSeqMib, "--direct=1"));
  EXPECT_EQ(direct.exit_code, 0) << describe(direct);
  EXPECT_TRUE(apps::unmount(second, false).ok());
  int code = -1;
  for (int i = 0; i < 200 && fuse.alive(&code); ++i) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(code, 0) << "mica-fuse should exit 0 after its unmount\n" << fuse.err();
}

TEST_F(MountFault, StorageSigkillUnderFioLosesNoVerifiedBlock) {
  // O_DIRECT writes: every acknowledged block went to the cluster, not the page cache.
  std::string job = write_job(work(), "kill", "write", "256k", kSeqMib, "--direct=1 --rate=16m");
  Child fio({"/bin/sh", "-c", job}, cluster()->root() + "/fio.out", cluster()->root() + "/fio.err");
  std::this_thread::sleep_for(milliseconds(kOptimisedBuild ? 1500 : 500));
  apps::DevProcess storage = process("storage-2");
  ASSERT_TRUE(apps::dev_process_alive(storage));
  ASSERT_EQ(::kill(storage.pid, SIGKILL), 0);
  int code = -1;
  auto until = std::chrono::steady_clock::now() + kFioTimeout;
  while (fio.alive(&code) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_EQ(code, 0) << "fio under a storage SIGKILL:\n" << fio.out() << fio.err();
  remount();  // so no page cache can answer
  RunResult verify = sh(verify_job(work(), "kill", "write", "256k", kSeqMib, "--direct=1"));
  EXPECT_EQ(verify.exit_code, 0) << describe(verify);
}

TEST_F(MountFault, AKilledDaemonLeavesENOTCONNAndDevUpMountsAgain) {
  make_file(path("kept"), "survives the daemon");
  apps::DevProcess fuse = process("fuse");
  ASSERT_TRUE(apps::dev_process_alive(fuse));
  ASSERT_EQ(::kill(fuse.pid, SIGKILL), 0);
  for (int i = 0; i < 200 && apps::dev_process_alive(fuse); ++i) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_FALSE(apps::dev_process_alive(fuse));
  // statfs always asks the daemon (a stat may be answered from attributes still cached).
  struct statfs fs_info {};
  int error = errno_of(::statfs(cluster()->mountpoint().c_str(), &fs_info));
  EXPECT_TRUE(apps::daemon_gone(error)) << std::strerror(error);
  EXPECT_EQ(apps::probe_mount(cluster()->mountpoint()), apps::MountState::kDead);
  RunResult up = cluster()->mount(cluster()->mountpoint());
  ASSERT_EQ(up.exit_code, 0) << describe(up);
  EXPECT_NE(up.out.find("mounts it again"), std::string::npos) << up.out;
  EXPECT_EQ(apps::probe_mount(cluster()->mountpoint()), apps::MountState::kLive);
  EXPECT_EQ(read_all(path("kept")), "survives the daemon");
  RunResult again = cluster()->mount(cluster()->mountpoint());
  EXPECT_EQ(again.exit_code, 0) << describe(again);
  EXPECT_NE(again.out.find("already running"), std::string::npos) << again.out;
}

}  // namespace
}  // namespace mica::testing
