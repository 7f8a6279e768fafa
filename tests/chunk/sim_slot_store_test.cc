// The slot store on a simulated host: it makes no file-system call of its own, so it runs
// unchanged on the simulator's disk, and what it writes survives the simulator's power
// losses (which keep only synced data and a seeded subset of the rest). Each sweep runs
// 100 seeds in a few milliseconds.
#include <gtest/gtest.h>

#include <cstring>

#include "async/sim/world.h"
#include "chunk/slot_store.h"

namespace mica::chunk {
namespace {

using namespace mica::sim;

constexpr const char* kDir = "/target/data";
constexpr uint32_t kChunkBytes = 4096;  // smaller than its 64 KiB slot

ChunkEngineConfig small_config() {
  ChunkEngineConfig config;
  config.growth_step_bytes = 4 * size_class_bytes(0);  // four slots per growth
  config.reserve_bytes = 1 << 20;
  return config;
}

AlignedBuffer pattern(uint32_t seed) {
  AlignedBuffer b(kChunkBytes);
  for (uint32_t i = 0; i < kChunkBytes; ++i) b.data()[i] = std::byte((i * 13 + seed) & 0xff);
  return b;
}

// Opens the store, writes one chunk into a new slot, closes. The placement goes to *out.
Task<Status> write_one(const ChunkEngineConfig* config, Placement* out) {
  auto opening = SlotStore::open(kDir, config);
  CO_TRY_ASSIGN(std::unique_ptr<SlotStore> store, co_await std::move(opening));
  auto allocating = store->allocate(kChunkBytes);
  CO_TRY_ASSIGN(Placement p, co_await std::move(allocating));
  AlignedBuffer data = pattern(p.slot);
  auto writing = store->write(p, data.span());
  CO_TRY(co_await std::move(writing));
  SpaceStats stats;
  store->fill_stats(&stats);
  if (stats.disk_total_bytes != SimDiskConfig{}.capacity_bytes)
    co_return Status(StatusCode::kInternal, "statvfs did not reach the simulated disk");
  *out = p;
  auto closing = store->close();
  co_return co_await std::move(closing);
}

// Reopens the store and checks that the slot is inside its file and holds the chunk.
Task<Status> read_back(const ChunkEngineConfig* config, Placement p) {
  auto opening = SlotStore::open(kDir, config);
  CO_TRY_ASSIGN(std::unique_ptr<SlotStore> store, co_await std::move(opening));
  Status result;
  if (!store->mark_referenced(p)) {
    result = Status(StatusCode::kCorruption, fmt::format("slot {} lies outside its file ({} slots)",
                                                         p.slot, store->slot_count(p.size_class)));
  } else {
    AlignedBuffer back(kChunkBytes);
    auto reading = store->read(p, 0, back.span());
    result = co_await std::move(reading);
    AlignedBuffer expected = pattern(p.slot);
    if (result.ok() && std::memcmp(back.data(), expected.data(), kChunkBytes) != 0)
      result = Status(StatusCode::kCorruption, "the slot lost its chunk");
  }
  auto closing = store->close();
  Status closed = co_await std::move(closing);
  co_return result.ok() ? closed : result;
}

TEST(SimSlotStore, AWrittenSlotSurvivesAPowerLossAfterGrowth) {
  ChunkEngineConfig config = small_config();
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    SimWorld world(seed);
    SimHost& host = world.add_host("target");
    host.disk().make_durable_directories(kDir);
    Placement p;
    Status written = world.run(host, write_one(&config, &p));
    ASSERT_TRUE(written.ok()) << "seed " << seed << ": " << written;
    world.crash(host);
    world.restart(host);
    Status back = world.run(host, read_back(&config, p));
    ASSERT_TRUE(back.ok()) << "seed " << seed << ": " << back << " (replay: MICA_SIM_SEED=" << seed
                           << ")";
  }
}

TEST(SimSlotStore, ClassFilesOutliveACrashRightAfterOpen) {
  // The store syncs its directory at open: the class files outlive a crash right after.
  ChunkEngineConfig config = small_config();
  SimWorld world(1);
  SimHost& host = world.add_host("target");
  host.disk().make_durable_directories(kDir);
  Placement p;
  ASSERT_TRUE(world.run(host, write_one(&config, &p)).ok());
  world.crash(host);
  world.restart(host);
  EXPECT_NE(host.disk().find(std::string(kDir) + "/64KiB.slots"), nullptr);
}

}  // namespace
}  // namespace mica::chunk
