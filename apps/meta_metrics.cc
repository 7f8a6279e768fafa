#include "apps/meta_metrics.h"

#include <string>

namespace mica::apps {
namespace {

#define MICA_METERED_NAME(name, Request, Reply) #name,
constexpr std::array<const char*, MeteredMetaService::kMethods> kMethodNames = {
    MICA_METERED_METHODS(MICA_METERED_NAME)};
#undef MICA_METERED_NAME

}  // namespace

MeteredMetaService::MeteredMetaService(meta::MetaServer* server)
    : server_(server), service_(net::Service::bind<meta::MetaService>(this)) {
  for (size_t i = 0; i < kMethods; ++i) {
    MetricLabels labels = server->metric_labels();
    labels.emplace_back("method", kMethodNames[i]);
    series_[i].requests = &metrics().counter("meta", "requests_total",
                                             "MetaService requests answered, by method.", labels);
    series_[i].errors = &metrics().counter(
        "meta", "request_errors_total", "MetaService requests answered with an error.", labels);
    series_[i].latency = &metrics().histogram(
        "meta", "request_seconds", "Time from a meta request's arrival to its answer.", labels);
  }
}

struct MetaMetrics::ShardGauges {
  Gauge* inodes = nullptr;
  Gauge* entries = nullptr;
  Gauge* sessions = nullptr;
  Gauge* gc_queued_files = nullptr;
  Gauge* gc_queued_bytes = nullptr;
  Gauge* gc_removed_files = nullptr;
  Gauge* used_bytes = nullptr;
};

MetaMetrics::MetaMetrics(meta::MetaServer* server) : server_(server) {
  coordinator_pending_ = &metrics().gauge("meta", "coordinator_pending",
                                          "Unfinished coordinator operations (shard 0's process).",
                                          server->metric_labels());
}

MetaMetrics::~MetaMetrics() = default;

MetaMetrics::ShardGauges& MetaMetrics::gauges_of(meta::ShardId shard) {
  std::unique_ptr<ShardGauges>& slot = shards_[shard];
  if (slot) return *slot;
  slot = std::make_unique<ShardGauges>();
  // The process's labels and the shard's, as on the shards' own series (meta/shard.h).
  MetricLabels labels = server_->metric_labels();
  labels.emplace_back("shard", std::to_string(shard));
  auto gauge = [&](const char* name, const char* help) {
    return &metrics().gauge("meta", name, help, labels);
  };
  slot->inodes = gauge("shard_inodes", "Inodes the shard holds.");
  slot->entries = gauge("shard_entries", "Directory entries the shard holds.");
  slot->sessions = gauge("shard_sessions", "Open handles (sessions) on the shard's files.");
  slot->gc_queued_files = gauge("shard_gc_queued_files", "Files queued for chunk removal.");
  slot->gc_queued_bytes = gauge("shard_gc_queued_bytes", "Bytes of the files queued for removal.");
  slot->gc_removed_files = gauge("shard_gc_removed_files", "Files whose chunks were removed.");
  slot->used_bytes = gauge("shard_used_bytes", "Bytes of the shard's kv/ environment.");
  return *slot;
}

Task<void> MetaMetrics::refresh() {
  auto asking = server_->status(meta::MetaStatusRequest{}, nullptr);
  Result<meta::MetaStatusReply> status = co_await std::move(asking);
  if (!status.ok()) co_return;  // a shard closing: the next refresh tries again
  coordinator_pending_->set(static_cast<int64_t>(status->coordinator_pending));
  for (const meta::ShardStatus& shard : status->shards) {
    ShardGauges& g = gauges_of(shard.shard);
    g.inodes->set(static_cast<int64_t>(shard.inodes));
    g.entries->set(static_cast<int64_t>(shard.entries));
    g.sessions->set(static_cast<int64_t>(shard.sessions));
    g.gc_queued_files->set(static_cast<int64_t>(shard.gc_queued_files));
    g.gc_queued_bytes->set(static_cast<int64_t>(shard.gc_queued_bytes));
    g.gc_removed_files->set(static_cast<int64_t>(shard.gc_removed_files));
    g.used_bytes->set(static_cast<int64_t>(shard.used_bytes));
  }
}

}  // namespace mica::apps
