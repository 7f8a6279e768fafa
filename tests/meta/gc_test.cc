// Garbage collection (meta/gc.h) against a real storage cluster in this process
// (tests/meta/session_helpers.h): a queued file's chunks are removed from every replica and
// its record erased, removals are bounded in rate and in flight, a restart mid-queue
// finishes the rest, a failed removal is retried, and the queue's length and bytes are in
// the shard's status and the metrics. Each cluster test takes two or three seconds.
#include <gtest/gtest.h>

#include "async/wait_list.h"
#include "meta/gc.h"
#include "tests/meta/session_helpers.h"

namespace mica::meta {
namespace {

using namespace std::chrono_literals;
using testing::kTestChunkBytes;
using testing::make_file;

// Queues each file for collection (as the last close of an unlinked file does).
Task<Status> queue_files(Shard* shard, std::vector<Inode> files) {
  ShardTxn txn = shard->begin();
  for (const Inode& file : files) {
    txn.erase_inode(file.id);
    txn.queue_gc(
        GcRecord{.inode = file.id, .layout = file.layout, .length = file.length, .queued_ns = 1});
  }
  auto committing = txn.commit();
  CO_TRY(co_await std::move(committing));
  if (shard->gc() != nullptr) shard->gc()->wake();
  co_return Status();
}

// Waits until the shard's queue holds at most `files` (kTimedOut after `timeout`).
Task<Status> wait_queue(Shard* shard, uint64_t files, Duration timeout) {
  TimePoint deadline = deadline_after(timeout);
  for (;;) {
    CO_TRY_ASSIGN(ShardStatus status, shard->status());
    if (status.gc_queued_files <= files) co_return Status();
    if (Executor::current()->now() > deadline) {
      co_return Status(StatusCode::kTimedOut,
                       fmt::format("{} files still queued", status.gc_queued_files));
    }
    CO_TRY(co_await sleep_for(10ms));
  }
}

// Files of `chunks` chunks each, written through the storage service.
Task<Result<std::vector<Inode>>> written_files(Shard* shard, testing::Storage* storage,
                                               size_t count, uint32_t chunks) {
  std::vector<Inode> files;
  for (size_t i = 0; i < count; ++i) {
    CO_TRY_ASSIGN(Layout layout, storage->layout(static_cast<uint32_t>(i)));
    auto making = make_file(shard, fmt::format("f{}", i), 0644, layout);
    CO_TRY_ASSIGN(Inode file, co_await std::move(making));
    file.length = uint64_t{chunks} * kTestChunkBytes;
    auto writing = testing::write_file(storage, file, file.length);
    CO_TRY(co_await std::move(writing));
    files.push_back(std::move(file));
  }
  co_return files;
}

ShardOptions stored_options(std::string dir, testing::Storage* storage, GcOptions gc) {
  ShardOptions options = testing::shard_options(dir);
  options.storage = storage->client.get();
  options.routing = storage->routing();
  options.gc = gc;
  return options;
}

// Runs body with a started storage cluster, then stops it.
Task<void> with_storage(std::string dir, Task<void> (*body)(std::string, testing::Storage*)) {
  testing::Storage storage(dir + "/storage");
  auto starting = testing::start_storage(&storage);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    auto running = body(dir, &storage);
    co_await std::move(running);
  }
  auto stopping = testing::stop_storage(&storage);
  co_await std::move(stopping);
}

Task<void> close_shard(Shard* shard) {
  auto closing = shard->close();
  Status closed = co_await std::move(closing);
  EXPECT_TRUE(closed.ok()) << closed;
}

MICA_CO_TEST(Gc, TheStatusCountsTheQueueDurably) {
  for (int round = 0; round < 2; ++round) {  // the second round is after a restart
    auto opening = Shard::open(testing::shard_options(dir.file("shard")));
    Result<std::unique_ptr<Shard>> shard = co_await std::move(opening);
    CO_ASSERT_OK(shard);
    if (round == 0) {
      std::vector<Inode> files{{.id = make_inode_id(0, 50), .length = 100},
                               {.id = make_inode_id(0, 51), .length = 2000},
                               {.id = make_inode_id(0, 52), .length = 30000}};
      auto queueing = queue_files(shard->get(), files);
      Status queued = co_await std::move(queueing);
      EXPECT_TRUE(queued.ok()) << queued;
    }
    Result<ShardStatus> status = (*shard)->status();
    EXPECT_TRUE(status.ok()) << status.status();
    if (status.ok()) {
      // No storage client: the queue waits, and is counted.
      EXPECT_EQ(status->gc_queued_files, 3u) << "round " << round;
      EXPECT_EQ(status->gc_queued_bytes, 32100u) << "round " << round;
      EXPECT_EQ(status->gc_removed_files, 0u);
    }
    auto closing = close_shard(shard->get());
    co_await std::move(closing);
  }
}

Task<void> removes_body(std::string dir, testing::Storage* storage) {
  auto opening = Shard::open(stored_options(dir + "/shard", storage, GcOptions{}));
  Result<std::unique_ptr<Shard>> shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto writing = written_files(shard->get(), storage, 1, 3);
  Result<std::vector<Inode>> files = co_await std::move(writing);
  EXPECT_TRUE(files.ok()) << files.status();
  if (files.ok()) {
    auto before = testing::wait_chunks_on_replicas(storage, files->at(0), 4, 9, 10s);
    Result<uint32_t> held = co_await std::move(before);
    EXPECT_TRUE(held.ok() && *held == 9u) << "3 chunks x 3 replicas";
    auto queueing = queue_files(shard->get(), *files);
    EXPECT_TRUE((co_await std::move(queueing)).ok());
    auto waiting = wait_queue(shard->get(), 0, 10s);
    Status emptied = co_await std::move(waiting);
    EXPECT_TRUE(emptied.ok()) << emptied;
    auto after = testing::wait_chunks_on_replicas(storage, files->at(0), 4, 0, 10s);
    Result<uint32_t> left = co_await std::move(after);
    EXPECT_TRUE(left.ok() && *left == 0u) << "chunks left on the replicas";
    Result<ShardStatus> status = (*shard)->status();
    EXPECT_TRUE(status.ok() && status->gc_removed_files == 1u && status->gc_queued_bytes == 0u);
    std::string exposed = metrics().render_prometheus();
    EXPECT_NE(exposed.find("mica_meta_gc_removed_files_total"), std::string::npos);
    EXPECT_NE(exposed.find("mica_meta_gc_queued_bytes"), std::string::npos);
  }
  auto closing = close_shard(shard->get());
  co_await std::move(closing);
}

MICA_CO_TEST(Gc, AQueuedFilesChunksAreRemovedFromEveryReplica) {
  auto running = with_storage(dir.path, &removes_body);
  co_await std::move(running);
}

Task<void> rate_body(std::string dir, testing::Storage* storage) {
  GcOptions gc{.files_per_s = 10, .files_in_flight_max = 2};
  auto opening = Shard::open(stored_options(dir + "/shard", storage, gc));
  Result<std::unique_ptr<Shard>> shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto writing = written_files(shard->get(), storage, 6, 1);
  Result<std::vector<Inode>> files = co_await std::move(writing);
  EXPECT_TRUE(files.ok()) << files.status();
  if (files.ok()) {
    TimePoint start = Executor::current()->now();
    auto queueing = queue_files(shard->get(), *files);
    EXPECT_TRUE((co_await std::move(queueing)).ok());
    auto waiting = wait_queue(shard->get(), 0, 10s);
    Status emptied = co_await std::move(waiting);
    EXPECT_TRUE(emptied.ok()) << emptied;
    // Six starts 100 ms apart: the last one no earlier than 500 ms after the first.
    EXPECT_GE(Executor::current()->now() - start, 500ms);
    EXPECT_LE((*shard)->gc()->in_flight_peak(), 2u);
    EXPECT_EQ((*shard)->gc()->removed_files(), 6u);
  }
  auto closing = close_shard(shard->get());
  co_await std::move(closing);
}

MICA_CO_TEST(Gc, RemovalsAreBoundedInRateAndInFlight) {
  auto running = with_storage(dir.path, &rate_body);
  co_await std::move(running);
}

Task<void> restart_body(std::string dir, testing::Storage* storage) {
  GcOptions slow{.files_per_s = 5, .files_in_flight_max = 1};
  std::vector<Inode> files;
  {
    auto opening = Shard::open(stored_options(dir + "/shard", storage, slow));
    Result<std::unique_ptr<Shard>> shard = co_await std::move(opening);
    CO_ASSERT_OK(shard);
    auto writing = written_files(shard->get(), storage, 6, 1);
    Result<std::vector<Inode>> written = co_await std::move(writing);
    EXPECT_TRUE(written.ok()) << written.status();
    if (written.ok()) {
      files = *written;
      auto queueing = queue_files(shard->get(), files);
      EXPECT_TRUE((co_await std::move(queueing)).ok());
      auto waiting = wait_queue(shard->get(), 4, 10s);  // two collected, four to go
      EXPECT_TRUE((co_await std::move(waiting)).ok());
      Result<ShardStatus> status = (*shard)->status();
      EXPECT_TRUE(status.ok() && status->gc_queued_files >= 3u) << "stopped mid-queue";
    }
    auto closing = close_shard(shard->get());
    co_await std::move(closing);
  }
  CO_ASSERT_TRUE(!files.empty());
  auto reopening = Shard::open(stored_options(dir + "/shard", storage, GcOptions{}));
  Result<std::unique_ptr<Shard>> shard = co_await std::move(reopening);
  CO_ASSERT_OK(shard);
  auto waiting = wait_queue(shard->get(), 0, 10s);
  Status emptied = co_await std::move(waiting);
  EXPECT_TRUE(emptied.ok()) << emptied;
  for (const Inode& file : files) {
    auto counting = testing::wait_chunks_on_replicas(storage, file, 1, 0, 10s);
    Result<uint32_t> left = co_await std::move(counting);
    EXPECT_TRUE(left.ok() && *left == 0u) << "inode " << file.id;
  }
  auto closing = close_shard(shard->get());
  co_await std::move(closing);
}

MICA_CO_TEST(Gc, ARestartMidQueueFinishesTheRest) {
  auto running = with_storage(dir.path, &restart_body);
  co_await std::move(running);
}

Task<void> retry_body(std::string dir, testing::Storage* storage) {
  // Routing is withheld at first: every removal fails until it comes.
  auto withheld = std::make_shared<bool>(true);
  std::function<const craq::RoutingSnapshot*()> real = storage->routing();
  ShardOptions options =
      stored_options(dir + "/shard", storage, GcOptions{.backoff_initial_ms = 20});
  options.routing = [withheld, real] { return *withheld ? nullptr : real(); };
  auto opening = Shard::open(std::move(options));
  Result<std::unique_ptr<Shard>> shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  CO_ASSERT_OK(storage->layout());
  Inode file{.id = make_inode_id(0, 77), .length = kTestChunkBytes, .layout = *storage->layout()};
  auto writing = testing::write_file(storage, file, file.length);
  EXPECT_TRUE((co_await std::move(writing)).ok());
  std::vector<Inode> files{file};
  auto queueing = queue_files(shard->get(), files);
  EXPECT_TRUE((co_await std::move(queueing)).ok());
  Status slept = co_await sleep_for(300ms);
  EXPECT_TRUE(slept.ok());
  EXPECT_GE((*shard)->gc()->failures(), 2u);      // retried with backoff
  EXPECT_EQ((*shard)->gc()->queued_files(), 1u);  // the record stays until it succeeds
  *withheld = false;
  auto waiting = wait_queue(shard->get(), 0, 10s);
  Status emptied = co_await std::move(waiting);
  EXPECT_TRUE(emptied.ok()) << emptied;
  auto counting = testing::wait_chunks_on_replicas(storage, file, 1, 0, 10s);
  Result<uint32_t> left = co_await std::move(counting);
  EXPECT_TRUE(left.ok() && *left == 0u);
  auto closing = close_shard(shard->get());
  co_await std::move(closing);
}

MICA_CO_TEST(Gc, AFailedRemovalIsRetriedUntilItSucceeds) {
  auto running = with_storage(dir.path, &retry_body);
  co_await std::move(running);
}

}  // namespace
}  // namespace mica::meta
