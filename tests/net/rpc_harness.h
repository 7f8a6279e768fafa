// The RPC test harness: the same cases run over every transport (real TCP on io_uring,
// TCP on the simulator, RDMA on the fake verbs provider). A harness builds a server with
// the test services on one side and hands the case a client transport and the server's
// address.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "async/scope.h"
#include "net/rpc_client.h"
#include "net/rpc_server.h"
#include "net/service_def.h"

namespace mica::net::testing {

struct EchoRequest {
  std::string text;
  MICA_FIELDS(EchoRequest, text)
};
struct EchoResponse {
  std::string text;
  MICA_FIELDS(EchoResponse, text)
};
struct SleepRequest {
  uint32_t ms = 0;
  MICA_FIELDS(SleepRequest, ms)
};
struct Empty {
  uint8_t unused = 0;
  MICA_FIELDS(Empty, unused)
};
struct FailRequest {
  uint16_t code = 0;
  std::string message;
  MICA_FIELDS(FailRequest, code, message)
};
// Pull: the server reads the caller's buffer and returns its checksum.
// Push: the server fills the caller's buffer with `seed`-derived bytes.
struct BulkRequest {
  RemoteBuffer buffer;
  uint8_t seed = 0;
  MICA_FIELDS(BulkRequest, buffer, seed)
};
struct BulkResponse {
  uint32_t crc = 0;
  MICA_FIELDS(BulkResponse, crc)
};
// Exchange: once TestService::exchange_open is set, the server pulls `pull` (returning
// its checksum) and fills `push` with `seed`-derived bytes.
struct ExchangeRequest {
  RemoteBuffer pull;
  RemoteBuffer push;
  uint8_t seed = 0;
  MICA_FIELDS(ExchangeRequest, pull, push, seed)
};

// The service the cases call; TestService implements it.
struct TestApi {
  static constexpr ServiceId kId = 7;
  static constexpr Method<kId, 1, EchoRequest, EchoResponse> echo{};
  static constexpr Method<kId, 2, SleepRequest, Empty> sleep{};
  static constexpr Method<kId, 3, FailRequest, Empty> fail{};
  static constexpr Method<kId, 4, BulkRequest, BulkResponse> pull{};
  static constexpr Method<kId, 5, BulkRequest, BulkResponse> push{};
  static constexpr Method<kId, 6, ExchangeRequest, BulkResponse> exchange{};
  MICA_SERVICE(TestApi, "test", echo, sleep, fail, pull, push, exchange)
};

// Counters the cases look at; handlers run on the server's executor.
struct ServerStats {
  int running = 0;
  int running_max = 0;
  int cancelled = 0;
  int timed_out = 0;
  int finished = 0;
};

class TestService {
 public:
  Service& service() { return service_; }
  ServerStats stats;

  Task<Result<EchoResponse>> echo(EchoRequest request, CallContext* context);
  Task<Result<Empty>> sleep(SleepRequest request, CallContext* context);
  Task<Result<Empty>> fail(FailRequest request, CallContext* context);
  Task<Result<BulkResponse>> pull(BulkRequest request, CallContext* context);
  Task<Result<BulkResponse>> push(BulkRequest request, CallContext* context);
  Task<Result<BulkResponse>> exchange(ExchangeRequest request, CallContext* context);
  // Exchange handlers hold their slots until a case sets this.
  bool exchange_open = false;

 private:
  Service service_ = Service::bind<TestApi>(this);
};

std::vector<std::byte> bulk_pattern(size_t n, uint8_t seed);

struct RpcEnv {
  Transport* client_transport = nullptr;
  SocketAddress server_address;
  TestService* service = nullptr;
  RpcServer* server = nullptr;
  // RDMA reports a refused one-sided access as a failed work completion, which takes the
  // queue pair (and so the connection) down; TCP answers with a status and carries on.
  bool refused_bulk_fails_connection = false;
  // The transport the server listens on: the harness's own, or what wrap_server made.
  Transport* server_transport = nullptr;
};

using RpcCase = Task<void> (*)(RpcEnv* env);

// Makes the transport the server listens on out of the harness's own (an authenticated
// one, say); called on the server's executor, and the result outlives the server.
using ServerWrap = std::function<std::unique_ptr<Transport>(Transport* inner)>;

class Harness {
 public:
  virtual ~Harness() = default;
  virtual std::string name() const = 0;
  // Runs body against a fresh server; returns when everything has been shut down.
  virtual void run(RpcCase body, RpcServerOptions options) = 0;
  // Later runs serve on wrap(the harness's transport).
  void wrap_server(ServerWrap wrap) { wrap_ = std::move(wrap); }

 protected:
  ServerWrap wrap_;
};

std::unique_ptr<Harness> make_tcp_harness();
std::unique_ptr<Harness> make_sim_harness();
// RDMA transports on two devices of the fake verbs provider (tests/net/fake_verbs.h).
std::unique_ptr<Harness> make_rdma_harness();
std::unique_ptr<Harness> make_harness(const std::string& name);

}  // namespace mica::net::testing
