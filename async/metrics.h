// Metrics: counters, gauges and latency histograms, registered once by name and updated on
// hot paths for a few nanoseconds, rendered in the Prometheus text exposition format.
//
// A module registers its metrics once (at startup or when a service is created) and keeps
// the returned references: `Counter& sent = metrics().counter("net", "frames_sent_total",
// "Frames handed to a transport.", {{"transport", "tcp"}});` and then `sent.add();` on
// the hot path. The name rendered is `mica_<module>_<name>`; metrics of one name with
// different label sets form one family (one HELP and TYPE). Registering the same name and
// labels again returns the same metric. Metrics live as long as their registry (the
// process-wide one lives for the process), so register per service, never per connection
// or request: the registry holds at most kMetricsSeriesMax series.
//
// Updates take no lock, allocate nothing and look nothing up: a counter or histogram is
// kMetricShards cache-line-sized shards. Each of the first kMetricShards - 1 threads that
// update metrics owns one shard while it lives and adds to it with a relaxed load and store
// (no locked instruction: no other thread writes it); further threads share the last shard
// and add to it with an atomic fetch_add. Totals are exact either way. A gauge is one
// relaxed atomic (set() cannot be sharded). Reads (value(), snapshot(),
// render_prometheus()) sum the shards; they see each update whole but not all updates of
// one instant, which is what a scrape needs.
//
// Thread-safe from any thread; never suspends. Registration and rendering take the
// registry's mutex; updates never do.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "async/time.h"

namespace mica {

// Shards per counter or histogram; the last is shared by threads beyond the first
// kMetricShards - 1 (still exact, but their adds contend). A counter costs
// kMetricShards * 64 bytes, a histogram kMetricShards * 256.
inline constexpr uint32_t kMetricShards = 16;
inline constexpr uint32_t kMetricSharedShard = kMetricShards - 1;
// Finite buckets a histogram may have: upper bounds 1 us, 2 us, ... 2^25 us (33.6 s).
inline constexpr uint32_t kHistogramBucketsMax = 26;
// Series (metric name + label set) one registry holds.
inline constexpr size_t kMetricsSeriesMax = 4096;

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

namespace detail {
// This thread's shard index, read out of line: a coroutine that moved threads must not
// reuse the previous thread's cached thread-local address (see docs/async.md).
uint32_t metric_shard();

// Adds n to a shard's cell: a plain read-modify-write on the thread's own shard, an atomic
// one on the shared shard.
inline void metric_add(std::atomic<uint64_t>& cell, uint64_t n, uint32_t shard) {
  if (shard != kMetricSharedShard) [[likely]] {
    cell.store(cell.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  } else {
    cell.fetch_add(n, std::memory_order_relaxed);
  }
}
}  // namespace detail

// A monotonically increasing count.
class Counter {
 public:
  void add(uint64_t n = 1) {
    uint32_t shard = detail::metric_shard();
    detail::metric_add(shards_[shard].value, n, shard);
  }
  uint64_t value() const;

 private:
  struct alignas(64) Shard {
    std::atomic<uint64_t> value{0};
  };
  std::array<Shard, kMetricShards> shards_;
};

// A value that goes up and down (queue depth, bytes reserved, connections open).
class Gauge {
 public:
  void set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  void sub(int64_t n) { value_.fetch_sub(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  alignas(64) std::atomic<int64_t> value_{0};
};

// A latency distribution over fixed buckets: bucket i counts durations d with
// 2^(i-1) us < d <= 2^i us (bucket 0: d <= 1 us), for i below the histogram's bucket count;
// longer durations go to the last, unbounded bucket (+Inf). The sum is kept in nanoseconds.
class Histogram {
 public:
  explicit Histogram(uint32_t buckets = kHistogramBucketsMax);

  void record(Duration d) {
    int64_t ns = d.count() < 0 ? 0 : d.count();
    uint32_t index = detail::metric_shard();
    Shard& shard = shards_[index];
    detail::metric_add(shard.buckets[bucket_of(static_cast<uint64_t>(ns))], 1, index);
    detail::metric_add(shard.sum_ns, static_cast<uint64_t>(ns), index);
  }

  // The bucket (0..buckets()) a duration of ns nanoseconds falls in; buckets() is +Inf.
  uint32_t bucket_of(uint64_t ns) const {
    uint64_t us = ns / 1000 + (ns % 1000 != 0);  // ns <= 1000 * 2^i <=> ceil(ns/1000) <= 2^i
    uint32_t i = us <= 1 ? 0 : static_cast<uint32_t>(64 - __builtin_clzll(us - 1));
    return i < buckets_ ? i : buckets_;
  }
  // Finite buckets; their upper bounds are 2^0 .. 2^(buckets()-1) microseconds.
  uint32_t buckets() const { return buckets_; }

  struct Snapshot {
    // Per bucket, not cumulative; entry buckets() is +Inf.
    std::array<uint64_t, kHistogramBucketsMax + 1> counts{};
    uint64_t count = 0;
    uint64_t sum_ns = 0;
  };
  Snapshot snapshot() const;

 private:
  struct alignas(64) Shard {
    std::array<std::atomic<uint64_t>, kHistogramBucketsMax + 1> buckets{};
    std::atomic<uint64_t> sum_ns{0};
  };
  uint32_t buckets_;
  std::array<Shard, kMetricShards> shards_;
};

class MetricsRegistry {
 public:
  MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;
  ~MetricsRegistry();

  // Registers (or finds) the series `mica_<module>_<name>{labels}`. Names follow
  // Prometheus ([a-z_][a-z0-9_]*; counters end in _total, latencies in _seconds); a name
  // registered before with another kind, an invalid name or a full registry asserts.
  // The reference stays valid for the registry's lifetime.
  Counter& counter(std::string_view module, std::string_view name, std::string_view help,
                   const MetricLabels& labels = {});
  Gauge& gauge(std::string_view module, std::string_view name, std::string_view help,
               const MetricLabels& labels = {});
  // `buckets`: finite buckets, 1..kHistogramBucketsMax (the last bound is 2^(buckets-1) us).
  Histogram& histogram(std::string_view module, std::string_view name, std::string_view help,
                       const MetricLabels& labels = {}, uint32_t buckets = kHistogramBucketsMax);

  // Every metric in the Prometheus text exposition format (version 0.0.4): families in
  // registration order, each with # HELP and # TYPE, series in registration order;
  // histograms render cumulative _bucket{le="<seconds>"}, _sum (seconds) and _count.
  std::string render_prometheus() const;

  size_t series() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Series;
  struct Family;
  Series& find_or_add(Kind kind, std::string_view module, std::string_view name,
                      std::string_view help, const MetricLabels& labels, uint32_t buckets);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_;
  size_t series_ = 0;
};

// The process-wide registry the servers expose.
MetricsRegistry& metrics();

}  // namespace mica
