// Batch reads (craq/storage_read.h) on three in-process storage servers with two targets each
// (tests/craq/storage_harness.h): two chains over the same three nodes, so one batch to one
// node reads from both of its targets. Every item is answered with its own status, in the
// request's order; a batch over its item or byte limit is refused whole and reads nothing.
// Each test takes under two seconds (most of it the writes that set the batches up).
#include <gtest/gtest.h>

#include "async/scope.h"
#include "craq/storage_read.h"
#include "craq/storage_target.h"
#include "tests/co_test.h"
#include "tests/craq/storage_harness.h"

namespace mica::craq {
namespace {

using testing::StorageHarness;
using testing::test_bytes;
using testing::TestClient;
using testing::write_io;

std::span<const std::byte> bytes(const std::vector<std::byte>& v) {
  return {v.data(), v.size()};
}

testing::StorageHarnessOptions two_chain_options() {
  testing::StorageHarnessOptions o;
  o.targets_per_server = 2;
  o.server.scrub_bytes_per_s = 0;
  return o;
}

struct Cluster {
  explicit Cluster(const std::string& dir, testing::StorageHarnessOptions o = two_chain_options())
      : harness(dir, std::move(o)), client(&harness) {}
  StorageHarness harness;
  TestClient client;
};

// Chain 1 of the servers' targets 0 and chain 2 of their targets 1, all serving, version 1.
Task<Status> start(Cluster* c) {
  auto starting = c->harness.start();
  CO_TRY(co_await std::move(starting));
  std::vector<testing::ChainSpec> chains;
  for (ChainId chain : {1, 2}) {
    testing::ChainSpec spec{.id = chain, .version = 1};
    for (size_t s = 0; s < 3; ++s)
      spec.members.push_back({StorageHarness::target_id(s, chain - 1), PublicState::kServing});
    chains.push_back(spec);
  }
  c->harness.apply(c->harness.routing(chains));
  co_return Status();
}

Task<void> stop(Cluster* c) {
  Task<void> client_stopping = c->client.stop();
  co_await std::move(client_stopping);
  Task<void> stopping = c->harness.stop();
  co_await std::move(stopping);
}

// Starts a cluster, runs body on it and stops it whatever the body did: a body may return
// early (CO_ASSERT_*), and the servers are still stopped and closed before they are destroyed.
Task<void> run(std::string dir, testing::StorageHarnessOptions options,
               Task<void> (*body)(Cluster*)) {
  Cluster c(dir, std::move(options));
  auto starting = start(&c);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    Task<void> running = body(&c);
    co_await std::move(running);
  }
  auto stopping = stop(&c);
  co_await std::move(stopping);
}

// One item of a batch and what it should answer.
struct Expected {
  StatusCode code = StatusCode::kOk;
  std::vector<std::byte> data;  // the bytes (ok items)
  uint32_t version = 1;
};

struct Batch {
  BatchReadRequest request;
  std::vector<Expected> expected;
  std::vector<uint64_t> buffer_offsets;
  uint64_t next_offset = 0;

  void add(TestClient* client, ReadRequest item, Expected want) {
    item.out = client->remote(next_offset, item.length);
    buffer_offsets.push_back(next_offset);
    next_offset += item.length;
    request.items.push_back(item);
    expected.push_back(std::move(want));
  }
};

ReadRequest item_of(ChainId chain, ChunkRef chunk, uint32_t offset, uint32_t length,
                    uint64_t chain_version = 1) {
  return ReadRequest{.chain = chain,
                     .chain_version = chain_version,
                     .chunk = chunk,
                     .offset = offset,
                     .length = length};
}

// Writes `count` chunks of 8 KiB alternately to chains 1 and 2, all at once (each staged in
// its own part of the client's buffer), and adds a whole read of each to the batch.
Task<Status> write_many(Cluster* c, Batch* batch, uint32_t count) {
  std::vector<Task<Result<UpdateResponse>>> writes;
  for (uint32_t i = 0; i < count; ++i) {
    ChainId chain = 1 + i % 2;
    ChunkRef chunk{.inode = 0x900, .index = i};
    std::vector<std::byte> data = test_bytes(8192, 100 + i);
    UpdateIO io = write_io(chain, 1, chunk, 0, data, 1, 1000 + i);
    writes.push_back(c->client.write(0, io, data, uint64_t{i} * 8192));
    batch->add(&c->client, item_of(chain, chunk, 0, 8192), Expected{.data = std::move(data)});
  }
  auto writing = when_all(std::move(writes));
  std::vector<Result<UpdateResponse>> written = co_await std::move(writing);
  for (const Result<UpdateResponse>& w : written) CO_TRY(w.status());
  co_return Status();
}

Task<void> every_item_is_answered_with_its_own_status_in_order(Cluster* cluster) {
  Cluster& c = *cluster;
  Batch batch;
  // More items than are read at once, so that the workers take several each.
  auto writing = write_many(&c, &batch, ReadPath::kBatchReadConcurrencyMax + 8);
  CO_ASSERT_OK(co_await std::move(writing));
  std::vector<std::byte> big = test_bytes(64 << 10, 7);
  ChunkRef big_chunk{.inode = 0x901, .index = 0};
  auto big_writing = c.client.write(0, write_io(2, 1, big_chunk, 0, big, 1, 1), big);
  CO_ASSERT_OK(co_await std::move(big_writing));
  std::vector<std::byte> range(big.begin() + 1000, big.begin() + 6000);
  batch.add(&c.client, item_of(2, big_chunk, 1000, 5000), Expected{.data = range});
  std::vector<std::byte> end(big.begin() + 60000, big.end());  // past the end: fewer bytes
  batch.add(&c.client, item_of(2, big_chunk, 60000, 10000), Expected{.data = end});
  batch.add(&c.client, item_of(1, ChunkRef{.inode = 0x902, .index = 0}, 0, 4096),
            Expected{.version = 0});  // a hole
  batch.add(&c.client, item_of(2, big_chunk, 0, 4096, 5), Expected{StatusCode::kStaleChain});
  batch.add(&c.client, item_of(9, big_chunk, 0, 4096), Expected{StatusCode::kNotServing});
  auto reading = c.client.call<StorageService::batch_read>(1, batch.request);
  Result<BatchReadResponse> read = co_await std::move(reading);
  CO_ASSERT_OK(read);
  CO_ASSERT_EQ(read->items.size(), batch.expected.size());
  for (size_t i = 0; i < batch.expected.size(); ++i) {
    const Expected& want = batch.expected[i];
    const ReadItemResult& item = read->items[i];
    EXPECT_EQ(item.status.code(), want.code) << "item " << i << ": " << item.status;
    if (want.code != StatusCode::kOk) continue;
    EXPECT_EQ(item.read.version, want.version) << "item " << i;
    EXPECT_EQ(item.read.bytes, want.data.size()) << "item " << i;
    EXPECT_EQ(item.read.crc, crc32c(bytes(want.data))) << "item " << i;
    std::span<std::byte> got = c.client.buffer().subspan(batch.buffer_offsets[i], want.data.size());
    EXPECT_TRUE(std::equal(got.begin(), got.end(), want.data.begin())) << "item " << i;
  }
  // Both of server 1's targets served their chain's items.
  EXPECT_GT(c.harness.target(1, 0)->counters().reads, 0u);
  EXPECT_GT(c.harness.target(1, 1)->counters().reads, 0u);
}
MICA_CO_TEST(StorageBatchRead, EveryItemIsAnsweredWithItsOwnStatusInOrder) {
  auto running =
      run(dir.path, two_chain_options(), &every_item_is_answered_with_its_own_status_in_order);
  co_await std::move(running);
}

Task<void> a_batch_over_its_limits_is_refused_whole_and_reads_nothing(Cluster* cluster) {
  Cluster& c = *cluster;
  Batch many;
  auto writing = write_many(&c, &many, 5);
  CO_ASSERT_OK(co_await std::move(writing));
  std::memset(c.client.buffer().data(), 0, 128 << 10);
  auto reading_many = c.client.call<StorageService::batch_read>(1, many.request);
  Result<BatchReadResponse> read_many = co_await std::move(reading_many);
  EXPECT_EQ(read_many.status().code(), StatusCode::kInvalidArgument) << read_many.status();
  // Few enough items, too many bytes (each item alone would be allowed).
  Batch large;
  for (uint32_t i = 0; i < 2; ++i)
    large.add(&c.client, item_of(1, ChunkRef{.inode = 0x900, .index = 0}, 0, 40 << 10), {});
  auto reading_large = c.client.call<StorageService::batch_read>(1, large.request);
  Result<BatchReadResponse> read_large = co_await std::move(reading_large);
  EXPECT_EQ(read_large.status().code(), StatusCode::kInvalidArgument) << read_large.status();
  for (size_t t = 0; t < 2; ++t) EXPECT_EQ(c.harness.target(1, t)->counters().reads, 0u);
  std::span<std::byte> buffer = c.client.buffer().first(128 << 10);
  EXPECT_TRUE(std::all_of(buffer.begin(), buffer.end(), [](std::byte b) {
    return b == std::byte{0};
  })) << "a refused batch pushed bytes";
}
MICA_CO_TEST(StorageBatchRead, ABatchOverItsLimitsIsRefusedWholeAndReadsNothing) {
  testing::StorageHarnessOptions o = two_chain_options();
  o.server.batch_read_items_max = 4;
  o.server.read_bytes_max = 64 << 10;
  auto running = run(dir.path, o, &a_batch_over_its_limits_is_refused_whole_and_reads_nothing);
  co_await std::move(running);
}

}  // namespace
}  // namespace mica::craq
