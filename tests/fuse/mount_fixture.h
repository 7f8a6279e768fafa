// The fixture of the tests on a real mount (tests/fuse/mount_*.cc, posix_*.cc): a dev cluster
// brought up with `mica dev up --dir TMP/cluster --mount TMP/mnt` (tests/client/
// client_cluster.h, free ports, its own temp folder) once per test suite and brought down
// after it; each test works in a fresh directory of the mount (mode 0777, so the tests that
// act as other users can reach it), removed afterwards.
//
// MICA_FUSE_TEST_DIR=DIR runs the same tests in a fresh directory under DIR instead, with no
// cluster (a local ext4 folder: what real POSIX answers, to check the expectations). Where
// /dev/fuse is absent (and no MICA_FUSE_TEST_DIR is set) every test is skipped, saying why.
// Blocking calls on the test thread; helpers that act as another user fork a child.
#pragma once

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/client/client_cluster.h"

namespace mica::testing {

inline constexpr const char* kFuseTestDirEnv = "MICA_FUSE_TEST_DIR";
// The unprivileged users the permission tests act as (need not exist in /etc/passwd).
inline constexpr uid_t kUserA = 1000;
inline constexpr uid_t kUserB = 1001;
inline constexpr gid_t kGroupA = 1000;
inline constexpr gid_t kGroupB = 1001;

// Optimised builds run the full sizes; Debug and sanitizer builds smaller ones.
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__)
inline constexpr bool kOptimisedBuild = true;
#else
inline constexpr bool kOptimisedBuild = false;
#endif

inline std::string plain_test_dir() {
  const char* dir = std::getenv(kFuseTestDirEnv);
  return dir == nullptr ? std::string() : std::string(dir);
}
inline bool fuse_device_present() {
  return ::access("/dev/fuse", R_OK | W_OK) == 0;
}

// errno after a failed call, 0 after a successful one (rc < 0 is failure).
inline int errno_of(long rc) {
  return rc < 0 ? errno : 0;
}

// Runs body in a forked child as uid/gid with no supplementary groups; body returns 0 or an
// errno value. What the child returned (200+ when it could not change its identity).
template <typename Body>
int as_user(uid_t uid, gid_t gid, Body body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 ||
        ::setresuid(uid, uid, uid) != 0) {
      ::_exit(200);
    }
    ::_exit(body());
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return 201;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 202;
}

class MountTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    if (!plain_test_dir().empty() || !fuse_device_present()) return;
    cluster_ = new ClientCluster("fuse", 3, 1, true);
    // Other users reach the mount point through the test's folder (mkdtemp made it 0700).
    ::chmod(cluster_->root().c_str(), 0755);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

 protected:
  void SetUp() override {
    std::string base = plain_test_dir();
    if (base.empty()) {
      if (!fuse_device_present()) {
        GTEST_SKIP() << "/dev/fuse is absent (or not readable and writable): no FUSE mount "
                        "here; set MICA_FUSE_TEST_DIR=DIR to run these tests on a local folder";
      }
      ASSERT_NE(cluster_, nullptr);
      ASSERT_TRUE(cluster_->up()) << cluster_->up_output();
      base = cluster_->mountpoint();
    }
    std::string pattern = base + "/t-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    ASSERT_NE(::mkdtemp(buffer.data()), nullptr) << pattern << ": " << std::strerror(errno);
    work_ = buffer.data();
    ASSERT_EQ(::chmod(work_.c_str(), 0777), 0) << std::strerror(errno);
  }
  void TearDown() override {
    if (work_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(work_, ignored);
  }

  // The test's own directory; path(name) a name in it.
  const std::string& work() const { return work_; }
  std::string path(const std::string& name) const { return work_ + "/" + name; }
  // nullptr in MICA_FUSE_TEST_DIR mode.
  static ClientCluster* cluster() { return cluster_; }
  static bool on_mount() { return cluster_ != nullptr; }

 private:
  inline static ClientCluster* cluster_ = nullptr;
  std::string work_;
};

}  // namespace mica::testing
