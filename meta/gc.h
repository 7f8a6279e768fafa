// GcWorker: the garbage collector of one shard — removes the chunks of files whose last
// link and last session went (the shard's "gc" table, meta/schema.h's GcRecord) through the
// storage service (docs/meta.md, "Garbage collection").
//
// Records are read in queue order (their keys are queue sequences). For each, the worker
// computes the file's chains from its layout and the routing snapshot and calls
// StorageClient::remove_from(chains, inode, 0); only once that succeeded is the record
// erased, so a crash or a stop at any point leaves the record to be collected again after
// the restart (removing chunks that are gone already succeeds). The rate is bounded: at most
// files_per_s removals start per second, at most files_in_flight_max run at once. A failed
// removal (storage unreachable, no routing yet) is retried after a backoff that doubles per
// failure, up to backoff_max_ms, while later records go on. The queue's length and bytes
// (counted from the table, new records picked up at every pass and at every status) and the
// files removed since the start are in ShardStatus and in the "meta" metrics gc_*.
//
// Ownership: the Shard owns its worker (Shard::open makes and starts it, Shard::close stops
// it first), so the server has nothing to wire. The worker runs only when the shard has a
// storage client; without one the queue waits (and is still counted). Thread rule: the
// shard's executor; start() there, stop() awaited there; no ReadTxn is held across a wait.
#pragma once

#include <map>
#include <set>
#include <string>

#include "async/metrics.h"
#include "async/scope.h"
#include "meta/meta_service.h"
#include "meta/schema.h"

namespace mica::meta {

class Shard;

struct GcOptions {
  uint32_t files_per_s = 200;         // removals started per second, at most
  uint32_t files_in_flight_max = 8;   // removals running at once, at most
  uint32_t poll_interval_ms = 1000;   // an idle worker looks for new records this often
  uint32_t backoff_initial_ms = 100;  // the first retry of a failed removal
  uint32_t backoff_max_ms = 30000;    // retries wait at most this long
  uint32_t call_timeout_ms = 60000;   // one removal's deadline at the storage service
  uint32_t scan_max = 4096;           // records one pass looks at
};

class GcWorker {
 public:
  GcWorker(Shard* shard, GcOptions options);
  GcWorker(const GcWorker&) = delete;
  GcWorker& operator=(const GcWorker&) = delete;
  ~GcWorker();  // asserts stop() has returned (or start() never ran)

  // Starts the collecting loop (when the shard has a storage client).
  void start();
  Task<void> stop();
  // Records were queued: look now rather than at the next poll.
  void wake() { wake_.set(); }

  // Picks up records committed since the last look (counts only; cheap: from the last
  // counted key on). Status and metrics call it.
  void refresh();
  uint64_t queued_files() const { return queued_files_; }
  uint64_t queued_bytes() const { return queued_bytes_; }
  uint64_t removed_files() const { return removed_files_; }  // since the start
  uint64_t failures() const { return failures_; }
  size_t in_flight() const { return in_flight_.size(); }
  size_t in_flight_peak() const { return in_flight_peak_; }
  // Fills status's gc_* fields (after a refresh()).
  void fill_status(ShardStatus* status);

 private:
  struct Retry {
    uint32_t failures = 0;
    TimePoint at;
  };
  struct Picked {
    uint64_t sequence = 0;
    GcRecord record;
  };
  Task<void> loop();
  // The next records to collect in queue order: counted, not in flight, not waiting for
  // a retry; at most `wanted`.
  std::vector<Picked> pick(size_t wanted);
  Task<void> collect(Picked picked);
  Task<Status> remove_chunks(const GcRecord& record);
  Task<Status> erase_record(uint64_t sequence);
  void failed(uint64_t sequence, const Status& status);
  TimePoint next_wakeup() const;
  void publish();

  Shard* shard_;
  GcOptions options_;
  TaskScope scope_;
  Event wake_;
  bool started_ = false;
  bool stopped_ = false;
  std::string counted_end_;  // the key of the last record counted ("" : none yet)
  bool counted_any_ = false;
  uint64_t queued_files_ = 0;
  uint64_t queued_bytes_ = 0;
  uint64_t removed_files_ = 0;
  uint64_t failures_ = 0;
  std::set<uint64_t> in_flight_;
  size_t in_flight_peak_ = 0;
  std::map<uint64_t, Retry> retries_;  // sequence -> its next try
  TimePoint next_start_{};             // the rate bound: no removal starts before it
  Gauge* queued_files_metric_;
  Gauge* queued_bytes_metric_;
  Counter* removed_metric_;
  Counter* removed_bytes_metric_;
  Counter* failures_metric_;
};

}  // namespace mica::meta
