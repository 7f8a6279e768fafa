// mgmtd's membership, durability and routing: a real Mgmtd on LMDB served over TCP on
// 127.0.0.1 (craq/mgmtd.h). Intervals are short (lease 200 ms, rounds every 20 ms), so the
// whole file runs in a few seconds.
#include "craq/mgmtd.h"

#include <gtest/gtest.h>

#include "tests/co_test.h"
#include "tests/craq/mgmtd_harness.h"

namespace mica::craq {
namespace {

using namespace std::chrono_literals;
using testing::Harness;
using testing::storage_node;

MICA_CO_TEST(Mgmtd, RegisterAssignsIdsAndReRegistrationKeepsThem) {
  Harness h(dir.path);
  auto h_starting = testing::start(&h);
  Status h_started = co_await std::move(h_starting);
  CO_ASSERT_OK(h_started);
  RegisterRequest a = storage_node("node-a", {"t-a1", "t-a2"});
  auto first_call = testing::register_node(&h, a);
  auto first = co_await std::move(first_call);
  CO_ASSERT_OK(first);
  EXPECT_NE(first->node, 0u);
  CO_ASSERT_EQ(first->targets.size(), 2u);
  EXPECT_NE(first->targets[0], first->targets[1]);
  auto other_call = testing::register_node(&h, storage_node("node-b", {"t-b1"}));
  auto other = co_await std::move(other_call);
  CO_ASSERT_OK(other);
  EXPECT_NE(other->node, first->node);
  // The same process again, now naming its id and its targets' ids.
  a.node = first->node;
  a.targets[0].target = first->targets[0];
  auto again_call = testing::register_node(&h, a);
  auto again = co_await std::move(again_call);
  CO_ASSERT_OK(again);
  EXPECT_EQ(again->node, first->node);
  EXPECT_EQ(again->targets, first->targets);
  EXPECT_GT(again->routing_version, first->routing_version);
  const RoutingSnapshot& routing = *h.mgmtd->routing();
  EXPECT_EQ(routing.nodes.size(), 2u);
  EXPECT_EQ(routing.targets.size(), 3u);
  CO_ASSERT_TRUE(find_target(routing, first->targets[1]) != nullptr);
  EXPECT_EQ(find_target(routing, first->targets[1])->node, first->node);
  auto h_stopping = testing::stop(&h);
  co_await std::move(h_stopping);
}

MICA_CO_TEST(Mgmtd, WrongIdentityIsRefusedAndChangesNothing) {
  Harness h(dir.path);
  auto h_starting = testing::start(&h);
  Status h_started = co_await std::move(h_starting);
  CO_ASSERT_OK(h_started);
  auto first_call = testing::register_node(&h, storage_node("node-a", {"t-a1"}));
  auto first = co_await std::move(first_call);
  CO_ASSERT_OK(first);
  uint64_t version = h.mgmtd->routing_version();
  RegisterRequest impostor = storage_node("somebody-else", {"t-x"}, first->node);
  auto refused_call = testing::register_node(&h, impostor);
  auto refused = co_await std::move(refused_call);
  CO_ASSERT_TRUE(!refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.status().message().find(std::to_string(first->node)), std::string::npos)
      << refused.status();
  EXPECT_EQ(h.mgmtd->routing_version(), version);
  EXPECT_EQ(h.mgmtd->routing()->targets.size(), 1u);
  auto h_stopping = testing::stop(&h);
  co_await std::move(h_stopping);
}

MICA_CO_TEST(Mgmtd, HeartbeatOfAnUnknownNodeSaysRegisterFirst) {
  Harness h(dir.path);
  auto h_starting = testing::start(&h);
  Status h_started = co_await std::move(h_starting);
  CO_ASSERT_OK(h_started);
  HeartbeatRequest stranger{.node = 42, .identity = "x"};
  auto refused_call = testing::heartbeat(&h, stranger);
  auto refused = co_await std::move(refused_call);
  CO_ASSERT_TRUE(!refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kNotFound);
  EXPECT_NE(refused.status().message().find("register first"), std::string::npos);
  RegisterRequest a = storage_node("node-a", {"t-a1"});
  auto reg_call = testing::register_node(&h, a);
  auto reg = co_await std::move(reg_call);
  CO_ASSERT_OK(reg);
  // Right node, a target that is not its own.
  HeartbeatRequest wrong = testing::heartbeat_of(h, a, reg->node, {reg->targets[0] + 100});
  auto refused_target_call = testing::heartbeat(&h, wrong);
  auto refused_target = co_await std::move(refused_target_call);
  EXPECT_EQ(refused_target.status().code(), StatusCode::kNotFound);
  auto ok_call = testing::heartbeat(&h, testing::heartbeat_of(h, a, reg->node, reg->targets));
  auto ok = co_await std::move(ok_call);
  CO_ASSERT_OK(ok);
  EXPECT_EQ(ok->routing_version, h.mgmtd->routing_version());
  auto h_stopping = testing::stop(&h);
  co_await std::move(h_stopping);
}

MICA_CO_TEST(Mgmtd, ARestartResumesWithTheSameVersionIdsAndNodes) {
  Harness h(dir.path);
  auto h_starting = testing::start(&h);
  Status h_started = co_await std::move(h_starting);
  CO_ASSERT_OK(h_started);
  RegisterRequest a = storage_node("node-a", {"t-a1"});
  auto reg_call = testing::register_node(&h, a);
  auto reg = co_await std::move(reg_call);
  CO_ASSERT_OK(reg);
  RoutingSnapshot before = *h.mgmtd->routing();
  auto h_stopping = testing::stop(&h);
  co_await std::move(h_stopping);

  Harness again(dir.path);
  auto again_starting = testing::start(&again);
  Status again_started = co_await std::move(again_starting);
  CO_ASSERT_OK(again_started);
  EXPECT_EQ(*again.mgmtd->routing(), before);
  // Restart grace: the node counts as alive although it has not heartbeat this mgmtd.
  auto calling = again.stub().status(StatusRequest{});
  auto status = co_await std::move(calling);
  CO_ASSERT_OK(status);
  CO_ASSERT_EQ(status->nodes.size(), 1u);
  EXPECT_TRUE(status->nodes[0].alive);
  // New ids continue after the old ones.
  auto b_call = testing::register_node(&again, storage_node("node-b", {"t-b1"}));
  auto b = co_await std::move(b_call);
  CO_ASSERT_OK(b);
  EXPECT_GT(b->node, reg->node);
  EXPECT_GT(b->targets[0], reg->targets[0]);
  auto again_stopping = testing::stop(&again);
  co_await std::move(again_stopping);
}

Task<Result<GetRoutingResponse>> get_routing(Harness* h, uint64_t known, uint32_t wait_ms) {
  GetRoutingRequest request{.known_version = known, .wait_ms = wait_ms};
  auto calling = h->stub().get_routing(request);
  co_return co_await std::move(calling);
}

Task<void> register_later(Harness* h) {
  Status slept = co_await sleep_for(50ms);
  EXPECT_TRUE(slept.ok()) << slept;
  auto reg_call = testing::register_node(h, storage_node("late", {"t-late"}));
  auto reg = co_await std::move(reg_call);
  EXPECT_TRUE(reg.ok()) << reg.status();
}

MICA_CO_TEST(Mgmtd, LongPollAnswersAtOnceWhenBehindAndWaitsOtherwise) {
  Harness h(dir.path);
  auto h_starting = testing::start(&h);
  Status h_started = co_await std::move(h_starting);
  CO_ASSERT_OK(h_started);
  uint64_t version = h.mgmtd->routing_version();
  TimePoint start = Executor::current()->now();
  auto behind_call = get_routing(&h, version - 1, 5000);
  auto behind = co_await std::move(behind_call);
  CO_ASSERT_OK(behind);
  EXPECT_LT(Executor::current()->now() - start, 1s);
  CO_ASSERT_TRUE(behind->routing.has_value());
  EXPECT_EQ(behind->routing->version, version);
  // Current: nothing changes, so it answers without a snapshot after the wait.
  start = Executor::current()->now();
  auto current_call = get_routing(&h, version, 100);
  auto current = co_await std::move(current_call);
  CO_ASSERT_OK(current);
  EXPECT_GE(Executor::current()->now() - start, 100ms);
  EXPECT_FALSE(current->routing.has_value());
  // A change during the wait answers it with the new snapshot.
  TaskScope scope;
  scope.spawn(register_later(&h));
  start = Executor::current()->now();
  auto changed_call = get_routing(&h, version, 5000);
  auto changed = co_await std::move(changed_call);
  co_await scope.join();
  CO_ASSERT_OK(changed);
  EXPECT_LT(Executor::current()->now() - start, 4s);
  CO_ASSERT_TRUE(changed->routing.has_value());
  EXPECT_GT(changed->version, version);
  auto h_stopping = testing::stop(&h);
  co_await std::move(h_stopping);
}

MICA_CO_TEST(Mgmtd, BadRegistrationsAreRefusedAndChangeNothing) {
  Harness h(dir.path);
  h.options.tags_max = 2;
  h.options.string_bytes_max = 32;
  auto h_starting = testing::start(&h);
  Status h_started = co_await std::move(h_starting);
  CO_ASSERT_OK(h_started);
  uint64_t version = h.mgmtd->routing_version();
  std::vector<RegisterRequest> bad;
  bad.push_back(storage_node("", {"t"}));                 // no identity
  bad.push_back(storage_node(std::string(33, 'x'), {}));  // identity too long
  bad.push_back(storage_node("n", {"t", "t"}));           // a target twice
  bad.push_back(storage_node("n", {""}));                 // a target without identity
  bad.push_back(storage_node("n", {}, 77));               // an id never given out
  RegisterRequest tags = storage_node("n", {});
  tags.tags = {"a", "b", "c"};
  bad.push_back(tags);
  RegisterRequest meta = storage_node("n", {"t"});
  meta.kind = NodeKind::kMeta;  // only storage nodes have targets
  bad.push_back(meta);
  for (const RegisterRequest& request : bad) {
    auto refused_call = testing::register_node(&h, request);
    auto refused = co_await std::move(refused_call);
    EXPECT_FALSE(refused.ok()) << request.identity;
  }
  EXPECT_EQ(h.mgmtd->routing_version(), version);
  EXPECT_TRUE(h.mgmtd->routing()->nodes.empty());
  auto h_stopping = testing::stop(&h);
  co_await std::move(h_stopping);
}

MICA_CO_TEST(Mgmtd, MetricsShowNodesChainsAndTheRoutingVersion) {
  Harness h(dir.path);
  auto h_starting = testing::start(&h);
  Status h_started = co_await std::move(h_starting);
  CO_ASSERT_OK(h_started);
  auto reg_call = testing::register_node(&h, storage_node("node-a", {"t-a1"}));
  auto reg = co_await std::move(reg_call);
  CO_ASSERT_OK(reg);
  auto round = h.mgmtd->run_round();
  Status rounded = co_await std::move(round);
  CO_ASSERT_OK(rounded);
  EXPECT_TRUE(h.mgmtd->health().ok()) << h.mgmtd->health();
  std::string text = metrics().render_prometheus();
  EXPECT_NE(text.find("mica_mgmtd_nodes{state=\"alive\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("mica_mgmtd_targets{state=\"serving\"}"), std::string::npos);
  EXPECT_NE(text.find("mica_mgmtd_chains{health=\"blocked\"}"), std::string::npos);
  EXPECT_NE(text.find("mica_mgmtd_routing_version " + std::to_string(h.mgmtd->routing_version())),
            std::string::npos);
  EXPECT_NE(text.find("mica_mgmtd_registrations_total"), std::string::npos);
  auto stopping_mgmtd = h.mgmtd->stop();
  co_await std::move(stopping_mgmtd);
  EXPECT_FALSE(h.mgmtd->health().ok());  // the loop no longer runs
  auto h_stopping = testing::stop(&h);
  co_await std::move(h_stopping);
}

MICA_CO_TEST(Mgmtd, ANodeThatLostItsIdGetsItBackAndTargetsStayWithTheirNode) {
  Harness h(dir.path);
  auto h_starting = testing::start(&h);
  Status h_started = co_await std::move(h_starting);
  CO_ASSERT_OK(h_started);
  auto first_call = testing::register_node(&h, storage_node("node-a", {"t-a1"}));
  auto first = co_await std::move(first_call);
  CO_ASSERT_OK(first);
  // Node 0 again with the same identity: the answer was lost, the id is the same.
  auto again_call = testing::register_node(&h, storage_node("node-a", {"t-a1"}));
  auto again = co_await std::move(again_call);
  CO_ASSERT_OK(again);
  EXPECT_EQ(again->node, first->node);
  EXPECT_EQ(again->targets, first->targets);
  uint64_t version = h.mgmtd->routing_version();
  // Another node claiming node-a's target identity is refused.
  auto thief_call = testing::register_node(&h, storage_node("node-b", {"t-a1"}));
  auto thief = co_await std::move(thief_call);
  EXPECT_EQ(thief.status().code(), StatusCode::kInvalidArgument);
  // And so is a target id presented with a new identity.
  RegisterRequest renamed = storage_node("node-a", {"t-other"}, first->node);
  renamed.targets[0].target = first->targets[0];
  auto renamed_call = testing::register_node(&h, renamed);
  auto refused = co_await std::move(renamed_call);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(h.mgmtd->routing_version(), version);
  auto h_stopping = testing::stop(&h);
  co_await std::move(h_stopping);
}

MICA_CO_TEST(Mgmtd, CapacityIsPersistedOnlyWhenItMovedFarEnough) {
  Harness h(dir.path);
  h.options.capacity_persist_delta_bytes = 1000;
  auto h_starting = testing::start(&h);
  Status h_started = co_await std::move(h_starting);
  CO_ASSERT_OK(h_started);
  RegisterRequest a = storage_node("node-a", {"t-a1"});
  auto reg_call = testing::register_node(&h, a);
  auto reg = co_await std::move(reg_call);
  CO_ASSERT_OK(reg);
  uint64_t version = h.mgmtd->routing_version();
  HeartbeatRequest small = testing::heartbeat_of(h, a, reg->node, reg->targets);
  small.targets[0].used_bytes = 500;
  auto small_call = testing::heartbeat(&h, small);
  auto small_answer = co_await std::move(small_call);
  CO_ASSERT_OK(small_answer);
  auto round_call = h.mgmtd->run_round();
  Status rounded = co_await std::move(round_call);
  CO_ASSERT_OK(rounded);
  EXPECT_EQ(h.mgmtd->routing_version(), version);  // no write for a small move
  auto status_call = h.stub().status(StatusRequest{});
  auto status = co_await std::move(status_call);
  CO_ASSERT_OK(status);
  EXPECT_EQ(status->routing.targets[0].used_bytes, 500u);  // but status shows it
  HeartbeatRequest large = small;
  large.targets[0].used_bytes = 5000;
  auto large_call = testing::heartbeat(&h, large);
  auto large_answer = co_await std::move(large_call);
  CO_ASSERT_OK(large_answer);
  auto round_again = h.mgmtd->run_round();
  Status rounded_again = co_await std::move(round_again);
  CO_ASSERT_OK(rounded_again);
  EXPECT_EQ(h.mgmtd->routing_version(), version + 1);
  EXPECT_EQ(h.mgmtd->routing()->targets[0].used_bytes, 5000u);
  auto h_stopping = testing::stop(&h);
  co_await std::move(h_stopping);
}

MICA_CO_TEST(Mgmtd, AStateOfANewerFormatIsRefused) {
  Harness h(dir.path);
  auto h_starting = testing::start(&h);
  Status h_started = co_await std::move(h_starting);
  CO_ASSERT_OK(h_started);
  auto closing_client = h.client->close();
  co_await std::move(closing_client);
  h.client.reset();
  auto server_stopping = h.server->shutdown();
  co_await std::move(server_stopping);
  h.server.reset();
  auto mgmtd_stopping = h.mgmtd->stop();
  co_await std::move(mgmtd_stopping);
  h.mgmtd.reset();
  // What a later mgmtd would have written.
  Result<kv::Table> counters = h.env->open_table("mgmtd_counters");
  CO_ASSERT_OK(counters);
  MgmtdCounters newer{.format_version = kMgmtdFormatVersion + 1, .routing_version = 9};
  std::vector<std::byte> bytes = net::encode(newer);
  kv::WriteRequest write;
  write.put(*counters, std::string(8, '\0'),
            std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  Status written = co_await h.env->write(&write);
  CO_ASSERT_OK(written);
  auto reopening = Mgmtd::open(h.env.get(), h.options);
  auto reopened = co_await std::move(reopening);
  EXPECT_EQ(reopened.status().code(), StatusCode::kNotSupported) << reopened.status();
  auto h_stopping = testing::stop(&h);
  co_await std::move(h_stopping);
}

}  // namespace
}  // namespace mica::craq
