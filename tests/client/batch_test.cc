// Batch reads and registered buffers through the native client against one real dev cluster
// (3 storage processes with 2 targets each: 2 chains): read_batch of many items across
// files answers each item as pread would (short at the end, zeros in holes), also into a
// registered buffer; pwrite from and pread into a registered buffer round-trip.
//
// Heavy: starts one dev cluster for the whole file (tests/client/client_cluster.h states the
// time caps); it moves about 3 MiB.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <cstring>

#include "tests/client/client_cluster.h"
#include "tests/client/file_helpers.h"

namespace mica::testing {
namespace {

using client::BatchRead;
using client::Client;
using client::File;

class ClientBatch : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new ClientCluster("batch", 3, 2); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(cluster_->up()) << cluster_->up_output(); }
  static ClientCluster* cluster_;
};
ClientCluster* ClientBatch::cluster_ = nullptr;

constexpr size_t kFiles = 3;
constexpr size_t kItems = 200;
constexpr uint64_t kFileBytes = 5 * kSmallChunkBytes + 777;
constexpr uint64_t kHoleBegin = kSmallChunkBytes + 10;  // chunk 2 is never written
constexpr uint64_t kHoleEnd = 3 * kSmallChunkBytes;

// The files' bytes as the test wrote them (zeros in the hole).
std::vector<std::byte> reference(size_t f) {
  std::vector<std::byte> bytes = pattern(static_cast<uint32_t>(200 + f), kFileBytes);
  std::memset(bytes.data() + kHoleBegin, 0, kHoleEnd - kHoleBegin);
  return bytes;
}

Task<Status> write_reference(File* file, size_t f) {
  std::vector<std::byte> bytes = reference(f);
  auto head = file->pwrite(std::span(bytes).first(kHoleBegin), 0);
  Result<size_t> wrote = co_await std::move(head);
  if (!wrote.ok()) co_return wrote.status();
  auto tail = file->pwrite(std::span(bytes).subspan(kHoleEnd), kHoleEnd);
  Result<size_t> wrote_tail = co_await std::move(tail);
  co_return wrote_tail.status();
}

struct Item {
  size_t file;
  uint64_t offset;
  size_t length;
};

// Items of up to two chunks, some across chunk boundaries, some into the hole, some past the
// end; a fixed sequence.
std::vector<Item> items() {
  std::vector<Item> out;
  uint64_t x = 12345;
  for (size_t i = 0; i < kItems; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    Item item{.file = (x >> 60) % kFiles,
              .offset = (x >> 20) % (kFileBytes + 1000),
              .length = 1 + (x >> 8) % (2 * kSmallChunkBytes)};
    out.push_back(item);
  }
  return out;
}

Task<void> batch_matches_reference(Client* c, std::vector<std::unique_ptr<File>>* files,
                                   bool registered) {
  std::vector<Item> wanted = items();
  size_t total = 0;
  for (const Item& item : wanted) total += item.length;
  std::vector<std::byte> buffer(total, std::byte{0x55});
  Result<client::RegisteredBuffer> region = c->register_buffer(buffer);
  CO_EXPECT_OK(region.status());
  std::vector<BatchRead> reads;
  size_t at = 0;
  for (const Item& item : wanted) {
    reads.push_back(BatchRead{.file = (*files)[item.file].get(),
                              .offset = item.offset,
                              .out = std::span(buffer).subspan(at, item.length)});
    at += item.length;
  }
  client::CallOptions options;
  if (registered) options.registered = &*region;
  auto reading = c->read_batch(reads, options);
  std::vector<Result<size_t>> results = co_await std::move(reading);
  EXPECT_EQ(results.size(), wanted.size());
  std::vector<std::vector<std::byte>> refs;
  for (size_t f = 0; f < kFiles; ++f) refs.push_back(reference(f));
  for (size_t i = 0; i < wanted.size() && i < results.size(); ++i) {
    const Item& item = wanted[i];
    size_t expect =
        item.offset >= kFileBytes ? 0 : std::min<uint64_t>(item.length, kFileBytes - item.offset);
    EXPECT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    if (!results[i].ok()) continue;
    EXPECT_EQ(*results[i], expect) << "item " << i;
    EXPECT_EQ(std::memcmp(reads[i].out.data(), refs[item.file].data() + item.offset, expect), 0)
        << "item " << i << " file " << item.file << " offset " << item.offset;
  }
}

Task<void> read_batches(Client* c) {
  std::vector<std::unique_ptr<File>> files;
  for (size_t f = 0; f < kFiles; ++f) {
    auto creating = create_small_chunks(c, "batch-" + std::to_string(f));
    Result<std::unique_ptr<File>> file = co_await std::move(creating);
    CO_EXPECT_OK(file.status());
    files.push_back(std::move(*file));
    auto writing = write_reference(files.back().get(), f);
    CO_EXPECT_OK(co_await std::move(writing));
  }
  auto plain = batch_matches_reference(c, &files, false);
  co_await std::move(plain);
  auto into_registered = batch_matches_reference(c, &files, true);
  co_await std::move(into_registered);
  for (std::unique_ptr<File>& file : files) {
    auto closing = file->close();
    CO_EXPECT_OK(co_await std::move(closing));
  }
}

TEST_F(ClientBatch, ReadBatchOfManyItemsAcrossFilesAnswersEachAsPreadWould) {
  Status s = with_client(cluster_->options(), read_batches);
  EXPECT_TRUE(s.ok()) << s;
}

Task<void> registered_round_trip(Client* c) {
  auto creating = create_small_chunks(c, "registered");
  Result<std::unique_ptr<File>> file = co_await std::move(creating);
  CO_EXPECT_OK(file.status());
  // One buffer, registered once: the first half is written from, the second read into.
  std::vector<std::byte> buffer(4 * kSmallChunkBytes);
  std::vector<std::byte> data = pattern(9, buffer.size() / 2);
  std::memcpy(buffer.data(), data.data(), data.size());
  Result<client::RegisteredBuffer> region = c->register_buffer(buffer);
  CO_EXPECT_OK(region.status());
  client::CallOptions options{.registered = &*region};
  std::span<std::byte> half = std::span(buffer).first(data.size());
  auto writing = (*file)->pwrite(half, 1000, options);
  CO_EXPECT_OK((co_await std::move(writing)).status());
  std::span<std::byte> into = std::span(buffer).subspan(data.size());
  auto reading = (*file)->pread(into, 1000, options);
  Result<size_t> got = co_await std::move(reading);
  CO_EXPECT_OK(got.status());
  EXPECT_EQ(*got, data.size());
  EXPECT_EQ(std::memcmp(into.data(), data.data(), data.size()), 0);
  auto closing = (*file)->close();
  CO_EXPECT_OK(co_await std::move(closing));
}

TEST_F(ClientBatch, WritesFromAndReadsIntoARegisteredBufferRoundTrip) {
  Status s = with_client(cluster_->options(), registered_round_trip);
  EXPECT_TRUE(s.ok()) << s;
}

}  // namespace
}  // namespace mica::testing
