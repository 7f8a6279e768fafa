// mgmtd's chains: creating a chain table, lease expiry, a returning target's way back to
// serving, restarts, and the admin commands with their refusals (craq/mgmtd.h). Real LMDB
// and TCP on 127.0.0.1; lease 200 ms and rounds every 20 ms, so each test takes about a
// second at most (each wait is capped at 5 s).
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "craq/mgmtd.h"
#include "tests/co_test.h"
#include "tests/craq/mgmtd_nodes.h"

namespace mica::craq {
namespace {

using namespace std::chrono_literals;
using namespace testing;

MICA_CO_TEST(MgmtdChains, CreateChainTableBuildsChainsWithNoNodeTwice) {
  Harness h(dir.path);
  // No lease may lapse between the registrations and the last call (no node beats here):
  // 200 ms is too little for eight calls on a loaded machine, and expiry is tested below.
  h.options.config.lease_timeout_ms = 60'000;
  auto starting = start(&h);
  Status started = co_await std::move(starting);
  CO_ASSERT_OK(started);
  std::vector<Node> nodes;
  auto joining = join_nodes(&h, &nodes, 5, 3);
  Status joined = co_await std::move(joining);
  CO_ASSERT_OK(joined);
  auto too_many_call = create_table(&h, 6);
  auto too_many = co_await std::move(too_many_call);
  EXPECT_EQ(too_many.status().code(), StatusCode::kInvalidArgument);
  uint64_t version = h.mgmtd->routing_version();
  auto created_call = create_table(&h, 3);
  auto created = co_await std::move(created_call);
  CO_ASSERT_OK(created);
  EXPECT_EQ(h.mgmtd->routing_version(), version + 1);  // one write
  EXPECT_EQ(created->chains.size(), 5u);               // 15 targets, 3 per chain
  const RoutingSnapshot& routing = *h.mgmtd->routing();
  CO_ASSERT_TRUE(find_table(routing, created->table.id) != nullptr);
  for (const ChainInfo& chain : created->chains) {
    EXPECT_EQ(chain.version, 1u);
    std::set<NodeId> on;
    for (const ChainTarget& member : chain.targets) {
      EXPECT_EQ(member.state, PublicState::kServing);
      on.insert(find_target(routing, member.target)->node);
      EXPECT_EQ(find_target(routing, member.target)->chain, chain.id);
    }
    EXPECT_EQ(on.size(), 3u) << "a chain with a node twice";
  }
  // Every target is taken now: a second table has nothing to use.
  auto again_call = create_table(&h, 3);
  auto again = co_await std::move(again_call);
  EXPECT_EQ(again.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(h.mgmtd->routing_version(), version + 1);
  auto stopping = stop(&h);
  co_await std::move(stopping);
}

MICA_CO_TEST(MgmtdChains, SilencePastTheLeaseTakesAServingTargetOffline) {
  Harness h(dir.path);
  std::vector<Node> nodes;
  auto setting_up = one_chain(&h, &nodes);
  Status set_up = co_await std::move(setting_up);
  CO_ASSERT_OK(set_up);
  TargetId silent = nodes[2].targets[0];
  // Heartbeats keep everyone serving well past the lease.
  auto steady_call = beat_for(&h, &nodes, 400ms);
  co_await std::move(steady_call);
  for (const Node& node : nodes)
    EXPECT_EQ(state_of(*h.mgmtd->routing(), node.targets[0]), PublicState::kServing);
  EXPECT_EQ(chain_version(*h.mgmtd->routing(), silent), 1u);
  nodes[2].beating = false;
  auto offline_call = beat_until(&h, &nodes, [&](const RoutingSnapshot& r) {
    return state_of(r, silent) == PublicState::kOffline;
  });
  bool offline = co_await std::move(offline_call);
  CO_ASSERT_TRUE(offline);
  const RoutingSnapshot& routing = *h.mgmtd->routing();
  EXPECT_EQ(chain_version(routing, silent), 2u);
  EXPECT_EQ(state_of(routing, nodes[0].targets[0]), PublicState::kServing);
  EXPECT_EQ(state_of(routing, nodes[1].targets[0]), PublicState::kServing);
  auto stopping = stop(&h);
  co_await std::move(stopping);
}

MICA_CO_TEST(MgmtdChains, AReturningTargetServesOnlyOnceUpToDateAtTheCurrentVersion) {
  Harness h(dir.path);
  std::vector<Node> nodes;
  auto setting_up = one_chain(&h, &nodes);
  Status set_up = co_await std::move(setting_up);
  CO_ASSERT_OK(set_up);
  TargetId back = nodes[2].targets[0];
  nodes[2].beating = false;
  auto offline = reach(&h, &nodes, back, PublicState::kOffline);
  bool offline_reached = co_await std::move(offline);
  CO_ASSERT_TRUE(offline_reached);
  // The node's process comes back: it registers again, its contents behind.
  nodes[2].beating = true;
  nodes[2].local = LocalState::kOnline;
  nodes[2].request.targets[0].local = LocalState::kOnline;
  auto rejoining = join(&h, &nodes[2]);
  Status rejoined = co_await std::move(rejoining);
  CO_ASSERT_OK(rejoined);
  auto syncing = reach(&h, &nodes, back, PublicState::kSyncing);
  bool syncing_reached = co_await std::move(syncing);
  CO_ASSERT_TRUE(syncing_reached);
  uint64_t sync_version = chain_version(*h.mgmtd->routing(), back);
  // Up to date, but at an older chain version: no promotion without the resync.
  nodes[2].local = LocalState::kUpToDate;
  nodes[2].reported_version = sync_version - 1;
  auto stale = beat_for(&h, &nodes, 200ms);
  co_await std::move(stale);
  EXPECT_EQ(state_of(*h.mgmtd->routing(), back), PublicState::kSyncing);
  nodes[2].reported_version.reset();  // now at the current version
  auto serving = reach(&h, &nodes, back, PublicState::kServing);
  bool serving_reached = co_await std::move(serving);
  CO_ASSERT_TRUE(serving_reached);
  EXPECT_GT(chain_version(*h.mgmtd->routing(), back), sync_version);
  auto stopping = stop(&h);
  co_await std::move(stopping);
}

MICA_CO_TEST(MgmtdChains, ANewDiskIsANewTargetAndTheOldOneKeepsItsPlace) {
  Harness h(dir.path);
  std::vector<Node> nodes;
  auto setting_up = one_chain(&h, &nodes);
  Status set_up = co_await std::move(setting_up);
  CO_ASSERT_OK(set_up);
  TargetId old_target = nodes[2].targets[0];
  ChainId chain = find_target(*h.mgmtd->routing(), old_target)->chain;
  // Same node, same place, a freshly formatted disk: a new identity and no target id.
  nodes[2].request.targets[0] = testing::disk_report("n2-new-disk");
  auto rejoining = join(&h, &nodes[2]);
  Status rejoined = co_await std::move(rejoining);
  CO_ASSERT_OK(rejoined);
  TargetId new_target = nodes[2].targets[0];
  EXPECT_NE(new_target, old_target);
  const RoutingSnapshot& routing = *h.mgmtd->routing();
  EXPECT_EQ(find_target(routing, new_target)->chain, 0u);
  EXPECT_EQ(find_target(routing, old_target)->chain, chain);
  // The old target, no longer reported, goes offline in its chain; the new one is in none.
  auto offline = reach(&h, &nodes, old_target, PublicState::kOffline);
  bool offline_reached = co_await std::move(offline);
  CO_ASSERT_TRUE(offline_reached);
  EXPECT_EQ(find_target(*h.mgmtd->routing(), new_target)->chain, 0u);
  auto stopping = stop(&h);
  co_await std::move(stopping);
}

MICA_CO_TEST(MgmtdChains, ARestartedMgmtdKeepsItsChainsAndGivesNodesTheirGrace) {
  Harness h(dir.path);
  std::vector<Node> nodes;
  auto setting_up = one_chain(&h, &nodes);
  Status set_up = co_await std::move(setting_up);
  CO_ASSERT_OK(set_up);
  RoutingSnapshot before = *h.mgmtd->routing();
  auto stopping = stop(&h);
  co_await std::move(stopping);

  Harness again(dir.path);
  auto starting = start(&again);
  Status started = co_await std::move(starting);
  CO_ASSERT_OK(started);
  EXPECT_EQ(*again.mgmtd->routing(), before);
  // Half a lease without heartbeats: nothing is decided, the nodes are within their grace.
  Status slept = co_await sleep_for(100ms);
  EXPECT_TRUE(slept.ok()) << slept;
  EXPECT_EQ(again.mgmtd->routing_version(), before.version);
  auto steady = beat_for(&again, &nodes, 400ms);
  co_await std::move(steady);
  EXPECT_EQ(again.mgmtd->routing_version(), before.version);
  for (const Node& node : nodes)
    EXPECT_EQ(state_of(*again.mgmtd->routing(), node.targets[0]), PublicState::kServing);
  auto stopping_again = stop(&again);
  co_await std::move(stopping_again);
}

MICA_CO_TEST(MgmtdChains, AFastRestartOfANodeStillResyncsItsTargets) {
  Harness h(dir.path);
  std::vector<Node> nodes;
  auto setting_up = one_chain(&h, &nodes);
  Status set_up = co_await std::move(setting_up);
  CO_ASSERT_OK(set_up);
  TargetId target = nodes[1].targets[0];
  uint64_t version = chain_version(*h.mgmtd->routing(), target);
  // The process restarts well within its lease, claiming up to date: it may have missed
  // writes while down, so it leaves the serving set and comes back through a resync.
  auto rejoining = join(&h, &nodes[1]);
  Status rejoined = co_await std::move(rejoining);
  CO_ASSERT_OK(rejoined);
  auto left = beat_until(
      &h, &nodes, [&](const RoutingSnapshot& r) { return chain_version(r, target) > version; });
  bool left_serving = co_await std::move(left);
  CO_ASSERT_TRUE(left_serving);
  EXPECT_NE(state_of(*h.mgmtd->routing(), target), PublicState::kServing);
  auto serving = reach(&h, &nodes, target, PublicState::kServing);
  bool serving_reached = co_await std::move(serving);
  CO_ASSERT_TRUE(serving_reached);
  EXPECT_GE(chain_version(*h.mgmtd->routing(), target), version + 3);  // offline, wait, sync
  auto stopping = stop(&h);
  co_await std::move(stopping);
}

}  // namespace
}  // namespace mica::craq
