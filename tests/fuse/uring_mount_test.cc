// mica-fuse over io_uring on a real cluster: a dev cluster (`mica dev up`, 3 storage
// processes, tests/client/client_cluster.h) and mica-fuse started by the test on its own
// mount point with `-o uring=on` (or off) and a metrics port. File and metadata operations
// from parallel threads (so several requests are in flight), then the daemon's metrics must
// show that at least that many requests arrived on the ring
// (mica_fuse_uring_requests_total); with uring=off none may. Other tests that count
// requests by opcode live here for the metrics port. Skipped without root,
// /dev/fuse or the fuse module's enable_uring parameter (switched on here, never off:
// other tests may be using it). Compiles to nothing where the build defines no
// MICA_FUSE_BINARY. Time cap: about 30 s (ctest's TIMEOUT for fuse_tests is 300 s).
#ifdef MICA_FUSE_BINARY

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/apps/http_get.h"
#include "tests/apps/process.h"
#include "tests/client/client_cluster.h"

namespace mica::testing {
namespace {

constexpr const char* kEnableUring = "/sys/module/fuse/parameters/enable_uring";
constexpr long kFuseSuperMagic = 0x65735546;
constexpr int kThreads = 6;
constexpr int kFilesPerThread = 20;
constexpr size_t kFileBytes = 4096;
constexpr auto kMountTimeout = std::chrono::seconds(60);

bool switch_on_enable_uring() {
  std::string value;
  if (!(std::ifstream(kEnableUring) >> value)) return false;
  if (value == "Y") return true;
  std::ofstream out(kEnableUring);
  out << "Y";
  out.close();
  return static_cast<bool>(out);
}

// The sum over label sets of one metric family in a Prometheus text page.
uint64_t metric_sum(const std::string& page, const std::string& name, const std::string& has) {
  uint64_t sum = 0;
  std::istringstream lines(page);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + "{", 0) != 0 && line.rfind(name + " ", 0) != 0) continue;
    if (!has.empty() && line.find(has) == std::string::npos) continue;
    sum += std::stoull(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

class UringMountTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0 || ::access("/dev/fuse", R_OK | W_OK) != 0) return;
    if (::access(kEnableUring, F_OK) != 0) return;
    cluster_ = new ClientCluster("fuse-uring", 3, 1);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "mounting FUSE needs root";
    if (::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/fuse is absent";
    if (::access(kEnableUring, F_OK) != 0)
      GTEST_SKIP() << kEnableUring << " is absent: no FUSE over io_uring in this kernel";
    ASSERT_TRUE(switch_on_enable_uring()) << "cannot switch on " << kEnableUring;
    ASSERT_NE(cluster_, nullptr);
    ASSERT_TRUE(cluster_->up()) << cluster_->up_output();
  }
  void TearDown() override {
    if (mounted_) ::umount2(mnt_.c_str(), MNT_DETACH);
  }

  // Starts mica-fuse on a fresh mount point with `-o uring=MODE` and waits for the mount.
  void mount(const std::string& mode) {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string base = cluster_->dir() + "/../" + info->name();
    mnt_ = base + "-mnt";
    std::filesystem::create_directories(mnt_);
    port_ = free_port_below_ephemeral();
    ASSERT_GT(port_, 0);
    std::string options = "uring=" + mode + ",metrics=127.0.0.1:" + std::to_string(port_);
    daemon_ = Child({MICA_FUSE_BINARY, "--mgmtd", cluster_->mgmtd(), "--token-file",
                     cluster_->token_file(), mnt_, "-o", options},
                    base + "-fuse.out", base + "-fuse.err");
    auto until = std::chrono::steady_clock::now() + kMountTimeout;
    struct statfs fs {};
    while (!(::statfs(mnt_.c_str(), &fs) == 0 && fs.f_type == kFuseSuperMagic)) {
      ASSERT_TRUE(daemon_.alive()) << "mica-fuse exited: " << daemon_.err();
      ASSERT_LT(std::chrono::steady_clock::now(), until) << "no mount: " << daemon_.err();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    mounted_ = true;
  }

  uint64_t ring_requests() {
    return metric_sum(http_get(port_, "/metrics"), "mica_fuse_uring_requests_total", "");
  }
  uint64_t requests_of(const std::string& op) {
    return metric_sum(http_get(port_, "/metrics"), "mica_fuse_requests_total", "op=\"" + op + "\"");
  }
  uint64_t classic_requests() {
    return metric_sum(http_get(port_, "/metrics"), "mica_fuse_requests_total", "path=\"classic\"");
  }

  // Creates, writes, reads back and stats files from kThreads threads, lists the
  // directories; the number of FUSE requests that took at least.
  uint64_t file_and_metadata_ops() {
    std::atomic<uint64_t> ops{0}, bad{0};
    std::mutex mutex;
    std::string first_failure;
    auto fail = [&](const std::string& what) {
      int error = errno;
      if (bad.fetch_add(1) == 0) {
        std::lock_guard lock(mutex);
        first_failure = what + ": " + std::strerror(error);
      }
    };
    // A folder of this test's own: the suite's tests share one cluster.
    std::string base = mnt_ + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    if (::mkdir(base.c_str(), 0755) != 0) fail("mkdir " + base);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::string dir = base + "/d" + std::to_string(t);
        if (::mkdir(dir.c_str(), 0755) != 0) fail("mkdir " + dir);
        std::vector<char> data(kFileBytes, char('a' + t)), back(kFileBytes);
        for (int i = 0; i < kFilesPerThread; ++i) {
          std::string path = dir + "/f" + std::to_string(i);
          int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
          if (fd < 0) {
            fail("create " + path);
            continue;
          }
          bool written = ::pwrite(fd, data.data(), data.size(), 0) == ssize_t(kFileBytes);
          if (!written) fail("pwrite " + path);
          if (written && ::fsync(fd) != 0) fail("fsync " + path);
          if (::close(fd) != 0) fail("close " + path);
          fd = ::open(path.c_str(), O_RDONLY | O_DIRECT);
          if (fd < 0) {
            fail("open O_DIRECT " + path);
          } else {
            ssize_t got = ::pread(fd, back.data(), back.size(), 0);
            if (got != ssize_t(kFileBytes)) fail("pread " + path + " got " + std::to_string(got));
            else if (back != data) fail("pread " + path + " answered other bytes");
            ::close(fd);
          }
          struct stat st;
          if (::stat(path.c_str(), &st) != 0) fail("stat " + path);
          else if (st.st_size != off_t(kFileBytes))
            fail("stat " + path + " size " + std::to_string(st.st_size));
          ops += 4;  // create, write, open, read (flush, fsync, release, lookups on top)
        }
        DIR* listing = ::opendir(dir.c_str());
        int entries = 0;
        if (listing != nullptr) {
          while (dirent* e = ::readdir(listing)) entries += e->d_name[0] != '.';
          ::closedir(listing);
        }
        if (entries != kFilesPerThread) fail("readdir " + dir + ": " + std::to_string(entries));
        ops += 2;  // mkdir, opendir
      });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(bad.load(), 0u) << "first failure: " << first_failure << "\nmica-fuse:\n"
                              << daemon_.err();
    return ops.load();
  }

  void unmount_and_stop() {
    ASSERT_EQ(::umount2(mnt_.c_str(), 0), 0) << std::strerror(errno);
    mounted_ = false;
    EXPECT_EQ(daemon_.stop(SIGTERM), 0) << daemon_.err();
  }

  inline static ClientCluster* cluster_ = nullptr;
  std::string mnt_;
  int port_ = 0;
  bool mounted_ = false;
  Child daemon_;
};

TEST_F(UringMountTest, RequestsArriveOnTheRingWithUringOn) {
  mount("on");
  ASSERT_FALSE(HasFatalFailure());
  uint64_t before = ring_requests();
  uint64_t ops = file_and_metadata_ops();
  uint64_t after = ring_requests();
  EXPECT_GE(after - before, ops) << "requests did not arrive on the ring";
  unmount_and_stop();
}

TEST_F(UringMountTest, NothingArrivesOnTheRingWithUringOff) {
  mount("off");
  ASSERT_FALSE(HasFatalFailure());
  uint64_t ops = file_and_metadata_ops();
  EXPECT_EQ(ring_requests(), 0u);
  EXPECT_GE(classic_requests(), ops);  // the page is read and the requests counted
  unmount_and_stop();
}

// (Here for the metrics port.) A read-only descriptor's close(2) sends no FLUSH (the open
// answered FOPEN_NOFLUSH); a writable one's still does, and its bytes are there.
TEST_F(UringMountTest, OnlyAWritableDescriptorsCloseSendsAFlush) {
  mount("auto");
  ASSERT_FALSE(HasFatalFailure());
  std::string path =
      mnt_ + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  uint64_t flushes = requests_of("flush");
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  EXPECT_EQ(::write(fd, "abc", 3), 3);
  EXPECT_EQ(::close(fd), 0);
  EXPECT_EQ(requests_of("flush"), flushes + 1);
  constexpr int kReads = 5;
  for (int i = 0; i < kReads; ++i) {
    fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    char back[8] = {};
    EXPECT_EQ(::read(fd, back, sizeof back), 3);
    EXPECT_EQ(std::string(back), "abc");
    EXPECT_EQ(::close(fd), 0);
  }
  EXPECT_EQ(requests_of("flush"), flushes + 1) << "a read-only close sent a FLUSH";
  fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  EXPECT_EQ(::close(fd), 0);
  EXPECT_EQ(requests_of("flush"), flushes + 2);
  unmount_and_stop();
}

}  // namespace
}  // namespace mica::testing

#endif  // MICA_FUSE_BINARY
