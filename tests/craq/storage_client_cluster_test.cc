// StorageClient (craq/storage_client.h) against a whole storage cluster in this process
// (tests/craq/storage_client_cluster.h: a real Mgmtd, three StorageNodes on the real disk,
// TCP on 127.0.0.1): writes read back from every replica, a retry after the chain changed
// under a stale routing snapshot, batch reads across chains and nodes with per-item results
// and holes, batch writes, the metadata service's last_chunk and remove_from, and a replica
// whose disk rotted (the client reads another). Each test starts its own cluster and takes
// a second or two.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "craq/storage_client.h"
#include "tests/co_test.h"
#include "tests/craq/storage_client_cluster.h"

namespace mica::craq {
namespace {

using namespace std::chrono_literals;
using testing::ClientCluster;

constexpr uint32_t kChunkSize = 1 << 20;

StorageClientOptions fast_client(ReadChoice choice = ReadChoice::kSpread) {
  StorageClientOptions options;
  options.backoff_initial = 2ms;
  options.backoff_max = 20ms;
  options.attempt_timeout = 2s;
  options.call_timeout = 10s;
  options.read_choice = choice;
  return options;
}

// Bytes that differ per chunk and per position, so a mixed-up read shows.
std::vector<std::byte> pattern(uint64_t inode, uint32_t index, size_t bytes) {
  std::vector<std::byte> data(bytes);
  for (size_t i = 0; i < bytes; ++i)
    data[i] = static_cast<std::byte>((inode * 131 + index * 17 + i * 7 + (i >> 9)) & 0xff);
  return data;
}

MICA_CO_TEST(StorageClientCluster, WritesAndReadsBackFromEveryReplica) {
  ClientCluster c(dir.path, 3, 1);
  auto starting = testing::start_cluster(&c);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    StorageClient client(c.pool.get(), &c.transport, c.routing.get(), fast_client());
    ChainId chain = c.chains[0];
    std::vector<std::byte> data = pattern(1, 0, 48 << 10);
    auto writing = client.write(chain, ChunkRef{1, 0}, 0, data, kChunkSize);
    Result<ChunkState> written = co_await std::move(writing);
    EXPECT_TRUE(written.ok()) << written.status();
    if (written.ok()) {
      EXPECT_EQ(written->length_bytes, data.size());
      EXPECT_EQ(written->version, 1u);
    }
    std::vector<StorageTarget*> replicas = testing::targets_of(&c, chain);
    EXPECT_EQ(replicas.size(), 3u);
    std::vector<uint64_t> before;
    for (StorageTarget* target : replicas) before.push_back(target->counters().reads);
    for (int i = 0; i < 6; ++i) {
      std::vector<std::byte> out(data.size());
      auto reading = client.read(chain, ChunkRef{1, 0}, 0, out);
      Result<uint32_t> read = co_await std::move(reading);
      EXPECT_TRUE(read.ok()) << read.status();
      if (read.ok()) {
        EXPECT_EQ(*read, data.size());
      }
      EXPECT_TRUE(out == data) << "read " << i;
    }
    // kSpread takes the serving replicas in turn: each of the three served two reads.
    for (size_t i = 0; i < replicas.size(); ++i)
      EXPECT_EQ(replicas[i]->counters().reads - before[i], 2u) << "replica " << i;
  }
  auto stopping = testing::stop_cluster(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageClientCluster, BytesBeforeTheFirstWriteOfAChunkReadAsZeros) {
  ClientCluster c(dir.path, 3, 1);
  auto starting = testing::start_cluster(&c);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    StorageClient client(c.pool.get(), &c.transport, c.routing.get(), fast_client());
    ChainId chain = c.chains[0];
    std::vector<std::byte> data = pattern(2, 0, 8);
    auto writing = client.write(chain, ChunkRef{2, 0}, 100, data, kChunkSize);
    Result<ChunkState> written = co_await std::move(writing);
    EXPECT_TRUE(written.ok()) << written.status();
    // Sized once and copied into (g++ 12 -O2 misreads a vector insert as out of bounds).
    std::vector<std::byte> chunk(100 + data.size(), std::byte{0});
    std::copy(data.begin(), data.end(), chunk.begin() + 100);
    // Three reads per range: kSpread asks every replica once.
    for (auto [offset, length] : {std::pair<uint32_t, uint32_t>{0, 50}, {98, 4}, {100, 8}}) {
      for (int i = 0; i < 3; ++i) {
        std::vector<std::byte> out(length, std::byte{0x7e});
        auto reading = client.read(chain, ChunkRef{2, 0}, offset, out);
        Result<uint32_t> read = co_await std::move(reading);
        EXPECT_TRUE(read.ok()) << read.status();
        if (read.ok()) {
          EXPECT_EQ(*read, length) << "offset " << offset << " read " << i;
        }
        std::vector<std::byte> expected(chunk.begin() + offset, chunk.begin() + offset + length);
        EXPECT_TRUE(out == expected) << "offset " << offset << " read " << i;
      }
    }
    // The same through a batch read.
    std::vector<std::byte> before(50, std::byte{0x7e}), across(4, std::byte{0x7e});
    std::vector<ChunkRead> reads{
        {.chain = chain, .chunk = ChunkRef{2, 0}, .offset = 0, .out = before},
        {.chain = chain, .chunk = ChunkRef{2, 0}, .offset = 98, .out = across}};
    auto batch = client.read_batch(std::move(reads));
    std::vector<Result<uint32_t>> results = co_await std::move(batch);
    results.resize(2, Status(StatusCode::kInternal, "no result"));
    EXPECT_TRUE(results[0].ok() && *results[0] == 50u) << results[0].status();
    EXPECT_TRUE(results[1].ok() && *results[1] == 4u) << results[1].status();
    EXPECT_TRUE(before == std::vector<std::byte>(chunk.begin(), chunk.begin() + 50));
    EXPECT_TRUE(across == std::vector<std::byte>(chunk.begin() + 98, chunk.begin() + 102));
  }
  auto stopping = testing::stop_cluster(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageClientCluster, RetriesAfterTheChainChangedUnderStaleRouting) {
  ClientCluster c(dir.path, 3, 1);
  auto starting = testing::start_cluster(&c);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    // A routing client that only fetches when asked: its snapshot stays as it was.
    RoutingClient stale(c.pool.get(), testing::fast_routing(c.mgmtd.address));
    auto fetching = stale.refresh(0, deadline_after(5s));
    Result<RoutingClient::SnapshotPtr> fetched = co_await std::move(fetching);
    EXPECT_TRUE(fetched.ok()) << fetched.status();
    StorageClient client(c.pool.get(), &c.transport, &stale, fast_client());
    ChainId chain = c.chains[0];
    std::vector<std::byte> first = pattern(2, 0, 8192);
    auto writing = client.write(chain, ChunkRef{2, 0}, 0, first, kChunkSize);
    Result<ChunkState> written = co_await std::move(writing);
    EXPECT_TRUE(written.ok()) << written.status();
    // The chain loses its tail: a new chain version the client's snapshot does not have.
    const ChainInfo* info = find_chain(*stale.current(), chain);
    TargetId tail = info->targets.back().target;
    uint64_t old_version = stale.version();
    SetTargetOfflineRequest offline{.target = tail, .offline = true};
    auto offlining = c.mgmtd.mgmtd->set_target_offline(offline, nullptr);
    Result<SetTargetOfflineResponse> changed = co_await std::move(offlining);
    EXPECT_TRUE(changed.ok()) << changed.status();
    // The chain's own version moves at mgmtd's next round.
    uint64_t old_chain_version = info->version;
    auto moving = c.routing->wait_until(
        [chain, old_chain_version](const RoutingSnapshot& routing) {
          const ChainInfo* now = find_chain(routing, chain);
          return now != nullptr && now->version > old_chain_version;
        },
        deadline_after(5s));
    Result<RoutingClient::SnapshotPtr> moved = co_await std::move(moving);
    EXPECT_TRUE(moved.ok()) << moved.status();
    uint64_t new_version = c.routing->version();
    EXPECT_GT(new_version, old_version);
    // Every server has the new version, so the head refuses the old one (kStaleChain).
    for (auto& node : c.nodes) {
      auto following = node->routing()->wait_for_version(new_version, deadline_after(5s));
      Result<RoutingClient::SnapshotPtr> followed = co_await std::move(following);
      EXPECT_TRUE(followed.ok()) << followed.status();
    }
    EXPECT_EQ(stale.version(), old_version);
    uint64_t fetches = stale.fetches();
    std::vector<std::byte> second = pattern(2, 1, 8192);
    auto rewriting = client.write(chain, ChunkRef{2, 0}, 0, second, kChunkSize);
    Result<ChunkState> rewritten = co_await std::move(rewriting);
    EXPECT_TRUE(rewritten.ok()) << rewritten.status();
    if (rewritten.ok()) {
      EXPECT_EQ(rewritten->version, 2u);  // applied once
    }
    EXPECT_GE(stale.version(), new_version);  // the refusal made it refresh
    EXPECT_GT(stale.fetches(), fetches);
    std::vector<std::byte> out(second.size());
    auto reading = client.read(chain, ChunkRef{2, 0}, 0, out);
    Result<uint32_t> read = co_await std::move(reading);
    EXPECT_TRUE(read.ok()) << read.status();
    EXPECT_TRUE(out == second);
    Task<void> stopping = stale.stop();
    co_await std::move(stopping);
  }
  auto stopping = testing::stop_cluster(&c);
  co_await std::move(stopping);
}

// Chunks 0..9 of inode 7, chunk i on chain i % 2 with (i + 1) * 4 KiB.
Task<Status> write_striped(StorageClient* client, std::vector<ChainId> chains, uint64_t inode,
                           uint32_t count) {
  for (uint32_t i = 0; i < count; ++i) {
    std::vector<std::byte> data = pattern(inode, i, (i + 1) * 4096);
    auto writing =
        client->write(chains[i % chains.size()], ChunkRef{inode, i}, 0, data, kChunkSize);
    CO_TRY(co_await std::move(writing));
  }
  co_return Status();
}

MICA_CO_TEST(StorageClientCluster, ReadBatchAcrossChainsAndNodesAnswersEachItem) {
  ClientCluster c(dir.path, 3, 2);
  auto starting = testing::start_cluster(&c);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    EXPECT_EQ(c.chains.size(), 2u);
    StorageClientOptions options = fast_client();
    options.batch_read_items_max = 3;  // several batch_read RPCs per node
    StorageClient client(c.pool.get(), &c.transport, c.routing.get(), options);
    auto writing = write_striped(&client, c.chains, 7, 10);
    Status written = co_await std::move(writing);
    EXPECT_TRUE(written.ok()) << written;
    std::vector<std::vector<std::byte>> buffers(14, std::vector<std::byte>(64 << 10));
    std::vector<ChunkRead> reads;
    for (uint32_t i = 0; i < 10; ++i)
      reads.push_back({.chain = c.chains[i % 2], .chunk = {7, i}, .out = buffers[i]});
    // A hole (no such chunk), a range past a chunk's end, a range inside one, and a chain
    // nobody knows.
    reads.push_back({.chain = c.chains[0], .chunk = {8, 0}, .out = buffers[10]});
    reads.push_back({.chain = c.chains[1], .chunk = {7, 1}, .offset = 20000, .out = buffers[11]});
    reads.push_back({.chain = c.chains[0],
                     .chunk = {7, 4},
                     .offset = 100,
                     .out = std::span(buffers[12]).first(1000)});
    reads.push_back({.chain = 999, .chunk = {7, 0}, .out = buffers[13]});
    auto reading = client.read_batch(reads);
    std::vector<Result<uint32_t>> results = co_await std::move(reading);
    CO_ASSERT_EQ(results.size(), reads.size());
    for (uint32_t i = 0; i < 10; ++i) {
      std::vector<std::byte> expected = pattern(7, i, (i + 1) * 4096);
      EXPECT_TRUE(results[i].ok()) << i << ": " << results[i].status();
      if (!results[i].ok()) continue;
      EXPECT_EQ(*results[i], expected.size()) << i;
      EXPECT_TRUE(std::equal(expected.begin(), expected.end(), buffers[i].begin())) << i;
    }
    EXPECT_TRUE(results[10].ok() && *results[10] == 0) << results[10].status();
    EXPECT_TRUE(results[11].ok() && *results[11] == 0) << results[11].status();
    EXPECT_TRUE(results[12].ok() && *results[12] == 1000) << results[12].status();
    std::vector<std::byte> inside = pattern(7, 4, 1100);
    EXPECT_TRUE(std::equal(inside.begin() + 100, inside.end(), buffers[12].begin()));
    EXPECT_EQ(results[13].status().code(), StatusCode::kNotFound) << results[13].status();
  }
  auto stopping = testing::stop_cluster(&c);
  co_await std::move(stopping);
}

// The data-loader pattern: every item reads into its own slice of one buffer (the client
// registers the whole run of slices once); each slice gets exactly its chunk's bytes and
// no byte outside the slices is touched.
MICA_CO_TEST(StorageClientCluster, ReadBatchIntoSlicesOfOneBufferFillsEachSlice) {
  ClientCluster c(dir.path, 3, 2);
  auto starting = testing::start_cluster(&c);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    StorageClient client(c.pool.get(), &c.transport, c.routing.get(), fast_client());
    constexpr uint32_t kChunks = 10;
    auto writing = write_striped(&client, c.chains, 7, kChunks);
    Status written = co_await std::move(writing);
    EXPECT_TRUE(written.ok()) << written;
    // Item i reads chunk kChunks - 1 - i ((kChunks - i) * 4 KiB) into consecutive slices, in
    // reverse chunk order, followed by a guard byte pattern.
    std::vector<uint32_t> sizes;
    for (uint32_t i = 0; i < kChunks; ++i) sizes.push_back((kChunks - i) * 4096);
    size_t total = 0;
    for (uint32_t size : sizes) total += size;
    std::vector<std::byte> buffer(total + 4096, std::byte{0x5a});
    std::vector<ChunkRead> reads;
    size_t at = 0;
    for (uint32_t i = 0; i < kChunks; ++i) {
      uint32_t index = kChunks - 1 - i;
      reads.push_back({.chain = c.chains[index % c.chains.size()],
                       .chunk = {7, index},
                       .out = std::span(buffer).subspan(at, sizes[i])});
      at += sizes[i];
    }
    auto reading = client.read_batch(reads);
    std::vector<Result<uint32_t>> results = co_await std::move(reading);
    CO_ASSERT_EQ(results.size(), reads.size());
    at = 0;
    for (uint32_t i = 0; i < kChunks; ++i) {
      uint32_t index = kChunks - 1 - i;
      std::vector<std::byte> expected = pattern(7, index, (index + 1) * 4096);
      EXPECT_TRUE(results[i].ok() && *results[i] == expected.size()) << i;
      EXPECT_TRUE(std::equal(expected.begin(), expected.end(), buffer.begin() + at)) << i;
      at += sizes[i];
    }
    EXPECT_TRUE(std::all_of(buffer.begin() + at, buffer.end(),
                            [](std::byte b) { return b == std::byte{0x5a}; }));
  }
  auto stopping = testing::stop_cluster(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageClientCluster, WriteBatchWritesManyChunksWithinItsByteBudget) {
  ClientCluster c(dir.path, 3, 2);
  auto starting = testing::start_cluster(&c);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    StorageClientOptions options = fast_client();
    options.batch_bytes_in_flight_max = 128 << 10;  // four of the 32 KiB writes at a time
    StorageClient client(c.pool.get(), &c.transport, c.routing.get(), options);
    constexpr uint32_t kChunks = 40;
    std::vector<std::vector<std::byte>> data;
    std::vector<ChunkWrite> writes;
    for (uint32_t i = 0; i < kChunks; ++i) data.push_back(pattern(9, i, 32 << 10));
    for (uint32_t i = 0; i < kChunks; ++i)
      writes.push_back({.chain = c.chains[i % c.chains.size()],
                        .chunk = {9, i},
                        .data = data[i],
                        .chunk_size_bytes = kChunkSize});
    auto writing = client.write_batch(writes);
    std::vector<Result<ChunkState>> written = co_await std::move(writing);
    CO_ASSERT_EQ(written.size(), size_t{kChunks});
    for (uint32_t i = 0; i < kChunks; ++i) {
      EXPECT_TRUE(written[i].ok()) << i << ": " << written[i].status();
      if (written[i].ok()) {
        EXPECT_EQ(written[i]->length_bytes, 32u << 10);
      }
    }
    std::vector<std::vector<std::byte>> out(kChunks, std::vector<std::byte>(32 << 10));
    std::vector<ChunkRead> reads;
    for (uint32_t i = 0; i < kChunks; ++i)
      reads.push_back({.chain = writes[i].chain, .chunk = writes[i].chunk, .out = out[i]});
    auto reading = client.read_batch(reads);
    std::vector<Result<uint32_t>> read = co_await std::move(reading);
    for (uint32_t i = 0; i < kChunks; ++i) {
      EXPECT_TRUE(read[i].ok()) << i << ": " << read[i].status();
      EXPECT_TRUE(out[i] == data[i]) << i;
    }
  }
  auto stopping = testing::stop_cluster(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageClientCluster, LastChunkIsTheHighestIndexOverTheChains) {
  ClientCluster c(dir.path, 3, 2);
  auto starting = testing::start_cluster(&c);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    StorageClient client(c.pool.get(), &c.transport, c.routing.get(), fast_client());
    auto writing = write_striped(&client, c.chains, 11, 7);  // the last one on chains[0]
    Status written = co_await std::move(writing);
    EXPECT_TRUE(written.ok()) << written;
    auto asking = client.last_chunk(c.chains, 11);
    Result<std::optional<ChunkMeta>> last = co_await std::move(asking);
    EXPECT_TRUE(last.ok()) << last.status();
    if (last.ok()) {
      EXPECT_TRUE(last->has_value());
      if (last->has_value()) {
        EXPECT_EQ((*last)->chunk.index, 6u);
        EXPECT_EQ((*last)->state.length_bytes, 7u * 4096);
      }
    }
    auto asking_none = client.last_chunk(c.chains, 12);
    Result<std::optional<ChunkMeta>> none = co_await std::move(asking_none);
    EXPECT_TRUE(none.ok() && !none->has_value()) << none.status();
  }
  auto stopping = testing::stop_cluster(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageClientCluster, RemoveFromRemovesExactlyTheChunksFromTheIndexOn) {
  ClientCluster c(dir.path, 3, 2);
  auto starting = testing::start_cluster(&c);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    StorageClient client(c.pool.get(), &c.transport, c.routing.get(), fast_client());
    auto writing = write_striped(&client, c.chains, 13, 9);
    Status written = co_await std::move(writing);
    EXPECT_TRUE(written.ok()) << written;
    auto other = write_striped(&client, c.chains, 14, 4);  // another file stays whole
    Status other_written = co_await std::move(other);
    EXPECT_TRUE(other_written.ok()) << other_written;
    auto removing = client.remove_from(c.chains, 13, 4);
    Status removed = co_await std::move(removing);
    EXPECT_TRUE(removed.ok()) << removed;
    for (uint32_t i = 0; i < 9; ++i) {
      std::vector<std::byte> out(64 << 10);
      auto reading = client.read(c.chains[i % 2], ChunkRef{13, i}, 0, out);
      Result<uint32_t> read = co_await std::move(reading);
      EXPECT_TRUE(read.ok()) << read.status();
      if (read.ok()) {
        EXPECT_EQ(*read, i < 4 ? (i + 1) * 4096 : 0u) << i;
      }
    }
    // Gone from every replica, not only the head.
    for (ChainId chain : c.chains) {
      for (StorageTarget* target : testing::targets_of(&c, chain)) {
        std::vector<std::byte> out(16);
        auto reading = target->engine().read(chunk::ChunkId{13, 8}, 0, out);
        Result<size_t> read = co_await std::move(reading);
        EXPECT_TRUE(!read.ok() || *read == 0) << "target " << target->id();
      }
    }
    auto asking = client.last_chunk(c.chains, 13);
    Result<std::optional<ChunkMeta>> last = co_await std::move(asking);
    EXPECT_TRUE(last.ok() && last->has_value() && (*last)->chunk.index == 3u);
    auto asking_other = client.last_chunk(c.chains, 14);
    Result<std::optional<ChunkMeta>> other_last = co_await std::move(asking_other);
    EXPECT_TRUE(other_last.ok() && other_last->has_value() && (*other_last)->chunk.index == 3u);
    auto removing_all = client.remove_from(c.chains, 13, 0);
    Status removed_all = co_await std::move(removing_all);
    EXPECT_TRUE(removed_all.ok()) << removed_all;
    auto asking_gone = client.last_chunk(c.chains, 13);
    Result<std::optional<ChunkMeta>> gone = co_await std::move(asking_gone);
    EXPECT_TRUE(gone.ok() && !gone->has_value());
  }
  auto stopping = testing::stop_cluster(&c);
  co_await std::move(stopping);
}

// XORs bytes [offset, offset + length) of a file in place, behind the engine's back.
void rot(const std::string& path, uint64_t offset, size_t length) {
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << path;
  std::vector<uint8_t> bytes(length);
  ASSERT_EQ(::pread(fd, bytes.data(), length, static_cast<off_t>(offset)), ssize_t(length));
  for (uint8_t& b : bytes) b ^= 0xff;
  ASSERT_EQ(::pwrite(fd, bytes.data(), length, static_cast<off_t>(offset)), ssize_t(length));
  ASSERT_EQ(::fsync(fd), 0);
  ::close(fd);
}

MICA_CO_TEST(StorageClientCluster, ReadMovesOnFromAReplicaWhoseDiskRotted) {
  ClientCluster c(dir.path, 3, 1);
  auto starting = testing::start_cluster(&c);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    // Pinned to the head, so the first attempt meets the rot.
    StorageClient client(c.pool.get(), &c.transport, c.routing.get(),
                         fast_client(ReadChoice::kHead));
    ChainId chain = c.chains[0];
    std::vector<std::byte> data = pattern(3, 0, 64 << 10);
    auto writing = client.write(chain, ChunkRef{3, 0}, 0, data, kChunkSize);
    Result<ChunkState> written = co_await std::move(writing);
    EXPECT_TRUE(written.ok()) << written.status();
    TargetId head_id = find_chain(*c.routing->current(), chain)->targets[0].target;
    StorageTarget* head = nullptr;
    for (StorageTarget* target : testing::targets_of(&c, chain))
      if (target->id() == head_id) head = target;
    CO_ASSERT_TRUE(head != nullptr);
    // The target's only chunk is in slot 0 of the 64 KiB class.
    rot(head->config().path + "/data/64KiB.slots", 5000, 100);
    std::vector<std::byte> out(data.size());
    auto direct = head->engine().read(chunk::ChunkId{3, 0}, 0, out);
    Result<size_t> rotten = co_await std::move(direct);
    EXPECT_EQ(rotten.status().code(), StatusCode::kChecksumMismatch) << rotten.status();
    std::fill(out.begin(), out.end(), std::byte{0});
    Counter& mismatches = metrics().counter("storage_client", "checksum_mismatches_total", "");
    uint64_t mismatches_before = mismatches.value();
    auto reading = client.read(chain, ChunkRef{3, 0}, 0, out);
    Result<uint32_t> read = co_await std::move(reading);
    EXPECT_TRUE(read.ok()) << read.status();
    EXPECT_TRUE(out == data);
    EXPECT_EQ(mismatches.value() - mismatches_before, 1u);  // the head's answer, then another
  }
  auto stopping = testing::stop_cluster(&c);
  co_await std::move(stopping);
}

}  // namespace
}  // namespace mica::craq
