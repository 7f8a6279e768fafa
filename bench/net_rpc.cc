// bench_net_rpc: Mica's side of the net suite (bench/run.sh net).
//
// One process, a Runtime of two executor threads: the server side runs on executor 0, the
// client side hops to executor 1, so each end has its own thread and io_uring (as in the
// async suite's pingpong_64b, the reference of the RPC figures).
//   --mode rpc:      --in-flight N tasks each call a 64-byte echo RPC again and again for
//                    --seconds. Prints {"round_trips_per_s": N, "p50_us": X, "p99_us": Y}.
//   --mode onesided: the server side registers memory and serves; --in-flight N client
//                    tasks each write_to() --transfer-bytes into it, again and again, over TCP.
//                    Prints {"mib_per_s": N} counted at the writer.
//   --mode idle:     opens --connections RPC connections, pings each once, and prints
//                    {"bytes_per_connection": N}: growth of the process's resident memory
//                    divided by the connections (both ends live in this process).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "async/runtime.h"
#include "async/scope.h"
#include "bench/flags.h"
#include "net/rpc_client.h"
#include "net/rpc_server.h"
#include "net/service_def.h"
#include "net/tcp_transport.h"

namespace mica::bench {
namespace {

using net::CallContext;
using net::CallOptions;
using net::RpcClient;
using net::RpcServer;
using net::TcpTransport;

constexpr uint32_t kInFlightMax = 1024;
constexpr uint32_t kConnectionsMax = 20000;

struct Payload {
  std::string bytes;
  MICA_FIELDS(Payload, bytes)
};

struct BenchApi {
  static constexpr net::ServiceId kId = 9;
  static constexpr net::Method<kId, 1, Payload, Payload> echo{};
  MICA_SERVICE(BenchApi, "bench", echo)
};

class EchoService {
 public:
  Task<Result<Payload>> echo(Payload request, CallContext*) { co_return std::move(request); }
  net::Service service = net::Service::bind<BenchApi>(this);
};

struct Config {
  std::string mode = "rpc";
  uint32_t in_flight = 1;
  double seconds = 5;
  size_t transfer_bytes = 1 << 20;
  uint32_t connections = 1000;
};

struct Outcome {
  uint64_t operations = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  std::vector<int64_t> latencies_ns;
  int64_t bytes_per_connection = 0;
};

Duration to_duration(double seconds) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

int64_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return 0;
}

// ---- rpc ----

Task<void> call_loop(RpcClient* client, TimePoint stop, Outcome* outcome) {
  Executor* executor = Executor::current();
  Payload request{std::string(64, 'r')};
  for (TimePoint now = executor->now(); now < stop;) {
    auto call = BenchApi::Stub(client).echo(request);
    Result<Payload> response = co_await std::move(call);
    TimePoint done = executor->now();
    if (!response.ok()) break;
    outcome->latencies_ns.push_back((done - now).count());
    ++outcome->operations;
    now = done;
  }
}

Task<Status> rpc_client(Runtime* runtime, SocketAddress address, Config config, Outcome* outcome) {
  Executor* home = Executor::current();
  co_await runtime->executor(1).schedule();
  TcpTransport transport;
  auto connecting =
      RpcClient::connect(&transport, address, deadline_after(std::chrono::seconds(10)));
  Result<std::shared_ptr<RpcClient>> client = co_await std::move(connecting);
  Status status = client.status();
  if (client.ok()) {
    TimePoint start = Executor::current()->now();
    TimePoint stop = start + to_duration(config.seconds);
    TaskScope scope;
    for (uint32_t i = 0; i < config.in_flight; ++i)
      scope.spawn(call_loop(client->get(), stop, outcome));
    co_await scope.join();
    outcome->seconds = std::chrono::duration<double>(Executor::current()->now() - start).count();
    co_await (*client)->close();
  }
  co_await home->schedule();
  co_return status;
}

// ---- onesided ----

struct Shared {
  std::atomic<bool> ready{false};
  std::vector<net::RemoteBuffer> targets;
};

Task<Status> onesided_server(net::Acceptor* acceptor, TcpTransport* transport, Config config,
                             Shared* shared) {
  auto accepting = acceptor->accept();
  CO_TRY_ASSIGN(std::unique_ptr<net::Connection> connection, co_await std::move(accepting));
  std::vector<std::byte> memory(config.transfer_bytes * config.in_flight);
  CO_TRY_ASSIGN(std::unique_ptr<net::MemoryRegion> region, transport->register_memory(memory));
  for (uint32_t i = 0; i < config.in_flight; ++i)
    shared->targets.push_back(
        region->remote(i * config.transfer_bytes, static_cast<uint32_t>(config.transfer_bytes)));
  shared->ready.store(true);
  for (;;) {  // serve the client's writes until it closes
    auto next = connection->next_frame();
    Result<net::Frame> frame = co_await std::move(next);
    if (!frame.ok()) break;
  }
  co_await connection->close();
  co_return Status();
}

Task<void> write_loop(net::Connection* connection, net::RemoteBuffer target, TimePoint stop,
                      Outcome* outcome) {
  std::vector<std::byte> local(target.length, std::byte{'w'});
  while (Executor::current()->now() < stop) {
    auto writing = connection->write_to(target, local, kNoDeadline);
    Status written = co_await std::move(writing);
    if (!written.ok()) break;
    outcome->bytes += local.size();
  }
}

Task<void> drain_acks(net::Connection* connection) {
  for (;;) {
    auto next = connection->next_frame();
    Result<net::Frame> frame = co_await std::move(next);
    if (!frame.ok()) co_return;
  }
}

Task<Status> onesided_client(Runtime* runtime, SocketAddress address, Config config, Shared* shared,
                             Outcome* outcome) {
  Executor* home = Executor::current();
  co_await runtime->executor(1).schedule();
  TcpTransport transport;
  auto connecting = transport.connect(address, deadline_after(std::chrono::seconds(10)));
  Result<std::unique_ptr<net::Connection>> connection = co_await std::move(connecting);
  Status status = connection.status();
  if (connection.ok()) {
    while (!shared->ready.load()) (void)co_await sleep_for(std::chrono::milliseconds(1));
    TimePoint start = Executor::current()->now();
    TimePoint stop = start + to_duration(config.seconds);
    // Acknowledgements arrive through our own next_frame(): a reader keeps calling it.
    TaskScope reader;
    reader.spawn(drain_acks(connection->get()));
    TaskScope writers;
    for (uint32_t i = 0; i < config.in_flight; ++i)
      writers.spawn(write_loop(connection->get(), shared->targets[i], stop, outcome));
    co_await writers.join();
    outcome->seconds = std::chrono::duration<double>(Executor::current()->now() - start).count();
    co_await (*connection)->close();
    co_await reader.join();
  }
  co_await home->schedule();
  co_return status;
}

// ---- idle ----

Task<Status> idle_client(Runtime* runtime, SocketAddress address, Config config, Outcome* outcome) {
  Executor* home = Executor::current();
  co_await runtime->executor(1).schedule();
  TcpTransport transport;
  std::vector<std::shared_ptr<RpcClient>> clients;
  int64_t before = resident_bytes();
  Status status;
  for (uint32_t i = 0; i < config.connections && status.ok(); ++i) {
    auto connecting =
        RpcClient::connect(&transport, address, deadline_after(std::chrono::seconds(10)));
    Result<std::shared_ptr<RpcClient>> client = co_await std::move(connecting);
    status = client.status();
    if (!client.ok()) break;
    auto pinging = (*client)->ping(i, CallOptions{});
    Result<net::PingResponse> pong = co_await std::move(pinging);
    status = pong.status();
    clients.push_back(std::move(*client));
  }
  if (status.ok())
    outcome->bytes_per_connection = (resident_bytes() - before) / int64_t(clients.size());
  for (auto& client : clients) co_await client->close();
  co_await home->schedule();
  co_return status;
}

Task<Result<Outcome>> run(Runtime* runtime, Config config) {
  TcpTransport transport;
  Outcome outcome;
  if (config.mode == "onesided") {
    CO_TRY_ASSIGN(std::unique_ptr<net::Acceptor> acceptor,
                  transport.listen(SocketAddress::loopback(0)));
    Shared shared;
    std::vector<Task<Status>> sides;
    sides.push_back(onesided_server(acceptor.get(), &transport, config, &shared));
    sides.push_back(onesided_client(runtime, acceptor->address(), config, &shared, &outcome));
    auto both = when_all(std::move(sides));
    std::vector<Status> results = co_await std::move(both);
    co_await acceptor->close();
    for (Status& s : results) CO_TRY(s);
    co_return outcome;
  }
  EchoService echo;
  net::RpcServerOptions options;
  options.connections_max = kConnectionsMax;
  RpcServer server(&transport, options);
  server.add_service(&echo.service);
  CO_TRY_ASSIGN(SocketAddress address, server.start(SocketAddress::loopback(0)));
  auto client = config.mode == "idle" ? idle_client(runtime, address, config, &outcome)
                                      : rpc_client(runtime, address, config, &outcome);
  Status status = co_await std::move(client);
  co_await server.shutdown();
  CO_TRY(status);
  co_return outcome;
}

double percentile_us(std::vector<int64_t>& samples, double p) {
  if (samples.empty()) return 0;
  size_t index = std::min(samples.size() - 1, size_t(p * double(samples.size())));
  std::nth_element(samples.begin(), samples.begin() + index, samples.end());
  return double(samples[index]) / 1000.0;
}

}  // namespace
}  // namespace mica::bench

int main(int argc, char** argv) {
  using namespace mica::bench;
  Flags flags(argc, argv,
              "bench_net_rpc --mode rpc|onesided|idle [--in-flight N] [--seconds S] "
              "[--transfer-bytes B] [--connections N]");
  Config config;
  config.mode = flags.text("mode", "rpc");
  config.in_flight = static_cast<uint32_t>(flags.number("in-flight", 1));
  config.seconds = flags.number("seconds", 5);
  config.transfer_bytes = static_cast<size_t>(flags.number("transfer-bytes", 1 << 20));
  config.connections = static_cast<uint32_t>(flags.number("connections", 1000));
  flags.finish();
  if (config.in_flight == 0 || config.in_flight > kInFlightMax ||
      config.connections > kConnectionsMax ||
      (config.mode != "rpc" && config.mode != "onesided" && config.mode != "idle")) {
    std::fprintf(stderr, "bench_net_rpc: bad mode or limits\n");
    return 2;
  }
  mica::Runtime runtime(mica::RuntimeOptions{.threads = 2});
  mica::Result<Outcome> outcome = runtime.block_on(run(&runtime, config));
  if (!outcome.ok()) {
    std::fprintf(stderr, "bench_net_rpc: %s\n", outcome.status().to_string().c_str());
    return 1;
  }
  if (config.mode == "rpc") {
    std::printf("{\"round_trips_per_s\": %.0f, \"p50_us\": %.1f, \"p99_us\": %.1f}\n",
                double(outcome->operations) / outcome->seconds,
                percentile_us(outcome->latencies_ns, 0.50),
                percentile_us(outcome->latencies_ns, 0.99));
  } else if (config.mode == "onesided") {
    std::printf("{\"mib_per_s\": %.1f}\n", double(outcome->bytes) / outcome->seconds / (1 << 20));
  } else {
    std::printf("{\"bytes_per_connection\": %lld}\n",
                static_cast<long long>(outcome->bytes_per_connection));
  }
  return 0;
}
