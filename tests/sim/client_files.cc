// Scenario client_files: the native client (client/client.h) against a whole cluster in one
// simulated world — mgmtd (craq/mgmtd.h on the simulated kv store, chunks of 64 KiB), one
// meta host running the real meta::MetaNode (two shards on the simulated kv store), three
// storage hosts running the real craq::StorageNode (storage_cluster's boot), two client
// hosts each with two client::Client instances, and an admin host that never fails. The
// clients connect as a program would (ClientOptions with mgmtd's address; Client::connect
// makes its own TCP transport, which on a simulated host is the simulator's network).
//
// Each client host runs two workers (tests/sim/client_files_work.cc) that open a new file,
// write at random offsets and sizes across chunk boundaries, read, fsync and close it,
// again and again until kFaultEnd. Faults in [kFaultStart, kFaultEnd): up to three silent
// storage crashes (power losses of the host's disk) with restarts after 0.1-1.5 s, a crash
// and restart of the meta host in one seed of three, up to three partitions between any two hosts
// but the admin (both ways or one way). At kFaultEnd everything heals; once every chain serves at
// full strength each worker reads every file it wrote through its host's other Client. The checks:
//
// - every read, during the faults and after, returns each byte an acknowledged write put
//   there (holes as zeros; bytes of a failed write may be old or new), and a length
//   between the end of the acknowledged writes and the end of every write tried;
// - after an acknowledged close the other Client's stat sees a length in the same range;
// - no call fails: each call's deadline (kClientCallTimeout) outlasts any fault window
//   plus failure detection, so faults cost latency, not errors (issue 13, item 5);
// - the sweep saw crashes, partitions, acknowledged writes and checked reads.
#include <string>

#include "async/file.h"
#include "kv/kv.h"
#include "net/rpc_server.h"
#include "net/tcp_transport.h"
#include "tests/sim/client_files.h"

namespace mica::sim::client_files {
namespace {

using namespace std::chrono_literals;

// ---- mgmtd (as storage_cluster's, with the cluster's chunk size at 64 KiB) ----

struct MgmtdProcess {
  net::TcpTransport transport;
  std::unique_ptr<kv::Env> env;
  std::unique_ptr<craq::Mgmtd> mgmtd;
  std::unique_ptr<net::RpcServer> server;
};

Task<Status> open_mgmtd(State* s, SimHost* host, MgmtdProcess* p) {
  kv::EnvOptions env_options{.map_size_bytes = uint64_t{64} << 20};
  auto opening = kv::Env::open("/mgmtd", env_options);
  CO_TRY_ASSIGN(p->env, co_await std::move(opening));
  craq::MgmtdOptions options;
  options.config.heartbeat_interval_ms = uint32_t(kClusterHeartbeat / 1ms);
  options.config.lease_timeout_ms = uint32_t(kClusterLease / 1ms);
  options.config.replica_count = kClusterReplicas;
  options.config.chunk_size_min_bytes = kFileChunkBytes;
  options.config.chunk_size_max_bytes = kFileChunkBytes;
  options.config.chunk_size_default_bytes = kFileChunkBytes;
  options.update_interval = kClusterUpdate;
  auto loading = craq::Mgmtd::open(p->env.get(), options);
  CO_TRY_ASSIGN(p->mgmtd, co_await std::move(loading));
  p->mgmtd->start();
  p->server = std::make_unique<net::RpcServer>(&p->transport);
  p->server->add_service(p->mgmtd->service());
  CO_TRY(p->server->start(host->address(kClusterMgmtdPort)));
  s->cluster.mgmtd = p->mgmtd.get();
  co_return Status();
}

Task<void> mgmtd_main(State* s, SimHost* host) {
  MgmtdProcess p;
  auto opening = open_mgmtd(s, host, &p);
  Status opened = co_await std::move(opening);
  if (!opened.ok() && host->up())
    s->cluster.result->fail(fmt::format("mgmtd failed to open: {}", opened.to_string()));
  if (opened.ok()) {
    Event never;
    Status woke = co_await never.wait();  // until the world ends
    (void)woke;
  }
  s->cluster.mgmtd = nullptr;
  if (p.server) {
    Task<void> shutting = p.server->shutdown();
    co_await std::move(shutting);
  }
  if (p.mgmtd) {
    Task<void> stopping = p.mgmtd->stop();
    co_await std::move(stopping);
  }
  if (p.env) {
    Task<Status> closing = p.env->close();
    Status closed = co_await std::move(closing);
    (void)closed;
  }
}

// ---- the meta host ----

meta::MetaNodeOptions meta_options(const State* s, SimHost* host) {
  meta::MetaNodeOptions options;
  options.mgmtd = {s->cluster.mgmtd_address};
  options.data_dir = "/meta";
  options.listen = host->address(kMetaPort);
  options.host_name = host->name();
  for (meta::ShardId id = 0; id < kShards; ++id) options.shards.push_back(id);
  options.server.shard_count = kShards;
  options.server.placement_seed = 7;
  options.shard_template.env.map_size_bytes = uint64_t{64} << 20;
  options.server.coordinator_env.map_size_bytes = uint64_t{64} << 20;
  options.pool.backoff_initial = 10ms;
  options.pool.backoff_max = kClusterHeartbeat;
  options.routing = cluster_routing_options(&s->cluster);
  options.agent.call_timeout = kClusterHeartbeat;
  options.agent.backoff_initial = 20ms;
  options.agent.backoff_max = kClusterHeartbeat * 2;
  options.agent.heartbeat_interval = kClusterHeartbeat;
  options.storage.call_timeout = kClientCallTimeout;
  options.wall_clock = false;  // inode times from the simulated clock
  return options;
}

Task<void> meta_main(State* s, SimHost* host) {
  net::TcpTransport transport;
  meta::MetaNode node(&transport, meta_options(s, host));
  auto starting = node.start();
  Status started = co_await std::move(starting);
  if (started.ok()) {
    s->meta = &node;
    Event never;
    Status woke = co_await never.wait();
    (void)woke;
    s->meta = nullptr;
  } else if (host->up()) {
    s->cluster.result->fail(fmt::format("the meta node failed to start: {}", started.to_string()));
  }
  Task<void> stopping = node.stop();
  co_await std::move(stopping);
}

// ---- faults ----

void crash_storage(State* s, uint32_t index, Duration at, Duration down) {
  Cluster* c = &s->cluster;
  c->world->schedule(at, [c, index] {
    StorageHost& h = c->storage[index];
    if (c->done || c->healed || !h.host->up()) return;
    c->world->crash(*h.host);
    ++c->storage_crashes;
  });
  c->world->schedule(at + down, [c, index] {
    StorageHost& h = c->storage[index];
    if (!c->done && !h.host->up()) c->world->restart(*h.host);
  });
}

// The meta process killed (silently) and restarted from its disk within the call deadline.
void crash_meta(State* s, Duration at, Duration down) {
  s->cluster.world->schedule(at, [s] {
    if (s->cluster.done || s->cluster.healed || !s->meta_host->up()) return;
    s->meta = nullptr;
    s->cluster.world->crash(*s->meta_host);
    ++s->meta_crashes;
  });
  s->cluster.world->schedule(at + down, [s] {
    if (!s->cluster.done && !s->meta_host->up()) s->cluster.world->restart(*s->meta_host);
  });
}

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
    if (!c->done && !c->healed) c->world->heal(*a, *b);
  });
}

void heal(State* s) {
  Cluster* c = &s->cluster;
  if (c->done) return;
  c->healed = true;
  c->world->heal_all();
  for (StorageHost& h : c->storage)
    if (!h.host->up()) c->world->restart(*h.host);
  if (!s->meta_host->up()) c->world->restart(*s->meta_host);
}

void schedule_faults(State* s) {
  Cluster* c = &s->cluster;
  SimRandom& random = c->world->random();
  Duration latest = kFaultEnd - kFaultWindowMin;
  uint64_t crashes = random.below(kCrashesMax + 1);
  for (uint64_t i = 0; i < crashes; ++i) {
    auto index = uint32_t(random.below(c->storage.size()));
    Duration at = random.between(kFaultStart, latest);
    crash_storage(s, index, at, random.between(kFaultWindowMin, kFaultWindowMax));
  }
  if (random.below(3) == 0)  // one seed in three
    crash_meta(s, random.between(kFaultStart, latest),
               random.between(kFaultWindowMin, kFaultWindowMax));
  std::vector<SimHost*> hosts{c->mgmtd_host, s->meta_host};
  for (StorageHost& h : c->storage) hosts.push_back(h.host);
  for (size_t i = 0; i < c->world->host_count(); ++i)
    if (c->world->host(i).name().starts_with("client")) hosts.push_back(&c->world->host(i));
  uint64_t partitions = random.below(kPartitionsMax + 1);
  for (uint64_t i = 0; i < partitions; ++i) {
    SimHost* a = hosts[random.below(hosts.size())];
    SimHost* b = hosts[random.below(hosts.size())];
    uint64_t way = random.below(3);
    Duration at = random.between(kFaultStart, latest);
    Duration length = random.between(kFaultWindowMin, kFaultWindowMax);
    if (a != b) partition_hosts(c, a, b, way, at, length);
  }
  c->world->schedule(kFaultEnd, [s] { heal(s); });
}

}  // namespace

SimHost::BootFn mgmtd_boot(State* s) {
  return [s](SimHost& host) { return mgmtd_main(s, &host); };
}
SimHost::BootFn meta_boot(State* s) {
  return [s](SimHost& host) { return meta_main(s, &host); };
}
void schedule_client_faults(State* s) {
  schedule_faults(s);
}

}  // namespace mica::sim::client_files

