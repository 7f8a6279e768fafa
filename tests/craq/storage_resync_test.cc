// Resync (craq/storage_resync.h): a target added to a chain as syncing is brought to the
// chain's chunks by its predecessor — missing and stale chunks copied whole, extra ones
// removed, writes during the copy kept — and then reports itself up to date; a chain change
// mid-copy restarts it at the new version. Real servers on 127.0.0.1 (tests/craq/
// resync_fixture.h); each test takes well under 5 s.
#include <gtest/gtest.h>

#include "tests/chunk/test_util.h"
#include "tests/co_test.h"
#include "tests/craq/resync_fixture.h"

namespace mica::craq {
namespace {

using testing::Fixture;
using PS = PublicState;

constexpr uint32_t kKiB = 1024;

ChunkRef chunk_ref(uint32_t index) {
  return ChunkRef{.inode = 42, .index = index};
}

// Every node of the fixture holds the same chunks with the same versions, checksums and bytes.
Task<void> expect_identical(Fixture* f) {
  std::vector<chunk::ChunkInfo> first = testing::all_chunks(f->nodes[0].get());
  for (size_t n = 1; n < f->nodes.size(); ++n) {
    std::vector<chunk::ChunkInfo> other = testing::all_chunks(f->nodes[n].get());
    EXPECT_EQ(other.size(), first.size()) << "node " << n;
    for (size_t i = 0; i < std::min(first.size(), other.size()); ++i) {
      EXPECT_EQ(other[i].id, first[i].id) << "node " << n;
      EXPECT_EQ(other[i].committed_version, first[i].committed_version) << "node " << n;
      EXPECT_EQ(other[i].checksum, first[i].checksum) << "node " << n;
      EXPECT_EQ(other[i].length_bytes, first[i].length_bytes) << "node " << n;
      EXPECT_EQ(other[i].committed_tag, first[i].committed_tag) << "node " << n;
      ChunkRef ref{.inode = first[i].id.inode, .index = first[i].id.index};
      auto reading_a = testing::committed_bytes(f->nodes[0].get(), ref);
      std::vector<std::byte> a = co_await std::move(reading_a);
      auto reading_b = testing::committed_bytes(f->nodes[n].get(), ref);
      std::vector<std::byte> b = co_await std::move(reading_b);
      EXPECT_EQ(a, b) << "node " << n << " chunk " << ref.index;
    }
  }
}

// Writes `count` chunks of different sizes (two writes each) through node 0 at chain_version.
Task<Status> write_chunks(Fixture* f, uint64_t chain_version, uint32_t first, uint32_t count,
                          uint32_t seed) {
  for (uint32_t i = first; i < first + count; ++i) {
    uint32_t size = (4 + (i % 5) * 12) * kKiB + i;  // not block multiples
    auto writing = testing::write_chunk(f, 0, chain_version, chunk_ref(i), 0,
                                        chunk::testing::pattern(size, seed + i));
    CO_TRY(co_await std::move(writing));
    auto again = testing::write_chunk(f, 0, chain_version, chunk_ref(i), 1000,
                                      chunk::testing::pattern(3 * kKiB, seed + 100 + i));
    CO_TRY(co_await std::move(again));
  }
  co_return Status();
}

bool up_to_date_at(testing::ServerNode* node, uint64_t chain_version) {
  StorageTarget* target = node->storage_target();
  return target->local_state() == LocalState::kUpToDate &&
         target->local_chain_version() == chain_version;
}

TargetProgress progress_of(testing::ServerNode* node) {
  for (const TargetProgress& p : node->server->progress().targets)
    if (p.target == node->target) return p;
  return {};
}

MICA_CO_TEST(StorageResync, ASuccessorThatMissedWritesCatchesUpAndReportsUpToDate) {
  Fixture f(dir.path);
  for (int i = 0; i < 3; ++i) {
    auto adding = testing::add_server(&f);
    CO_ASSERT_OK(co_await std::move(adding));
  }
  testing::apply(&f, testing::chain_routing(&f, 1, {{0, PS::kServing}, {1, PS::kServing}}));
  auto writing = write_chunks(&f, 1, 0, 6, 1);
  CO_ASSERT_OK(co_await std::move(writing));
  EXPECT_TRUE(testing::all_chunks(f.nodes[2].get()).empty());
  testing::apply(
      &f, testing::chain_routing(&f, 2, {{0, PS::kServing}, {1, PS::kServing}, {2, PS::kSyncing}}));
  testing::ServerNode* syncing = f.nodes[2].get();
  auto waiting = testing::eventually([&] { return up_to_date_at(syncing, 2); });
  CO_ASSERT_TRUE(co_await std::move(waiting)) << "the syncing target never reported up to date";
  auto comparing = expect_identical(&f);
  co_await std::move(comparing);
  // The predecessor (the last serving target) drove it and counted all of it.
  TargetProgress p = progress_of(f.nodes[1].get());
  EXPECT_FALSE(p.resync_running);
  EXPECT_EQ(p.resync_chunks_total, 6u);
  EXPECT_EQ(p.resync_chunks_done, 6u);
  EXPECT_EQ(p.resync_bytes_done, p.resync_bytes_total);
  EXPECT_GT(p.resync_bytes_total, 0u);
  auto stopping = testing::shut_down(&f);
  co_await std::move(stopping);
}

// Chunks written straight into the returning target's engine: two the chain never had, and
// one the chain has, at an older version with other bytes (a target that missed writes).
Task<Status> plant_strays(chunk::ChunkEngine* engine) {
  for (uint32_t index : {2u, 50u, 51u}) {
    std::vector<std::byte> junk = chunk::testing::pattern(8 * kKiB, 900 + index);
    chunk::UpdateVersion v{.version = 1, .chain_version = 1};
    auto writing = engine->write_and_commit({42, index}, 0, chunk::testing::bytes_of(junk),
                                            crc32c(chunk::testing::bytes_of(junk)), v);
    CO_TRY(co_await std::move(writing));
  }
  co_return Status();
}

MICA_CO_TEST(StorageResync, ChunksTheSyncingTargetShouldNotHaveAreRemoved) {
  Fixture f(dir.path);
  for (int i = 0; i < 3; ++i) {
    auto adding = testing::add_server(&f);
    CO_ASSERT_OK(co_await std::move(adding));
  }
  testing::apply(&f, testing::chain_routing(&f, 1, {{0, PS::kServing}, {1, PS::kServing}}));
  auto writing = write_chunks(&f, 1, 0, 4, 2);
  CO_ASSERT_OK(co_await std::move(writing));
  auto planting = plant_strays(&f.nodes[2]->engine());
  CO_ASSERT_OK(co_await std::move(planting));
  CO_ASSERT_EQ(testing::all_chunks(f.nodes[2].get()).size(), 3u);
  testing::apply(
      &f, testing::chain_routing(&f, 2, {{0, PS::kServing}, {1, PS::kServing}, {2, PS::kSyncing}}));
  testing::ServerNode* syncing = f.nodes[2].get();
  auto waiting = testing::eventually([&] { return up_to_date_at(syncing, 2); });
  CO_ASSERT_TRUE(co_await std::move(waiting));
  auto comparing = expect_identical(&f);
  co_await std::move(comparing);
  auto stopping = testing::shut_down(&f);
  co_await std::move(stopping);
}

// Three servers; node 1 (the predecessor of a syncing node 2) copies at bytes_per_s.
Task<Status> three_servers(Fixture* f, uint64_t bytes_per_s) {
  for (int i = 0; i < 3; ++i) {
    StorageServerOptions options = testing::fixture_options();
    if (i == 1) options.resync_bytes_per_s = bytes_per_s;
    options.resync_chunks_in_flight_max = 2;
    auto adding = testing::add_server(f, options);
    CO_TRY(co_await std::move(adding));
  }
  co_return Status();
}

MICA_CO_TEST(StorageResync, WritesDuringTheCopyAreNotLost) {
  Fixture f(dir.path);
  auto starting = three_servers(&f, 256 * kKiB);  // the copy takes about a second
  CO_ASSERT_OK(co_await std::move(starting));
  testing::apply(&f, testing::chain_routing(&f, 1, {{0, PS::kServing}, {1, PS::kServing}}));
  auto writing = write_chunks(&f, 1, 0, 10, 3);
  CO_ASSERT_OK(co_await std::move(writing));
  testing::apply(
      &f, testing::chain_routing(&f, 2, {{0, PS::kServing}, {1, PS::kServing}, {2, PS::kSyncing}}));
  // Overwrites of chunks being copied, and new chunks, while the copy runs.
  auto overwriting = write_chunks(&f, 2, 0, 10, 4);
  CO_ASSERT_OK(co_await std::move(overwriting));
  auto adding = write_chunks(&f, 2, 20, 5, 5);
  CO_ASSERT_OK(co_await std::move(adding));
  CO_ASSERT_TRUE(progress_of(f.nodes[1].get()).resync_running)
      << "the writes did not overlap the copy (too fast?)";
  testing::ServerNode* syncing = f.nodes[2].get();
  auto waiting = testing::eventually([&] { return up_to_date_at(syncing, 2); });
  CO_ASSERT_TRUE(co_await std::move(waiting));
  auto comparing = expect_identical(&f);
  co_await std::move(comparing);
  EXPECT_EQ(testing::all_chunks(syncing).size(), 15u);
  // Every chunk holds its last write: version 4 (two writes before, two during the copy).
  for (const chunk::ChunkInfo& info : testing::all_chunks(syncing))
    EXPECT_EQ(info.committed_version, info.id.index < 20 ? 4u : 2u) << info.id.index;
  auto stopping = testing::shut_down(&f);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageResync, ResyncResumesAfterAChainVersionChangeMidCopy) {
  Fixture f(dir.path);
  auto starting = three_servers(&f, 256 * kKiB);
  CO_ASSERT_OK(co_await std::move(starting));
  testing::apply(&f, testing::chain_routing(&f, 1, {{0, PS::kServing}, {1, PS::kServing}}));
  auto writing = write_chunks(&f, 1, 0, 10, 6);
  CO_ASSERT_OK(co_await std::move(writing));
  testing::apply(
      &f, testing::chain_routing(&f, 2, {{0, PS::kServing}, {1, PS::kServing}, {2, PS::kSyncing}}));
  testing::ServerNode* predecessor = f.nodes[1].get();
  auto copying =
      testing::eventually([&] { return progress_of(predecessor).resync_chunks_done >= 3; });
  CO_ASSERT_TRUE(co_await std::move(copying));
  CO_ASSERT_TRUE(progress_of(predecessor).resync_running);
  // Another chain change (say a client-visible reconfiguration) while the copy runs.
  testing::apply(
      &f, testing::chain_routing(&f, 3, {{0, PS::kServing}, {1, PS::kServing}, {2, PS::kSyncing}}));
  testing::ServerNode* syncing = f.nodes[2].get();
  EXPECT_FALSE(up_to_date_at(syncing, 2));
  auto waiting = testing::eventually([&] { return up_to_date_at(syncing, 3); });
  CO_ASSERT_TRUE(co_await std::move(waiting));
  auto comparing = expect_identical(&f);
  co_await std::move(comparing);
  TargetProgress p = progress_of(predecessor);
  EXPECT_EQ(p.resync_chunks_done, 10u);
  EXPECT_EQ(p.resync_chunks_total, 10u);
  auto stopping = testing::shut_down(&f);
  co_await std::move(stopping);
}

}  // namespace
}  // namespace mica::craq
