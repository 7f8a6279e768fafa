// The cluster vocabulary: state names, snapshot lookups, and that a routing snapshot
// survives the wire unchanged (craq/types.h).
#include "craq/types.h"

#include <gtest/gtest.h>

#include "craq/mgmtd_service.h"

namespace mica::craq {
namespace {

RoutingSnapshot two_node_snapshot() {
  RoutingSnapshot routing;
  routing.version = 7;
  routing.nodes = {{.id = 1, .identity = "a", .rpc_address = "127.0.0.1:1"},
                   {.id = 4, .identity = "b", .rpc_address = "127.0.0.1:2"}};
  routing.targets = {{.id = 10, .node = 1, .chain = 3}, {.id = 11, .node = 4, .chain = 3}};
  routing.chains = {{.id = 3,
                     .version = 2,
                     .targets = {{10, PublicState::kServing}, {11, PublicState::kSyncing}}}};
  routing.tables = {{.id = 1, .version = 1, .replica_count = 2, .chains = {3}}};
  return routing;
}

TEST(CraqTypes, StateNamesAreTheOnesTheCliPrints) {
  EXPECT_EQ(public_state_name(PublicState::kLastServing), "lastsrv");
  EXPECT_EQ(public_state_name(PublicState::kServing), "serving");
  EXPECT_EQ(local_state_name(LocalState::kUpToDate), "up-to-date");
  EXPECT_EQ(node_kind_name(NodeKind::kMeta), "meta");
}

TEST(CraqTypes, LookupsFindPresentIdsAndOnlyThose) {
  RoutingSnapshot routing = two_node_snapshot();
  ASSERT_NE(find_node(routing, 4), nullptr);
  EXPECT_EQ(find_node(routing, 4)->identity, "b");
  EXPECT_EQ(find_node(routing, 2), nullptr);
  EXPECT_EQ(find_node(routing, 5), nullptr);
  ASSERT_NE(find_target(routing, 11), nullptr);
  EXPECT_EQ(find_target(routing, 11)->node, 4u);
  EXPECT_EQ(find_chain(routing, 3)->targets.size(), 2u);
  EXPECT_EQ(find_chain(routing, 0), nullptr);
  EXPECT_EQ(find_table(routing, 1)->chains, std::vector<ChainId>{3});
}

TEST(CraqTypes, RoutingSnapshotRoundTripsThroughItsEncoding) {
  GetRoutingResponse response{.version = 7, .routing = two_node_snapshot()};
  auto bytes = net::encode(response);
  auto decoded = net::decode<GetRoutingResponse>(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, response);
}

TEST(CraqTypes, AnOutOfRangeStateIsRefusedOnDecode) {
  ChainTarget target{.target = 1, .state = PublicState::kOffline};
  auto bytes = net::encode(target);
  bytes.back() = std::byte{9};  // the state is the last byte: beyond kOffline
  EXPECT_FALSE(net::decode<ChainTarget>(bytes).ok());
}

}  // namespace
}  // namespace mica::craq
