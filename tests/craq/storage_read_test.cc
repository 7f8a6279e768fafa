// The CRAQ read path (craq/storage_read.h) on three in-process storage servers over TCP on
// 127.0.0.1 (tests/craq/storage_harness.h), chains built by hand: every serving replica
// serves the committed bytes with their CRC; a missing chunk is a hole; a replica holding a
// pending version asks the tail and serves only what the tail has committed (else kDirty);
// targets not serving and stale chain versions are refused; batch reads answer each item on
// its own and refuse oversize batches; a chunk rotten on disk is refused and repaired. The
// pending states are made by calling a replica's engine directly. Each test takes well under
// a second (the repair test polls for up to 10 s, normally a few ms).
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "async/wait_list.h"
#include "craq/storage_target.h"
#include "tests/co_test.h"
#include "tests/craq/storage_harness.h"

namespace mica::craq {
namespace {

using namespace std::chrono_literals;
using testing::StorageHarness;
using testing::test_bytes;
using testing::TestClient;
using testing::write_io;

constexpr ChunkRef kChunk{.inode = 0x51, .index = 7};

chunk::ChunkId id_of(ChunkRef ref) {
  return chunk::ChunkId{.inode = ref.inode, .index = ref.index};
}

std::span<const std::byte> bytes(const std::vector<std::byte>& v) {
  return {v.data(), v.size()};
}

// The scrub is off, so that only readers find rot (the corruption test depends on it).
testing::StorageHarnessOptions read_options() {
  testing::StorageHarnessOptions o;
  o.server.scrub_bytes_per_s = 0;
  return o;
}

struct Cluster {
  explicit Cluster(const std::string& dir, testing::StorageHarnessOptions o = read_options())
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

// Writes data at offset 0 of chunk through the head of chain (version 1).
Task<Status> write_chunk(Cluster* c, ChunkRef chunk, std::vector<std::byte> data,
                         uint64_t request_id, ChainId chain = 1) {
  auto writing = c->client.write(0, write_io(chain, 1, chunk, 0, data, 1, request_id), data);
  Result<UpdateResponse> written = co_await std::move(writing);
  co_return written.status();
}

ReadRequest read_of(ChunkRef chunk, uint32_t offset, uint32_t length, uint64_t chain_version = 1,
                    ChainId chain = 1) {
  return ReadRequest{.chain = chain,
                     .chain_version = chain_version,
                     .chunk = chunk,
                     .offset = offset,
                     .length = length};
}

// The first n bytes of the client's buffer from buffer_offset.
std::vector<std::byte> got(TestClient* client, size_t n, size_t buffer_offset = 0) {
  std::span<std::byte> b = client->buffer().subspan(buffer_offset, n);
  return {b.begin(), b.end()};
}

// A pending version (not committed) made directly at server s's engine.
Task<Status> make_pending(StorageHarness* h, size_t s, const std::vector<std::byte>* data,
                          uint32_t version) {
  auto writing = h->engine(s).write(id_of(kChunk), 0, bytes(*data), crc32c(bytes(*data)),
                                    chunk::UpdateVersion{.version = version, .chain_version = 1});
  Result<chunk::ChunkInfo> written = co_await std::move(writing);
  co_return written.status();
}

// A version committed directly at server s's engine (as if the chain's tail had it).
Task<Status> make_committed(StorageHarness* h, size_t s, const std::vector<std::byte>* data,
                            uint32_t version) {
  auto writing =
      h->engine(s).write_and_commit(id_of(kChunk), 0, bytes(*data), crc32c(bytes(*data)),
                                    chunk::UpdateVersion{.version = version, .chain_version = 1});
  Result<chunk::ChunkInfo> written = co_await std::move(writing);
  co_return written.status();
}

Task<void> every_replica_serves_the_committed_bytes_and_their_crc(Cluster* cluster) {
  Cluster& c = *cluster;
  std::vector<std::byte> data = test_bytes(100000, 1);
  auto writing = write_chunk(&c, kChunk, data, 1);
  CO_ASSERT_OK(co_await std::move(writing));
  for (size_t s = 0; s < 3; ++s) {
    std::memset(c.client.buffer().data(), 0, data.size());
    auto reading = c.client.read(s, read_of(kChunk, 0, 128 << 10));
    Result<ReadResponse> read = co_await std::move(reading);
    CO_ASSERT_OK(read) << "server " << s;
    EXPECT_EQ(read->bytes, data.size()) << "server " << s;
    EXPECT_EQ(read->version, 1u) << "server " << s;
    EXPECT_EQ(read->crc, crc32c(bytes(data))) << "server " << s;
    EXPECT_TRUE(got(&c.client, data.size()) == data) << "server " << s;
    // An unaligned range inside the chunk, into an unaligned place of the buffer.
    auto ranged = c.client.read(s, read_of(kChunk, 5001, 20000), 777);
    Result<ReadResponse> range = co_await std::move(ranged);
    CO_ASSERT_OK(range) << "server " << s;
    std::vector<std::byte> expected(data.begin() + 5001, data.begin() + 25001);
    EXPECT_EQ(range->bytes, 20000u);
    EXPECT_EQ(range->crc, crc32c(bytes(expected)));
    EXPECT_TRUE(got(&c.client, 20000, 777) == expected) << "server " << s;
    EXPECT_EQ(c.harness.target(s)->counters().reads, 2u);
    EXPECT_EQ(c.harness.target(s)->counters().read_bytes, data.size() + 20000);
    EXPECT_EQ(c.harness.target(s)->counters().version_queries, 0u);
  }
}
MICA_CO_TEST(StorageRead, EveryReplicaServesTheCommittedBytesAndTheirCrc) {
  auto running =
      run(dir.path, read_options(), &every_replica_serves_the_committed_bytes_and_their_crc);
  co_await std::move(running);
}

Task<void> a_read_past_the_chunks_end_returns_the_bytes_there_are(Cluster* cluster) {
  Cluster& c = *cluster;
  std::vector<std::byte> data = test_bytes(10000, 2);
  auto writing = write_chunk(&c, kChunk, data, 1);
  CO_ASSERT_OK(co_await std::move(writing));
  auto reading = c.client.read(1, read_of(kChunk, 8192, 8192));
  Result<ReadResponse> read = co_await std::move(reading);
  CO_ASSERT_OK(read);
  std::vector<std::byte> tail(data.begin() + 8192, data.end());
  EXPECT_EQ(read->bytes, tail.size());
  EXPECT_EQ(read->crc, crc32c(bytes(tail)));
  EXPECT_TRUE(got(&c.client, tail.size()) == tail);
  auto beyond = c.client.read(1, read_of(kChunk, 20000, 4096));
  Result<ReadResponse> nothing = co_await std::move(beyond);
  CO_ASSERT_OK(nothing);
  EXPECT_EQ(nothing->bytes, 0u);
  EXPECT_EQ(nothing->version, 1u);
}
MICA_CO_TEST(StorageRead, AReadPastTheChunksEndReturnsTheBytesThereAre) {
  auto running =
      run(dir.path, read_options(), &a_read_past_the_chunks_end_returns_the_bytes_there_are);
  co_await std::move(running);
}

// A new chunk written first at offset 100: its bytes before 100 exist, as zeros.
Task<void> bytes_before_the_first_write_of_a_chunk_read_as_zeros(Cluster* cluster) {
  Cluster& c = *cluster;
  std::vector<std::byte> data = test_bytes(8, 3);
  auto writing = c.client.write(0, write_io(1, 1, kChunk, 100, data, 1, 1), data);
  CO_ASSERT_OK(co_await std::move(writing));
  std::vector<std::byte> chunk(100, std::byte{0});
  chunk.insert(chunk.end(), data.begin(), data.end());
  struct Range {
    uint32_t offset, length;
  };
  for (size_t s = 0; s < 3; ++s) {
    for (Range r : {Range{0, 50}, Range{98, 4}, Range{0, 4096}, Range{100, 8}}) {
      std::memset(c.client.buffer().data(), 0x7e, 4096);
      auto reading = c.client.read(s, read_of(kChunk, r.offset, r.length));
      Result<ReadResponse> read = co_await std::move(reading);
      CO_ASSERT_OK(read) << "server " << s;
      uint32_t end = std::min<uint32_t>(r.offset + r.length, 108);
      std::vector<std::byte> expected(chunk.begin() + r.offset, chunk.begin() + end);
      EXPECT_EQ(read->bytes, expected.size()) << "server " << s << " offset " << r.offset;
      EXPECT_EQ(read->crc, crc32c(bytes(expected))) << "server " << s << " offset " << r.offset;
      EXPECT_TRUE(got(&c.client, expected.size()) == expected)
          << "server " << s << " offset " << r.offset;
    }
  }
}
MICA_CO_TEST(StorageRead, BytesBeforeTheFirstWriteOfAChunkReadAsZeros) {
  auto running =
      run(dir.path, read_options(), &bytes_before_the_first_write_of_a_chunk_read_as_zeros);
  co_await std::move(running);
}

Task<void> a_missing_chunk_is_a_hole_of_zero_bytes_at_version_zero(Cluster* cluster) {
  Cluster& c = *cluster;
  std::vector<std::byte> marker(4096, std::byte{0x7e});
  std::memcpy(c.client.buffer().data(), marker.data(), marker.size());
  for (size_t s = 0; s < 3; ++s) {
    auto reading = c.client.read(s, read_of(kChunk, 0, 4096));
    Result<ReadResponse> read = co_await std::move(reading);
    CO_ASSERT_OK(read) << "server " << s;
    EXPECT_EQ(read->bytes, 0u);
    EXPECT_EQ(read->version, 0u);
    EXPECT_EQ(read->crc, 0u);
  }
  EXPECT_TRUE(got(&c.client, 4096) == marker) << "a hole pushed bytes";
}
MICA_CO_TEST(StorageRead, AMissingChunkIsAHoleOfZeroBytesAtVersionZero) {
  auto running =
      run(dir.path, read_options(), &a_missing_chunk_is_a_hole_of_zero_bytes_at_version_zero);
  co_await std::move(running);
}

Task<void> pending_version_the_tail_has_not_committed_serves_the_old_committed_one(
    Cluster* cluster) {
  Cluster& c = *cluster;
  std::vector<std::byte> old_data = test_bytes(30000, 3);
  auto writing = write_chunk(&c, kChunk, old_data, 1);
  CO_ASSERT_OK(co_await std::move(writing));
  std::vector<std::byte> new_data = test_bytes(30000, 4);
  auto pending = make_pending(&c.harness, 1, &new_data, 2);
  CO_ASSERT_OK(co_await std::move(pending));
  auto reading = c.client.read(1, read_of(kChunk, 0, 30000));
  Result<ReadResponse> read = co_await std::move(reading);
  CO_ASSERT_OK(read);
  EXPECT_EQ(read->version, 1u);
  EXPECT_EQ(read->crc, crc32c(bytes(old_data)));
  EXPECT_TRUE(got(&c.client, old_data.size()) == old_data);
  EXPECT_EQ(c.harness.target(1)->counters().version_queries, 1u);
  EXPECT_EQ(c.harness.target(1)->counters().dirty_reads, 0u);
}
MICA_CO_TEST(StorageRead, PendingVersionTheTailHasNotCommittedServesTheOldCommittedOne) {
  auto running = run(dir.path, read_options(),
                     &pending_version_the_tail_has_not_committed_serves_the_old_committed_one);
  co_await std::move(running);
}

Task<void> pending_version_when_the_tail_committed_another_one_is_dirty(Cluster* cluster) {
  Cluster& c = *cluster;
  std::vector<std::byte> old_data = test_bytes(30000, 5);
  auto writing = write_chunk(&c, kChunk, old_data, 1);
  CO_ASSERT_OK(co_await std::move(writing));
  std::vector<std::byte> middle = test_bytes(30000, 6);
  std::vector<std::byte> tail = test_bytes(30000, 7);
  auto pending = make_pending(&c.harness, 1, &middle, 2);
  CO_ASSERT_OK(co_await std::move(pending));
  auto committing = make_committed(&c.harness, 2, &tail, 2);
  CO_ASSERT_OK(co_await std::move(committing));
  std::vector<std::byte> marker(30000, std::byte{0x5c});
  std::memcpy(c.client.buffer().data(), marker.data(), marker.size());
  auto reading = c.client.read(1, read_of(kChunk, 0, 30000));
  Result<ReadResponse> read = co_await std::move(reading);
  EXPECT_EQ(read.status().code(), StatusCode::kDirty) << read.status();
  EXPECT_TRUE(got(&c.client, marker.size()) == marker) << "a dirty read pushed bytes";
  EXPECT_EQ(c.harness.target(1)->counters().dirty_reads, 1u);
  EXPECT_EQ(c.harness.target(1)->counters().version_queries, 1u);
}
MICA_CO_TEST(StorageRead, PendingVersionWhenTheTailCommittedAnotherOneIsDirty) {
  auto running =
      run(dir.path, read_options(), &pending_version_when_the_tail_committed_another_one_is_dirty);
  co_await std::move(running);
}

Task<void> pending_version_the_tail_has_committed_is_served(Cluster* cluster) {
  Cluster& c = *cluster;
  std::vector<std::byte> old_data = test_bytes(30000, 8);
  auto writing = write_chunk(&c, kChunk, old_data, 1);
  CO_ASSERT_OK(co_await std::move(writing));
  std::vector<std::byte> new_data = test_bytes(20000, 9);
  auto pending = make_pending(&c.harness, 1, &new_data, 2);
  CO_ASSERT_OK(co_await std::move(pending));
  auto committing = make_committed(&c.harness, 2, &new_data, 2);
  CO_ASSERT_OK(co_await std::move(committing));
  // The new version is the old content with new_data over its first 20000 bytes.
  std::vector<std::byte> expected = new_data;
  expected.insert(expected.end(), old_data.begin() + 20000, old_data.end());
  auto reading = c.client.read(1, read_of(kChunk, 0, 30000));
  Result<ReadResponse> read = co_await std::move(reading);
  CO_ASSERT_OK(read);
  EXPECT_EQ(read->version, 2u);
  EXPECT_EQ(read->bytes, 30000u);
  EXPECT_EQ(read->crc, crc32c(bytes(expected)));
  EXPECT_TRUE(got(&c.client, expected.size()) == expected);
}
MICA_CO_TEST(StorageRead, PendingVersionTheTailHasCommittedIsServed) {
  auto running = run(dir.path, read_options(), &pending_version_the_tail_has_committed_is_served);
  co_await std::move(running);
}

// A pending version at the read tail is a leftover of a failure here (the tail commits at
// once), which a tail that failed since may have committed and shown: the read tail commits
// it before it serves the chunk or answers a query for it, and asks nobody.
Task<void> the_tail_commits_a_leftover_pending_version_before_it_answers(Cluster* cluster) {
  Cluster& c = *cluster;
  std::vector<std::byte> old_data = test_bytes(30000, 10);
  auto writing = write_chunk(&c, kChunk, old_data, 1);
  CO_ASSERT_OK(co_await std::move(writing));
  std::vector<std::byte> new_data = test_bytes(30000, 11);
  auto pending = make_pending(&c.harness, 2, &new_data, 2);
  CO_ASSERT_OK(co_await std::move(pending));
  auto reading = c.client.read(2, read_of(kChunk, 0, 30000));
  Result<ReadResponse> read = co_await std::move(reading);
  CO_ASSERT_OK(read);
  EXPECT_EQ(read->version, 2u);
  EXPECT_TRUE(got(&c.client, new_data.size()) == new_data);
  EXPECT_EQ(c.harness.target(2)->counters().version_queries, 0u);
  auto pending_again = make_pending(&c.harness, 2, &old_data, 3);
  CO_ASSERT_OK(co_await std::move(pending_again));
  // What the tail answers an apportioned query: its committed state once settled.
  QueryVersionRequest query{.chain = 1, .chain_version = 1, .chunk = kChunk};
  auto querying = c.client.call<StorageService::query_version>(2, query);
  Result<QueryVersionResponse> answer = co_await std::move(querying);
  CO_ASSERT_OK(answer);
  EXPECT_EQ(answer->state.version, 3u);
  EXPECT_EQ(answer->state.length_bytes, old_data.size());
  EXPECT_EQ(answer->state.checksum, crc32c(bytes(old_data)));
  // A member that is not the read tail refuses to answer one.
  auto asking_middle = c.client.call<StorageService::query_version>(1, query);
  Result<QueryVersionResponse> refused = co_await std::move(asking_middle);
  EXPECT_EQ(refused.status().code(), StatusCode::kNotServing) << refused.status();
}
MICA_CO_TEST(StorageRead, TheTailCommitsALeftoverPendingVersionBeforeItAnswers) {
  auto running =
      run(dir.path, read_options(), &the_tail_commits_a_leftover_pending_version_before_it_answers);
  co_await std::move(running);
}

Task<void> syncing_and_offline_targets_are_not_serving(Cluster* cluster) {
  Cluster& c = *cluster;
  std::vector<std::byte> data = test_bytes(8192, 12);
  auto writing = write_chunk(&c, kChunk, data, 1);
  CO_ASSERT_OK(co_await std::move(writing));
  for (PublicState state : {PublicState::kSyncing, PublicState::kOffline}) {
    testing::ChainSpec spec{.id = 1, .version = 2};
    spec.members = {{StorageHarness::target_id(0), PublicState::kServing},
                    {StorageHarness::target_id(1), PublicState::kServing},
                    {StorageHarness::target_id(2), state}};
    c.harness.apply(c.harness.routing({spec}));
    auto reading = c.client.read(2, read_of(kChunk, 0, 8192, 2));
    Result<ReadResponse> read = co_await std::move(reading);
    EXPECT_EQ(read.status().code(), StatusCode::kNotServing) << read.status();
    auto serving = c.client.read(1, read_of(kChunk, 0, 8192, 2));
    EXPECT_TRUE((co_await std::move(serving)).ok()) << "the read tail still serves";
  }
}
MICA_CO_TEST(StorageRead, SyncingAndOfflineTargetsAreNotServing) {
  auto running = run(dir.path, read_options(), &syncing_and_offline_targets_are_not_serving);
  co_await std::move(running);
}

Task<void> stale_or_unknown_chain_is_refused(Cluster* cluster) {
  Cluster& c = *cluster;
  auto ahead = c.client.read(0, read_of(kChunk, 0, 4096, 2));
  Result<ReadResponse> read_ahead = co_await std::move(ahead);
  EXPECT_EQ(read_ahead.status().code(), StatusCode::kStaleChain) << read_ahead.status();
  c.harness.apply(c.harness.serving_chain({0, 1, 2}, 3));
  auto behind = c.client.read(1, read_of(kChunk, 0, 4096, 1));
  Result<ReadResponse> read_behind = co_await std::move(behind);
  EXPECT_EQ(read_behind.status().code(), StatusCode::kStaleChain) << read_behind.status();
  auto unknown = c.client.read(1, read_of(kChunk, 0, 4096, 3, 9));
  Result<ReadResponse> read_unknown = co_await std::move(unknown);
  EXPECT_EQ(read_unknown.status().code(), StatusCode::kNotServing) << read_unknown.status();
}
MICA_CO_TEST(StorageRead, StaleOrUnknownChainIsRefused) {
  auto running = run(dir.path, read_options(), &stale_or_unknown_chain_is_refused);
  co_await std::move(running);
}

Task<void> a_read_longer_than_its_buffer_or_the_limit_is_refused(Cluster* cluster) {
  Cluster& c = *cluster;
  ReadRequest request = read_of(kChunk, 0, 8192);
  request.out = c.client.remote(0, 4096);
  auto reading = c.client.call<StorageService::read>(0, request);
  Result<ReadResponse> read = co_await std::move(reading);
  EXPECT_EQ(read.status().code(), StatusCode::kInvalidArgument) << read.status();
  auto over = c.client.read(0, read_of(kChunk, 0, (64 << 10) + 1));
  Result<ReadResponse> read_over = co_await std::move(over);
  EXPECT_EQ(read_over.status().code(), StatusCode::kInvalidArgument) << read_over.status();
}
MICA_CO_TEST(StorageRead, AReadLongerThanItsBufferOrTheLimitIsRefused) {
  testing::StorageHarnessOptions o = read_options();
  o.server.read_bytes_max = 64 << 10;
  auto running = run(dir.path, o, &a_read_longer_than_its_buffer_or_the_limit_is_refused);
  co_await std::move(running);
}

// Flips one byte of a file with plain system calls (the engine uses buffered I/O here, so
// its next read sees the change).
void flip_byte(const std::string& file, uint64_t offset) {
  int fd = ::open(file.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << file;
  unsigned char b = 0;
  ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(offset)), 1);
  b ^= 0x5A;
  ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(offset)), 1);
  ::fsync(fd);
  ::close(fd);
}

// True once server s's engine reads the whole chunk back as data (polls up to 10 s).
Task<bool> repaired(StorageHarness* h, size_t s, const std::vector<std::byte>* data) {
  std::vector<std::byte> out(data->size());
  for (int i = 0; i < 1000; ++i) {
    auto reading = h->engine(s).read(id_of(kChunk), 0, out);
    Result<size_t> read = co_await std::move(reading);
    if (read.ok() && *read == data->size() && out == *data) co_return true;
    Status slept = co_await sleep_for(10ms);
    (void)slept;
  }
  co_return false;
}

Task<void> a_rotten_chunk_is_a_checksum_mismatch_and_gets_repaired(Cluster* cluster) {
  Cluster& c = *cluster;
  std::vector<std::byte> data = test_bytes(50000, 13);
  auto writing = write_chunk(&c, kChunk, data, 1);
  CO_ASSERT_OK(co_await std::move(writing));
  // The only chunk of a fresh target: slot 0 of the 64 KiB class; the byte is in block 3.
  flip_byte(c.harness.at(1).target_dirs[0] + "/data/64KiB.slots", 13000);
  auto reading = c.client.read(1, read_of(kChunk, 12288, 4096));
  Result<ReadResponse> read = co_await std::move(reading);
  EXPECT_EQ(read.status().code(), StatusCode::kChecksumMismatch) << read.status();
  // The other replicas serve the range meanwhile.
  auto elsewhere = c.client.read(0, read_of(kChunk, 12288, 4096));
  EXPECT_TRUE((co_await std::move(elsewhere)).ok());
  // on_corrupt hands the chunk to the repair (the scrub is off, so nothing else would).
  auto checking = repaired(&c.harness, 1, &data);
  EXPECT_TRUE(co_await std::move(checking)) << "the rotten chunk was not repaired";
  auto again = c.client.read(1, read_of(kChunk, 0, 50000));
  Result<ReadResponse> read_again = co_await std::move(again);
  CO_ASSERT_OK(read_again);
  EXPECT_EQ(read_again->crc, crc32c(bytes(data)));
}
MICA_CO_TEST(StorageRead, ARottenChunkIsAChecksumMismatchAndGetsRepaired) {
  auto running =
      run(dir.path, read_options(), &a_rotten_chunk_is_a_checksum_mismatch_and_gets_repaired);
  co_await std::move(running);
}

}  // namespace
}  // namespace mica::craq
