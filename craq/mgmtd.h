// Mgmtd: the cluster manager — membership, target states, chain tables and the versioned
// routing snapshot that every server and client caches (docs/mgmtd.md).
//
// Mgmtd owns the cluster's durable state in a kv::Env (tables "mgmtd_*", keys big-endian
// ids, values the serde encoding of the craq/types.h records) and mirrors it in memory.
// Every change is one kv WriteRequest (all or nothing) that includes the routing version
// bump; it is applied to memory and published only once that write is durable, and changes
// are serialised by one async mutex, so two handlers never interleave a read-modify-write.
// What is not durable lives in memory only: heartbeat times (mgmtd's monotonic clock),
// reported local states and chain versions, capacity between persisted thresholds. A node's
// restart is durable (TargetInfo::restart_pending) until the round that acts on it.
//
// Threads: one executor owns everything — the one open() ran on; handlers (the RpcServer's
// executor must be the same), the update loop and routing() run there. open(), stop() and
// every handler may suspend; routing() and service() never do. The Env must outlive the
// Mgmtd; stop() must have returned before the Mgmtd is destroyed, and the RpcServer that
// serves service() must be shut down before that.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "async/metrics.h"
#include "async/scope.h"
#include "async/sync.h"
#include "async/task.h"
#include "craq/chain_table.h"
#include "craq/mgmtd_service.h"
#include "craq/target_state.h"
#include "craq/types.h"
#include "kv/kv.h"
#include "net/rpc_service.h"

namespace mica::craq {

// The on-disk format this code writes; open() refuses a newer one.
inline constexpr uint32_t kMgmtdFormatVersion = 1;
// Tables open() opens in the Env (count them in kv::EnvOptions::tables_max; every open()
// on the same Env opens them again).
inline constexpr uint32_t kMgmtdTables = 6;

struct MgmtdOptions {
  // The cluster config; it replaces the stored one at open() when they differ (the
  // operator's file is the source of truth for it).
  ClusterConfig config;
  Duration update_interval = std::chrono::milliseconds(500);  // chain-state rounds
  // After open(), how long every known node has to heartbeat before its lease counts;
  // nullopt: the lease timeout. A restarted mgmtd thus never marks live nodes offline.
  std::optional<Duration> restart_grace;
  uint32_t routing_wait_ms_max = 30000;  // long-poll cap of get_routing
  // A target's capacity or usage is persisted (and published) when it moved by more than
  // this since the last persisted value, or with the next durable change.
  uint64_t capacity_persist_delta_bytes = uint64_t{1} << 30;
  // Limits on what requests may create or carry.
  uint32_t nodes_max = 4096;
  uint32_t targets_max = 1u << 20;
  uint32_t targets_per_node_max = 1024;
  uint32_t chains_max = 1u << 20;
  uint32_t tables_max = 1024;
  uint32_t tags_max = 16;
  uint32_t meta_shards_per_node_max = 1u << 16;
  uint32_t string_bytes_max = 256;  // identities, host names, addresses, disks, tags
  uint32_t replica_count_max = 16;
  // Wall clock in ms since the epoch for NodeInfo::registered_at_ms (people only); null
  // writes 0, so simulated runs stay deterministic.
  uint64_t (*wall_clock_ms)() = nullptr;
  // Test hooks (empty in production), called on mgmtd's executor and never suspending:
  // before a change's kv write with the routing version it will publish, and on every
  // publish with the new snapshot (the crash tests check "durable before published"); on
  // every target report received (registration or heartbeat) with the reporting node and the
  // target's id (the simulator checks "serving only after an up-to-date report").
  std::function<void(uint64_t version)> on_write_start;
  std::function<void(const RoutingSnapshot& routing)> on_publish;
  std::function<void(NodeId node, TargetId target, const TargetReport& report)> on_report;
};

// Ids handed out so far, the routing version and the format (one kv record).
struct MgmtdCounters {
  uint32_t format_version = kMgmtdFormatVersion;
  uint64_t routing_version = 0;
  NodeId next_node = 1;
  TargetId next_target = 1;
  ChainId next_chain = 1;
  ChainTableId next_table = 1;
  static constexpr std::string_view kTypeName = "MgmtdCounters";
  MICA_FIELDS(MgmtdCounters, format_version, routing_version, next_node, next_target, next_chain,
              next_table)
};

class Mgmtd {
 public:
  // Loads the state from env (creating its tables and initialising an empty one, at routing
  // version 1). kCorruption when a record does not decode, kNotSupported for a newer format.
  static Task<Result<std::unique_ptr<Mgmtd>>> open(kv::Env* env, MgmtdOptions options);
  Mgmtd(const Mgmtd&) = delete;
  Mgmtd& operator=(const Mgmtd&) = delete;
  ~Mgmtd();

  // MgmtdService bound to this; add it to an RpcServer on the same executor.
  net::Service* service() { return &service_; }
  // Starts the update loop on the calling executor.
  void start();
  // Stops the loop and answers pending and later long polls at once; waits for the loop's
  // task. Call it before shutting down the server, so long polls do not hold the drain.
  Task<void> stop();
  // The current snapshot (rebuilt only when something changed).
  std::shared_ptr<const RoutingSnapshot> routing() const { return routing_; }
  uint64_t routing_version() const { return counters_.routing_version; }
  const MgmtdOptions& options() const { return options_; }
  // For the HTTP /health check (net/http_server.h): ok while the update loop runs and its
  // last round could write; otherwise why not.
  Status health() const;

  // Runs one chain-state round now (what the loop does every update_interval).
  Task<Status> run_round();

  // The MgmtdService methods (craq/mgmtd_service.h). In-process callers (the simulator's
  // scenarios, tests) may call them directly with ctx null: no deadline.
  Task<Result<RegisterResponse>> register_node(RegisterRequest request, net::CallContext* ctx);
  Task<Result<HeartbeatResponse>> heartbeat(HeartbeatRequest request, net::CallContext* ctx);
  Task<Result<GetRoutingResponse>> get_routing(GetRoutingRequest request, net::CallContext* ctx);
  Task<Result<StatusResponse>> status(StatusRequest request, net::CallContext* ctx);
  Task<Result<CreateChainTableResponse>> create_chain_table(CreateChainTableRequest request,
                                                            net::CallContext* ctx);
  Task<Result<SetTargetOfflineResponse>> set_target_offline(SetTargetOfflineRequest request,
                                                            net::CallContext* ctx);
  Task<Result<ReplaceTargetResponse>> replace_target(ReplaceTargetRequest request,
                                                     net::CallContext* ctx);
  Task<Result<PromoteTargetResponse>> promote_target(PromoteTargetRequest request,
                                                     net::CallContext* ctx);

 private:
  struct Tables {
    kv::Table nodes = 0, targets = 0, chains = 0, chain_tables = 0, config = 0, counters = 0;
  };
  // What mgmtd knows of a node beyond its record (memory only).
  struct NodeLive {
    TimePoint last_heartbeat{};
    // Registrations and heartbeats since open(): each lists every target of the node, so
    // a target missing from the latest one is gone (a replaced or vanished disk).
    uint64_t reports = 0;
    size_t listed = 0;  // targets the latest report listed
  };
  // What mgmtd knows of a target beyond its record (memory only).
  struct TargetLive {
    LocalState local = LocalState::kOffline;
    uint64_t reported_chain_version = 0;
    uint64_t capacity_bytes = 0;
    uint64_t used_bytes = 0;
    // The node's report (NodeLive::reports) that last listed it; 0: none since open().
    uint64_t listed_in = 0;
  };
  // One durable change: the records it writes and the counters after it (the routing
  // version is bumped by commit()).
  struct Change {
    std::vector<NodeInfo> nodes;
    std::vector<TargetInfo> targets;
    std::vector<ChainInfo> chains;
    std::vector<ChainTable> tables;
    std::optional<ClusterConfig> config;
    // The id counters after the change (nullopt: unchanged); commit() bumps the version.
    std::optional<MgmtdCounters> counters;
    bool empty() const {
      return nodes.empty() && targets.empty() && chains.empty() && tables.empty() && !config;
    }
    // The record of `current` in this change, added as a copy when not yet in it (the
    // reference is valid until the next record is added).
    TargetInfo& target(const TargetInfo& current) {
      for (TargetInfo& target : targets)
        if (target.id == current.id) return target;
      return targets.emplace_back(current);
    }
  };
  struct Metrics {
    Gauge* nodes_alive;
    Gauge* nodes_dead;
    Gauge* targets[5];  // by PublicState, plus targets in no chain count nowhere
    Gauge* chains_full;
    Gauge* chains_degraded;
    Gauge* chains_blocked;
    Gauge* routing_version;
    Counter* heartbeats;
    Counter* registrations;
    Counter* chain_changes;
    Counter* routing_fetches;
  };

  Mgmtd(kv::Env* env, MgmtdOptions options, Tables tables);
  Status load();
  void start_grace();
  template <class T>
  Status load_table(kv::ReadTxn* txn, kv::Table table, std::map<uint64_t, T>* out);
  void register_metrics();
  void update_metrics();

  // Writes change with the version bump (the caller holds writer_), then applies it.
  Task<Status> commit(Change change);
  void apply(const Change& change);
  void publish();
  void kick() { kick_.set(); }
  Task<void> update_loop();

  Status check_register(const RegisterRequest& request) const;
  // Claims a meta node's shards: refused when another live node serves one, and a dead
  // node's claimed shard is removed from its record in change.
  Status claim_meta_shards(const RegisterRequest& request, NodeId node, Change* change) const;
  Result<std::vector<TargetId>> match_targets(const RegisterRequest& request, NodeId node,
                                              Change* change, MgmtdCounters* counters);
  void note_reports(NodeId node, const std::vector<TargetReport>& reports,
                    const std::vector<TargetId>& ids);
  Result<std::vector<PlacementTarget>> free_targets(const std::vector<NodeId>& nodes) const;
  Status check_heartbeat(const HeartbeatRequest& request) const;
  Status check_other_live_copy(const ChainInfo& chain, TargetId leaving) const;
  Duration heartbeat_age(NodeId node, TimePoint now) const;
  bool observe(TargetId id, TimePoint now, TargetObservation* out) const;
  const TargetLive* listed_now(const TargetInfo& target) const;
  // The target's node is alive and reports it online or up to date, not admin-offline nor
  // restarted: what the next round would see, whatever the published state says.
  bool effectively_up(TargetId id, TimePoint now) const;
  bool node_alive(NodeId node, TimePoint now) const;
  Duration lease() const;
  std::vector<TargetInfo> capacity_changes(bool all) const;
  Status check_string(std::string_view what, const std::string& text, bool required) const;

  kv::Env* env_;
  MgmtdOptions options_;
  Tables tables_;
  net::Service service_;

  // The durable state, mirrored (ordered maps: every iteration is in id order).
  MgmtdCounters counters_;
  ClusterConfig config_;
  std::map<uint64_t, NodeInfo> nodes_;
  std::map<uint64_t, TargetInfo> targets_;
  std::map<uint64_t, ChainInfo> chains_;
  std::map<uint64_t, ChainTable> tables_records_;
  std::map<std::string, TargetId> target_by_identity_;
  std::map<std::string, NodeId> node_by_identity_;
  // Memory only.
  std::map<NodeId, NodeLive> node_live_;
  std::map<TargetId, TargetLive> target_live_;

  std::shared_ptr<const RoutingSnapshot> routing_;
  Mutex writer_;   // one change at a time
  Event changed_;  // set and reset on every publish: wakes long polls
  Event kick_;     // asks the loop for a round now
  bool stopping_ = false;
  bool running_ = false;  // the update loop is started and not stopped
  Status last_round_;     // of the update loop
  TaskScope scope_;
  Metrics metrics_{};
};

}  // namespace mica::craq
