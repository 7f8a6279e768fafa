// The metrics registry: exact totals from several threads, histogram bucket boundaries,
// registration rules and the exact Prometheus text of a small registry.
#include "async/metrics.h"

#include <gtest/gtest.h>

#include <barrier>
#include <functional>
#include <thread>
#include <vector>

namespace mica {
namespace {

using namespace std::chrono_literals;

constexpr int kThreads = 8;

void run_threads(const std::function<void(int)>& body) {
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(body, t);
  for (std::thread& t : threads) t.join();
}

// 8 threads x 200,000 updates each, for this and the next two tests: well under a second.
TEST(MetricsTest, CountersFromSeveralThreadsAddUpExactly) {
  MetricsRegistry registry;
  Counter& counter = registry.counter("test", "events_total", "Events.");
  constexpr uint64_t kAdds = 200'000;
  run_threads([&counter](int t) {
    for (uint64_t i = 0; i < kAdds; ++i) counter.add(t % 2 == 0 ? 1 : 3);
  });
  EXPECT_EQ(counter.value(), kAdds * (kThreads / 2) * (1 + 3));
}

// 40 threads alive at once: all shards are owned and the rest share the last one. Then 100
// short-lived threads, one after another, reuse the shards of those that exited. ~0.1 s.
TEST(MetricsTest, ThreadsBeyondTheShardsAndReusedShardsStillAddUpExactly) {
  MetricsRegistry registry;
  Counter& counter = registry.counter("test", "events_total", "Events.");
  Histogram& histogram = registry.histogram("test", "latency_seconds", "Latency.");
  constexpr int kAlive = 40;
  constexpr uint64_t kAdds = 200'000;
  std::barrier all_alive(kAlive);
  std::vector<std::thread> threads;
  for (int t = 0; t < kAlive; ++t) {
    threads.emplace_back([&] {
      counter.add();
      all_alive.arrive_and_wait();
      for (uint64_t i = 1; i < kAdds; ++i) {
        counter.add();
        histogram.record(Duration(1500));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < 100; ++t) std::thread([&counter] { counter.add(2); }).join();
  EXPECT_EQ(counter.value(), kAlive * kAdds + 200);
  EXPECT_EQ(histogram.snapshot().counts[1], kAlive * (kAdds - 1));
  EXPECT_EQ(histogram.snapshot().sum_ns, kAlive * (kAdds - 1) * 1500);
}

TEST(MetricsTest, GaugesFromSeveralThreadsAddUpExactly) {
  MetricsRegistry registry;
  Gauge& gauge = registry.gauge("test", "in_flight", "Operations in flight.");
  constexpr int64_t kRounds = 200'000;
  run_threads([&gauge](int t) {
    for (int64_t i = 0; i < kRounds; ++i) {
      gauge.add(5);
      gauge.sub(t % 2 == 0 ? 5 : 4);
    }
  });
  EXPECT_EQ(gauge.value(), kRounds * (kThreads / 2));
  gauge.set(-7);
  EXPECT_EQ(gauge.value(), -7);
}

TEST(MetricsTest, HistogramsFromSeveralThreadsAddUpExactly) {
  MetricsRegistry registry;
  Histogram& histogram = registry.histogram("test", "latency_seconds", "Latency.");
  constexpr uint64_t kRecords = 200'000;
  run_threads([&histogram](int t) {
    for (uint64_t i = 0; i < kRecords; ++i)
      histogram.record(Duration(i % 2 == 0 ? 500 : 3000 + t));  // buckets 0 and 2
  });
  Histogram::Snapshot snap = histogram.snapshot();
  EXPECT_EQ(snap.count, kRecords * kThreads);
  EXPECT_EQ(snap.counts[0], kRecords / 2 * kThreads);
  EXPECT_EQ(snap.counts[1], 0u);
  EXPECT_EQ(snap.counts[2], kRecords / 2 * kThreads);
  uint64_t sum = 0;
  for (int t = 0; t < kThreads; ++t) sum += kRecords / 2 * (500 + 3000 + t);
  EXPECT_EQ(snap.sum_ns, sum);
}

TEST(MetricsTest, HistogramBucketsArePowersOfTwoMicrosecondsInclusive) {
  Histogram histogram;
  EXPECT_EQ(histogram.bucket_of(0), 0u);
  EXPECT_EQ(histogram.bucket_of(1000), 0u);  // <= 1 us
  EXPECT_EQ(histogram.bucket_of(1001), 1u);  // <= 2 us
  EXPECT_EQ(histogram.bucket_of(2000), 1u);
  EXPECT_EQ(histogram.bucket_of(2001), 2u);  // <= 4 us
  EXPECT_EQ(histogram.bucket_of(4000), 2u);
  EXPECT_EQ(histogram.bucket_of(4001), 3u);
  EXPECT_EQ(histogram.bucket_of(1'024'000), 10u);  // 1.024 ms
  EXPECT_EQ(histogram.bucket_of(1'024'001), 11u);
  uint64_t last_bound_ns = (uint64_t{1} << (kHistogramBucketsMax - 1)) * 1000;
  EXPECT_EQ(histogram.bucket_of(last_bound_ns), kHistogramBucketsMax - 1);
  EXPECT_EQ(histogram.bucket_of(last_bound_ns + 1), kHistogramBucketsMax);  // +Inf
  EXPECT_EQ(histogram.bucket_of(UINT64_MAX), kHistogramBucketsMax);

  Histogram small(3);  // bounds 1, 2, 4 us
  EXPECT_EQ(small.bucket_of(4000), 2u);
  EXPECT_EQ(small.bucket_of(4001), 3u);
  small.record(Duration(-5));  // a clock step backwards counts as zero
  small.record(Duration(4000));
  small.record(1h);
  Histogram::Snapshot snap = small.snapshot();
  EXPECT_EQ(snap.counts[0], 1u);
  EXPECT_EQ(snap.counts[2], 1u);
  EXPECT_EQ(snap.counts[3], 1u);
  EXPECT_EQ(snap.sum_ns, 4000u + 3'600'000'000'000u);
}

TEST(MetricsTest, RegisteringAgainReturnsTheSameSeries) {
  MetricsRegistry registry;
  Counter& a = registry.counter("net", "frames_total", "Frames.", {{"transport", "tcp"}});
  Counter& b = registry.counter("net", "frames_total", "Frames.", {{"transport", "tcp"}});
  Counter& c = registry.counter("net", "frames_total", "Frames.", {{"transport", "rdma"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
  EXPECT_EQ(registry.series(), 2u);
}

TEST(MetricsDeathTest, RegisteringANameAsAnotherKindAsserts) {
  MetricsRegistry registry;
  registry.counter("net", "frames_total", "Frames.");
  EXPECT_DEATH(registry.gauge("net", "frames_total", "Frames."), "another kind");
  EXPECT_DEATH(registry.counter("net", "Bad-Name", "x"), "invalid metric name");
  EXPECT_DEATH(registry.histogram("net", "x_seconds", "x", {{"le", "1"}}), "own label");
}

TEST(MetricsTest, PrometheusTextOfASmallRegistryIsExact) {
  MetricsRegistry registry;
  Counter& tcp = registry.counter("net", "frames_total", "Frames sent.", {{"transport", "tcp"}});
  Counter& rdma = registry.counter("net", "frames_total", "Frames sent.", {{"transport", "rdma"}});
  Gauge& reserved = registry.gauge("net", "reserved_bytes", "Payload bytes\\reserved\nnow.");
  Histogram& latency =
      registry.histogram("chunk", "write_seconds", "Write latency.", {{"class", "say \"1m\""}}, 3);
  Counter& plain = registry.counter("chunk", "commits_total", "Commits.");
  tcp.add(3);
  rdma.add();
  reserved.set(-4096);
  latency.record(500ns);
  latency.record(1500ns);
  latency.record(3ms);
  plain.add(0);
  EXPECT_EQ(registry.render_prometheus(),
            "# HELP mica_net_frames_total Frames sent.\n"
            "# TYPE mica_net_frames_total counter\n"
            "mica_net_frames_total{transport=\"tcp\"} 3\n"
            "mica_net_frames_total{transport=\"rdma\"} 1\n"
            "# HELP mica_net_reserved_bytes Payload bytes\\\\reserved\\nnow.\n"
            "# TYPE mica_net_reserved_bytes gauge\n"
            "mica_net_reserved_bytes -4096\n"
            "# HELP mica_chunk_write_seconds Write latency.\n"
            "# TYPE mica_chunk_write_seconds histogram\n"
            "mica_chunk_write_seconds_bucket{class=\"say \\\"1m\\\"\",le=\"1e-06\"} 1\n"
            "mica_chunk_write_seconds_bucket{class=\"say \\\"1m\\\"\",le=\"2e-06\"} 2\n"
            "mica_chunk_write_seconds_bucket{class=\"say \\\"1m\\\"\",le=\"4e-06\"} 2\n"
            "mica_chunk_write_seconds_bucket{class=\"say \\\"1m\\\"\",le=\"+Inf\"} 3\n"
            "mica_chunk_write_seconds_sum{class=\"say \\\"1m\\\"\"} 0.003002\n"
            "mica_chunk_write_seconds_count{class=\"say \\\"1m\\\"\"} 3\n"
            "# HELP mica_chunk_commits_total Commits.\n"
            "# TYPE mica_chunk_commits_total counter\n"
            "mica_chunk_commits_total 0\n");
}

TEST(MetricsTest, HistogramBoundsRenderInSeconds) {
  MetricsRegistry registry;
  registry.histogram("t", "x_seconds", "x", {}, 12);
  std::string text = registry.render_prometheus();
  EXPECT_NE(text.find("mica_t_x_seconds_bucket{le=\"1.6e-05\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("mica_t_x_seconds_bucket{le=\"0.002048\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("mica_t_x_seconds_sum 0\nmica_t_x_seconds_count 0\n"), std::string::npos);
}

TEST(MetricsTest, TheProcessRegistryIsOneObject) {
  Counter& a = metrics().counter("test", "process_total", "x");
  Counter& b = metrics().counter("test", "process_total", "x");
  EXPECT_EQ(&a, &b);
}

}  // namespace
}  // namespace mica
