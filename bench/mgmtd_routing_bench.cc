// bench_mgmtd_routing: the routing fetch side of the mgmtd suite (bench/run.sh mgmtd).
//
// One process, a Runtime of two executor threads. Executor 0 opens a Mgmtd on LMDB in a
// fresh temporary directory, registers --nodes storage nodes of --targets-per-node targets
// (one per disk) by calling its handlers in process, creates one chain table (--replicas),
// runs one chain-state round and serves it over TCP on 127.0.0.1; the update loop is not
// started, so the snapshot stays the same while it is measured (nothing heartbeats). The
// client hops to executor 1 and runs --in-flight tasks that each call again and again for
// --seconds:
//   --side mica --mode full:      get_routing{known_version 0}: every answer is the whole
//                                 snapshot (what a restarted server or client fetches);
//   --side mica --mode current:   get_routing{known_version current, wait_ms 0}: "nothing new";
//   --side reference --mode M:    the same request to a plain service declared here that
//                                 answers with a pre-encoded byte string as long as mica's
//                                 answer in mode M, so mica / reference is mgmtd's own cost
//                                 (copying, encoding and decoding the snapshot) over RPC of
//                                 that many bytes.
// Prints {"fetches_per_s": N, "p50_us": X, "p99_us": Y, "response_bytes": B} on stdout.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "async/runtime.h"
#include "async/scope.h"
#include "bench/flags.h"
#include "craq/mgmtd.h"
#include "kv/kv.h"
#include "net/rpc_client.h"
#include "net/rpc_server.h"
#include "net/serde.h"
#include "net/service_def.h"
#include "net/tcp_transport.h"

namespace mica::bench {
namespace {

using craq::GetRoutingRequest;
using craq::GetRoutingResponse;
using craq::MgmtdService;
using net::RpcClient;
using net::RpcServer;
using net::TcpTransport;

constexpr uint32_t kInFlightMax = 1024;
// Nothing heartbeats in the bench: a lease longer than any run keeps every node alive.
constexpr uint32_t kBenchLeaseMs = 3600 * 1000;

struct Payload {
  std::string bytes;
  MICA_FIELDS(Payload, bytes)
};

// The reference: the same request, answered with bytes encoded once in advance.
struct ReferenceApi {
  static constexpr net::ServiceId kId = 9;
  static constexpr net::Method<kId, 1, GetRoutingRequest, Payload> fetch{};
  MICA_SERVICE(ReferenceApi, "bench_routing_reference", fetch)
};

class ReferenceService {
 public:
  explicit ReferenceService(std::string bytes) : answer_{std::move(bytes)} {}
  Task<Result<Payload>> fetch(GetRoutingRequest, net::CallContext*) { co_return answer_; }
  net::Service service = net::Service::bind<ReferenceApi>(this);

 private:
  Payload answer_;
};

struct Config {
  std::string side = "mica";
  std::string mode = "full";
  uint32_t in_flight = 8;
  double seconds = 5;
  uint32_t nodes = 180;
  uint32_t targets_per_node = 16;
  uint32_t replicas = 3;
};

struct Outcome {
  uint64_t operations = 0;
  double seconds = 0;
  size_t response_bytes = 0;
  bool failed = false;  // a fetch failed, or answered with (without) a snapshot wrongly
  std::vector<int64_t> latencies_ns;
};

Duration to_duration(double seconds) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

craq::RegisterRequest storage_node(uint32_t index, uint32_t targets) {
  craq::RegisterRequest request{.identity = "node-" + std::to_string(index),
                                .kind = craq::NodeKind::kStorage,
                                .host_name = "host-" + std::to_string(index),
                                .rpc_address = "127.0.0.1:1"};
  for (uint32_t t = 0; t < targets; ++t) {
    request.targets.push_back(craq::TargetReport{
        .identity = request.identity + "-target-" + std::to_string(t),
        .disk = "/disk" + std::to_string(t),
        .local = craq::LocalState::kUpToDate,
        .capacity_bytes = uint64_t{1} << 42,
    });
  }
  return request;
}

// The cluster of the suite's shape, registered and placed in process (ctx null).
Task<Status> build_cluster(craq::Mgmtd* mgmtd, Config config) {
  for (uint32_t i = 0; i < config.nodes; ++i) {
    auto registering = mgmtd->register_node(storage_node(i, config.targets_per_node), nullptr);
    CO_TRY(co_await std::move(registering));
  }
  craq::CreateChainTableRequest create{.replica_count = config.replicas, .seed = 1};
  auto creating = mgmtd->create_chain_table(std::move(create), nullptr);
  CO_TRY(co_await std::move(creating));
  auto round = mgmtd->run_round();
  co_return co_await std::move(round);
}

// The request of `mode`, and the encoded size of mica's answer to it.
GetRoutingRequest request_of(const craq::Mgmtd& mgmtd, const Config& config) {
  if (config.mode == "full") return GetRoutingRequest{.known_version = 0};
  return GetRoutingRequest{.known_version = mgmtd.routing_version(), .wait_ms = 0};
}

size_t answer_bytes(const craq::Mgmtd& mgmtd, const GetRoutingRequest& request) {
  GetRoutingResponse response{.version = mgmtd.routing_version()};
  if (request.known_version != response.version) response.routing = *mgmtd.routing();
  return net::encode(response).size();
}

// A string whose Payload encoding is `bytes` long (or as close as the length prefix lets).
std::string payload_of(size_t bytes) {
  size_t prefix = net::encode(Payload{}).size();
  return std::string(bytes > prefix ? bytes - prefix : 0, 'r');
}

Task<void> fetch_loop(RpcClient* client, Config config, GetRoutingRequest request, TimePoint stop,
                      Outcome* outcome) {
  Executor* executor = Executor::current();
  bool full = config.mode == "full";
  for (TimePoint now = executor->now(); now < stop;) {
    bool answered = false;
    if (config.side == "mica") {
      auto call = MgmtdService::Stub(client).get_routing(request);
      Result<GetRoutingResponse> response = co_await std::move(call);
      answered = response.ok() && response->routing.has_value() == full;
    } else {
      auto call = ReferenceApi::Stub(client).fetch(request);
      Result<Payload> response = co_await std::move(call);
      answered = response.ok();
    }
    TimePoint done = executor->now();
    if (!answered) {
      outcome->failed = true;
      break;
    }
    outcome->latencies_ns.push_back((done - now).count());
    ++outcome->operations;
    now = done;
  }
}

Task<Status> client_side(Runtime* runtime, SocketAddress address, Config config,
                         GetRoutingRequest request, Outcome* outcome) {
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
      scope.spawn(fetch_loop(client->get(), config, request, stop, outcome));
    co_await scope.join();
    outcome->seconds = std::chrono::duration<double>(Executor::current()->now() - start).count();
    co_await (*client)->close();
    if (outcome->failed)
      status = Status(StatusCode::kInternal, "a fetch failed or had the wrong answer");
  }
  co_await home->schedule();
  co_return status;
}

// Serves `service` on 127.0.0.1 and measures the client against it.
Task<Status> serve_and_measure(Runtime* runtime, net::Service* service, Config config,
                               GetRoutingRequest request, Outcome* outcome) {
  TcpTransport transport;
  RpcServer server(&transport);
  server.add_service(service);
  Result<SocketAddress> address = server.start(SocketAddress::loopback(0));
  Status status = address.status();
  if (address.ok()) {
    auto measuring = client_side(runtime, *address, config, request, outcome);
    status = co_await std::move(measuring);
  }
  co_await server.shutdown();
  co_return status;
}

Task<Status> measure(Runtime* runtime, kv::Env* env, Config config, Outcome* outcome) {
  craq::MgmtdOptions options;
  options.config.replica_count = config.replicas;
  options.config.lease_timeout_ms = kBenchLeaseMs;
  auto opening = craq::Mgmtd::open(env, options);
  CO_TRY_ASSIGN(std::unique_ptr<craq::Mgmtd> mgmtd, co_await std::move(opening));
  auto building = build_cluster(mgmtd.get(), config);
  Status status = co_await std::move(building);
  GetRoutingRequest request = request_of(*mgmtd, config);
  outcome->response_bytes = answer_bytes(*mgmtd, request);
  if (status.ok()) {
    if (config.side == "mica") {
      auto measuring = serve_and_measure(runtime, mgmtd->service(), config, request, outcome);
      status = co_await std::move(measuring);
    } else {
      ReferenceService reference(payload_of(outcome->response_bytes));
      auto measuring = serve_and_measure(runtime, &reference.service, config, request, outcome);
      status = co_await std::move(measuring);
    }
  }
  co_await mgmtd->stop();
  co_return status;
}

Task<Status> run(Runtime* runtime, std::string dir, Config config, Outcome* outcome) {
  kv::EnvOptions options{.map_size_bytes = uint64_t{1} << 30, .tables_max = craq::kMgmtdTables};
  auto opening = kv::Env::open(dir, options);
  CO_TRY_ASSIGN(std::unique_ptr<kv::Env> env, co_await std::move(opening));
  auto measuring = measure(runtime, env.get(), config, outcome);
  Status status = co_await std::move(measuring);
  Status closed = co_await env->close();
  co_return status.ok() ? closed : status;
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
              "bench_mgmtd_routing --side mica|reference --mode full|current [--in-flight N] "
              "[--seconds S] [--nodes N] [--targets-per-node T] [--replicas R]");
  Config config;
  config.side = flags.text("side", "mica");
  config.mode = flags.text("mode", "full");
  config.in_flight = static_cast<uint32_t>(flags.number("in-flight", 8));
  config.seconds = flags.number("seconds", 5);
  config.nodes = static_cast<uint32_t>(flags.number("nodes", 180));
  config.targets_per_node = static_cast<uint32_t>(flags.number("targets-per-node", 16));
  config.replicas = static_cast<uint32_t>(flags.number("replicas", 3));
  flags.finish();
  if (config.in_flight == 0 || config.in_flight > kInFlightMax ||
      (config.side != "mica" && config.side != "reference") ||
      (config.mode != "full" && config.mode != "current")) {
    std::fprintf(stderr, "bench_mgmtd_routing: bad side, mode or limits\n");
    return 2;
  }
  std::string pattern = (std::filesystem::temp_directory_path() / "mica-mgmtd-bench-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    std::perror("bench_mgmtd_routing: mkdtemp");
    return 1;
  }
  Outcome outcome;
  mica::Status status;
  {
    mica::Runtime runtime(mica::RuntimeOptions{.threads = 2});
    status = runtime.block_on(run(&runtime, pattern, config, &outcome));
  }
  std::error_code ignored;
  std::filesystem::remove_all(pattern, ignored);
  if (!status.ok()) {
    std::fprintf(stderr, "bench_mgmtd_routing: %s\n", status.to_string().c_str());
    return 1;
  }
  std::printf(
      "{\"fetches_per_s\": %.0f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
      "\"response_bytes\": %zu}\n",
      double(outcome.operations) / outcome.seconds, percentile_us(outcome.latencies_ns, 0.50),
      percentile_us(outcome.latencies_ns, 0.99), outcome.response_bytes);
  return 0;
}
