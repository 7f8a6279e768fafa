// Properties of next_chain() (craq/target_state.h) that the simulator's checker relies on,
// over random well-formed chains and random observations: the output is well formed, the
// version only grows and by one per change, membership never changes, a live serving target
// keeps serving, fixed observations reach a fixpoint, and a chain whose targets are all back
// returns to full strength. 3,000 random chains each; well under a second in a Debug build.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "craq/target_state.h"
#include "tests/craq/target_state_helpers.h"

namespace mica::craq {
namespace {

using testing::chain_text;
using testing::kLease;

constexpr int kChains = 3000;
constexpr uint64_t kMaxTargets = 6;

// splitmix64: a tiny PRNG whose output is the same on every standard library.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }
};

// A chain that passes check_chain_invariants: some serving targets (or one lastsrv), at
// most one syncing beside a serving one, then waiting and offline ones.
ChainInfo random_chain(SplitMix64& rng) {
  uint64_t size = 1 + rng.below(kMaxTargets);
  uint64_t serving = rng.below(size + 1);
  std::vector<PublicState> states(serving, PublicState::kServing);
  if (serving == 0) states.push_back(PublicState::kLastServing);
  if (serving > 0 && states.size() < size && rng.below(2) == 0)
    states.push_back(PublicState::kSyncing);
  uint64_t waiting = rng.below(size - states.size() + 1);
  states.insert(states.end(), waiting, PublicState::kWaiting);
  states.resize(size, PublicState::kOffline);
  ChainInfo chain{.id = 7, .version = 1 + rng.below(100)};
  for (uint64_t i = 0; i < size; ++i)  // distinct ids, not in chain order
    chain.targets.push_back({.target = rng.below(1000) * 8 + i + 1, .state = states[i]});
  return chain;
}

std::vector<TargetObservation> random_observations(SplitMix64& rng, const ChainInfo& chain) {
  std::vector<TargetObservation> observations;
  for (const ChainTarget& t : chain.targets) {
    if (rng.below(8) == 0) continue;  // never heard of
    TargetObservation o{.target = t.target,
                        .local = static_cast<LocalState>(rng.below(3)),
                        .reported_chain_version = chain.version + rng.below(3) - 1};
    uint64_t age = rng.below(4);
    o.heartbeat_age = age == 0 ? kLease + Duration(1) : age == 1 ? kLease : Duration(0);
    o.admin_offline = rng.below(10) == 0;
    o.restarted = rng.below(10) == 0;
    observations.push_back(o);
  }
  return observations;
}

std::multiset<TargetId> members(const ChainInfo& chain) {
  std::multiset<TargetId> ids;
  for (const ChainTarget& t : chain.targets) ids.insert(t.target);
  return ids;
}

std::vector<TargetId> live_serving(const ChainInfo& chain,
                                   const std::vector<TargetObservation>& observations) {
  std::vector<TargetId> live;
  for (const ChainTarget& t : chain.targets) {
    if (t.state != PublicState::kServing) continue;
    for (const TargetObservation& o : observations)
      if (o.target == t.target && effective_local_state(o, kLease) != LocalState::kOffline)
        live.push_back(t.target);
  }
  return live;
}

// One round's properties; true when the round changed nothing.
bool check_round(const ChainInfo& before, const ChainInfo& after,
                 const std::vector<TargetObservation>& observations) {
  EXPECT_EQ(check_chain_invariants(after), "") << chain_text(before) << " -> " << chain_text(after);
  EXPECT_EQ(members(after), members(before));
  bool unchanged = after.targets == before.targets;
  EXPECT_EQ(after.version, unchanged ? before.version : before.version + 1);
  if (unchanged) {
    EXPECT_EQ(after, before);
  }
  for (TargetId id : live_serving(before, observations)) {
    bool serves = std::any_of(after.targets.begin(), after.targets.end(), [&](auto& t) {
      return t.target == id && t.state == PublicState::kServing;
    });
    EXPECT_TRUE(serves) << "live serving target " << id << " lost: " << chain_text(before) << " -> "
                        << chain_text(after);
  }
  return unchanged;
}

TEST(TargetStateProperty, FixedObservationsReachAWellFormedFixpoint) {
  SplitMix64 rng{.state = 42};
  for (int i = 0; i < kChains; ++i) {
    ChainInfo chain = random_chain(rng);
    ASSERT_EQ(check_chain_invariants(chain), "") << chain_text(chain);
    auto observations = random_observations(rng, chain);
    // Each round settles at least one target for good: waiting -> syncing -> serving
    // takes two rounds per returning target.
    const size_t max_rounds = 2 * chain.targets.size() + 3;
    size_t rounds = 0;
    for (;; ++rounds) {
      ASSERT_LE(rounds, max_rounds) << "no fixpoint: " << chain_text(chain);
      ChainInfo next = next_chain(chain, observations, kLease);
      if (check_round(chain, next, observations)) break;
      chain = next;
    }
    if (::testing::Test::HasFailure()) return;  // the first failing chain is enough
  }
}

TEST(TargetStateProperty, AChainWithALiveServingTargetNeverLosesServing) {
  SplitMix64 rng{.state = 7};
  for (int i = 0; i < kChains; ++i) {
    ChainInfo chain = random_chain(rng);
    for (int round = 0; round < 8; ++round) {  // fresh observations every round
      auto observations = random_observations(rng, chain);
      bool had_live = !live_serving(chain, observations).empty();
      ChainInfo next = next_chain(chain, observations, kLease);
      check_round(chain, next, observations);
      if (had_live) {
        EXPECT_EQ(next.targets.empty() ? PublicState::kOffline : next.targets[0].state,
                  PublicState::kServing)
            << chain_text(chain) << " -> " << chain_text(next);
      }
      chain = next;
    }
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(TargetStateProperty, AllTargetsBackReturnTheChainToFullStrength) {
  SplitMix64 rng{.state = 2026};
  for (int i = 0; i < kChains; ++i) {
    ChainInfo chain = random_chain(rng);
    // First round: some nodes just restarted; from then on every target is alive and
    // reports up to date at the chain's current version, as a node that finished its
    // resync does.
    const size_t max_rounds = chain.targets.size() + 3;
    for (size_t round = 0; round < max_rounds; ++round) {
      std::vector<TargetObservation> observations;
      for (const ChainTarget& t : chain.targets)
        observations.push_back({.target = t.target,
                                .local = LocalState::kUpToDate,
                                .reported_chain_version = chain.version,
                                .restarted = round == 0 && rng.below(3) == 0});
      ChainInfo next = next_chain(chain, observations, kLease);
      check_round(chain, next, observations);
      chain = next;
    }
    for (const ChainTarget& t : chain.targets)
      EXPECT_EQ(t.state, PublicState::kServing) << chain_text(chain);
    if (::testing::Test::HasFailure()) return;
  }
}

}  // namespace
}  // namespace mica::craq
