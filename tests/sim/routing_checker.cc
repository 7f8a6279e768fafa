#include "tests/sim/routing_checker.h"

#include <fmt/format.h>

#include <set>
#include <string>
#include <vector>

#include "craq/target_state.h"
#include "net/serde.h"

namespace mica::sim {

using craq::ChainInfo;
using craq::ChainTarget;
using craq::PublicState;
using craq::RoutingSnapshot;

namespace {

// FNV-1a over the snapshot's encoding: equal content, equal hash.
uint64_t content_hash(const RoutingSnapshot& routing) {
  std::vector<std::byte> bytes = net::encode(routing);
  uint64_t hash = 0xcbf29ce484222325ull;
  for (std::byte b : bytes) hash = (hash ^ uint64_t(b)) * 0x100000001b3ull;
  return hash;
}

bool has_serving(const ChainInfo& chain) {
  for (const ChainTarget& member : chain.targets)
    if (member.state == PublicState::kServing) return true;
  return false;
}

bool same_members(const std::vector<ChainTarget>& a, const std::vector<ChainTarget>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].target != b[i].target || a[i].state != b[i].state) return false;
  return true;
}

std::string members_text(const std::vector<ChainTarget>& members) {
  std::string text;
  for (const ChainTarget& m : members)
    text += fmt::format(" {}:{}", m.target, craq::public_state_name(m.state));
  return text;
}

}  // namespace

// One chain version names one list of members in one set of states, whoever saw it.
void RoutingChecker::check_chain_content(const RoutingSnapshot& routing, std::string_view who) {
  for (const ChainInfo& chain : routing.chains) {
    auto [it, fresh] = chain_contents_.try_emplace({chain.id, chain.version}, chain.targets);
    counts_.chain_contents += fresh;
    if (!fresh && !same_members(it->second, chain.targets))
      result_->fail(fmt::format("{}: routing {} chain {} v{} is [{} ] but was [{} ] before", who,
                                routing.version, chain.id, chain.version,
                                members_text(chain.targets), members_text(it->second)));
  }
}

void RoutingChecker::observe_report(craq::NodeId node, craq::TargetId target,
                                    const craq::TargetReport& report) {
  ++counts_.reports;
  if (report.local == craq::LocalState::kUpToDate)
    up_to_date_.emplace(target, report.reported_chain_version, node);
}

// A target that was syncing at chain version v in the previous decision and serves now must
// have been reported up to date at v by its node.
void RoutingChecker::check_syncs_done(const RoutingSnapshot& routing) {
  if (!last_decision_) return;
  for (const ChainInfo& chain : routing.chains) {
    const ChainInfo* before = craq::find_chain(*last_decision_, chain.id);
    if (before == nullptr) continue;
    for (const ChainTarget& member : chain.targets) {
      if (member.state != PublicState::kServing) continue;
      bool was_syncing = false;
      for (const ChainTarget& old : before->targets)
        was_syncing |= old.target == member.target && old.state == PublicState::kSyncing;
      if (!was_syncing) continue;
      ++counts_.syncs_done;
      const craq::TargetInfo* target = craq::find_target(routing, member.target);
      craq::NodeId node = target != nullptr ? target->node : 0;
      if (up_to_date_.count({member.target, before->version, node}) == 0)
        result_->fail(fmt::format(
            "routing {}: chain {} v{} serves target {}, syncing at v{}, but mgmtd received no "
            "up-to-date report at v{} for it from its node {}",
            routing.version, chain.id, chain.version, member.target, before->version,
            before->version, node));
    }
  }
}

void RoutingChecker::check_structure(const RoutingSnapshot& routing, std::string_view who) {
  for (const ChainInfo& chain : routing.chains) {
    std::string broken = craq::check_chain_invariants(chain);
    if (!broken.empty())
      result_->fail(fmt::format("{}: routing {} chain {} v{}: {}", who, routing.version, chain.id,
                                chain.version, broken));
    std::set<craq::NodeId> nodes;
    for (const ChainTarget& member : chain.targets) {
      const craq::TargetInfo* target = craq::find_target(routing, member.target);
      if (target == nullptr) {
        result_->fail(fmt::format("{}: routing {} chain {} names unknown target {}", who,
                                  routing.version, chain.id, member.target));
        continue;
      }
      if (target->chain != chain.id)
        result_->fail(fmt::format("{}: routing {} target {} is in chain {} but names chain {}", who,
                                  routing.version, target->id, chain.id, target->chain));
      if (!nodes.insert(target->node).second)
        result_->fail(fmt::format("{}: routing {} chain {} has two targets of node {}", who,
                                  routing.version, chain.id, target->node));
    }
  }
}

// A chain's version may not be lower than at any older routing version, nor higher than at
// any newer one.
void RoutingChecker::check_order(uint64_t version, const Seen& seen, std::string_view who) {
  auto newer = seen_.upper_bound(version);
  auto older = seen_.lower_bound(version);
  const Seen* before = older == seen_.begin() ? nullptr : &std::prev(older)->second;
  const Seen* after = newer == seen_.end() ? nullptr : &newer->second;
  for (const auto& [chain, chain_version] : seen.chain_versions) {
    if (before != nullptr) {
      auto it = before->chain_versions.find(chain);
      if (it != before->chain_versions.end() && it->second > chain_version)
        result_->fail(fmt::format("{}: chain {} is at v{} in routing {} but was at v{} before", who,
                                  chain, chain_version, version, it->second));
    }
    if (after != nullptr) {
      auto it = after->chain_versions.find(chain);
      if (it != after->chain_versions.end() && it->second < chain_version)
        result_->fail(fmt::format("{}: chain {} is at v{} in routing {}, newer than later v{}", who,
                                  chain, chain_version, version, it->second));
    }
  }
  if (before != nullptr)
    for (const auto& [chain, chain_version] : before->chain_versions)
      if (seen.chain_versions.count(chain) == 0)
        result_->fail(fmt::format("{}: chain {} vanished in routing {}", who, chain, version));
}

void RoutingChecker::observe(const RoutingSnapshot& routing, std::string_view who) {
  ++counts_.snapshots;
  check_structure(routing, who);
  check_chain_content(routing, who);
  Seen seen;
  seen.content_hash = content_hash(routing);
  for (const ChainInfo& chain : routing.chains) seen.chain_versions[chain.id] = chain.version;
  auto known = seen_.find(routing.version);
  if (known != seen_.end()) {
    if (known->second.content_hash != seen.content_hash)
      result_->fail(fmt::format("{}: routing version {} seen with two different contents", who,
                                routing.version));
    return;
  }
  check_order(routing.version, seen, who);
  seen_.emplace(routing.version, std::move(seen));
  ++counts_.versions;
}

void RoutingChecker::observe_decision(std::shared_ptr<const RoutingSnapshot> decided,
                                      const HealthyFn& healthy) {
  const RoutingSnapshot& routing = *decided;
  ++counts_.decisions;
  check_syncs_done(routing);
  for (const ChainInfo& chain : routing.chains) {
    for (const ChainTarget& member : chain.targets) {
      counts_.syncing_targets += member.state == PublicState::kSyncing;
      counts_.lastsrv_targets += member.state == PublicState::kLastServing;
    }
    if (chain.targets.empty() || has_serving(chain)) continue;
    ++counts_.blocked_chains;
    const ChainInfo* before =
        last_decision_ ? craq::find_chain(*last_decision_, chain.id) : nullptr;
    if (before == nullptr || !has_serving(*before)) continue;  // blocked already, or new
    for (const ChainTarget& member : before->targets) {
      if (member.state != PublicState::kServing) continue;
      const craq::TargetInfo* target = craq::find_target(routing, member.target);
      if (target != nullptr && healthy(target->node))
        result_->fail(fmt::format(
            "routing {}: chain {} has no serving target left, though target {} served at v{} "
            "and its node {} stayed alive and connected",
            routing.version, chain.id, member.target, before->version, target->node));
    }
  }
  last_decision_ = std::move(decided);
}

}  // namespace mica::sim
