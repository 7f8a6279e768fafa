// Helpers for the chunk tests: a fresh target directory on the build disk (removed when the
// test ends), an executor to run a test body on, and small byte-pattern utilities.
//
// Test bodies are named coroutines run with run_on_executor(); they use EXPECT_* (ASSERT_*
// cannot return from a coroutine) and co_return early. Owned by one test; one thread.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "async/crc32c.h"
#include "async/executor.h"
#include "chunk/engine.h"
#include "tests/temp_dir.h"

namespace mica::chunk::testing {

using mica::testing::binary_dir;

class TempDir : public mica::testing::TempDir {
 public:
  explicit TempDir(std::string parent = binary_dir())
      : mica::testing::TempDir(parent + "/chunk-test-data", "target") {}
};

// Small files and no disk reserve, so tests run anywhere.
inline ChunkEngineConfig test_config() {
  ChunkEngineConfig c;
  c.reserve_bytes = 0;
  c.growth_step_bytes = 1 << 20;
  c.lmdb_map_size_bytes = uint64_t{1} << 30;
  return c;
}

template <class T>
T run_on_executor(Task<T> task) {
  auto executor = Executor::create_uring();
  return executor->block_on(std::move(task));
}

inline std::vector<std::byte> pattern(size_t size, uint32_t seed) {
  std::vector<std::byte> out(size);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::byte>(x);
  }
  return out;
}

inline std::span<const std::byte> bytes_of(const std::vector<std::byte>& v) {
  return {v.data(), v.size()};
}

// Opens an engine; null (with a test failure) when that fails.
inline Task<std::unique_ptr<ChunkEngine>> open_engine(std::string path,
                                                      ChunkEngineConfig config = test_config()) {
  auto opening = ChunkEngine::open(path, config);
  Result<std::unique_ptr<ChunkEngine>> engine = co_await std::move(opening);
  EXPECT_TRUE(engine.ok()) << engine.status();
  if (!engine.ok()) co_return nullptr;
  co_return std::move(*engine);
}

// Writes data as version v and commits it.
inline Task<Status> write_committed(ChunkEngine* engine, ChunkId id, uint32_t offset,
                                    std::vector<std::byte> data, uint32_t v) {
  auto writing =
      engine->write(id, offset, bytes_of(data), crc32c(bytes_of(data)), UpdateVersion{v, 1});
  Result<ChunkInfo> written = co_await std::move(writing);
  if (!written.ok()) co_return written.status();
  auto committing = engine->commit(id, v, 1);
  Result<ChunkInfo> committed = co_await std::move(committing);
  co_return committed.status();
}

// The committed content of a chunk.
inline Task<Result<std::vector<std::byte>>> read_all(ChunkEngine* engine, ChunkId id) {
  Result<ChunkInfo> info = engine->stat(id);
  if (!info.ok()) co_return info.status();
  std::vector<std::byte> out(info->length_bytes + 1);  // one more: the read must stop short
  auto reading = engine->read(id, 0, std::span(out));
  Result<size_t> n = co_await std::move(reading);
  if (!n.ok()) co_return n.status();
  out.resize(*n);
  co_return out;
}

inline Task<void> close_engine(std::unique_ptr<ChunkEngine> engine) {
  if (!engine) co_return;
  auto closing = engine->close();
  Status s = co_await std::move(closing);
  EXPECT_TRUE(s.ok()) << s;
}

}  // namespace mica::chunk::testing
