// The storage client's internals shared by its two sources (storage_client.cc: single calls
// and the metadata service's helpers; storage_client_batch.cc: batch calls): where a request
// goes (ClientRoute, from a routing snapshot), what a failure means for the next attempt
// (classify_update, classify_read) and the retry loop of one call (RetryLoop: backoff,
// routing refresh, the call's deadline). Not part of the client's interface.
//
// Thread rule: as the StorageClient — everything runs on its executor; RetryLoop::after()
// and call_at() suspend, the rest does not.
#pragma once

#include <memory>
#include <string>

#include "async/metrics.h"
#include "async/time.h"
#include "craq/storage_client.h"

namespace mica::craq::client_detail {

// A target to send one request to, as the snapshot held says.
struct ClientRoute {
  TargetId target = 0;
  NodeId node = 0;
  SocketAddress address;
  uint64_t chain_version = 0;
  size_t replicas = 1;  // serving targets of the chain (reads move on among them)
};

// The chain's head (its first serving target), for updates and the head's metadata.
Result<ClientRoute> head_route(const RoutingSnapshot* routing, ChainId chain);
// A serving replica of the chain: the turn-th one, counted round the serving targets.
Result<ClientRoute> replica_route(const RoutingSnapshot* routing, ChainId chain, uint64_t turn);

// What a failed attempt calls for.
enum class Next : uint8_t {
  kFail,          // return the failure to the caller now
  kRefresh,       // routing is old: refresh it, then retry (backing off if nothing changed)
  kBackoff,       // transient: wait, then retry the same target
  kOtherReplica,  // this replica cannot serve it now: try the next one (back off after all)
};
Next classify_update(StatusCode code);
Next classify_read(StatusCode code);

// The retry state of one call: attempts, the backoff, the deadline and the last failure.
class RetryLoop {
 public:
  // retries, timeouts: counted at every retry and at a call's end by its deadline.
  RetryLoop(RoutingClient* routing, const StorageClientOptions& options, TimePoint deadline,
            std::string what, Counter* retries, Counter* timeouts);

  TimePoint deadline() const { return deadline_; }
  // One attempt's deadline: attempt_timeout from now, within the call's deadline.
  TimePoint attempt_deadline() const;
  uint32_t attempts() const { return attempts_; }

  // After a failed attempt made with routing version used_version: does what next says
  // (refresh, back off, move on) and returns ok to try again, or the status to return (the
  // failure itself when it is final, kTimedOut naming the last failure once the deadline
  // has passed, the caller's cancellation). replicas: the serving replicas the attempt
  // could choose from (reads).
  Task<Status> after(Status failure, Next next, uint64_t used_version, size_t replicas);

 private:
  Task<Status> pause();
  Status timed_out();

  RoutingClient* routing_;
  const StorageClientOptions& options_;
  TimePoint deadline_;
  std::string what_;
  uint32_t attempts_ = 0;
  size_t tried_in_round_ = 0;  // replicas tried since the last backoff
  Duration backoff_{0};
  bool unknown_chain_seen_ = false;
  Counter* retries_;
  Counter* timeouts_;
  Status last_;
};

// One RPC of method M to address, within deadline (connecting included).
template <net::RpcMethod auto M>
Task<Result<net::ResponseOf<M>>> call_at(net::ConnectionPool* pool, SocketAddress address,
                                         net::RequestOf<M> request, TimePoint deadline) {
  auto getting = pool->get(address, deadline);
  Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(getting);
  if (!client.ok()) co_return client.status();
  net::CallOptions options{.deadline = deadline};
  auto calling = (*client)->template call<M>(std::move(request), options);
  co_return co_await std::move(calling);
}

// Whether a call that failed with code may have left the server at work on it (no answer
// came: the attempt's deadline, a cancellation, or the connection failing under it), so a
// one-sided transfer the request allowed may still be on its way.
bool unanswered(StatusCode code);

// call_at for a request naming a region that outlives the attempt (the caller's own
// registration): when no answer came, the connection is closed, and the call returns only
// once the connection's reader has stopped, so the server's late one-sided write for this
// attempt can no longer land in the region (TCP serves those writes only in the reader;
// RDMA's queue pair is in ERR, which drops them). Other calls on the connection fail with a
// retryable kClosed; the pool connects afresh. The fence of docs/craq.md ("Storage client").
template <net::RpcMethod auto M>
Task<Result<net::ResponseOf<M>>> call_fenced_at(net::ConnectionPool* pool, SocketAddress address,
                                                net::RequestOf<M> request, TimePoint deadline) {
  auto getting = pool->get(address, deadline);
  Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(getting);
  if (!client.ok()) co_return client.status();
  net::CallOptions options{.deadline = deadline};
  auto calling = (*client)->template call<M>(std::move(request), options);
  Result<net::ResponseOf<M>> response = co_await std::move(calling);
  if (!response.ok() && unanswered(response.status().code())) {
    auto closing = (*client)->close();
    co_await std::move(closing);
  }
  co_return response;
}

// The caller's buffer, registered with the transport for a server's one-sided transfer.
// An empty span registers nothing (remote stays empty).
struct Registered {
  std::unique_ptr<net::MemoryRegion> region;
  net::RemoteBuffer remote;
};
Result<Registered> register_span(net::Transport* transport, std::span<std::byte> bytes);
// The caller's region when it covers bytes (nothing registered, nothing to release);
// otherwise register_span().
Result<Registered> register_or_use(net::Transport* transport, std::span<std::byte> bytes,
                                   net::MemoryRegion* region);
// Whether region (may be null) holds every byte of bytes.
bool region_covers(net::MemoryRegion* region, std::span<const std::byte> bytes);
// Ends peers' access to a registered buffer (waiting for their transfers, failing those
// still running at deadline) and destroys the region; nothing when there is none.
Task<void> release(std::unique_ptr<net::MemoryRegion> region, TimePoint deadline);

// Checks a read's answer against the buffer it was pushed into: no more bytes than asked
// and the CRC32C the replica computed over them.
Status check_read(const ReadResponse& response, std::span<const std::byte> out, ChainId chain,
                  ChunkRef chunk);

}  // namespace mica::craq::client_detail
