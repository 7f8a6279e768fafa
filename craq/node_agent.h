// NodeAgent: what every server process (storage, meta, and the stand-ins of tests) runs to
// be a member of the cluster — it registers with mgmtd and heartbeats its targets' states.
//
// The caller gives the node's stable id and random identity (craq/node_identity.h: id 0
// until mgmtd assigned one) and a callback that returns the current target reports. The
// agent registers, retrying with backoff (doubling, bounded) while mgmtd is down, and hands
// the answer (the node id and the targets' ids) to on_registered so the caller can persist
// them. It then heartbeats every config.heartbeat_interval_ms (the interval mgmtd's answers
// carry) with fresh reports, filling in the target ids mgmtd assigned to identities. It
// registers again when mgmtd refuses a heartbeat (kNotFound: mgmtd forgot the node or a
// target; kPermissionDenied: identity mismatch) and when the reports' set of target
// identities changed (a disk replaced, a target added): a target mgmtd does not know needs
// an id first. When mgmtd does not know the node id at all (its state was re-initialised),
// the agent registers as a new node and on_registered hands the caller its new id. A heartbeat
// answer that names a newer routing version is passed to the RoutingClient (hint_version) and to
// on_routing_version.
//
// Thread rule: executor-bound. The agent, its pool and its callbacks run on the executor
// that made it; start() is called from a task on it and stop() awaited there before the
// agent is destroyed. Callbacks must not block; on_registered may suspend (it returns a
// task). The pool and the routing client must outlive the agent.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "async/metrics.h"
#include "async/scope.h"
#include "async/sync.h"
#include "craq/mgmtd_client.h"

namespace mica::craq {

class RoutingClient;

struct NodeAgentOptions {
  std::vector<SocketAddress> mgmtd;  // tried in turn; at least one
  NodeKind kind = NodeKind::kStorage;
  std::string host_name;
  std::string rpc_address;
  std::vector<std::string> tags;
  // A meta node's shards (RegisterRequest::meta_shards).
  std::vector<uint32_t> meta_shards;
  NodeId node = 0;  // 0: ask mgmtd for an id
  std::string identity;
  // The targets' current reports (target 0 where no id is known yet); never suspends.
  std::function<std::vector<TargetReport>()> reports;
  // After every successful registration; the caller persists the ids. A failure is logged
  // and the callback runs again at the next registration.
  std::function<Task<Status>(const RegisterResponse&)> on_registered;
  std::function<void(uint64_t routing_version)> on_routing_version;
  RoutingClient* routing = nullptr;  // hinted with newer routing versions, if set
  // Time one register call may take; a heartbeat gets the heartbeat interval at most.
  Duration call_timeout = std::chrono::seconds(2);
  Duration backoff_initial = std::chrono::milliseconds(50);
  Duration backoff_max = kMgmtdReconnectBackoffMax;
  // Used until the first answer from mgmtd carries the cluster's interval.
  Duration heartbeat_interval = std::chrono::seconds(1);
  MetricLabels metric_labels;  // of the "node_agent" metrics
};

class NodeAgent {
 public:
  NodeAgent(net::ConnectionPool* pool, NodeAgentOptions options);
  NodeAgent(const NodeAgent&) = delete;
  NodeAgent& operator=(const NodeAgent&) = delete;
  ~NodeAgent();  // asserts stop() has returned (or start() never ran)

  // Starts registering and heartbeating on the calling executor.
  void start();
  // Stops the loop (a call in flight is cancelled). Idempotent.
  Task<void> stop();
  // Heartbeats now rather than at the next interval (say, a target's state changed).
  void kick() { kick_.set(); }

  // Waits until the agent is registered (kTimedOut at the deadline).
  Task<Status> wait_registered(TimePoint deadline);

  NodeId node() const { return node_; }
  bool registered() const { return registered_; }
  const ClusterConfig& config() const { return config_; }
  Duration heartbeat_interval() const;
  // The ids mgmtd gave the targets, by identity (as of the last registration).
  const std::map<std::string, TargetId>& target_ids() const { return target_ids_; }

  // Until when mgmtd counts this node alive for sure: the send time of the last heartbeat it
  // accepted plus the cluster's lease (mgmtd measures from receipt, which is no earlier).
  // Before any accepted heartbeat: TimePoint::min(). A target past it may have been dropped
  // from its chain without hearing so, and must not serve reads.
  TimePoint lease_expiry() const;
  // The newest routing version mgmtd has named to this agent.
  uint64_t known_routing_version() const { return routing_version_; }

  uint64_t registrations() const { return registrations_; }
  uint64_t heartbeats() const { return heartbeats_; }
  uint64_t heartbeat_errors() const { return heartbeat_errors_; }

 private:
  Task<void> run();
  // Registers, retrying with backoff until it succeeds or the agent stops.
  Task<void> register_until_done();
  Task<Status> register_once();
  Task<void> heartbeat_once();
  // Reports with the known target ids filled in; false when their identities differ from
  // those of the last registration.
  bool fill_reports(std::vector<TargetReport>* reports) const;
  void learn(const ClusterConfig& config, uint64_t routing_version);

  MgmtdClient mgmtd_;
  NodeAgentOptions options_;
  NodeId node_;
  bool registered_ = false;
  bool forgotten_ = false;  // mgmtd refused our ids (kNotFound, kPermissionDenied): ask as node 0
  ClusterConfig config_;
  bool have_config_ = false;
  uint64_t routing_version_ = 0;
  std::optional<TimePoint> accepted_sent_;  // the send time of the last accepted heartbeat
  std::map<std::string, TargetId> target_ids_;
  Event kick_;
  Event registered_event_;
  TaskScope scope_;
  bool started_ = false;
  bool stopped_ = false;
  uint64_t registrations_ = 0;
  uint64_t heartbeats_ = 0;
  uint64_t heartbeat_errors_ = 0;
  Counter* registrations_metric_;
  Counter* heartbeats_metric_;
  Counter* heartbeat_errors_metric_;
};

}  // namespace mica::craq
