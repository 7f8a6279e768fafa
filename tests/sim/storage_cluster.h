// The storage_cluster scenario's shared state (tests/sim/storage_cluster.cc has the
// picture): its constants, what the scenario knows of every host across its boots
// (Cluster, StorageHost), the recorded history, and the functions the scenario's files
// share. storage_cluster.cc runs the mgmtd and storage hosts and the faults;
// storage_cluster_run.cc runs the clients, the admin and the checks, and registers the
// scenario. One simulated world, one thread: every task belongs to one simulated host.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "craq/mgmtd.h"
#include "craq/storage_node.h"
#include "tests/sim/linearizability.h"
#include "tests/sim/scenario.h"

namespace mica::sim {

inline constexpr uint16_t kClusterMgmtdPort = 7200;
inline constexpr uint16_t kClusterStoragePort = 7400;
inline constexpr uint32_t kStorageHostsMin = 3;
inline constexpr uint32_t kStorageHostsMax = 6;
inline constexpr uint32_t kTargetsPerHost = 2;
inline constexpr uint32_t kClusterReplicas = 3;
inline constexpr uint32_t kClientHosts = 2;
inline constexpr uint32_t kWorkersPerClient = 2;
inline constexpr uint32_t kChunks = 4;
inline constexpr uint32_t kChunkBytes = 64 * 1024;  // the engine's smallest chunk size
inline constexpr uint32_t kWriteBytesMax = 8 * 1024;
inline constexpr Duration kClusterHeartbeat = std::chrono::milliseconds(100);
inline constexpr Duration kClusterLease = std::chrono::milliseconds(500);
inline constexpr Duration kClusterUpdate = std::chrono::milliseconds(50);
// A client call's deadline: past it the call is indeterminate (it may still take effect).
inline constexpr Duration kCallTimeout = std::chrono::milliseconds(1500);
// Faults come and go in [kClusterFaultStart, kClusterFaultEnd); then everything heals and
// the workers stop issuing new calls.
inline constexpr Duration kClusterFaultStart = std::chrono::milliseconds(1500);
inline constexpr Duration kClusterFaultEnd = std::chrono::milliseconds(5000);
inline constexpr Duration kFaultWindowMin = std::chrono::milliseconds(100);
inline constexpr Duration kFaultWindowMax = std::chrono::milliseconds(1500);
inline constexpr uint32_t kStorageCrashesMax = 3;
inline constexpr uint32_t kClusterPartitionsMax = 3;
inline constexpr uint32_t kClusterMgmtdCrashesMax = 1;
inline constexpr double kDropProbabilityMax = 0.01;
inline constexpr double kDiskErrorProbabilityMax = 0.002;
// Once healed, every chain must serve at full strength within this much virtual time.
inline constexpr Duration kClusterRecoveryMax = std::chrono::seconds(20);
// The linearizability search of one chunk may take this many steps before it gives up.
inline constexpr uint64_t kCheckStepsMax = 500'000;

struct StorageHost {
  SimHost* host = nullptr;
  craq::StorageNode* node = nullptr;  // while booted and started
  uint32_t boots = 0;
  uint32_t partitions = 0;  // partition windows open on it
};

// One chunk of the workload and the chain it lives on.
struct ClusterChunk {
  craq::ChainId chain = 0;
  craq::ChunkRef ref;
};

struct Cluster {
  SimWorld* world = nullptr;
  ScenarioResult* result = nullptr;
  bool verbose = false;
  TimePoint start;
  SimHost* mgmtd_host = nullptr;
  SocketAddress mgmtd_address;
  craq::Mgmtd* mgmtd = nullptr;  // while the mgmtd host is up and open
  std::vector<StorageHost> storage;
  std::vector<ClusterChunk> chunks;  // set once the chain table exists
  bool healed = false;
  bool done = false;
  uint32_t workers_running = 0;  // client workers that have not finished
  // The history every client call is recorded in (linearizability.h), by op id - 1.
  std::vector<LinOp> history;
  // Counts.
  uint64_t storage_crashes = 0;
  uint64_t mgmtd_crashes = 0;
  uint64_t partitions = 0;
  uint64_t one_way_partitions = 0;
  uint64_t disk_error_hosts = 0;
  uint64_t lossy_seeds = 0;
  uint64_t storage_boot_failures = 0;
  uint64_t recovery_ms = 0;

  // A new operation of the history, invoked now; returns its id.
  LinOp& invoke(uint64_t client, LinKind kind, uint32_t chunk, uint32_t offset, uint32_t length);
  void complete(LinOp& op, LinOutcome outcome);
};

SimHost::BootFn cluster_mgmtd_boot(Cluster* cluster);
SimHost::BootFn storage_boot(Cluster* cluster, uint32_t index);
// The options every routing client of the scenario uses (storage nodes, clients, admin).
craq::RoutingClientOptions cluster_routing_options(const Cluster* cluster);
// storage_cluster_check.cc: every replica of the chunk holds `content` (what the final read
// returned) as one committed version; and the history's per-chunk linearizability.
Task<void> check_replicas(Cluster* cluster, net::ConnectionPool* pool, uint32_t chunk,
                          std::vector<std::byte> content);
void check_cluster_history(Cluster* cluster);
// Draws the faults of the seed and schedules them (and the heal at kClusterFaultEnd).
void schedule_cluster_faults(Cluster* cluster);

}  // namespace mica::sim
