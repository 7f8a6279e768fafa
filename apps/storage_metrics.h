// StorageMetrics: the per-target series mica-storage exposes on /metrics, refreshed from
// the StorageServer's own counts (craq/storage_target.h TargetCounters, and
// StorageServer::progress() for resync and scrub).
//
// Per target (label target="<id>", registered once the target has an id): updates, bytes
// written, forwards, reads, bytes read, dirty reads, version queries, busy refusals,
// duplicates, checksum mismatches (counters, advanced by what changed since the last
// refresh), and gauges for chunks, used and capacity bytes, resync chunks and bytes done and
// total, whether a resync runs, scrub passes, chunks checked and corrupt chunks found. The
// request latency histograms come from craq/storage_node.cc. Executor-bound like the
// server it reads: refresh() runs on the server's executor, never suspends; the server
// outlives this object.
#pragma once

#include <map>
#include <memory>

#include "async/metrics.h"
#include "craq/storage_server.h"

namespace mica::apps {

class StorageMetrics {
 public:
  explicit StorageMetrics(craq::StorageServer* server);
  StorageMetrics(const StorageMetrics&) = delete;
  StorageMetrics& operator=(const StorageMetrics&) = delete;
  ~StorageMetrics();

  void refresh();

 private:
  struct Series;
  Series& series_of(craq::TargetId target);

  craq::StorageServer* server_;
  std::map<craq::TargetId, std::unique_ptr<Series>> series_;
};

}  // namespace mica::apps
