// RpcServer: serves services over one Transport.
//
// Each accepted connection gets a reader task that takes frames in order and runs every
// request as its own task, so a slow request does not hold up the ones behind it.
// Admission: at most in_flight_per_connection_max requests of one connection and
// in_flight_max of the whole server run at once; a request that finds no slot waits for
// one in a queue bounded in requests and bytes (queued_*_max), and one that finds the
// queue full is answered kBusy at once. The reader itself never waits for a slot: it keeps
// reading, so the one-sided transfers and frames that running handlers wait for (TCP
// serves them inside next_frame) always get through — back-pressure applies to new
// requests only. A request's deadline (its time budget, or default_request_timeout when it
// names none) is enforced here too, in the queue and in its handler: the handler is
// cancelled with kTimedOut when the budget runs out, and a kCancel frame from the caller
// cancels it with kCancelled. A connection with nothing in flight that sends no frame for
// idle_timeout is closed (one log line). A malformed frame closes only the
// connection that sent it. shutdown() stops accepting, answers new requests with kClosed,
// waits up to drain_timeout for admitted and queued requests, then cancels the rest and
// closes every connection.
// Thread rule: one executor; start() and shutdown() are called from a task on it.
#pragma once

#include <map>
#include <memory>

#include "async/scope.h"
#include "net/service_def.h"

namespace mica::net {

struct RpcServerOptions {
  uint32_t in_flight_per_connection_max = 128;
  uint32_t in_flight_max = 4096;
  // Requests waiting for a slot; beyond either limit a request is answered kBusy. One
  // connection's queue covers a default client's in-flight calls (rpc_client.h).
  uint32_t queued_per_connection_max = 1024;
  uint32_t queued_max = 16384;
  // The same for the payload bytes of waiting requests, whatever the transport counts.
  uint64_t queued_bytes_per_connection_max = 64 << 20;
  uint64_t queued_bytes_max = 1 << 30;
  uint32_t connections_max = 4096;
  Duration drain_timeout = std::chrono::seconds(5);
  // The budget of a request that names none (timeout_us 0), so every handler has a deadline.
  Duration default_request_timeout = std::chrono::seconds(60);
  // A connection with no request in flight or queued and no frame for this long is closed;
  // zero keeps idle connections open.
  Duration idle_timeout = std::chrono::minutes(5);
};

class RpcServer {
 public:
  RpcServer(Transport* transport, RpcServerOptions options = {});
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;
  ~RpcServer();

  // Services must be added before start().
  void add_service(Service* service);
  // Listens and starts accepting; returns the bound address (port 0 picks one).
  Result<SocketAddress> start(SocketAddress address);
  Task<void> shutdown();

  size_t connections() const { return connections_.size(); }
  // Requests holding a slot, and requests waiting for one.
  uint32_t in_flight() const { return in_flight_; }
  uint32_t queued() const { return queued_; }

 private:
  struct ConnectionState;
  Task<void> accept_loop();
  Task<void> serve(ConnectionState* state);
  // admitted: the reader took both slots already; otherwise the request waits for them.
  Task<void> run_request(ConnectionState* state, Frame frame, bool admitted);
  bool try_admit(ConnectionState* state);
  bool fits_in_queue(const ConnectionState* state, uint64_t bytes) const;
  Task<Status> admit(ConnectionState* state, TimePoint deadline);
  Task<void> watch_idle(ConnectionState* state);
  void request_done(ConnectionState* state);
  // Hands the frame's payload to the handler (moved: the request is decoded from it).
  Task<Result<std::vector<std::byte>>> dispatch(Frame* frame, CallContext* context);
  Task<Result<PingResponse>> ping(PingRequest request, CallContext* context);
  Task<void> respond(ConnectionState* state, FrameHeader request, Status status,
                     std::span<const std::byte> payload);

  Transport* transport_;
  RpcServerOptions options_;
  friend HealthService;  // so that binding the health service reaches the private ping()
  Service health_ = Service::bind<HealthService>(this);
  std::map<ServiceId, Service*> services_;
  std::unique_ptr<Acceptor> acceptor_;
  TaskScope scope_;
  Semaphore server_slots_;
  std::map<ConnectionState*, std::unique_ptr<ConnectionState>> connections_;
  uint32_t in_flight_ = 0;
  uint32_t queued_ = 0;
  uint64_t queued_bytes_ = 0;
  Event idle_;  // set while no request is in flight or queued
  bool draining_ = false;
  bool started_ = false;
};

}  // namespace mica::net
