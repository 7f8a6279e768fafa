// GcWorker (meta/gc.h): the collecting loop, its rate bound, retries and counts.
#include "meta/gc.h"

#include <algorithm>

#include "async/hop.h"
#include "async/log.h"
#include "craq/storage_client.h"
#include "meta/layout.h"
#include "meta/shard.h"

namespace mica::meta {

namespace {

MetricLabels labels_of(const Shard* shard) {
  MetricLabels labels = shard->options().metric_labels;
  labels.emplace_back("shard", std::to_string(shard->id()));
  return labels;
}

}  // namespace

GcWorker::GcWorker(Shard* shard, GcOptions options)
    : shard_(shard),
      options_(options),
      queued_files_metric_(&metrics().gauge(
          "meta", "gc_queued_files", "Files whose chunks wait for removal.", labels_of(shard))),
      queued_bytes_metric_(&metrics().gauge("meta", "gc_queued_bytes",
                                            "Bytes of files whose chunks wait for removal.",
                                            labels_of(shard))),
      removed_metric_(&metrics().counter("meta", "gc_removed_files_total",
                                         "Files whose chunks were removed.", labels_of(shard))),
      removed_bytes_metric_(&metrics().counter("meta", "gc_removed_bytes_total",
                                               "Bytes of the files whose chunks were removed.",
                                               labels_of(shard))),
      failures_metric_(&metrics().counter(
          "meta", "gc_failures_total", "Chunk removals that failed (retried).", labels_of(shard))) {
  MICA_ASSERT(options_.files_per_s > 0 && options_.files_in_flight_max > 0);
  MICA_ASSERT(options_.poll_interval_ms > 0 && options_.scan_max > 0);
}

GcWorker::~GcWorker() {
  MICA_ASSERT_MSG(!started_ || stopped_, "GcWorker destroyed before stop()");
}

void GcWorker::start() {
  MICA_ASSERT_MSG(!started_, "GcWorker started twice");
  refresh();
  if (shard_->options().storage == nullptr) return;  // the queue waits for a storage client
  started_ = true;
  scope_.spawn(loop());
}

Task<void> GcWorker::stop() {
  if (!started_ || stopped_) {
    stopped_ = true;
    co_return;
  }
  stopped_ = true;
  scope_.cancel();
  co_await scope_.join();
}

void GcWorker::refresh() {
  Result<std::unique_ptr<kv::ReadTxn>> txn = shard_->read();
  Result<std::unique_ptr<kv::Cursor>> cursor =
      txn.ok() ? (*txn)->cursor(shard_->tables().gc)
               : Result<std::unique_ptr<kv::Cursor>>(txn.status());
  if (!cursor.ok()) {
    MICA_LOG(Warn, "meta", "shard {}: reading the gc queue: {}", shard_->id(), cursor.status());
    return;
  }
  Result<std::optional<kv::Entry>> at =
      counted_any_ ? (*cursor)->seek(counted_end_) : (*cursor)->first();
  // seek lands on the last counted key itself (unless it was collected meanwhile).
  if (counted_any_ && at.ok() && at->has_value() && (*at)->key == counted_end_) {
    at = (*cursor)->next();
  }
  for (; at.ok() && at->has_value(); at = (*cursor)->next()) {
    Result<GcRecord> record = decode_record<GcRecord>((*at)->value, "gc record");
    if (!record.ok()) {
      // Counted (it is in the queue) but never collected: fsck names it.
      MICA_LOG(Error, "meta", "shard {}: {}", shard_->id(), record.status());
    } else {
      queued_bytes_ += record->length;
    }
    ++queued_files_;
    counted_end_.assign((*at)->key);
    counted_any_ = true;
  }
  if (!at.ok()) {
    MICA_LOG(Warn, "meta", "shard {}: reading the gc queue: {}", shard_->id(), at.status());
  }
  publish();
}

void GcWorker::publish() {
  queued_files_metric_->set(int64_t(queued_files_));
  queued_bytes_metric_->set(int64_t(queued_bytes_));
}

void GcWorker::fill_status(ShardStatus* status) {
  refresh();
  status->gc_queued_files = queued_files_;
  status->gc_queued_bytes = queued_bytes_;
  status->gc_removed_files = removed_files_;
}

std::vector<GcWorker::Picked> GcWorker::pick(size_t wanted) {
  std::vector<Picked> picked;
  if (wanted == 0 || !counted_any_) return picked;
  Result<std::unique_ptr<kv::ReadTxn>> txn = shard_->read();
  if (!txn.ok()) return picked;
  Result<std::unique_ptr<kv::Cursor>> cursor = (*txn)->cursor(shard_->tables().gc);
  if (!cursor.ok()) return picked;
  TimePoint now = Executor::current()->now();
  uint32_t looked = 0;
  for (Result<std::optional<kv::Entry>> at = (*cursor)->first();
       at.ok() && at->has_value() && picked.size() < wanted && looked < options_.scan_max;
       at = (*cursor)->next(), ++looked) {
    // Only counted records: the queue's counts must cover every record collected.
    if ((*at)->key > std::string_view(counted_end_)) break;
    uint64_t sequence = read_be64((*at)->key);
    if (in_flight_.contains(sequence)) continue;
    auto retry = retries_.find(sequence);
    if (retry != retries_.end() && retry->second.at > now) continue;
    Result<GcRecord> record = decode_record<GcRecord>((*at)->value, "gc record");
    if (!record.ok()) continue;  // logged when counted
    picked.push_back(Picked{sequence, std::move(record).value()});
  }
  return picked;
}

TimePoint GcWorker::next_wakeup() const {
  TimePoint at = Executor::current()->now() + std::chrono::milliseconds(options_.poll_interval_ms);
  for (const auto& [sequence, retry] : retries_) at = std::min(at, retry.at);
  return at;
}

Task<void> GcWorker::loop() {
  const Duration spacing = std::chrono::nanoseconds(1'000'000'000 / options_.files_per_s);
  for (;;) {
    wake_.reset();
    refresh();
    std::vector<Picked> picked = pick(options_.files_in_flight_max - in_flight_.size());
    if (picked.empty()) {
      // Idle, or every slot busy: a finished removal, a new record or the poll wakes us.
      Status s = co_await wake_.wait(next_wakeup());
      if (s.code() == StatusCode::kCancelled) co_return;
      continue;
    }
    for (Picked& one : picked) {
      TimePoint now = Executor::current()->now();
      if (next_start_ > now) {
        Status slept = co_await sleep_until(next_start_);
        if (!slept.ok()) co_return;
        now = Executor::current()->now();
      }
      next_start_ = now + spacing;
      in_flight_.insert(one.sequence);
      in_flight_peak_ = std::max(in_flight_peak_, in_flight_.size());
      scope_.spawn(collect(std::move(one)));
    }
  }
}

Task<Status> GcWorker::remove_chunks(const GcRecord& record) {
  if (record.layout.stripe == 0) co_return Status();  // a file that never had a layout
  const craq::RoutingSnapshot* routing =
      shard_->options().routing ? shard_->options().routing() : nullptr;
  if (routing == nullptr) co_return Status(StatusCode::kNotServing, "no routing yet");
  const craq::ChainTable* table = craq::find_table(*routing, record.layout.table);
  if (table == nullptr) {
    co_return Status(StatusCode::kNotFound,
                     fmt::format("chain table {} not in routing", record.layout.table));
  }
  CO_TRY_ASSIGN(std::vector<craq::ChainId> chains, layout_chains(record.layout, *table));
  // routing may change while we wait: only the copied chains are used from here on.
  auto removing = shard_->options().storage->remove_from(
      std::move(chains), record.inode, 0,
      deadline_after(std::chrono::milliseconds(options_.call_timeout_ms)));
  auto removing_there = mica::hop(Executor::current(), shard_->options().storage_executor,
                                    std::move(removing));
  co_return co_await std::move(removing_there);
}

Task<Status> GcWorker::erase_record(uint64_t sequence) {
  kv::WriteRequest request;
  request.erase(shard_->tables().gc, gc_key(sequence));
  co_return co_await shard_->env()->write(&request);
}

void GcWorker::failed(uint64_t sequence, const Status& status) {
  ++failures_;
  failures_metric_->add();
  Retry& retry = retries_[sequence];
  ++retry.failures;
  uint64_t wait_ms = options_.backoff_initial_ms;
  for (uint32_t i = 1; i < retry.failures && wait_ms < options_.backoff_max_ms; ++i) wait_ms *= 2;
  wait_ms = std::min<uint64_t>(wait_ms, options_.backoff_max_ms);
  retry.at = Executor::current()->now() + std::chrono::milliseconds(wait_ms);
  MICA_LOG(Warn, "meta", "shard {}: collecting gc record {} (try {}): {}; again in {} ms",
           shard_->id(), sequence, retry.failures, status, wait_ms);
}

Task<void> GcWorker::collect(Picked picked) {
  auto removing = remove_chunks(picked.record);
  Status s = co_await std::move(removing);
  if (s.ok()) {
    auto erasing = erase_record(picked.sequence);
    s = co_await std::move(erasing);
  }
  in_flight_.erase(picked.sequence);
  if (s.ok()) {
    retries_.erase(picked.sequence);
    MICA_ASSERT(queued_files_ > 0);
    --queued_files_;
    queued_bytes_ -= std::min(queued_bytes_, picked.record.length);
    ++removed_files_;
    removed_metric_->add();
    removed_bytes_metric_->add(picked.record.length);
    publish();
  } else if (s.code() != StatusCode::kCancelled) {
    failed(picked.sequence, s);
  }
  wake_.set();
}

}  // namespace mica::meta
