// Mgmtd's update round (every chain's next state from what mgmtd observes, all changes in
// one write) and its metrics (craq/mgmtd.h; docs/mgmtd.md "Metrics and health").
#include "async/log.h"
#include "craq/mgmtd.h"
#include "craq/target_state.h"

namespace mica::craq {

namespace {

uint64_t distance(uint64_t a, uint64_t b) {
  return a > b ? a - b : b - a;
}

}  // namespace

// Targets whose reported capacity or usage differs from their record: all of them, or only
// those that moved by more than capacity_persist_delta_bytes.
std::vector<TargetInfo> Mgmtd::capacity_changes(bool all) const {
  std::vector<TargetInfo> changed;
  for (const auto& [id, target] : targets_) {
    auto live = target_live_.find(target.id);
    if (live == target_live_.end()) continue;
    uint64_t moved = std::max(distance(live->second.capacity_bytes, target.capacity_bytes),
                              distance(live->second.used_bytes, target.used_bytes));
    if (moved == 0 || (!all && moved <= options_.capacity_persist_delta_bytes)) continue;
    TargetInfo updated = target;
    updated.capacity_bytes = live->second.capacity_bytes;
    updated.used_bytes = live->second.used_bytes;
    changed.push_back(std::move(updated));
  }
  return changed;
}

static std::string describe_members(const ChainInfo& chain) {
  std::string text;
  for (const ChainTarget& member : chain.targets)
    text += fmt::format("{}{} {}", text.empty() ? "" : ", ", member.target,
                        public_state_name(member.state));
  return text;
}

// What the target's node said of it in its latest report since open(); null when the node
// has not reported since or left the target out (then it counts as offline).
const Mgmtd::TargetLive* Mgmtd::listed_now(const TargetInfo& target) const {
  auto node = node_live_.find(target.node);
  auto live = target_live_.find(target.id);
  if (node == node_live_.end() || node->second.reports == 0 || live == target_live_.end())
    return nullptr;
  return live->second.listed_in == node->second.reports ? &live->second : nullptr;
}

// What the round knows of one target. false when its node has not reported since mgmtd's
// restart and is still within its grace: then the chain waits for the report. A target
// its reporting node left out counts as offline.
bool Mgmtd::observe(TargetId id, TimePoint now, TargetObservation* out) const {
  out->target = id;
  auto target = targets_.find(id);
  if (target == targets_.end()) return true;  // counts as offline
  out->admin_offline = target->second.admin_offline;
  out->restarted = target->second.restart_pending;
  out->heartbeat_age = heartbeat_age(target->second.node, now);
  const TargetLive* live = listed_now(target->second);
  if (live == nullptr) {
    auto node = node_live_.find(target->second.node);
    bool heard = node != node_live_.end() && node->second.reports > 0;
    return heard || out->heartbeat_age > lease();
  }
  out->local = live->local;
  out->reported_chain_version = live->reported_chain_version;
  return true;
}

bool Mgmtd::effectively_up(TargetId id, TimePoint now) const {
  TargetObservation observation;
  if (!observe(id, now, &observation)) return false;  // not heard since open(): unknown
  return effective_local_state(observation, lease()) != LocalState::kOffline;
}

// Every chain's next state; the changed ones, with any capacity changes, in one write.
Task<Status> Mgmtd::run_round() {
  Status locked = co_await writer_.lock();
  MICA_ASSERT(locked.ok());
  MutexGuard guard(writer_);
  TimePoint now = Executor::current()->now();
  Change change;
  std::vector<TargetId> restarts_decided;  // cleared in this round's write
  std::vector<TargetObservation> observations;
  for (const auto& [id, chain] : chains_) {
    observations.assign(chain.targets.size(), TargetObservation{});
    bool ready = true;
    for (size_t i = 0; i < chain.targets.size(); ++i)
      ready &= observe(chain.targets[i].target, now, &observations[i]);
    if (!ready) continue;
    for (const TargetObservation& o : observations)
      if (o.restarted) restarts_decided.push_back(o.target);
    ChainInfo next = next_chain(chain, observations, lease());
    if (next.version == chain.version) continue;
    MICA_LOG(Info, "mgmtd", "chain {} v{} -> v{}: [{}] -> [{}]", chain.id, chain.version,
             next.version, describe_members(chain), describe_members(next));
    change.chains.push_back(std::move(next));
  }
  // Capacity rides along with any change, or goes alone once it moved far enough.
  change.targets = capacity_changes(!change.empty() || !restarts_decided.empty());
  for (TargetId id : restarts_decided) change.target(targets_.at(id)).restart_pending = false;
  if (!change.empty()) {
    size_t chain_changes = change.chains.size();
    auto committing = commit(std::move(change));
    Status s = co_await std::move(committing);
    if (!s.ok()) co_return s;
    metrics_.chain_changes->add(chain_changes);
  }
  update_metrics();
  co_return Status();
}

void Mgmtd::register_metrics() {
  MetricsRegistry& r = metrics();
  const char* nodes_help = "Nodes known to mgmtd, by liveness (heartbeat within the lease).";
  metrics_.nodes_alive = &r.gauge("mgmtd", "nodes", nodes_help, {{"state", "alive"}});
  metrics_.nodes_dead = &r.gauge("mgmtd", "nodes", nodes_help, {{"state", "dead"}});
  for (int i = 0; i < 5; ++i) {
    auto state = static_cast<PublicState>(i);
    metrics_.targets[i] = &r.gauge("mgmtd", "targets", "Targets in chains, by public state.",
                                   {{"state", std::string(public_state_name(state))}});
  }
  const char* chains_help =
      "Chains by health: full (every target serving), degraded (some serving), blocked (none "
      "serving).";
  metrics_.chains_full = &r.gauge("mgmtd", "chains", chains_help, {{"health", "full"}});
  metrics_.chains_degraded = &r.gauge("mgmtd", "chains", chains_help, {{"health", "degraded"}});
  metrics_.chains_blocked = &r.gauge("mgmtd", "chains", chains_help, {{"health", "blocked"}});
  metrics_.routing_version =
      &r.gauge("mgmtd", "routing_version", "The version of the routing mgmtd publishes.");
  metrics_.heartbeats =
      &r.counter("mgmtd", "heartbeats_total", "Heartbeats accepted from registered nodes.");
  metrics_.registrations =
      &r.counter("mgmtd", "registrations_total", "Node registrations accepted.");
  metrics_.chain_changes =
      &r.counter("mgmtd", "chain_changes_total", "Chain changes decided by update rounds.");
  metrics_.routing_fetches =
      &r.counter("mgmtd", "routing_fetches_total", "get_routing calls (long polls included).");
}

void Mgmtd::update_metrics() {
  TimePoint now = Executor::current()->now();
  int64_t alive = 0;
  for (const auto& [id, node] : nodes_) alive += node_alive(node.id, now) ? 1 : 0;
  metrics_.nodes_alive->set(alive);
  metrics_.nodes_dead->set(static_cast<int64_t>(nodes_.size()) - alive);
  int64_t by_state[5] = {};
  int64_t full = 0, degraded = 0, blocked = 0;
  for (const auto& [id, chain] : chains_) {
    int64_t serving = 0;
    for (const ChainTarget& member : chain.targets) {
      ++by_state[static_cast<int>(member.state)];
      serving += member.state == PublicState::kServing ? 1 : 0;
    }
    if (serving == 0)
      ++blocked;
    else if (serving == static_cast<int64_t>(chain.targets.size()))
      ++full;
    else
      ++degraded;
  }
  for (int i = 0; i < 5; ++i) metrics_.targets[i]->set(by_state[i]);
  metrics_.chains_full->set(full);
  metrics_.chains_degraded->set(degraded);
  metrics_.chains_blocked->set(blocked);
  metrics_.routing_version->set(static_cast<int64_t>(counters_.routing_version));
}

}  // namespace mica::craq
