#include "async/metrics.h"

#include <fmt/format.h>

#include <iterator>

#include "async/assert.h"

namespace mica {

namespace detail {
namespace {

// Shards owned by no live thread. Never destroyed: threads may exit after static destructors.
struct ShardPool {
  std::mutex mutex;
  uint32_t next = 0;
  std::vector<uint32_t> free;
};
ShardPool& shard_pool() {
  static ShardPool* pool = new ShardPool();
  return *pool;
}

thread_local uint32_t t_shard = UINT32_MAX;

// Gives an owned shard back when its thread exits. The pool's mutex orders the exiting
// thread's last stores before the next owner's first load. Updates made later in the exit
// (by other thread-locals' destructors) go to the shared shard.
struct ShardRelease {
  bool armed = false;
  ~ShardRelease() {
    if (!armed || t_shard == kMetricSharedShard) return;
    ShardPool& pool = shard_pool();
    std::lock_guard lock(pool.mutex);
    pool.free.push_back(t_shard);
    t_shard = kMetricSharedShard;
  }
};
thread_local ShardRelease t_release;

uint32_t acquire_shard() {
  ShardPool& pool = shard_pool();
  std::lock_guard lock(pool.mutex);
  if (!pool.free.empty()) {
    uint32_t shard = pool.free.back();
    pool.free.pop_back();
    return shard;
  }
  return pool.next < kMetricSharedShard ? pool.next++ : kMetricSharedShard;
}

}  // namespace

uint32_t metric_shard() {
  if (t_shard == UINT32_MAX) [[unlikely]] {
    t_shard = acquire_shard();
    t_release.armed = true;  // constructs the thread-local, so its destructor runs at exit
  }
  return t_shard;
}
}  // namespace detail

uint64_t Counter::value() const {
  uint64_t total = 0;
  for (const Shard& shard : shards_) total += shard.value.load(std::memory_order_relaxed);
  return total;
}

Histogram::Histogram(uint32_t buckets) : buckets_(buckets) {
  MICA_ASSERT_MSG(buckets >= 1 && buckets <= kHistogramBucketsMax, "histogram bucket count");
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot out;
  for (const Shard& shard : shards_) {
    for (uint32_t i = 0; i <= buckets_; ++i)
      out.counts[i] += shard.buckets[i].load(std::memory_order_relaxed);
    out.sum_ns += shard.sum_ns.load(std::memory_order_relaxed);
  }
  for (uint32_t i = 0; i <= buckets_; ++i) out.count += out.counts[i];
  return out;
}

// One series: a label set and its metric (exactly one of the three is set).
struct MetricsRegistry::Series {
  MetricLabels labels;
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
};

struct MetricsRegistry::Family {
  std::string name;  // mica_<module>_<name>
  std::string help;
  Kind kind;
  std::vector<std::unique_ptr<Series>> series;
};

namespace {

bool valid_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9') || name.starts_with("__")) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}

void check_labels(const MetricLabels& labels, bool histogram) {
  for (size_t i = 0; i < labels.size(); ++i) {
    MICA_ASSERT_MSG(valid_label_name(labels[i].first), "invalid metric label name");
    MICA_ASSERT_MSG(!histogram || labels[i].first != "le", "'le' is a histogram's own label");
    for (size_t j = 0; j < i; ++j)
      MICA_ASSERT_MSG(labels[j].first != labels[i].first, "metric label given twice");
  }
}

using Out = std::back_insert_iterator<std::string>;

// HELP text escapes backslash and newline; label values also escape the double quote.
void append_escaped(std::string* out, std::string_view text, bool quote) {
  for (char c : text) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (quote && c == '"') {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

// `{a="x",b="y"}`, with an extra trailing pair (the histogram's le) if given; nothing
// when there are no labels at all.
void append_labels(std::string* out, const MetricLabels& labels, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return;
  out->push_back('{');
  bool first = true;
  auto pair = [&](std::string_view name, std::string_view value) {
    if (!first) out->push_back(',');
    first = false;
    out->append(name);
    out->append("=\"");
    append_escaped(out, value, true);
    out->push_back('"');
  };
  for (const auto& [name, value] : labels) pair(name, value);
  if (!extra_name.empty()) pair(extra_name, extra_value);
  out->push_back('}');
}

std::string_view type_name(int kind) {
  static constexpr std::string_view kNames[] = {"counter", "gauge", "histogram"};
  return kNames[kind];
}

void append_histogram(std::string* out, const std::string& name, const MetricLabels& labels,
                      const Histogram& histogram) {
  Histogram::Snapshot snap = histogram.snapshot();
  uint64_t cumulative = 0;
  for (uint32_t i = 0; i <= histogram.buckets(); ++i) {
    cumulative += snap.counts[i];
    std::string le = i == histogram.buckets()
                         ? std::string("+Inf")
                         : fmt::format("{}", static_cast<double>(uint64_t{1} << i) / 1e6);
    out->append(name).append("_bucket");
    append_labels(out, labels, "le", le);
    fmt::format_to(Out(*out), " {}\n", cumulative);
  }
  out->append(name).append("_sum");
  append_labels(out, labels);
  fmt::format_to(Out(*out), " {}\n", static_cast<double>(snap.sum_ns) / 1e9);
  out->append(name).append("_count");
  append_labels(out, labels);
  fmt::format_to(Out(*out), " {}\n", cumulative);
}

}  // namespace

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Series& MetricsRegistry::find_or_add(Kind kind, std::string_view module,
                                                      std::string_view name, std::string_view help,
                                                      const MetricLabels& labels,
                                                      uint32_t buckets) {
  MICA_ASSERT_MSG(valid_name(module) && valid_name(name), "invalid metric name");
  check_labels(labels, kind == Kind::kHistogram);
  std::string full = fmt::format("mica_{}_{}", module, name);
  std::lock_guard lock(mutex_);
  Family* family = nullptr;
  for (const auto& f : families_)
    if (f->name == full) family = f.get();
  if (family == nullptr) {
    families_.push_back(std::make_unique<Family>(Family{full, std::string(help), kind, {}}));
    family = families_.back().get();
  }
  MICA_ASSERT_MSG(family->kind == kind, "metric registered again with another kind");
  for (const auto& s : family->series) {
    if (s->labels != labels) continue;
    MICA_ASSERT_MSG(kind != Kind::kHistogram || s->histogram->buckets() == buckets,
                    "histogram registered again with other buckets");
    return *s;
  }
  MICA_ASSERT_MSG(series_ < kMetricsSeriesMax, "metrics registry full (kMetricsSeriesMax)");
  auto series = std::make_unique<Series>();
  series->labels = labels;
  if (kind == Kind::kCounter) series->counter = std::make_unique<Counter>();
  if (kind == Kind::kGauge) series->gauge = std::make_unique<Gauge>();
  if (kind == Kind::kHistogram) series->histogram = std::make_unique<Histogram>(buckets);
  family->series.push_back(std::move(series));
  ++series_;
  return *family->series.back();
}

Counter& MetricsRegistry::counter(std::string_view module, std::string_view name,
                                  std::string_view help, const MetricLabels& labels) {
  return *find_or_add(Kind::kCounter, module, name, help, labels, 0).counter;
}

Gauge& MetricsRegistry::gauge(std::string_view module, std::string_view name, std::string_view help,
                              const MetricLabels& labels) {
  return *find_or_add(Kind::kGauge, module, name, help, labels, 0).gauge;
}

Histogram& MetricsRegistry::histogram(std::string_view module, std::string_view name,
                                      std::string_view help, const MetricLabels& labels,
                                      uint32_t buckets) {
  MICA_ASSERT_MSG(buckets >= 1 && buckets <= kHistogramBucketsMax, "histogram bucket count");
  return *find_or_add(Kind::kHistogram, module, name, help, labels, buckets).histogram;
}

std::string MetricsRegistry::render_prometheus() const {
  std::string out;
  std::lock_guard lock(mutex_);
  for (const auto& family : families_) {
    out.append("# HELP ").append(family->name).push_back(' ');
    append_escaped(&out, family->help, false);
    out.append("\n# TYPE ").append(family->name).push_back(' ');
    out.append(type_name(static_cast<int>(family->kind))).push_back('\n');
    for (const auto& s : family->series) {
      if (family->kind == Kind::kHistogram) {
        append_histogram(&out, family->name, s->labels, *s->histogram);
        continue;
      }
      out.append(family->name);
      append_labels(&out, s->labels);
      if (s->counter) fmt::format_to(Out(out), " {}\n", s->counter->value());
      if (s->gauge) fmt::format_to(Out(out), " {}\n", s->gauge->value());
    }
  }
  return out;
}

size_t MetricsRegistry::series() const {
  std::lock_guard lock(mutex_);
  return series_;
}

MetricsRegistry& metrics() {
  // Never destroyed: metrics may be updated by threads still running at exit.
  static MetricsRegistry* registry = new MetricsRegistry();
  return *registry;
}

}  // namespace mica
