// mgmtd's admin commands refuse what would lose data although the published states allow
// it: replacing a serving target whose chain has no other live serving target, promoting a
// target that is not up (craq/mgmtd.h). Real LMDB and TCP on 127.0.0.1, lease 200 ms,
// rounds every 20 ms: about a second per test, waits capped at 5 s.
#include <gtest/gtest.h>

#include "craq/mgmtd.h"
#include "tests/co_test.h"
#include "tests/craq/mgmtd_nodes.h"

namespace mica::craq {
namespace {

using namespace std::chrono_literals;
using namespace testing;

Task<Result<ReplaceTargetResponse>> replace(Harness* h, TargetId old_target, TargetId with) {
  ReplaceTargetRequest request{.old_target = old_target, .new_target = with};
  auto calling = h->stub().replace_target(request);
  co_return co_await std::move(calling);
}

Task<Result<PromoteTargetResponse>> promote(Harness* h, ChainId chain, TargetId target) {
  PromoteTargetRequest request{.chain = chain, .target = target};
  auto calling = h->stub().promote_target(request);
  co_return co_await std::move(calling);
}

MICA_CO_TEST(MgmtdAdminGuard, ReplacingTheOnlyLiveServingTargetIsRefused) {
  Harness h(dir.path);
  h.options.update_interval = 1h;  // rounds only when kicked: the states stay as published
  std::vector<Node> nodes;
  auto setting_up = one_chain(&h, &nodes);
  Status set_up = co_await std::move(setting_up);
  CO_ASSERT_OK(set_up);
  Node spare{.request = storage_node("spare", {"spare-t"})};
  auto joining = join(&h, &spare);
  Status joined = co_await std::move(joining);
  CO_ASSERT_OK(joined);
  // Nodes 0 and 1 die; past their lease, but no round has run since: still serving.
  nodes[0].beating = false;
  nodes[1].beating = false;
  nodes.push_back(spare);
  auto waiting = beat_for(&h, &nodes, 300ms);
  co_await std::move(waiting);
  TargetId live = nodes[2].targets[0];
  for (int i = 0; i < 3; ++i)
    CO_ASSERT_EQ(state_of(*h.mgmtd->routing(), nodes[i].targets[0]), PublicState::kServing);
  uint64_t version = h.mgmtd->routing_version();
  auto refused_call = replace(&h, live, spare.targets[0]);
  auto refused = co_await std::move(refused_call);
  EXPECT_FALSE(refused.ok()) << "the one live copy left its chain";
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(h.mgmtd->routing_version(), version);
  // A dead serving target may go: the live one still holds every write.
  auto replaced_call = replace(&h, nodes[0].targets[0], spare.targets[0]);
  auto replaced = co_await std::move(replaced_call);
  EXPECT_TRUE(replaced.ok()) << replaced.status();
  auto stopping = stop(&h);
  co_await std::move(stopping);
}

MICA_CO_TEST(MgmtdAdminGuard, ATargetWhoseDiskIsGoneMayAlwaysBeReplaced) {
  Harness h(dir.path);
  h.options.update_interval = 1h;  // rounds only when kicked: the states stay as published
  std::vector<Node> nodes;
  auto setting_up = one_chain(&h, &nodes);
  Status set_up = co_await std::move(setting_up);
  CO_ASSERT_OK(set_up);
  Node spare{.request = storage_node("spare", {"spare-t"})};
  auto joining = join(&h, &spare);
  Status joined = co_await std::move(joining);
  CO_ASSERT_OK(joined);
  nodes[0].beating = false;
  nodes[1].beating = false;
  nodes.push_back(spare);
  auto waiting = beat_for(&h, &nodes, 300ms);
  co_await std::move(waiting);
  // Node 2's disk vanishes: it heartbeats without it, and the admin replaces it before
  // any round runs (in-process calls, no suspension before the check): the old target
  // still serves publicly and no other serving target is up, yet it holds nothing.
  TargetId old_target = nodes[2].targets[0];
  CO_ASSERT_EQ(state_of(*h.mgmtd->routing(), old_target), PublicState::kServing);
  HeartbeatRequest without{.node = nodes[2].id, .identity = nodes[2].request.identity};
  auto beating = h.mgmtd->heartbeat(without, nullptr);
  auto beaten = co_await std::move(beating);
  CO_ASSERT_OK(beaten);
  ReplaceTargetRequest request{.old_target = old_target, .new_target = spare.targets[0]};
  auto replacing = h.mgmtd->replace_target(request, nullptr);
  auto replaced = co_await std::move(replacing);
  EXPECT_TRUE(replaced.ok()) << replaced.status();
  auto stopping = stop(&h);
  co_await std::move(stopping);
}

MICA_CO_TEST(MgmtdAdminGuard, PromotingATargetThatIsNotUpIsRefused) {
  Harness h(dir.path);
  std::vector<Node> nodes;
  auto setting_up = one_chain(&h, &nodes);
  Status set_up = co_await std::move(setting_up);
  CO_ASSERT_OK(set_up);
  ChainId chain = find_target(*h.mgmtd->routing(), nodes[0].targets[0])->chain;
  for (Node& node : nodes) node.beating = false;
  auto blocked = beat_until(&h, &nodes, [&](const RoutingSnapshot& r) {
    for (const Node& node : nodes)
      if (state_of(r, node.targets[0]) == PublicState::kLastServing) return true;
    return false;
  });
  bool blocked_reached = co_await std::move(blocked);
  CO_ASSERT_TRUE(blocked_reached);
  TargetId lastsrv = find_chain(*h.mgmtd->routing(), chain)->targets[0].target;
  std::vector<size_t> others;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].targets[0] != lastsrv) others.push_back(i);
  CO_ASSERT_EQ(others.size(), 2u);
  uint64_t version = h.mgmtd->routing_version();
  // A target whose node is dead.
  auto dead_call = promote(&h, chain, nodes[others[0]].targets[0]);
  auto dead = co_await std::move(dead_call);
  EXPECT_EQ(dead.status().code(), StatusCode::kInvalidArgument) << dead.status();
  // A target whose node is back but reports it offline.
  Node& back = nodes[others[1]];
  back.beating = true;
  back.local = LocalState::kOffline;
  auto beating = beat_for(&h, &nodes, 60ms);
  co_await std::move(beating);
  auto offline_call = promote(&h, chain, back.targets[0]);
  auto offline = co_await std::move(offline_call);
  EXPECT_EQ(offline.status().code(), StatusCode::kInvalidArgument) << offline.status();
  EXPECT_EQ(h.mgmtd->routing_version(), version);
  // Once it reports online it may be promoted, with the warning.
  back.local = LocalState::kOnline;
  auto waiting = reach(&h, &nodes, back.targets[0], PublicState::kWaiting);
  bool waiting_reached = co_await std::move(waiting);
  CO_ASSERT_TRUE(waiting_reached);
  auto promoted_call = promote(&h, chain, back.targets[0]);
  auto promoted = co_await std::move(promoted_call);
  CO_ASSERT_OK(promoted);
  EXPECT_NE(promoted->warning.find("lost"), std::string::npos) << promoted->warning;
  auto stopping = stop(&h);
  co_await std::move(stopping);
}

}  // namespace
}  // namespace mica::craq
