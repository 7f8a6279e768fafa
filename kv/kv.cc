// The parts of kv::Env both implementations share: the writer's queue and the choice of
// implementation at open.
#include "kv/kv.h"

#include <filesystem>

#include "async/sim/backend.h"
#include "kv/journaled_env.h"
#include "kv/lmdb_env.h"
#include "kv/sim_store.h"

namespace mica::kv {

Status unknown_table(Table table) {
  return Status(StatusCode::kInvalidArgument, fmt::format("kv: table {} was never opened", table));
}

Task<Result<std::unique_ptr<Env>>> Env::open(std::string dir, EnvOptions options) {
  if (options.group_commit_batch_max == 0 || options.tables_max == 0 || options.readers_max == 0)
    co_return Status(StatusCode::kInvalidArgument, "kv: a *_max option is zero");
  Implementation implementation = options.implementation;
  bool simulated = dynamic_cast<sim::SimBackend*>(&Executor::current()->backend()) != nullptr;
  // A store that has a journal is read through it: plain LMDB would miss its newest commits.
  bool has_journal = !simulated && std::filesystem::exists(journal_path(dir, 0));
  if (implementation == Implementation::kAuto) {
    // A simulated host's executor runs on a SimBackend: its disk is the only one there is.
    implementation = simulated     ? Implementation::kSim
                     : has_journal ? Implementation::kJournaled
                                   : Implementation::kLmdb;
  }
  if (implementation == Implementation::kLmdb && has_journal)
    co_return Status(StatusCode::kInvalidArgument,
                     fmt::format("kv: {} holds a write-ahead journal (kv/journaled_env.h): "
                                 "open it journaled, not as plain LMDB",
                                 dir));
  options.implementation = implementation;
  if (implementation == Implementation::kLmdb) co_return open_lmdb_env(std::move(dir), options);
  if (implementation == Implementation::kJournaled) {
    auto journaled = open_journaled_env(std::move(dir), options);
    co_return co_await std::move(journaled);
  }
  auto opening = open_sim_env(std::move(dir), options);
  co_return co_await std::move(opening);
}

void Env::enqueue(const std::vector<WriteRequest*>& requests) {
  bool start = false;
  {
    std::lock_guard lock(mutex_);
    queue_.insert(queue_.end(), requests.begin(), requests.end());
    if (!running_) running_ = start = true;
  }
  if (start) start_writer();
}

void Env::WriteAllAwaiter::await_suspend(std::coroutine_handle<> h) {
  unfinished.store(requests.size(), std::memory_order_relaxed);
  for (WriteRequest* r : requests) {
    r->executor = Executor::current();
    r->waiter = h;
    r->unfinished = &unfinished;
  }
  env->enqueue(requests);
}

bool Env::take_batch(std::vector<WriteRequest*>* batch) {
  batch->clear();
  std::lock_guard lock(mutex_);
  if (queue_.empty()) {
    running_ = false;
    idle_.notify_all();
    return false;
  }
  // Everything that queued while the previous commit ran forms the next group.
  while (!queue_.empty() && batch->size() < options_.group_commit_batch_max) {
    batch->push_back(queue_.front());
    queue_.pop_front();
  }
  return true;
}

void Env::wait_writer_idle() {
  std::unique_lock lock(mutex_);
  MICA_ASSERT_MSG(queue_.empty(), "kv::Env closed with writes outstanding");
  idle_.wait(lock, [this] { return !running_; });
}

void Env::finish(std::vector<WriteRequest*>* batch, uint64_t transactions) {
  uint64_t failed = 0;
  for (WriteRequest* r : *batch) failed += r->status.ok() ? 0 : 1;
  counters_.requests.fetch_add(batch->size(), std::memory_order_relaxed);
  counters_.transactions.fetch_add(transactions, std::memory_order_relaxed);
  counters_.failed_requests.fetch_add(failed, std::memory_order_relaxed);
  // After post_remote the request's frame may resume and free it: touch nothing afterwards.
  // A write_all's waiter resumes with its last request (the others' frame outlives them).
  for (WriteRequest* r : *batch) {
    Executor* executor = r->executor;
    std::coroutine_handle<> waiter = r->waiter;
    if (r->unfinished != nullptr && r->unfinished->fetch_sub(1, std::memory_order_acq_rel) > 1)
      continue;
    if (executor == Executor::current())
      executor->post(waiter);  // the simulated writer runs on its requesters' executor
    else
      executor->post_remote(waiter);
  }
  batch->clear();
}

}  // namespace mica::kv
