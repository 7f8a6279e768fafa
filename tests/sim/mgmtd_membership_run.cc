// The mgmtd_membership scenario's run (tests/sim/mgmtd_membership.cc has the picture): the
// admin host, the faults drawn from the seed, the check of every routing mgmtd publishes, the
// end-of-run checks and the scenario's registration.
#include "async/scope.h"
#include "craq/mgmtd_client.h"
#include "tests/sim/mgmtd_membership.h"

namespace mica::sim {
namespace {

using namespace std::chrono_literals;
using craq::ChainInfo;
using craq::PublicState;
using craq::RoutingSnapshot;
using craq::TargetId;

// ---- the checker's view of health ----

bool node_healthy(Run* run, craq::NodeId id) {
  auto index = run->node_by_id.find(id);
  if (index == run->node_by_id.end()) return false;
  const NodeState& node = run->nodes[index->second];
  if (!node.host->up() || node.partitions > 0 || !run->mgmtd_host->up()) return false;
  TimePoint since = std::max(node.healthy_since, run->mgmtd_since);
  return run->world->now() - since >= kHealthyWindow;
}

}  // namespace

void check_published(Run* run, const RoutingSnapshot& published) {
  if (run->done) return;
  run->checker.observe(published, "mgmtd");
  if (published.version <= run->last_decided_version) return;  // a restart's republish
  run->last_decided_version = published.version;
  run->checker.observe_decision(std::make_shared<const RoutingSnapshot>(published),
                                [run](craq::NodeId id) { return node_healthy(run, id); });
}

namespace {

// ---- the admin ----

constexpr Duration kAdminCallTimeout = 1s;
constexpr uint32_t kAdminAttemptsMax = 20;
constexpr Duration kAdminRetryPause = 100ms;

uint32_t total_targets(const Run* run) {
  uint32_t total = 0;
  for (const NodeState& node : run->nodes) total += node.target_count;
  return total;
}

Task<bool> sleep_world(Run* run, Duration d) {
  SleepAwaiter pause = sleep_for(d);
  Status paused = co_await pause;
  co_return paused.ok() && !run->result->failures;
}

// Waits (polling) until every node has registered every target.
Task<bool> wait_for_members(Run* run, TimePoint until) {
  while (run->world->now() < until) {
    if (run->mgmtd != nullptr) {
      std::shared_ptr<const RoutingSnapshot> routing = run->mgmtd->routing();
      if (routing->nodes.size() == kNodes && routing->targets.size() == total_targets(run))
        co_return true;
    }
    auto sleeping = sleep_world(run, 20ms);
    if (!co_await std::move(sleeping)) co_return false;
  }
  co_return false;
}

// An admin call, retried while mgmtd is unreachable (it may be restarting).
template <net::RpcMethod auto M>
Task<Result<net::ResponseOf<M>>> admin_call(craq::MgmtdClient* mgmtd, net::RequestOf<M> request) {
  for (uint32_t attempt = 1;; ++attempt) {
    auto calling = mgmtd->call<M>(request, deadline_after(kAdminCallTimeout));
    Result<net::ResponseOf<M>> response = co_await std::move(calling);
    if (response.ok() || !craq::is_mgmtd_unreachable(response.status().code()) ||
        attempt == kAdminAttemptsMax)
      co_return response;
    SleepAwaiter pause = sleep_for(kAdminRetryPause);
    Status paused = co_await pause;
    if (!paused.ok()) co_return paused;
  }
}

Task<Status> create_table(Run* run, craq::MgmtdClient* mgmtd) {
  craq::CreateChainTableRequest request{.replica_count = kReplicas, .seed = run->world->seed()};
  auto calling = admin_call<craq::MgmtdService::create_chain_table>(mgmtd, request);
  Result<craq::CreateChainTableResponse> created = co_await std::move(calling);
  if (!created.ok()) co_return created.status();
  if (created->chains.empty()) co_return Status(StatusCode::kInternal, "a table of no chains");
  co_return Status();
}

bool full_strength(const RoutingSnapshot& routing) {
  for (const ChainInfo& chain : routing.chains) {
    if (chain.targets.size() != kReplicas) return false;
    for (const craq::ChainTarget& member : chain.targets)
      if (member.state != PublicState::kServing) return false;
  }
  return !routing.chains.empty();
}

// One step of what an operator does for a target whose disk was replaced: nothing while
// mgmtd still shows it serving (it has not noticed yet); if its chain waits for it
// (lastsrv), promote another member (accepting the loss); else put the new disk's target in
// its place. *done once it is replaced or in no chain.
Task<Status> replace_step(Run* run, craq::MgmtdClient* mgmtd, TargetId old, TargetId fresh,
                          bool* done) {
  if (run->mgmtd == nullptr) co_return Status(StatusCode::kHostDown, "mgmtd is down");
  std::shared_ptr<const RoutingSnapshot> routing = run->mgmtd->routing();
  const craq::TargetInfo* target = craq::find_target(*routing, old);
  *done = target == nullptr || target->chain == 0;
  if (*done) co_return Status();
  const ChainInfo* chain = craq::find_chain(*routing, target->chain);
  PublicState state = PublicState::kOffline;
  TargetId other = 0;
  for (const craq::ChainTarget& member : chain->targets) {
    if (member.target == old)
      state = member.state;
    else if (other == 0)
      other = member.target;
  }
  if (state == PublicState::kServing)
    co_return Status(StatusCode::kBusy, fmt::format("target {} still serves", old));
  if (state == PublicState::kLastServing) {
    craq::PromoteTargetRequest promote{.chain = chain->id, .target = other};
    auto calling = admin_call<craq::MgmtdService::promote_target>(mgmtd, promote);
    CO_TRY(co_await std::move(calling));
    ++run->promotions;
    co_return Status(StatusCode::kBusy, "promoted; replace next");
  }
  craq::ReplaceTargetRequest replace{.old_target = old, .new_target = fresh};
  auto calling = admin_call<craq::MgmtdService::replace_target>(mgmtd, replace);
  CO_TRY(co_await std::move(calling));
  ++run->replacements;
  *done = true;
  co_return Status();
}

// Steps until done; a refusal (the chain changed between the look and the call) or a
// target still serving is tried again until the limit.
Task<Status> replace_disk(Run* run, craq::MgmtdClient* mgmtd, TargetId old, TargetId fresh,
                          TimePoint limit) {
  for (;;) {
    bool done = false;
    auto stepping = replace_step(run, mgmtd, old, fresh, &done);
    Status stepped = co_await std::move(stepping);
    if (done) co_return Status();
    if (run->world->now() >= limit) co_return stepped;
    SleepAwaiter pause = sleep_for(kAdminRetryPause);
    Status paused = co_await pause;
    if (!paused.ok()) co_return paused;
  }
}

// Every replaced disk of the run: its slot's earlier targets that sit in a chain.
Task<Status> replace_disks(Run* run, craq::MgmtdClient* mgmtd, TimePoint limit) {
  for (const NodeState& node : run->nodes) {
    for (const std::vector<TargetId>& ids : node.slot_ids) {
      for (size_t i = 0; i + 1 < ids.size(); ++i) {
        auto replacing = replace_disk(run, mgmtd, ids[i], ids.back(), limit);
        CO_TRY(co_await std::move(replacing));
      }
    }
  }
  co_return Status();
}

// Once healed: every node registered its current disks (so their ids are known).
bool every_disk_registered(const Run* run) {
  if (run->mgmtd == nullptr) return false;
  std::shared_ptr<const RoutingSnapshot> routing = run->mgmtd->routing();
  for (const NodeState& node : run->nodes) {
    if (!node.host->up() || !node.registered) return false;
    for (const std::vector<TargetId>& ids : node.slot_ids)
      if (ids.empty() || craq::find_target(*routing, ids.back()) == nullptr) return false;
  }
  return true;
}

Task<void> recover(Run* run, craq::MgmtdClient* mgmtd, TimePoint healed) {
  TimePoint limit = healed + kRecoveryMax;
  while (!every_disk_registered(run) && run->world->now() < limit) {
    auto sleeping = sleep_world(run, 50ms);
    if (!co_await std::move(sleeping)) co_return;
  }
  auto replacing = replace_disks(run, mgmtd, limit);
  Status replaced = co_await std::move(replacing);
  if (!replaced.ok()) run->result->fail(fmt::format("replacing disks: {}", replaced.to_string()));
  while (run->world->now() < limit) {
    if (run->mgmtd != nullptr && full_strength(*run->mgmtd->routing())) {
      run->recovery_ms = uint64_t((run->world->now() - healed) / 1ms);
      co_return;
    }
    auto sleeping = sleep_world(run, 20ms);
    if (!co_await std::move(sleeping)) co_return;
  }
  std::string chains;
  if (run->mgmtd != nullptr)
    for (const ChainInfo& chain : run->mgmtd->routing()->chains)
      for (const craq::ChainTarget& member : chain.targets)
        if (member.state != PublicState::kServing)
          chains += fmt::format(" chain {} target {} {};", chain.id, member.target,
                                craq::public_state_name(member.state));
  run->result->fail(fmt::format("not every chain was back to full strength {} s after the heal:{}",
                                kRecoveryMax / 1s, chains));
}

Task<void> admin_work(Run* run, craq::MgmtdClient* mgmtd) {
  auto waiting = wait_for_members(run, run->start + kFaultStart);
  if (!co_await std::move(waiting)) {
    run->result->fail("not every node registered before the faults began");
    co_return;
  }
  auto creating = create_table(run, mgmtd);
  Status created = co_await std::move(creating);
  if (!created.ok()) {
    run->result->fail(fmt::format("create_chain_table: {}", created.to_string()));
    co_return;
  }
  SleepAwaiter until_healed = sleep_until(run->start + kFaultEnd);
  Status slept = co_await until_healed;
  if (!slept.ok()) co_return;
  auto recovering = recover(run, mgmtd, run->start + kFaultEnd);
  co_await std::move(recovering);
}

Task<void> admin_main(Run* run) {
  net::TcpTransport transport;
  net::ConnectionPool pool(&transport);
  craq::RoutingClientOptions options = routing_client_options(run);
  options.on_update = [run](const std::shared_ptr<const RoutingSnapshot>& routing) {
    if (!run->done) run->checker.observe(*routing, "admin");
  };
  craq::RoutingClient observer(&pool, options);
  observer.start();
  craq::MgmtdClient mgmtd(&pool, {run->mgmtd_address});
  auto working = admin_work(run, &mgmtd);
  co_await std::move(working);
  run->done = true;
  Task<void> stopping = observer.stop();
  co_await std::move(stopping);
  Task<void> closing = pool.close();
  co_await std::move(closing);
}

// ---- faults ----

void crash_node(Run* run, uint32_t index, Duration at, Duration down) {
  SimWorld& world = *run->world;
  world.schedule(at, [run, index] {
    NodeState& node = run->nodes[index];
    if (run->done || run->healed || !node.host->up()) return;
    run->world->crash(*node.host);
    node.registered = false;  // until its next boot has registered
    ++run->node_crashes;
  });
  bool replace = world.random().chance(kDiskReplaceChance);
  uint32_t slot = uint32_t(world.random().below(run->nodes[index].target_count));
  world.schedule(at + down, [run, index, replace, slot] {
    NodeState& node = run->nodes[index];
    if (run->done || node.host->up()) return;
    if (replace) {
      node.replace_at_boot[slot] = true;
      ++run->disks_replaced;
    }
    node.healthy_since = run->world->now();
    run->world->restart(*node.host);
  });
}

void partition_node(Run* run, uint32_t index, uint64_t way, Duration at, Duration length) {
  run->world->schedule(at, [run, index, way] {
    NodeState& node = run->nodes[index];
    if (run->done || run->healed) return;
    if (way != 1) run->world->partition_one_way(*node.host, *run->mgmtd_host);
    if (way != 2) run->world->partition_one_way(*run->mgmtd_host, *node.host);
    ++node.partitions;
    ++run->partitions;
    if (way != 0) ++run->one_way_partitions;
  });
  run->world->schedule(at + length, [run, index] {
    NodeState& node = run->nodes[index];
    if (run->done || run->healed || node.partitions == 0) return;
    if (--node.partitions > 0) return;
    run->world->heal(*node.host, *run->mgmtd_host);
    node.healthy_since = run->world->now();
  });
}

void crash_mgmtd(Run* run, Duration at, Duration down) {
  run->world->schedule(at, [run] {
    if (run->done || run->healed || !run->mgmtd_host->up()) return;
    run->mgmtd = nullptr;
    run->world->crash(*run->mgmtd_host);
    ++run->mgmtd_crashes;
  });
  run->world->schedule(at + down, [run] {
    if (run->done || run->mgmtd_host->up()) return;
    run->mgmtd_since = run->world->now();
    run->world->restart(*run->mgmtd_host);
  });
}

void heal_everything(Run* run) {
  if (run->done) return;  // the world is being torn down
  run->healed = true;
  run->world->heal_all();
  for (NodeState& node : run->nodes) {
    if (node.partitions > 0) node.healthy_since = run->world->now();
    node.partitions = 0;
    if (!node.host->up()) {
      node.healthy_since = run->world->now();
      run->world->restart(*node.host);
    }
  }
  if (!run->mgmtd_host->up()) {
    run->mgmtd_since = run->world->now();
    run->world->restart(*run->mgmtd_host);
  }
}

void schedule_faults(Run* run) {
  SimRandom& random = run->world->random();
  Duration latest = kFaultEnd - kWindowMin;
  uint64_t crashes = random.below(kNodeCrashesMax + 1);
  for (uint64_t i = 0; i < crashes; ++i) {
    auto index = uint32_t(random.below(kNodes));
    Duration at = random.between(kFaultStart, latest);
    crash_node(run, index, at, random.between(kWindowMin, kWindowMax));
  }
  uint64_t partitions = random.below(kPartitionsMax + 1);
  for (uint64_t i = 0; i < partitions; ++i) {
    auto index = uint32_t(random.below(kNodes));
    uint64_t way = random.below(3);
    Duration at = random.between(kFaultStart, latest);
    partition_node(run, index, way, at, random.between(kWindowMin, kWindowMax));
  }
  uint64_t mgmtd_crashes = random.below(kMgmtdCrashesMax + 1);
  for (uint64_t i = 0; i < mgmtd_crashes; ++i) {
    Duration at = random.between(kFaultStart, latest);
    crash_mgmtd(run, at, random.between(kWindowMin, kWindowMax));
  }
  run->world->schedule(kFaultEnd, [run] { heal_everything(run); });
}

// ---- the scenario ----

SimConfig draw_config(uint64_t seed, const ScenarioOptions& options) {
  SimRandom random(seed ^ 0x3A7C0DE5EEDull);
  SimConfig config;
  config.trace_log_lines_max = options.trace_lines_max;
  config.net.latency_min = 50us;
  config.net.latency_max = random.between(200us, 5ms);
  config.net.retransmit_delay = random.between(20ms, 100ms);
  config.net.retransmit_delay_max = 400ms;
  config.net.retransmit_timeout = random.between(300ms, 1s);
  config.net.connect_timeout = 500ms;
  return config;
}

void report(const Run& run, ScenarioResult& result) {
  const RoutingCheckCounts& counts = run.checker.counts();
  result.counters["snapshots_checked"] = counts.snapshots;
  result.counters["routing_versions"] = counts.versions;
  result.counters["blocked_chains_seen"] = counts.blocked_chains;
  result.counters["syncing_seen"] = counts.syncing_targets;
  result.counters["lastsrv_seen"] = counts.lastsrv_targets;
  result.counters["chain_versions_seen"] = counts.chain_contents;
  result.counters["reports_checked"] = counts.reports;
  result.counters["syncs_checked"] = counts.syncs_done;
  result.counters["stale_at_boot"] = run.stale_at_boot;
  result.counters["node_crashes"] = run.node_crashes;
  result.counters["mgmtd_crashes"] = run.mgmtd_crashes;
  result.counters["partitions"] = run.partitions;
  result.counters["one_way_partitions"] = run.one_way_partitions;
  result.counters["disks_replaced"] = run.disks_replaced;
  result.counters["replacements"] = run.replacements;
  result.counters["promotions"] = run.promotions;
  result.counters["recovery_ms_total"] = run.recovery_ms;
}

ScenarioResult run_mgmtd_membership(uint64_t seed, ScenarioOptions options) {
  ScenarioResult result;
  Run run(&result);
  run.verbose = options.verbose;
  SimWorld world(seed, draw_config(seed, options));
  run.world = &world;
  run.start = world.now();
  run.sync_time = world.random().between(kSyncTimeMin, kSyncTimeMax);
  run.mgmtd_host = &world.add_host("mgmtd", mgmtd_boot(&run));
  run.mgmtd_address = run.mgmtd_host->address(kMgmtdPort);
  run.nodes.resize(kNodes);
  for (uint32_t i = 0; i < kNodes; ++i) {
    NodeState& node = run.nodes[i];
    node.target_count = kTargetsMin + uint32_t(world.random().below(kTargetsMax - kTargetsMin + 1));
    node.replace_at_boot.assign(node.target_count, false);
    node.slot_ids.resize(node.target_count);
    node.host = &world.add_host(fmt::format("node-{}", i + 1), node_boot(&run, i));
  }
  SimHost& admin = world.add_host("admin");
  schedule_faults(&run);
  world.run(admin, admin_main(&run));
  run.done = true;
  report(run, result);
  result.capture(world);
  return result;
}

std::string check_sweep(const ScenarioCounters& totals, uint64_t) {
  auto get = [&](const char* name) {
    auto it = totals.find(name);
    return it == totals.end() ? uint64_t{0} : it->second;
  };
  for (const char* needed : {"node_crashes", "mgmtd_crashes", "partitions", "one_way_partitions",
                             "disks_replaced", "replacements", "syncing_seen", "lastsrv_seen",
                             "blocked_chains_seen", "syncs_checked", "stale_at_boot"})
    if (get(needed) == 0) return fmt::format("no seed of the sweep had any {}", needed);
  return "";
}

}  // namespace

MICA_SIM_SCENARIO(kMgmtdMembership,
                  {.name = "mgmtd_membership",
                   .summary = "mgmtd with storage nodes that heartbeat, crash, partition and "
                              "return, and mgmtd crashes; routing invariants, full recovery",
                   .run = run_mgmtd_membership,
                   .golden_seed = 3,
                   .golden_hash = 0x8223977483c36f74,
                   .check_sweep = check_sweep,
                   .suite_seeds = 1000});

}  // namespace mica::sim
