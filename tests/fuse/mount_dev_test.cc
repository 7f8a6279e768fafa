// `mica dev up --mount` and `mica dev down` (apps/dev_mount.h): the probe that tells a live,
// dead or absent FUSE mount apart, an unmount of nothing, the refusal with a clear message
// when mica-fuse is not built, and on a real mount the whole life: up returns with the mount
// answering, a second up says the cluster runs, down unmounts and leaves no process behind.
//
// Heavy (the last test): one `mica dev up --mount` (about 5 s in a Debug build). Time cap:
// dev up's own deadlines (90 s for the cluster, 30 s for the mount), ctest's TIMEOUT.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "apps/dev_mount.h"
#include "apps/dev_process.h"
#include "tests/apps/process.h"
#include "tests/fuse/mount_fixture.h"
#include "tests/temp_dir.h"

namespace mica::testing {
namespace {

using std::chrono::milliseconds;

RunResult mica(std::vector<std::string> args, const std::string& prefix) {
  args.insert(args.begin(), MICA_CLI_BINARY);
  return run(args, prefix, milliseconds(150'000));
}

bool fuse_built() {
  return ::access(MICA_FUSE_BINARY, X_OK) == 0;
}

TEST(DevMount, ProbeTellsAPlainDirectoryFromAMissingOne) {
  TempDir dir(binary_dir() + "/fuse-test-data", "probe");
  EXPECT_EQ(apps::probe_mount(dir.path()), apps::MountState::kNotFuse);
  EXPECT_EQ(apps::probe_mount(dir.path() + "/missing"), apps::MountState::kMissing);
  EXPECT_TRUE(apps::unmount(dir.path(), false).ok());  // nothing mounted: nothing to do
}

TEST(DevMount, DownOfAFolderWithoutAMountStopsNothing) {
  TempDir dir(binary_dir() + "/fuse-test-data", "nomount");
  Result<std::string> stopped = apps::stop_dev_mount(dir.path());
  ASSERT_TRUE(stopped.ok()) << stopped.status().to_string();
  EXPECT_EQ(*stopped, "");
}

TEST(DevMount, MountNeedsAValue) {
  TempDir dir(binary_dir() + "/fuse-test-data", "usage");
  RunResult up = mica({"dev", "up", "--dir", dir.path() + "/c", "--mount"}, dir.path() + "/up");
  EXPECT_EQ(up.exit_code, 2) << up.out << up.err;
  EXPECT_NE(up.err.find("--mount needs a value"), std::string::npos) << up.err;
}

TEST(DevMount, WithoutMicaFuseUpRefusesBeforeStartingAnything) {
  if (fuse_built()) GTEST_SKIP() << MICA_FUSE_BINARY << " is built: nothing to refuse";
  TempDir dir(binary_dir() + "/fuse-test-data", "nofuse");
  std::string cluster = dir.path() + "/c";
  RunResult up =
      mica({"dev", "up", "--dir", cluster, "--mount", dir.path() + "/mnt"}, dir.path() + "/up");
  EXPECT_NE(up.exit_code, 0);
  EXPECT_NE(up.err.find("mica-fuse is missing"), std::string::npos) << up.err;
  EXPECT_TRUE(apps::read_pid_files(cluster + "/pids").empty());
}

TEST(DevMount, UpMountsDownUnmountsAndLeavesNoProcess) {
  if (!fuse_device_present()) GTEST_SKIP() << "/dev/fuse is absent: no FUSE mount here";
  if (!fuse_built()) GTEST_SKIP() << MICA_FUSE_BINARY << " is not built yet";
  TempDir dir(binary_dir() + "/fuse-test-data", "life");
  std::string cluster = dir.path() + "/c", mnt = dir.path() + "/mnt";
  RunResult up = mica({"dev", "up", "--dir", cluster, "--mount", mnt}, dir.path() + "/up");
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  EXPECT_NE(up.out.find("mount      " + mnt), std::string::npos) << up.out;
  EXPECT_EQ(apps::probe_mount(mnt), apps::MountState::kLive);
  std::vector<apps::DevProcess> processes = apps::read_pid_files(cluster + "/pids");
  EXPECT_EQ(processes.size(), 6u);  // mgmtd, meta, 3 storage, fuse
  RunResult again = mica({"dev", "up", "--dir", cluster, "--mount", mnt}, dir.path() + "/again");
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("already running"), std::string::npos) << again.out;
  RunResult plain = mica({"dev", "up", "--dir", cluster}, dir.path() + "/plain");
  EXPECT_NE(plain.exit_code, 0);
  EXPECT_NE(plain.err.find("already running"), std::string::npos) << plain.err;
  RunResult elsewhere = mica({"dev", "up", "--dir", cluster, "--mount", dir.path() + "/other"},
                             dir.path() + "/elsewhere");
  EXPECT_NE(elsewhere.exit_code, 0);
  EXPECT_NE(elsewhere.err.find("already mounted at " + mnt), std::string::npos) << elsewhere.err;
  RunResult down = mica({"dev", "down", "--dir", cluster}, dir.path() + "/down");
  EXPECT_EQ(down.exit_code, 0) << down.err;
  EXPECT_NE(down.out.find("unmounted " + mnt), std::string::npos) << down.out;
  EXPECT_EQ(apps::probe_mount(mnt), apps::MountState::kNotFuse);
  for (const apps::DevProcess& process : processes) {
    EXPECT_FALSE(apps::dev_process_alive(process)) << process.name;
  }
}

}  // namespace
}  // namespace mica::testing
