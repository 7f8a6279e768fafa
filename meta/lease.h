// LeaseTable: the leases of one mica-meta process — one per client, renewing every session
// (open handle) the client holds on any shard of the process (docs/meta.md, "Sessions and
// lengths").
//
// renew() grants or extends a client's lease by lease_ms and answers how many sessions the
// client holds here; opened()/closed() keep that count as the shards open and end
// sessions, and opened() also grants a lease, so a client that opens before it renews is
// still under one. start() scans every shard's sessions table: each client found there gets
// one lease length of grace from now (its lease state did not survive the restart). A timer
// loop then checks every check_interval: a client whose lease lapsed loses its sessions,
// ended by Shard::end_sessions on every shard of the process (each on its own executor);
// a shard whose end_sessions fails (the storage service unreachable) is retried at the next
// check. Time is the executor's clock, so the table works in the simulator's virtual time.
//
// Thread rule: the table belongs to the executor start() runs on; its loop runs there and
// hops to each shard's executor for that shard's calls. renew(), opened(), closed(),
// holds() and clients() may be called from any executor of the process (a mutex guards the
// map; nothing suspends under it). add_shard() before start(); stop() awaited before
// destruction and before the shards close. The shards outlive the table's loop.
#pragma once

#include <map>
#include <mutex>
#include <vector>

#include "async/executor.h"
#include "async/metrics.h"
#include "async/scope.h"
#include "meta/meta_service.h"

namespace mica::meta {

class Shard;

struct LeaseOptions {
  uint32_t lease_ms = 10000;          // a lease lasts this long after its last renewal
  uint32_t check_interval_ms = 1000;  // how often lapsed leases are looked for
  uint32_t clients_max = 1 << 20;     // leases held at once (more: renew is kBusy)
  MetricLabels metric_labels;
};

class LeaseTable {
 public:
  explicit LeaseTable(LeaseOptions options);
  LeaseTable(const LeaseTable&) = delete;
  LeaseTable& operator=(const LeaseTable&) = delete;
  ~LeaseTable();  // asserts stop() has returned (or start() never ran)

  // A shard of the process and the executor it runs on; before start().
  void add_shard(Shard* shard, Executor* executor);

  // Grants every client with sessions on disk one lease of grace and starts the loop.
  // Suspends (hops to each shard's executor for its scan).
  Task<Status> start();
  Task<void> stop();

  // The client's lease runs lease_ms from now. kBusy when the table is full.
  Result<LeaseReply> renew(ClientId client);
  // A shard opened a session of client (granting a lease if it held none) / ended one.
  void opened(ClientId client);
  void closed(ClientId client);

  bool holds(ClientId client) const;  // a lease that has not lapsed (or is being ended)
  size_t clients() const;
  uint32_t lease_ms() const { return options_.lease_ms; }

  // Ends the sessions of every client whose lease lapsed by now (what the loop runs each
  // check_interval; public for tests that drive time themselves). Suspends.
  Task<void> expire_lapsed();

 private:
  struct Lease {
    TimePoint expiry;
    uint32_t sessions = 0;
    bool ending = false;  // lapsed: its sessions are being ended
  };
  struct ShardRef {
    Shard* shard;
    Executor* executor;
  };
  Task<void> loop();
  // Ends client's sessions on every shard; ok when every shard succeeded.
  Task<Status> end_client(ClientId client);
  Task<Status> end_on(ShardRef shard, ClientId client);
  Task<Result<std::map<ClientId, uint32_t>>> scan_on(ShardRef shard);
  TimePoint now() const;

  LeaseOptions options_;
  std::vector<ShardRef> shards_;
  mutable std::mutex mutex_;
  std::map<ClientId, Lease> leases_;  // ordered: expiry runs in client order (deterministic)
  Executor* home_ = nullptr;
  TaskScope scope_;
  bool started_ = false;
  bool stopped_ = false;
  Gauge* clients_metric_;
  Counter* expired_metric_;
};

}  // namespace mica::meta
