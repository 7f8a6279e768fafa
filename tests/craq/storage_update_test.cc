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
using testing::test_bytes;
using testing::TestClient;
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

UpdateIO truncate_io(uint64_t chain_version, ChunkRef chunk, uint32_t length, uint64_t request) {
  return UpdateIO{.chain = 1,
                  .chain_version = chain_version,
                  .chunk = chunk,
                  .kind = UpdateKind::kTruncate,
                  .length = length,
                  .chunk_size_bytes = 1 << 20,
                  .client_id = 1,
                  .request_id = request};
}

MICA_CO_TEST(StorageUpdate, RetryWithTheSameIdsIsAppliedOnceAlsoAtANewHead) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  std::vector<std::byte> data = test_bytes(16 << 10, 8);
  UpdateIO io = write_io(1, 1, kChunk, 0, data, 7, 1);
  auto writing = c.client.write(0, io, data);
  CO_ASSERT_OK(co_await std::move(writing));
  auto retrying = c.client.write(0, io, data);
  Result<UpdateResponse> retried = co_await std::move(retrying);
  CO_ASSERT_OK(retried);
  EXPECT_TRUE(retried->duplicate);
  EXPECT_EQ(retried->state.version, 1u);
  // The head leaves the chain; the retry reaches the new head, which knows the update too.
  c.harness.apply(c.harness.routing(
      {testing::ChainSpec{.id = 1,
                          .version = 2,
                          .members = {{StorageHarness::target_id(1), PublicState::kServing},
                                      {StorageHarness::target_id(2), PublicState::kServing},
                                      {StorageHarness::target_id(0), PublicState::kOffline}}}}));
  io.chain_version = 2;
  auto again = c.client.write(1, io, data);
  Result<UpdateResponse> answered = co_await std::move(again);
  CO_ASSERT_OK(answered);
  EXPECT_TRUE(answered->duplicate);
  EXPECT_EQ(answered->state.version, 1u);
  auto checking = expect_replicas(&c.harness, kChunk, 1, data);
  co_await std::move(checking);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

// Chain 1 at `version` with server 0's target offline: server 1 is the head.
RoutingSnapshot without_first_head(StorageHarness* h, uint64_t version) {
  return h->routing(
      {testing::ChainSpec{.id = 1,
                          .version = version,
                          .members = {{StorageHarness::target_id(1), PublicState::kServing},
                                      {StorageHarness::target_id(2), PublicState::kServing},
                                      {StorageHarness::target_id(0), PublicState::kOffline}}}});
}

// Client 7 writes `first` (its answer, say, lost), client 8 writes `second` over it; then
// client 7's retry reaches server `retry_at` at chain version `chain_version`. The retry is
// answered as a duplicate with the state its first attempt left, and changes nothing.
Task<void> retry_after_another_update(Cluster* c, bool new_head) {
  std::vector<std::byte> first = test_bytes(16 << 10, 20);
  UpdateIO retried_io = write_io(1, 1, kChunk, 0, first, 7, 1);
  auto writing = c->client.write(0, retried_io, first);
  Result<UpdateResponse> written = co_await std::move(writing);
  CO_ASSERT_OK(written);
  std::vector<std::byte> second = test_bytes(8 << 10, 21);
  auto overwriting = c->client.write(0, write_io(1, 1, kChunk, 4096, second, 8, 1), second);
  CO_ASSERT_OK(co_await std::move(overwriting));
  size_t retry_at = 0;
  if (new_head) {
    c->harness.apply(without_first_head(&c->harness, 2));
    retried_io.chain_version = 2;
    retry_at = 1;
  }
  auto retrying = c->client.write(retry_at, retried_io, first);
  Result<UpdateResponse> retried = co_await std::move(retrying);
  CO_ASSERT_OK(retried);
  EXPECT_TRUE(retried->duplicate);
  EXPECT_EQ(retried->state.version, 1u);
  EXPECT_EQ(retried->state.checksum, written->state.checksum);
  std::vector<std::byte> expected = first;
  std::copy(second.begin(), second.end(), expected.begin() + 4096);
  for (size_t s = 0; s < c->harness.size(); ++s) {
    if (new_head && s == 0) continue;  // out of the chain, holds what it held
    std::optional<chunk::ChunkInfo> info = info_at(&c->harness, s, kChunk);
    CO_ASSERT_TRUE(info.has_value()) << "server " << s;
    EXPECT_EQ(info->committed_version, 2u) << "server " << s << ": the retry was applied again";
    EXPECT_EQ(info->checksum, crc32c(expected)) << "server " << s;
  }
}

MICA_CO_TEST(StorageUpdate, RetryAfterAnotherClientsUpdateIsNotAppliedAgain) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  auto running = retry_after_another_update(&c, false);
  co_await std::move(running);
  EXPECT_EQ(c.harness.target(0)->counters().duplicates, 1u);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageUpdate, RetryAfterAnotherClientsUpdateIsNotAppliedAgainAtANewHead) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  auto running = retry_after_another_update(&c, true);
  co_await std::move(running);
  EXPECT_EQ(c.harness.target(1)->counters().duplicates, 1u);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageUpdate, RetriedRemoveDoesNotRemoveWhatAnotherClientWroteSince) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  std::vector<std::byte> first = test_bytes(8 << 10, 22);
  auto writing = c.client.write(0, write_io(1, 1, kChunk, 0, first, 7, 1), first);
  CO_ASSERT_OK(co_await std::move(writing));
  // A removal names no chunk size.
  UpdateIO remove{.chain = 1,
                  .chain_version = 1,
                  .chunk = kChunk,
                  .kind = UpdateKind::kRemove,
                  .client_id = 7,
                  .request_id = 2};
  auto removing = c.client.update(0, UpdateRequest{.io = remove});
  CO_ASSERT_OK(co_await std::move(removing));
  std::vector<std::byte> second = test_bytes(8 << 10, 23);
  auto rewriting = c.client.write(0, write_io(1, 1, kChunk, 0, second, 8, 1), second);
  CO_ASSERT_OK(co_await std::move(rewriting));
  // The removal's retry, at the old head and at a new one.
  auto retrying = c.client.update(0, UpdateRequest{.io = remove});
  Result<UpdateResponse> retried = co_await std::move(retrying);
  CO_ASSERT_OK(retried);
  EXPECT_TRUE(retried->duplicate);
  c.harness.apply(without_first_head(&c.harness, 2));
  remove.chain_version = 2;
  auto retrying_new = c.client.update(1, UpdateRequest{.io = remove});
  Result<UpdateResponse> retried_new = co_await std::move(retrying_new);
  CO_ASSERT_OK(retried_new);
  EXPECT_TRUE(retried_new->duplicate);
  auto checking = expect_replicas(&c.harness, kChunk, 1, second);
  co_await std::move(checking);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageUpdate, TruncateAndRemoveGoThroughTheChain) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  std::vector<std::byte> data = test_bytes(64 << 10, 9);
  auto writing = c.client.write(0, write_io(1, 1, kChunk, 0, data, 1, 1), data);
  CO_ASSERT_OK(co_await std::move(writing));
  auto truncating = c.client.update(0, UpdateRequest{.io = truncate_io(1, kChunk, 10000, 2)});
  Result<UpdateResponse> truncated = co_await std::move(truncating);
  CO_ASSERT_OK(truncated);
  EXPECT_EQ(truncated->state.length_bytes, 10000u);
  data.resize(10000);
  auto checking = expect_replicas(&c.harness, kChunk, 2, data);
  co_await std::move(checking);
  UpdateIO remove = truncate_io(1, kChunk, 0, 3);
  remove.kind = UpdateKind::kRemove;
  auto removing = c.client.update(0, UpdateRequest{.io = remove});
  Result<UpdateResponse> removed = co_await std::move(removing);
  CO_ASSERT_OK(removed);
  EXPECT_EQ(removed->state.version, 0u);
  expect_absent(&c.harness, kChunk);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

constexpr uint32_t kParallelChunks = 32;
constexpr uint32_t kParallelBytes = 32 << 10;

MICA_CO_TEST(StorageUpdate, ManyChunksWriteInParallel) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  std::vector<std::vector<std::byte>> data;
  std::vector<Task<Result<UpdateResponse>>> writes;
  for (uint32_t i = 0; i < kParallelChunks; ++i) {
    data.push_back(test_bytes(kParallelBytes, 100 + i));
    ChunkRef chunk{.inode = 0x42, .index = i};
    writes.push_back(c.client.write(0, write_io(1, 1, chunk, 0, data.back(), 1, i + 1), data.back(),
                                    uint64_t{i} * kParallelBytes));
  }
  auto all = when_all(std::move(writes));
  std::vector<Result<UpdateResponse>> results = co_await std::move(all);
  for (uint32_t i = 0; i < kParallelChunks; ++i) {
    EXPECT_TRUE(results[i].ok()) << "chunk " << i << ": " << results[i].status();
    auto checking = expect_replicas(&c.harness, ChunkRef{.inode = 0x42, .index = i}, 1, data[i]);
    co_await std::move(checking);
  }
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageUpdate, InFlightLimitAnswersBusy) {
  testing::StorageHarnessOptions options;
  options.server.updates_in_flight_max = 1;
  Cluster c(dir.path, options);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  std::vector<std::byte> data = test_bytes(kParallelBytes, 10);
  std::vector<Task<Result<UpdateResponse>>> writes;
  for (uint32_t i = 0; i < 16; ++i) {
    ChunkRef chunk{.inode = 0x42, .index = i};
    writes.push_back(c.client.write(0, write_io(1, 1, chunk, 0, data, 1, i + 1), data,
                                    uint64_t{i} * kParallelBytes));
  }
  auto all = when_all(std::move(writes));
  std::vector<Result<UpdateResponse>> results = co_await std::move(all);
  uint32_t ok = 0, busy = 0;
  for (uint32_t i = 0; i < results.size(); ++i) {
    ChunkRef chunk{.inode = 0x42, .index = i};
    if (results[i].ok()) {
      ++ok;
    } else {
      EXPECT_EQ(results[i].status().code(), StatusCode::kBusy) << results[i].status();
      ++busy;
      expect_absent(&c.harness, chunk);  // a refused update changes nothing
    }
  }
  EXPECT_GE(ok, 1u);
  EXPECT_GE(busy, 1u);
  EXPECT_EQ(c.harness.target(0)->counters().busy_refusals, busy);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageUpdate, FullTargetDiskGivesNoSpaceAndNothingElseChanges) {
  testing::StorageHarnessOptions options;
  options.engine.data_bytes_max = 1 << 20;  // the first 64 KiB slot file takes it all
  Cluster c(dir.path, options);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  std::vector<std::byte> small = test_bytes(64 << 10, 11);
  auto writing = c.client.write(0, write_io(1, 1, kChunk, 0, small, 1, 1), small);
  CO_ASSERT_OK(co_await std::move(writing));
  std::vector<std::byte> big = test_bytes(128 << 10, 12);
  ChunkRef other{.inode = 0x42, .index = 9};
  auto writing_big = c.client.write(0, write_io(1, 1, other, 0, big, 1, 2), big);
  Result<UpdateResponse> refused = co_await std::move(writing_big);
  EXPECT_EQ(refused.status().code(), StatusCode::kNoSpace) << refused.status();
  expect_absent(&c.harness, other);
  auto checking = expect_replicas(&c.harness, kChunk, 1, small);
  co_await std::move(checking);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

// Puts `bytes` as pending version `version` of kChunk on server s's target, as an update
// whose forward failed would have left it.
Task<Status> leave_pending(StorageHarness* h, size_t s, uint32_t version,
                           std::vector<std::byte> bytes, chunk::UpdateTag tag) {
  auto writing = h->engine(s).write(id_of(kChunk), 0, bytes, crc32c(bytes),
                                    chunk::UpdateVersion{version, 1, tag});
  Result<chunk::ChunkInfo> written = co_await std::move(writing);
  co_return written.status();
}

MICA_CO_TEST(StorageUpdate, LeftoverPendingAtTheHeadIsResolvedByTheNextUpdate) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  std::vector<std::byte> first = test_bytes(32 << 10, 13);
  auto writing = c.client.write(0, write_io(1, 1, kChunk, 0, first, 1, 1), first);
  CO_ASSERT_OK(co_await std::move(writing));
  std::vector<std::byte> leftover = test_bytes(48 << 10, 14);
  auto leaving = leave_pending(&c.harness, 0, 2, leftover, {.client_id = 9, .request_id = 9});
  CO_ASSERT_OK(co_await std::move(leaving));
  std::vector<std::byte> next = test_bytes(4 << 10, 15);
  auto updating = c.client.write(0, write_io(1, 1, kChunk, 8192, next, 1, 2), next);
  Result<UpdateResponse> updated = co_await std::move(updating);
  CO_ASSERT_OK(updated);
  EXPECT_EQ(updated->state.version, 3u);
  std::vector<std::byte> expected = leftover;
  std::copy(next.begin(), next.end(), expected.begin() + 8192);
  auto checking = expect_replicas(&c.harness, kChunk, 3, expected);
  co_await std::move(checking);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageUpdate, LeftoverPendingAtHeadAndMiddleIsCommittedOnce) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  std::vector<std::byte> first = test_bytes(32 << 10, 16);
  auto writing = c.client.write(0, write_io(1, 1, kChunk, 0, first, 1, 1), first);
  CO_ASSERT_OK(co_await std::move(writing));
  // A shrinking truncate that reached the middle but not the tail.
  std::vector<std::byte> cut(first.begin(), first.begin() + 5000);
  for (size_t s : {0, 1}) {
    auto truncating =
        c.harness.engine(s).truncate(id_of(kChunk), 5000, chunk::UpdateVersion{2, 1, {9, 9}});
    CO_ASSERT_OK(co_await std::move(truncating));
  }
  std::vector<std::byte> next = test_bytes(1000, 17);
  auto updating = c.client.write(0, write_io(1, 1, kChunk, 0, next, 1, 2), next);
  Result<UpdateResponse> updated = co_await std::move(updating);
  CO_ASSERT_OK(updated);
  std::copy(next.begin(), next.end(), cut.begin());
  auto checking = expect_replicas(&c.harness, kChunk, 3, cut);
  co_await std::move(checking);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageUpdate, RetryOfAnUpdateLeftPendingIsFinishedNotReapplied) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  std::vector<std::byte> first = test_bytes(32 << 10, 18);
  auto writing = c.client.write(0, write_io(1, 1, kChunk, 0, first, 1, 1), first);
  CO_ASSERT_OK(co_await std::move(writing));
  // The retried update reached the head (pending there) but its forward failed.
  std::vector<std::byte> second = test_bytes(32 << 10, 19);
  auto leaving = leave_pending(&c.harness, 0, 2, second, {.client_id = 5, .request_id = 5});
  CO_ASSERT_OK(co_await std::move(leaving));
  auto retrying = c.client.write(0, write_io(1, 1, kChunk, 0, second, 5, 5), second);
  Result<UpdateResponse> retried = co_await std::move(retrying);
  CO_ASSERT_OK(retried);
  EXPECT_TRUE(retried->duplicate);
  EXPECT_EQ(retried->state.version, 2u);
  auto checking = expect_replicas(&c.harness, kChunk, 2, second);
  co_await std::move(checking);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

// The tail is down but routing still lists it: the middle's forward is refused. The head
// answers kBusy (retry), never the connection failure of a link the client does not use, and
// the retry with the same ids, once the tail is back, applies the write exactly once.
MICA_CO_TEST(StorageUpdate, AForwardThatFailsDownTheChainAnswersBusyAndTheRetryLandsOnce) {
  Cluster c(dir.path);
  auto starting = start(&c);
  CO_ASSERT_OK(co_await std::move(starting));
  auto stopping_tail = c.harness.stop_server(2);
  co_await std::move(stopping_tail);
  std::vector<std::byte> data = test_bytes(16 << 10, 20);
  auto writing = c.client.write(0, write_io(1, 1, kChunk, 0, data, 3, 3), data);
  Result<UpdateResponse> written = co_await std::move(writing);
  EXPECT_EQ(written.status().code(), StatusCode::kBusy) << written.status();
  auto restarting = c.harness.start_server(2);
  CO_ASSERT_OK(co_await std::move(restarting));
  c.harness.apply(c.harness.serving_chain({0, 1, 2}));
  auto retrying = c.client.write(0, write_io(1, 1, kChunk, 0, data, 3, 3), data);
  Result<UpdateResponse> retried = co_await std::move(retrying);
  CO_ASSERT_OK(retried);
  EXPECT_EQ(retried->state.version, 1u);
  auto checking = expect_replicas(&c.harness, kChunk, 1, data);
  co_await std::move(checking);
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

}  // namespace
}  // namespace mica::craq
