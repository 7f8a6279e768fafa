// A shard on a simulated host (kv/'s simulated store, virtual time): mutations acknowledged
// before the host crashes are all there after its restart, and the shard reopens clean.
// Seeds: MICA_SIM_SEED picks the first; a handful run (well under a second in Debug).
#include "async/sim/world.h"
#include "tests/meta/shard_fixture.h"

namespace mica::meta {
namespace {

using testing::add_inode;
using testing::NewInode;

constexpr const char* kShardDir = "/meta0";
constexpr int kMutationsMax = 400;
constexpr int kSeeds = 5;

ShardOptions sim_options() {
  ShardOptions options = testing::test_shard_options(kShardDir);
  options.env.map_size_bytes = uint64_t{1} << 28;
  return options;
}

// Adds files one after another until the host goes down; acked gets each acknowledged id.
Task<void> write_until_crash(std::vector<InodeId>* acked) {
  auto opening = testing::open_test_shard(sim_options());
  auto shard = co_await std::move(opening);
  if (!shard.ok()) co_return;
  for (int i = 0; i < kMutationsMax; ++i) {
    auto adding = add_inode(shard->get(), kRootInode, fmt::format("f{}", i), NewInode{});
    auto added = co_await std::move(adding);
    if (!added.ok()) break;
    acked->push_back(added->id);
  }
  auto closing = (*shard)->close();
  Status closed = co_await std::move(closing);
  (void)closed;  // the crash may fail it
}

// Reopens the shard and counts the acknowledged inodes that are missing.
Task<Result<int>> count_missing(std::vector<InodeId> acked) {
  auto opening = testing::open_test_shard(sim_options());
  auto shard = co_await std::move(opening);
  CO_TRY(shard);
  int missing = 0;
  for (InodeId id : acked) missing += testing::stored_inode(shard->get(), id).ok() ? 0 : 1;
  auto closing = (*shard)->close();
  CO_TRY(co_await std::move(closing));
  co_return missing;
}

TEST(ShardSim, AcknowledgedMutationsSurviveACrash) {
  uint64_t first = sim::sim_seed(1);
  for (uint64_t seed = first; seed < first + kSeeds; ++seed) {
    sim::SimWorld world(seed);
    sim::SimHost& host = world.add_host("meta");
    host.disk().make_durable_directories(kShardDir);
    std::vector<InodeId> acked;
    world.spawn(host, write_until_crash(&acked));
    world.run_for(std::chrono::milliseconds(20 + seed % 7));
    world.crash(host);
    world.restart(host);
    Result<int> missing = world.run(host, count_missing(acked));
    ASSERT_TRUE(missing.ok()) << "seed " << seed << ": " << missing.status();
    EXPECT_EQ(*missing, 0) << "seed " << seed << " lost acknowledged inodes of " << acked.size();
    EXPECT_GT(acked.size(), 0u) << "seed " << seed << ": the crash came before any commit";
  }
}

}  // namespace
}  // namespace mica::meta
