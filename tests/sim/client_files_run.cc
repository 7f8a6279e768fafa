// Scenario client_files' run (tests/sim/client_files.cc has the picture): the admin (chain
// table, readiness, recovery after the heal), the world's hosts, the counters and the
// scenario's registration.
#include <algorithm>

#include "async/log.h"
#include "craq/mgmtd_client.h"
#include "net/tcp_transport.h"
#include "tests/sim/client_files.h"

namespace mica::sim::client_files {
namespace {

using namespace std::chrono_literals;
using craq::RoutingSnapshot;

constexpr Duration kPollPause = 20ms;
// Once healed, every chain must serve at full strength within this much virtual time.
constexpr Duration kRecoveryMax = 20s;
// Once recovered, the workers' final reads must finish within this much virtual time.
constexpr Duration kVerifyMax = 120s;

Task<bool> pause_admin(Duration d) {
  SleepAwaiter pause = sleep_for(d);
  Status paused = co_await pause;
  co_return paused.ok();
}

Task<Status> make_table(State* s, craq::MgmtdClient* mgmtd) {
  Cluster* c = &s->cluster;
  TimePoint limit = c->start + kFaultStart;
  for (;;) {
    bool registered = false;
    if (c->mgmtd != nullptr) {
      std::shared_ptr<const RoutingSnapshot> routing = c->mgmtd->routing();
      registered = routing->targets.size() == kStorageHosts * kTargetsPerHost &&
                   routing->meta_shards.size() == kShards;
    }
    if (registered) break;
    if (c->world->now() >= limit)
      co_return Status(StatusCode::kTimedOut, "not every storage and meta host registered");
    auto pausing = pause_admin(kPollPause);
    if (!co_await std::move(pausing)) co_return Status(StatusCode::kCancelled, "cancelled");
  }
  craq::CreateChainTableRequest request{.replica_count = kClusterReplicas,
                                        .seed = c->world->seed()};
  auto calling = mgmtd->call<craq::MgmtdService::create_chain_table>(request, deadline_after(2s));
  Result<craq::CreateChainTableResponse> created = co_await std::move(calling);
  if (!created.ok()) co_return created.status();
  // The meta node must know the table before the first create (else kNotFound).
  while (s->meta == nullptr || s->meta->routing()->current() == nullptr ||
         s->meta->routing()->current()->tables.empty()) {
    if (c->world->now() >= limit)
      co_return Status(StatusCode::kTimedOut, "the meta node never saw the chain table");
    auto pausing = pause_admin(kPollPause);
    if (!co_await std::move(pausing)) co_return Status(StatusCode::kCancelled, "cancelled");
  }
  co_return Status();
}

bool full_strength(const RoutingSnapshot& routing) {
  for (const craq::ChainInfo& chain : routing.chains) {
    if (chain.targets.size() != kClusterReplicas) return false;
    for (const craq::ChainTarget& member : chain.targets)
      if (member.state != craq::PublicState::kServing) return false;
  }
  return !routing.chains.empty();
}

Task<void> wait_recovered(State* s) {
  Cluster* c = &s->cluster;
  TimePoint healed = c->start + kFaultEnd;
  while (c->world->now() < healed + kRecoveryMax) {
    if (c->mgmtd != nullptr && full_strength(*c->mgmtd->routing())) {
      c->recovery_ms = uint64_t((c->world->now() - healed) / 1ms);
      s->recovered = true;
      co_return;
    }
    auto pausing = pause_admin(kPollPause);
    if (!co_await std::move(pausing)) co_return;
  }
  c->result->fail(fmt::format("not every chain served at full strength {} s after the heal",
                              kRecoveryMax / 1s));
}

Task<void> admin_work(State* s, net::ConnectionPool* pool) {
  Cluster* c = &s->cluster;
  craq::MgmtdClient mgmtd(pool, {c->mgmtd_address});
  auto making = make_table(s, &mgmtd);
  Status made = co_await std::move(making);
  if (!made.ok()) {
    c->result->fail(fmt::format("setting the cluster up: {}", made.to_string()));
    co_return;
  }
  s->ready = true;
  SleepAwaiter until_healed = sleep_until(c->start + kFaultEnd);
  Status slept = co_await until_healed;
  if (!slept.ok()) co_return;
  auto waiting = wait_recovered(s);
  co_await std::move(waiting);
  TimePoint limit = c->world->now() + kVerifyMax;
  while (s->workers_running > 0) {
    if (c->world->now() >= limit) {
      c->result->fail(fmt::format("{} workers did not finish within {} s of the recovery",
                                  s->workers_running, kVerifyMax / 1s));
      co_return;
    }
    auto pausing = pause_admin(kPollPause);
    if (!co_await std::move(pausing)) co_return;
  }
}

}  // namespace

Task<void> admin_main(State* s, SimHost*) {
  net::TcpTransport transport;
  net::ConnectionPool pool(&transport);
  auto working = admin_work(s, &pool);
  co_await std::move(working);
  Task<void> closing = pool.close();
  co_await std::move(closing);
}

namespace {

SimConfig world_config(uint64_t seed, const ScenarioOptions& options) {
  SimRandom random(seed ^ 0xC11E47F11E5ull);
  SimConfig config;
  config.trace_log_lines_max = options.trace_lines_max;
  config.net.latency_min = 50us;
  config.net.latency_max = random.between(200us, 3ms);
  config.net.retransmit_delay = random.between(20ms, 100ms);
  config.net.retransmit_delay_max = 400ms;
  config.net.retransmit_timeout = random.between(300ms, 1s);
  config.net.connect_timeout = 500ms;
  return config;
}

void report(const State& s, ScenarioResult& result) {
  result.counters["writes_acked"] = s.writes_acked;
  result.counters["writes_failed"] = s.writes_failed;
  result.counters["reads_checked"] = s.reads_checked;
  result.counters["calls_failed"] = s.calls_failed;
  result.counters["closes_checked"] = s.closes_checked;
  result.counters["files_verified"] = s.files_verified;
  result.counters["bytes_verified"] = s.bytes_verified;
  result.counters["storage_crashes"] = s.cluster.storage_crashes;
  result.counters["meta_crashes"] = s.meta_crashes;
  result.counters["partitions"] = s.cluster.partitions;
  result.counters["one_way_partitions"] = s.cluster.one_way_partitions;
  result.counters["recovery_ms_total"] = s.cluster.recovery_ms;
}

// Servers' info lines cost more than the simulation: warnings only, unless asked.
class QuietLog {
 public:
  explicit QuietLog(bool quiet) : saved_(log_config()) {
    if (!quiet) return;
    LogConfig config = saved_;
    config.level = std::max(config.level, LogLevel::kWarn);
    Status set = log_configure(config);
    MICA_ASSERT(set.ok());
  }
  QuietLog(const QuietLog&) = delete;
  QuietLog& operator=(const QuietLog&) = delete;
  ~QuietLog() { (void)log_configure(saved_); }

 private:
  LogConfig saved_;
};

void add_hosts(State* s, SimWorld& world) {
  Cluster* c = &s->cluster;
  c->mgmtd_host = &world.add_host("mgmtd", mgmtd_boot(s));
  c->mgmtd_host->disk().make_durable_directories("/mgmtd");
  c->mgmtd_address = c->mgmtd_host->address(kClusterMgmtdPort);
  s->meta_host = &world.add_host("meta", meta_boot(s));
  s->meta_host->disk().make_durable_directories("/meta");
  s->meta_address = s->meta_host->address(kMetaPort);
  c->storage.resize(kStorageHosts);
  for (uint32_t i = 0; i < kStorageHosts; ++i) {
    SimHost& host = world.add_host(fmt::format("storage-{}", i + 1), storage_boot(c, i));
    host.disk().make_durable_directories("/node");
    for (uint32_t t = 0; t < kTargetsPerHost; ++t)
      host.disk().make_durable_directories(fmt::format("/t{}", t));
    c->storage[i].host = &host;
  }
  s->workers_running = kClientHosts * kWorkersPerClient;
  for (uint32_t i = 0; i < kClientHosts; ++i) {
    SimHost& host = world.add_host(fmt::format("client-{}", i + 1));
    world.spawn(host, client_main(s, &host, i));
  }
}

ScenarioResult run_client_files(uint64_t seed, ScenarioOptions options) {
  QuietLog quiet(!options.verbose && options.trace_lines_max == 0);
  ScenarioResult result;
  State s;
  s.cluster.result = &result;
  s.cluster.verbose = options.verbose;
  SimWorld world(seed, world_config(seed, options));
  s.cluster.world = &world;
  s.cluster.start = world.now();
  add_hosts(&s, world);
  SimHost& admin = world.add_host("admin");
  schedule_client_faults(&s);
  world.run(admin, admin_main(&s, &admin));
  s.cluster.done = true;
  if (s.calls_failed > 0)
    result.fail(fmt::format("{} client calls failed: faults must cost latency, not errors",
                            s.calls_failed));
  report(s, result);
  result.capture(world);
  return result;
}

std::string check_sweep(const ScenarioCounters& totals, uint64_t seeds) {
  auto get = [&](const char* name) {
    auto it = totals.find(name);
    return it == totals.end() ? uint64_t{0} : it->second;
  };
  for (const char* needed : {"storage_crashes", "partitions", "one_way_partitions", "writes_acked",
                             "reads_checked", "closes_checked", "files_verified"})
    if (get(needed) == 0) return fmt::format("no seed of the sweep had any {}", needed);
  // The meta host crashes in one seed of three: a sweep of ten seeds or more must see it.
  if (seeds >= 10 && get("meta_crashes") == 0) return "no seed of the sweep crashed meta";
  return "";
}

}  // namespace

MICA_SIM_SCENARIO(kClientFiles,
                  {.name = "client_files",
                   .summary = "client::Client writes, reads, fsyncs and closes files on mgmtd + "
                              "meta + 3 storage nodes under storage crashes and partitions; "
                              "acknowledged bytes and lengths read back exactly",
                   .run = run_client_files,
                   .golden_seed = 1,
                   .golden_hash = 0xa03f4d6215e70953,
                   .check_sweep = check_sweep,
                   .suite_seeds = 200,
                   // About 0.4 s of CPU a seed in the g++ Debug build: 10 seeds there, 4 in ASan.
                   .unoptimised_suite_percent = 5});

}  // namespace mica::sim::client_files

