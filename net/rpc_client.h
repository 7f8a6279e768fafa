// RpcClient: calls over one connection; ConnectionPool: one client per peer, reconnected
// with exponential backoff.
//
// `co_await client.call<StorageService::write>(request, options)` sends the request of a
// declared method (net/rpc_service.h, net/service_def.h: the descriptor gives the service
// and method ids and both message types, so neither can be mixed up) and waits for its
// response or the deadline (default_timeout when the call names none). A declared service's
// Stub wraps the same call in named methods. Many calls share the connection at once,
// paired with responses by request id; at most in_flight_max are outstanding (later calls
// wait for a slot, within their deadline). The deadline travels with the request as a time
// budget, so the server stops working on it too; a caller that gives up (deadline or
// cancellation) also sends a cancel frame. When the connection fails, every waiting call
// fails at once with kConnectionReset — retryable: ask the pool for a fresh client. Thread
// rule: a client and a pool belong to the executor that made them.
#pragma once

#include <map>
#include <memory>

#include "async/scope.h"
#include "net/rpc_service.h"

namespace mica::net {

struct CallOptions {
  TimePoint deadline = kNoDeadline;  // none: the client's default_timeout applies
};

struct RpcClientOptions {
  uint32_t in_flight_max = 1024;
  // Every call has a deadline: calls that name none get this much time.
  Duration default_timeout = std::chrono::seconds(30);
};

class RpcClient {
 public:
  // Connects and starts the response reader.
  static Task<Result<std::shared_ptr<RpcClient>>> connect(Transport* transport,
                                                          SocketAddress address, TimePoint deadline,
                                                          RpcClientOptions options = {});
  RpcClient(const RpcClient&) = delete;
  RpcClient& operator=(const RpcClient&) = delete;
  ~RpcClient();

  // Calls declared method M; its request and response types are M's, never spelled here.
  template <RpcMethod auto M>
  Task<Result<ResponseOf<M>>> call(RequestOf<M> request, CallOptions options) {
    auto raw = call_raw(decltype(M)::kService, decltype(M)::kId, encode(request), options);
    Result<std::vector<std::byte>> bytes = co_await std::move(raw);
    if (!bytes.ok()) co_return bytes.status();
    co_return decode<ResponseOf<M>>(*bytes);
  }

  // Untyped: for tests and tools that must send what no declaration allows (unknown ids,
  // undecodable bodies). Services are called through call<M> or their Stub.
  Task<Result<std::vector<std::byte>>> call_raw(ServiceId service, MethodId method,
                                                std::vector<std::byte> request,
                                                CallOptions options);

  Task<Result<PingResponse>> ping(uint64_t nonce, CallOptions options);

  // False once the connection has failed; the client never recovers (use the pool).
  bool healthy() const { return failed_.ok() && !closed_; }
  Connection& connection() { return *connection_; }
  // Fails outstanding calls with kClosed and waits for the reader to stop (every caller,
  // also one that comes while another close is under way). From then on no one-sided
  // transfer of the peer's touches this side's memory through this connection (TCP serves
  // them in the reader; RDMA's queue pair is in ERR).
  Task<void> close();

 private:
  struct Pending;
  RpcClient(std::unique_ptr<Connection> connection, RpcClientOptions options);
  Task<void> read_responses();
  Task<void> send_cancel(FrameHeader request);
  void fail(Status why);

  std::unique_ptr<Connection> connection_;
  RpcClientOptions options_;
  Semaphore slots_;
  TaskScope scope_;
  uint64_t next_request_ = 1;
  std::map<uint64_t, Pending*> pending_;
  Status failed_;
  bool closed_ = false;
  Event close_done_;  // set once close() has finished
};

struct PoolOptions {
  Duration backoff_initial = std::chrono::milliseconds(10);
  Duration backoff_max = std::chrono::seconds(2);
  RpcClientOptions client;
};

class ConnectionPool {
 public:
  ConnectionPool(Transport* transport, PoolOptions options = {});
  ~ConnectionPool();

  // A healthy client for address: the cached one, or a new connection. After a failed
  // connect the next attempt waits for the backoff (doubling up to backoff_max); if the
  // deadline comes first, the last connect error is returned.
  Task<Result<std::shared_ptr<RpcClient>>> get(SocketAddress address, TimePoint deadline);
  Task<void> close();
  // Connection attempts made so far (for tests and metrics).
  uint64_t connect_attempts() const { return connect_attempts_; }

 private:
  struct Peer {
    std::shared_ptr<RpcClient> client;
    bool connecting = false;
    Event attempt_done;
    Status last_error;
    TimePoint next_attempt = TimePoint::min();
    Duration backoff{0};
  };
  Task<void> retire(std::shared_ptr<RpcClient> client);

  Transport* transport_;
  PoolOptions options_;
  std::map<std::string, std::unique_ptr<Peer>> peers_;
  TaskScope retired_;
  uint64_t connect_attempts_ = 0;
};

}  // namespace mica::net
