// Scenario rpc_faults: RPC clients and a server (RpcServer / ConnectionPool over the TCP
// transport on the simulator) under message loss (retransmitted, or the connection gives
// up), connection resets, reordering, two-way and one-way partitions, silent server
// crashes with restarts, server freezes and per-host clock skew and drift; then the
// faults heal.
//
// Topology: one server host (its boot function serves CheckApi, so a restart serves again)
// and kClients client hosts, each running kCallersPerClient concurrent callers that share
// one ConnectionPool. During the fault phase every caller makes calls with seeded deadlines
// (20 ms .. 2 s) and seeded server work (0 .. 40 ms), so calls time out, overlap and are
// answered out of order. At kFaultPhase every fault stops; after kSettle (longer than any
// retransmit timeout, so every connection a lost segment broke has reset) each caller
// makes kHealedCallsPerCaller more calls.
//
// The checker, per call: it returns the right answer (a function of its arguments) or a
// retryable error (is_retryable below); it never completes after its deadline (on the
// caller's own clock, which is virtual time skewed and drifting per host: a deadline is
// a local notion); once healed, every call succeeds. Per seed at least
// kFaultedOkPercentMin percent of the fault-phase calls succeed; over a sweep at least
// kSweepFaultedOkPercentMin percent, and the sweep must really have crashed, partitioned,
// frozen, retransmitted, given up, timed out and reset (a sweep without faults proves
// nothing). Only the server freezes: a frozen caller's clock runs on while it cannot run,
// so its own deadlines would pass unobserved, which no code can prevent.
#include <string>
#include <vector>

#include "async/scope.h"
#include "net/rpc_client.h"
#include "net/rpc_server.h"
#include "net/service_def.h"
#include "net/tcp_transport.h"
#include "tests/sim/scenario.h"

namespace mica::sim {
namespace {

using namespace std::chrono_literals;

constexpr uint16_t kPort = 7100;
constexpr uint32_t kClients = 2;
constexpr uint32_t kCallersPerClient = 3;
constexpr Duration kFaultPhase = 10s;
constexpr Duration kSettle = 3s;
constexpr uint32_t kHealedCallsPerCaller = 5;
constexpr Duration kHealedBudget = 5s;
constexpr Duration kBudgetMin = 20ms;
constexpr Duration kBudgetMax = 2s;
constexpr Duration kWorkMax = 40ms;
constexpr Duration kPauseMax = 20ms;
// Faults start early enough that every window ends before the heal.
constexpr Duration kFaultWindowLatestStart = 7s;
constexpr Duration kWindowLengthMin = 50ms;
constexpr Duration kWindowLengthMax = 2500ms;
constexpr uint32_t kPartitionsMax = 3;
constexpr uint32_t kCrashesMax = 2;
constexpr uint32_t kFreezesMax = 2;
// Host clocks: each host's clock is ahead of world time by up to kSkewMax and runs fast or
// slow by up to kDriftMaxPpm.
constexpr Duration kSkewMax = 30s;
constexpr int32_t kDriftMaxPpm = 200;
// A timer fires at the first instant its host's clock reads at least the deadline; with
// drift that clock advances in steps of up to two nanoseconds, so a call that times out may
// see its deadline plus one. Beyond this slack a call has outlived its deadline.
constexpr Duration kDeadlineSlack = 1us;
constexpr uint64_t kFaultedOkPercentMin = 20;
constexpr uint64_t kSweepFaultedOkPercentMin = 50;

// ---- the service ----

struct SumRequest {
  uint64_t a = 0;
  uint64_t b = 0;
  uint32_t work_us = 0;  // virtual time the server spends before answering
  MICA_FIELDS(SumRequest, a, b, work_us)
};
struct SumResponse {
  uint64_t value = 0;
  MICA_FIELDS(SumResponse, value)
};

struct CheckApi {
  static constexpr net::ServiceId kId = 61;
  static constexpr net::Method<kId, 1, SumRequest, SumResponse> sum{};
  MICA_SERVICE(CheckApi, "sim_check", sum)
};

// The right answer: mixes both arguments so a response paired with the wrong request (or
// corrupted) cannot pass by accident.
uint64_t expected_sum(uint64_t a, uint64_t b) {
  return a * 0x9E3779B97F4A7C15ull + (b ^ (b >> 7));
}

class CheckService {
 public:
  net::Service& service() { return service_; }
  Task<Result<SumResponse>> sum(SumRequest request, net::CallContext* context);

 private:
  net::Service service_ = net::Service::bind<CheckApi>(this);
};

Task<Result<SumResponse>> CheckService::sum(SumRequest request, net::CallContext*) {
  if (request.work_us > 0) {
    SleepAwaiter work = sleep_for(std::chrono::microseconds(request.work_us));
    Status slept = co_await work;
    if (!slept.ok()) co_return slept;
  }
  co_return SumResponse{expected_sum(request.a, request.b)};
}

// ---- the checker's state ----

// The statuses a caller may see and retry: the connection or the peer went away, the call
// ran out of time, or the server was shutting down or too busy.
bool is_retryable(StatusCode code) {
  switch (code) {
    case StatusCode::kTimedOut:
    case StatusCode::kConnectionReset:
    case StatusCode::kConnectionRefused:
    case StatusCode::kUnreachable:
    case StatusCode::kClosed:
    case StatusCode::kHostDown:
    case StatusCode::kBusy:
      return true;
    default:
      return false;
  }
}

struct Tally {
  uint64_t faulted_calls = 0;
  uint64_t faulted_ok = 0;
  uint64_t healed_calls = 0;
  uint64_t healed_ok = 0;
  uint64_t boots = 0;
  uint64_t crashes = 0;
  uint64_t partitions = 0;
  uint64_t freezes = 0;
  uint32_t clients_done = 0;
  std::map<std::string, uint64_t> errors;  // counter name → calls that failed with it
  ScenarioResult* result = nullptr;
  bool verbose = false;
};

// Times are world times; a caller converts them to its host's clock.
struct Env {
  SimWorld* world = nullptr;
  SocketAddress server;
  TimePoint faults_end;
  TimePoint healed_start;
  Tally* tally = nullptr;
};

std::string error_counter(StatusCode code) {
  std::string name = "err_";
  for (char c : status_code_name(code)) name += char(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return name;
}

// ---- callers ----

struct Call {
  uint64_t tag = 0;  // caller and sequence number, for the narrative
  SumRequest request;
  TimePoint start;
  TimePoint deadline;
  bool healed = false;
};

Task<Result<SumResponse>> call_sum(net::ConnectionPool* pool, SocketAddress server, Call call) {
  auto getting = pool->get(server, call.deadline);
  CO_TRY_ASSIGN(std::shared_ptr<net::RpcClient> client, co_await std::move(getting));
  CheckApi::Stub stub(client.get());
  auto calling = stub.sum(call.request, net::CallOptions{call.deadline});
  co_return co_await std::move(calling);
}

void check_call(Env* env, const Call& call, const Result<SumResponse>& got, TimePoint end) {
  Tally& t = *env->tally;
  ScenarioResult& r = *t.result;
  (call.healed ? t.healed_calls : t.faulted_calls) += 1;
  StatusCode code = got.ok() ? StatusCode::kOk : got.status().code();
  if (got.ok() && got->value == expected_sum(call.request.a, call.request.b)) {
    (call.healed ? t.healed_ok : t.faulted_ok) += 1;
  } else if (got.ok()) {
    r.fail(fmt::format("call {:#x} returned a wrong answer", call.tag));
  } else {
    t.errors[error_counter(code)] += 1;
    if (!is_retryable(code))
      r.fail(fmt::format("call {:#x} failed with a non-retryable {}", call.tag,
                         got.status().to_string()));
    else if (call.healed)
      r.fail(
          fmt::format("call {:#x} after the heal failed: {}", call.tag, got.status().to_string()));
  }
  if (end > call.deadline + kDeadlineSlack)
    r.fail(fmt::format("call {:#x} outlived its deadline by {} ns", call.tag,
                       to_ns(end) - to_ns(call.deadline)));
  env->world->trace_user(nullptr, int64_t(call.tag << 16 | uint64_t(code)));
  if (t.verbose)
    r.notes.push_back(fmt::format("t={} ns call {:#x} ({}, budget {} us): {} after {} us",
                                  to_ns(end), call.tag, call.healed ? "healed" : "faults on",
                                  to_ns(call.deadline) / 1000 - to_ns(call.start) / 1000,
                                  got.ok() ? "ok" : got.status().to_string(),
                                  to_ns(end) / 1000 - to_ns(call.start) / 1000));
}

Task<void> one_call(Env* env, net::ConnectionPool* pool, Call call) {
  auto calling = call_sum(pool, env->server, call);
  Result<SumResponse> got = co_await std::move(calling);
  TimePoint end = Executor::current()->now();
  check_call(env, call, got, end);
}

Call draw_call(Env* env, uint64_t tag, Duration budget) {
  SimRandom& random = env->world->random();
  Call call;
  call.tag = tag;
  call.request.a = random.next();
  call.request.b = random.next();
  Duration work = random.between(Duration(0), kWorkMax);
  call.request.work_us =
      uint32_t(std::chrono::duration_cast<std::chrono::microseconds>(work).count());
  call.start = Executor::current()->now();
  call.deadline = call.start + budget;
  return call;
}

Task<void> caller(Env* env, SimHost* host, net::ConnectionPool* pool, uint32_t id) {
  SimRandom& random = env->world->random();
  uint64_t sequence = 0;
  TimePoint faults_end = host->local_time(env->faults_end);
  while (Executor::current()->now() < faults_end) {
    Call call =
        draw_call(env, uint64_t(id) << 24 | sequence++, random.between(kBudgetMin, kBudgetMax));
    Task<void> calling = one_call(env, pool, call);
    co_await std::move(calling);
    SleepAwaiter pause = sleep_for(random.between(Duration(0), kPauseMax));
    Status paused = co_await pause;
    (void)paused;
  }
  SleepAwaiter settle = sleep_until(host->local_time(env->healed_start));
  Status settled = co_await settle;
  (void)settled;
  for (uint32_t i = 0; i < kHealedCallsPerCaller; ++i) {
    Call call = draw_call(env, uint64_t(id) << 24 | sequence++, kHealedBudget);
    call.healed = true;
    Task<void> calling = one_call(env, pool, call);
    co_await std::move(calling);
  }
}

Task<void> client_main(Env* env, SimHost* host, uint32_t client) {
  net::TcpTransport transport;
  net::ConnectionPool pool(&transport);
  TaskScope callers;
  for (uint32_t i = 0; i < kCallersPerClient; ++i)
    callers.spawn(caller(env, host, &pool, client * kCallersPerClient + i + 1));
  co_await callers.join();
  Task<void> closing = pool.close();
  co_await std::move(closing);
  ++env->tally->clients_done;
}

// ---- the server ----

// Serves until its host crashes (or the world ends), which cancels the wait.
Task<void> server_main(SimHost* host, Tally* tally) {
  net::TcpTransport transport;
  CheckService service;
  net::RpcServer server(&transport);
  server.add_service(&service.service());
  Result<SocketAddress> bound = server.start(host->address(kPort));
  MICA_ASSERT_MSG(bound.ok(), "the scenario server could not listen");
  ++tally->boots;
  Event never;
  Status woke = co_await never.wait();
  (void)woke;
  Task<void> stopping = server.shutdown();
  co_await std::move(stopping);
}

// ---- faults ----

// One partition window: both ways, server to client only, or client to server only.
void schedule_partition(SimWorld& world, SimHost& server, SimHost* client, uint64_t way,
                        Duration start, Duration length, Tally* tally) {
  world.schedule(start, [&world, &server, client, way, tally] {
    if (way != 1) world.partition_one_way(*client, server);
    if (way != 2) world.partition_one_way(server, *client);
    ++tally->partitions;
  });
  world.schedule(start + length, [&world, &server, client] { world.heal(server, *client); });
}

void schedule_partitions(SimWorld& world, SimHost& server, std::vector<SimHost*>& clients,
                         Tally* tally) {
  SimRandom& random = world.random();
  uint64_t count = random.below(kPartitionsMax + 1);
  for (uint64_t i = 0; i < count; ++i) {
    Duration start = random.between(Duration(0), kFaultWindowLatestStart);
    Duration length = random.between(kWindowLengthMin, kWindowLengthMax);
    uint64_t which = random.below(kClients + 1);  // kClients: every client at once
    uint64_t way = random.below(3);
    for (uint32_t c = 0; c < kClients; ++c)
      if (which == kClients || which == c)
        schedule_partition(world, server, clients[c], way, start, length, tally);
  }
}

// Crashes are silent (peers see no reset); a crash of a frozen server waits for its thaw.
void schedule_crashes(SimWorld& world, SimHost& server, Tally* tally) {
  SimRandom& random = world.random();
  uint64_t count = random.below(kCrashesMax + 1);
  for (uint64_t i = 0; i < count; ++i) {
    Duration start = random.between(Duration(0), kFaultWindowLatestStart);
    Duration down = random.between(kWindowLengthMin, kWindowLengthMax);
    world.schedule(start, [&world, &server, tally] {
      if (!server.up() || server.frozen()) return;
      world.crash(server);
      ++tally->crashes;
    });
    world.schedule(start + down, [&world, &server] {
      if (!server.up()) world.restart(server);
    });
  }
}

// A frozen server (a long pause) keeps its connections but answers nothing meanwhile.
void schedule_freezes(SimWorld& world, SimHost& server, Tally* tally) {
  SimRandom& random = world.random();
  uint64_t count = random.below(kFreezesMax + 1);
  for (uint64_t i = 0; i < count; ++i) {
    Duration start = random.between(Duration(0), kFaultWindowLatestStart);
    Duration length = random.between(kWindowLengthMin, kWindowLengthMax);
    world.schedule(start, [&world, &server, tally] {
      if (!server.up() || server.frozen()) return;
      world.freeze(server);
      ++tally->freezes;
    });
    world.schedule(start + length, [&world, &server] {
      if (server.frozen()) world.unfreeze(server);
    });
  }
}

void set_clocks(SimWorld& world) {
  SimRandom& random = world.random();
  for (size_t h = 0; h < world.host_count(); ++h) {
    Duration skew = random.between(Duration(0), kSkewMax);
    auto drift = int32_t(random.below(2 * kDriftMaxPpm + 1)) - kDriftMaxPpm;
    world.host(h).set_clock(skew, drift);
  }
}

SimConfig draw_config(uint64_t seed, const ScenarioOptions& options) {
  // The network's knobs come from their own generator so they do not shift the world's.
  SimRandom random(seed ^ 0x5EED5EED5EED5EEDull);
  SimConfig config;
  config.trace_log_lines_max = options.trace_lines_max;
  config.net.latency_min = 50us;
  config.net.latency_max = random.between(1ms, 20ms);
  config.net.drop_probability = double(random.below(21)) / 1000;   // up to 2 %
  config.net.reset_probability = double(random.below(11)) / 1000;  // up to 1 %
  // A lost segment is retransmitted (doubling from retransmit_delay) until the sender gives
  // up after retransmit_timeout, well within kSettle.
  config.net.retransmit_delay = random.between(20ms, 200ms);
  config.net.retransmit_delay_max = 1s;
  config.net.retransmit_timeout = random.between(300ms, 2s);
  config.net.connect_timeout = random.between(200ms, 2s);
  return config;
}

void heal_everything(SimWorld& world, SimHost& server) {
  world.net_config().drop_probability = 0;
  world.net_config().reset_probability = 0;
  world.heal_all();
  if (server.frozen()) world.unfreeze(server);
  if (!server.up()) world.restart(server);
}

std::string check_sweep(const ScenarioCounters& totals, uint64_t) {
  auto get = [&](const char* name) {
    auto it = totals.find(name);
    return it == totals.end() ? uint64_t{0} : it->second;
  };
  uint64_t calls = get("faulted_calls"), ok = get("faulted_ok");
  if (calls > 0 && ok * 100 < calls * kSweepFaultedOkPercentMin)
    return fmt::format("only {} of {} fault-phase calls succeeded (want {} %)", ok, calls,
                       kSweepFaultedOkPercentMin);
  for (const char* needed : {"crashes", "partitions", "freezes", "retransmissions", "give_ups",
                             "err_timedout", "err_connectionreset", "healed_ok"})
    if (get(needed) == 0) return fmt::format("no seed of the sweep had any {}", needed);
  return "";
}

void report(const Tally& t, ScenarioResult& r) {
  r.counters["faulted_calls"] = t.faulted_calls;
  r.counters["faulted_ok"] = t.faulted_ok;
  r.counters["healed_calls"] = t.healed_calls;
  r.counters["healed_ok"] = t.healed_ok;
  r.counters["crashes"] = t.crashes;
  r.counters["partitions"] = t.partitions;
  r.counters["freezes"] = t.freezes;
  r.counters["boots"] = t.boots;
  for (const auto& [name, n] : t.errors) r.counters[name] = n;
  if (t.clients_done != kClients)
    r.fail(fmt::format("{} of {} clients finished (deadlock?)", t.clients_done, kClients));
  uint64_t healed_expected = uint64_t{kClients} * kCallersPerClient * kHealedCallsPerCaller;
  if (t.healed_calls != healed_expected)
    r.fail(fmt::format("{} healed calls made, {} expected", t.healed_calls, healed_expected));
  if (t.faulted_calls == 0 || t.faulted_ok * 100 < t.faulted_calls * kFaultedOkPercentMin)
    r.fail(fmt::format("{} of {} fault-phase calls succeeded, under {} %", t.faulted_ok,
                       t.faulted_calls, kFaultedOkPercentMin));
}

ScenarioResult run_rpc_faults(uint64_t seed, ScenarioOptions options) {
  ScenarioResult result;
  Tally tally;
  tally.result = &result;
  tally.verbose = options.verbose;
  SimWorld world(seed, draw_config(seed, options));
  SimHost& server =
      world.add_host("server", [&tally](SimHost& host) { return server_main(&host, &tally); });
  std::vector<SimHost*> clients;
  for (uint32_t c = 0; c < kClients; ++c)
    clients.push_back(&world.add_host(fmt::format("client-{}", c)));
  Env env{&world, server.address(kPort), world.now() + kFaultPhase,
          world.now() + kFaultPhase + kSettle, &tally};
  set_clocks(world);
  schedule_partitions(world, server, clients, &tally);
  schedule_crashes(world, server, &tally);
  schedule_freezes(world, server, &tally);
  world.schedule(kFaultPhase, [&world, &server] { heal_everything(world, server); });
  for (uint32_t c = 0; c < kClients; ++c)
    world.spawn(*clients[c], client_main(&env, clients[c], c));
  bool idle = world.run_until_idle(kFaultPhase + kSettle + 1h);
  if (!idle) result.fail("the world did not go idle within an hour of virtual time");
  report(tally, result);
  result.counters["retransmissions"] = world.net_stats().retransmissions;
  result.counters["give_ups"] = world.net_stats().give_ups;
  result.capture(world);
  return result;
}

}  // namespace

MICA_SIM_SCENARIO(kRpcFaults,
                  {.name = "rpc_faults",
                   .summary = "RPC under loss, resets, reordering, partitions, silent "
                              "crashes, freezes, clock skew; every call right or retryable",
                   .run = run_rpc_faults,
                   .golden_seed = 1,
                   .golden_hash = 0x1057c177f74915d9,
                   .check_sweep = check_sweep,
                   .suite_seeds = 1000});

}  // namespace mica::sim
