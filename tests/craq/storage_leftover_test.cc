// What a failure leaves behind in a chain, as readers see it (craq/storage_read.h,
// craq/storage_update.h), on three in-process storage servers over TCP on 127.0.0.1
// (tests/craq/storage_harness.h) with chains built by hand and engines set up directly:
// a pending version that a tail committed before it failed is committed data for every
// reader of the shortened chain; a removal the tail applied but a member before it did not
// reads as a hole there; a head that meets a removal a failure interrupted finishes it
// before it applies the next update. Found by the storage_cluster simulation (seeds 36, 82:
// docs/simulation.md). Each test takes well under a second.
#include <gtest/gtest.h>

#include "async/crc32c.h"
#include "craq/storage_target.h"
#include "tests/co_test.h"
#include "tests/craq/storage_harness.h"

namespace mica::craq {
namespace {

using testing::StorageHarness;
using testing::test_bytes;
using testing::TestClient;
using testing::write_io;

constexpr ChunkRef kChunk{.inode = 0x51, .index = 2};
constexpr chunk::ChunkId kId{.inode = 0x51, .index = 2};

struct Cluster {
  explicit Cluster(const std::string& dir) : harness(dir), client(&harness) {}
  StorageHarness harness;
  TestClient client;
};

// Starts the servers and makes chain 1 (servers 0, 1, 2 serving) at chain version 1.
Task<Status> start(Cluster* c) {
  auto starting = c->harness.start();
  CO_TRY(co_await std::move(starting));
  c->harness.apply(c->harness.serving_chain({0, 1, 2}));
  co_return Status();
}

Task<void> stop(Cluster* c) {
  Task<void> client_stopping = c->client.stop();
  co_await std::move(client_stopping);
  Task<void> stopping = c->harness.stop();
  co_await std::move(stopping);
}

ReadRequest read_of(uint32_t length, uint64_t chain_version) {
  return ReadRequest{.chain = 1, .chain_version = chain_version, .chunk = kChunk, .length = length};
}

std::vector<std::byte> got(TestClient* client, size_t n) {
  std::span<std::byte> b = client->buffer().subspan(0, n);
  return {b.begin(), b.end()};
}

// Version 1 of the chunk through the whole chain.
Task<Status> write_first(Cluster* c, const std::vector<std::byte>& data) {
  auto writing = c->client.write(0, write_io(1, 1, kChunk, 0, data, 1, 1), data);
  Result<UpdateResponse> written = co_await std::move(writing);
  co_return written.status();
}

// The tail (server 2) committed version 2 and a reader there saw it; then it failed before
// servers 0 and 1 heard back, so they hold version 2 pending. Server 1, the read tail of the
// shortened chain, must not fall back to version 1 — neither for its own readers nor for the
// head's apportioned query.
MICA_CO_TEST(StorageLeftover, APendingVersionAFailedTailCommittedIsReadAsCommitted) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  std::vector<std::byte> first = test_bytes(16 << 10, 1);
  auto writing = write_first(&c, first);
  CO_ASSERT_OK(co_await std::move(writing));
  std::vector<std::byte> second = test_bytes(24 << 10, 2);
  chunk::UpdateVersion v2{
      .version = 2, .chain_version = 1, .tag = {.client_id = 1, .request_id = 2}};
  for (size_t s : {0, 1}) {
    auto leaving = c.harness.engine(s).write(kId, 0, second, crc32c(second), v2);
    CO_ASSERT_OK(co_await std::move(leaving));
  }
  auto committing = c.harness.engine(2).write_and_commit(kId, 0, second, crc32c(second), v2);
  CO_ASSERT_OK(co_await std::move(committing));
  c.harness.apply(c.harness.serving_chain({0, 1}, 2));
  for (size_t s : {0, 1}) {
    std::memset(c.client.buffer().data(), 0, second.size());
    auto reading = c.client.read(s, read_of(64 << 10, 2));
    Result<ReadResponse> read = co_await std::move(reading);
    CO_ASSERT_OK(read) << "server " << s;
    EXPECT_EQ(read->version, 2u) << "server " << s;
    EXPECT_EQ(read->bytes, second.size()) << "server " << s;
    EXPECT_TRUE(got(&c.client, second.size()) == second) << "server " << s;
  }
  // The read tail finished version 2 (the head's commit follows at its next update).
  Result<chunk::ChunkInfo> tail = c.harness.engine(1).stat(kId);
  CO_ASSERT_OK(tail);
  EXPECT_EQ(tail->committed_version, 2u);
  EXPECT_EQ(tail->pending_version, 0u);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

// A removal went down from the head: the tail (server 2) removed the chunk and a reader there
// saw a hole, but the answer never came back, so servers 0 and 1 still hold the chunk with
// their removal marks. Their readers must see the hole too, and the next write at the head
// must build on the removal, not on the removed chunk.
MICA_CO_TEST(StorageLeftover, ARemovalTheTailAppliedReadsAsAHoleBeforeTheTail) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  std::vector<std::byte> first = test_bytes(16 << 10, 3);
  auto writing = write_first(&c, first);
  CO_ASSERT_OK(co_await std::move(writing));
  for (size_t s : {0, 1}) {
    Result<chunk::ChunkInfo> info = c.harness.engine(s).stat(kId);
    CO_ASSERT_OK(info);
    ChunkState state{info->committed_version, info->length_bytes, info->checksum};
    c.harness.target(s)->mark_removing(kId,
                                       {.state = state, .tag = {.client_id = 2, .request_id = 1}});
  }
  auto removing = c.harness.engine(2).remove(kId);
  CO_ASSERT_OK(co_await std::move(removing));
  for (size_t s : {0, 1}) {
    auto reading = c.client.read(s, read_of(64 << 10, 1));
    Result<ReadResponse> read = co_await std::move(reading);
    CO_ASSERT_OK(read) << "server " << s;
    EXPECT_EQ(read->bytes, 0u) << "server " << s << " served a removed chunk";
  }
  std::vector<std::byte> small = test_bytes(4096, 4);
  auto rewriting = c.client.write(0, write_io(1, 1, kChunk, 8192, small, 3, 1), small);
  Result<UpdateResponse> rewritten = co_await std::move(rewriting);
  CO_ASSERT_OK(rewritten);
  std::vector<std::byte> expected(8192 + small.size());
  std::copy(small.begin(), small.end(), expected.begin() + 8192);
  EXPECT_EQ(rewritten->state.length_bytes, expected.size());
  EXPECT_EQ(rewritten->state.checksum, crc32c(expected));
  for (size_t s = 0; s < 3; ++s) {
    Result<chunk::ChunkInfo> info = c.harness.engine(s).stat(kId);
    CO_ASSERT_OK(info) << "server " << s;
    EXPECT_EQ(info->checksum, crc32c(expected)) << "server " << s;
  }
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

}  // namespace
}  // namespace mica::craq
