// Replicas that disagree with their predecessor converge to it (docs/craq.md, "the
// predecessor is authoritative"): a returning target whose chunk has a higher version than
// the chain's (versions restart after a removal), a member holding a version the chain never
// committed, and a member that missed a removal. Each found by the storage_cluster
// simulation; real servers on 127.0.0.1 (tests/craq/storage_harness.h,
// tests/craq/resync_helpers.h); each test takes well under 5 s.
#include <gtest/gtest.h>

#include "tests/co_test.h"
#include "tests/craq/resync_helpers.h"

namespace mica::craq {
namespace {

using testing::StorageHarness;
using testing::TestClient;
using PS = PublicState;

constexpr ChunkRef kChunk{.inode = 42, .index = 7};
constexpr chunk::ChunkId kId{.inode = 42, .index = 7};

testing::StorageHarnessOptions harness_options() {
  testing::StorageHarnessOptions options;
  options.servers = 3;
  options.server.scrub_bytes_per_s = 0;
  return options;
}

// Commits `versions` versions of the chunk straight into an engine, each with other bytes:
// what a target holds that the chain does not (a past life of the chunk before a removal).
Task<Status> plant(chunk::ChunkEngine* engine, uint32_t versions, uint32_t seed) {
  for (uint32_t v = 1; v <= versions; ++v) {
    std::vector<std::byte> bytes = testing::test_bytes(6000 + v, seed + v);
    chunk::UpdateVersion version{.version = v, .chain_version = 1};
    auto writing = engine->write_and_commit(kId, 0, bytes, crc32c(bytes), version);
    CO_TRY(co_await std::move(writing));
  }
  co_return Status();
}

// Every server holds the chunk as server 0 does: version, length, checksum, bytes, nothing
// pending.
Task<void> expect_converged(StorageHarness* h) {
  Result<chunk::ChunkInfo> first = h->engine(0).stat(kId);
  CO_ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->pending_version, 0u);
  auto reading = testing::committed_bytes(&h->engine(0), kChunk);
  std::vector<std::byte> expected = co_await std::move(reading);
  for (size_t s = 1; s < h->size(); ++s) {
    Result<chunk::ChunkInfo> info = h->engine(s).stat(kId);
    CO_ASSERT_TRUE(info.ok()) << "server " << s << ": " << info.status();
    EXPECT_EQ(info->committed_version, first->committed_version) << "server " << s;
    EXPECT_EQ(info->length_bytes, first->length_bytes) << "server " << s;
    EXPECT_EQ(info->checksum, first->checksum) << "server " << s;
    EXPECT_EQ(info->pending_version, 0u) << "server " << s;
    auto other = testing::committed_bytes(&h->engine(s), kChunk);
    std::vector<std::byte> got = co_await std::move(other);
    EXPECT_TRUE(got == expected) << "server " << s << " holds other bytes";
  }
}

Task<void> stop_all(StorageHarness* h, TestClient* client) {
  Task<void> client_stopping = client->stop();
  co_await std::move(client_stopping);
  Task<void> stopping = h->stop();
  co_await std::move(stopping);
}

bool up_to_date_at(StorageTarget* target, uint64_t chain_version) {
  return target->local_state() == LocalState::kUpToDate &&
         target->local_chain_version() == chain_version;
}

MICA_CO_TEST(StorageDiverge, AResyncReplacesAHigherVersionThePredecessorDoesNotHold) {
  StorageHarness h(dir.path, harness_options());
  auto starting = h.start();
  CO_ASSERT_OK(co_await std::move(starting));
  TestClient client(&h);
  h.apply(testing::chain_routing(&h, 1, {{0, PS::kServing}, {1, PS::kServing}}));
  auto writing = testing::write_chunk(&client, 0, 1, kChunk, 0, testing::test_bytes(9000, 1));
  CO_ASSERT_OK(co_await std::move(writing));
  // The returning target has the chunk at version 5 from before it was removed and written
  // again; "newer wins" kept it, and it served those bytes after the resync.
  auto planting = plant(&h.engine(2), 5, 50);
  CO_ASSERT_OK(co_await std::move(planting));
  h.apply(testing::chain_routing(&h, 2, {{0, PS::kServing}, {1, PS::kServing}, {2, PS::kSyncing}}));
  auto waiting = testing::eventually([&] { return up_to_date_at(h.target(2), 2); });
  CO_ASSERT_TRUE(co_await std::move(waiting)) << "the syncing target never reported up to date";
  auto comparing = expect_converged(&h);
  co_await std::move(comparing);
  auto stopping = stop_all(&h, &client);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageDiverge, AForwardReplacesAVersionTheChainNeverCommitted) {
  StorageHarness h(dir.path, harness_options());
  auto starting = h.start();
  CO_ASSERT_OK(co_await std::move(starting));
  TestClient client(&h);
  // The tail holds version 4 of bytes the chain never had; the head and middle version 1.
  h.apply(testing::chain_routing(&h, 1, {{0, PS::kServing}, {1, PS::kServing}}));
  auto writing = testing::write_chunk(&client, 0, 1, kChunk, 0, testing::test_bytes(9000, 2));
  CO_ASSERT_OK(co_await std::move(writing));
  auto planting = plant(&h.engine(2), 4, 60);
  CO_ASSERT_OK(co_await std::move(planting));
  h.apply(testing::chain_routing(&h, 2, {{0, PS::kServing}, {1, PS::kServing}, {2, PS::kServing}}));
  // Before: the tail answered its version 4, and every write failed "replicas differ".
  for (uint32_t i = 0; i < 2; ++i) {
    auto again =
        testing::write_chunk(&client, 0, 2, kChunk, 100 * i, testing::test_bytes(3000, 3 + i));
    CO_ASSERT_OK(co_await std::move(again));
  }
  auto comparing = expect_converged(&h);
  co_await std::move(comparing);
  auto stopping = stop_all(&h, &client);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageDiverge, AMiddleMemberThatMissedARemovalTakesTheWholeChunk) {
  StorageHarness h(dir.path, harness_options());
  auto starting = h.start();
  CO_ASSERT_OK(co_await std::move(starting));
  TestClient client(&h);
  h.apply(testing::chain_routing(&h, 1, {{0, PS::kServing}, {1, PS::kServing}, {2, PS::kServing}}));
  auto writing = testing::write_chunk(&client, 0, 1, kChunk, 0, testing::test_bytes(9000, 4));
  CO_ASSERT_OK(co_await std::move(writing));
  auto more = testing::write_chunk(&client, 0, 1, kChunk, 50, testing::test_bytes(700, 5));
  CO_ASSERT_OK(co_await std::move(more));
  // The middle member lost the chunk (a removal that reached it and not its predecessor),
  // so version 3 builds on nothing it holds; before, even the whole chunk was refused there
  // (not committed + 1) and the chain was blocked for this chunk.
  auto removing = h.engine(1).remove(kId);
  CO_ASSERT_OK(co_await std::move(removing));
  for (uint32_t i = 0; i < 2; ++i) {
    auto again =
        testing::write_chunk(&client, 0, 1, kChunk, 10 + 100 * i, testing::test_bytes(500, 6 + i));
    CO_ASSERT_OK(co_await std::move(again));
  }
  auto comparing = expect_converged(&h);
  co_await std::move(comparing);
  auto stopping = stop_all(&h, &client);
  co_await std::move(stopping);
}

}  // namespace
}  // namespace mica::craq
