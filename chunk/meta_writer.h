// MetaWriter: the one writer of a target's LMDB environment, on its own thread, with group
// commit.
//
// Coroutines hand it a MetaRequest (put or delete one chunk record) and suspend; the writer
// thread takes up to group_commit_batch_max queued requests, applies them in one write
// transaction, commits (mdb_txn_commit: fsync of the LMDB files) and only then resumes each
// requester on its own executor with its status. If one request fails (e.g. the map is
// full), the batch is aborted and its requests are retried one transaction each, so a
// failure belongs to exactly the request that caused it. No transaction ever waits for a
// coroutine, and no coroutine holds a transaction.
//
// Ownership: the engine owns the MetaWriter; a request lives in the awaiting frame. Threads:
// submit() from any executor thread; the destructor (from the owner) stops and joins the
// thread and requires that no request is outstanding.
#pragma once

#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "async/executor.h"
#include "chunk/lmdb.h"
#include "chunk/types.h"

namespace mica::chunk {

struct MetaRequest {
  ChunkKey key{};
  bool erase = false;  // delete the key (absent is fine) instead of putting value
  std::string value;
  // Filled by the writer.
  Status status;
  Executor* executor = nullptr;
  std::coroutine_handle<> waiter;
};

struct MetaWriterCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> transactions{0};
  std::atomic<uint64_t> failed_requests{0};
};

class MetaWriter {
 public:
  MetaWriter(lmdb::Env* env, lmdb::Dbi dbi, uint32_t batch_max);
  MetaWriter(const MetaWriter&) = delete;
  MetaWriter& operator=(const MetaWriter&) = delete;
  ~MetaWriter();

  struct Awaiter {
    MetaWriter* writer;
    MetaRequest* request;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
      request->executor = Executor::current();
      request->waiter = h;
      writer->enqueue(request);
    }
    Status await_resume() { return std::move(request->status); }
  };
  // `co_await writer.submit(&request)`: ok once the request is durable in LMDB.
  Awaiter submit(MetaRequest* request) { return Awaiter{this, request}; }

  const MetaWriterCounters& counters() const { return counters_; }

 private:
  void enqueue(MetaRequest* request);
  void run();
  Status apply(lmdb::Txn& txn, MetaRequest* request);
  void write_batch(std::deque<MetaRequest*>& batch);

  lmdb::Env* env_;
  lmdb::Dbi dbi_;
  uint32_t batch_max_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<MetaRequest*> queue_;
  bool stopping_ = false;
  MetaWriterCounters counters_;
  std::thread thread_;
};

}  // namespace mica::chunk
