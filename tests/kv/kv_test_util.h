// Helpers for the kv tests: run a test body against either implementation — LMDB in a fresh
// directory on the build disk with a real executor, or the simulated store on one host of a
// SimWorld — and small key encodings.
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

namespace mica::kv::testing {

using Body = Task<void> (*)(std::string dir, EnvOptions options);

// A directory on the build disk, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string parent =
        std::filesystem::read_symlink("/proc/self/exe").parent_path().string() + "/kv-test-data";
    std::filesystem::create_directories(parent);
    std::string pattern = parent + "/env-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr) std::abort();
    path_ = buffer.data();
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The simulated store's directory on a simulated host.
inline constexpr const char* kSimDir = "/kv";

inline void run_body(Implementation implementation, Body body, EnvOptions options = {}) {
  options.implementation = implementation;
  if (implementation == Implementation::kLmdb) {
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
