#include "apps/storage_metrics.h"

#include <fmt/format.h>

#include <array>

namespace mica::apps {
namespace {

// A counter that mirrors a monotonically growing count kept elsewhere.
struct Mirrored {
  Counter* counter = nullptr;
  uint64_t seen = 0;
  void advance(uint64_t now) {
    if (now > seen) counter->add(now - seen);
    seen = now;
  }
};

}  // namespace

struct StorageMetrics::Series {
  std::array<Mirrored, 10> counters;
  Gauge* chunks = nullptr;
  Gauge* used_bytes = nullptr;
  Gauge* capacity_bytes = nullptr;
  Gauge* resync_running = nullptr;
  Gauge* resync_chunks_done = nullptr;
  Gauge* resync_chunks_total = nullptr;
  Gauge* resync_bytes_done = nullptr;
  Gauge* resync_bytes_total = nullptr;
  Mirrored scrub_passes;
  Mirrored scrub_chunks_checked;
  Mirrored scrub_corrupt_found;
};

StorageMetrics::StorageMetrics(craq::StorageServer* server) : server_(server) {}
StorageMetrics::~StorageMetrics() = default;

StorageMetrics::Series& StorageMetrics::series_of(craq::TargetId target) {
  std::unique_ptr<Series>& slot = series_[target];
  if (slot) return *slot;
  slot = std::make_unique<Series>();
  MetricLabels labels{{"target", fmt::format("{}", target)}};
  MetricsRegistry& r = metrics();
  auto counter = [&](const char* name, const char* help) {
    return Mirrored{.counter = &r.counter("storage_target", name, help, labels), .seen = 0};
  };
  auto gauge = [&](const char* name, const char* help) {
    return &r.gauge("storage_target", name, help, labels);
  };
  slot->counters = {
      counter("updates_total", "Client updates this target applied as head."),
      counter("update_bytes_total", "Payload bytes of updates applied."),
      counter("forwards_total", "Updates forwarded to this target by its predecessor."),
      counter("reads_total", "Reads served."),
      counter("read_bytes_total", "Bytes served by reads."),
      counter("dirty_reads_total", "Reads answered dirty (a pending version not committed)."),
      counter("version_queries_total", "Apportioned queries sent to the tail."),
      counter("busy_refusals_total", "Updates refused for the in-flight limit (kBusy)."),
      counter("duplicates_total", "Retried updates recognised by their update tag."),
      counter("checksum_mismatches_total", "Successor chunk checksums that differed."),
  };
  slot->chunks = gauge("chunks", "Chunks the target holds.");
  slot->used_bytes = gauge("used_bytes", "Bytes the target's chunks use.");
  slot->capacity_bytes = gauge("capacity_bytes", "Bytes the target may hold.");
  slot->resync_running = gauge("resync_running", "1 while this target resyncs its successor.");
  slot->resync_chunks_done = gauge("resync_chunks_done", "Chunks of the running resync done.");
  slot->resync_chunks_total = gauge("resync_chunks_total", "Chunks the running resync copies.");
  slot->resync_bytes_done = gauge("resync_bytes_done", "Bytes of the running resync done.");
  slot->resync_bytes_total = gauge("resync_bytes_total", "Bytes the running resync copies.");
  slot->scrub_passes = counter("scrub_passes_total", "Completed scrub passes.");
  slot->scrub_chunks_checked = counter("scrub_chunks_checked_total", "Chunks the scrub read.");
  slot->scrub_corrupt_found = counter("scrub_corrupt_total", "Corrupt chunks the scrub found.");
  return *slot;
}

void StorageMetrics::refresh() {
  for (const auto& target : server_->targets().all()) {
    if (target->id() == 0) continue;  // not registered yet: no name for its series
    Series& s = series_of(target->id());
    const craq::TargetCounters& c = target->counters();
    const std::array<uint64_t, 10> now = {
        c.updates,     c.update_bytes,    c.forwards,      c.reads,      c.read_bytes,
        c.dirty_reads, c.version_queries, c.busy_refusals, c.duplicates, c.checksum_mismatches};
    for (size_t i = 0; i < now.size(); ++i) s.counters[i].advance(now[i]);
  }
  craq::ProgressResponse progress = server_->progress();
  for (const craq::TargetProgress& p : progress.targets) {
    if (p.target == 0) continue;
    Series& s = series_of(p.target);
    s.chunks->set(static_cast<int64_t>(p.chunks));
    s.used_bytes->set(static_cast<int64_t>(p.used_bytes));
    s.capacity_bytes->set(static_cast<int64_t>(p.capacity_bytes));
    s.resync_running->set(p.resync_running ? 1 : 0);
    s.resync_chunks_done->set(static_cast<int64_t>(p.resync_chunks_done));
    s.resync_chunks_total->set(static_cast<int64_t>(p.resync_chunks_total));
    s.resync_bytes_done->set(static_cast<int64_t>(p.resync_bytes_done));
    s.resync_bytes_total->set(static_cast<int64_t>(p.resync_bytes_total));
    s.scrub_passes.advance(p.scrub_passes);
    s.scrub_chunks_checked.advance(p.scrub_chunks_checked);
    s.scrub_corrupt_found.advance(p.scrub_corrupt_found);
  }
}

}  // namespace mica::apps
