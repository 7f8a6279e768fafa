// RoutingClient: keeps a server's or client's copy of the routing snapshot fresh.
//
// start() spawns a poller that long-polls MgmtdService::get_routing with the version it
// holds; mgmtd answers at once when its version differs and otherwise within the wait, so a
// change reaches every client within one round trip. Each newer snapshot is swapped in
// whole (current() hands out shared_ptrs to immutable snapshots, so a reader keeps a
// consistent one for as long as it likes). On errors the poller backs off (doubling from
// backoff_initial to backoff_max) and tries the next mgmtd address; it keeps serving the
// last snapshot all the while: mgmtd being down costs freshness, never availability.
// refresh() is for a caller that met a newer version than it holds (a server refusing a
// stale chain version, a heartbeat answer): it fetches now, and concurrent callers share one
// fetch. Snapshots only move forward: one older than the one held is ignored (logged).
//
// Thread rule: executor-bound. The client, its pool and every call belong to the executor
// that made it; start() is called from a task on it, stop() is awaited there before the
// client is destroyed. current() and version() never suspend; refresh(), wait_*() and
// stop() do. The pool must outlive the client.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "async/metrics.h"
#include "async/scope.h"
#include "async/sync.h"
#include "craq/mgmtd_client.h"
#include "craq/types.h"

namespace mica::craq {

struct RoutingClientOptions {
  std::vector<SocketAddress> mgmtd;  // tried in turn; at least one
  // How long one long poll asks mgmtd to wait for a change (mgmtd caps it), and how much
  // longer the call may take before the client gives up on it as lost.
  uint32_t poll_wait_ms = 10000;
  Duration poll_slack = std::chrono::seconds(2);
  // Time a refresh()'s fetch may take (connecting included).
  Duration fetch_timeout = std::chrono::seconds(5);
  // Waits after failed polls: backoff_initial, doubling, at most backoff_max.
  Duration backoff_initial = std::chrono::milliseconds(50);
  Duration backoff_max = std::chrono::seconds(2);
  // Called on the client's executor with every snapshot swapped in (never suspends).
  std::function<void(const std::shared_ptr<const RoutingSnapshot>&)> on_update;
  // Labels of the "routing" metrics; a process with several clients names them apart.
  MetricLabels metric_labels;
};

class RoutingClient {
 public:
  using SnapshotPtr = std::shared_ptr<const RoutingSnapshot>;

  RoutingClient(net::ConnectionPool* pool, RoutingClientOptions options);
  RoutingClient(const RoutingClient&) = delete;
  RoutingClient& operator=(const RoutingClient&) = delete;
  ~RoutingClient();  // asserts stop() has returned (or start() never ran)

  // Starts the poller on the calling executor.
  void start();
  // Stops the poller and any fetch in flight; waiters get kClosed. Idempotent.
  Task<void> stop();

  // The newest snapshot held; null before the first fetch.
  SnapshotPtr current() const { return current_; }
  uint64_t version() const { return current_ ? current_->version : 0; }

  // Makes sure the snapshot is at least at_least_version (0: whatever mgmtd has now): if
  // the one held is not, fetches now (joining a fetch in flight rather than starting a
  // second) until it is or the deadline passes (kTimedOut; the held snapshot is still
  // there). Returns the snapshot held afterwards.
  Task<Result<SnapshotPtr>> refresh(uint64_t at_least_version, TimePoint deadline);
  // Hints that mgmtd has `version` (from a heartbeat answer): starts a fetch when it is
  // newer than the snapshot held and none is in flight. Never suspends.
  void hint_version(uint64_t version);

  // Waits until the snapshot held satisfies predicate (checked at once and after every
  // swap) or the deadline (kTimedOut) or stop() (kClosed). Does not fetch by itself.
  Task<Result<SnapshotPtr>> wait_until(std::function<bool(const RoutingSnapshot&)> predicate,
                                       TimePoint deadline);
  Task<Result<SnapshotPtr>> wait_for_version(uint64_t at_least_version, TimePoint deadline);

  // Counts for tests (the metrics sum over every client of the process).
  uint64_t fetches() const { return fetches_; }
  uint64_t fetch_errors() const { return fetch_errors_; }
  uint64_t updates() const { return updates_; }

 private:
  // One refresh fetch that every concurrent refresh() waits for.
  struct Round {
    Event done;
    Status status;
  };
  Task<void> poll_loop();
  Task<void> fetch_round(std::shared_ptr<Round> round);
  // One get_routing call; installs a newer snapshot. Returns the call's status.
  Task<Status> fetch(uint32_t wait_ms, TimePoint deadline);
  void install(RoutingSnapshot snapshot);
  std::shared_ptr<Round> start_round();

  MgmtdClient mgmtd_;
  RoutingClientOptions options_;
  SnapshotPtr current_;
  std::shared_ptr<Round> round_;  // the refresh fetch in flight, if any
  Event changed_;                 // set and reset at every swap: wakes wait_until
  TaskScope scope_;
  bool started_ = false;
  bool stopped_ = false;
  uint64_t fetches_ = 0;
  uint64_t fetch_errors_ = 0;
  uint64_t updates_ = 0;
  Counter* fetches_metric_;
  Counter* fetch_errors_metric_;
  Counter* updates_metric_;
  Gauge* version_metric_;
};

}  // namespace mica::craq
