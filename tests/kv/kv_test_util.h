// Helpers for the kv tests: run a test body against any implementation — LMDB or the
// journaled store in a fresh directory on the build disk with a real executor, or the
// simulated store on one host of a SimWorld — and small key encodings.
//
// Test bodies are named coroutines `Task<void>(std::string dir, EnvOptions options)`; they use
// EXPECT_* (ASSERT_* cannot return from a coroutine) and co_return early. One test, one thread.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "async/executor.h"
#include "async/sim/world.h"
#include "kv/kv.h"
#include "tests/temp_dir.h"

namespace mica::kv::testing {

using Body = Task<void> (*)(std::string dir, EnvOptions options);

// A directory on the build disk, removed at the end of the test.
class TempDir : public mica::testing::TempDir {
 public:
  TempDir() : mica::testing::TempDir(mica::testing::binary_dir() + "/kv-test-data", "env") {}
};

// The simulated store's directory on a simulated host.
inline constexpr const char* kSimDir = "/kv";

inline void run_body(Implementation implementation, Body body, EnvOptions options = {}) {
  options.implementation = implementation;
  if (implementation != Implementation::kSim) {
    TempDir dir;
    auto executor = Executor::create_uring();
    executor->block_on(body(dir.path(), options));
    return;
  }
  sim::SimWorld world(sim::sim_seed(1));
  sim::SimHost& host = world.add_host("kv");
  host.disk().make_durable_directories(kSimDir);
  world.run(host, body(kSimDir, options));
}

// A big-endian u64 key: byte order is numeric order.
inline std::string be_key(uint64_t n) {
  std::string key(8, '\0');
  for (int i = 0; i < 8; ++i) key[i] = static_cast<char>(n >> (56 - 8 * i));
  return key;
}

}  // namespace mica::kv::testing
