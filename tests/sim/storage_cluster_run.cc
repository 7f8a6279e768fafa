// The storage_cluster scenario's run (tests/sim/storage_cluster.cc has the picture): the
// client workers and what they record, the admin (chain table, recovery, the final round),
// the checks over the history and the replicas, and the scenario's registration.
#include <algorithm>
#include <span>
#include <vector>

#include "async/crc32c.h"
#include "async/log.h"
#include "async/scope.h"
#include "craq/mgmtd_client.h"
#include "craq/storage_client.h"
#include "net/tcp_transport.h"
#include "tests/sim/storage_cluster.h"

namespace mica::sim {
namespace {

using namespace std::chrono_literals;
using craq::ChainInfo;
using craq::PublicState;
using craq::RoutingSnapshot;

constexpr uint64_t kAdminClient = 100;
constexpr Duration kFinalCallTimeout = 5s;
constexpr uint32_t kFinalAttemptsMax = 5;
constexpr Duration kPollPause = 20ms;

// ---- outcomes ----

// Whether a status guarantees that the call had no effect. StorageClient retries refusals
// and connection failures with the same (client id, request id) until its deadline, so the
// status it returns describes its last attempt only: an earlier attempt may have reached the
// head, left a pending version there and been committed later (by the head's next update or
// a resync), even if the last attempt was refused with kNotHead, kStaleChain or kBusy.
// Only a refusal that every attempt of this request must get — its range does not fit the
// chunk — proves that nothing happened; the workload's invalid writes are those.
LinOutcome update_outcome(const Status& status, bool invalid_range) {
  if (status.ok()) return LinOutcome::kOk;
  bool refused =
      status.code() == StatusCode::kInvalidArgument || status.code() == StatusCode::kOutOfRange;
  return invalid_range && refused ? LinOutcome::kFailed : LinOutcome::kIndeterminate;
}

int64_t outcome_trace(const LinOp& op, const Status& status) {
  return int64_t(op.id) * 1000 + int64_t(status.code());
}

// ---- one client call, recorded ----

struct Caller {
  Cluster* c = nullptr;
  craq::StorageClient* client = nullptr;
  uint64_t who = 0;
  SimHost* host = nullptr;
};

Task<Status> recorded_write(Caller caller, uint32_t chunk, uint32_t offset, uint32_t length,
                            Duration timeout) {
  Cluster* c = caller.c;
  LinOp& op = c->invoke(caller.who, LinKind::kWrite, chunk, offset, length);
  uint64_t id = op.id;
  bool invalid = uint64_t(offset) + length > kChunkBytes;
  std::vector<std::byte> data(length);
  fill_pattern(id, offset, data);
  const ClusterChunk& target = c->chunks[chunk];
  auto writing = caller.client->write(target.chain, target.ref, offset, data, kChunkBytes,
                                      deadline_after(timeout));
  Result<craq::ChunkState> written = co_await std::move(writing);
  Status status = written.ok() ? Status() : written.status();
  LinOp& done = c->history[id - 1];
  c->complete(done, update_outcome(status, invalid));
  c->world->trace_user(caller.host, outcome_trace(done, status));
  if (invalid && status.ok())
    c->result->fail(
        fmt::format("a write past the chunk's end was accepted: {}", describe_op(done)));
  if (!invalid &&
      (status.code() == StatusCode::kInvalidArgument || status.code() == StatusCode::kOutOfRange))
    c->result->fail(
        fmt::format("a valid write was refused: {}: {}", describe_op(done), status.to_string()));
  co_return status;
}

Task<Status> recorded_cut(Caller caller, uint32_t chunk, bool remove, uint32_t length) {
  Cluster* c = caller.c;
  LinOp& op =
      c->invoke(caller.who, remove ? LinKind::kRemove : LinKind::kTruncate, chunk, 0, length);
  uint64_t id = op.id;
  const ClusterChunk& target = c->chunks[chunk];
  Status status;
  if (remove) {
    auto removing = caller.client->remove(target.chain, target.ref, deadline_after(kCallTimeout));
    Result<craq::ChunkState> removed = co_await std::move(removing);
    if (!removed.ok()) status = removed.status();
  } else {
    auto truncating = caller.client->truncate(target.chain, target.ref, length, kChunkBytes,
                                              deadline_after(kCallTimeout));
    Result<craq::ChunkState> truncated = co_await std::move(truncating);
    if (!truncated.ok()) status = truncated.status();
  }
  LinOp& done = c->history[id - 1];
  c->complete(done, update_outcome(status, false));
  c->world->trace_user(caller.host, outcome_trace(done, status));
  co_return status;
}

// Reads [offset, offset + length); *bytes gets what came back (empty on failure).
Task<Status> recorded_read(Caller caller, uint32_t chunk, uint32_t offset, uint32_t length,
                           Duration timeout, std::vector<std::byte>* bytes) {
  Cluster* c = caller.c;
  LinOp& op = c->invoke(caller.who, LinKind::kRead, chunk, offset, length);
  uint64_t id = op.id;
  std::vector<std::byte> out(length);
  const ClusterChunk& target = c->chunks[chunk];
  auto reading =
      caller.client->read(target.chain, target.ref, offset, out, deadline_after(timeout));
  Result<uint32_t> got = co_await std::move(reading);
  LinOp& done = c->history[id - 1];
  // A failed read observed nothing: the checker leaves it out whatever its outcome.
  c->complete(done, got.ok() ? LinOutcome::kOk : LinOutcome::kIndeterminate);
  Status status = got.ok() ? Status() : got.status();
  if (got.ok()) {
    out.resize(*got);
    done.observed_bytes = *got;
    done.observed = decode_pattern(offset, out);
    if (bytes != nullptr) *bytes = std::move(out);
  }
  c->world->trace_user(caller.host, outcome_trace(done, status));
  co_return status;
}

uint32_t aligned_below(SimRandom& random, uint32_t limit) {
  return uint32_t(random.below(limit / kLinWordBytes)) * kLinWordBytes;
}

// One random call of the workload.
Task<void> one_call(Caller caller) {
  SimRandom& random = caller.c->world->random();
  auto chunk = uint32_t(random.below(kChunks));
  uint64_t dice = random.below(100);
  Status status;  // recorded in the history with the call; nothing more to do with it
  if (dice < 45) {
    uint32_t offset = aligned_below(random, kChunkBytes);
    uint32_t length = kLinWordBytes + aligned_below(random, kWriteBytesMax);
    length = std::min(length, kChunkBytes - offset);
    auto writing = recorded_write(caller, chunk, offset, length, kCallTimeout);
    status = co_await std::move(writing);
  } else if (dice < 85) {
    uint32_t offset = aligned_below(random, kChunkBytes);
    uint32_t length = kLinWordBytes + aligned_below(random, 2 * kWriteBytesMax);
    auto reading = recorded_read(caller, chunk, offset, length, kCallTimeout, nullptr);
    status = co_await std::move(reading);
  } else if (dice < 92) {
    auto cutting = recorded_cut(caller, chunk, false, aligned_below(random, kChunkBytes + 8));
    status = co_await std::move(cutting);
  } else if (dice < 95) {
    auto removing = recorded_cut(caller, chunk, true, 0);
    status = co_await std::move(removing);
  } else {  // past the chunk's end: must be refused, and change nothing
    uint32_t offset = kChunkBytes - kLinWordBytes * uint32_t(1 + random.below(8));
    uint32_t length = kChunkBytes - offset + kLinWordBytes * uint32_t(1 + random.below(8));
    auto writing = recorded_write(caller, chunk, offset, length, kCallTimeout);
    status = co_await std::move(writing);
  }
  (void)status;
}

Task<void> worker(Caller caller) {
  Cluster* c = caller.c;
  while (c->world->now() < c->start + kClusterFaultEnd && !c->done) {
    auto calling = one_call(caller);
    co_await std::move(calling);
    SleepAwaiter pause = sleep_for(c->world->random().between(0ms, 20ms));
    Status paused = co_await pause;
    if (!paused.ok()) break;
  }
  --c->workers_running;
}

Task<void> client_main(Cluster* c, SimHost* host, uint32_t index) {
  while (c->chunks.empty()) {
    SleepAwaiter pause = sleep_for(kPollPause);
    Status paused = co_await pause;
    if (!paused.ok() || c->done) co_return;
  }
  net::TcpTransport transport;
  net::ConnectionPool pool(&transport);
  craq::RoutingClient routing(&pool, cluster_routing_options(c));
  routing.start();
  craq::StorageClientOptions options;
  options.client_id = 1 + index;
  options.call_timeout = kCallTimeout;
  options.attempt_timeout = 500ms;
  craq::StorageClient client(&pool, &transport, &routing, options);
  {
    TaskScope scope;
    for (uint32_t w = 0; w < kWorkersPerClient; ++w)
      scope.spawn(worker(Caller{c, &client, 1 + index * kWorkersPerClient + w, host}));
    co_await scope.join();
  }
  Task<void> stopping = routing.stop();
  co_await std::move(stopping);
  Task<void> closing = pool.close();
  co_await std::move(closing);
}

// ---- the admin ----

Task<bool> pause_admin(Duration d) {
  SleepAwaiter pause = sleep_for(d);
  Status paused = co_await pause;
  co_return paused.ok();
}

Task<Status> make_table(Cluster* c, craq::MgmtdClient* mgmtd, TimePoint limit) {
  for (;;) {
    bool registered = false;
    if (c->mgmtd != nullptr) {
      std::shared_ptr<const RoutingSnapshot> routing = c->mgmtd->routing();
      registered = routing->nodes.size() == c->storage.size() &&
                   routing->targets.size() == c->storage.size() * kTargetsPerHost;
    }
    if (registered) break;
    if (c->world->now() >= limit)
      co_return Status(StatusCode::kTimedOut, "not every storage host registered");
    auto pausing = pause_admin(kPollPause);
    if (!co_await std::move(pausing)) co_return Status(StatusCode::kCancelled, "cancelled");
  }
  craq::CreateChainTableRequest request{.replica_count = kClusterReplicas,
                                        .seed = c->world->seed()};
  auto calling = mgmtd->call<craq::MgmtdService::create_chain_table>(request, deadline_after(2s));
  Result<craq::CreateChainTableResponse> created = co_await std::move(calling);
  if (!created.ok()) co_return created.status();
  if (created->chains.empty()) co_return Status(StatusCode::kInternal, "a table of no chains");
  for (uint32_t i = 0; i < kChunks; ++i)
    c->chunks.push_back(ClusterChunk{.chain = created->chains[i % created->chains.size()].id,
                                     .ref = craq::ChunkRef{.inode = 1, .index = i}});
  co_return Status();
}

bool cluster_full_strength(const RoutingSnapshot& routing) {
  for (const ChainInfo& chain : routing.chains) {
    if (chain.targets.size() != kClusterReplicas) return false;
    for (const craq::ChainTarget& member : chain.targets)
      if (member.state != PublicState::kServing) return false;
  }
  return !routing.chains.empty();
}

std::string chain_states(const RoutingSnapshot& routing) {
  std::string text;
  for (const ChainInfo& chain : routing.chains)
    for (const craq::ChainTarget& member : chain.targets)
      if (member.state != PublicState::kServing)
        text += fmt::format(" chain {} target {} {};", chain.id, member.target,
                            craq::public_state_name(member.state));
  return text;
}

// Once healed: every chain serves at full strength within kClusterRecoveryMax.
Task<bool> wait_recovered(Cluster* c) {
  TimePoint healed = c->start + kClusterFaultEnd;
  while (c->world->now() < healed + kClusterRecoveryMax) {
    if (c->mgmtd != nullptr && cluster_full_strength(*c->mgmtd->routing())) {
      c->recovery_ms = uint64_t((c->world->now() - healed) / 1ms);
      co_return true;
    }
    auto pausing = pause_admin(kPollPause);
    if (!co_await std::move(pausing)) co_return false;
  }
  c->result->fail(fmt::format(
      "a chain stayed blocked: not every chain served at full strength "
      "{} s after the heal:{}",
      kClusterRecoveryMax / 1s, c->mgmtd ? chain_states(*c->mgmtd->routing()) : " mgmtd down"));
  co_return false;
}

// After recovery: one more write to every chunk (which also makes each head resolve a
// pending version a failure left behind), a full read of it, and the replicas' check.
Task<void> final_round(Cluster* c, net::ConnectionPool* pool, craq::StorageClient* client,
                       SimHost* host) {
  Caller caller{c, client, kAdminClient, host};
  for (uint32_t chunk = 0; chunk < kChunks; ++chunk) {
    Status wrote;
    for (uint32_t attempt = 0; attempt < kFinalAttemptsMax; ++attempt) {
      auto writing = recorded_write(caller, chunk, 0, kLinWordBytes, kFinalCallTimeout);
      wrote = co_await std::move(writing);
      if (wrote.ok()) break;
    }
    if (!wrote.ok())
      c->result->fail(
          fmt::format("chunk {}: a write after recovery failed: {}", chunk, wrote.to_string()));
    std::vector<std::byte> content;
    auto reading = recorded_read(caller, chunk, 0, kChunkBytes, kFinalCallTimeout, &content);
    Status read = co_await std::move(reading);
    if (!read.ok()) {
      c->result->fail(
          fmt::format("chunk {}: a read after recovery failed: {}", chunk, read.to_string()));
      continue;
    }
    auto checking = check_replicas(c, pool, chunk, std::move(content));
    co_await std::move(checking);
  }
}

Task<void> admin_work(Cluster* c, net::ConnectionPool* pool, net::Transport* transport,
                      SimHost* host) {
  craq::MgmtdClient mgmtd(pool, {c->mgmtd_address});
  auto making = make_table(c, &mgmtd, c->start + kClusterFaultStart);
  Status made = co_await std::move(making);
  if (!made.ok()) {
    c->result->fail(fmt::format("creating the chain table: {}", made.to_string()));
    co_return;
  }
  SleepAwaiter until_healed = sleep_until(c->start + kClusterFaultEnd);
  Status slept = co_await until_healed;
  if (!slept.ok()) co_return;
  auto waiting = wait_recovered(c);
  if (!co_await std::move(waiting)) co_return;
  while (c->workers_running > 0) {
    auto pausing = pause_admin(kPollPause);
    if (!co_await std::move(pausing)) co_return;
  }
  craq::RoutingClient routing(pool, cluster_routing_options(c));
  routing.start();
  craq::StorageClientOptions options{.client_id = kAdminClient, .call_timeout = kFinalCallTimeout};
  craq::StorageClient client(pool, transport, &routing, options);
  auto finishing = final_round(c, pool, &client, host);
  co_await std::move(finishing);
  Task<void> stopping = routing.stop();
  co_await std::move(stopping);
}

Task<void> admin_main(Cluster* c, SimHost* host) {
  net::TcpTransport transport;
  net::ConnectionPool pool(&transport);
  auto working = admin_work(c, &pool, &transport, host);
  co_await std::move(working);
  c->done = true;
  Task<void> closing = pool.close();
  co_await std::move(closing);
}

// ---- the scenario ----

SimConfig cluster_config(uint64_t seed, const ScenarioOptions& options) {
  SimRandom random(seed ^ 0x5707A6EC157E5ull);
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

void report(const Cluster& c, ScenarioResult& result) {
  uint64_t acked = 0, indeterminate = 0, failed = 0, reads = 0;
  for (const LinOp& op : c.history) {
    if (op.kind == LinKind::kRead) {
      reads += op.outcome == LinOutcome::kOk;
      continue;
    }
    acked += op.outcome == LinOutcome::kOk;
    indeterminate += op.outcome == LinOutcome::kIndeterminate;
    failed += op.outcome == LinOutcome::kFailed;
  }
  result.counters["updates_acked"] = acked;
  result.counters["updates_indeterminate"] = indeterminate;
  result.counters["updates_refused"] = failed;
  result.counters["reads_ok"] = reads;
  result.counters["storage_crashes"] = c.storage_crashes;
  result.counters["mgmtd_crashes"] = c.mgmtd_crashes;
  result.counters["partitions"] = c.partitions;
  result.counters["one_way_partitions"] = c.one_way_partitions;
  result.counters["lossy_seeds"] = c.lossy_seeds;
  result.counters["disk_error_hosts"] = c.disk_error_hosts;
  result.counters["storage_boot_failures"] = c.storage_boot_failures;
  result.counters["recovery_ms_total"] = c.recovery_ms;
}

// Info lines of a dozen servers cost more than the simulation of a sweep's seed: only
// warnings and errors, unless the run was asked to tell its story. Restored afterwards.
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

ScenarioResult run_storage_cluster(uint64_t seed, ScenarioOptions options) {
  QuietLog quiet(!options.verbose && options.trace_lines_max == 0);
  ScenarioResult result;
  Cluster c;
  c.result = &result;
  c.verbose = options.verbose;
  SimWorld world(seed, cluster_config(seed, options));
  c.world = &world;
  c.start = world.now();
  c.mgmtd_host = &world.add_host("mgmtd", cluster_mgmtd_boot(&c));
  c.mgmtd_host->disk().make_durable_directories("/mgmtd");
  c.mgmtd_address = c.mgmtd_host->address(kClusterMgmtdPort);
  auto hosts =
      uint32_t(kStorageHostsMin + world.random().below(kStorageHostsMax - kStorageHostsMin + 1));
  c.storage.resize(hosts);
  for (uint32_t i = 0; i < hosts; ++i) {
    // The disk is formatted before the run: its directories exist and are durable.
    SimHost& host = world.add_host(fmt::format("storage-{}", i + 1), storage_boot(&c, i));
    host.disk().make_durable_directories("/node");
    for (uint32_t t = 0; t < kTargetsPerHost; ++t)
      host.disk().make_durable_directories(fmt::format("/t{}", t));
    c.storage[i].host = &host;
  }
  c.workers_running = kClientHosts * kWorkersPerClient;
  for (uint32_t i = 0; i < kClientHosts; ++i) {
    SimHost& host = world.add_host(fmt::format("client-{}", i + 1));
    world.spawn(host, client_main(&c, &host, i));
  }
  SimHost& admin = world.add_host("admin");
  schedule_cluster_faults(&c);
  world.run(admin, admin_main(&c, &admin));
  c.done = true;
  check_cluster_history(&c);
  report(c, result);
  result.capture(world);
  return result;
}

std::string check_sweep(const ScenarioCounters& totals, uint64_t) {
  auto get = [&](const char* name) {
    auto it = totals.find(name);
    return it == totals.end() ? uint64_t{0} : it->second;
  };
  for (const char* needed :
       {"storage_crashes", "mgmtd_crashes", "partitions", "one_way_partitions", "lossy_seeds",
        "disk_error_hosts", "updates_acked", "updates_indeterminate", "updates_refused", "reads_ok",
        "indeterminate_seen"})
    if (get(needed) == 0) return fmt::format("no seed of the sweep had any {}", needed);
  uint64_t chunks = get("chunks_checked");
  if (get("lin_gave_up") * 100 > chunks)
    return fmt::format("the checker gave up on {} of {} chunk histories (more than 1 %)",
                       get("lin_gave_up"), chunks);
  return "";
}

}  // namespace

MICA_SIM_SCENARIO(kStorageCluster,
                  {.name = "storage_cluster",
                   .summary = "mgmtd + 3..6 storage nodes + clients under crashes, power loss, "
                              "partitions, loss and disk errors; linearizable chunks, converged "
                              "replicas, full recovery",
                   .run = run_storage_cluster,
                   .golden_seed = 2,
                   .golden_hash = 0x9088b6b205c6a5ed,
                   .check_sweep = check_sweep,
                   .suite_seeds = 1000,
                   // About 0.2 s a seed in the g++ Debug build: 100 seeds there, 40 in ASan.
                   .unoptimised_suite_percent = 10});

}  // namespace mica::sim
