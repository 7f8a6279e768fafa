// A shard on an executor other than its storage client's, as MetaServer places shards when
// the process runs more executors (meta/meta_server.h): truncation (setattr's size change)
// and garbage collection reach the storage service through ShardOptions::storage_executor
// (each call hops to the client's executor and back). The shard runs on a Runtime thread;
// the storage cluster and its client on the test's executor, which stays free to serve them
// only because the shard's calls hop there. About two seconds.
#include <gtest/gtest.h>

#include "async/hop.h"
#include "async/runtime.h"
#include "tests/meta/session_helpers.h"

namespace mica::meta {
namespace {

using namespace std::chrono_literals;
using testing::kTestChunkBytes;

struct Away {
  Executor* home = nullptr;   // the test's: the storage cluster and client
  Executor* there = nullptr;  // the shard's
};

Task<Result<std::unique_ptr<Shard>>> open_there(Away away, ShardOptions options) {
  auto opening = Shard::open(std::move(options));
  auto hopping = mica::hop(away.home, away.there, std::move(opening));
  co_return co_await std::move(hopping);
}

Task<Result<InodeReply>> cut_there(Away away, Shard* shard, SetattrRequest request) {
  auto cutting = shard->setattr(request);  // request lives in this frame
  auto hopping = mica::hop(away.home, away.there, std::move(cutting));
  co_return co_await std::move(hopping);
}

Task<Result<Inode>> make_there(Away away, Shard* shard, Layout layout) {
  auto making = testing::make_file(shard, "f", 0644, layout);
  auto hopping = mica::hop(away.home, away.there, std::move(making));
  co_return co_await std::move(hopping);
}

// Stores the file's length as its writer's report would have (the test writes the chunks
// straight through the storage client).
Task<Status> store_length(Shard* shard, Inode file) {
  ShardTxn txn = shard->begin();
  txn.put_inode(file);
  auto committing = txn.commit();
  co_return co_await std::move(committing);
}

Task<Status> store_length_there(Away away, Shard* shard, Inode file) {
  auto storing = store_length(shard, std::move(file));
  auto hopping = mica::hop(away.home, away.there, std::move(storing));
  co_return co_await std::move(hopping);
}

// Unlinks the file and queues it for collection in one transaction (as unlink does).
Task<Status> queue_gc(Shard* shard, Inode file) {
  ShardTxn txn = shard->begin();
  txn.erase_entry(kRootInode, "f");
  txn.erase_inode(file.id);
  txn.queue_gc(
      GcRecord{.inode = file.id, .layout = file.layout, .length = file.length, .queued_ns = 1});
  auto committing = txn.commit();
  CO_TRY(co_await std::move(committing));
  shard->gc()->wake();
  co_return Status();
}

Task<Status> queue_there(Away away, Shard* shard, Inode file) {
  auto queueing = queue_gc(shard, std::move(file));
  auto hopping = mica::hop(away.home, away.there, std::move(queueing));
  co_return co_await std::move(hopping);
}

Task<Status> close_there(Away away, Shard* shard) {
  auto closing = shard->close();
  auto hopping = mica::hop(away.home, away.there, std::move(closing));
  co_return co_await std::move(hopping);
}

// Waits (on the test's executor) until the shard's GC queue is empty.
Task<Status> wait_collected(Away away, Shard* shard) {
  TimePoint deadline = deadline_after(10s);
  for (;;) {
    auto asking = mica::hop_call(away.home, away.there, [shard] { return shard->status(); });
    CO_TRY_ASSIGN(ShardStatus status, co_await std::move(asking));
    if (status.gc_queued_files == 0) co_return Status();
    if (Executor::current()->now() > deadline) co_return Status(StatusCode::kTimedOut, "queued");
    CO_TRY(co_await sleep_for(10ms));
  }
}

Task<void> away_body(std::string dir, testing::Storage* storage, Executor* there) {
  Away away{Executor::current(), there};
  // The shard's own routing snapshot (MetaServer keeps one per shard the same way).
  craq::RoutingSnapshot routing = *storage->cluster.routing->current();
  ShardOptions options = testing::shard_options(dir + "/shard");
  options.storage = storage->client.get();
  options.storage_executor = away.home;
  options.routing = [&routing]() -> const craq::RoutingSnapshot* { return &routing; };
  auto opening = open_there(away, std::move(options));
  Result<std::unique_ptr<Shard>> shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  Shard* s = shard->get();
  Result<Layout> layout = storage->layout();
  CO_ASSERT_OK(layout);
  auto making = make_there(away, s, *layout);
  Result<Inode> file = co_await std::move(making);
  CO_ASSERT_OK(file);
  auto writing = testing::write_file(storage, *file, 3 * kTestChunkBytes);
  CO_ASSERT_OK(co_await std::move(writing));
  file->length = 3 * kTestChunkBytes;
  auto storing = store_length_there(away, s, *file);
  CO_ASSERT_OK(co_await std::move(storing));

  SetattrRequest request{.cred = Credentials{}, .inode = file->id, .size = kTestChunkBytes + 10};
  auto cutting = cut_there(away, s, request);
  Result<InodeReply> cut = co_await std::move(cutting);
  EXPECT_TRUE(cut.ok()) << cut.status();
  auto left = testing::chunks_left(storage, *file);
  Result<uint32_t> chunks = co_await std::move(left);
  EXPECT_TRUE(chunks.ok() && *chunks == 2u)
      << "chunk 2 removed, chunk 1 cut: "
      << (chunks.ok() ? std::to_string(*chunks) : chunks.status().to_string());

  if (cut.ok()) file->length = cut->inode.length;
  auto queueing = queue_there(away, s, *file);
  EXPECT_TRUE((co_await std::move(queueing)).ok());
  auto waiting = wait_collected(away, s);
  Status collected = co_await std::move(waiting);
  EXPECT_TRUE(collected.ok()) << collected;
  auto after = testing::chunks_on_replicas(storage, *file, 3);
  Result<uint32_t> held = co_await std::move(after);
  EXPECT_TRUE(held.ok() && *held == 0u) << "chunks left on the replicas";
  auto closing = close_there(away, s);
  Status closed = co_await std::move(closing);
  EXPECT_TRUE(closed.ok()) << closed;
}

// Each hop runs its work under a cancel token of the executor it runs on
// (async/hop.h): a storage call from the shard's thread registered on the token of
// the shard's frame once, and async/cancel.cc's owner check stopped the test.
MICA_CO_TEST(StorageExecutor, AShardOnAnotherExecutorTruncatesAndCollectsThroughTheClients) {
  Runtime runtime(RuntimeOptions{.threads = 1});
  testing::Storage storage(dir.path + "/storage");
  auto starting = testing::start_storage(&storage);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    auto running = away_body(dir.path, &storage, &runtime.executor(0));
    co_await std::move(running);
  }
  auto stopping = testing::stop_storage(&storage);
  co_await std::move(stopping);
}

}  // namespace
}  // namespace mica::meta
