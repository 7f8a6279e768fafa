// Target states (craq/target_state.h): every transition of next_chain() as a row of one
// table, the admin operations promote_target() and replace_target() with each refusal, and
// check_chain_invariants() catching each violation. Notation: target_state_helpers.h.
#include "craq/target_state.h"

#include <gtest/gtest.h>

#include <string_view>

#include "tests/craq/target_state_helpers.h"

namespace mica::craq {
namespace {

using testing::chain_text;
using testing::kLease;
using testing::parse_chain;
using testing::parse_observations;

constexpr uint64_t kVersion = 10;

struct TransitionRow {
  std::string_view name;
  std::string_view before;        // chain at kVersion
  std::string_view observations;  // "up" means up to date at kVersion
  std::string_view after;         // at kVersion + 1, or kVersion when equal to before
};

constexpr TransitionRow kTransitions[] = {
    // serving
    {"serving up to date stays, chain unchanged keeps its version", "S1 S2 S3", "1:up 2:up 3:up",
     "S1 S2 S3"},
    {"serving online stays", "S1 S2", "1:on 2:on", "S1 S2"},
    {"serving ignores the reported chain version", "S1 S2", "1:up@3 2:up@99", "S1 S2"},
    {"serving heartbeat exactly the lease old is alive", "S1 S2", "1:edge 2:up", "S1 S2"},
    {"serving reported offline moves to the end", "S1 S2 S3 O4", "1:up 2:off 3:up 4:off",
     "S1 S3 O4 O2"},
    {"serving head lost: the next one is head", "S1 S2 S3", "1:off 2:up 3:up", "S2 S3 O1"},
    {"serving tail lost: the one before is tail", "S1 S2 S3", "1:up 2:up 3:off", "S1 S2 O3"},
    {"serving lease expired goes offline", "S1 S2", "1:lease 2:up", "S2 O1"},
    {"serving taken offline by admin", "S1 S2", "1:up 2:admin", "S1 O2"},
    {"serving whose node restarted goes offline", "S1 S2", "1:restart 2:up", "S2 O1"},
    {"serving without observation goes offline", "S1 S2", "1:up", "S1 O2"},
    {"serving lost beside a surviving one: sync goes on", "S1 S2 Y3", "1:off 2:up 3:on",
     "S2 Y3 O1"},
    {"two serving lost in one round keep their order", "S1 S2 S3 S4", "1:off 2:up 3:off 4:up",
     "S2 S4 O1 O3"},
    // every serving target lost
    {"all serving lost at once: head-most lastsrv, rest offline", "S1 S2 S3", "1:off 2:off 3:off",
     "L1 O2 O3"},
    {"all serving lost: they go after older offline ones", "S1 S2 O3", "", "L1 O3 O2"},
    {"all serving lost to lease and restart", "S1 S2", "1:lease 2:restart", "L1 O2"},
    {"one-target chain losing it blocks on it", "S1", "1:off", "L1"},
    {"only serving lost: the syncing one goes offline", "S1 Y2 W3", "1:off 2:on 3:up", "L1 W3 O2"},
    {"syncing with no serving left goes offline though up to date", "S1 Y2", "1:off 2:up", "L1 O2"},
    {"waiting stays waiting when the last serving is lost", "S1 W2", "1:off 2:up", "L1 W2"},
    {"syncing at another version with no serving left goes offline", "S1 Y2", "1:off 2:up@9",
     "L1 O2"},
    // lastsrv
    {"lastsrv returns up to date and serves", "L1 O2 O3", "1:up", "S1 O2 O3"},
    {"lastsrv returns online and serves", "L1 O2", "1:on 2:off", "S1 O2"},
    {"lastsrv ignores the reported chain version", "L1 O2", "1:up@4", "S1 O2"},
    {"lastsrv down: chain stays blocked", "L1 O2 O3", "1:off 2:off", "L1 O2 O3"},
    {"lastsrv without observation stays", "L1 O2", "", "L1 O2"},
    {"lastsrv restarted stays lastsrv for the round", "L1 O2", "1:restart", "L1 O2"},
    {"lastsrv lease expired stays", "L1 W2", "1:lease 2:up", "L1 W2"},
    {"blocked chain: returning targets wait", "L1 O2 O3", "1:off 2:up 3:on", "L1 W2 W3"},
    {"blocked chain: nobody syncs without a serving target", "L1 W2 W3", "1:off 2:up 3:up",
     "L1 W2 W3"},
    {"lastsrv returns and the first waiting starts syncing", "L1 W2 O3", "1:up 2:up 3:up",
     "S1 Y2 W3"},
    // syncing
    {"syncing up to date at the chain version is the new tail", "S1 S2 Y3", "1:up 2:up 3:up",
     "S1 S2 S3"},
    {"syncing up to date at an older version keeps syncing", "S1 Y2", "1:up 2:up@9", "S1 Y2"},
    {"syncing up to date at a newer version keeps syncing", "S1 Y2", "1:up 2:up@11", "S1 Y2"},
    {"syncing online keeps syncing", "S1 Y2", "1:up 2:on", "S1 Y2"},
    {"syncing offline: the first waiting starts instead", "S1 Y2 W3 W4", "1:up 2:off 3:on 4:on",
     "S1 Y3 W4 O2"},
    {"syncing restarted goes offline", "S1 Y2", "1:up 2:restart", "S1 O2"},
    {"syncing lease expired goes after older offline ones", "S1 Y2 O3", "1:up 2:lease", "S1 O3 O2"},
    {"syncing taken offline by admin", "S1 Y2", "1:up 2:admin", "S1 O2"},
    {"syncing done while the head fails joins the survivors", "S1 S2 Y3", "1:off 2:up 3:up",
     "S2 S3 O1"},
    {"syncing done and the next waiting starts in one round", "S1 Y2 W3 W4", "1:up 2:up 3:up 4:up",
     "S1 S2 Y3 W4"},
    // waiting
    {"waiting online starts syncing", "S1 W2", "1:up 2:on", "S1 Y2"},
    {"waiting up to date syncs rather than serves", "S1 W2", "1:up 2:up", "S1 Y2"},
    {"waiting starts syncing whatever version it reports", "S1 W2", "1:up 2:up@3", "S1 Y2"},
    {"waiting while another syncs keeps waiting", "S1 Y2 W3", "1:up 2:on 3:up", "S1 Y2 W3"},
    {"two waiting: only the first starts syncing", "S1 W2 W3", "1:up 2:up 3:up", "S1 Y2 W3"},
    {"two waiting, the first fails: the second syncs", "S1 W2 W3", "1:up 2:off 3:up", "S1 Y3 O2"},
    {"waiting offline moves to the end", "S1 Y2 W3 O4", "1:up 2:on 3:off 4:off", "S1 Y2 O4 O3"},
    {"waiting restarted goes offline", "S1 W2", "1:up 2:restart", "S1 O2"},
    {"waiting lease expired goes offline", "S1 W2", "1:up 2:lease", "S1 O2"},
    {"waiting without observation goes offline", "S1 W2", "1:up", "S1 O2"},
    // offline
    {"offline online goes waiting", "S1 O2", "1:up 2:on", "S1 W2"},
    {"offline up to date goes waiting, not syncing", "S1 O2", "1:up 2:up", "S1 W2"},
    {"offline goes waiting whatever version it reports", "S1 O2", "1:up 2:up@12", "S1 W2"},
    {"offline reported offline stays", "S1 O2", "1:up 2:off", "S1 O2"},
    {"offline taken offline by admin stays though up", "S1 O2", "1:up 2:admin", "S1 O2"},
    {"offline restarted stays for the round", "S1 O2", "1:up 2:restart", "S1 O2"},
    {"offline lease expired stays", "S1 O2", "1:up 2:lease", "S1 O2"},
    {"offline without observation stays", "S1 O2", "1:up", "S1 O2"},
    {"offline returning joins the end of the waiting", "S1 Y2 W3 O4", "1:up 2:on 3:on 4:on",
     "S1 Y2 W3 W4"},
    {"two offline return in their order", "S1 O2 O3", "1:up 2:on 3:up", "S1 W2 W3"},
    {"offline returns while a serving one fails", "S1 S2 O3", "1:up 2:off 3:on", "S1 W3 O2"},
    {"an empty chain stays empty", "", "", ""},
};

TEST(TargetState, EveryTransitionOfTheTable) {
  for (const TransitionRow& row : kTransitions) {
    SCOPED_TRACE(row.name);
    ChainInfo before = parse_chain(row.before, kVersion);
    auto observations = parse_observations(row.observations, kVersion);
    ChainInfo after = next_chain(before, observations, kLease);
    EXPECT_EQ(chain_text(after), row.after);
    bool changed = row.after != row.before;
    EXPECT_EQ(after.version, changed ? kVersion + 1 : kVersion);
    EXPECT_EQ(after.id, before.id);
    EXPECT_EQ(check_chain_invariants(after), "");
  }
}

TEST(TargetState, EffectiveLocalStateIsOfflineForEachCauseOnly) {
  TargetObservation alive{.target = 1, .local = LocalState::kOnline, .heartbeat_age = kLease};
  EXPECT_EQ(effective_local_state(alive, kLease), LocalState::kOnline);
  TargetObservation expired = alive;
  expired.heartbeat_age = kLease + Duration(1);
  EXPECT_EQ(effective_local_state(expired, kLease), LocalState::kOffline);
  TargetObservation admin = alive;
  admin.admin_offline = true;
  EXPECT_EQ(effective_local_state(admin, kLease), LocalState::kOffline);
  TargetObservation restarted = alive;
  restarted.restarted = true;
  EXPECT_EQ(effective_local_state(restarted, kLease), LocalState::kOffline);
  TargetObservation up{.target = 1, .local = LocalState::kUpToDate};
  EXPECT_EQ(effective_local_state(up, kLease), LocalState::kUpToDate);
}

TEST(TargetState, AStaleUpToDateReportNeedsAFreshOneAfterSyncStarts) {
  // The node said up to date at version 10 while waiting; the resync starts at 11, and
  // the same report must not finish it.
  ChainInfo chain = parse_chain("S1 W2", kVersion);
  auto observations = parse_observations("1:up 2:up", kVersion);
  ChainInfo syncing = next_chain(chain, observations, kLease);
  ASSERT_EQ(chain_text(syncing), "S1 Y2");
  EXPECT_EQ(next_chain(syncing, observations, kLease), syncing);
  auto fresh = parse_observations("1:up 2:up", syncing.version);
  ChainInfo served = next_chain(syncing, fresh, kLease);
  EXPECT_EQ(chain_text(served), "S1 S2");
  EXPECT_EQ(served.version, syncing.version + 1);
}

TEST(TargetState, ObservationsOfOtherTargetsAreIgnored) {
  ChainInfo chain = parse_chain("S1 O2", kVersion);
  auto observations = parse_observations("1:up 7:up 9:off", kVersion);
  EXPECT_EQ(next_chain(chain, observations, kLease), chain);
}

// promote_target

TEST(TargetStatePromote, AWaitingTargetServesAndLastsrvGoesLast) {
  auto promoted = promote_target(parse_chain("L1 W2 O3", kVersion), 2);
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  EXPECT_EQ(chain_text(*promoted), "S2 O3 O1");
  EXPECT_EQ(promoted->version, kVersion + 1);
  EXPECT_EQ(check_chain_invariants(*promoted), "");
}

TEST(TargetStatePromote, AnOfflineTargetServesAndTheWaitingOneSyncsFromIt) {
  auto promoted = promote_target(parse_chain("L1 W2 O3", kVersion), 3);
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  EXPECT_EQ(chain_text(*promoted), "S3 W2 O1");
  auto observations = parse_observations("2:up 3:up", promoted->version);
  EXPECT_EQ(chain_text(next_chain(*promoted, observations, kLease)), "S3 Y2 O1");
}

TEST(TargetStatePromote, EachRefusalIsInvalidArgument) {
  struct Refusal {
    std::string_view name, chain;
    TargetId target;
  };
  const Refusal refusals[] = {
      {"chain has a serving target", "S1 O2", 2},
      {"chain has no lastsrv target", "W1 O2", 1},
      {"target not in the chain", "L1 W2", 5},
      {"target is the lastsrv one", "L1 W2", 1},
      {"target is syncing (malformed chain)", "L1 Y2", 2},
  };
  for (const Refusal& r : refusals) {
    SCOPED_TRACE(r.name);
    auto promoted = promote_target(parse_chain(r.chain, kVersion), r.target);
    ASSERT_FALSE(promoted.ok());
    EXPECT_EQ(promoted.status().code(), StatusCode::kInvalidArgument);
    EXPECT_FALSE(promoted.status().message().empty());
  }
}

// replace_target

TEST(TargetStateReplace, TheReplacementJoinsAtTheEndAsOffline) {
  struct Replacement {
    std::string_view name, before;
    TargetId old;
    std::string_view after;
  };
  const Replacement rows[] = {
      {"an offline target", "S1 S2 O3", 3, "S1 S2 O9"},
      {"a serving target beside another", "S1 S2 S3", 2, "S1 S3 O9"},
      {"the syncing target", "S1 Y2 W3", 2, "S1 W3 O9"},
      {"a waiting target of a blocked chain", "L1 W2 O3", 2, "L1 O3 O9"},
  };
  for (const Replacement& row : rows) {
    SCOPED_TRACE(row.name);
    auto replaced = replace_target(parse_chain(row.before, kVersion), row.old, 9);
    ASSERT_TRUE(replaced.ok()) << replaced.status();
    EXPECT_EQ(chain_text(*replaced), row.after);
    EXPECT_EQ(replaced->version, kVersion + 1);
    EXPECT_EQ(check_chain_invariants(*replaced), "");
  }
}

TEST(TargetStateReplace, TheReplacementGoesWaitingSyncingServing) {
  auto replaced = replace_target(parse_chain("S1 S2 O3", kVersion), 3, 9);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  ChainInfo chain = *replaced;
  for (std::string_view expected : {"S1 S2 W9", "S1 S2 Y9", "S1 S2 S9"}) {
    auto observations = parse_observations("1:up 2:up 9:up", chain.version);
    chain = next_chain(chain, observations, kLease);
    EXPECT_EQ(chain_text(chain), expected);
  }
}

TEST(TargetStateReplace, EachRefusalIsInvalidArgument) {
  struct Refusal {
    std::string_view name, chain;
    TargetId old, replacement;
  };
  const Refusal refusals[] = {
      {"old not in the chain", "S1 S2", 5, 9},
      {"replacement already in the chain", "S1 S2 O3", 3, 2},
      {"replacement is old itself", "S1 S2 O3", 3, 3},
      {"replacement id is 0", "S1 S2 O3", 3, 0},
      {"old is the only serving target", "S1 Y2 O3", 1, 9},
      {"old is the lastsrv target", "L1 W2", 1, 9},
  };
  for (const Refusal& r : refusals) {
    SCOPED_TRACE(r.name);
    auto replaced = replace_target(parse_chain(r.chain, kVersion), r.old, r.replacement);
    ASSERT_FALSE(replaced.ok());
    EXPECT_EQ(replaced.status().code(), StatusCode::kInvalidArgument);
    EXPECT_FALSE(replaced.status().message().empty());
  }
}

// check_chain_invariants

TEST(TargetStateInvariants, WellFormedChainsPass) {
  for (std::string_view spec : {"S1", "S1 S2 S3", "S1 Y2 W3 O4", "L1 W2 O3", "L1", ""})
    EXPECT_EQ(check_chain_invariants(parse_chain(spec, kVersion)), "") << spec;
}

TEST(TargetStateInvariants, EachViolationIsCaught) {
  struct Violation {
    std::string_view chain, says;
  };
  const Violation violations[] = {
      {"S1 O1", "appears twice"},
      {"S1 S0", "id 0"},
      {"O1 S2", "comes after"},
      {"S1 W2 Y3", "comes after"},
      {"S1 Y2 Y3", "2 syncing"},
      {"L1 L2", "2 lastsrv"},
      {"S1 L2", "beside a serving"},
      {"L1 Y2", "syncing target without a serving"},
      {"Y1 O2", "syncing target without a serving"},
      {"W1 O2", "neither a serving nor a lastsrv"},
  };
  for (const Violation& v : violations) {
    std::string found = check_chain_invariants(parse_chain(v.chain, kVersion));
    EXPECT_NE(found.find(v.says), std::string::npos) << v.chain << ": " << found;
  }
  ChainInfo unknown = parse_chain("S1", kVersion);
  unknown.targets[0].state = static_cast<PublicState>(9);
  EXPECT_NE(check_chain_invariants(unknown).find("unknown state"), std::string::npos);
}

}  // namespace
}  // namespace mica::craq
