// chunk_crash_writer DIR SEED: the writer process of the crash test. It opens the target in
// DIR and, until it is killed, updates the crash model's chunks from kWriters concurrent
// tasks: writes, truncates and replaces of the next version, commits, writes committed at
// once (write_and_commit), aborts of pending
// versions found after a restart, and occasional removes. Any unexpected error ends the
// process with status 3 and a message, which the test reports.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "async/crc32c.h"
#include "async/scope.h"
#include "chunk/engine.h"
#include "tests/chunk/crash_model.h"

namespace mica::chunk::crash {
namespace {

[[noreturn]] void fail(const Status& s, const char* what) {
  fmt::print(stderr, "chunk_crash_writer: {}: {}\n", what, s.to_string());
  std::_Exit(3);
}

Task<void> step(ChunkEngine* engine, uint32_t c, std::mt19937_64* rng) {
  ChunkId id = chunk_id(c);
  Result<ChunkInfo> info = engine->stat(id);
  if (!info.ok() && info.status().code() != StatusCode::kNotFound) fail(info.status(), "stat");
  uint32_t committed = info.ok() ? info->committed_version : 0;
  uint32_t pending = info.ok() ? info->pending_version : 0;
  if (pending != 0) {
    if ((*rng)() % 10 < 7) {
      auto committing = engine->commit(id, pending, 1);
      Result<ChunkInfo> r = co_await std::move(committing);
      if (!r.ok()) fail(r.status(), "commit");
    } else {
      auto aborting = engine->abort(id, pending);
      Status s = co_await std::move(aborting);
      if (!s.ok()) fail(s, "abort");
    }
    co_return;
  }
  if (committed != 0 && (*rng)() % 50 == 0) {
    auto removing = engine->remove(id);
    Status s = co_await std::move(removing);
    if (!s.ok()) fail(s, "remove");
    co_return;
  }
  uint32_t v = committed + 1;
  Update u = update_of(c, v);
  Result<ChunkInfo> r = Status(StatusCode::kInternal, "unset");
  if (u.kind == Kind::kTruncate) {
    auto cutting = engine->truncate(id, u.length, {v, 1});
    r = co_await std::move(cutting);
  } else {
    std::vector<std::byte> data = payload(c, v, u.length);
    std::span<const std::byte> bytes(data.data(), data.size());
    if (u.kind == Kind::kReplace) {
      auto replacing = engine->replace(id, bytes, crc32c(bytes), {v, 1});
      r = co_await std::move(replacing);
    } else if ((*rng)() % 4 == 0) {
      auto both = engine->write_and_commit(id, u.offset, bytes, crc32c(bytes), {v, 1});
      r = co_await std::move(both);
      if (!r.ok()) fail(r.status(), "write_and_commit");
      co_return;
    } else {
      auto writing = engine->write(id, u.offset, bytes, crc32c(bytes), {v, 1});
      r = co_await std::move(writing);
    }
  }
  if (!r.ok()) fail(r.status(), "update");
  if (u.kind != Kind::kReplace && (*rng)() % 10 < 8) {
    auto committing = engine->commit(id, v, 1);
    Result<ChunkInfo> done = co_await std::move(committing);
    if (!done.ok()) fail(done.status(), "commit after update");
  }
}

Task<void> writer(ChunkEngine* engine, uint32_t first, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (;;) {
    uint32_t c = first + static_cast<uint32_t>(rng() % (kChunks / kWriters));
    auto stepping = step(engine, c, &rng);
    co_await std::move(stepping);
  }
}

Task<void> run(std::string dir, uint64_t seed) {
  ChunkEngineConfig config;
  config.reserve_bytes = 0;
  config.growth_step_bytes = 1 << 20;
  config.lmdb_map_size_bytes = uint64_t{1} << 30;
  auto opening = ChunkEngine::open(dir, config);
  Result<std::unique_ptr<ChunkEngine>> engine = co_await std::move(opening);
  if (!engine.ok()) fail(engine.status(), "open");
  TaskScope scope;
  for (uint32_t w = 0; w < kWriters; ++w)
    scope.spawn(writer(engine->get(), w * (kChunks / kWriters), seed * 31 + w));
  co_await scope.join();  // never: the writers loop until the process is killed
}

}  // namespace
}  // namespace mica::chunk::crash

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: chunk_crash_writer DIR SEED\n");
    return 2;
  }
  auto executor = mica::Executor::create_uring();
  executor->block_on(mica::chunk::crash::run(argv[1], std::strtoull(argv[2], nullptr, 10)));
  return 0;
}
