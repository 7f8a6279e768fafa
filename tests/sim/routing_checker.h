// RoutingChecker: the invariants of mgmtd's routing that the mgmtd_membership scenario checks
// on every routing snapshot it observes (mgmtd's own, and every routing client's copy).
//
// Per snapshot: every chain keeps craq's structural invariants (check_chain_invariants: no
// target twice, at most one syncing target, states in order, ...), no two of a chain's
// targets sit on one node, and a chain's targets name it as their chain. Across snapshots:
// one routing version always has the same content (a restarted mgmtd publishes what it
// published before), one (chain, chain version) always has the same members in the same
// states, and a chain's version never goes down as the routing version goes up, whichever
// observer saw which snapshot in which order. For every snapshot mgmtd publishes, in
// publication order (observe_decision): a chain never loses its last serving target while
// one of the targets that served in the previous snapshot has a healthy node (alive,
// connected to mgmtd both ways, for the scenario's whole health window), as the scenario's
// oracle says; and a target goes from syncing to serving only after the running mgmtd
// received an up-to-date report for it at the chain's version from its node
// (observe_report). Failures go to the ScenarioResult. Plain code: one thread, never
// suspends.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string_view>
#include <tuple>
#include <vector>

#include "craq/mgmtd_service.h"
#include "craq/types.h"
#include "tests/sim/scenario.h"

namespace mica::sim {

struct RoutingCheckCounts {
  uint64_t snapshots = 0;        // observed, all observers
  uint64_t versions = 0;         // distinct routing versions
  uint64_t decisions = 0;        // mgmtd snapshots checked by observe_decision
  uint64_t blocked_chains = 0;   // chains seen with no serving target (allowed ones)
  uint64_t syncing_targets = 0;  // chain members seen syncing (in decisions)
  uint64_t lastsrv_targets = 0;  // chain members seen lastsrv (in decisions)
  uint64_t chain_contents = 0;   // distinct (chain, chain version) pairs
  uint64_t reports = 0;          // target reports mgmtd received
  uint64_t syncs_done = 0;       // syncing -> serving moves checked against the reports
};

class RoutingChecker {
 public:
  using HealthyFn = std::function<bool(craq::NodeId)>;

  explicit RoutingChecker(ScenarioResult* result) : result_(result) {}

  // Structural and cross-snapshot checks; `who` names the observer in a failure.
  void observe(const craq::RoutingSnapshot& routing, std::string_view who);
  // mgmtd's own snapshot, newer than the last one passed here: the blocking rule.
  void observe_decision(std::shared_ptr<const craq::RoutingSnapshot> routing,
                        const HealthyFn& healthy);
  // A target report the running mgmtd received from `node` for `target`.
  void observe_report(craq::NodeId node, craq::TargetId target, const craq::TargetReport& report);
  // mgmtd restarted: it knows no report from before.
  void mgmtd_restarted() { up_to_date_.clear(); }

  const RoutingCheckCounts& counts() const { return counts_; }

 private:
  struct Seen {
    uint64_t content_hash = 0;
    std::map<craq::ChainId, uint64_t> chain_versions;
  };
  void check_structure(const craq::RoutingSnapshot& routing, std::string_view who);
  void check_order(uint64_t version, const Seen& seen, std::string_view who);
  void check_chain_content(const craq::RoutingSnapshot& routing, std::string_view who);
  void check_syncs_done(const craq::RoutingSnapshot& routing);

  ScenarioResult* result_;
  std::map<uint64_t, Seen> seen_;  // by routing version
  std::map<std::pair<craq::ChainId, uint64_t>, std::vector<craq::ChainTarget>> chain_contents_;
  // (target, chain version, node) of every up-to-date report the running mgmtd received.
  std::set<std::tuple<craq::TargetId, uint64_t, craq::NodeId>> up_to_date_;
  std::shared_ptr<const craq::RoutingSnapshot> last_decision_;
  RoutingCheckCounts counts_;
};

}  // namespace mica::sim
