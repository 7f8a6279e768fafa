// meta/statfs.h: capacity from the chained storage targets divided by the replica count,
// free space that counts bytes queued for garbage collection as used, inodes from the shards.
#include "meta/statfs.h"

#include <gtest/gtest.h>

namespace mica::meta {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;

craq::RoutingSnapshot routing_of(std::vector<std::pair<uint64_t, uint64_t>> targets,
                                 uint32_t replicas) {
  craq::RoutingSnapshot routing;
  routing.config.replica_count = replicas;
  craq::TargetId id = 1;
  for (auto [capacity, used] : targets) {
    routing.targets.push_back(craq::TargetInfo{.id = id,
                                               .node = 1,
                                               .chain = craq::ChainId(id),
                                               .capacity_bytes = capacity,
                                               .used_bytes = used});
    ++id;
  }
  return routing;
}

TEST(StatfsTest, CapacityIsTheTargetsDividedByTheReplicaCount) {
  craq::RoutingSnapshot routing =
      routing_of({{3 * kGiB, kGiB}, {3 * kGiB, kGiB}, {3 * kGiB, kGiB}}, 3);
  StatfsReply reply = compute_statfs(&routing, {});
  EXPECT_EQ(reply.total_bytes, 3 * kGiB);
  EXPECT_EQ(reply.free_bytes, 2 * kGiB);
  EXPECT_EQ(reply.block_size, 4096u);
  EXPECT_EQ(reply.name_max, kNameMax);
}

TEST(StatfsTest, TargetsInNoChainAddNoCapacity) {
  craq::RoutingSnapshot routing = routing_of({{2 * kGiB, 0}, {2 * kGiB, 0}}, 1);
  routing.targets[1].chain = 0;
  EXPECT_EQ(compute_statfs(&routing, {}).total_bytes, 2 * kGiB);
}

TEST(StatfsTest, InodesAreTheShardsCounts) {
  std::vector<ShardStatus> shards{{.shard = 0, .inodes = 10}, {.shard = 1, .inodes = 32}};
  StatfsReply reply = compute_statfs(nullptr, shards);
  EXPECT_EQ(reply.inodes, 42u);
  EXPECT_EQ(reply.total_bytes, 0u);
  EXPECT_EQ(reply.free_bytes, 0u);
}

TEST(StatfsTest, BytesQueuedForCollectionAreNotFree) {
  // routing has not seen the disks fill yet: the queued bytes are used all the same.
  craq::RoutingSnapshot routing = routing_of({{4 * kGiB, 0}}, 1);
  std::vector<ShardStatus> shards{{.shard = 0, .gc_queued_files = 2, .gc_queued_bytes = kGiB}};
  StatfsReply reply = compute_statfs(&routing, shards);
  EXPECT_EQ(reply.gc_queued_bytes, kGiB);
  EXPECT_EQ(reply.free_bytes, 3 * kGiB);
  // Once the targets report them, they are not counted twice.
  routing.targets[0].used_bytes = kGiB;
  EXPECT_EQ(compute_statfs(&routing, shards).free_bytes, 3 * kGiB);
}

TEST(StatfsTest, FreeNeverGoesBelowZero) {
  craq::RoutingSnapshot routing = routing_of({{kGiB, kGiB}}, 1);
  std::vector<ShardStatus> shards{{.shard = 0, .gc_queued_bytes = 5 * kGiB}};
  EXPECT_EQ(compute_statfs(&routing, shards).free_bytes, 0u);
}

}  // namespace
}  // namespace mica::meta
