// bench_metrics: the hot-path cost of async/metrics.h and of a disabled log line.
//
// Google Benchmark, one update per iteration: Counter::add, Gauge::add, Histogram::record
// (durations cycling through a table that spreads them over the buckets), each on one thread
// and on two threads updating the same metric (their own shards), and MICA_LOG below the
// configured level. run.sh reads the real time per iteration (ns) of counter_add and
// histogram_record from --benchmark_format=json.
#include <benchmark/benchmark.h>

#include <array>

#include "async/log.h"
#include "async/metrics.h"

namespace mica::bench {
namespace {

MetricsRegistry& registry() {
  static MetricsRegistry* r = new MetricsRegistry();
  return *r;
}

void counter_add(benchmark::State& state) {
  Counter& counter = registry().counter("bench", "adds_total", "Adds.");
  for (auto _ : state) counter.add();
  benchmark::DoNotOptimize(counter.value());
}
BENCHMARK(counter_add);
BENCHMARK(counter_add)->Threads(2);

void gauge_add(benchmark::State& state) {
  Gauge& gauge = registry().gauge("bench", "level", "Level.");
  for (auto _ : state) gauge.add(1);
  benchmark::DoNotOptimize(gauge.value());
}
BENCHMARK(gauge_add);

// 64 durations from 100 ns to ~100 ms, so the branch predictor cannot learn one bucket.
std::array<Duration, 64> durations() {
  std::array<Duration, 64> out{};
  uint64_t x = 0x9e3779b97f4a7c15;
  for (Duration& d : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    d = Duration(100 << (x % 20));
  }
  return out;
}

void histogram_record(benchmark::State& state) {
  Histogram& histogram = registry().histogram("bench", "latency_seconds", "Latency.");
  const std::array<Duration, 64> table = durations();
  size_t i = 0;
  for (auto _ : state) histogram.record(table[i++ & 63]);
  benchmark::DoNotOptimize(histogram.snapshot().count);
}
BENCHMARK(histogram_record);
BENCHMARK(histogram_record)->Threads(2);

void log_disabled(benchmark::State& state) {
  int x = 0;
  for (auto _ : state) {
    MICA_LOG(Debug, "bench", "value {}", x);
    benchmark::DoNotOptimize(++x);
  }
}
BENCHMARK(log_disabled);

}  // namespace
}  // namespace mica::bench

BENCHMARK_MAIN();
