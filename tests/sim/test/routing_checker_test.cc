// RoutingChecker (tests/sim/routing_checker.h), the mgmtd_membership scenario's checker, on
// hand-made snapshots: it passes a legal history and catches each violation it is there for
// (so a sweep that passes means the invariants held, not that the checker looked away).
#include "tests/sim/routing_checker.h"

#include <gtest/gtest.h>

namespace mica::sim {
namespace {

using craq::ChainInfo;
using craq::PublicState;
using craq::RoutingSnapshot;

// Three nodes with one target each (target id = node id * 10) in chain 1.
RoutingSnapshot three_node_chain(uint64_t version, uint64_t chain_version,
                                 std::vector<craq::ChainTarget> members) {
  RoutingSnapshot routing;
  routing.version = version;
  for (craq::NodeId node = 1; node <= 3; ++node) {
    routing.nodes.push_back({.id = node, .identity = std::to_string(node)});
    routing.targets.push_back({.id = node * 10, .node = node, .chain = 1});
  }
  routing.chains.push_back(ChainInfo{.id = 1, .version = chain_version, .targets = members});
  return routing;
}

RoutingSnapshot all_serving(uint64_t version) {
  return three_node_chain(
      version, 1,
      {{10, PublicState::kServing}, {20, PublicState::kServing}, {30, PublicState::kServing}});
}

TEST(RoutingChecker, ALegalHistoryPasses) {
  ScenarioResult result;
  RoutingChecker checker(&result);
  auto healthy_none = [](craq::NodeId) { return false; };
  checker.observe(all_serving(5), "a");
  RoutingSnapshot failed = three_node_chain(
      6, 2,
      {{10, PublicState::kServing}, {20, PublicState::kServing}, {30, PublicState::kOffline}});
  checker.observe(failed, "a");
  checker.observe(all_serving(5), "b");  // another observer, late: same content
  checker.observe_decision(std::make_shared<RoutingSnapshot>(all_serving(5)), healthy_none);
  RoutingSnapshot lost = three_node_chain(
      7, 3,
      {{10, PublicState::kLastServing}, {20, PublicState::kOffline}, {30, PublicState::kOffline}});
  checker.observe(lost, "a");
  checker.observe_decision(std::make_shared<RoutingSnapshot>(lost), healthy_none);
  EXPECT_TRUE(result.ok()) << result.failure;
  EXPECT_EQ(checker.counts().versions, 3u);
  EXPECT_EQ(checker.counts().blocked_chains, 1u);
}

TEST(RoutingChecker, CatchesAChainBlockedWhileAServingTargetsNodeIsHealthy) {
  ScenarioResult result;
  RoutingChecker checker(&result);
  auto node_2_healthy = [](craq::NodeId node) { return node == 2; };
  checker.observe_decision(std::make_shared<RoutingSnapshot>(all_serving(5)), node_2_healthy);
  RoutingSnapshot blocked = three_node_chain(
      6, 2,
      {{10, PublicState::kLastServing}, {20, PublicState::kOffline}, {30, PublicState::kOffline}});
  checker.observe_decision(std::make_shared<RoutingSnapshot>(blocked), node_2_healthy);
  EXPECT_FALSE(result.ok());
  EXPECT_NE(result.failure.find("target 20"), std::string::npos) << result.failure;
}

TEST(RoutingChecker, CatchesAChainVersionGoingBack) {
  ScenarioResult result;
  RoutingChecker checker(&result);
  checker.observe(
      three_node_chain(
          9, 4,
          {{10, PublicState::kServing}, {20, PublicState::kServing}, {30, PublicState::kServing}}),
      "a");
  checker.observe(all_serving(10), "a");  // chain 1 back at v1 in a newer routing version
  EXPECT_FALSE(result.ok());
}

TEST(RoutingChecker, CatchesOneVersionWithTwoContents) {
  ScenarioResult result;
  RoutingChecker checker(&result);
  checker.observe(all_serving(5), "a");
  RoutingSnapshot other = all_serving(5);
  other.targets[0].disk = "elsewhere";
  checker.observe(other, "b");
  EXPECT_FALSE(result.ok());
}

TEST(RoutingChecker, CatchesTwoTargetsOfOneNodeAndTwoSyncingTargets) {
  ScenarioResult two_on_a_node;
  RoutingChecker first(&two_on_a_node);
  RoutingSnapshot routing = all_serving(5);
  routing.targets[1].node = 1;
  first.observe(routing, "a");
  EXPECT_FALSE(two_on_a_node.ok());
  ScenarioResult two_syncing;
  RoutingChecker second(&two_syncing);
  second.observe(
      three_node_chain(
          5, 1,
          {{10, PublicState::kServing}, {20, PublicState::kSyncing}, {30, PublicState::kSyncing}}),
      "a");
  EXPECT_FALSE(two_syncing.ok());
}

TEST(RoutingChecker, CatchesOneChainVersionWithTwoContents) {
  ScenarioResult result;
  RoutingChecker checker(&result);
  checker.observe(all_serving(5), "a");
  // A newer routing version, chain 1 still at v1 but with target 30 offline.
  checker.observe(
      three_node_chain(
          6, 1,
          {{10, PublicState::kServing}, {20, PublicState::kServing}, {30, PublicState::kOffline}}),
      "b");
  EXPECT_FALSE(result.ok());
  EXPECT_NE(result.failure.find("chain 1 v1"), std::string::npos) << result.failure;
}

RoutingSnapshot one_syncing(uint64_t version) {
  return three_node_chain(
      version, 4,
      {{10, PublicState::kServing}, {20, PublicState::kServing}, {30, PublicState::kSyncing}});
}

RoutingSnapshot synced(uint64_t version) {
  return three_node_chain(
      version, 5,
      {{10, PublicState::kServing}, {20, PublicState::kServing}, {30, PublicState::kServing}});
}

craq::TargetReport report_at(craq::LocalState local, uint64_t chain_version) {
  return {.target = 30, .local = local, .reported_chain_version = chain_version};
}

TEST(RoutingChecker, AcceptsServingAfterAnUpToDateReportAtTheSyncingVersion) {
  ScenarioResult result;
  RoutingChecker checker(&result);
  auto healthy_all = [](craq::NodeId) { return true; };
  checker.observe_decision(std::make_shared<RoutingSnapshot>(one_syncing(5)), healthy_all);
  checker.observe_report(3, 30, report_at(craq::LocalState::kUpToDate, 4));
  checker.observe_decision(std::make_shared<RoutingSnapshot>(synced(6)), healthy_all);
  EXPECT_TRUE(result.ok()) << result.failure;
  EXPECT_EQ(checker.counts().syncs_done, 1u);
}

TEST(RoutingChecker, CatchesServingWithoutAnUpToDateReportAtTheSyncingVersion) {
  auto healthy_all = [](craq::NodeId) { return true; };
  // No report; an online one; an up-to-date one for an older version; one from another
  // node; one received by an mgmtd that restarted since.
  for (int variant = 0; variant < 5; ++variant) {
    ScenarioResult result;
    RoutingChecker checker(&result);
    checker.observe_decision(std::make_shared<RoutingSnapshot>(one_syncing(5)), healthy_all);
    if (variant == 1) checker.observe_report(3, 30, report_at(craq::LocalState::kOnline, 4));
    if (variant == 2) checker.observe_report(3, 30, report_at(craq::LocalState::kUpToDate, 3));
    if (variant == 3) checker.observe_report(2, 30, report_at(craq::LocalState::kUpToDate, 4));
    if (variant == 4) {
      checker.observe_report(3, 30, report_at(craq::LocalState::kUpToDate, 4));
      checker.mgmtd_restarted();
    }
    checker.observe_decision(std::make_shared<RoutingSnapshot>(synced(6)), healthy_all);
    EXPECT_FALSE(result.ok()) << "variant " << variant;
  }
}

}  // namespace
}  // namespace mica::sim
