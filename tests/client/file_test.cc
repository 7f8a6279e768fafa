// Files through the native client against one real dev cluster (3 storage processes with 2
// targets each: 2 chains of 3 replicas), each line of docs/client.md's consistency
// contract: a write is on every replica when it returns; another client reads it; another
// client's stat sees the length after fsync and close, and while the file grows within the
// report interval. Also striping over chains, holes, O_APPEND/O_TRUNC/O_EXCL and parallel
// writers of one file (8 tasks; two clients).
//
// Heavy: starts one dev cluster for the whole file (tests/client/client_cluster.h states the
// time caps); each test moves at most a few MiB.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <cstring>

#include "async/scope.h"
#include "meta/layout.h"
#include "tests/client/client_cluster.h"
#include "tests/client/file_helpers.h"

namespace mica::testing {
namespace {

using namespace std::chrono_literals;
using client::Client;
using client::File;
using client::OpenMode;

class ClientFile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new ClientCluster("file", 3, 2); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(cluster_->up()) << cluster_->up_output(); }
  static ClientCluster* cluster_;
};
ClientCluster* ClientFile::cluster_ = nullptr;

bool same(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

// ---- a write is on every replica when it returns ----

Task<void> write_then_read_every_replica(Client* c) {
  auto creating = create_small_chunks(c, "durable");
  Result<std::unique_ptr<File>> file = co_await std::move(creating);
  CO_EXPECT_OK(file.status());
  std::vector<std::byte> data = pattern(1, 3 * kSmallChunkBytes);
  auto writing = (*file)->pwrite(data, 0);
  Result<size_t> wrote = co_await std::move(writing);
  EXPECT_TRUE(wrote.ok()) << wrote.status();
  // Straight after the acknowledgement, every replica of every chunk's chain answers the
  // bytes: reads with kSpread take the serving replicas in turn, so `replicas` reads of a
  // chunk in a row ask each replica once.
  craq::RoutingClient::SnapshotPtr routing = c->routing().current();
  const meta::Layout& layout = (*file)->attributes().layout;
  auto chains = meta::layout_chains(layout, *craq::find_table(*routing, layout.table));
  CO_EXPECT_OK(chains.status());
  for (uint32_t index = 0; index < 3; ++index) {
    craq::ChainId chain = meta::chunk_chain(*chains, index);
    size_t replicas = craq::find_chain(*routing, chain)->targets.size();
    EXPECT_EQ(replicas, 3u);
    for (size_t r = 0; r < replicas; ++r) {
      std::vector<std::byte> out(kSmallChunkBytes);
      auto reading = c->storage().read(
          chain, craq::ChunkRef{.inode = (*file)->inode(), .index = index}, 0, out);
      Result<uint32_t> got = co_await std::move(reading);
      EXPECT_TRUE(got.ok()) << got.status();
      EXPECT_TRUE(same(out, std::span(data).subspan(index * kSmallChunkBytes, kSmallChunkBytes)))
          << "chunk " << index << " replica turn " << r;
    }
  }
  auto closing = (*file)->close();
  CO_EXPECT_OK(co_await std::move(closing));
}

TEST_F(ClientFile, AnAcknowledgedWriteIsOnEveryReplica) {
  Status s = with_client(cluster_->options(), write_then_read_every_replica);
  EXPECT_TRUE(s.ok()) << s;
}

// ---- striping ----

Task<void> chunks_land_on_their_chains(Client* c) {
  auto creating = create_small_chunks(c, "striped");
  Result<std::unique_ptr<File>> file = co_await std::move(creating);
  CO_EXPECT_OK(file.status());
  const meta::Layout& layout = (*file)->attributes().layout;
  EXPECT_EQ(layout.stripe, 2u);
  std::vector<std::byte> data = pattern(2, 4 * kSmallChunkBytes);
  auto writing = (*file)->pwrite(data, 0);
  CO_EXPECT_OK((co_await std::move(writing)).status());
  craq::RoutingClient::SnapshotPtr routing = c->routing().current();
  auto chains = meta::layout_chains(layout, *craq::find_table(*routing, layout.table));
  CO_EXPECT_OK(chains.status());
  EXPECT_NE((*chains)[0], (*chains)[1]);
  for (uint32_t index = 0; index < 4; ++index) {
    for (uint32_t k = 0; k < 2; ++k) {
      std::vector<std::byte> out(kSmallChunkBytes);
      auto reading = c->storage().read(
          (*chains)[k], craq::ChunkRef{.inode = (*file)->inode(), .index = index}, 0, out);
      Result<uint32_t> got = co_await std::move(reading);
      EXPECT_TRUE(got.ok()) << got.status();
      // chunk i only on chains[i mod stripe]
      bool home = k == index % 2;
      EXPECT_EQ(got.ok() ? *got : 0u, home ? kSmallChunkBytes : 0u) << index << " " << k;
    }
  }
  auto closing = (*file)->close();
  CO_EXPECT_OK(co_await std::move(closing));
}

TEST_F(ClientFile, ChunksAreStripedOverTheFilesChains) {
  Status s = with_client(cluster_->options(), chunks_land_on_their_chains);
  EXPECT_TRUE(s.ok()) << s;
}

// ---- holes ----

Task<void> holes_read_as_zeros(Client* c) {
  auto creating = create_small_chunks(c, "holes");
  Result<std::unique_ptr<File>> file = co_await std::move(creating);
  CO_EXPECT_OK(file.status());
  std::vector<std::byte> head = pattern(3, 4096);
  std::vector<std::byte> tail = pattern(4, 4096);
  uint64_t far = 3 * kSmallChunkBytes + 100;  // chunks 1 and 2 never written
  auto writing = (*file)->pwrite(head, 0);
  CO_EXPECT_OK((co_await std::move(writing)).status());
  auto writing_far = (*file)->pwrite(tail, far);
  CO_EXPECT_OK((co_await std::move(writing_far)).status());
  EXPECT_EQ((*file)->known_length(), far + tail.size());
  std::vector<std::byte> out(far + tail.size() + 1000, std::byte{0x55});
  auto reading = (*file)->pread(out, 0);
  Result<size_t> got = co_await std::move(reading);
  CO_EXPECT_OK(got.status());
  EXPECT_EQ(*got, far + tail.size());
  EXPECT_TRUE(same(std::span(out).first(4096), head));
  std::vector<std::byte> zeros(far - 4096);
  EXPECT_TRUE(same(std::span(out).subspan(4096, far - 4096), zeros));
  EXPECT_TRUE(same(std::span(out).subspan(far, tail.size()), tail));
  // Extending with truncate is a hole too.
  auto extending = (*file)->truncate(far + tail.size() + 5000);
  CO_EXPECT_OK(co_await std::move(extending));
  std::vector<std::byte> end(5000, std::byte{0x55});
  auto reading_end = (*file)->pread(end, far + tail.size());
  Result<size_t> got_end = co_await std::move(reading_end);
  CO_EXPECT_OK(got_end.status());
  EXPECT_EQ(*got_end, 5000u);
  EXPECT_TRUE(same(end, std::vector<std::byte>(5000)));
  auto closing = (*file)->close();
  CO_EXPECT_OK(co_await std::move(closing));
}

TEST_F(ClientFile, HolesReadAsZeros) {
  Status s = with_client(cluster_->options(), holes_read_as_zeros);
  EXPECT_TRUE(s.ok()) << s;
}

// ---- open flags ----

Task<void> open_flags_behave(Client* c) {
  OpenMode create{.flags = O_RDWR | O_CREAT | O_EXCL, .mode = 0644};
  auto opening = c->open("/flags", create);
  Result<std::unique_ptr<File>> file = co_await std::move(opening);
  CO_EXPECT_OK(file.status());
  std::vector<std::byte> first = pattern(5, 1000);
  auto writing = (*file)->write(first);
  CO_EXPECT_OK((co_await std::move(writing)).status());
  auto closing = (*file)->close();
  CO_EXPECT_OK(co_await std::move(closing));
  // O_EXCL of an existing name.
  auto again = c->open("/flags", create);
  Result<std::unique_ptr<File>> refused = co_await std::move(again);
  EXPECT_EQ(refused.status().code(), StatusCode::kAlreadyExists) << refused.status();
  // O_APPEND writes at the end whatever the cursor says.
  auto appending = c->open("/flags", OpenMode{.flags = O_WRONLY | O_APPEND});
  Result<std::unique_ptr<File>> appender = co_await std::move(appending);
  CO_EXPECT_OK(appender.status());
  std::vector<std::byte> second = pattern(6, 500);
  auto writing_end = (*appender)->pwrite(second, 0);
  CO_EXPECT_OK((co_await std::move(writing_end)).status());
  EXPECT_EQ((*appender)->known_length(), 1500u);
  auto closing_appender = (*appender)->close();
  CO_EXPECT_OK(co_await std::move(closing_appender));
  auto reopening = c->open("/flags", OpenMode{.flags = O_RDONLY});
  Result<std::unique_ptr<File>> reader = co_await std::move(reopening);
  CO_EXPECT_OK(reader.status());
  std::vector<std::byte> out(2000);
  auto reading = (*reader)->read(out);
  Result<size_t> got = co_await std::move(reading);
  CO_EXPECT_OK(got.status());
  EXPECT_EQ(*got, 1500u);
  EXPECT_TRUE(same(std::span(out).first(1000), first));
  EXPECT_TRUE(same(std::span(out).subspan(1000, 500), second));
  // A read-only handle refuses writes (EBADF).
  auto refused_write = (*reader)->pwrite(second, 0);
  EXPECT_EQ((co_await std::move(refused_write)).status().code(), StatusCode::kStaleSession);
  auto closing_reader = (*reader)->close();
  CO_EXPECT_OK(co_await std::move(closing_reader));
  // O_TRUNC empties it.
  auto truncating = c->open("/flags", OpenMode{.flags = O_RDWR | O_TRUNC});
  Result<std::unique_ptr<File>> cut = co_await std::move(truncating);
  CO_EXPECT_OK(cut.status());
  EXPECT_EQ((*cut)->known_length(), 0u);
  auto reading_cut = (*cut)->pread(out, 0);
  Result<size_t> none = co_await std::move(reading_cut);
  CO_EXPECT_OK(none.status());
  EXPECT_EQ(*none, 0u);
  auto closing_cut = (*cut)->close();
  CO_EXPECT_OK(co_await std::move(closing_cut));
  auto length = meta_length(c, (*cut)->inode());
  Result<uint64_t> after = co_await std::move(length);
  EXPECT_EQ(after.ok() ? *after : 1u, 0u);
}

TEST_F(ClientFile, OpenWithCreateExclusiveAppendAndTruncate) {
  Status s = with_client(cluster_->options(), open_flags_behave);
  EXPECT_TRUE(s.ok()) << s;
}

// ---- other clients: reads, lengths ----

Task<void> another_client_sees_writes_and_lengths(Client* a, Client* b) {
  auto creating = create_small_chunks(a, "shared");
  Result<std::unique_ptr<File>> writer = co_await std::move(creating);
  CO_EXPECT_OK(writer.status());
  meta::InodeId inode = (*writer)->inode();
  std::vector<std::byte> data = pattern(7, 2 * kSmallChunkBytes);
  auto writing = (*writer)->pwrite(std::span(data).first(kSmallChunkBytes), 0);
  CO_EXPECT_OK((co_await std::move(writing)).status());
  auto syncing = (*writer)->fsync();
  CO_EXPECT_OK(co_await std::move(syncing));
  // fsync: b's stat sees the length.
  auto length = meta_length(b, inode);
  Result<uint64_t> after_fsync = co_await std::move(length);
  EXPECT_EQ(after_fsync.ok() ? *after_fsync : 0u, kSmallChunkBytes);
  auto opening = b->open_inode(inode, OpenMode{.flags = O_RDONLY});
  Result<std::unique_ptr<File>> reader = co_await std::move(opening);
  CO_EXPECT_OK(reader.status());
  // An overwrite acknowledged to a is what b reads next.
  std::vector<std::byte> over = pattern(8, 4096);
  auto overwriting = (*writer)->pwrite(over, 100);
  CO_EXPECT_OK((co_await std::move(overwriting)).status());
  std::vector<std::byte> out(4096);
  auto reading = (*reader)->pread(out, 100);
  CO_EXPECT_OK((co_await std::move(reading)).status());
  EXPECT_TRUE(same(out, over));
  // Growth while writing: a write later than the report interval reports the length.
  SleepAwaiter pausing = sleep_for(a->options().length_report_interval + 50ms);
  CO_EXPECT_OK(co_await pausing);
  auto growing = (*writer)->pwrite(std::span(data).subspan(kSmallChunkBytes, 1000),
                                   kSmallChunkBytes);
  CO_EXPECT_OK((co_await std::move(growing)).status());
  auto length_growing = meta_length(b, inode);
  Result<uint64_t> while_growing = co_await std::move(length_growing);
  EXPECT_EQ(while_growing.ok() ? *while_growing : 0u, kSmallChunkBytes + 1000);
  // ... and b's read past its old end asks metadata and sees the new bytes.
  std::vector<std::byte> grown(2000);
  auto reading_past = (*reader)->pread(grown, kSmallChunkBytes);
  Result<size_t> got = co_await std::move(reading_past);
  CO_EXPECT_OK(got.status());
  EXPECT_EQ(*got, 1000u);
  EXPECT_TRUE(same(std::span(grown).first(1000), std::span(data).subspan(kSmallChunkBytes, 1000)));
  // close: the rest of the growth.
  auto finishing = (*writer)->pwrite(std::span(data).subspan(kSmallChunkBytes + 1000),
                                     kSmallChunkBytes + 1000);
  CO_EXPECT_OK((co_await std::move(finishing)).status());
  auto closing = (*writer)->close();
  CO_EXPECT_OK(co_await std::move(closing));
  auto length_closed = meta_length(b, inode);
  Result<uint64_t> after_close = co_await std::move(length_closed);
  EXPECT_EQ(after_close.ok() ? *after_close : 0u, data.size());
  auto closing_reader = (*reader)->close();
  CO_EXPECT_OK(co_await std::move(closing_reader));
}

TEST_F(ClientFile, AnotherClientSeesAcknowledgedWritesAndReportedLengths) {
  client::ClientOptions options = cluster_->options();
  options.length_report_interval = 300ms;
  Status s = with_two_clients(options, cluster_->options(), another_client_sees_writes_and_lengths);
  EXPECT_TRUE(s.ok()) << s;
}

// ---- a write moves mtime and ctime (also one that keeps the length) ----

Task<void> an_overwrite_moves_mtime(Client* c) {
  auto creating = create_small_chunks(c, "overwritten");
  Result<std::unique_ptr<File>> file = co_await std::move(creating);
  CO_EXPECT_OK(file.status());
  std::vector<std::byte> data = pattern(3, 4096);
  auto writing = (*file)->pwrite(data, 0);
  CO_EXPECT_OK((co_await std::move(writing)).status());
  auto syncing = (*file)->fsync();
  CO_EXPECT_OK(co_await std::move(syncing));
  auto asking = c->meta().getattr(meta::GetattrRequest{.inode = (*file)->inode()});
  Result<meta::InodeReply> before = co_await std::move(asking);
  CO_EXPECT_OK(before.status());
  SleepAwaiter pausing = sleep_for(20ms);
  CO_EXPECT_OK(co_await pausing);
  std::vector<std::byte> over = pattern(4, 4096);
  auto overwriting = (*file)->pwrite(over, 0);
  CO_EXPECT_OK((co_await std::move(overwriting)).status());
  auto closing = (*file)->close();
  CO_EXPECT_OK(co_await std::move(closing));
  auto asking_again = c->meta().getattr(meta::GetattrRequest{.inode = before->inode.id});
  Result<meta::InodeReply> after = co_await std::move(asking_again);
  CO_EXPECT_OK(after.status());
  EXPECT_EQ(after->inode.length, before->inode.length);
  EXPECT_GT(after->inode.mtime_ns, before->inode.mtime_ns);
  EXPECT_GT(after->inode.ctime_ns, before->inode.ctime_ns);
}

TEST_F(ClientFile, AnOverwriteThatKeepsTheLengthMovesMtimeAndCtime) {
  Status s = with_client(cluster_->options(), an_overwrite_moves_mtime);
  EXPECT_TRUE(s.ok()) << s;
}

// ---- a truncation cuts this handle's unreported growth too ----

Task<void> truncate_cuts_unreported_bytes(Client* c) {
  auto creating = create_small_chunks(c, "cut-unreported");
  Result<std::unique_ptr<File>> file = co_await std::move(creating);
  CO_EXPECT_OK(file.status());
  // The first write may report its length; the second grows the file unreported (the
  // client's report interval is an hour here).
  std::vector<std::byte> first = pattern(5, 100);
  auto writing = (*file)->pwrite(first, 0);
  CO_EXPECT_OK((co_await std::move(writing)).status());
  std::vector<std::byte> second = pattern(6, 1500);
  auto growing = (*file)->pwrite(second, 100);
  CO_EXPECT_OK((co_await std::move(growing)).status());
  auto cutting = (*file)->truncate(0);
  CO_EXPECT_OK(co_await std::move(cutting));
  std::vector<std::byte> far = pattern(7, 10);
  auto extending = (*file)->pwrite(far, 3000);
  CO_EXPECT_OK((co_await std::move(extending)).status());
  std::vector<std::byte> out(3010);
  auto reading = (*file)->pread(out, 0);
  Result<size_t> got = co_await std::move(reading);
  CO_EXPECT_OK(got.status());
  EXPECT_EQ(*got, out.size());
  std::vector<std::byte> zeros(3000);
  EXPECT_TRUE(same(std::span(out).first(3000), zeros)) << "bytes cut by the truncation came back";
  auto closing = (*file)->close();
  CO_EXPECT_OK(co_await std::move(closing));
}

TEST_F(ClientFile, ATruncationCutsTheHandlesUnreportedGrowth) {
  client::ClientOptions options = cluster_->options();
  options.length_report_interval = std::chrono::hours(1);
  Status s = with_client(options, truncate_cuts_unreported_bytes);
  EXPECT_TRUE(s.ok()) << s;
}

// ---- parallel writers ----

constexpr size_t kTasks = 8;
constexpr size_t kSlice = 3 * kSmallChunkBytes / 2;  // slices share chunks

Task<Status> write_slice(File* file, size_t k) {
  std::vector<std::byte> data = pattern(static_cast<uint32_t>(100 + k), kSlice);
  auto writing = file->pwrite(data, k * kSlice);
  Result<size_t> wrote = co_await std::move(writing);
  co_return wrote.status();
}

Task<void> expect_slices(File* file, size_t tasks) {
  std::vector<std::byte> out(tasks * kSlice);
  auto reading = file->pread(out, 0);
  Result<size_t> got = co_await std::move(reading);
  CO_EXPECT_OK(got.status());
  EXPECT_EQ(*got, out.size());
  for (size_t k = 0; k < tasks; ++k)
    EXPECT_TRUE(same(std::span(out).subspan(k * kSlice, kSlice),
                     pattern(static_cast<uint32_t>(100 + k), kSlice)))
        << "slice " << k;
}

Task<void> eight_tasks_write_one_file(Client* c) {
  auto creating = create_small_chunks(c, "eight");
  Result<std::unique_ptr<File>> file = co_await std::move(creating);
  CO_EXPECT_OK(file.status());
  std::vector<Task<Status>> writers;
  for (size_t k = 0; k < kTasks; ++k) writers.push_back(write_slice(file->get(), k));
  auto all = when_all(std::move(writers));
  std::vector<Status> written = co_await std::move(all);
  for (Status& s : written) EXPECT_TRUE(s.ok()) << s;
  auto checking = expect_slices(file->get(), kTasks);
  co_await std::move(checking);
  auto closing = (*file)->close();
  CO_EXPECT_OK(co_await std::move(closing));
}

TEST_F(ClientFile, EightTasksWriteDisjointRangesOfOneFile) {
  Status s = with_client(cluster_->options(), eight_tasks_write_one_file);
  EXPECT_TRUE(s.ok()) << s;
}

Task<void> two_clients_write_one_file(Client* a, Client* b) {
  auto creating = create_small_chunks(a, "two");
  Result<std::unique_ptr<File>> fa = co_await std::move(creating);
  CO_EXPECT_OK(fa.status());
  auto opening = b->open_inode((*fa)->inode(), OpenMode{.flags = O_RDWR});
  Result<std::unique_ptr<File>> fb = co_await std::move(opening);
  CO_EXPECT_OK(fb.status());
  std::vector<Task<Status>> writers;
  for (size_t k = 0; k < 4; ++k) writers.push_back(write_slice((k % 2 ? fb : fa)->get(), k));
  auto all = when_all(std::move(writers));
  std::vector<Status> written = co_await std::move(all);
  for (Status& s : written) EXPECT_TRUE(s.ok()) << s;
  auto closing_a = (*fa)->close();
  CO_EXPECT_OK(co_await std::move(closing_a));
  auto closing_b = (*fb)->close();
  CO_EXPECT_OK(co_await std::move(closing_b));
  auto reopening = a->open_inode((*fa)->inode(), OpenMode{.flags = O_RDONLY});
  Result<std::unique_ptr<File>> reader = co_await std::move(reopening);
  CO_EXPECT_OK(reader.status());
  EXPECT_EQ((*reader)->known_length(), 4 * kSlice);
  auto checking = expect_slices(reader->get(), 4);
  co_await std::move(checking);
  auto closing = (*reader)->close();
  CO_EXPECT_OK(co_await std::move(closing));
}

TEST_F(ClientFile, TwoClientsWriteDisjointRangesOfOneFile) {
  Status s = with_two_clients(cluster_->options(), cluster_->options(), two_clients_write_one_file);
  EXPECT_TRUE(s.ok()) << s;
}

}  // namespace
}  // namespace mica::testing
