// bench_chunk: Mica's side of the chunk suite (bench/run.sh chunk).
//
// One ChunkEngine on one executor (plus its LMDB writer thread) on a target directory.
// Modes, each printing one JSON object on stdout:
//   prepare        --chunks N: chunks (1, 0..N-1) of 1 MiB random bytes, committed (reused
//                  when already there).                                  {"chunks": N}
//   write_1m       depth tasks take the next chunk from a shared cursor and write a new
//                  full 1 MiB version, then commit it (copy-on-write slot written with
//                  RWF_DSYNC, two group-committed LMDB transactions); with
//                  --commit-with-write in one write_and_commit call (one LMDB record put).
//                                                                        {"mib_per_s": X}
//   read_1m        depth tasks read whole 1 MiB chunks in order, CRC-checked. {"mib_per_s"}
//   randread_4k    depth tasks read 4 KiB at random aligned offsets of random chunks,
//                  CRC-checked.                                          {"ops_per_s": X}
//   create_commit  depth tasks create new 4 KiB chunks (write v1 + commit) for --seconds.
//                                                                        {"ops_per_s": X}
//   footprint      creates --count new 4 KiB chunks, reports the growth of resident memory
//                  and of the LMDB data, scaled to a million chunks.
// Every task stops issuing once the executor clock passes the end of the run; rates count
// completed operations over the time until the last one is back. Task i reads into or writes
// from slice i of one huge-page buffer (AlignedBuffer::huge_pages), as a storage service
// does I/O in its registered buffer pool; fio's reference also uses one buffer of depth x
// block size.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "async/crc32c.h"
#include "async/executor.h"
#include "async/scope.h"
#include "bench/flags.h"
#include "chunk/engine.h"

namespace mica::bench {
namespace {

using chunk::ChunkEngine;
using chunk::ChunkId;

constexpr uint32_t kChunkBytes = 1 << 20;
constexpr uint32_t kDepthMax = 256;
constexpr uint64_t kFirstNewInode = 1000;

struct Config {
  std::string dir;
  std::string mode;
  uint32_t chunks = 1024;
  uint32_t depth = 8;
  double seconds = 5;
  uint32_t count = 100000;
  bool commit_with_write = false;
};

// What the tasks of one run share; lives in run()'s frame, which outlives them.
struct Shared {
  const Config* config = nullptr;
  ChunkEngine* engine = nullptr;
  TimePoint end;
  uint64_t cursor = 0;
  uint64_t ops = 0;
  uint64_t bytes = 0;
  TimePoint last_done;
  Status failure;
  AlignedBuffer buffers;  // room for depth slices of kChunkBytes

  // Task index's buffer: the tasks' buffers lie side by side, as fio's do.
  std::span<std::byte> slice(uint32_t index, size_t size) {
    return buffers.span().subspan(size_t{index} * size, size);
  }
};

void fail_on(Shared* s, const Status& status) {
  if (!status.ok() && s->failure.ok()) s->failure = status;
}

uint64_t rss_bytes() {
  std::ifstream in("/proc/self/statm");
  uint64_t size_pages = 0, resident_pages = 0;
  in >> size_pages >> resident_pages;
  return resident_pages * 4096;
}

std::span<std::byte> fill_random(std::span<std::byte> b, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < b.size(); i += 8) {
    uint64_t x = rng();
    std::memcpy(b.data() + i, &x, 8);
  }
  return b;
}

// Writes the next version of chunk id with data and commits it (in one call when combined).
// data_crc is the writer's CRC32C of data: a task writes the same bytes every time, so it
// computes it once, as a client computes it once per write on its own CPU.
Task<Status> write_and_commit(ChunkEngine* engine, ChunkId id, std::span<const std::byte> data,
                              uint32_t data_crc, bool combined = false) {
  Result<chunk::ChunkInfo> info = engine->stat(id);
  uint32_t next = info.ok() ? info->committed_version + 1 : 1;
  if (combined) {
    auto both = engine->write_and_commit(id, 0, data, data_crc, {next, 1});
    co_return (co_await std::move(both)).status();
  }
  auto writing = engine->write(id, 0, data, data_crc, {next, 1});
  Result<chunk::ChunkInfo> written = co_await std::move(writing);
  if (!written.ok()) co_return written.status();
  auto committing = engine->commit(id, next, 1);
  co_return (co_await std::move(committing)).status();
}

Task<void> writer_task(Shared* s, uint32_t index) {
  std::span<std::byte> data = fill_random(s->slice(index, kChunkBytes), index + 1);
  uint32_t data_crc = crc32c(data);
  Executor* executor = Executor::current();
  while (s->failure.ok() && executor->now() < s->end) {
    ChunkId id{1, static_cast<uint32_t>(s->cursor++ % s->config->chunks)};
    auto step = write_and_commit(s->engine, id, data, data_crc, s->config->commit_with_write);
    fail_on(s, co_await std::move(step));
    ++s->ops;
    s->bytes += kChunkBytes;
    s->last_done = executor->now();
  }
}

Task<void> reader_task(Shared* s, uint32_t index) {
  bool random = s->config->mode == "randread_4k";
  size_t size = random ? 4096 : kChunkBytes;
  std::span<std::byte> buffer = s->slice(index, size);
  std::mt19937_64 rng(index + 7);
  Executor* executor = Executor::current();
  while (s->failure.ok() && executor->now() < s->end) {
    ChunkId id{1, 0};
    uint32_t offset = 0;
    if (random) {
      id.index = static_cast<uint32_t>(rng() % s->config->chunks);
      offset = static_cast<uint32_t>(rng() % (kChunkBytes / 4096)) * 4096;
    } else {
      id.index = static_cast<uint32_t>(s->cursor++ % s->config->chunks);
    }
    auto reading = s->engine->read(id, offset, buffer);
    Result<size_t> n = co_await std::move(reading);
    if (!n.ok()) fail_on(s, n.status());
    ++s->ops;
    s->bytes += size;
    s->last_done = executor->now();
  }
}

Task<void> creator_task(Shared* s, uint32_t index, uint64_t limit) {
  std::span<std::byte> data = fill_random(s->slice(index, 4096), index + 100);
  uint32_t data_crc = crc32c(data);
  Executor* executor = Executor::current();
  while (s->failure.ok() && executor->now() < s->end && s->cursor < limit) {
    uint64_t n = s->cursor++;
    ChunkId id{kFirstNewInode + n / 100000, static_cast<uint32_t>(n % 100000)};
    auto step = write_and_commit(s->engine, id, data, data_crc);
    fail_on(s, co_await std::move(step));
    ++s->ops;
    s->last_done = executor->now();
  }
}

Task<Status> prepare(Shared* s) {
  std::span<std::byte> data = fill_random(s->slice(0, kChunkBytes), 99);
  uint32_t data_crc = crc32c(data);
  for (uint32_t i = 0; i < s->config->chunks; ++i) {
    ChunkId id{1, i};
    if (s->engine->stat(id).ok()) continue;
    auto step = write_and_commit(s->engine, id, data, data_crc);
    CO_TRY(co_await std::move(step));
  }
  std::printf("{\"chunks\": %u}\n", s->config->chunks);
  co_return Status();
}

Task<Status> run(const Config* config) {
  chunk::ChunkEngineConfig engine_config;
  engine_config.reserve_bytes = uint64_t{2} << 30;
  auto opening = ChunkEngine::open(config->dir, engine_config);
  Result<std::unique_ptr<ChunkEngine>> engine = co_await std::move(opening);
  if (!engine.ok()) co_return engine.status();
  Shared s;
  s.config = config;
  s.engine = engine->get();
  s.buffers = AlignedBuffer::huge_pages(size_t{std::max(config->depth, 1u)} * kChunkBytes);
  std::memset(s.buffers.data(), 0, s.buffers.size());  // faulted in before RSS is sampled
  Executor* executor = Executor::current();
  uint64_t rss_before = rss_bytes();
  uint64_t lmdb_before = s.engine->space().lmdb_bytes;
  if (config->mode == "prepare") {
    auto preparing = prepare(&s);
    fail_on(&s, co_await std::move(preparing));
  } else {
    bool footprint = config->mode == "footprint";
    TimePoint start = executor->now();
    s.end = footprint ? kNoDeadline
                      : start + std::chrono::duration_cast<Duration>(
                                    std::chrono::duration<double>(config->seconds));
    TaskScope scope;
    for (uint32_t i = 0; i < config->depth; ++i) {
      if (config->mode == "write_1m")
        scope.spawn(writer_task(&s, i));
      else if (config->mode == "read_1m" || config->mode == "randread_4k")
        scope.spawn(reader_task(&s, i));
      else
        scope.spawn(creator_task(&s, i, footprint ? config->count : UINT64_MAX));
    }
    co_await scope.join();
    double elapsed = std::chrono::duration<double>(s.last_done - start).count();
    if (footprint) {
      double scale = 1e6 / static_cast<double>(config->count);
      std::printf(
          "{\"chunks\": %u, \"rss_bytes_per_million\": %.0f, "
          "\"lmdb_bytes_per_million\": %.0f, \"ops_per_s\": %.1f}\n",
          config->count, static_cast<double>(rss_bytes() - rss_before) * scale,
          static_cast<double>(s.engine->space().lmdb_bytes - lmdb_before) * scale,
          static_cast<double>(s.ops) / elapsed);
    } else {
      std::printf("{\"ops_per_s\": %.1f, \"mib_per_s\": %.1f}\n",
                  static_cast<double>(s.ops) / elapsed,
                  static_cast<double>(s.bytes) / elapsed / (1 << 20));
    }
  }
  chunk::EngineCounters counters = s.engine->counters();
  std::fprintf(stderr,
               "bench_chunk %s: ops %lu, meta requests %lu in %lu transactions, direct_io %d\n",
               config->mode.c_str(), static_cast<unsigned long>(s.ops),
               static_cast<unsigned long>(counters.meta_requests),
               static_cast<unsigned long>(counters.meta_transactions), s.engine->direct_io());
  auto closing = s.engine->close();
  Status closed = co_await std::move(closing);
  if (!s.failure.ok()) co_return s.failure;
  co_return closed;
}

}  // namespace
}  // namespace mica::bench

int main(int argc, char** argv) {
  mica::bench::Flags flags(argc, argv,
                           "bench_chunk --dir DIR --mode prepare|write_1m|read_1m|randread_4k|"
                           "create_commit|footprint [--chunks N] [--depth D] [--seconds S] "
                           "[--count N] [--commit-with-write]");
  mica::bench::Config config;
  config.dir = flags.text("dir", "");
  config.mode = flags.text("mode", "");
  config.chunks = static_cast<uint32_t>(flags.number("chunks", config.chunks));
  config.depth = static_cast<uint32_t>(flags.number("depth", config.depth));
  config.seconds = flags.number("seconds", config.seconds);
  config.count = static_cast<uint32_t>(flags.number("count", config.count));
  config.commit_with_write = flags.is_set("commit-with-write");
  flags.finish();
  if (config.dir.empty() || config.mode.empty() || config.depth > mica::bench::kDepthMax)
    flags.fail("--dir and --mode are required; --depth at most 256");
  auto executor = mica::Executor::create_uring();
  mica::Status s = executor->block_on(mica::bench::run(&config));
  if (!s.ok()) {
    std::fprintf(stderr, "bench_chunk: %s\n", s.to_string().c_str());
    return 1;
  }
  return 0;
}
