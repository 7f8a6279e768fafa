// ReadPath (craq/storage_read.h): reads, the apportioned query, batch reads.
//
// Why a read is never stale or uncommitted: every member of a chain commits a version only
// after its successor answered for it, so the read tail (the last serving target) commits no
// later than any other serving replica, and what it has committed is what the chain has
// committed as far as readers can see. A replica without a pending version holds nothing
// newer than its committed version, so it serves that. A replica with a pending version asks
// the read tail and serves only the version the tail reports committed.
#include "craq/storage_read.h"

#include <algorithm>

#include "async/log.h"
#include "async/scope.h"

namespace mica::craq {

namespace {

chunk::ChunkId chunk_id(ChunkRef chunk) {
  return chunk::ChunkId{chunk.inode, chunk.index};
}

// True when the version a read served is still the one the chunk's record names (in either
// role), so the bytes read in between belong to it. Versions do not only grow — a removal
// and a re-creation start again at 1 — so the version alone could name another chunk's bytes
// (ABA): its length, checksum and the tag of the update that made it are compared too.
bool still_holds(const std::optional<chunk::ChunkInfo>& now, ReadChoice choice,
                 const chunk::ChunkInfo& before) {
  uint32_t version =
      choice == ReadChoice::kPending ? before.pending_version : before.committed_version;
  if (version == 0) return !now || now->committed_version == 0;  // a hole stays a hole
  if (!now) return false;
  if (choice == ReadChoice::kCommitted)
    return now->committed_version == version && now->length_bytes == before.length_bytes &&
           now->checksum == before.checksum && now->committed_tag == before.committed_tag;
  // Still the pending one: read_pending() reads whatever version is pending when it runs, so
  // once `version` has committed, the bytes may be those of the next update, pending by then.
  return now->pending_version == version && now->pending_checksum == before.pending_checksum &&
         now->pending_length_bytes == before.pending_length_bytes &&
         now->pending_tag == before.pending_tag;
}

}  // namespace

ReadPath::InFlight::InFlight(ReadPath* path) : path_(path) {
  ++path_->in_flight_;
}

ReadPath::InFlight::~InFlight() {
  MICA_ASSERT(path_->in_flight_ > 0);
  if (--path_->in_flight_ == 0 && path_->stopping_) path_->idle_.set();
}

ReadPath::ReadPath(StorageTargets* targets, net::ConnectionPool* pool, net::Transport* transport,
                   const StorageServerOptions* options)
    : targets_(targets), pool_(pool), transport_(transport), options_(options) {}

ReadPath::~ReadPath() {
  MICA_ASSERT_MSG(in_flight_ == 0, "ReadPath destroyed with reads in flight");
}

Task<void> ReadPath::stop() {
  stopping_ = true;
  while (in_flight_ > 0) {
    idle_.reset();
    Status s = co_await idle_.wait_uncancellable();
    MICA_ASSERT(s.ok());
  }
}

Status ReadPath::check_open() const {
  if (stopping_) return Status(StatusCode::kClosed, "the storage server is stopping");
  return Status();
}

Task<Result<ReadResponse>> ReadPath::read(ReadRequest request, net::CallContext* context) {
  InFlight counted(this);
  CO_TRY(check_open());
  auto reading = read_item(&request, context);
  co_return co_await std::move(reading);
}

Task<Result<ReadResponse>> ReadPath::read_item(const ReadRequest* request,
                                               net::CallContext* context) {
  if (request->length > request->out.length)
    co_return Status(
        StatusCode::kInvalidArgument,
        fmt::format("read of {} bytes into a buffer of {}", request->length, request->out.length));
  if (request->length > options_->read_bytes_max)
    co_return Status(StatusCode::kInvalidArgument,
                     fmt::format("read of {} bytes is over the limit of {}", request->length,
                                 options_->read_bytes_max));
  CO_TRY_ASSIGN(
      StorageTarget * target,
      targets_->for_request(request->chain, request->chain_version, {PublicState::kServing}));
  CO_TRY(check_guard());
  uint64_t end = uint64_t{request->offset} + request->length;
  if (end > target->engine().config().chunk_size_max_bytes)
    co_return Status(StatusCode::kOutOfRange,
                     fmt::format("bytes [{}, {}) lie past the chunk size limit {}", request->offset,
                                 end, target->engine().config().chunk_size_max_bytes));
  for (int attempt = 0; attempt < kReadAttemptsMax; ++attempt) {
    auto reading = read_once(target, request, context);
    CO_TRY_ASSIGN(std::optional<Served> served, co_await std::move(reading));
    if (!served) continue;  // the chunk changed while it was read
    auto pushing = push(request, context, &*served);
    CO_TRY(co_await std::move(pushing));
    ++target->counters().reads;
    target->counters().read_bytes += served->response.bytes;
    co_return served->response;
  }
  ++target->counters().dirty_reads;
  co_return Status(StatusCode::kDirty, fmt::format("chunk {} kept changing while it was read",
                                                   chunk_id(request->chunk)));
}

Task<Result<std::optional<ReadPath::Served>>> ReadPath::read_once(StorageTarget* target,
                                                                  const ReadRequest* request,
                                                                  net::CallContext* context) {
  // The view as the request was checked against it: routing may change while we suspend.
  ChainView view = target->view();
  CO_TRY_ASSIGN(std::optional<chunk::ChunkInfo> before, stat(target, request->chunk));
  if (!before) co_return Served{};  // no such chunk: a hole, 0 bytes of version 0
  bool removing = target->removing(*before).has_value();
  bool unsure = before->pending_version != 0 || removing;
  // The read tail needs no query: once nothing is left pending, its committed version is the
  // chain's (see the top of this file). What is pending there may have been committed by a
  // tail that failed since: it is finished first, then the chunk looked at again.
  if (unsure && view.read_tail == target->id()) {
    auto settling = settle_here(target, request->chunk, context->deadline);
    CO_TRY(co_await std::move(settling));
    co_return std::nullopt;
  }
  ReadChoice choice = ReadChoice::kCommitted;
  if (unsure) {
    auto querying = query_tail(target, view, request, context);
    CO_TRY_ASSIGN(ChunkState tail, co_await std::move(querying));
    choice = choose_read_version(*before, tail, removing);
    if (choice == ReadChoice::kRemoved) co_return Served{};  // the removal reached the tail
    if (choice == ReadChoice::kDirty) {
      ++target->counters().dirty_reads;
      co_return Status(
          StatusCode::kDirty,
          fmt::format("chunk {}: committed version {}, pending {}, the tail has committed {}",
                      chunk_id(request->chunk), before->committed_version, before->pending_version,
                      tail.version));
    }
  }
  Served served;
  if (choice == ReadChoice::kPending || before->committed_version != 0) {
    auto reading = read_bytes(target, request, choice, &served);
    Status read = co_await std::move(reading);
    if (read.code() == StatusCode::kNotFound) co_return std::nullopt;  // committed or removed
    if (!read.ok()) co_return read;
  }
  served.response.version =
      choice == ReadChoice::kPending ? before->pending_version : before->committed_version;
  CO_TRY_ASSIGN(std::optional<chunk::ChunkInfo> after, stat(target, request->chunk));
  if (!still_holds(after, choice, *before)) co_return std::nullopt;
  co_return std::move(served);
}

Task<Status> ReadPath::read_bytes(StorageTarget* target, const ReadRequest* request,
                                  ReadChoice choice, Served* served) {
  if (request->length == 0) co_return Status();
  // 4 KiB-aligned, so that an aligned read goes from the disk straight into it.
  served->data = buffers_.take(align_up(request->length, kDirectIoAlignment));
  std::span<std::byte> out(served->data.data(), request->length);
  chunk::ChunkId id = chunk_id(request->chunk);
  Result<chunk::ReadResult> result = Status(StatusCode::kInternal, "not read");
  if (choice == ReadChoice::kPending) {
    auto reading = target->engine().read_pending(id, request->offset, out);
    result = co_await std::move(reading);
  } else {
    auto reading = target->engine().read_with_crc(id, request->offset, out);
    result = co_await std::move(reading);
  }
  if (!result.ok()) {
    if (result.status().code() == StatusCode::kChecksumMismatch)
      co_return corrupt(target, request->chunk, result.status());
    co_return result.status();
  }
  served->response.bytes = static_cast<uint32_t>(result->bytes);
  served->response.crc = result->crc;
  co_return Status();
}

Task<Status> ReadPath::settle_here(StorageTarget* target, ChunkRef chunk, TimePoint deadline) {
  Status settled(StatusCode::kDirty, "no settle function");
  if (settle) {
    auto settling = settle(target, chunk, deadline);
    settled = co_await std::move(settling);
  }
  if (settled.ok()) co_return settled;
  ++target->counters().dirty_reads;
  co_return Status(StatusCode::kDirty,
                   fmt::format("target {}: chunk {} holds a leftover the read tail could not "
                               "finish: {}",
                               target->id(), chunk_id(chunk), settled));
}

Task<Result<ChunkState>> ReadPath::query_tail(StorageTarget* target, ChainView view,
                                              const ReadRequest* request,
                                              net::CallContext* context) {
  ++target->counters().version_queries;
  TimePoint deadline = std::min(context->deadline, deadline_after(options_->query_timeout));
  Result<SocketAddress> address = SocketAddress::parse(view.read_tail_address);
  if (!address.ok())
    co_return Status(StatusCode::kDirty, fmt::format("the read tail's address '{}': {}",
                                                     view.read_tail_address, address.status()));
  auto connecting = pool_->get(*address, deadline);
  Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(connecting);
  Status failed = client.status();
  if (client.ok()) {
    QueryVersionRequest query{request->chain, request->chain_version, request->chunk};
    auto calling = (*client)->call<StorageService::query_version>(query, {deadline});
    Result<QueryVersionResponse> answer = co_await std::move(calling);
    if (answer.ok()) co_return answer->state;
    failed = std::move(answer).status();
  }
  // A tail on another chain version means ours is out of date too: the client refreshes.
  if (failed.code() == StatusCode::kStaleChain) co_return failed;
  // Anything else leaves the replica unable to tell what is committed: the client retries,
  // perhaps at the tail itself.
  ++target->counters().dirty_reads;
  co_return Status(StatusCode::kDirty,
                   fmt::format("apportioned query of chunk {} to target {} failed: {}",
                               chunk_id(request->chunk), view.read_tail, failed));
}

Task<Status> ReadPath::push(const ReadRequest* request, net::CallContext* context,
                            const Served* served) {
  if (served->response.bytes == 0) co_return Status();
  net::RemoteBuffer out = request->out;
  out.length = served->response.bytes;
  std::span<const std::byte> bytes(served->data.data(), served->response.bytes);
  auto writing = context->connection->write_to(out, bytes, context->deadline);
  co_return co_await std::move(writing);
}

Task<Result<BatchReadResponse>> ReadPath::batch_read(BatchReadRequest request,
                                                     net::CallContext* context) {
  InFlight counted(this);
  CO_TRY(check_open());
  if (request.items.size() > options_->batch_read_items_max)
    co_return Status(StatusCode::kInvalidArgument,
                     fmt::format("batch of {} reads is over the limit of {}", request.items.size(),
                                 options_->batch_read_items_max));
  uint64_t total_bytes = 0;
  for (const ReadRequest& item : request.items) total_bytes += item.length;
  if (total_bytes > options_->read_bytes_max)
    co_return Status(StatusCode::kInvalidArgument,
                     fmt::format("batch of {} bytes is over the limit of {}", total_bytes,
                                 options_->read_bytes_max));
  BatchState state;
  state.request = &request;
  state.context = context;
  state.results.resize(request.items.size());
  std::vector<Task<void>> workers;
  size_t worker_count = std::min(kBatchReadConcurrencyMax, request.items.size());
  for (size_t i = 0; i < worker_count; ++i) workers.push_back(batch_worker(&state));
  auto running = when_all(std::move(workers));
  co_await std::move(running);
  BatchReadResponse response;
  response.items = std::move(state.results);
  co_return response;
}

Task<void> ReadPath::batch_worker(BatchState* state) {
  while (state->next < state->request->items.size()) {
    size_t i = state->next++;
    auto reading = read_item(&state->request->items[i], state->context);
    Result<ReadResponse> result = co_await std::move(reading);
    if (result.ok())
      state->results[i].read = *result;
    else
      state->results[i].status = result.status();
  }
}

Task<Result<QueryVersionResponse>> ReadPath::query_version(QueryVersionRequest request,
                                                           net::CallContext* context) {
  (void)context;
  InFlight counted(this);
  CO_TRY(check_open());
  CO_TRY_ASSIGN(StorageTarget * target, targets_->for_request(request.chain, request.chain_version,
                                                              {PublicState::kServing}));
  CO_TRY(check_guard());
  // Only the read tail knows what the chain has committed; with equal chain versions the
  // asker and this target agree on who that is, so this is a guard against a bug.
  if (target->view().read_tail != target->id())
    co_return Status(
        StatusCode::kNotServing,
        fmt::format("target {} is not the read tail of chain {}", target->id(), request.chain));
  CO_TRY_ASSIGN(std::optional<chunk::ChunkInfo> info, stat(target, request.chunk));
  // A pending version (or a removal passed down) here is an update in flight to a syncing
  // successor or a leftover of a failure, which the tail that failed may have committed and
  // shown to readers: settled first (the update in flight finishes, a leftover is completed
  // through the chain), so that the committed state answered is the chain's.
  if (info && (info->pending_version != 0 || target->removing(*info))) {
    TimePoint deadline = context != nullptr ? context->deadline : kNoDeadline;
    auto settling = settle_here(target, request.chunk, deadline);
    CO_TRY(co_await std::move(settling));
    CO_TRY_ASSIGN(info, stat(target, request.chunk));
    if (info && (info->pending_version != 0 || target->removing(*info)))
      co_return Status(StatusCode::kDirty, fmt::format("target {}: chunk {} is being updated",
                                                       target->id(), chunk_id(request.chunk)));
  }
  QueryVersionResponse response;
  if (info) response.state = {info->committed_version, info->length_bytes, info->checksum};
  co_return response;
}

Result<std::optional<chunk::ChunkInfo>> ReadPath::stat(StorageTarget* target, ChunkRef chunk) {
  Result<chunk::ChunkInfo> info = target->engine().stat(chunk_id(chunk));
  if (info.ok()) return std::optional<chunk::ChunkInfo>(*info);
  if (info.status().code() == StatusCode::kNotFound) return std::optional<chunk::ChunkInfo>();
  if (info.status().code() == StatusCode::kCorruption) return corrupt(target, chunk, info.status());
  return info.status();
}

Status ReadPath::corrupt(StorageTarget* target, ChunkRef chunk, const Status& why) {
  MICA_LOG(Warn, "craq", "target {}: chunk {} is damaged on disk ({}); repairing it from the chain",
           target->id(), chunk_id(chunk), why);
  if (on_corrupt) on_corrupt(target, chunk);
  // kChecksumMismatch whatever the engine said (damaged data or record): the client reads
  // another replica meanwhile.
  return Status(StatusCode::kChecksumMismatch,
                fmt::format("target {}: chunk {}: {}", target->id(), chunk_id(chunk), why));
}

}  // namespace mica::craq
