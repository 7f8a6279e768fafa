// bench_task_roundtrip: the task_roundtrip figure, the fixed cost of one Task.
//
// Google Benchmark measures, inside a task already running on an io_uring executor, one
// create + co_await + destroy of a trivial Task<int> per iteration: the frame allocation
// (frame_alloc's per-thread cache), the symmetric transfer in and out, and the frame's
// release. No I/O is involved, so the executor loop is not on the path. run.sh reads the
// real time per iteration from --benchmark_format=json.
#include <benchmark/benchmark.h>

#include "async/executor.h"

namespace mica::bench {
namespace {

Task<int> increment(int x) {
  co_return x + 1;
}

Task<void> roundtrips(benchmark::State* state) {
  int x = 0;
  for (auto _ : *state) {
    Task<int> task = increment(x);
    x = co_await std::move(task);
    benchmark::DoNotOptimize(x);
  }
}

void task_roundtrip(benchmark::State& state) {
  auto executor = Executor::create_uring();
  executor->block_on(roundtrips(&state));
}
BENCHMARK(task_roundtrip);

}  // namespace
}  // namespace mica::bench

BENCHMARK_MAIN();
