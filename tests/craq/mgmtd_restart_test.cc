// mgmtd restarts: what a restarted mgmtd must still know or decide — a node's restart it
// had not yet acted on, a target its node stopped listing, the lease of a new config
// (craq/mgmtd.h). Real LMDB and TCP on 127.0.0.1; lease 200 ms and rounds every 20 ms, so
// each test takes about a second at most (each wait is capped at 5 s).
#include <gtest/gtest.h>

#include "craq/mgmtd.h"
#include "tests/co_test.h"
#include "tests/craq/mgmtd_nodes.h"

namespace mica::craq {
namespace {

using namespace std::chrono_literals;
using namespace testing;

MICA_CO_TEST(MgmtdRestart, ANodeRestartNotYetDecidedSurvivesAnMgmtdCrash) {
  Harness h(dir.path);
  std::vector<Node> nodes;
  auto setting_up = one_chain(&h, &nodes);
  Status set_up = co_await std::move(setting_up);
  CO_ASSERT_OK(set_up);
  TargetId target = nodes[1].targets[0];
  uint64_t version = chain_version(*h.mgmtd->routing(), target);
  // The node's process restarts within its lease and registers again; mgmtd goes down
  // before any round acts on it (in-process call, then stop() with no suspension between:
  // the loop never runs a round).
  auto registering = h.mgmtd->register_node(nodes[1].request, nullptr);
  auto registered = co_await std::move(registering);
  CO_ASSERT_OK(registered);
  auto halting = h.mgmtd->stop();
  co_await std::move(halting);
  CO_ASSERT_EQ(chain_version(*h.mgmtd->routing(), target), version);
  CO_ASSERT_EQ(state_of(*h.mgmtd->routing(), target), PublicState::kServing);
  auto stopping = stop(&h);
  co_await std::move(stopping);

  Harness again(dir.path);
  auto starting = start(&again);
  Status started = co_await std::move(starting);
  CO_ASSERT_OK(started);
  // The node keeps claiming up to date; it may have missed writes, so it must resync.
  auto left = beat_until(&again, &nodes, [&](const RoutingSnapshot& r) {
    return state_of(r, target) != PublicState::kServing;
  });
  bool left_serving = co_await std::move(left);
  EXPECT_TRUE(left_serving) << "a restarted target kept serving after an mgmtd restart";
  auto serving = reach(&again, &nodes, target, PublicState::kServing);
  bool serving_reached = co_await std::move(serving);
  EXPECT_TRUE(serving_reached);
  EXPECT_FALSE(find_target(*again.mgmtd->routing(), target)->restart_pending);
  auto stopping_again = stop(&again);
  co_await std::move(stopping_again);
}

MICA_CO_TEST(MgmtdRestart, AChainWithATargetItsNodeNoLongerListsIsStillDecided) {
  Harness h(dir.path);
  std::vector<Node> nodes;
  auto setting_up = one_chain(&h, &nodes);
  Status set_up = co_await std::move(setting_up);
  CO_ASSERT_OK(set_up);
  TargetId old_target = nodes[2].targets[0];
  ChainId chain = find_target(*h.mgmtd->routing(), old_target)->chain;
  // Node 2's disk is replaced: it lists only the new target from now on.
  nodes[2].request.targets[0] = testing::disk_report("n2-new-disk");
  auto rejoining = join(&h, &nodes[2]);
  Status rejoined = co_await std::move(rejoining);
  CO_ASSERT_OK(rejoined);
  auto offline = reach(&h, &nodes, old_target, PublicState::kOffline);
  bool offline_reached = co_await std::move(offline);
  CO_ASSERT_TRUE(offline_reached);
  auto stopping = stop(&h);
  co_await std::move(stopping);

  Harness again(dir.path);
  auto starting = start(&again);
  Status started = co_await std::move(starting);
  CO_ASSERT_OK(started);
  // The head's node dies; node 2 keeps heartbeating without the old target.
  TargetId head = find_chain(*again.mgmtd->routing(), chain)->targets[0].target;
  for (Node& node : nodes)
    if (node.targets[0] == head) node.beating = false;
  auto replaced = beat_until(&again, &nodes, [&](const RoutingSnapshot& r) {
    return find_chain(r, chain)->targets[0].target != head;
  });
  bool head_replaced = co_await std::move(replaced);
  EXPECT_TRUE(head_replaced) << "the chain was never decided again";
  EXPECT_NE(state_of(*again.mgmtd->routing(), head), PublicState::kServing);
  auto stopping_again = stop(&again);
  co_await std::move(stopping_again);
}

MICA_CO_TEST(MgmtdRestart, ATargetSilentlyDroppedFromHeartbeatsGoesOffline) {
  Harness h(dir.path);
  std::vector<Node> nodes;
  auto setting_up = one_chain(&h, &nodes);
  Status set_up = co_await std::move(setting_up);
  CO_ASSERT_OK(set_up);
  // Node 1 keeps heartbeating but no longer lists its target (its disk vanished).
  TargetId dropped = nodes[1].targets[0];
  nodes[1].targets.clear();
  auto offline = reach(&h, &nodes, dropped, PublicState::kOffline);
  bool offline_reached = co_await std::move(offline);
  EXPECT_TRUE(offline_reached);
  auto stopping = stop(&h);
  co_await std::move(stopping);
}

MICA_CO_TEST(MgmtdRestart, TheGraceIsMeasuredWithTheLeaseOfTheNewConfig) {
  Harness h(dir.path);
  h.options.config.lease_timeout_ms = 1000;  // the stored config's lease
  std::vector<Node> nodes;
  auto setting_up = one_chain(&h, &nodes);
  Status set_up = co_await std::move(setting_up);
  CO_ASSERT_OK(set_up);
  RoutingSnapshot before = *h.mgmtd->routing();
  auto stopping = stop(&h);
  co_await std::move(stopping);

  // Restarted with a shorter lease (200 ms) and a grace of 150 ms: for 100 ms without
  // heartbeats every node is within its grace, whatever the stored lease was.
  Harness again(dir.path);
  again.options.restart_grace = std::chrono::milliseconds(150);
  auto starting = start(&again);
  Status started = co_await std::move(starting);
  CO_ASSERT_OK(started);
  uint64_t adopted = again.mgmtd->routing_version();  // the new config is one change
  EXPECT_EQ(adopted, before.version + 1);
  Status slept = co_await sleep_for(100ms);
  EXPECT_TRUE(slept.ok()) << slept;
  auto steady = beat_for(&again, &nodes, 300ms);
  co_await std::move(steady);
  EXPECT_EQ(again.mgmtd->routing_version(), adopted);
  for (const Node& node : nodes)
    EXPECT_EQ(state_of(*again.mgmtd->routing(), node.targets[0]), PublicState::kServing);
  auto stopping_again = stop(&again);
  co_await std::move(stopping_again);
}

}  // namespace
}  // namespace mica::craq
