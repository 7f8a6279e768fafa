// bench_async_file: Mica's side of the randread_4k_qd32 and seqread_1m figures.
//
// One executor on one io_uring; `depth` reader tasks run concurrently (joined with
// when_all), each looping one O_DIRECT read at a time into its own slice of one aligned
// buffer, so `depth` reads are in flight at any moment. --mode randread picks uniform
// random block offsets (each task its own xorshift stream); --mode seqread hands out
// consecutive blocks from one shared cursor that wraps at the end of the file, as fio's
// --rw=read does at the same depth. With --fixed-buffers the buffer is registered with the
// ring (Backend::register_buffers) and the tasks use File::read_fixed. The executor runs
// with its default options. Every task stops issuing once the executor clock passes the end
// of the run; the rate counts completed reads over the time until the last one is back.
// Prints one JSON object: {"ops_per_s": N, "mib_per_s": M}.
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include "async/executor.h"
#include "async/file.h"
#include "async/scope.h"
#include "async/uring_backend.h"
#include "bench/flags.h"

namespace mica::bench {
namespace {

// Limits on what a run may ask for; the figures use depth 32 x 4 KiB and 8 x 1 MiB.
constexpr size_t kDepthMax = 256;
constexpr size_t kBlockBytesMax = 16 << 20;

struct Config {
  std::string path;
  bool random = true;
  size_t block_bytes = 4096;
  size_t depth = 32;
  double seconds = 5;
  bool fixed_buffers = false;
};

// What the readers share; lives in run()'s frame, which outlives them (when_all).
struct Run {
  const Config* config = nullptr;
  File* file = nullptr;
  std::byte* buffers = nullptr;  // depth slices of block_bytes
  uint64_t blocks = 0;           // whole blocks in the file
  uint64_t next_block = 0;       // seqread cursor
  TimePoint stop;
  uint64_t reads_done = 0;
  Status error;
};

struct Summary {
  uint64_t reads = 0;
  double seconds = 0;
};

uint64_t xorshift64(uint64_t& state) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

Task<void> reader(Run* run, size_t index) {
  const Config& config = *run->config;
  std::span<std::byte> buffer(run->buffers + index * config.block_bytes, config.block_bytes);
  uint64_t rng = 0x9E3779B97F4A7C15ull * (index + 1);
  Executor* executor = Executor::current();
  while (run->error.ok() && executor->now() < run->stop) {
    uint64_t block;
    if (config.random) {
      block = xorshift64(rng) % run->blocks;
    } else {
      block = run->next_block;
      run->next_block = (block + 1) % run->blocks;
    }
    uint64_t offset = block * config.block_bytes;
    auto read = config.fixed_buffers ? run->file->read_fixed(buffer, offset, 0)
                                     : run->file->read(buffer, offset);
    Result<size_t> done = co_await read;
    if (!done.ok()) {
      run->error = done.status();
    } else if (*done != config.block_bytes) {
      run->error = Status(StatusCode::kIoError, "short read");
    } else {
      ++run->reads_done;
    }
  }
}

Task<Result<Summary>> read_for_a_while(Run* run) {
  const Config& config = *run->config;
  Executor* executor = Executor::current();
  AlignedBuffer buffers(config.depth * config.block_bytes);
  run->buffers = buffers.data();
  if (config.fixed_buffers) {
    iovec whole{buffers.data(), buffers.size()};
    CO_TRY(executor->backend().register_buffers(std::span<const iovec>(&whole, 1)));
  }
  std::vector<Task<void>> readers;
  for (size_t i = 0; i < config.depth; ++i) readers.push_back(reader(run, i));
  TimePoint start = executor->now();
  run->stop =
      start + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(config.seconds));
  auto all = when_all(std::move(readers));
  co_await std::move(all);
  TimePoint end = executor->now();
  CO_TRY(run->error);
  co_return Summary{run->reads_done, std::chrono::duration<double>(end - start).count()};
}

Task<Result<Summary>> run_benchmark(Config config) {
  auto opening = File::open(config.path, O_RDONLY | O_DIRECT);
  CO_TRY_ASSIGN(File file, co_await std::move(opening));
  struct stat st {};
  Run run;
  run.config = &config;
  run.file = &file;
  Result<Summary> summary = Status(StatusCode::kInvalidArgument, "file smaller than a block");
  if (fstat(file.fd(), &st) != 0) {
    summary = Status::from_errno(errno, "fstat " + config.path);
  } else if (static_cast<uint64_t>(st.st_size) >= config.block_bytes) {
    run.blocks = static_cast<uint64_t>(st.st_size) / config.block_bytes;
    auto reading = read_for_a_while(&run);
    summary = co_await std::move(reading);
  }
  auto closing = file.close();
  Result<void> closed = co_await closing;
  if (summary.ok() && !closed.ok()) co_return closed.status();
  co_return summary;
}

Config parse(int argc, char** argv) {
  Flags flags(argc, argv,
              "bench_async_file --file PATH [--mode randread|seqread] [--block-bytes N] "
              "[--depth N] [--seconds S] [--fixed-buffers]");
  Config config;
  config.path = flags.text("file", "");
  std::string mode = flags.text("mode", "randread");
  config.block_bytes = static_cast<size_t>(flags.number("block-bytes", 4096));
  config.depth = static_cast<size_t>(flags.number("depth", 32));
  config.seconds = flags.number("seconds", 5);
  config.fixed_buffers = flags.is_set("fixed-buffers");
  flags.finish();
  if (config.path.empty()) flags.fail("--file is required");
  if (mode != "randread" && mode != "seqread") flags.fail("--mode is randread or seqread");
  config.random = mode == "randread";
  if (!is_direct_io_aligned(config.block_bytes) || config.block_bytes > kBlockBytesMax)
    flags.fail("--block-bytes must be a multiple of 4096 and at most 16 MiB");
  if (config.depth > kDepthMax) flags.fail("--depth is at most 256");
  return config;
}

}  // namespace
}  // namespace mica::bench

int main(int argc, char** argv) {
  using namespace mica;
  bench::Config config = bench::parse(argc, argv);
  auto executor = Executor::create_uring();
  Result<bench::Summary> summary = executor->block_on(bench::run_benchmark(config));
  if (!summary.ok()) {
    std::fprintf(stderr, "bench_async_file: %s\n", summary.status().to_string().c_str());
    return 1;
  }
  double ops_per_s = static_cast<double>(summary->reads) / summary->seconds;
  double mib_per_s = ops_per_s * static_cast<double>(config.block_bytes) / (1 << 20);
  std::printf("{\"ops_per_s\": %.1f, \"mib_per_s\": %.1f}\n", ops_per_s, mib_per_s);
  return 0;
}
