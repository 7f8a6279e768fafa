// mgmtd's admin commands — target offline, replace, promote — and their refusals; every
// refused request leaves the routing version as it was (craq/mgmtd.h). Real LMDB and TCP on
// 127.0.0.1, lease 200 ms, rounds every 20 ms: about a second per test, waits capped at 5 s.
#include <gtest/gtest.h>

#include "craq/mgmtd.h"
#include "tests/co_test.h"
#include "tests/craq/mgmtd_nodes.h"

namespace mica::craq {
namespace {

using namespace testing;

Task<Result<SetTargetOfflineResponse>> set_offline(Harness* h, TargetId target, bool offline) {
  SetTargetOfflineRequest request{.target = target, .offline = offline};
  auto calling = h->stub().set_target_offline(request);
  co_return co_await std::move(calling);
}

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

MICA_CO_TEST(MgmtdAdmin, TargetOfflineTakesAServingTargetOutAndBack) {
  Harness h(dir.path);
  std::vector<Node> nodes;
  auto setting_up = one_chain(&h, &nodes);
  Status set_up = co_await std::move(setting_up);
  CO_ASSERT_OK(set_up);
  uint64_t version = h.mgmtd->routing_version();
  auto unknown_call = set_offline(&h, 999, true);
  auto unknown = co_await std::move(unknown_call);
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(h.mgmtd->routing_version(), version);
  TargetId target = nodes[1].targets[0];
  auto offline_call = set_offline(&h, target, true);
  auto offline = co_await std::move(offline_call);
  CO_ASSERT_OK(offline);
  EXPECT_TRUE(find_target(*h.mgmtd->routing(), target)->admin_offline);
  auto gone = reach(&h, &nodes, target, PublicState::kOffline);
  bool gone_reached = co_await std::move(gone);
  CO_ASSERT_TRUE(gone_reached);
  // Still offline while the flag stands, though its node reports it up to date.
  auto steady = beat_for(&h, &nodes, 100ms);
  co_await std::move(steady);
  EXPECT_EQ(state_of(*h.mgmtd->routing(), target), PublicState::kOffline);
  auto undo_call = set_offline(&h, target, false);
  auto undo = co_await std::move(undo_call);
  CO_ASSERT_OK(undo);
  auto back = reach(&h, &nodes, target, PublicState::kServing);
  bool back_reached = co_await std::move(back);
  CO_ASSERT_TRUE(back_reached);
  auto stopping = stop(&h);
  co_await std::move(stopping);
}

// The refusals of replace (each leaves the routing version as it was), then the replacement
// of failed by the spare target of nodes[3].
Task<Result<ReplaceTargetResponse>> refuse_then_replace(Harness* h, const std::vector<Node>* nodes,
                                                        TargetId failed) {
  uint64_t version = h->mgmtd->routing_version();
  // Refusals: unknown ids, a target already in the chain, one on a node the chain holds.
  std::vector<std::pair<TargetId, TargetId>> bad = {{999, (*nodes)[3].targets[0]},
                                                    {failed, 999},
                                                    {failed, (*nodes)[1].targets[0]},
                                                    {failed, (*nodes)[0].targets[1]},
                                                    {(*nodes)[3].targets[0], failed}};
  for (auto [old_target, with] : bad) {
    auto refused_call = replace(h, old_target, with);
    auto refused = co_await std::move(refused_call);
    EXPECT_FALSE(refused.ok()) << old_target << " by " << with;
  }
  EXPECT_EQ(h->mgmtd->routing_version(), version);
  auto replacing = replace(h, failed, (*nodes)[3].targets[0]);
  co_return co_await std::move(replacing);
}

MICA_CO_TEST(MgmtdAdmin, ReplaceSwapsAFailedTargetForAnEmptyOneThatSyncs) {
  Harness h(dir.path);
  std::vector<Node> nodes;
  auto setting_up = one_chain(&h, &nodes);
  Status set_up = co_await std::move(setting_up);
  CO_ASSERT_OK(set_up);
  // A fourth node with a target in no chain, and a second target on node 0.
  Node spare{.request = storage_node("spare", {"spare-t"})};
  auto joining = join(&h, &spare);
  Status joined = co_await std::move(joining);
  CO_ASSERT_OK(joined);
  nodes.push_back(spare);
  nodes[0].request.targets.push_back(disk_report("n0-second"));
  auto growing = join(&h, &nodes[0]);
  Status grown = co_await std::move(growing);
  CO_ASSERT_OK(grown);
  TargetId failed = nodes[2].targets[0];
  nodes[2].beating = false;
  auto offline = reach(&h, &nodes, failed, PublicState::kOffline);
  bool offline_reached = co_await std::move(offline);
  CO_ASSERT_TRUE(offline_reached);
  // The healthy nodes go on beating meanwhile, or their leases lapse on a loaded machine.
  auto admin = while_beating(&h, &nodes, refuse_then_replace(&h, &nodes, failed));
  Result<ReplaceTargetResponse> replaced = co_await std::move(admin);
  CO_ASSERT_OK(replaced);
  TargetId fresh = nodes[3].targets[0];
  const RoutingSnapshot& routing = *h.mgmtd->routing();
  EXPECT_EQ(find_target(routing, failed)->chain, 0u);
  EXPECT_EQ(find_target(routing, fresh)->chain, replaced->chain.id);
  auto serving = reach(&h, &nodes, fresh, PublicState::kServing);
  bool serving_reached = co_await std::move(serving);
  CO_ASSERT_TRUE(serving_reached);
  auto stopping = stop(&h);
  co_await std::move(stopping);
}

MICA_CO_TEST(MgmtdAdmin, PromoteUnblocksAChainWaitingForItsLastServingTarget) {
  Harness h(dir.path);
  std::vector<Node> nodes;
  auto setting_up = one_chain(&h, &nodes);
  Status set_up = co_await std::move(setting_up);
  CO_ASSERT_OK(set_up);
  ChainId chain = find_target(*h.mgmtd->routing(), nodes[0].targets[0])->chain;
  auto full_call = promote(&h, chain, nodes[0].targets[0]);
  auto full = co_await std::move(full_call);
  EXPECT_EQ(full.status().code(), StatusCode::kInvalidArgument);  // nothing to unblock
  auto unknown_call = promote(&h, chain + 100, nodes[0].targets[0]);
  auto unknown = co_await std::move(unknown_call);
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  // Everyone goes silent: the head-most serving target becomes lastsrv, the chain blocks.
  for (Node& node : nodes) node.beating = false;
  auto blocked = beat_until(&h, &nodes, [&](const RoutingSnapshot& r) {
    for (const Node& node : nodes)
      if (state_of(r, node.targets[0]) == PublicState::kLastServing) return true;
    return false;
  });
  bool blocked_reached = co_await std::move(blocked);
  CO_ASSERT_TRUE(blocked_reached);
  // A target other than the lastsrv one comes back and is promoted.
  const ChainInfo* info = find_chain(*h.mgmtd->routing(), chain);
  TargetId lastsrv = info->targets[0].target;
  CO_ASSERT_EQ(info->targets[0].state, PublicState::kLastServing);
  size_t back = lastsrv == nodes[0].targets[0] ? 1 : 0;
  nodes[back].beating = true;
  auto returning = reach(&h, &nodes, nodes[back].targets[0], PublicState::kWaiting);
  bool returned = co_await std::move(returning);
  CO_ASSERT_TRUE(returned);
  auto promoted_call = promote(&h, chain, nodes[back].targets[0]);
  auto promoted = co_await std::move(promoted_call);
  CO_ASSERT_OK(promoted);
  EXPECT_NE(promoted->warning.find("lost"), std::string::npos) << promoted->warning;
  EXPECT_EQ(state_of(*h.mgmtd->routing(), nodes[back].targets[0]), PublicState::kServing);
  auto stopping = stop(&h);
  co_await std::move(stopping);
}

MICA_CO_TEST(MgmtdAdmin, BadChainTableAndHeartbeatRequestsChangeNothing) {
  Harness h(dir.path);
  std::vector<Node> nodes;
  auto setting_up = one_chain(&h, &nodes);
  Status set_up = co_await std::move(setting_up);
  CO_ASSERT_OK(set_up);
  Node meta{.request = storage_node("meta", {})};
  meta.request.kind = NodeKind::kMeta;
  auto joining = join(&h, &meta);
  Status joined = co_await std::move(joining);
  CO_ASSERT_OK(joined);
  uint64_t version = h.mgmtd->routing_version();
  std::vector<CreateChainTableRequest> bad = {
      {.nodes = {meta.id}},           // not a storage node
      {.replica_count = 99},          // over the replica limit
      {.nodes = {nodes[0].id, 999}},  // an unknown node
      {.replica_count = 3},           // every target is in a chain already
  };
  for (const CreateChainTableRequest& request : bad) {
    auto calling = h.stub().create_chain_table(request);
    auto refused = co_await std::move(calling);
    EXPECT_FALSE(refused.ok());
  }
  // A heartbeat with the wrong identity or another node's target is refused whole.
  HeartbeatRequest impostor = heartbeat_of(h, nodes[0].request, nodes[0].id, nodes[0].targets);
  impostor.identity = "impostor";
  auto impostor_call = heartbeat(&h, impostor);
  auto refused_impostor = co_await std::move(impostor_call);
  EXPECT_EQ(refused_impostor.status().code(), StatusCode::kNotFound);
  HeartbeatRequest foreign = heartbeat_of(h, nodes[0].request, nodes[0].id, nodes[1].targets);
  auto foreign_call = heartbeat(&h, foreign);
  auto refused_foreign = co_await std::move(foreign_call);
  EXPECT_EQ(refused_foreign.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(h.mgmtd->routing_version(), version);
  auto stopping = stop(&h);
  co_await std::move(stopping);
}

}  // namespace
}  // namespace mica::craq
