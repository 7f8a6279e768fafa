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

}  // namespace
}  // namespace mica::sim
