// Full disks for real: a size-limited tmpfs that the test mounts in its own directory and
// fills (ENOSPC from fallocate, ENOSPC from a data write) and an LMDB map that is too small
// (MDB_MAP_FULL). Each gives kNoSpace and changes nothing: the chunks read back as before and
// fsck is clean. The tmpfs cases run with O_DIRECT and with the buffered path
// (ChunkEngineConfig::buffered_io); they need root (mount) and skip with a message without it.
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "async/crc32c.h"
#include "tests/chunk/test_util.h"

namespace mica::chunk {
namespace {

using namespace mica::chunk::testing;
constexpr ChunkId kOld{5, 0};
constexpr ChunkId kNew{5, 1};
constexpr uint64_t kTmpfsBytes = 4 << 20;

// A tmpfs of `bytes` mounted at dir (created) while this lives.
class SmallTmpfs {
 public:
  SmallTmpfs(std::string dir, uint64_t bytes) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    std::string options = fmt::format("size={},mode=0755", bytes);
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, options.c_str()) == 0)
      mounted_ = true;
    else
      error_ = std::strerror(errno);
  }
  SmallTmpfs(const SmallTmpfs&) = delete;
  SmallTmpfs& operator=(const SmallTmpfs&) = delete;
  ~SmallTmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

// Writes a filler file until the file system says ENOSPC; false if it never does.
bool fill_up(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return false;
  std::vector<char> block(4096, 'f');
  bool full = false;
  for (;;) {
    ssize_t n = ::write(fd, block.data(), block.size());
    if (n < 0) {
      full = errno == ENOSPC;
      break;
    }
  }
  ::fsync(fd);
  ::close(fd);
  return full;
}

ChunkEngineConfig config_for(bool buffered) {
  ChunkEngineConfig config = test_config();  // no reserve: the file system says no itself
  config.buffered_io = buffered;
  return config;
}

struct Target {
  std::vector<std::byte> old_content = pattern(64 << 10, 1);
  std::vector<std::byte> new_content;
};

// kOld must still read as before, kNew must not exist, fsck must be clean.
Task<void> expect_nothing_changed(ChunkEngine* engine, const Target* t, uint64_t used_bytes) {
  auto reading = read_all(engine, kOld);
  Result<std::vector<std::byte>> content = co_await std::move(reading);
  EXPECT_TRUE(content.ok() && *content == t->old_content) << content.status();
  EXPECT_EQ(engine->stat(kNew).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(engine->space().used_slot_bytes, used_bytes);
  auto checking = engine->fsck();
  Result<FsckReport> report = co_await std::move(checking);
  EXPECT_TRUE(report.ok() && report->ok()) << report->to_string();
}

// With the file system full, writes kNew (t->new_content): kNoSpace, nothing changes; once
// the filler is gone, the same write succeeds (so it was space that was missing).
// failing_call names the system call whose ENOSPC the engine must have met.
Task<void> write_on_full_disk(std::string dir, std::string filler, bool buffered, Target* t,
                              std::string failing_call) {
  auto opening = open_engine(dir, config_for(buffered));
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  EXPECT_EQ(engine->direct_io(), !buffered);
  uint64_t used = engine->space().used_slot_bytes;
  EXPECT_TRUE(fill_up(filler)) << "the tmpfs never filled up";
  uint32_t crc = crc32c(bytes_of(t->new_content));
  auto writing = engine->write_and_commit(kNew, 0, bytes_of(t->new_content), crc, {1, 1});
  Result<ChunkInfo> refused = co_await std::move(writing);
  EXPECT_EQ(refused.status().code(), StatusCode::kNoSpace) << refused.status();
  EXPECT_NE(refused.status().message().find(failing_call + ":"), std::string::npos)
      << refused.status();
  auto checking = expect_nothing_changed(engine.get(), t, used);
  co_await std::move(checking);
  std::filesystem::remove(filler);
  auto again = engine->write_and_commit(kNew, 0, bytes_of(t->new_content), crc, {1, 1});
  Result<ChunkInfo> stored = co_await std::move(again);
  EXPECT_TRUE(stored.ok()) << stored.status();
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}

Task<void> create_old(std::string dir, bool buffered, const Target* t) {
  auto opening = open_engine(dir, config_for(buffered));
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto writing = write_committed(engine.get(), kOld, 0, t->old_content, 1);
  Status s = co_await std::move(writing);
  EXPECT_TRUE(s.ok()) << s;
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}

class ChunkFullDisk : public ::testing::TestWithParam<bool> {
 protected:
  bool buffered() const { return GetParam(); }
};

TEST_P(ChunkFullDisk, FallocateOnAFullFileSystemIsNoSpaceAndChangesNothing) {
  TempDir dir;
  SmallTmpfs fs(dir.path() + "/fs", kTmpfsBytes);
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs (needs root): " << fs.error();
  std::string target = fs.dir() + "/target";
  Target t;
  run_on_executor(create_old(target, buffered(), &t));
  // 128 KiB lives in class 1, which has no slot yet: the file must grow, and cannot.
  t.new_content = pattern(128 << 10, 2);
  run_on_executor(write_on_full_disk(target, fs.dir() + "/filler", buffered(), &t, "fallocate"));
}

TEST_P(ChunkFullDisk, ADataWriteOnAFullFileSystemIsNoSpaceAndChangesNothing) {
  TempDir dir;
  SmallTmpfs fs(dir.path() + "/fs", kTmpfsBytes);
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs (needs root): " << fs.error();
  std::string target = fs.dir() + "/target";
  Target t;
  run_on_executor(create_old(target, buffered(), &t));
  // Give the free slots of class 0 back to the file system, as space reclaim would: the next
  // 64 KiB chunk takes a free slot (no growth) whose write must allocate, and cannot.
  {
    int fd = ::open((target + "/data/64KiB.slots").c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    struct stat st;
    ASSERT_EQ(::fstat(fd, &st), 0);
    ASSERT_GT(st.st_size, 64 << 10);
    ASSERT_EQ(::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 64 << 10,
                          st.st_size - (64 << 10)),
              0)
        << std::strerror(errno);
    ::close(fd);
  }
  t.new_content = pattern(64 << 10, 3);
  run_on_executor(write_on_full_disk(target, fs.dir() + "/filler", buffered(), &t, "write"));
}

INSTANTIATE_TEST_SUITE_P(Io, ChunkFullDisk, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "buffered" : "direct";
                         });

// Fills a tiny LMDB map with small chunks until a write is kNoSpace; that chunk must not
// exist, every acknowledged one must read back, fsck must be clean.
Task<void> map_full(std::string dir) {
  ChunkEngineConfig config = test_config();
  config.lmdb_map_size_bytes = 64 << 10;
  auto opening = open_engine(dir, config);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  std::vector<std::byte> data = pattern(1000, 4);
  uint32_t crc = crc32c(bytes_of(data));
  Status refused;
  uint32_t stored = 0;
  for (; stored < 5000 && refused.ok(); ++stored) {
    auto writing = engine->write_and_commit(ChunkId{6, stored}, 0, bytes_of(data), crc, {1, 1});
    refused = (co_await std::move(writing)).status();
    if (!refused.ok()) break;
  }
  EXPECT_EQ(refused.code(), StatusCode::kNoSpace) << refused << " after " << stored << " chunks";
  EXPECT_NE(refused.message().find("MDB_MAP_FULL"), std::string::npos) << refused;
  EXPECT_GT(stored, 0u);
  EXPECT_EQ(engine->stat(ChunkId{6, stored}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(engine->space().chunks, stored);
  EXPECT_EQ(engine->space().used_slot_bytes, uint64_t{stored} * (64 << 10));
  for (uint32_t i = 0; i < stored; ++i) {
    auto reading = read_all(engine.get(), ChunkId{6, i});
    Result<std::vector<std::byte>> content = co_await std::move(reading);
    EXPECT_TRUE(content.ok() && *content == data) << "chunk " << i << ": " << content.status();
  }
  auto checking = engine->fsck();
  Result<FsckReport> report = co_await std::move(checking);
  EXPECT_TRUE(report.ok() && report->ok()) << report->to_string();
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkMetadataFull, AFullLmdbMapIsNoSpaceAndChangesNothing) {
  TempDir dir;
  run_on_executor(map_full(dir.path()));
}

}  // namespace
}  // namespace mica::chunk
