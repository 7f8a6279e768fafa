// RpcServer: serves services over one Transport.
//
// Each accepted connection gets a reader task that takes frames in order and runs every
// request as its own task, so a slow request does not hold up the ones behind it. Limits:
// at most in_flight_per_connection_max requests of one connection and in_flight_max of
// the whole server run at once; beyond that the reader stops reading, and TCP's window
// pushes back on the clients. A request's deadline (its time budget) is enforced here too:
// its handler is cancelled with kTimedOut when the budget runs out, and a kCancel frame
// from the caller cancels it with kCancelled. A malformed frame closes only the connection
// that sent it. shutdown() stops accepting, answers new requests with kClosed, waits up to
// drain_timeout for in-flight requests, then cancels the rest and closes every connection.
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
  uint32_t connections_max = 4096;
  Duration drain_timeout = std::chrono::seconds(5);
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
  uint32_t in_flight() const { return in_flight_; }

 private:
  struct ConnectionState;
  Task<void> accept_loop();
  Task<void> serve(ConnectionState* state);
  Task<void> run_request(ConnectionState* state, Frame frame);
  Task<Result<std::vector<std::byte>>> dispatch(const Frame* frame, CallContext* context);
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
  Event idle_;  // set while in_flight_ == 0
  bool draining_ = false;
  bool started_ = false;
};

}  // namespace mica::net
