// meta/layout.h and meta/types.h: inode ids carry their shard, names are checked, and a
// layout's chains are a fixed function of the layout and its table.
#include "meta/layout.h"

#include <set>

#include <gtest/gtest.h>

namespace mica::meta {
namespace {

craq::ChainTable table_of(uint32_t chains) {
  craq::ChainTable table;
  table.id = 1;
  for (uint32_t i = 1; i <= chains; ++i) table.chains.push_back(100 + i);
  return table;
}

TEST(InodeIdTest, CarriesItsShard) {
  InodeId id = make_inode_id(7, 12345);
  EXPECT_EQ(shard_of(id), 7u);
  EXPECT_EQ(sequence_of(id), 12345u);
  EXPECT_EQ(shard_of(kRootInode), 0u);
  EXPECT_EQ(make_inode_id(kShardsMax - 1, 1) >> kShardShift, kShardsMax - 1);
}

TEST(CheckNameTest, RefusesWhatNoEntryMayBeCalled) {
  EXPECT_TRUE(check_name("a").ok());
  EXPECT_TRUE(check_name(std::string(255, 'x')).ok());
  EXPECT_EQ(check_name(std::string(256, 'x')).code(), StatusCode::kNameTooLong);
  EXPECT_EQ(check_name("").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(check_name(".").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(check_name("..").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(check_name("a/b").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(check_name(std::string("a\0b", 3)).code(), StatusCode::kInvalidArgument);
}

TEST(LayoutTest, ChainsAreTheStripeFromStartInASeededOrder) {
  craq::ChainTable table = table_of(8);
  Layout layout{.chunk_size_bytes = 1 << 20, .table = 1, .stripe = 3, .start = 6, .seed = 42};
  auto chains = layout_chains(layout, table);
  ASSERT_TRUE(chains.ok());
  ASSERT_EQ(chains->size(), 3u);
  EXPECT_EQ(std::set<craq::ChainId>(chains->begin(), chains->end()),
            (std::set<craq::ChainId>{107, 108, 101}));
  // Fixed for fixed inputs.
  EXPECT_EQ(*layout_chains(layout, table), *chains);
  EXPECT_EQ(chunk_chain(*chains, 4), (*chains)[1]);
}

TEST(LayoutTest, SeedsSpreadTheOrder) {
  craq::ChainTable table = table_of(6);
  std::set<std::vector<craq::ChainId>> orders;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Layout layout{.chunk_size_bytes = 1 << 20, .table = 1, .stripe = 6, .start = 0, .seed = seed};
    orders.insert(*layout_chains(layout, table));
  }
  EXPECT_GT(orders.size(), 20u);
}

TEST(LayoutTest, RefusesAStripeThatDoesNotFit) {
  craq::ChainTable table = table_of(2);
  Layout layout{.chunk_size_bytes = 1 << 20, .table = 1, .stripe = 3, .start = 0, .seed = 0};
  EXPECT_EQ(layout_chains(layout, table).status().code(), StatusCode::kInvalidArgument);
  layout.stripe = 0;
  EXPECT_EQ(layout_chains(layout, table).status().code(), StatusCode::kInvalidArgument);
}

TEST(LayoutTest, NewLayoutsTakeTheClusterChunkSizeAndRotate) {
  craq::RoutingSnapshot routing;
  EXPECT_EQ(new_layout(routing, {}, 0, 1).status().code(), StatusCode::kNotFound);
  routing.tables.push_back(table_of(4));
  auto layout = new_layout(routing, {}, 5, 9);
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(layout->chunk_size_bytes, routing.config.chunk_size_default_bytes);
  EXPECT_EQ(layout->stripe, 4u);
  EXPECT_EQ(layout->start, 1u);
  EXPECT_EQ(new_layout(routing, {.chunk_size_bytes = 3 << 20}, 0, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(new_layout(routing, {.chunk_size_bytes = 1 << 10}, 0, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(new_layout(routing, {.stripe = 9}, 0, 1)->stripe, 4u);
}

}  // namespace
}  // namespace mica::meta
