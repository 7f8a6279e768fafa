// kv: ordered key-value storage behind one interface — an environment (one directory) holds
// named tables of byte-string keys in byte order (big-endian integers sort numerically),
// read transactions with cursors for point reads and range scans, and one group-commit
// writer that makes batches of puts and deletes durable. Three implementations: LMDB
// (kv/lmdb_env.cc), LMDB behind a write-ahead journal of our own (kv/journaled_env.cc: one
// sequential write and one flush per commit) and a simulated store durable only through the
// simulator's disk (kv/sim_store.cc). docs/kv.md has the design.
//
// Writes: a WriteRequest is a list of puts and deletes applied all or nothing (one write
// transaction); `co_await env.write(&request)` returns once it is durable or has failed. The
// writer commits every request queued meanwhile (up to group_commit_batch_max) in one storage
// transaction; if that fails, each request is retried alone, so a failure belongs to exactly
// the request that caused it and changes nothing. Reads: a ReadTxn is a snapshot; values and
// cursor entries point into it and are valid until it is reset, renewed or destroyed.
//
// Ownership and threads: the opener owns the Env, calls it from the executor it was opened
// on, and close()s it (co_await) with no write in flight before destroying it. A ReadTxn or
// Cursor must die before its Env, a Cursor before its ReadTxn is reset. Nothing suspends
// except open, write() and close(); never keep a ReadTxn active across a co_await (it pins
// old pages in LMDB and a copy of the tables in the simulated store).
#pragma once

#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "async/executor.h"
#include "async/status.h"
#include "async/task.h"

namespace mica::kv {

// A table of an environment, as open_table() names it; valid for the Env's lifetime.
using Table = uint32_t;

// A (key, value) a cursor lands on; both views die with the snapshot.
struct Entry {
  std::string_view key;
  std::string_view value;
};

enum class Implementation : uint8_t {
  kAuto,  // the simulated store on a simulated host, else the journaled store where a
          // journal exists, else LMDB
  kLmdb,
  kJournaled,  // LMDB behind a write-ahead journal (kv/journaled_env.h)
  kSim,
};

struct EnvOptions {
  Implementation implementation = Implementation::kAuto;
  // Most bytes the tables may hold (LMDB: the map size). Past it a commit is kNoSpace.
  uint64_t map_size_bytes = uint64_t{64} << 30;
  uint32_t tables_max = 8;
  uint32_t readers_max = 256;            // concurrent read transactions (LMDB reader slots)
  uint32_t group_commit_batch_max = 64;  // requests per storage transaction
  // Journaled store only: a journal file is left for the other (and its commits are copied
  // into LMDB) once it holds this many bytes; recovery reads at most two of them.
  uint64_t journal_file_bytes = uint64_t{16} << 20;
  // ... and once its first commit is this old, so the delta of changes not yet in LMDB
  // (which reads merge) stays a few seconds of commits.
  Duration journal_turn_interval = std::chrono::seconds(1);
  // Simulated store only: extra virtual latency of each commit, drawn uniformly in
  // [0, sim_commit_delay_max] (the disk's own latency comes on top).
  Duration sim_commit_delay_max = Duration::zero();
};

// An ordered cursor over one table of a ReadTxn. Positioning calls answer the entry they
// land on, or nullopt past either end.
class Cursor {
 public:
  virtual ~Cursor() = default;
  // First entry whose key is >= key.
  virtual Result<std::optional<Entry>> seek(std::string_view key) = 0;
  virtual Result<std::optional<Entry>> first() = 0;
  virtual Result<std::optional<Entry>> last() = 0;
  virtual Result<std::optional<Entry>> next() = 0;
  virtual Result<std::optional<Entry>> prev() = 0;
};

// A read snapshot. reset() releases it (cheaply: the object and its reader slot stay) and
// renew() takes a fresh one; a new ReadTxn starts active.
class ReadTxn {
 public:
  virtual ~ReadTxn() = default;
  // The value under key, or nullopt; the view dies with the snapshot.
  virtual Result<std::optional<std::string_view>> get(Table table, std::string_view key) = 0;
  virtual Result<std::unique_ptr<Cursor>> cursor(Table table) = 0;
  // Entries in table, without walking it.
  virtual Result<uint64_t> count(Table table) = 0;
  virtual void reset() = 0;
  virtual Status renew() = 0;
};

struct WriteOp {
  enum class Kind : uint8_t { kPut, kDelete };  // deleting an absent key is no error
  Kind kind = Kind::kPut;
  Table table = 0;
  std::string key;
  std::string value;
};

// One atomic write. Lives in the awaiting frame; the writer fills status.
struct WriteRequest {
  std::vector<WriteOp> ops;
  void put(Table table, std::string_view key, std::string_view value) {
    ops.push_back(WriteOp{WriteOp::Kind::kPut, table, std::string(key), std::string(value)});
  }
  void erase(Table table, std::string_view key) {
    ops.push_back(WriteOp{WriteOp::Kind::kDelete, table, std::string(key), {}});
  }
  // Filled by the writer.
  Status status;
  Executor* executor = nullptr;
  std::coroutine_handle<> waiter;
  // write_all's: the requests of the call not yet finished; the last one resumes waiter.
  std::atomic<size_t>* unfinished = nullptr;
};

struct WriterCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> transactions{0};  // storage transactions committed or tried
  std::atomic<uint64_t> failed_requests{0};
  std::atomic<uint64_t> checkpoints{0};  // journaled store: journal files copied into LMDB
};

class Env {
 public:
  // Opens (creating) the environment in directory dir, which must exist: LMDB's files or the
  // simulated store's log live there. kCorruption when its contents cannot be read.
  static Task<Result<std::unique_ptr<Env>>> open(std::string dir, EnvOptions options);
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
  virtual ~Env() = default;

  // Opens (creating) a named table; call it at start-up, before writes are in flight.
  virtual Result<Table> open_table(std::string_view name) = 0;
  virtual Result<std::unique_ptr<ReadTxn>> begin_read() = 0;
  // Bytes of storage in use (LMDB: pages of the data file; simulated: the log's length).
  virtual Result<uint64_t> used_bytes() = 0;
  // Waits for the writer to go idle and releases it; no write may be in flight.
  virtual Task<Status> close() = 0;
  virtual Implementation implementation() const = 0;

  struct WriteAwaiter {
    Env* env;
    WriteRequest* request;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
      request->executor = Executor::current();
      request->waiter = h;
      request->unfinished = nullptr;  // a request once given to write_all may come back
      env->enqueue({request});
    }
    Status await_resume() { return std::move(request->status); }
  };
  // `co_await env.write(&request)`: ok once every op of request is durable. request must
  // stay alive and unchanged until then.
  WriteAwaiter write(WriteRequest* request) { return WriteAwaiter{this, request}; }

  // `co_await env.write_all(requests)`: every request queued at once (the writer takes them
  // together: one storage transaction when they fit in a batch), resumed once all are durable
  // or failed; each request's status says which. Writing them one by one instead, the first
  // request may wake the writer, which commits it alone before the next is queued.
  struct WriteAllAwaiter {
    Env* env;
    std::vector<WriteRequest*> requests;
    std::atomic<size_t> unfinished{0};
    bool await_ready() const noexcept { return requests.empty(); }
    void await_suspend(std::coroutine_handle<> h);
    void await_resume() {}
  };
  WriteAllAwaiter write_all(std::vector<WriteRequest*> requests) {
    return WriteAllAwaiter{this, std::move(requests)};
  }

  const WriterCounters& counters() const { return counters_; }
  const EnvOptions& options() const { return options_; }

 protected:
  explicit Env(EnvOptions options) : options_(options) {}

  // The writer's queue, shared by both implementations. enqueue() calls start_writer() when
  // the writer was idle; the writer then loops on take_batch() (false, and idle again, once
  // the queue is empty) and hands each finished batch to finish().
  void enqueue(const std::vector<WriteRequest*>& requests);
  virtual void start_writer() = 0;
  bool take_batch(std::vector<WriteRequest*>* batch);
  // Blocks until the writer is idle (a writer thread may still be leaving its loop).
  void wait_writer_idle();
  // Counts and resumes the batch's requesters on their executors; touches none afterwards.
  void finish(std::vector<WriteRequest*>* batch, uint64_t transactions);

  EnvOptions options_;
  WriterCounters counters_;

 private:
  std::mutex mutex_;
  std::condition_variable idle_;
  std::deque<WriteRequest*> queue_;
  bool running_ = false;
};

// Status of a request that found key's table unknown.
Status unknown_table(Table table);

}  // namespace mica::kv
