// Scenario chunk_power_loss: one simulated storage host runs the real ChunkEngine (slot files
// and the simulated kv/ store on the simulated disk) under a write workload and loses power
// at seeded moments, kCycles times; after every restart each chunk must read back byte-exact
// as its last acknowledged write left it — or as the write in flight at the crash would have
// left it, which may have become durable without being acknowledged — and fsck must be
// clean. Counters: writes acknowledged before a crash, in-flight writes really lost, and
// in-flight writes that survived. The sweep fails unless the first two are both non-zero (a
// sweep that never crashes mid-write proves nothing).
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "async/crc32c.h"
#include "async/scope.h"
#include "chunk/engine.h"
#include "tests/sim/scenario.h"

namespace mica::sim {
namespace {

using chunk::ChunkEngine;
using chunk::ChunkId;

constexpr uint32_t kWriters = 4;
constexpr uint32_t kChunksPerWriter = 2;
constexpr uint32_t kWritesPerWriterMax = 12;  // per power cycle
constexpr uint32_t kCycles = 2;               // power losses per seed
constexpr uint32_t kChunkBytes = 64 << 10;    // the smallest size class
constexpr uint32_t kWriteBytesMax = 12 << 10;
// Power fails at a uniform moment in [0, kCrashWindow) after boot: most land mid-workload.
constexpr Duration kCrashWindow = std::chrono::milliseconds(12);
constexpr const char* kTarget = "/target";

// What the test knows of one chunk: the content of its last acknowledged write, and of the
// write in flight (submitted, not acknowledged) if any.
struct ChunkModel {
  std::string acked;
  uint32_t version = 0;
  std::optional<std::string> inflight;
};

struct Run {
  SimWorld* world = nullptr;
  SimHost* host = nullptr;
  std::vector<ChunkModel> chunks = std::vector<ChunkModel>(kWriters * kChunksPerWriter);
  ScenarioResult* result = nullptr;
  uint64_t acked_before_crash = 0;
  uint64_t unacked_lost = 0;
  uint64_t unacked_survived = 0;
  bool final_boot = false;
};

ChunkId chunk_id(uint32_t index) {
  return ChunkId{1 + index / 4, index % 4};
}

chunk::ChunkEngineConfig engine_config() {
  chunk::ChunkEngineConfig c;
  c.chunk_size_max_bytes = kChunkBytes;
  c.reserve_bytes = 0;
  c.growth_step_bytes = 1 << 20;
  c.lmdb_map_size_bytes = 64 << 20;
  return c;
}

// Reads chunk index back and settles its model: the acknowledged content, or the in-flight
// one that became durable. Anything else fails the seed.
Task<void> verify_chunk(Run* run, ChunkEngine* engine, uint32_t index) {
  ChunkModel& m = run->chunks[index];
  std::vector<std::byte> out(kChunkBytes);
  auto reading = engine->read(chunk_id(index), 0, std::span(out));
  Result<size_t> got = co_await std::move(reading);
  std::string back;
  if (got.ok()) {
    back.assign(reinterpret_cast<const char*>(out.data()), *got);
  } else if (!run->host->up()) {
    co_return;  // power failed again during the check: the next boot checks this chunk
  } else if (got.status().code() != StatusCode::kNotFound) {
    run->result->fail(fmt::format("chunk {}: read after restart: {}", index, got.status()));
    co_return;
  }
  if (m.inflight && back == *m.inflight && back != m.acked) {
    m.acked = std::move(*m.inflight);
    ++m.version;
    ++run->unacked_survived;
  } else if (back == m.acked) {
    if (m.inflight) ++run->unacked_lost;
  } else {
    run->result->fail(
        fmt::format("chunk {}: {} bytes after restart match neither the last "
                    "acknowledged write ({} bytes) nor the one in flight",
                    index, back.size(), m.acked.size()));
  }
  m.inflight.reset();
}

Task<void> verify_all(Run* run, ChunkEngine* engine) {
  for (uint32_t i = 0; i < run->chunks.size() && run->host->up(); ++i) {
    auto verifying = verify_chunk(run, engine, i);
    co_await std::move(verifying);
  }
  auto checking = engine->fsck();
  Result<chunk::FsckReport> report = co_await std::move(checking);
  if (!run->host->up()) co_return;  // a power loss during fsck shows as read errors
  if (!report.ok())
    run->result->fail(fmt::format("fsck after restart: {}", report.status()));
  else if (!report->ok())
    run->result->fail(report->to_string());
}

// One writer: sequential write_and_commit calls on its own chunks until the power fails.
Task<void> writer(Run* run, ChunkEngine* engine, uint32_t w) {
  SimRandom& random = run->world->random();
  for (uint32_t i = 0; i < kWritesPerWriterMax && run->host->up(); ++i) {
    uint32_t index = w * kChunksPerWriter + uint32_t(random.below(kChunksPerWriter));
    ChunkModel& m = run->chunks[index];
    uint32_t length = 1 + uint32_t(random.below(kWriteBytesMax));
    uint32_t offset = uint32_t(random.below(kChunkBytes - length + 1));
    if (random.chance(0.3)) offset = 0;  // some whole-chunk rewrites from the start
    std::vector<std::byte> data(length);
    for (auto& b : data) b = std::byte(random.below(256));
    std::string next = m.acked;
    if (next.size() < offset + length) next.resize(offset + length, '\0');
    std::memcpy(next.data() + offset, data.data(), length);
    m.inflight = next;
    chunk::UpdateVersion version{m.version + 1, 1};
    auto writing = engine->write_and_commit(chunk_id(index), offset, std::span(data),
                                            crc32c(data.data(), data.size()), version);
    Result<chunk::ChunkInfo> done = co_await std::move(writing);
    if (!done.ok()) {
      if (run->host->up())
        run->result->fail(fmt::format("chunk {}: write while powered: {}", index, done.status()));
      co_return;  // in flight at the power loss: settled at the next boot
    }
    m.acked = std::move(*m.inflight);
    m.inflight.reset();
    m.version = version.version;
    ++run->acked_before_crash;
  }
}

Task<void> boot(Run* run) {
  auto opening = ChunkEngine::open(kTarget, engine_config());
  Result<std::unique_ptr<ChunkEngine>> engine = co_await std::move(opening);
  if (!engine.ok()) {
    if (run->host->up()) run->result->fail(fmt::format("open: {}", engine.status()));
    co_return;
  }
  auto verifying = verify_all(run, engine->get());
  co_await std::move(verifying);
  if (!run->final_boot && run->result->ok()) {
    TaskScope scope;
    for (uint32_t w = 0; w < kWriters; ++w) scope.spawn(writer(run, engine->get(), w));
    co_await scope.join();
  }
  auto closing = (*engine)->close();
  Status closed = co_await std::move(closing);
  if (!closed.ok() && run->host->up()) run->result->fail(fmt::format("close: {}", closed));
}

ScenarioResult run_chunk_power_loss(uint64_t seed, ScenarioOptions options) {
  ScenarioResult result;
  SimConfig config;
  config.trace_log_lines_max = options.trace_lines_max;
  SimWorld world(seed, config);
  Run run;
  run.world = &world;
  run.result = &result;
  SimHost::BootFn boot_fn = [&run](SimHost&) { return boot(&run); };
  SimHost& host = world.add_host("storage");
  run.host = &host;
  for (uint32_t cycle = 0; cycle <= kCycles && result.ok(); ++cycle) {
    run.final_boot = cycle == kCycles;
    if (cycle == 0)
      world.spawn(host, boot(&run));
    else
      world.restart(host, boot_fn);
    if (!run.final_boot) {
      Duration at = world.random().between(Duration::zero(), kCrashWindow);
      world.schedule(at, [&world, &host] {
        if (host.up()) world.crash(host);
      });
    }
    if (!world.run_until_idle(std::chrono::hours(1))) result.fail("the host never went idle");
    if (options.verbose)
      result.notes.push_back(fmt::format("cycle {}: {} acknowledged, {} lost, {} survived so far",
                                         cycle, run.acked_before_crash, run.unacked_lost,
                                         run.unacked_survived));
  }
  result.counters["acked_before_crash"] = run.acked_before_crash;
  result.counters["unacked_lost"] = run.unacked_lost;
  result.counters["unacked_survived"] = run.unacked_survived;
  result.capture(world);
  return result;
}

std::string check_chunk_power_loss(const ScenarioCounters& totals, uint64_t seeds) {
  auto count = [&](const char* name) {
    auto it = totals.find(name);
    return it == totals.end() ? uint64_t{0} : it->second;
  };
  if (count("acked_before_crash") == 0)
    return fmt::format("no write was acknowledged before a crash in {} seeds", seeds);
  if (count("unacked_lost") == 0)
    return fmt::format("no unacknowledged write was lost in {} seeds: no crash hit a write", seeds);
  return "";
}

}  // namespace

MICA_SIM_SCENARIO(kChunkPowerLoss,
                  {.name = "chunk_power_loss",
                   .summary = "the chunk engine on the simulated disk loses power mid-write; "
                              "every acknowledged write reads back byte-exact, fsck clean",
                   .run = run_chunk_power_loss,
                   .golden_seed = 1,
                   .golden_hash = 0x6b9a24cce3054ddb,
                   .check_sweep = check_chunk_power_loss,
                   .suite_seeds = 1000});

}  // namespace mica::sim
