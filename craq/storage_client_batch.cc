// StorageClient's batch calls (craq/storage_client.h): read_batch groups its items by the
// storage node of the replica each one is routed to and sends one batch_read per node (split
// at batch_read_items_max items and batch_bytes_in_flight_max bytes), all in parallel; an
// item that fails for a reason worth retrying is then read on its own with read(), within
// what is left of the deadline. write_batch runs write() for every item, keeping at most
// batch_bytes_in_flight_max payload bytes in flight.
#include <algorithm>
#include <functional>
#include <map>

#include "async/scope.h"
#include "craq/storage_client.h"
#include "craq/storage_client_retry.h"

namespace mica::craq {

using client_detail::ClientRoute;
using client_detail::Next;

// One batch_read RPC to one node, and what came back.
struct StorageClient::BatchPart {
  SocketAddress address;
  std::vector<size_t> items;  // indices into the batch's reads, in request order
  BatchReadRequest request;
  uint64_t bytes = 0;
  Status status;  // of the RPC as a whole
  BatchReadResponse response;
  // Some item names the caller's own region: an RPC that got no answer is fenced
  // (client_detail::call_fenced_at), as a read() attempt is.
  bool callers_region = false;
};

namespace {

// Units of a byte semaphore of `cap` units that `bytes` take: at least one, at most all.
uint64_t units_for(uint64_t bytes, uint64_t cap) {
  return std::clamp<uint64_t>(bytes, 1, cap);
}

}  // namespace

std::vector<StorageClient::BatchPart> StorageClient::plan_batch(
    const std::vector<ChunkRead>& reads, std::vector<std::optional<Result<uint32_t>>>& results) {
  RoutingClient::SnapshotPtr routing = routing_->current();
  // Parts by node, the last one of each node still filling; a std::map so parts are sent
  // in node order (deterministic under the simulator).
  std::map<NodeId, std::vector<BatchPart>> by_node;
  for (size_t i = 0; i < reads.size(); ++i) {
    const ChunkRead& read = reads[i];
    if (read.out.size() > UINT32_MAX) {
      results[i] = Status(StatusCode::kInvalidArgument, "a read of 4 GiB or more");
      continue;
    }
    Result<ClientRoute> route =
        client_detail::replica_route(routing.get(), read.chain, next_read_turn());
    if (!route.ok()) continue;  // left for read(), which refreshes routing and retries
    std::vector<BatchPart>& parts = by_node[route->node];
    bool full = !parts.empty() &&
                (parts.back().items.size() >= options_.batch_read_items_max ||
                 parts.back().bytes + read.out.size() > options_.batch_bytes_in_flight_max);
    if (parts.empty() || full) parts.emplace_back().address = route->address;
    BatchPart& part = parts.back();
    part.items.push_back(i);
    part.bytes += read.out.size();
    part.request.items.push_back(ReadRequest{.chain = read.chain,
                                             .chain_version = route->chain_version,
                                             .chunk = read.chunk,
                                             .offset = read.offset,
                                             .length = static_cast<uint32_t>(read.out.size())});
  }
  std::vector<BatchPart> planned;
  for (auto& [node, parts] : by_node) {
    for (BatchPart& part : parts) planned.push_back(std::move(part));
  }
  return planned;
}

Task<void> StorageClient::send_part(BatchPart* part, Semaphore* bytes, TimePoint deadline) {
  uint64_t units = units_for(part->bytes, options_.batch_bytes_in_flight_max);
  Status admitted = co_await bytes->acquire(units, deadline);
  if (!admitted.ok()) {
    part->status = std::move(admitted);
    co_return;
  }
  SemaphoreGuard held(*bytes, units);
  TimePoint now = Executor::current()->now();
  TimePoint attempt =
      deadline - now <= options_.attempt_timeout ? deadline : now + options_.attempt_timeout;
  auto calling = part->callers_region
                     ? client_detail::call_fenced_at<StorageService::batch_read>(
                           pool_, part->address, part->request, attempt)
                     : client_detail::call_at<StorageService::batch_read>(pool_, part->address,
                                                                          part->request, attempt);
  Result<BatchReadResponse> response = co_await std::move(calling);
  if (!response.ok()) {
    part->status = response.status();
  } else if (response->items.size() != part->items.size()) {
    part->status =
        Status(StatusCode::kProtocolError, fmt::format("batch_read answered {} items of {}",
                                                       response->items.size(), part->items.size()));
  } else {
    part->response = std::move(*response);
  }
}

std::vector<std::unique_ptr<net::MemoryRegion>> StorageClient::register_parts(
    std::vector<BatchPart>* parts, const std::vector<ChunkRead>& reads,
    std::vector<std::optional<Result<uint32_t>>>& results) {
  // Every routed, non-empty item, in address order; a run of buffers that touch or overlap
  // becomes one region (it exposes no byte that is not some item's own buffer).
  struct Slot {
    std::byte* begin;
    std::byte* end;
    size_t part;
    size_t k;
  };
  std::vector<Slot> slots;
  for (size_t p = 0; p < parts->size(); ++p) {
    BatchPart& part = (*parts)[p];
    for (size_t k = 0; k < part.items.size(); ++k) {
      const ChunkRead& read = reads[part.items[k]];
      std::span<std::byte> out = read.out;
      if (client_detail::region_covers(read.region, out)) {
        // The caller's registration: named as it is, nothing registered for this item.
        part.request.items[k].out = client_detail::register_or_use(transport_, out, read.region)
                                        .value()
                                        .remote;
        part.callers_region = true;
        continue;
      }
      if (!out.empty()) slots.push_back(Slot{out.data(), out.data() + out.size(), p, k});
    }
  }
  std::sort(slots.begin(), slots.end(),
            [](const Slot& a, const Slot& b) { return std::less<>()(a.begin, b.begin); });
  std::vector<std::unique_ptr<net::MemoryRegion>> regions;
  for (size_t first = 0; first < slots.size();) {
    size_t last = first + 1;
    std::byte* end = slots[first].end;
    while (last < slots.size() && !std::less<>()(end, slots[last].begin) &&
           std::max(end, slots[last].end, std::less<>()) - slots[first].begin <= UINT32_MAX) {
      end = std::max(end, slots[last].end, std::less<>());
      ++last;
    }
    std::span<std::byte> run(slots[first].begin, end);
    Result<client_detail::Registered> registered = client_detail::register_span(transport_, run);
    for (size_t j = first; j < last; ++j) {
      const Slot& slot = slots[j];
      BatchPart& part = (*parts)[slot.part];
      if (!registered.ok()) {
        results[part.items[slot.k]] = registered.status();
        continue;  // sent with an empty buffer: its answer is dropped
      }
      part.request.items[slot.k].out =
          registered->region->remote(static_cast<uint64_t>(slot.begin - run.data()),
                                     static_cast<uint32_t>(slot.end - slot.begin));
    }
    if (registered.ok() && registered->region) regions.push_back(std::move(registered->region));
    first = last;
  }
  return regions;
}

Task<std::vector<Result<uint32_t>>> StorageClient::read_batch(std::vector<ChunkRead> reads,
                                                              TimePoint deadline) {
  deadline = call_deadline(deadline);
  std::vector<std::optional<Result<uint32_t>>> results(reads.size());
  std::vector<BatchPart> parts = plan_batch(reads, results);
  // Register the routed items' buffers, one region per run of adjacent buffers (a data
  // loader slices one buffer: one registration per batch, not per item); all are released
  // before any retry reuses a buffer.
  std::vector<std::unique_ptr<net::MemoryRegion>> regions = register_parts(&parts, reads, results);
  Semaphore bytes(options_.batch_bytes_in_flight_max);
  std::vector<Task<void>> sending;
  sending.reserve(parts.size());
  for (BatchPart& part : parts) sending.push_back(send_part(&part, &bytes, deadline));
  auto all_sent = when_all(std::move(sending));
  co_await std::move(all_sent);
  for (std::unique_ptr<net::MemoryRegion>& region : regions) {
    auto releasing = client_detail::release(std::move(region), deadline);
    co_await std::move(releasing);
  }
  for (const BatchPart& part : parts) {
    for (size_t k = 0; k < part.items.size(); ++k) {
      size_t i = part.items[k];
      if (results[i]) continue;
      if (!part.status.ok()) continue;  // the whole RPC failed: retried on its own below
      const ReadItemResult& item = part.response.items[k];
      Status failure = item.status;
      if (failure.ok())
        failure =
            client_detail::check_read(item.read, reads[i].out, reads[i].chain, reads[i].chunk);
      if (failure.code() == StatusCode::kChecksumMismatch) checksum_metric_->add();
      if (failure.ok()) {
        results[i] = item.read.bytes;
      } else if (client_detail::classify_read(failure.code()) == Next::kFail) {
        results[i] = std::move(failure);
      }
    }
  }
  // Whatever is still open (unrouted, or failed in a way another try may mend) is read on
  // its own, within the same deadline and byte budget.
  std::vector<size_t> again;
  std::vector<Task<Result<uint32_t>>> retrying;
  for (size_t i = 0; i < reads.size(); ++i) {
    if (results[i]) continue;
    again.push_back(i);
    retrying.push_back(read_bounded(reads[i], &bytes, deadline));
  }
  auto all_retried = when_all(std::move(retrying));
  std::vector<Result<uint32_t>> retried = co_await std::move(all_retried);
  for (size_t j = 0; j < again.size(); ++j) results[again[j]] = std::move(retried[j]);
  std::vector<Result<uint32_t>> answers;
  answers.reserve(results.size());
  for (std::optional<Result<uint32_t>>& result : results) answers.push_back(std::move(*result));
  co_return answers;
}

Task<Result<uint32_t>> StorageClient::read_bounded(ChunkRead read, Semaphore* bytes,
                                                   TimePoint deadline) {
  uint64_t units = units_for(read.out.size(), options_.batch_bytes_in_flight_max);
  Status admitted = co_await bytes->acquire(units, deadline);
  if (!admitted.ok()) co_return admitted;
  SemaphoreGuard held(*bytes, units);
  auto reading = this->read(read.chain, read.chunk, read.offset, read.out, deadline, read.region);
  co_return co_await std::move(reading);
}

Task<std::vector<Result<ChunkState>>> StorageClient::write_batch(std::vector<ChunkWrite> writes,
                                                                 TimePoint deadline) {
  deadline = call_deadline(deadline);
  Semaphore bytes(options_.batch_bytes_in_flight_max);
  std::vector<Task<Result<ChunkState>>> writing;
  writing.reserve(writes.size());
  for (const ChunkWrite& write : writes) writing.push_back(write_bounded(write, &bytes, deadline));
  auto all = when_all(std::move(writing));
  co_return co_await std::move(all);
}

Task<Result<ChunkState>> StorageClient::write_bounded(ChunkWrite write, Semaphore* bytes,
                                                      TimePoint deadline) {
  uint64_t units = units_for(write.data.size(), options_.batch_bytes_in_flight_max);
  Status admitted = co_await bytes->acquire(units, deadline);
  if (!admitted.ok()) co_return admitted;
  SemaphoreGuard held(*bytes, units);
  auto writing = this->write(write.chain, write.chunk, write.offset, write.data,
                             write.chunk_size_bytes, deadline, write.region);
  co_return co_await std::move(writing);
}

}  // namespace mica::craq
