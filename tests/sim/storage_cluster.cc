// Scenario storage_cluster: a whole storage cluster in one simulated world — mgmtd
// (craq/mgmtd.h on the simulated kv store), 3..6 storage hosts each running the real
// craq::StorageNode (StorageServer, RPC server, pool, routing client, node agent) over two
// chunk-engine targets on its simulated disk, two client hosts with two workers each
// writing, reading, truncating and removing a few chunks through the real StorageClient, and
// an admin host that never fails. Faults in [kClusterFaultStart, kClusterFaultEnd): silent
// storage crashes that are power losses of the host's disk (SimWorld::crash) with restarts,
// an mgmtd crash, two-way and one-way partitions between any two hosts, message loss with
// retransmission and give-ups, and -EIO from the disks of some storage hosts.
//
// Every client call goes into one history (linearizability.h): a write's bytes carry its op
// id (fill_pattern), a read's bytes decode back into who wrote them. After the heal the
// admin waits until every chain serves at full strength (kClusterRecoveryMax), writes and
// reads every chunk once more, and checks: per-chunk linearizability of the whole history
// (acknowledged writes must be linearized, so each is readable after the heal unless a
// later operation replaced it; failed and timed-out writes may or may not appear), every
// replica of each chunk holds the same committed version, length and checksum with nothing
// pending (stat_chunk at every replica), and that checksum is the CRC32C of what the final
// read returned. This file runs the mgmtd and storage hosts and the faults;
// storage_cluster_run.cc the clients, the admin and the checks.
#include <string>

#include "async/file.h"
#include "kv/kv.h"
#include "net/rpc_server.h"
#include "net/tcp_transport.h"
#include "tests/sim/storage_cluster.h"

namespace mica::sim {
namespace {

using namespace std::chrono_literals;

// ---- the mgmtd host ----

struct MgmtdHostProcess {
  net::TcpTransport transport;
  std::unique_ptr<kv::Env> env;
  std::unique_ptr<craq::Mgmtd> mgmtd;
  std::unique_ptr<net::RpcServer> server;
};

craq::MgmtdOptions cluster_mgmtd_options() {
  craq::MgmtdOptions options;
  options.config.heartbeat_interval_ms = uint32_t(kClusterHeartbeat / 1ms);
  options.config.lease_timeout_ms = uint32_t(kClusterLease / 1ms);
  options.config.replica_count = kClusterReplicas;
  options.update_interval = kClusterUpdate;
  return options;
}

Task<Status> open_cluster_mgmtd(Cluster* c, SimHost* host, MgmtdHostProcess* p) {
  kv::EnvOptions env_options{.map_size_bytes = uint64_t{64} << 20};
  auto opening = kv::Env::open("/mgmtd", env_options);
  CO_TRY_ASSIGN(p->env, co_await std::move(opening));
  auto loading = craq::Mgmtd::open(p->env.get(), cluster_mgmtd_options());
  CO_TRY_ASSIGN(p->mgmtd, co_await std::move(loading));
  p->mgmtd->start();
  p->server = std::make_unique<net::RpcServer>(&p->transport);
  p->server->add_service(p->mgmtd->service());
  CO_TRY(p->server->start(host->address(kClusterMgmtdPort)));
  c->mgmtd = p->mgmtd.get();
  co_return Status();
}

Task<void> close_cluster_mgmtd(Cluster* c, MgmtdHostProcess* p) {
  c->mgmtd = nullptr;
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

Task<void> cluster_mgmtd_main(Cluster* c, SimHost* host) {
  MgmtdHostProcess process;
  auto opening = open_cluster_mgmtd(c, host, &process);
  Status opened = co_await std::move(opening);
  if (!opened.ok() && host->up())
    c->result->fail(fmt::format("mgmtd failed to open: {}", opened.to_string()));
  if (opened.ok()) {
    Event never;
    Status woke = co_await never.wait();  // until the host crashes or the world ends
    (void)woke;
  }
  Task<void> closing = close_cluster_mgmtd(c, &process);
  co_await std::move(closing);
}

// ---- the storage hosts ----

chunk::ChunkEngineConfig cluster_engine_config() {
  chunk::ChunkEngineConfig config;
  config.chunk_size_max_bytes = kChunkBytes;
  config.reserve_bytes = 0;
  config.growth_step_bytes = 1 << 20;
  config.lmdb_map_size_bytes = 64 << 20;
  return config;
}

craq::StorageNodeOptions storage_options(const Cluster* c, SimHost* host) {
  craq::StorageNodeOptions options;
  options.mgmtd = {c->mgmtd_address};
  options.data_dir = "/node";
  options.listen = host->address(kClusterStoragePort);
  options.host_name = host->name();
  for (uint32_t t = 0; t < kTargetsPerHost; ++t)
    options.server.targets.push_back(craq::StorageTargetConfig{
        .path = fmt::format("/t{}", t), .disk = "", .engine = cluster_engine_config()});
  options.server.forward_timeout = 1s;
  options.server.query_timeout = 500ms;
  // Scrub quickly, so rot and a torn power-loss write are found within a seed.
  options.server.scrub_bytes_per_s = uint64_t{4} << 20;
  options.server.scrub_pass_interval = 1s;
  options.pool.backoff_initial = 10ms;
  options.pool.backoff_max = kClusterHeartbeat;
  options.routing = cluster_routing_options(c);
  options.agent.call_timeout = kClusterHeartbeat;
  options.agent.backoff_initial = 20ms;
  options.agent.backoff_max = kClusterHeartbeat * 2;
  options.agent.heartbeat_interval = kClusterHeartbeat;
  return options;
}

Task<void> storage_main(Cluster* c, SimHost* host, uint32_t index) {
  StorageHost& state = c->storage[index];
  ++state.boots;
  net::TcpTransport transport;
  craq::StorageNode node(&transport, storage_options(c, host));
  auto starting = node.start();
  Status started = co_await std::move(starting);
  if (started.ok()) {
    state.node = &node;
    Event never;
    Status woke = co_await never.wait();  // until the host crashes or the world ends
    (void)woke;
    state.node = nullptr;
  } else if (host->up()) {
    // A disk error while opening is one of the faults: the host stays down until healed.
    ++c->storage_boot_failures;
    if (c->healed)
      c->result->fail(
          fmt::format("{} failed to start after the heal: {}", host->name(), started.to_string()));
  }
  Task<void> stopping = node.stop();
  co_await std::move(stopping);
}

// ---- faults ----

void crash_storage(Cluster* c, uint32_t index, Duration at, Duration down) {
  c->world->schedule(at, [c, index] {
    StorageHost& s = c->storage[index];
    if (c->done || c->healed || !s.host->up()) return;
    c->world->crash(*s.host);  // silent, and a power loss of its disk
    ++c->storage_crashes;
  });
  c->world->schedule(at + down, [c, index] {
    StorageHost& s = c->storage[index];
    if (c->done || s.host->up()) return;
    c->world->restart(*s.host);
  });
}

void crash_cluster_mgmtd(Cluster* c, Duration at, Duration down) {
  c->world->schedule(at, [c] {
    if (c->done || c->healed || !c->mgmtd_host->up()) return;
    c->mgmtd = nullptr;
    c->world->crash(*c->mgmtd_host);
    ++c->mgmtd_crashes;
  });
  c->world->schedule(at + down, [c] {
    if (c->done || c->mgmtd_host->up()) return;
    c->world->restart(*c->mgmtd_host);
  });
}

// A partition between two hosts (both ways, or one way either direction); heal_all at the
// end of the faults undoes whatever is left.
void partition_hosts(Cluster* c, SimHost* a, SimHost* b, uint64_t way, Duration at,
                     Duration length) {
  c->world->schedule(at, [c, a, b, way] {
    if (c->done || c->healed) return;
    if (way != 1) c->world->partition_one_way(*a, *b);
    if (way != 2) c->world->partition_one_way(*b, *a);
    ++c->partitions;
    if (way != 0) ++c->one_way_partitions;
  });
  c->world->schedule(at + length, [c, a, b] {
    if (c->done || c->healed) return;
    c->world->heal(*a, *b);
  });
}

void heal_cluster(Cluster* c) {
  if (c->done) return;
  c->healed = true;
  c->world->heal_all();
  c->world->net_config().drop_probability = 0;
  for (StorageHost& s : c->storage) {
    s.host->disk_config().eio_probability = 0;
    if (!s.host->up()) {
      c->world->restart(*s.host);
    } else if (s.node == nullptr) {
      // Its boot failed on a disk error (or is still starting): power-cycle it, restarting
      // once the crashed boot's tasks have run to their end.
      c->world->crash(*s.host);
      SimHost* host = s.host;
      c->world->schedule(kClusterHeartbeat, [c, host] {
        if (!c->done && !host->up()) c->world->restart(*host);
      });
    }
  }
  if (!c->mgmtd_host->up()) c->world->restart(*c->mgmtd_host);
}

// Every host but the admin, for partitions.
std::vector<SimHost*> partitionable(Cluster* c) {
  std::vector<SimHost*> hosts{c->mgmtd_host};
  for (StorageHost& s : c->storage) hosts.push_back(s.host);
  for (size_t i = 0; i < c->world->host_count(); ++i) {
    SimHost& h = c->world->host(i);
    if (h.name().starts_with("client")) hosts.push_back(&h);
  }
  return hosts;
}

}  // namespace

LinOp& Cluster::invoke(uint64_t client, LinKind kind, uint32_t chunk, uint32_t offset,
                       uint32_t length) {
  LinOp op{.key = chunk,
           .id = history.size() + 1,
           .kind = kind,
           .offset = offset,
           .length = length,
           .invoke_ns = (world->now() - start).count(),
           .outcome = LinOutcome::kIndeterminate,
           .client = client};
  history.push_back(std::move(op));
  return history.back();
}

void Cluster::complete(LinOp& op, LinOutcome outcome) {
  op.complete_ns = (world->now() - start).count();
  op.outcome = outcome;
}

craq::RoutingClientOptions cluster_routing_options(const Cluster* c) {
  craq::RoutingClientOptions options;
  options.mgmtd = {c->mgmtd_address};
  options.poll_wait_ms = 2000;
  options.poll_slack = kClusterHeartbeat;
  options.fetch_timeout = kClusterHeartbeat * 2;
  options.backoff_initial = 20ms;
  options.backoff_max = kClusterHeartbeat * 2;
  return options;
}

SimHost::BootFn cluster_mgmtd_boot(Cluster* c) {
  return [c](SimHost& host) { return cluster_mgmtd_main(c, &host); };
}

SimHost::BootFn storage_boot(Cluster* c, uint32_t index) {
  return [c, index](SimHost& host) { return storage_main(c, &host, index); };
}

void schedule_cluster_faults(Cluster* c) {
  SimRandom& random = c->world->random();
  Duration latest = kClusterFaultEnd - kFaultWindowMin;
  uint64_t crashes = random.below(kStorageCrashesMax + 1);
  for (uint64_t i = 0; i < crashes; ++i) {
    auto index = uint32_t(random.below(c->storage.size()));
    Duration at = random.between(kClusterFaultStart, latest);
    crash_storage(c, index, at, random.between(kFaultWindowMin, kFaultWindowMax));
  }
  if (random.below(kClusterMgmtdCrashesMax + 2) > 0) {  // two seeds in three
    Duration at = random.between(kClusterFaultStart, latest);
    crash_cluster_mgmtd(c, at, random.between(kFaultWindowMin, kFaultWindowMax));
  }
  std::vector<SimHost*> hosts = partitionable(c);
  uint64_t partitions = random.below(kClusterPartitionsMax + 1);
  for (uint64_t i = 0; i < partitions; ++i) {
    SimHost* a = hosts[random.below(hosts.size())];
    SimHost* b = hosts[random.below(hosts.size())];
    uint64_t way = random.below(3);
    Duration at = random.between(kClusterFaultStart, latest);
    Duration length = random.between(kFaultWindowMin, kFaultWindowMax);
    if (a != b) partition_hosts(c, a, b, way, at, length);
  }
  // Message loss and disk errors for the whole fault window, at rates drawn per seed.
  double drop = random.chance(0.5) ? kDropProbabilityMax * double(random.below(101)) / 100 : 0;
  if (drop > 0) ++c->lossy_seeds;
  std::vector<uint32_t> faulty_disks;
  for (uint32_t i = 0; i < c->storage.size(); ++i)
    if (random.chance(0.25)) faulty_disks.push_back(i);
  double eio = kDiskErrorProbabilityMax * double(1 + random.below(100)) / 100;
  c->disk_error_hosts += faulty_disks.size();
  c->world->schedule(kClusterFaultStart, [c, drop, faulty_disks, eio] {
    if (c->done || c->healed) return;
    c->world->net_config().drop_probability = drop;
    for (uint32_t i : faulty_disks) c->storage[i].host->disk_config().eio_probability = eio;
  });
  c->world->schedule(kClusterFaultEnd, [c] { heal_cluster(c); });
}

}  // namespace mica::sim
