#include "craq/storage_client_retry.h"

#include <algorithm>
#include <functional>

#include "async/crc32c.h"
#include "async/log.h"

namespace mica::craq::client_detail {

namespace {

// Serving targets come first in chain order (craq/types.h).
size_t serving_count(const ChainInfo& chain) {
  size_t n = 0;
  while (n < chain.targets.size() && chain.targets[n].state == PublicState::kServing) ++n;
  return n;
}

Result<const ChainInfo*> chain_of(const RoutingSnapshot* routing, ChainId chain) {
  if (routing == nullptr) return Status(StatusCode::kNotServing, "no routing snapshot yet");
  const ChainInfo* info = find_chain(*routing, chain);
  if (info == nullptr)
    return Status(StatusCode::kNotFound,
                  fmt::format("chain {} is not in routing version {}", chain, routing->version));
  return info;
}

Result<ClientRoute> route_to(const RoutingSnapshot& routing, const ChainInfo& chain, size_t index,
                             size_t replicas) {
  TargetId target = chain.targets[index].target;
  const TargetInfo* info = find_target(routing, target);
  const NodeInfo* node = info == nullptr ? nullptr : find_node(routing, info->node);
  // A target or node missing from a snapshot that names it, or an address that does not
  // parse, is a routing problem: unreachable until routing says better.
  if (node == nullptr)
    return Status(StatusCode::kUnreachable,
                  fmt::format("target {} of chain {} has no node in routing version {}", target,
                              chain.id, routing.version));
  Result<SocketAddress> address = SocketAddress::parse(node->rpc_address);
  if (!address.ok())
    return Status(StatusCode::kUnreachable,
                  fmt::format("node {} has no usable address '{}'", node->id, node->rpc_address));
  return ClientRoute{.target = target,
                     .node = node->id,
                     .address = *address,
                     .chain_version = chain.version,
                     .replicas = replicas};
}

}  // namespace

Result<ClientRoute> head_route(const RoutingSnapshot* routing, ChainId chain) {
  Result<const ChainInfo*> info = chain_of(routing, chain);
  if (!info.ok()) return info.status();
  size_t serving = serving_count(**info);
  if (serving == 0)
    return Status(
        StatusCode::kNotServing,
        fmt::format("chain {} has no serving target at version {}", chain, (*info)->version));
  return route_to(*routing, **info, 0, serving);
}

Result<ClientRoute> replica_route(const RoutingSnapshot* routing, ChainId chain, uint64_t turn) {
  Result<const ChainInfo*> info = chain_of(routing, chain);
  if (!info.ok()) return info.status();
  size_t serving = serving_count(**info);
  if (serving == 0)
    return Status(
        StatusCode::kNotServing,
        fmt::format("chain {} has no serving target at version {}", chain, (*info)->version));
  return route_to(*routing, **info, static_cast<size_t>(turn % serving), serving);
}

Next classify_update(StatusCode code) {
  switch (code) {
    case StatusCode::kStaleChain:
    case StatusCode::kNotHead:
    case StatusCode::kNotServing:
    case StatusCode::kNotFound:  // a chain routing does not know (yet): refreshed once
      return Next::kRefresh;
    case StatusCode::kBusy:
    case StatusCode::kDirty:
      return Next::kBackoff;
    default:
      return is_transport_failure(code) ? Next::kBackoff : Next::kFail;
  }
}

bool unanswered(StatusCode code) {
  return code == StatusCode::kCancelled || code == StatusCode::kTimedOut ||
         code == StatusCode::kConnectionReset || code == StatusCode::kClosed;
}

Next classify_read(StatusCode code) {
  switch (code) {
    case StatusCode::kStaleChain:
    case StatusCode::kNotServing:
    case StatusCode::kNotFound:
      return Next::kRefresh;
    // The replica's own trouble (rot it is repairing, a pending version, its disk, its
    // load): another replica may serve the read now.
    case StatusCode::kChecksumMismatch:
    case StatusCode::kDirty:
    case StatusCode::kIoError:
    case StatusCode::kCorruption:
    case StatusCode::kBusy:
    case StatusCode::kProtocolError:  // an answer that does not fit what was asked
      return Next::kOtherReplica;
    default:
      return is_transport_failure(code) ? Next::kOtherReplica : Next::kFail;
  }
}

RetryLoop::RetryLoop(RoutingClient* routing, const StorageClientOptions& options,
                     TimePoint deadline, std::string what, Counter* retries, Counter* timeouts)
    : routing_(routing),
      options_(options),
      deadline_(deadline),
      what_(std::move(what)),
      retries_(retries),
      timeouts_(timeouts) {}

TimePoint RetryLoop::attempt_deadline() const {
  TimePoint now = Executor::current()->now();
  if (deadline_ - now <= options_.attempt_timeout) return deadline_;
  return now + options_.attempt_timeout;
}

Status RetryLoop::timed_out() {
  timeouts_->add();
  return Status(StatusCode::kTimedOut,
                fmt::format("{}: deadline passed after {} attempts; last: {}", what_, attempts_,
                            last_.to_string()));
}

Task<Status> RetryLoop::after(Status failure, Next next, uint64_t used_version, size_t replicas) {
  ++attempts_;
  if (failure.code() == StatusCode::kNotFound) {
    // An unknown chain is worth one refresh (a table created after our snapshot), no more.
    if (unknown_chain_seen_) next = Next::kFail;
    unknown_chain_seen_ = true;
  }
  if (next == Next::kFail) co_return failure;
  MICA_LOG(Debug, "craq", "{}: attempt {} failed ({}); retrying", what_, attempts_,
           failure.to_string());
  last_ = std::move(failure);
  retries_->add();
  TimePoint now = Executor::current()->now();
  if (now >= deadline_) co_return timed_out();
  if (next == Next::kOtherReplica) {
    if (++tried_in_round_ < replicas) co_return Status();
    tried_in_round_ = 0;  // every replica failed once: wait before the next round
  }
  if (next == Next::kRefresh) {
    // One fetch of what mgmtd has now (shared with concurrent callers); when it brings a
    // newer snapshot, retry at once. Otherwise mgmtd knows no better yet (the target is
    // behind, or the chain has nobody serving): back off as for any transient failure.
    TimePoint until = std::min(deadline_, now + options_.attempt_timeout);
    auto refreshing = routing_->refresh(0, until);
    Result<RoutingClient::SnapshotPtr> refreshed = co_await std::move(refreshing);
    if (!refreshed.ok() && refreshed.status().code() == StatusCode::kCancelled)
      co_return refreshed.status();
    if (routing_->version() > used_version) co_return Status();
  }
  auto pausing = pause();
  co_return co_await std::move(pausing);
}

Task<Status> RetryLoop::pause() {
  backoff_ = backoff_ == Duration(0) ? options_.backoff_initial
                                     : std::min(backoff_ * 2, options_.backoff_max);
  TimePoint until = std::min(deadline_, Executor::current()->now() + backoff_);
  SleepAwaiter sleeping = sleep_until(until);
  Status slept = co_await sleeping;
  if (!slept.ok()) co_return slept;
  if (Executor::current()->now() >= deadline_) co_return timed_out();
  co_return Status();
}

Result<Registered> register_span(net::Transport* transport, std::span<std::byte> bytes) {
  Registered registered;
  if (bytes.empty()) return registered;
  if (bytes.size() > UINT32_MAX)
    return Status(StatusCode::kInvalidArgument, "a buffer of 4 GiB or more");
  Result<std::unique_ptr<net::MemoryRegion>> region = transport->register_memory(bytes);
  if (!region.ok()) return region.status();
  registered.region = std::move(*region);
  registered.remote = registered.region->remote(0, static_cast<uint32_t>(bytes.size()));
  return registered;
}

bool region_covers(net::MemoryRegion* region, std::span<const std::byte> bytes) {
  if (region == nullptr || bytes.empty()) return false;
  std::span<std::byte> held = region->bytes();
  std::less_equal<> le;
  return le(held.data(), bytes.data()) &&
         le(bytes.data() + bytes.size(), held.data() + held.size()) && bytes.size() <= UINT32_MAX;
}

Result<Registered> register_or_use(net::Transport* transport, std::span<std::byte> bytes,
                                   net::MemoryRegion* region) {
  if (!region_covers(region, bytes)) return register_span(transport, bytes);
  Registered registered;
  auto offset = static_cast<uint64_t>(bytes.data() - region->bytes().data());
  registered.remote = region->remote(offset, static_cast<uint32_t>(bytes.size()));
  return registered;
}

Task<void> release(std::unique_ptr<net::MemoryRegion> region, TimePoint deadline) {
  if (!region) co_return;
  Task<void> deregistering = region->deregister(deadline);
  co_await std::move(deregistering);
}

Status check_read(const ReadResponse& response, std::span<const std::byte> out, ChainId chain,
                  ChunkRef chunk) {
  if (response.bytes > out.size())
    return Status(StatusCode::kProtocolError,
                  fmt::format("read of chunk {}:{} on chain {}: {} bytes answered, {} asked",
                              chunk.inode, chunk.index, chain, response.bytes, out.size()));
  uint32_t crc = crc32c(out.first(response.bytes));
  if (crc != response.crc)
    return Status(StatusCode::kChecksumMismatch,
                  fmt::format("read of chunk {}:{} on chain {}: CRC {:08x} of the {} bytes "
                              "received, {:08x} sent",
                              chunk.inode, chunk.index, chain, crc, response.bytes, response.crc));
  return Status();
}

}  // namespace mica::craq::client_detail
