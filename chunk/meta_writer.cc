#include "chunk/meta_writer.h"

namespace mica::chunk {

MetaWriter::MetaWriter(lmdb::Env* env, lmdb::Dbi dbi, uint32_t batch_max)
    : env_(env), dbi_(dbi), batch_max_(batch_max) {
  MICA_ASSERT(batch_max_ > 0);
  thread_ = std::thread([this] { run(); });
}

MetaWriter::~MetaWriter() {
  {
    std::lock_guard lock(mutex_);
    MICA_ASSERT_MSG(queue_.empty(), "MetaWriter destroyed with requests outstanding");
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void MetaWriter::enqueue(MetaRequest* request) {
  bool was_empty;
  {
    std::lock_guard lock(mutex_);
    was_empty = queue_.empty();
    queue_.push_back(request);
  }
  if (was_empty) cv_.notify_one();
}

void MetaWriter::run() {
  std::deque<MetaRequest*> batch;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      // Everything that queued while the previous commit ran forms the next group.
      while (!queue_.empty() && batch.size() < batch_max_) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    write_batch(batch);
    batch.clear();
  }
}

Status MetaWriter::apply(lmdb::Txn& txn, MetaRequest* request) {
  if (!request->erase) return txn.put(dbi_, key_view(request->key), request->value);
  Status s = txn.del(dbi_, key_view(request->key));
  return s.code() == StatusCode::kNotFound ? Status() : s;
}

void MetaWriter::write_batch(std::deque<MetaRequest*>& batch) {
  Status group;
  {
    Result<lmdb::Txn> txn = lmdb::Txn::begin(*env_, lmdb::Txn::Mode::kWrite);
    if (!txn.ok()) group = txn.status();
    for (size_t i = 0; group.ok() && i < batch.size(); ++i) group = apply(*txn, batch[i]);
    if (group.ok()) group = txn->commit();
  }
  counters_.transactions.fetch_add(1, std::memory_order_relaxed);
  if (group.ok()) {
    for (MetaRequest* r : batch) r->status = Status();
  } else {
    // Isolate the failure: one transaction per request.
    for (MetaRequest* r : batch) {
      Result<lmdb::Txn> txn = lmdb::Txn::begin(*env_, lmdb::Txn::Mode::kWrite);
      Status s = txn.ok() ? apply(*txn, r) : txn.status();
      if (s.ok()) s = txn->commit();
      counters_.transactions.fetch_add(1, std::memory_order_relaxed);
      if (!s.ok()) counters_.failed_requests.fetch_add(1, std::memory_order_relaxed);
      r->status = std::move(s);
    }
  }
  counters_.requests.fetch_add(batch.size(), std::memory_order_relaxed);
  // After post_remote the request's frame may resume and free it: touch nothing afterwards.
  for (MetaRequest* r : batch) {
    Executor* executor = r->executor;
    std::coroutine_handle<> waiter = r->waiter;
    executor->post_remote(waiter);
  }
}

}  // namespace mica::chunk
