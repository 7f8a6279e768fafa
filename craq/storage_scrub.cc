// Scrub: one loop per target reading every committed chunk at scrub_bytes_per_s (the engine
// checks each block's CRC), and the repair of a chunk whose bytes failed their CRC from
// another serving member of the chain (docs/craq.md).
#include "craq/storage_scrub.h"

#include <algorithm>

#include "async/crc32c.h"
#include "async/file.h"
#include "async/log.h"

namespace mica::craq {

namespace {

// Rounds over the peers before a repair gives up (a peer with the chunk pending or a newer
// version mid-commit is asked again after kRepairRetryPause).
constexpr uint32_t kRepairRoundsMax = 4;
constexpr Duration kRepairRetryPause = std::chrono::milliseconds(100);
constexpr Duration kRepairCallTimeout = std::chrono::seconds(10);
// Pause before a pass that failed (engine error) is started again.
constexpr Duration kPassRetryPause = std::chrono::seconds(1);

chunk::ChunkId id_of(ChunkRef chunk) {
  return {chunk.inode, chunk.index};
}

}  // namespace

Scrub::Scrub(StorageTargets* targets, net::ConnectionPool* pool, net::Transport* transport,
             const StorageServerOptions* options)
    : targets_(targets),
      pool_(pool),
      transport_(transport),
      options_(options),
      limiter_(options->scrub_bytes_per_s) {}

Scrub::~Scrub() {
  MICA_ASSERT_MSG(scope_.active() == 0, "Scrub destroyed while running (stop() first)");
}

void Scrub::start() {
  MICA_ASSERT_MSG(!started_, "Scrub started twice");
  started_ = true;
  for (const auto& target : targets_->all()) counts_[target.get()];
  if (options_->scrub_bytes_per_s == 0) return;  // scrub off (repairs still run)
  for (const auto& target : targets_->all()) scope_.spawn(scrub_loop(target.get()));
}

Task<void> Scrub::stop() {
  stopped_ = true;
  scope_.cancel();
  co_await scope_.join();
}

void Scrub::repair(StorageTarget* target, ChunkRef chunk) {
  if (stopped_) return;
  if (!repairing_.insert({target, chunk}).second) return;  // already being repaired
  scope_.spawn(run_repair(this, target, chunk));
}

Task<void> Scrub::run_repair(Scrub* self, StorageTarget* target, ChunkRef chunk) {
  auto repairing = self->repair_chunk(target, chunk);
  Status repaired = co_await std::move(repairing);
  (void)repaired;  // logged and acted on by repair_chunk
  self->repairing_.erase({target, chunk});
}

void Scrub::fill_progress(TargetProgress* progress) const {
  for (const auto& [target, counts] : counts_) {
    if (target->id() != progress->target) continue;
    progress->scrub_passes = counts.passes;
    progress->scrub_chunks_checked = counts.checked;
    progress->scrub_corrupt_found = counts.corrupt;
  }
}

Task<void> Scrub::scrub_loop(StorageTarget* target) {
  CancelToken token = co_await current_token();
  while (!token.cancelled()) {
    auto passing = scrub_pass(target);
    Status passed = co_await std::move(passing);
    if (token.cancelled()) co_return;
    Duration pause = options_->scrub_pass_interval;
    if (passed.ok()) {
      ++counts_[target].passes;
    } else {
      MICA_LOG(Warn, "craq", "target {}: scrub pass failed: {}", target->id(), passed.to_string());
      pause = std::min(pause, kPassRetryPause);
    }
    SleepAwaiter waiting = sleep_for(pause);
    Status waited = co_await waiting;
    if (!waited.ok()) co_return;
  }
}

Task<Status> Scrub::scrub_pass(StorageTarget* target) {
  chunk::ChunkEngine& engine = target->engine();
  uint32_t limit = engine.config().list_batch_max;
  std::optional<chunk::ChunkId> after;
  for (;;) {
    CO_TRY_ASSIGN(std::vector<chunk::ChunkInfo> page, engine.list(after, limit));
    for (const chunk::ChunkInfo& info : page) {
      if (info.damaged || info.committed_version == 0) continue;
      auto checking = check_chunk(target, info);
      CO_TRY(co_await std::move(checking));
    }
    if (page.size() < limit) co_return Status();
    after = page.back().id;
  }
}

Task<Status> Scrub::check_chunk(StorageTarget* target, chunk::ChunkInfo info) {
  uint32_t length = info.length_bytes;
  TimePoint now = Executor::current()->now();
  TimePoint start = limiter_.reserve(length, now);
  if (start > now) {
    SleepAwaiter pacing = sleep_until(start);
    CO_TRY(co_await pacing);
  }
  if (length == 0) co_return Status();  // no block to check
  AlignedBuffer buffer(align_up(length, chunk::kBlockBytes));
  auto reading = target->engine().read_with_crc(info.id, 0, std::span(buffer.data(), length));
  Result<chunk::ReadResult> read = co_await std::move(reading);
  ++counts_[target].checked;
  if (read.ok() || read.status().code() == StatusCode::kNotFound) co_return Status();
  if (read.status().code() != StatusCode::kChecksumMismatch) co_return read.status();
  ++counts_[target].corrupt;
  ChunkRef chunk{.inode = info.id.inode, .index = info.id.index};
  MICA_LOG(Warn, "craq", "target {}: scrub found chunk {}:{} corrupt; repairing it from its chain",
           target->id(), chunk.inode, chunk.index);
  if (repairing_.insert({target, chunk}).second) {
    auto repairing = repair_chunk(target, chunk);
    Status repaired = co_await std::move(repairing);
    repairing_.erase({target, chunk});
    (void)repaired;  // logged and acted on by repair_chunk
  }
  co_return Status();
}

std::vector<std::string> Scrub::peer_addresses(const StorageTarget* target) const {
  std::vector<std::string> addresses;
  const RoutingSnapshot& routing = targets_->routing();
  const ChainInfo* chain = find_chain(routing, target->view().chain);
  if (chain == nullptr) return addresses;
  for (const ChainTarget& member : chain->targets) {
    if (member.state != PublicState::kServing || member.target == target->id()) continue;
    const TargetInfo* info = find_target(routing, member.target);
    const NodeInfo* node = info != nullptr ? find_node(routing, info->node) : nullptr;
    if (node != nullptr && !node->rpc_address.empty()) addresses.push_back(node->rpc_address);
  }
  return addresses;
}

Task<Status> Scrub::repair_chunk(StorageTarget* target, ChunkRef chunk) {
  CancelToken token = co_await current_token();
  Status last(StatusCode::kNotFound, "no serving peer holds the chunk's committed version");
  for (uint32_t round = 0; round < kRepairRoundsMax && !token.cancelled(); ++round) {
    if (round > 0) {
      SleepAwaiter pause = sleep_for(kRepairRetryPause);
      CO_TRY(co_await pause);
    }
    auto repairing = repair_once(target, chunk);
    last = co_await std::move(repairing);
    if (last.ok()) {
      ++counts_[target].repaired;
      target->mark_repaired(id_of(chunk));
      MICA_LOG(Info, "craq", "target {}: chunk {}:{} repaired from its chain", target->id(),
               chunk.inode, chunk.index);
      co_return Status();
    }
    if (last.code() != StatusCode::kBusy) break;  // kBusy: try again after the pause
  }
  if (token.cancelled()) co_return Status(StatusCode::kCancelled);
  // Never serve the rot, and stop taking writes on top of it: mgmtd takes the target out.
  MICA_LOG(Error, "craq",
           "target {}: chunk {}:{} is corrupt and could not be repaired ({}); "
           "reporting the target offline",
           target->id(), chunk.inode, chunk.index, last.to_string());
  target->mark_unrepairable(id_of(chunk));
  co_return last;
}

Task<Status> Scrub::repair_once(StorageTarget* target, ChunkRef chunk) {
  chunk::ChunkId id = id_of(chunk);
  // No update of the chunk passes this target while it is replaced under it.
  auto locking = target->chunk_order().lock(id);
  CO_TRY_ASSIGN(chunk::ChunkLocks::Guard order, co_await std::move(locking));
  Result<chunk::ChunkInfo> info = target->engine().stat(id);
  if (!info.ok() && info.status().code() == StatusCode::kNotFound) co_return Status();
  CO_TRY(info.status());
  if (info->committed_version == 0) co_return Status();  // nothing committed to repair
  // An update in flight: replacing would drop its pending version. Wait for it to end.
  if (info->pending_version != 0) co_return Status(StatusCode::kBusy, "update in flight");
  if (info->length_bytes > 0) {
    // Another repair (a reader's, or an update's new version) may have fixed it meanwhile.
    AlignedBuffer probe(align_up(info->length_bytes, chunk::kBlockBytes));
    auto reading =
        target->engine().read_with_crc(id, 0, std::span(probe.data(), info->length_bytes));
    Result<chunk::ReadResult> read = co_await std::move(reading);
    if (read.ok()) co_return Status();
    if (read.status().code() != StatusCode::kChecksumMismatch) co_return read.status();
  }
  bool busy = false;
  for (const std::string& address : peer_addresses(target)) {
    auto fetching = repair_from(target, *info, address);
    Result<bool> fetched = co_await std::move(fetching);
    if (fetched.ok() && *fetched) co_return Status();
    if (fetched.ok()) {
      busy = true;
      continue;
    }
    MICA_LOG(Info, "craq", "target {}: repair of chunk {}:{} from {} failed: {}", target->id(),
             chunk.inode, chunk.index, address, fetched.status().to_string());
  }
  if (busy) co_return Status(StatusCode::kBusy, "no peer had the same committed version yet");
  co_return Status(StatusCode::kNotFound, "no serving peer could give the chunk");
}

Task<Result<bool>> Scrub::repair_from(StorageTarget* target, chunk::ChunkInfo info,
                                      std::string address) {
  uint32_t length = info.length_bytes;
  AlignedBuffer buffer(align_up(std::max<uint32_t>(length, 1), chunk::kBlockBytes));
  CO_TRY_ASSIGN(std::unique_ptr<net::MemoryRegion> region,
                transport_->register_memory(buffer.span()));
  const ChainView& view = target->view();
  ReadRequest request{.chain = view.chain,
                      .chain_version = view.version,
                      .chunk = ChunkRef{.inode = info.id.inode, .index = info.id.index},
                      .offset = 0,
                      .length = length,
                      .out = region->remote(0, length)};
  TimePoint deadline = Executor::current()->now() + kRepairCallTimeout;
  auto reading = read_peer(std::move(address), request, deadline);
  Result<ReadResponse> read = co_await std::move(reading);
  // The peer may still be pushing when the call failed: it ends before the memory does.
  co_await region->deregister(deadline);
  region.reset();
  if (!read.ok()) {
    StatusCode code = read.status().code();
    if (code == StatusCode::kDirty || code == StatusCode::kStaleChain) co_return false;
    co_return read.status();
  }
  std::span<std::byte> data(buffer.data(), length);
  // Exactly the version the record names, whole and intact, or nothing.
  if (read->version != info.committed_version || read->bytes != length ||
      read->crc != info.checksum || crc32c(data) != info.checksum)
    co_return false;
  chunk::UpdateVersion version{.version = info.committed_version,
                               .chain_version = info.chain_version,
                               .tag = info.committed_tag};
  auto replacing = target->engine().replace(info.id, data, info.checksum, version);
  CO_TRY(co_await std::move(replacing));
  co_return true;
}

Task<Result<ReadResponse>> Scrub::read_peer(std::string address, ReadRequest request,
                                            TimePoint deadline) {
  CO_TRY_ASSIGN(SocketAddress peer, SocketAddress::parse(address));
  auto getting = pool_->get(peer, deadline);
  CO_TRY_ASSIGN(std::shared_ptr<net::RpcClient> client, co_await std::move(getting));
  auto calling =
      client->call<StorageService::read>(request, net::CallOptions{.deadline = deadline});
  co_return co_await std::move(calling);
}

}  // namespace mica::craq
