// Resync (craq/storage_resync.h): a target added to a chain as syncing is brought to the
// chain's chunks by its predecessor — missing and stale chunks copied whole, extra ones
// removed, writes during the copy kept — and then reports itself up to date; a chain change
// mid-copy restarts it at the new version. Real servers on 127.0.0.1 (tests/craq/
// storage_harness.h, tests/craq/resync_helpers.h); each test takes well under 5 s.
#include <gtest/gtest.h>

#include "tests/co_test.h"
#include "tests/craq/resync_helpers.h"

namespace mica::craq {
namespace {

using testing::StorageHarness;
using testing::TestClient;
using PS = PublicState;

constexpr uint32_t kKiB = 1024;

ChunkRef chunk_ref(uint32_t index) {
  return ChunkRef{.inode = 42, .index = index};
}

// Every server holds the same chunks with the same versions, checksums and bytes.
Task<void> expect_identical(StorageHarness* h) {
  std::vector<chunk::ChunkInfo> first = testing::all_chunks(&h->engine(0));
  for (size_t n = 1; n < h->size(); ++n) {
    std::vector<chunk::ChunkInfo> other = testing::all_chunks(&h->engine(n));
    EXPECT_EQ(other.size(), first.size()) << "node " << n;
    for (size_t i = 0; i < std::min(first.size(), other.size()); ++i) {
      EXPECT_EQ(other[i].id, first[i].id) << "node " << n;
      EXPECT_EQ(other[i].committed_version, first[i].committed_version) << "node " << n;
      EXPECT_EQ(other[i].checksum, first[i].checksum) << "node " << n;
      EXPECT_EQ(other[i].length_bytes, first[i].length_bytes) << "node " << n;
      EXPECT_EQ(other[i].committed_tag, first[i].committed_tag) << "node " << n;
      ChunkRef ref{.inode = first[i].id.inode, .index = first[i].id.index};
      auto reading_a = testing::committed_bytes(&h->engine(0), ref);
      std::vector<std::byte> a = co_await std::move(reading_a);
      auto reading_b = testing::committed_bytes(&h->engine(n), ref);
      std::vector<std::byte> b = co_await std::move(reading_b);
      EXPECT_EQ(a, b) << "node " << n << " chunk " << ref.index;
    }
  }
}

// Writes `count` chunks of different sizes (two writes each) through server 0.
Task<Status> write_chunks(TestClient* client, uint64_t chain_version, uint32_t first,
                          uint32_t count, uint32_t seed) {
  for (uint32_t i = first; i < first + count; ++i) {
    uint32_t size = (4 + (i % 5) * 12) * kKiB + i;  // not block multiples
    auto writing = testing::write_chunk(client, 0, chain_version, chunk_ref(i), 0,
                                        testing::test_bytes(size, seed + i));
    CO_TRY(co_await std::move(writing));
    auto again = testing::write_chunk(client, 0, chain_version, chunk_ref(i), 1000,
                                      testing::test_bytes(3 * kKiB, seed + 100 + i));
    CO_TRY(co_await std::move(again));
  }
  co_return Status();
}

bool up_to_date_at(StorageTarget* target, uint64_t chain_version) {
  return target->local_state() == LocalState::kUpToDate &&
         target->local_chain_version() == chain_version;
}

// Three servers; the predecessor of a syncing server copies at bytes_per_s (0: no cap).
testing::StorageHarnessOptions harness_options(uint64_t bytes_per_s = 0) {
  testing::StorageHarnessOptions options;
  options.servers = 3;
  options.server.scrub_bytes_per_s = 0;
  options.server.resync_bytes_per_s = bytes_per_s;
  options.server.resync_chunks_in_flight_max = 2;
  return options;
}

RoutingSnapshot two_serving(StorageHarness* h) {
  return testing::chain_routing(h, 1, {{0, PS::kServing}, {1, PS::kServing}});
}
RoutingSnapshot third_syncing(StorageHarness* h, uint64_t chain_version) {
  return testing::chain_routing(h, chain_version,
                                {{0, PS::kServing}, {1, PS::kServing}, {2, PS::kSyncing}});
}

Task<void> stop_all(StorageHarness* h, TestClient* client) {
  Task<void> client_stopping = client->stop();
  co_await std::move(client_stopping);
  Task<void> stopping = h->stop();
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageResync, ASuccessorThatMissedWritesCatchesUpAndReportsUpToDate) {
  StorageHarness h(dir.path, harness_options());
  auto starting = h.start();
  CO_ASSERT_OK(co_await std::move(starting));
  TestClient client(&h);
  h.apply(two_serving(&h));
  auto writing = write_chunks(&client, 1, 0, 6, 1);
  CO_ASSERT_OK(co_await std::move(writing));
  EXPECT_TRUE(testing::all_chunks(&h.engine(2)).empty());
  h.apply(third_syncing(&h, 2));
  StorageTarget* syncing = h.target(2);
  EXPECT_EQ(syncing->local_state(), LocalState::kOnline);
  auto waiting = testing::eventually([&] { return up_to_date_at(syncing, 2); });
  CO_ASSERT_TRUE(co_await std::move(waiting)) << "the syncing target never reported up to date";
  auto comparing = expect_identical(&h);
  co_await std::move(comparing);
  // The predecessor (the last serving target) drove it and counted all of it.
  TargetProgress p = testing::progress_of(&h, 1);
  EXPECT_FALSE(p.resync_running);
  EXPECT_EQ(p.resync_chunks_total, 6u);
  EXPECT_EQ(p.resync_chunks_done, 6u);
  EXPECT_EQ(p.resync_bytes_done, p.resync_bytes_total);
  EXPECT_GT(p.resync_bytes_total, 0u);
  auto stopping = stop_all(&h, &client);
  co_await std::move(stopping);
}

// Chunks written straight into the returning target's engine: two the chain never had, and
// one the chain has, at an older version with other bytes (a target that missed writes).
Task<Status> plant_strays(chunk::ChunkEngine* engine) {
  for (uint32_t index : {2u, 50u, 51u}) {
    std::vector<std::byte> junk = testing::test_bytes(8 * kKiB, 900 + index);
    chunk::UpdateVersion v{.version = 1, .chain_version = 1};
    auto writing = engine->write_and_commit({42, index}, 0, junk, crc32c(junk), v);
    CO_TRY(co_await std::move(writing));
  }
  co_return Status();
}

MICA_CO_TEST(StorageResync, ChunksTheSyncingTargetShouldNotHaveAreRemoved) {
  StorageHarness h(dir.path, harness_options());
  auto starting = h.start();
  CO_ASSERT_OK(co_await std::move(starting));
  TestClient client(&h);
  h.apply(two_serving(&h));
  auto writing = write_chunks(&client, 1, 0, 4, 2);
  CO_ASSERT_OK(co_await std::move(writing));
  auto planting = plant_strays(&h.engine(2));
  CO_ASSERT_OK(co_await std::move(planting));
  CO_ASSERT_EQ(testing::all_chunks(&h.engine(2)).size(), 3u);
  h.apply(third_syncing(&h, 2));
  StorageTarget* syncing = h.target(2);
  auto waiting = testing::eventually([&] { return up_to_date_at(syncing, 2); });
  CO_ASSERT_TRUE(co_await std::move(waiting));
  auto comparing = expect_identical(&h);
  co_await std::move(comparing);
  auto stopping = stop_all(&h, &client);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageResync, WritesDuringTheCopyAreNotLost) {
  StorageHarness h(dir.path, harness_options());
  auto starting = h.start();
  CO_ASSERT_OK(co_await std::move(starting));
  TestClient client(&h);
  h.apply(two_serving(&h));
  auto writing = write_chunks(&client, 1, 0, 10, 3);
  CO_ASSERT_OK(co_await std::move(writing));
  {
    // The copy takes the predecessor's order lock of each chunk it sends: while the test
    // holds chunk 5's, the copy cannot finish, so the writes below overlap it whatever the
    // machine's speed (a rate cap or a sleep would only make that likely).
    auto locking = h.target(1)->chunk_order().lock(chunk::ChunkId{42, 5});
    Result<chunk::ChunkLocks::Guard> held = co_await std::move(locking);
    CO_ASSERT_OK(held);
    h.apply(third_syncing(&h, 2));
    auto started = testing::eventually([&] { return testing::progress_of(&h, 1).resync_running; });
    CO_ASSERT_TRUE(co_await std::move(started));
    // The last chunk, then chunks the copy has sent or is sending (chunk 5 is not written
    // while its lock is held here).
    auto overwriting_last = write_chunks(&client, 2, 9, 1, 4);
    CO_ASSERT_OK(co_await std::move(overwriting_last));
    auto overwriting_first = write_chunks(&client, 2, 0, 5, 4);
    CO_ASSERT_OK(co_await std::move(overwriting_first));
    CO_ASSERT_TRUE(testing::progress_of(&h, 1).resync_running);
  }
  auto overwriting = write_chunks(&client, 2, 5, 4, 4);
  CO_ASSERT_OK(co_await std::move(overwriting));
  auto adding = write_chunks(&client, 2, 20, 5, 5);
  CO_ASSERT_OK(co_await std::move(adding));
  StorageTarget* syncing = h.target(2);
  auto waiting = testing::eventually([&] { return up_to_date_at(syncing, 2); });
  CO_ASSERT_TRUE(co_await std::move(waiting));
  auto comparing = expect_identical(&h);
  co_await std::move(comparing);
  EXPECT_EQ(testing::all_chunks(&h.engine(2)).size(), 15u);
  // Every chunk holds its last write: version 4 (two writes before, two during the copy).
  for (const chunk::ChunkInfo& info : testing::all_chunks(&h.engine(2)))
    EXPECT_EQ(info.committed_version, info.id.index < 20 ? 4u : 2u) << info.id.index;
  auto stopping = stop_all(&h, &client);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageResync, ResyncResumesAfterAChainVersionChangeMidCopy) {
  StorageHarness h(dir.path, harness_options(256 * kKiB));
  auto starting = h.start();
  CO_ASSERT_OK(co_await std::move(starting));
  TestClient client(&h);
  h.apply(two_serving(&h));
  auto writing = write_chunks(&client, 1, 0, 10, 6);
  CO_ASSERT_OK(co_await std::move(writing));
  h.apply(third_syncing(&h, 2));
  auto copying =
      testing::eventually([&] { return testing::progress_of(&h, 1).resync_chunks_done >= 3; });
  CO_ASSERT_TRUE(co_await std::move(copying));
  CO_ASSERT_TRUE(testing::progress_of(&h, 1).resync_running);
  // Another chain change while the copy runs: it stops and starts over at version 3.
  h.apply(third_syncing(&h, 3));
  StorageTarget* syncing = h.target(2);
  auto waiting = testing::eventually([&] { return up_to_date_at(syncing, 3); });
  CO_ASSERT_TRUE(co_await std::move(waiting));
  auto comparing = expect_identical(&h);
  co_await std::move(comparing);
  TargetProgress p = testing::progress_of(&h, 1);
  EXPECT_EQ(p.resync_chunks_done, 10u);
  EXPECT_EQ(p.resync_chunks_total, 10u);
  auto stopping = stop_all(&h, &client);
  co_await std::move(stopping);
}

// Client 7's write of a chunk commits while server 2 is away (its answer, say, lost); server
// 2 gets the chunk by resync, then client 8's write commits over it on all three. When the
// others leave and server 2 heads the chain, client 7's retry is still a duplicate: the
// synced chunk's tag went into server 2's table of recent updates, not only into the chunk's
// own tags (which now name client 8's write).
MICA_CO_TEST(StorageResync, ARetryOfAnUpdateTheTargetGotByResyncIsRecognisedAtItAsHead) {
  StorageHarness h(dir.path, harness_options());
  auto starting = h.start();
  CO_ASSERT_OK(co_await std::move(starting));
  TestClient client(&h);
  h.apply(two_serving(&h));
  ChunkRef chunk = chunk_ref(3);
  std::vector<std::byte> first = testing::test_bytes(16 * kKiB, 30);
  UpdateIO retried_io = testing::write_io(testing::kChain, 1, chunk, 0, first, 7, 1);
  auto writing = client.write(0, retried_io, first);
  Result<UpdateResponse> written = co_await std::move(writing);
  CO_ASSERT_OK(written);
  h.apply(third_syncing(&h, 2));
  auto waiting = testing::eventually([&] { return up_to_date_at(h.target(2), 2); });
  CO_ASSERT_TRUE(co_await std::move(waiting));
  h.apply(testing::chain_routing(&h, 3, {{0, PS::kServing}, {1, PS::kServing}, {2, PS::kServing}}));
  std::vector<std::byte> second = testing::test_bytes(4 * kKiB, 31);
  auto overwriting = client.write(
      0, testing::write_io(testing::kChain, 3, chunk, 4096, second, 8, 1), second);
  CO_ASSERT_OK(co_await std::move(overwriting));
  h.apply(testing::chain_routing(&h, 4, {{2, PS::kServing}, {0, PS::kOffline}, {1, PS::kOffline}}));
  retried_io.chain_version = 4;
  auto retrying = client.write(2, retried_io, first);
  Result<UpdateResponse> retried = co_await std::move(retrying);
  CO_ASSERT_OK(retried);
  EXPECT_TRUE(retried->duplicate);
  EXPECT_EQ(retried->state.checksum, written->state.checksum);
  Result<chunk::ChunkInfo> info = h.engine(2).stat(chunk::ChunkId{chunk.inode, chunk.index});
  CO_ASSERT_OK(info);
  EXPECT_EQ(info->committed_version, 2u) << "the retry was applied again";
  std::vector<std::byte> expected = first;
  std::copy(second.begin(), second.end(), expected.begin() + 4096);
  EXPECT_EQ(info->checksum, crc32c(expected));
  auto stopping = stop_all(&h, &client);
  co_await std::move(stopping);
}

}  // namespace
}  // namespace mica::craq
