// Mgmtd's admin handlers: create_chain_table, set_target_offline, replace_target and
// promote_target (craq/mgmtd.h). Each validates first, then writes one change.
#include <algorithm>
#include <map>
#include <set>

#include "async/log.h"
#include "craq/chain_table.h"
#include "craq/mgmtd.h"
#include "craq/target_state.h"

namespace mica::craq {

namespace {

Status not_found(std::string_view what, uint64_t id) {
  return Status(StatusCode::kNotFound, fmt::format("{} {} is unknown", what, id));
}

Status invalid(std::string message) {
  return Status(StatusCode::kInvalidArgument, std::move(message));
}

}  // namespace

// The targets a new table may use: in no chain, on a live storage node among `nodes` (all
// when empty), usable (reported up, not taken offline). Disks are numbered per node.
Result<std::vector<PlacementTarget>> Mgmtd::free_targets(const std::vector<NodeId>& nodes) const {
  std::set<NodeId> wanted(nodes.begin(), nodes.end());
  for (NodeId id : wanted) {
    auto node = nodes_.find(id);
    if (node == nodes_.end()) return not_found("node", id);
    if (node->second.kind != NodeKind::kStorage)
      return invalid(fmt::format("node {} is a {} node, not a storage node", id,
                                 node_kind_name(node->second.kind)));
  }
  TimePoint now = Executor::current()->now();
  std::map<std::pair<NodeId, std::string>, uint32_t> disks;
  std::map<NodeId, uint32_t> disks_per_node;
  std::vector<PlacementTarget> free;
  for (const auto& [id, target] : targets_) {
    const NodeInfo& node = nodes_.at(target.node);
    if (node.kind != NodeKind::kStorage || (!wanted.empty() && wanted.count(node.id) == 0))
      continue;
    const TargetLive* live = listed_now(target);
    bool usable = live != nullptr && live->local != LocalState::kOffline;
    if (target.chain != 0 || target.admin_offline || !usable || !node_alive(node.id, now)) continue;
    auto [disk, added] = disks.try_emplace({node.id, target.disk}, disks_per_node[node.id]);
    if (added) ++disks_per_node[node.id];
    free.push_back(PlacementTarget{.target = target.id, .node = node.id, .disk = disk->second});
  }
  return free;
}

Task<Result<CreateChainTableResponse>> Mgmtd::create_chain_table(CreateChainTableRequest request,
                                                                 net::CallContext* ctx) {
  (void)ctx;
  uint32_t replicas = request.replica_count != 0 ? request.replica_count : config_.replica_count;
  if (replicas == 0 || replicas > options_.replica_count_max)
    co_return invalid(
        fmt::format("replica count {} is outside 1..{}", replicas, options_.replica_count_max));
  if (request.nodes.size() > options_.nodes_max)
    co_return invalid(
        fmt::format("{} nodes named, at most {}", request.nodes.size(), options_.nodes_max));
  Status locked = co_await writer_.lock();
  MICA_ASSERT(locked.ok());
  MutexGuard guard(writer_);
  if (tables_records_.size() >= options_.tables_max)
    co_return Status(StatusCode::kResourceExhausted,
                     fmt::format("{} chain tables exist, at most {}", tables_records_.size(),
                                 options_.tables_max));
  CO_TRY_ASSIGN(std::vector<PlacementTarget> free, free_targets(request.nodes));
  std::set<NodeId> nodes_with_free;
  for (const PlacementTarget& target : free) nodes_with_free.insert(target.node);
  if (nodes_with_free.size() < replicas)
    co_return invalid(fmt::format(
        "{} live storage nodes have targets in no chain, a table of {} replicas needs {}",
        nodes_with_free.size(), replicas, replicas));
  PlacementInput input{.targets = std::move(free), .replica_count = replicas, .seed = request.seed};
  CO_TRY_ASSIGN(std::vector<std::vector<TargetId>> placed, generate_chains(input));
  if (placed.empty()) co_return invalid("the free targets make no chain");
  if (chains_.size() + placed.size() > options_.chains_max)
    co_return Status(StatusCode::kResourceExhausted,
                     fmt::format("{} chains exist, {} more would pass the limit of {}",
                                 chains_.size(), placed.size(), options_.chains_max));
  Change change;
  MgmtdCounters counters = counters_;
  ChainTable table{.id = counters.next_table++, .version = 1, .replica_count = replicas};
  for (const std::vector<TargetId>& members : placed) {
    ChainInfo chain{.id = counters.next_chain++, .version = 1};
    for (TargetId id : members) {
      chain.targets.push_back(ChainTarget{id, PublicState::kServing});
      TargetInfo joined = targets_.at(id);
      joined.chain = chain.id;
      change.targets.push_back(std::move(joined));
    }
    table.chains.push_back(chain.id);
    change.chains.push_back(std::move(chain));
  }
  change.tables.push_back(table);
  change.counters = counters;
  CreateChainTableResponse response{.table = table, .chains = change.chains};
  auto committing = commit(std::move(change));
  CO_TRY(co_await std::move(committing));
  MICA_LOG(Info, "mgmtd", "chain table {} created: {} chains of {} replicas", table.id,
           table.chains.size(), replicas);
  update_metrics();
  co_return response;
}

Task<Result<SetTargetOfflineResponse>> Mgmtd::set_target_offline(SetTargetOfflineRequest request,
                                                                 net::CallContext* ctx) {
  (void)ctx;
  Status locked = co_await writer_.lock();
  MICA_ASSERT(locked.ok());
  MutexGuard guard(writer_);
  auto it = targets_.find(request.target);
  if (it == targets_.end()) co_return not_found("target", request.target);
  if (it->second.admin_offline != request.offline) {
    Change change;
    TargetInfo updated = it->second;
    updated.admin_offline = request.offline;
    change.targets.push_back(std::move(updated));
    auto committing = commit(std::move(change));
    CO_TRY(co_await std::move(committing));
    MICA_LOG(Info, "mgmtd", "target {} {} by an admin", request.target,
             request.offline ? "taken offline" : "back from offline");
    kick();
  }
  co_return SetTargetOfflineResponse{.routing_version = counters_.routing_version};
}

// A serving or lastsrv target may leave its chain only while another serving target is
// effectively up: the published states lag up to a lease behind a node's death, and the
// leaving target could be the one live copy (free for a new table right after). Unless
// its own node reports without it: its disk is gone, it holds nothing.
Status Mgmtd::check_other_live_copy(const ChainInfo& chain, TargetId leaving) const {
  auto it = std::find_if(chain.targets.begin(), chain.targets.end(),
                         [&](const ChainTarget& m) { return m.target == leaving; });
  if (it == chain.targets.end() ||
      (it->state != PublicState::kServing && it->state != PublicState::kLastServing))
    return Status();
  const TargetInfo& target = targets_.at(leaving);
  auto node = node_live_.find(target.node);
  bool gone = node != node_live_.end() && node->second.reports > 0 && !listed_now(target);
  if (gone) return Status();
  TimePoint now = Executor::current()->now();
  for (const ChainTarget& member : chain.targets)
    if (member.target != leaving && member.state == PublicState::kServing &&
        effectively_up(member.target, now))
      return Status();
  return invalid(fmt::format(
      "target {} is {} in chain {} and no other serving target of it is up now: it may hold "
      "the only copy of the chain's writes",
      leaving, public_state_name(it->state), chain.id));
}

Task<Result<ReplaceTargetResponse>> Mgmtd::replace_target(ReplaceTargetRequest request,
                                                          net::CallContext* ctx) {
  (void)ctx;
  Status locked = co_await writer_.lock();
  MICA_ASSERT(locked.ok());
  MutexGuard guard(writer_);
  auto old_it = targets_.find(request.old_target);
  if (old_it == targets_.end()) co_return not_found("target", request.old_target);
  auto new_it = targets_.find(request.new_target);
  if (new_it == targets_.end()) co_return not_found("target", request.new_target);
  const TargetInfo& old_target = old_it->second;
  const TargetInfo& new_target = new_it->second;
  if (old_target.chain == 0)
    co_return invalid(fmt::format("target {} is in no chain", old_target.id));
  if (new_target.chain != 0)
    co_return invalid(
        fmt::format("target {} is already in chain {}", new_target.id, new_target.chain));
  const ChainInfo& chain = chains_.at(old_target.chain);
  for (const ChainTarget& member : chain.targets) {
    if (member.target == old_target.id) continue;
    auto member_it = targets_.find(member.target);
    if (member_it != targets_.end() && member_it->second.node == new_target.node)
      co_return invalid(
          fmt::format("target {} is on node {}, which already holds target {} of chain {}",
                      new_target.id, new_target.node, member.target, chain.id));
  }
  CO_TRY(check_other_live_copy(chain, old_target.id));
  CO_TRY_ASSIGN(ChainInfo next, craq::replace_target(chain, old_target.id, new_target.id));
  Change change;
  change.chains.push_back(next);
  TargetInfo leaving = old_target;
  leaving.chain = 0;
  leaving.restart_pending = false;  // it is decided in no chain any more
  TargetInfo joining = new_target;
  joining.chain = chain.id;
  change.targets = {std::move(leaving), std::move(joining)};
  auto committing = commit(std::move(change));
  CO_TRY(co_await std::move(committing));
  MICA_LOG(Info, "mgmtd", "chain {} v{}: target {} replaced by target {} (an admin)", next.id,
           next.version, request.old_target, request.new_target);
  metrics_.chain_changes->add();
  kick();
  co_return ReplaceTargetResponse{.chain = std::move(next)};
}

Task<Result<PromoteTargetResponse>> Mgmtd::promote_target(PromoteTargetRequest request,
                                                          net::CallContext* ctx) {
  (void)ctx;
  Status locked = co_await writer_.lock();
  MICA_ASSERT(locked.ok());
  MutexGuard guard(writer_);
  auto chain_it = chains_.find(request.chain);
  if (chain_it == chains_.end()) co_return not_found("chain", request.chain);
  const ChainInfo& chain = chain_it->second;
  TargetId lastsrv = 0;
  for (const ChainTarget& member : chain.targets)
    if (member.state == PublicState::kLastServing) lastsrv = member.target;
  // Only a target that is up now: one whose node is dead or that reports offline (a disk
  // still failing, a replacement that never synced and lost its data) would serve nothing.
  if (!effectively_up(request.target, Executor::current()->now()))
    co_return invalid(fmt::format(
        "target {} is not up (its node is not alive or does not report it online): a chain "
        "cannot be unblocked by it",
        request.target));
  CO_TRY_ASSIGN(ChainInfo next, craq::promote_target(chain, request.target));
  // mgmtd keeps no mark of which targets ever served in this chain: a replacement that
  // joined and never finished its resync is promoted too, and then serves what it holds.
  std::string warning = fmt::format(
      "chain {}: target {} promoted in place of the last serving target {}; every write "
      "acknowledged after target {} last served in this chain is lost (all of them, if it "
      "never finished a resync into the chain)",
      chain.id, request.target, lastsrv, request.target);
  Change change;
  change.chains.push_back(next);
  auto committing = commit(std::move(change));
  CO_TRY(co_await std::move(committing));
  MICA_LOG(Warn, "mgmtd", "{} (an admin's promote)", warning);
  metrics_.chain_changes->add();
  kick();
  co_return PromoteTargetResponse{.chain = std::move(next), .warning = std::move(warning)};
}

}  // namespace mica::craq
