#include "craq/storage_client.h"

#include <algorithm>

#include "async/crc32c.h"
#include "async/log.h"
#include "async/scope.h"
#include "craq/storage_client_retry.h"

namespace mica::craq {

using client_detail::ClientRoute;
using client_detail::Next;
using client_detail::RetryLoop;

namespace {

Status too_large(size_t bytes) {
  return Status(StatusCode::kInvalidArgument,
                fmt::format("{} bytes do not fit one chunk request", bytes));
}

}  // namespace

StorageClient::StorageClient(net::ConnectionPool* pool, net::Transport* transport,
                             RoutingClient* routing, StorageClientOptions options)
    : pool_(pool), transport_(transport), routing_(routing), options_(options) {
  MICA_ASSERT_MSG(pool_ != nullptr && transport_ != nullptr && routing_ != nullptr,
                  "a storage client needs a pool, a transport and a routing client");
  MICA_ASSERT_MSG(options_.batch_bytes_in_flight_max > 0 && options_.batch_read_items_max > 0,
                  "batch limits must be positive");
  MICA_ASSERT_MSG(options_.attempt_timeout > Duration(0), "attempt_timeout must be positive");
  Backend& backend = Executor::current()->backend();
  client_id_ = options_.client_id;
  // A random id keeps two clients' (client id, request id) pairs apart without asking anyone;
  // 0 means "no client" in a chunk's update tag.
  while (client_id_ == 0) client_id_ = backend.random_u64();
  read_turn_ = backend.random_u64();
  retries_metric_ = &metrics().counter("storage_client", "retries_total",
                                       "Failed attempts of storage client calls, retried.");
  timeouts_metric_ = &metrics().counter("storage_client", "deadline_exceeded_total",
                                        "Storage client calls that ended at their deadline.");
  checksum_metric_ = &metrics().counter(
      "storage_client", "checksum_mismatches_total",
      "Reads whose bytes did not match their CRC32C (in transit or on the replica's disk).");
}

StorageClient::~StorageClient() = default;

TimePoint StorageClient::call_deadline(TimePoint deadline) const {
  if (deadline != kNoDeadline) return deadline;
  return deadline_after(options_.call_timeout);
}

uint64_t StorageClient::next_read_turn() {
  if (options_.read_choice == ReadChoice::kHead) return 0;
  return read_turn_++;
}

Task<Result<ChunkState>> StorageClient::write(ChainId chain, ChunkRef chunk, uint32_t offset,
                                              std::span<const std::byte> data,
                                              uint32_t chunk_size_bytes, TimePoint deadline,
                                              net::MemoryRegion* region) {
  if (data.size() > UINT32_MAX) co_return too_large(data.size());
  UpdateIO io{.chain = chain,
              .chunk = chunk,
              .kind = UpdateKind::kWrite,
              .offset = offset,
              .length = static_cast<uint32_t>(data.size()),
              .chunk_size_bytes = chunk_size_bytes,
              .payload_crc = crc32c(data)};
  auto updating = update(io, data, deadline, region);
  co_return co_await std::move(updating);
}

Task<Result<ChunkState>> StorageClient::truncate(ChainId chain, ChunkRef chunk,
                                                 uint32_t length_bytes, uint32_t chunk_size_bytes,
                                                 TimePoint deadline) {
  UpdateIO io{.chain = chain,
              .chunk = chunk,
              .kind = UpdateKind::kTruncate,
              .length = length_bytes,
              .chunk_size_bytes = chunk_size_bytes};
  auto updating = update(io, {}, deadline);
  co_return co_await std::move(updating);
}

Task<Result<ChunkState>> StorageClient::remove(ChainId chain, ChunkRef chunk, TimePoint deadline) {
  // A removal touches no range, so it names no chunk size (the target checks none).
  UpdateIO io{.chain = chain, .chunk = chunk, .kind = UpdateKind::kRemove};
  auto updating = update(io, {}, deadline);
  co_return co_await std::move(updating);
}

Task<Result<ChunkState>> StorageClient::update(UpdateIO io, std::span<const std::byte> data,
                                               TimePoint deadline, net::MemoryRegion* region) {
  deadline = call_deadline(deadline);
  // One request id per logical update, kept over every retry: the chain recognises a retry
  // of an update it already applied (or holds pending) by this pair.
  io.client_id = client_id_;
  io.request_id = next_request_id_++;
  // The servers only pull (read_from) from it; registration names memory for both ways.
  std::span<std::byte> bytes(const_cast<std::byte*>(data.data()), data.size());
  Result<client_detail::Registered> registered =
      client_detail::register_or_use(transport_, bytes, region);
  if (!registered.ok()) co_return registered.status();
  auto running = update_loop(io, registered->remote, deadline);
  Result<ChunkState> result = co_await std::move(running);
  auto releasing = client_detail::release(std::move(registered->region), deadline);
  co_await std::move(releasing);
  co_return result;
}

Task<Result<ChunkState>> StorageClient::update_loop(UpdateIO io, net::RemoteBuffer payload,
                                                    TimePoint deadline) {
  RetryLoop retry(
      routing_, options_, deadline,
      fmt::format("update of chunk {}:{} on chain {}", io.chunk.inode, io.chunk.index, io.chain),
      retries_metric_, timeouts_metric_);
  for (;;) {
    uint64_t used = routing_->version();
    RoutingClient::SnapshotPtr routing = routing_->current();
    Result<ClientRoute> route = client_detail::head_route(routing.get(), io.chain);
    Status failure;
    if (route.ok()) {
      io.chain_version = route->chain_version;
      UpdateRequest request{.io = io, .payload = payload};
      auto calling = client_detail::call_at<StorageService::update>(
          pool_, route->address, std::move(request), retry.attempt_deadline());
      Result<UpdateResponse> response = co_await std::move(calling);
      if (response.ok()) co_return response->state;
      failure = response.status();
    } else {
      failure = route.status();
    }
    Next next = client_detail::classify_update(failure.code());
    auto waiting = retry.after(std::move(failure), next, used, 1);
    Status again = co_await std::move(waiting);
    if (!again.ok()) co_return again;
  }
}

Task<Result<uint32_t>> StorageClient::read(ChainId chain, ChunkRef chunk, uint32_t offset,
                                           std::span<std::byte> out, TimePoint deadline,
                                           net::MemoryRegion* region) {
  if (out.size() > UINT32_MAX) co_return too_large(out.size());
  ReadRequest request{.chain = chain,
                      .chunk = chunk,
                      .offset = offset,
                      .length = static_cast<uint32_t>(out.size())};
  auto reading = read_loop(request, out, call_deadline(deadline), region);
  co_return co_await std::move(reading);
}

Task<Result<uint32_t>> StorageClient::read_loop(ReadRequest request, std::span<std::byte> out,
                                                TimePoint deadline, net::MemoryRegion* region) {
  RetryLoop retry(routing_, options_, deadline,
                  fmt::format("read of chunk {}:{} on chain {}", request.chunk.inode,
                              request.chunk.index, request.chain),
                  retries_metric_, timeouts_metric_);
  uint64_t turn = next_read_turn();
  for (;;) {
    uint64_t used = routing_->version();
    RoutingClient::SnapshotPtr routing = routing_->current();
    Result<ClientRoute> route = client_detail::replica_route(routing.get(), request.chain, turn);
    Status failure;
    size_t replicas = 1;
    if (route.ok()) {
      replicas = route->replicas;
      // A fresh registration per attempt, released before the next: a replica that gave up
      // late can never push its bytes over those of the replica that answered after it. A
      // caller's region stays registered past the attempt, so an attempt naming it that got
      // no answer is fenced instead: its connection is closed before the next attempt (or
      // the return), and no late push of it can land in the caller's buffer.
      Result<client_detail::Registered> registered =
          client_detail::register_or_use(transport_, out, region);
      if (!registered.ok()) co_return registered.status();
      bool callers = client_detail::region_covers(region, out);
      request.chain_version = route->chain_version;
      request.out = registered->remote;
      auto calling =
          callers ? client_detail::call_fenced_at<StorageService::read>(
                        pool_, route->address, request, retry.attempt_deadline())
                  : client_detail::call_at<StorageService::read>(pool_, route->address, request,
                                                                 retry.attempt_deadline());
      Result<ReadResponse> response = co_await std::move(calling);
      auto releasing = client_detail::release(std::move(registered->region), deadline);
      co_await std::move(releasing);
      if (response.ok()) {
        failure = client_detail::check_read(*response, out, request.chain, request.chunk);
        if (failure.ok()) co_return response->bytes;
        checksum_metric_->add();
        MICA_LOG(Warn, "craq", "target {}: {}", route->target, failure.to_string());
      } else {
        failure = response.status();
        if (failure.code() == StatusCode::kChecksumMismatch) checksum_metric_->add();
      }
    } else {
      failure = route.status();
    }
    Next next = client_detail::classify_read(failure.code());
    ++turn;  // whatever went wrong, the next attempt asks the next serving replica
    auto waiting = retry.after(std::move(failure), next, used, replicas);
    Status again = co_await std::move(waiting);
    if (!again.ok()) co_return again;
  }
}

Task<Result<std::optional<ChunkMeta>>> StorageClient::last_chunk(std::vector<ChainId> chains,
                                                                 uint64_t inode,
                                                                 TimePoint deadline) {
  deadline = call_deadline(deadline);
  std::vector<Task<Result<std::optional<ChunkMeta>>>> asking;
  asking.reserve(chains.size());
  for (ChainId chain : chains) asking.push_back(last_chunk_of(chain, inode, deadline));
  auto all = when_all(std::move(asking));
  std::vector<Result<std::optional<ChunkMeta>>> answers = co_await std::move(all);
  std::optional<ChunkMeta> last;
  for (Result<std::optional<ChunkMeta>>& answer : answers) {
    if (!answer.ok()) co_return answer.status();
    if (*answer && (!last || (*answer)->chunk.index > last->chunk.index)) last = **answer;
  }
  co_return last;
}

Task<Result<std::optional<ChunkMeta>>> StorageClient::last_chunk_of(ChainId chain, uint64_t inode,
                                                                    TimePoint deadline) {
  RetryLoop retry(routing_, options_, deadline,
                  fmt::format("last chunk of inode {} on chain {}", inode, chain), retries_metric_,
                  timeouts_metric_);
  for (;;) {
    uint64_t used = routing_->version();
    RoutingClient::SnapshotPtr routing = routing_->current();
    Result<ClientRoute> route = client_detail::head_route(routing.get(), chain);
    Status failure;
    if (route.ok()) {
      LastChunkRequest request{
          .chain = chain, .chain_version = route->chain_version, .inode = inode};
      auto calling = client_detail::call_at<StorageService::last_chunk>(
          pool_, route->address, request, retry.attempt_deadline());
      Result<LastChunkResponse> response = co_await std::move(calling);
      if (response.ok()) co_return std::move(response->meta);
      failure = response.status();
    } else {
      failure = route.status();
    }
    Next next = client_detail::classify_update(failure.code());
    auto waiting = retry.after(std::move(failure), next, used, 1);
    Status again = co_await std::move(waiting);
    if (!again.ok()) co_return again;
  }
}

Task<Status> StorageClient::remove_from(std::vector<ChainId> chains, uint64_t inode,
                                        uint32_t first_index, TimePoint deadline) {
  deadline = call_deadline(deadline);
  std::vector<Task<Status>> removing;
  removing.reserve(chains.size());
  for (ChainId chain : chains)
    removing.push_back(remove_chain_from(chain, inode, first_index, deadline));
  auto all = when_all(std::move(removing));
  std::vector<Status> results = co_await std::move(all);
  for (Status& result : results) {
    if (!result.ok()) co_return std::move(result);
  }
  co_return Status();
}

Task<Status> StorageClient::remove_chain_from(ChainId chain, uint64_t inode, uint32_t first_index,
                                              TimePoint deadline) {
  // From the last chunk down, so a removal cut short leaves a file whose last chunk still
  // tells its length. Each round removes a chunk of a strictly lower index than the one
  // before, so the loop ends after at most (last index - first_index + 1) rounds.
  std::optional<uint32_t> removed;
  for (;;) {
    auto finding = last_chunk_of(chain, inode, deadline);
    Result<std::optional<ChunkMeta>> last = co_await std::move(finding);
    if (!last.ok()) co_return last.status();
    if (!*last || (*last)->chunk.index < first_index) co_return Status();
    uint32_t index = (*last)->chunk.index;
    if (removed && index >= *removed)
      co_return Status(StatusCode::kBusy,
                       fmt::format("chunk {}:{} on chain {} is back after its removal (a writer "
                                   "is still at work)",
                                   inode, index, chain));
    auto removing = remove(chain, ChunkRef{.inode = inode, .index = index}, deadline);
    Result<ChunkState> gone = co_await std::move(removing);
    if (!gone.ok()) co_return gone.status();
    removed = index;
  }
}

}  // namespace mica::craq
