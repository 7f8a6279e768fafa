// The simulated disk's harsher faults: what a power loss keeps (seeded subsets of unsynced
// writes, 4 KiB tears, names only after a directory sync), latency spikes, EIO on byte
// ranges and silent bit flips. Workloads use the public File API on a simulated host; the
// sweeps run many seeds (MICA_SIM_SEEDS scales them; each takes well under a second in a
// Debug build). A failing test prints its seed; MICA_SIM_SEED=N replays one-seed tests.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <bit>
#include <chrono>
#include <cstdlib>
#include <string>

#include "async/crc32c.h"
#include "async/file.h"
#include "async/sim/world.h"

namespace mica {
namespace {

using namespace mica::sim;
using namespace std::chrono_literals;

constexpr uint64_t kDefaultSeed = 20261201;
constexpr uint64_t kBlock = 4096;

uint64_t sweep_seeds(uint64_t default_count) {
  const char* text = std::getenv("MICA_SIM_SEEDS");
  if (text == nullptr || *text == '\0') return default_count;
  return std::strtoull(text, nullptr, 0);
}

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

enum class Sync { kNone, kFsync, kDsync };

Task<Status> write_at(std::string path, std::string data, uint64_t offset, Sync sync) {
  Task<Result<File>> opening = File::open(path, O_RDWR | O_CREAT);
  CO_TRY_ASSIGN(File file, co_await std::move(opening));
  IoOptions options{.rw_flags = sync == Sync::kDsync ? RWF_DSYNC : 0};
  Task<Status> writing = file.write_full(bytes_of(data), offset, options);
  CO_TRY(co_await std::move(writing));
  if (sync == Sync::kFsync) CO_TRY(co_await file.fsync());
  CO_TRY(co_await file.close());
  co_return Status();
}

Task<Result<std::string>> read_all(std::string path) {
  Task<Result<File>> opening = File::open(path, O_RDONLY);
  CO_TRY_ASSIGN(File file, co_await std::move(opening));
  std::string buffer(1 << 20, '\0');
  std::span<std::byte> span = std::as_writable_bytes(std::span(buffer.data(), buffer.size()));
  Task<Result<size_t>> reading = file.read_full(span, 0);
  CO_TRY_ASSIGN(size_t n, co_await std::move(reading));
  CO_TRY(co_await file.close());
  buffer.resize(n);
  co_return buffer;
}

Task<Result<std::string>> read_range(std::string path, uint64_t offset, uint64_t length) {
  Task<Result<File>> opening = File::open(path, O_RDONLY);
  CO_TRY_ASSIGN(File file, co_await std::move(opening));
  std::string buffer(length, '\0');
  std::span<std::byte> span = std::as_writable_bytes(std::span(buffer.data(), buffer.size()));
  Result<size_t> n = co_await file.read(span, offset);
  CO_TRY(co_await file.close());
  if (!n.ok()) co_return n.status();
  buffer.resize(*n);
  co_return buffer;
}

// A file of `size` bytes of `fill`, synced, and its name synced: it survives any crash.
Task<Status> durable_file(std::string dir, std::string name, char fill, uint64_t size) {
  Task<Status> writing = write_at(dir + "/" + name, std::string(size, fill), 0, Sync::kFsync);
  CO_TRY(co_await std::move(writing));
  Task<Status> syncing = sync_directory(dir);
  co_return co_await std::move(syncing);
}

struct World {
  explicit World(uint64_t seed, SimConfig config = {}) : world(seed, config) {
    host = &world.add_host("disk");
    host->disk().make_durable_directories("/d");
  }
  Status run(Task<Status> task) { return world.run(*host, std::move(task)); }
  void power_loss() {
    world.crash(*host);
    world.restart(*host);
  }
  std::string contents(const std::string& path) {
    Result<std::string> back = world.run(*host, read_all(path));
    if (back.ok()) return *back;
    ADD_FAILURE() << path << ": " << back.status();
    return "<unreadable>";
  }
  bool exists(const std::string& path) { return host->disk().find(path) != nullptr; }
  SimWorld world;
  SimHost* host = nullptr;
};

class SimDiskTest : public ::testing::Test {
 protected:
  void SetUp() override { frames_before_ = live_frames(); }
  void TearDown() override {
    EXPECT_EQ(live_frames(), frames_before_) << "coroutine frames leaked";
    if (HasFailure())
      std::printf("simulation seed=%llu (replay: MICA_SIM_SEED=%llu)\n",
                  static_cast<unsigned long long>(seed_), static_cast<unsigned long long>(seed_));
  }
  const uint64_t seed_ = sim_seed(kDefaultSeed);
  int64_t frames_before_ = 0;
};

// ---- power loss: contents ----

TEST_F(SimDiskTest, CrashKeepsASeededSubsetOfUnsyncedWrites) {
  constexpr int kWrites = 8;
  int kept = 0, lost = 0, mixed_crashes = 0;
  for (uint64_t seed = 1; seed <= sweep_seeds(200); ++seed) {
    World w(seed);
    ASSERT_TRUE(w.run(durable_file("/d", "f", '.', kWrites * kBlock)).ok());
    for (int i = 0; i < kWrites; ++i)  // one block each: a tear cannot blur the count
      ASSERT_TRUE(
          w.run(write_at("/d/f", std::string(kBlock, 'a' + i), i * kBlock, Sync::kNone)).ok());
    w.power_loss();
    std::string back = w.contents("/d/f");
    ASSERT_EQ(back.size(), kWrites * kBlock) << "seed " << seed;
    int kept_here = 0;
    for (int i = 0; i < kWrites; ++i) {
      std::string block = back.substr(i * kBlock, kBlock);
      bool new_data = block == std::string(kBlock, 'a' + i);
      ASSERT_TRUE(new_data || block == std::string(kBlock, '.')) << "seed " << seed;
      kept_here += new_data;
    }
    kept += kept_here;
    lost += kWrites - kept_here;
    mixed_crashes += kept_here > 0 && kept_here < kWrites;
  }
  std::printf("unsynced writes over all seeds: %d kept, %d lost; %d crashes kept some\n", kept,
              lost, mixed_crashes);
  EXPECT_GT(kept, 0);
  EXPECT_GT(lost, 0);
  EXPECT_GT(mixed_crashes, 0) << "every crash kept all or nothing";
}

// The new bytes of one torn write form one run that starts at the write's start or at a
// 4 KiB boundary and ends at its end or at a boundary.
TEST_F(SimDiskTest, TornWritesHappenOnlyAtFourKiBBoundaries) {
  SimConfig config;
  config.disk.crash_keep_unsynced_probability = 1;
  config.disk.crash_tear_probability = 1;
  constexpr uint64_t kStart = 1000, kLength = 5 * kBlock;  // spans five boundaries
  int heads = 0, tails = 0;
  for (uint64_t seed = 1; seed <= sweep_seeds(100); ++seed) {
    World w(seed, config);
    ASSERT_TRUE(w.run(durable_file("/d", "f", '.', 8 * kBlock)).ok());
    ASSERT_TRUE(w.run(write_at("/d/f", std::string(kLength, 'T'), kStart, Sync::kNone)).ok());
    w.power_loss();
    std::string back = w.contents("/d/f");
    uint64_t first = back.find('T'), last = back.rfind('T');
    ASSERT_NE(first, std::string::npos) << "seed " << seed;
    uint64_t end = last + 1;
    ASSERT_EQ(back.substr(first, end - first), std::string(end - first, 'T')) << "seed " << seed;
    bool head = first == kStart && end < kStart + kLength && end % kBlock == 0;
    bool tail = end == kStart + kLength && first > kStart && first % kBlock == 0;
    EXPECT_TRUE(head || tail) << "seed " << seed << ": new bytes at [" << first << ", " << end
                              << ")";
    heads += head;
    tails += tail;
  }
  EXPECT_GT(heads, 0);
  EXPECT_GT(tails, 0);
}

TEST_F(SimDiskTest, SyncedDataIsNeverLost) {
  int lost_unsynced = 0;
  for (uint64_t seed = 1; seed <= sweep_seeds(200); ++seed) {
    World w(seed);
    ASSERT_TRUE(w.run(durable_file("/d", "f", '.', 16 * kBlock)).ok());
    // Unsynced writes before and after the synced ones, over the other blocks only; the
    // fsync comes first so that it does not cover the RWF_DSYNC write.
    ASSERT_TRUE(
        w.run(write_at("/d/f", std::string(2 * kBlock, 'F'), 8 * kBlock, Sync::kFsync)).ok());
    ASSERT_TRUE(w.run(write_at("/d/f", std::string(3 * kBlock, 'u'), 0, Sync::kNone)).ok());
    ASSERT_TRUE(
        w.run(write_at("/d/f", std::string(2 * kBlock, 'D'), 4 * kBlock, Sync::kDsync)).ok());
    ASSERT_TRUE(w.run(write_at("/d/f", std::string(kBlock, 'v'), 7 * kBlock, Sync::kNone)).ok());
    ASSERT_TRUE(
        w.run(write_at("/d/f", std::string(3 * kBlock, 'w'), 12 * kBlock, Sync::kNone)).ok());
    w.power_loss();
    std::string back = w.contents("/d/f");
    ASSERT_EQ(back.substr(4 * kBlock, 2 * kBlock), std::string(2 * kBlock, 'D')) << "seed " << seed;
    ASSERT_EQ(back.substr(8 * kBlock, 2 * kBlock), std::string(2 * kBlock, 'F')) << "seed " << seed;
    lost_unsynced += back.substr(12 * kBlock, 3 * kBlock) != std::string(3 * kBlock, 'w');
  }
  EXPECT_GT(lost_unsynced, 0) << "no crash lost anything: the check proves nothing";
}

TEST_F(SimDiskTest, DsyncWriteAfterAnUnsyncedOneOfTheSameRangeAlwaysWins) {
  for (uint64_t seed = 1; seed <= sweep_seeds(50); ++seed) {
    World w(seed);
    ASSERT_TRUE(w.run(durable_file("/d", "f", '.', 2 * kBlock)).ok());
    ASSERT_TRUE(w.run(write_at("/d/f", std::string(2 * kBlock, 'u'), 0, Sync::kNone)).ok());
    ASSERT_TRUE(w.run(write_at("/d/f", std::string(kBlock, 'D'), 0, Sync::kDsync)).ok());
    w.power_loss();
    ASSERT_EQ(w.contents("/d/f").substr(0, kBlock), std::string(kBlock, 'D')) << "seed " << seed;
  }
}

Task<void> ignore_status(Task<Status> task) {
  Status s = co_await std::move(task);
  (void)s;  // cancelled by the crash
}

Task<Status> write_then_crash_marker(std::string path, bool* started) {
  *started = true;
  Task<Status> writing = write_at(path, std::string(2 * kBlock, 'i'), 0, Sync::kNone);
  co_return co_await std::move(writing);
}

TEST_F(SimDiskTest, AWriteInFlightAtTheCrashSometimesLands) {
  SimConfig config;
  config.disk.latency_min = config.disk.latency_max = 1ms;
  int landed = 0, vanished = 0;
  for (uint64_t seed = 1; seed <= sweep_seeds(100); ++seed) {
    World w(seed, config);
    ASSERT_TRUE(w.run(durable_file("/d", "f", '.', 2 * kBlock)).ok());
    bool started = false;
    w.world.spawn(*w.host, ignore_status(write_then_crash_marker("/d/f", &started)));
    w.world.run_for(1500us);  // the open is done, the write is in flight
    ASSERT_TRUE(started);
    w.power_loss();
    std::string back = w.contents("/d/f");
    landed += back.find('i') != std::string::npos;
    vanished += back == std::string(2 * kBlock, '.');
  }
  EXPECT_GT(landed, 0);
  EXPECT_GT(vanished, 0);
}

TEST_F(SimDiskTest, TheSameSeedLosesTheSameWrites) {
  std::string runs[2];
  for (std::string& result : runs) {
    World w(seed_);
    ASSERT_TRUE(w.run(durable_file("/d", "f", '.', 8 * kBlock)).ok());
    for (int i = 0; i < 8; ++i)
      ASSERT_TRUE(w.run(write_at("/d/f", std::string(3000, 'a' + i), i * 3000, Sync::kNone)).ok());
    w.power_loss();
    result = w.contents("/d/f");
  }
  EXPECT_EQ(runs[0], runs[1]);
}

// ---- power loss: names ----

Task<Status> create_file(std::string path, bool sync_dir) {
  Task<Status> writing = write_at(path, "content", 0, Sync::kFsync);
  CO_TRY(co_await std::move(writing));
  if (!sync_dir) co_return Status();
  std::string dir = path.substr(0, path.rfind('/'));
  Task<Status> syncing = sync_directory(dir);
  co_return co_await std::move(syncing);
}

TEST_F(SimDiskTest, ACreatedFileWithoutADirectorySyncVanishesOnCrash) {
  World w(seed_);
  ASSERT_TRUE(w.run(create_file("/d/f", false)).ok());
  EXPECT_TRUE(w.exists("/d/f"));
  w.power_loss();
  EXPECT_FALSE(w.exists("/d/f")) << "the file's own fsync made its name durable";
}

TEST_F(SimDiskTest, ACreatedFileWithADirectorySyncSurvivesTheCrash) {
  World w(seed_);
  ASSERT_TRUE(w.run(create_file("/d/f", true)).ok());
  w.power_loss();
  ASSERT_TRUE(w.exists("/d/f"));
  EXPECT_EQ(w.contents("/d/f"), "content");
}

Task<Status> replace_by_rename(bool sync_dir) {
  Task<Status> writing = write_at("/d/tmp", "new", 0, Sync::kFsync);
  CO_TRY(co_await std::move(writing));
  Task<Status> renaming = rename_path("/d/tmp", "/d/f");
  CO_TRY(co_await std::move(renaming));
  if (!sync_dir) co_return Status();
  Task<Status> syncing = sync_directory("/d");
  co_return co_await std::move(syncing);
}

TEST_F(SimDiskTest, ARenameWithoutADirectorySyncIsUndoneByACrash) {
  World w(seed_);
  ASSERT_TRUE(w.run(durable_file("/d", "f", 'o', 3)).ok());
  ASSERT_TRUE(w.run(replace_by_rename(false)).ok());
  EXPECT_EQ(w.contents("/d/f"), "new");
  w.power_loss();
  EXPECT_EQ(w.contents("/d/f"), "ooo");
  EXPECT_FALSE(w.exists("/d/tmp")) << "tmp was never a durable name";
}

TEST_F(SimDiskTest, ARenameWithADirectorySyncSurvivesTheCrash) {
  World w(seed_);
  ASSERT_TRUE(w.run(durable_file("/d", "f", 'o', 3)).ok());
  ASSERT_TRUE(w.run(replace_by_rename(true)).ok());
  w.power_loss();
  EXPECT_EQ(w.contents("/d/f"), "new");
  EXPECT_FALSE(w.exists("/d/tmp"));
}

Task<Status> move_across(bool sync_from, bool sync_to) {
  Task<Status> renaming = rename_path("/d/a/f", "/d/b/f");
  CO_TRY(co_await std::move(renaming));
  if (sync_from) {
    Task<Status> syncing = sync_directory("/d/a");
    CO_TRY(co_await std::move(syncing));
  }
  if (!sync_to) co_return Status();
  Task<Status> syncing = sync_directory("/d/b");
  co_return co_await std::move(syncing);
}

TEST_F(SimDiskTest, ARenameAcrossDirectoriesKeepsWhatEachSyncedDirectorySays) {
  struct Case {
    bool sync_from, sync_to, in_a, in_b;
  };
  for (Case c : {Case{false, false, true, false}, Case{true, false, false, false},
                 Case{false, true, true, true}, Case{true, true, false, true}}) {
    World w(seed_);
    w.host->disk().make_durable_directories("/d/a");
    w.host->disk().make_durable_directories("/d/b");
    ASSERT_TRUE(w.run(durable_file("/d/a", "f", 'x', 1)).ok());
    ASSERT_TRUE(w.run(move_across(c.sync_from, c.sync_to)).ok());
    w.power_loss();
    EXPECT_EQ(w.exists("/d/a/f"), c.in_a) << c.sync_from << c.sync_to;
    EXPECT_EQ(w.exists("/d/b/f"), c.in_b) << c.sync_from << c.sync_to;
  }
}

Task<Status> unlink_file(bool sync_dir) {
  Task<Status> removing = remove_file("/d/f");
  CO_TRY(co_await std::move(removing));
  if (!sync_dir) co_return Status();
  Task<Status> syncing = sync_directory("/d");
  co_return co_await std::move(syncing);
}

TEST_F(SimDiskTest, AnUnlinkIsDurableOnlyAfterADirectorySync) {
  for (bool sync_dir : {false, true}) {
    World w(seed_);
    ASSERT_TRUE(w.run(durable_file("/d", "f", 'x', 5)).ok());
    ASSERT_TRUE(w.run(unlink_file(sync_dir)).ok());
    EXPECT_FALSE(w.exists("/d/f"));
    w.power_loss();
    EXPECT_EQ(w.exists("/d/f"), !sync_dir);
    if (!sync_dir) {
      EXPECT_EQ(w.contents("/d/f"), "xxxxx");
    }
  }
}

Task<Status> make_dir_with_file(bool sync_parent) {
  Task<Status> making = make_directory("/d/sub");
  CO_TRY(co_await std::move(making));
  Task<Status> creating = create_file("/d/sub/f", true);  // synced inside sub/
  CO_TRY(co_await std::move(creating));
  if (!sync_parent) co_return Status();
  Task<Status> syncing = sync_directory("/d");
  co_return co_await std::move(syncing);
}

TEST_F(SimDiskTest, ADirectoryAndItsFilesNeedTheParentSynced) {
  for (bool sync_parent : {false, true}) {
    World w(seed_);
    ASSERT_TRUE(w.run(make_dir_with_file(sync_parent)).ok());
    w.power_loss();
    EXPECT_EQ(w.exists("/d/sub/f"), sync_parent);
  }
}

// ---- faults on the live disk ----

TEST_F(SimDiskTest, AnEioRangeFailsOnlyTheReadsAndWritesThatMeetIt) {
  World w(seed_);
  ASSERT_TRUE(w.run(durable_file("/d", "f", '.', 4 * kBlock)).ok());
  ASSERT_TRUE(w.run(durable_file("/d", "g", '.', 4 * kBlock)).ok());
  w.host->disk_config().eio_ranges.push_back(SimDiskRange{"d/./f", kBlock, kBlock});
  auto code = [&](Result<std::string> r) { return r.status().code(); };
  EXPECT_EQ(code(w.world.run(*w.host, read_range("/d/f", 0, kBlock))), StatusCode::kOk);
  EXPECT_EQ(code(w.world.run(*w.host, read_range("/d/f", kBlock, 10))), StatusCode::kIoError);
  EXPECT_EQ(code(w.world.run(*w.host, read_range("/d/f", kBlock - 1, 2))), StatusCode::kIoError);
  EXPECT_EQ(code(w.world.run(*w.host, read_range("/d/f", 2 * kBlock, kBlock))), StatusCode::kOk);
  EXPECT_EQ(code(w.world.run(*w.host, read_range("/d/g", kBlock, kBlock))), StatusCode::kOk);
  EXPECT_EQ(w.run(write_at("/d/f", "w", 2 * kBlock - 1, Sync::kNone)).code(), StatusCode::kIoError);
  EXPECT_TRUE(w.run(write_at("/d/f", "w", 2 * kBlock, Sync::kNone)).ok());
  EXPECT_EQ(w.host->disk().find("/d/f")->current[2 * kBlock - 1], '.') << "a failed write wrote";
}

TEST_F(SimDiskTest, ABitFlipIsSeenByACrcCheckAndLeavesTheStoredDataIntact) {
  World w(seed_);
  std::string data(2 * kBlock, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = char(i * 7);
  ASSERT_TRUE(w.run(write_at("/d/f", data, 0, Sync::kFsync)).ok());
  w.host->disk_config().bit_flip_ranges.push_back(SimDiskRange{"/d/f", kBlock, kBlock});
  Result<std::string> clean = w.world.run(*w.host, read_range("/d/f", 0, kBlock));
  ASSERT_TRUE(clean.ok());
  EXPECT_EQ(crc32c(bytes_of(*clean)), crc32c(bytes_of(data.substr(0, kBlock))));
  Result<std::string> read = w.world.run(*w.host, read_range("/d/f", kBlock, kBlock));
  ASSERT_TRUE(read.ok());
  std::string expected = data.substr(kBlock);
  EXPECT_NE(crc32c(bytes_of(*read)), crc32c(bytes_of(expected)));
  int flipped = 0;
  for (size_t i = 0; i < expected.size(); ++i)
    flipped += std::popcount(uint8_t((*read)[i] ^ expected[i]));
  EXPECT_EQ(flipped, 1);
  EXPECT_EQ(w.host->disk().find("/d/f")->current, data);
}

Task<Status> timed_reads(int count, std::vector<Duration>* took) {
  for (int i = 0; i < count; ++i) {
    TimePoint start = Executor::current()->now();
    Task<Result<std::string>> reading = read_range("/d/f", 0, 1);
    CO_TRY(co_await std::move(reading));
    took->push_back(Executor::current()->now() - start);
  }
  co_return Status();
}

TEST_F(SimDiskTest, LatencySpikesStretchSomeOpsAndNotOthers) {
  SimConfig config;
  config.disk.latency_min = config.disk.latency_max = 10us;
  config.disk.latency_spike_probability = 0.3;
  config.disk.latency_spike_min = config.disk.latency_spike_max = 50ms;
  World w(seed_, config);
  ASSERT_TRUE(w.run(durable_file("/d", "f", '.', 1)).ok());
  std::vector<Duration> took;  // each: open + read (close is immediate)
  ASSERT_TRUE(w.run(timed_reads(40, &took)).ok());
  int slow = 0, fast = 0;
  for (Duration d : took) {
    slow += d >= 50ms;
    fast += d == 20us;
  }
  EXPECT_GT(slow, 0);
  EXPECT_GT(fast, 0);
}

}  // namespace
}  // namespace mica
