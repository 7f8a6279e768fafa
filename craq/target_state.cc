// Target states: next_chain() and the admin operations as pure functions (craq/target_state.h;
// the rules and why they are safe: docs/mgmtd.md "Target states").
#include "craq/target_state.h"

#include <algorithm>
#include <tuple>
#include <vector>

#include <fmt/format.h>

namespace mica::craq {
namespace {

// A state's place in chain order (the enum's values are wire values, not this order).
int order_rank(PublicState state) {
  switch (state) {
    case PublicState::kServing:
      return 0;
    case PublicState::kLastServing:
      return 1;
    case PublicState::kSyncing:
      return 2;
    case PublicState::kWaiting:
      return 3;
    case PublicState::kOffline:
      return 4;
  }
  return 5;
}

bool is_up(LocalState state) {
  return state != LocalState::kOffline;
}

// One target's fate in one round of next_chain().
struct Decision {
  TargetId target = 0;
  PublicState before = PublicState::kOffline;
  PublicState after = PublicState::kOffline;
};

const TargetObservation* find_observation(std::span<const TargetObservation> observations,
                                          TargetId target) {
  for (const TargetObservation& observation : observations)
    if (observation.target == target) return &observation;
  return nullptr;
}

// The rules that look at one target alone; the chain-wide ones follow in next_chain().
PublicState decide_alone(PublicState before, const TargetObservation* observation,
                         uint64_t chain_version, Duration lease_timeout) {
  LocalState local =
      observation ? effective_local_state(*observation, lease_timeout) : LocalState::kOffline;
  bool up = is_up(local);
  switch (before) {
    case PublicState::kServing:
      return up ? PublicState::kServing : PublicState::kOffline;
    case PublicState::kLastServing:
      return up ? PublicState::kServing : PublicState::kLastServing;
    case PublicState::kSyncing: {
      if (!up) return PublicState::kOffline;
      // Only a claim made for the current version: an older one predates the resync.
      bool done =
          local == LocalState::kUpToDate && observation->reported_chain_version == chain_version;
      return done ? PublicState::kServing : PublicState::kSyncing;
    }
    case PublicState::kWaiting:
    case PublicState::kOffline:
      return up ? PublicState::kWaiting : PublicState::kOffline;
  }
  return PublicState::kOffline;
}

// True when a target that served before this round serves after it: only such a target
// holds every acknowledged write for certain.
bool still_served(const std::vector<Decision>& decisions) {
  return std::any_of(decisions.begin(), decisions.end(), [](const Decision& d) {
    return d.after == PublicState::kServing &&
           (d.before == PublicState::kServing || d.before == PublicState::kLastServing);
  });
}

// Every serving target was lost this round (or the chain was already blocked): the chain
// waits for one lastsrv target, the one already waited for or else the head-most of the
// serving targets that failed. A syncing target may lack acknowledged writes: it goes
// offline, even if it claims to be up to date.
void block_on_last_serving(std::vector<Decision>& decisions) {
  auto is = [](PublicState state) {
    return [state](const Decision& d) { return d.before == state; };
  };
  auto last = std::find_if(decisions.begin(), decisions.end(), is(PublicState::kLastServing));
  if (last == decisions.end())
    last = std::find_if(decisions.begin(), decisions.end(), is(PublicState::kServing));
  for (auto it = decisions.begin(); it != decisions.end(); ++it) {
    if (it == last)
      it->after = PublicState::kLastServing;
    else if (it->before == PublicState::kSyncing || it->after == PublicState::kLastServing)
      it->after = PublicState::kOffline;
  }
}

// With a serving target and nobody syncing, the first target that was already waiting at
// the start of the round starts its resync; the others keep waiting their turn. A lastsrv
// target still down beside a serving one (only in a malformed chain) is merely offline.
void start_one_sync(std::vector<Decision>& decisions) {
  for (Decision& d : decisions)
    if (d.after == PublicState::kLastServing) d.after = PublicState::kOffline;
  auto syncing = [](const Decision& d) { return d.after == PublicState::kSyncing; };
  if (std::any_of(decisions.begin(), decisions.end(), syncing)) return;
  for (Decision& d : decisions) {
    if (d.before == PublicState::kWaiting && d.after == PublicState::kWaiting) {
      d.after = PublicState::kSyncing;
      return;
    }
  }
}

// Chain order: by state; within a state the targets that kept it first, in their old
// order, then those that entered it this round in their old order (so a new serving
// target is the new tail and a failed one moves to the end).
std::vector<ChainTarget> ordered(std::vector<Decision> decisions) {
  auto key = [](const Decision& d) {
    return std::make_tuple(order_rank(d.after), d.after == d.before ? 0 : 1);
  };
  std::stable_sort(decisions.begin(), decisions.end(),
                   [&](const Decision& a, const Decision& b) { return key(a) < key(b); });
  std::vector<ChainTarget> targets;
  targets.reserve(decisions.size());
  for (const Decision& d : decisions) targets.push_back({.target = d.target, .state = d.after});
  return targets;
}

ChainInfo with_targets(const ChainInfo& chain, std::vector<ChainTarget> targets) {
  if (targets == chain.targets) return chain;
  ChainInfo next = chain;
  next.version = chain.version + 1;
  next.targets = std::move(targets);
  return next;
}

Status refuse(std::string why) {
  return Status(StatusCode::kInvalidArgument, std::move(why));
}

}  // namespace

LocalState effective_local_state(const TargetObservation& observation, Duration lease_timeout) {
  if (observation.admin_offline || observation.restarted ||
      observation.heartbeat_age > lease_timeout)
    return LocalState::kOffline;
  return observation.local;
}

ChainInfo next_chain(const ChainInfo& chain, std::span<const TargetObservation> observations,
                     Duration lease_timeout) {
  std::vector<Decision> decisions;
  decisions.reserve(chain.targets.size());
  for (const ChainTarget& t : chain.targets) {
    const TargetObservation* observation = find_observation(observations, t.target);
    decisions.push_back(
        {.target = t.target,
         .before = t.state,
         .after = decide_alone(t.state, observation, chain.version, lease_timeout)});
  }
  if (!decisions.empty()) {
    if (still_served(decisions))
      start_one_sync(decisions);
    else
      block_on_last_serving(decisions);
  }
  return with_targets(chain, ordered(std::move(decisions)));
}

Result<ChainInfo> promote_target(const ChainInfo& chain, TargetId target) {
  auto has = [&](PublicState state) {
    return std::any_of(chain.targets.begin(), chain.targets.end(),
                       [&](const ChainTarget& t) { return t.state == state; });
  };
  if (has(PublicState::kServing))
    return refuse(fmt::format("chain {} has a serving target: nothing to promote", chain.id));
  if (!has(PublicState::kLastServing))
    return refuse(fmt::format("chain {} has no lastsrv target: it is not blocked", chain.id));
  auto it = std::find_if(chain.targets.begin(), chain.targets.end(),
                         [&](const ChainTarget& t) { return t.target == target; });
  if (it == chain.targets.end())
    return refuse(fmt::format("target {} is not in chain {}", target, chain.id));
  if (it->state != PublicState::kWaiting && it->state != PublicState::kOffline)
    return refuse(
        fmt::format("target {} is {} in chain {}: only a waiting or offline one can "
                    "be promoted",
                    target, public_state_name(it->state), chain.id));
  std::vector<ChainTarget> targets{{.target = target, .state = PublicState::kServing}};
  std::vector<ChainTarget> demoted;
  for (const ChainTarget& t : chain.targets) {
    if (t.target == target) continue;
    if (t.state == PublicState::kLastServing)
      demoted.push_back({.target = t.target, .state = PublicState::kOffline});
    else
      targets.push_back(t);
  }
  targets.insert(targets.end(), demoted.begin(), demoted.end());
  return with_targets(chain, std::move(targets));
}

Result<ChainInfo> replace_target(const ChainInfo& chain, TargetId old, TargetId replacement) {
  auto find = [&](TargetId id) {
    return std::find_if(chain.targets.begin(), chain.targets.end(),
                        [&](const ChainTarget& t) { return t.target == id; });
  };
  auto it = find(old);
  if (it == chain.targets.end())
    return refuse(fmt::format("target {} is not in chain {}", old, chain.id));
  if (replacement == 0) return refuse("the replacement target id is 0 (none)");
  if (find(replacement) != chain.targets.end())
    return refuse(fmt::format("target {} is already in chain {}", replacement, chain.id));
  if (it->state == PublicState::kLastServing)
    return refuse(
        fmt::format("target {} is chain {}'s lastsrv target: the only copy of "
                    "its acknowledged writes",
                    old, chain.id));
  auto serving = std::count_if(chain.targets.begin(), chain.targets.end(),
                               [](const auto& t) { return t.state == PublicState::kServing; });
  if (it->state == PublicState::kServing && serving == 1)
    return refuse(fmt::format("target {} is chain {}'s only serving target", old, chain.id));
  std::vector<ChainTarget> targets;
  for (const ChainTarget& t : chain.targets)
    if (t.target != old) targets.push_back(t);
  targets.push_back({.target = replacement, .state = PublicState::kOffline});
  return with_targets(chain, std::move(targets));
}

std::string check_chain_invariants(const ChainInfo& chain) {
  int count[5] = {0, 0, 0, 0, 0};  // by order_rank
  int previous_rank = 0;
  for (size_t i = 0; i < chain.targets.size(); ++i) {
    const ChainTarget& t = chain.targets[i];
    int rank = order_rank(t.state);
    if (rank > 4) return fmt::format("target {} has an unknown state", t.target);
    if (t.target == 0) return fmt::format("position {} holds target id 0 (none)", i);
    for (size_t j = 0; j < i; ++j)
      if (chain.targets[j].target == t.target)
        return fmt::format("target {} appears twice", t.target);
    if (rank < previous_rank)
      return fmt::format("target {} ({}) comes after a target in a later state", t.target,
                         public_state_name(t.state));
    previous_rank = rank;
    ++count[rank];
  }
  const int serving = count[0], lastsrv = count[1], syncing = count[2];
  if (syncing > 1) return fmt::format("{} syncing targets (at most one)", syncing);
  if (lastsrv > 1) return fmt::format("{} lastsrv targets (at most one)", lastsrv);
  if (lastsrv > 0 && serving > 0) return "a lastsrv target beside a serving one";
  if (syncing > 0 && serving == 0) return "a syncing target without a serving one";
  if (!chain.targets.empty() && serving == 0 && lastsrv == 0)
    return "neither a serving nor a lastsrv target: nothing could ever serve again";
  return {};
}

}  // namespace mica::craq
