// Scenario mgmtd_membership: the cluster manager (craq/mgmtd.h on the simulated kv store)
// with simulated storage nodes that register and heartbeat through the real NodeAgent and
// follow routing through the real RoutingClient, under silent node crashes and returns
// (sometimes with a replaced disk), two-way and one-way partitions between nodes and
// mgmtd, and mgmtd crashes with restarts from its durable state.
//
// Topology: host "mgmtd" (its boot function opens the kv store on its simulated disk and
// serves MgmtdService), kNodes storage hosts with 2..4 targets each (node and target
// identities in files on their simulated disks, craq/node_identity.h), and an "admin" host
// that never fails: it creates a chain table of 3 replicas once every node has registered,
// follows routing with its own RoutingClient and, once the faults have healed, does what an
// operator would for each replaced disk (promote if the old target was the chain's lastsrv,
// then replace) and waits for every chain to be back to full strength. Stand-in nodes
// report what a real storage node would: after a (re)boot, online for every target (one
// that the first routing of the boot shows in a chain, even as serving, is stale) until
// routing shows it syncing; then up to date at the chain version once it has been syncing
// at that version for a simulated sync time; up to date at the current chain version while
// it serves and is not stale.
//
// The checker (tests/sim/routing_checker.h) runs on every snapshot mgmtd publishes
// (MgmtdOptions::on_publish, in publication order), every snapshot any routing client
// swaps in, and every target report mgmtd receives (MgmtdOptions::on_report): chain
// invariants, one content per routing version and per chain version, chain versions only
// grow, no chain with two targets of one node, no chain blocked while a target that served
// has a healthy node, syncing -> serving only after an up-to-date report at that chain
// version from the target's node; at the end, every chain is at full strength within
// kRecoveryMax of the heal. Intervals are short (heartbeat 100 ms, lease 500 ms, rounds
// 50 ms) so a seed is a few virtual seconds.
#include <memory>
#include <string>
#include <vector>

#include "async/file.h"
#include "async/scope.h"
#include "craq/mgmtd.h"
#include "craq/node_agent.h"
#include "craq/node_identity.h"
#include "craq/routing_client.h"
#include "kv/kv.h"
#include "net/rpc_server.h"
#include "net/tcp_transport.h"
#include "tests/sim/mgmtd_membership.h"
#include "tests/sim/scenario.h"

namespace mica::sim {
namespace {

using namespace std::chrono_literals;
using craq::NodeId;
using craq::PublicState;
using craq::RoutingSnapshot;
using craq::TargetId;

// ---- the mgmtd host ----

craq::MgmtdOptions mgmtd_options(Run* run) {
  craq::MgmtdOptions options;
  options.on_publish = [run](const RoutingSnapshot& routing) { check_published(run, routing); };
  options.on_report = [run](NodeId node, TargetId target, const craq::TargetReport& report) {
    run->checker.observe_report(node, target, report);
  };
  options.config.heartbeat_interval_ms = uint32_t(kHeartbeat / 1ms);
  options.config.lease_timeout_ms = uint32_t(kLease / 1ms);
  options.config.replica_count = kReplicas;
  options.update_interval = kUpdate;
  return options;
}

Task<Status> open_mgmtd(Run* run, SimHost* host, MgmtdProcess* p) {
  auto making = ensure_directory("/mgmtd");
  CO_TRY(co_await std::move(making));
  auto syncing = sync_directory("/");
  CO_TRY(co_await std::move(syncing));
  kv::EnvOptions env_options{.map_size_bytes = uint64_t{64} << 20};
  auto opening = kv::Env::open("/mgmtd", env_options);
  CO_TRY_ASSIGN(p->env, co_await std::move(opening));
  run->checker.mgmtd_restarted();
  auto loading = craq::Mgmtd::open(p->env.get(), mgmtd_options(run));
  CO_TRY_ASSIGN(p->mgmtd, co_await std::move(loading));
  p->mgmtd->start();
  p->server = std::make_unique<net::RpcServer>(&p->transport);
  p->server->add_service(p->mgmtd->service());
  CO_TRY(p->server->start(host->address(kMgmtdPort)));
  run->mgmtd = p->mgmtd.get();
  co_return Status();
}

Task<void> close_mgmtd(Run* run, MgmtdProcess* p) {
  run->mgmtd = nullptr;
  if (p->server) {
    Task<void> shutting = p->server->shutdown();
    co_await std::move(shutting);
  }
  if (p->mgmtd) {
    Task<void> stopping = p->mgmtd->stop();
    co_await std::move(stopping);
  }
  if (p->env) {
    Task<Status> closing = p->env->close();
    Status closed = co_await std::move(closing);
    (void)closed;  // after a crash the store's last writes fail: nothing to do about it
  }
}

Task<void> mgmtd_main(Run* run, SimHost* host) {
  MgmtdProcess process;
  auto opening = open_mgmtd(run, host, &process);
  Status opened = co_await std::move(opening);
  if (!opened.ok() && host->up())
    run->result->fail(fmt::format("mgmtd failed to open: {}", opened.to_string()));
  if (opened.ok()) {
    ++run->mgmtd_boots;
    Event never;
    Status woke = co_await never.wait();  // until the host crashes or the world ends
    (void)woke;
  }
  Task<void> closing = close_mgmtd(run, &process);
  co_await std::move(closing);
}

// ---- stand-in storage nodes ----

// The id mgmtd gave the target in slot `slot` (0 before its first registration).
TargetId target_id_of(NodeProcess* p, size_t slot) {
  const craq::TargetIdentity& identity = p->targets[slot];
  auto known = p->agent->target_ids().find(identity.identity);
  return known == p->agent->target_ids().end() ? identity.target : known->second;
}

// On the first routing of a boot: every target it shows in a chain is stale (a real node
// that restarted cannot claim its copy is current until it has resynced).
void note_first_routing(NodeProcess* p, const RoutingSnapshot& routing) {
  if (p->routing_seen || p->agent == nullptr) return;
  p->routing_seen = true;
  for (size_t slot = 0; slot < p->targets.size(); ++slot) {
    TargetId id = target_id_of(p, slot);
    const craq::TargetInfo* target = id != 0 ? craq::find_target(routing, id) : nullptr;
    if (target != nullptr && target->chain != 0 && p->stale.insert(id).second)
      ++p->run->stale_at_boot;
  }
}

// What a storage node would report for the target in slot `slot`.
craq::TargetReport report_of(NodeProcess* p, size_t slot) {
  const craq::TargetIdentity& identity = p->targets[slot];
  craq::TargetReport report{.target = identity.target,
                            .identity = identity.identity,
                            .disk = fmt::format("/t{}", slot),
                            .local = craq::LocalState::kOnline,
                            .capacity_bytes = uint64_t{1} << 40};
  std::shared_ptr<const RoutingSnapshot> routing = p->routing->current();
  if (routing) note_first_routing(p, *routing);
  TargetId id = target_id_of(p, slot);
  const craq::TargetInfo* target = routing && id != 0 ? craq::find_target(*routing, id) : nullptr;
  const craq::ChainInfo* chain = target ? craq::find_chain(*routing, target->chain) : nullptr;
  if (chain == nullptr) return report;
  report.reported_chain_version = chain->version;
  PublicState state = PublicState::kOffline;
  for (const craq::ChainTarget& member : chain->targets)
    if (member.target == id) state = member.state;
  TimePoint now = Executor::current()->now();
  if (state == PublicState::kServing) {
    if (p->stale.count(id) == 0) report.local = craq::LocalState::kUpToDate;
  } else if (state == PublicState::kSyncing) {
    SyncProgress& sync = p->syncs[id];
    if (sync.chain_version != chain->version) sync = {chain->version, now};
    if (now - sync.since >= p->run->sync_time) {
      report.local = craq::LocalState::kUpToDate;
      p->stale.erase(id);
    }
  }
  return report;
}

std::vector<craq::TargetReport> reports_of(NodeProcess* p) {
  std::vector<craq::TargetReport> reports;
  for (size_t slot = 0; slot < p->targets.size(); ++slot) reports.push_back(report_of(p, slot));
  return reports;
}

// Persists the ids mgmtd gave, as a storage node does (so the next boot names them).
Task<Status> persist_ids(NodeProcess* p, craq::RegisterResponse response) {
  NodeState& state = p->run->nodes[p->index];
  state.node_id = response.node;
  state.registered = true;
  p->run->node_by_id[response.node] = p->index;
  if (p->identity.node != response.node) {
    p->identity.node = response.node;
    auto saving = craq::save_node_identity("/node", p->identity);
    CO_TRY(co_await std::move(saving));
  }
  for (size_t slot = 0; slot < p->targets.size() && slot < response.targets.size(); ++slot) {
    craq::TargetIdentity& target = p->targets[slot];
    if (state.slot_ids[slot].empty() || state.slot_ids[slot].back() != response.targets[slot])
      state.slot_ids[slot].push_back(response.targets[slot]);
    if (target.target == response.targets[slot]) continue;
    target.target = response.targets[slot];
    auto saving = craq::save_target_identity(fmt::format("/t{}", slot), target);
    CO_TRY(co_await std::move(saving));
  }
  co_return Status();
}

// Loads (or creates) the node's and its targets' identity files; a replaced disk first
// loses its target's file, so it comes back with a new identity.
Task<Status> load_identities(NodeProcess* p) {
  NodeState& state = p->run->nodes[p->index];
  auto making = ensure_directory("/node");
  CO_TRY(co_await std::move(making));
  auto syncing = sync_directory("/");
  CO_TRY(co_await std::move(syncing));
  auto loading = craq::load_or_create_node_identity("/node");
  CO_TRY_ASSIGN(p->identity, co_await std::move(loading));
  for (uint32_t slot = 0; slot < state.target_count; ++slot) {
    std::string dir = fmt::format("/t{}", slot);
    auto making_target = ensure_directory(dir);
    CO_TRY(co_await std::move(making_target));
    if (state.replace_at_boot[slot]) {
      auto wiping = remove_file(dir + "/" + craq::kTargetIdentityFile);
      Status wiped = co_await std::move(wiping);
      if (!wiped.ok() && wiped.code() != StatusCode::kNotFound) co_return wiped;
      state.replace_at_boot[slot] = false;
    }
    // The directory's own name must be durable before anything in it can be (a simulated
    // power loss drops names whose directory was never synced).
    auto syncing = sync_directory("/");
    CO_TRY(co_await std::move(syncing));
    auto loading_target = craq::load_or_create_target_identity(dir);
    CO_TRY_ASSIGN(craq::TargetIdentity target, co_await std::move(loading_target));
    p->targets.push_back(std::move(target));
  }
  co_return Status();
}

void node_routing_update(NodeProcess* p, const std::shared_ptr<const RoutingSnapshot>& routing) {
  p->run->checker.observe(*routing, p->name);
  note_first_routing(p, *routing);
  if (p->agent != nullptr) p->agent->kick();  // report states for the new chains now
}

Task<void> serve_node(NodeProcess* p, SimHost* host) {
  net::TcpTransport transport;
  net::PoolOptions pool_options;
  pool_options.backoff_initial = 10ms;
  pool_options.backoff_max = kHeartbeat;
  net::ConnectionPool pool(&transport, pool_options);
  craq::RoutingClientOptions routing_options = routing_client_options(p->run);
  routing_options.on_update = [p](const std::shared_ptr<const RoutingSnapshot>& routing) {
    node_routing_update(p, routing);
  };
  craq::RoutingClient routing(&pool, routing_options);
  p->routing = &routing;
  craq::NodeAgentOptions agent_options{
      .mgmtd = {p->run->mgmtd_address},
      .host_name = host->name(),
      .rpc_address = host->address(kStoragePort).to_string(),
      .node = p->identity.node,
      .identity = p->identity.identity,
      .reports = [p] { return reports_of(p); },
      .on_registered = [p](const craq::RegisterResponse& r) { return persist_ids(p, r); },
      .routing = &routing,
      .call_timeout = kHeartbeat,
      .backoff_initial = 20ms,
      .backoff_max = kHeartbeat * 2,
      .heartbeat_interval = kHeartbeat};
  craq::NodeAgent agent(&pool, agent_options);
  p->agent = &agent;
  routing.start();
  agent.start();
  Event never;
  Status woke = co_await never.wait();  // until the host crashes or the world ends
  (void)woke;
  Task<void> stopping_agent = agent.stop();
  co_await std::move(stopping_agent);
  Task<void> stopping_routing = routing.stop();
  co_await std::move(stopping_routing);
  p->agent = nullptr;
  p->routing = nullptr;
  Task<void> closing = pool.close();
  co_await std::move(closing);
}

Task<void> node_main(Run* run, SimHost* host, uint32_t index) {
  run->nodes[index].registered = false;
  NodeProcess process{.run = run, .index = index, .name = host->name()};
  auto loading = load_identities(&process);
  Status loaded = co_await std::move(loading);
  if (!loaded.ok()) {
    if (host->up())
      run->result->fail(fmt::format("{}: identities: {}", host->name(), loaded.to_string()));
    co_return;
  }
  ++run->node_boots;
  Task<void> serving = serve_node(&process, host);
  co_await std::move(serving);
}

}  // namespace

craq::RoutingClientOptions routing_client_options(Run* run) {
  craq::RoutingClientOptions options;
  options.mgmtd = {run->mgmtd_address};
  options.poll_wait_ms = uint32_t(kPollWait / 1ms);
  options.poll_slack = kHeartbeat;
  options.fetch_timeout = kHeartbeat * 2;
  options.backoff_initial = 20ms;
  options.backoff_max = kHeartbeat * 2;
  return options;
}

SimHost::BootFn mgmtd_boot(Run* run) {
  return [run](SimHost& host) { return mgmtd_main(run, &host); };
}

SimHost::BootFn node_boot(Run* run, uint32_t index) {
  return [run, index](SimHost& host) { return node_main(run, &host, index); };
}

}  // namespace mica::sim
