// The pieces the native-client bench programs share (bench_client of bench/run.sh client and
// bench_fs_client of bench/run.sh fuse): a reproducible random source, buffer filling,
// timing and RSS helpers, and the sequential whole-file transfer through one client::File
// (N tasks taking the next block from a shared cursor). Everything here runs on the one
// executor of the calling bench process and suspends only inside its Task functions; the
// caller owns every buffer and the client and keeps them alive until the task returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "async/executor.h"
#include "async/status.h"
#include "async/task.h"
#include "async/time.h"
#include "client/client.h"

namespace mica::bench {

// xorshift64, as bench_storage: reproducible, no standard-library distribution.
struct Random {
  explicit Random(uint64_t seed) : x(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t x;
  uint64_t next() {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  }
  uint64_t below(uint64_t n) { return next() % n; }
};

// Fills bytes with Random(seed)'s words (a tail under 8 bytes is left as it is).
void fill(std::span<std::byte> bytes, uint64_t seed);

double seconds_since(TimePoint start);  // on the current executor's clock
Duration to_duration(double seconds);
uint64_t resident_bytes();  // this process's VmRSS

// What a group of bench tasks shares: a cursor, counters and the first error.
struct Work {
  uint64_t next = 0;  // the next offset (sequential) or chunk (engine preparation)
  uint64_t operations = 0;
  uint64_t bytes = 0;
  std::vector<int64_t> latencies_ns;
  Status error;
};

// A sequential transfer: `depth` tasks, each moving `block_bytes` at a time.
struct SeqShape {
  uint32_t depth = 8;
  uint64_t block_bytes = uint64_t{4} << 20;
};

// Writes (O_TRUNC) or reads `total` bytes of path with shape.depth tasks, each using its own
// block_bytes slice of `buffers` (at least depth * block_bytes); the seconds it took (a
// write's fsync and close included).
Task<Result<double>> sequential(client::Client* mica, std::string path, bool write,
                                uint64_t total, std::span<std::byte> buffers, SeqShape shape);

// Writes path with `bytes` unless it already holds that many.
Task<Status> ensure_file(client::Client* mica, std::string path, uint64_t bytes,
                         std::span<std::byte> buffers, SeqShape shape);

Task<Status> ensure_dir(client::Client* mica, std::string path);  // mkdir; existing is fine

// The sample at `fraction` (0.5: the median) of samples, in microseconds (reorders them).
double percentile_us(std::vector<int64_t>* samples, double fraction);

}  // namespace mica::bench
