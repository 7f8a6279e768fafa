// mgmtd's metadata shard map: meta nodes name their shards when they register, and routing
// publishes shard -> node sorted by shard (craq/mgmtd.h, RoutingSnapshot::meta_shards). A
// real Mgmtd on LMDB over TCP on 127.0.0.1; lease 200 ms, so the file runs in about a second.
#include <gtest/gtest.h>

#include "async/wait_list.h"
#include "craq/mgmtd.h"
#include "tests/co_test.h"
#include "tests/craq/mgmtd_harness.h"

namespace mica::craq {
namespace {

using namespace std::chrono_literals;
using testing::Harness;

RegisterRequest meta_node(std::string identity, std::vector<uint32_t> shards, NodeId id = 0) {
  return RegisterRequest{.node = id,
                         .identity = identity,
                         .kind = NodeKind::kMeta,
                         .host_name = "host-" + identity,
                         .rpc_address = "127.0.0.1:" + std::to_string(7000 + shards.size()),
                         .meta_shards = std::move(shards)};
}

std::vector<std::pair<uint32_t, NodeId>> shard_map(const RoutingSnapshot& routing) {
  std::vector<std::pair<uint32_t, NodeId>> out;
  for (const MetaShardRoute& route : routing.meta_shards) out.emplace_back(route.shard, route.node);
  return out;
}

Task<Result<NodeId>> join(Harness* h, RegisterRequest request) {
  auto calling = testing::register_node(h, std::move(request));
  CO_TRY_ASSIGN(RegisterResponse response, co_await std::move(calling));
  co_return response.node;
}

MICA_CO_TEST(MgmtdMetaShards, RegisteredShardsArePublishedSortedByShard) {
  Harness h(dir.path);
  auto starting = testing::start(&h);
  Status started = co_await std::move(starting);
  CO_ASSERT_OK(started);
  auto joining_a = join(&h, meta_node("meta-a", {2, 0}));
  Result<NodeId> a = co_await std::move(joining_a);
  CO_ASSERT_OK(a);
  auto joining_b = join(&h, meta_node("meta-b", {3, 1}));
  Result<NodeId> b = co_await std::move(joining_b);
  CO_ASSERT_OK(b);
  const RoutingSnapshot& routing = *h.mgmtd->routing();
  std::vector<std::pair<uint32_t, NodeId>> expected = {{0, *a}, {1, *b}, {2, *a}, {3, *b}};
  EXPECT_EQ(shard_map(routing), expected);
  // A client finds the shard's process through the node's rpc_address.
  CO_ASSERT_TRUE(find_node(routing, *b) != nullptr);
  EXPECT_EQ(find_node(routing, *b)->rpc_address, "127.0.0.1:7002");
  auto stopping = testing::stop(&h);
  co_await std::move(stopping);
}

MICA_CO_TEST(MgmtdMetaShards, AShardOfALiveNodeIsRefusedAndChangesNothing) {
  Harness h(dir.path);
  auto starting = testing::start(&h);
  Status started = co_await std::move(starting);
  CO_ASSERT_OK(started);
  auto joining_a = join(&h, meta_node("meta-a", {0, 1}));
  Result<NodeId> a = co_await std::move(joining_a);
  CO_ASSERT_OK(a);
  uint64_t version = h.mgmtd->routing_version();
  auto joining_b = join(&h, meta_node("meta-b", {1, 2}));
  Result<NodeId> b = co_await std::move(joining_b);
  CO_ASSERT_TRUE(!b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kAlreadyExists) << b.status();
  EXPECT_NE(b.status().message().find("shard 1"), std::string::npos) << b.status();
  EXPECT_EQ(h.mgmtd->routing_version(), version);
  std::vector<std::pair<uint32_t, NodeId>> expected = {{0, *a}, {1, *a}};
  EXPECT_EQ(shard_map(*h.mgmtd->routing()), expected);
  auto stopping = testing::stop(&h);
  co_await std::move(stopping);
}

MICA_CO_TEST(MgmtdMetaShards, ADeadNodeKeepsItsShardsUntilAnotherClaimsThem) {
  Harness h(dir.path);
  auto starting = testing::start(&h);
  Status started = co_await std::move(starting);
  CO_ASSERT_OK(started);
  auto joining_a = join(&h, meta_node("meta-a", {0, 1}));
  Result<NodeId> a = co_await std::move(joining_a);
  CO_ASSERT_OK(a);
  // No heartbeats: the lease (200 ms) runs out, the shards stay where clients look.
  Status slept = co_await sleep_for(300ms);
  EXPECT_TRUE(slept.ok());
  std::vector<std::pair<uint32_t, NodeId>> before = {{0, *a}, {1, *a}};
  EXPECT_EQ(shard_map(*h.mgmtd->routing()), before);
  auto joining_b = join(&h, meta_node("meta-b", {1}));
  Result<NodeId> b = co_await std::move(joining_b);
  CO_ASSERT_OK(b);
  std::vector<std::pair<uint32_t, NodeId>> after = {{0, *a}, {1, *b}};
  EXPECT_EQ(shard_map(*h.mgmtd->routing()), after);
  EXPECT_EQ(find_node(*h.mgmtd->routing(), *a)->meta_shards, std::vector<uint32_t>{0});
  auto stopping = testing::stop(&h);
  co_await std::move(stopping);
}

MICA_CO_TEST(MgmtdMetaShards, ReRegistrationReplacesTheNodesShards) {
  Harness h(dir.path);
  auto starting = testing::start(&h);
  Status started = co_await std::move(starting);
  CO_ASSERT_OK(started);
  auto joining_a = join(&h, meta_node("meta-a", {0, 1}));
  Result<NodeId> a = co_await std::move(joining_a);
  CO_ASSERT_OK(a);
  auto again = join(&h, meta_node("meta-a", {1, 5}, *a));
  Result<NodeId> same = co_await std::move(again);
  CO_ASSERT_OK(same);
  EXPECT_EQ(*same, *a);
  std::vector<std::pair<uint32_t, NodeId>> expected = {{1, *a}, {5, *a}};
  EXPECT_EQ(shard_map(*h.mgmtd->routing()), expected);
  auto stopping = testing::stop(&h);
  co_await std::move(stopping);
}

MICA_CO_TEST(MgmtdMetaShards, TheShardMapSurvivesAnMgmtdRestart) {
  Harness h(dir.path);
  auto starting = testing::start(&h);
  Status started = co_await std::move(starting);
  CO_ASSERT_OK(started);
  auto joining_a = join(&h, meta_node("meta-a", {0, 3}));
  Result<NodeId> a = co_await std::move(joining_a);
  CO_ASSERT_OK(a);
  std::vector<std::pair<uint32_t, NodeId>> expected = {{0, *a}, {3, *a}};
  auto stopping = testing::stop(&h);
  co_await std::move(stopping);
  auto restarting = testing::start(&h);
  Status restarted = co_await std::move(restarting);
  CO_ASSERT_OK(restarted);
  EXPECT_EQ(shard_map(*h.mgmtd->routing()), expected);
  auto stopping_again = testing::stop(&h);
  co_await std::move(stopping_again);
}

MICA_CO_TEST(MgmtdMetaShards, BadShardListsAreRefused) {
  Harness h(dir.path);
  auto starting = testing::start(&h);
  Status started = co_await std::move(starting);
  CO_ASSERT_OK(started);
  auto twice = join(&h, meta_node("meta-a", {4, 4}));
  Result<NodeId> refused_twice = co_await std::move(twice);
  EXPECT_EQ(refused_twice.status().code(), StatusCode::kInvalidArgument);
  RegisterRequest storage = testing::storage_node("store", {"t1"});
  storage.meta_shards = {0};
  auto storage_joining = join(&h, storage);
  Result<NodeId> refused_storage = co_await std::move(storage_joining);
  EXPECT_EQ(refused_storage.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(h.mgmtd->routing()->meta_shards.empty());
  auto stopping = testing::stop(&h);
  co_await std::move(stopping);
}

}  // namespace
}  // namespace mica::craq
