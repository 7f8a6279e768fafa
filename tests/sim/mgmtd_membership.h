// The mgmtd_membership scenario's shared state (tests/sim/mgmtd_membership.cc has the
// picture): the constants, what the scenario knows of every host across its boots (Run,
// NodeState), what one boot of a host holds (MgmtdProcess, NodeProcess), and the boot
// functions. mgmtd_membership.cc runs the hosts; mgmtd_membership_run.cc draws the faults,
// runs the admin and registers the scenario. One simulated world, one thread: nothing here
// is shared with another thread, and every task belongs to one simulated host.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "craq/mgmtd.h"
#include "craq/node_agent.h"
#include "craq/node_identity.h"
#include "craq/routing_client.h"
#include "kv/kv.h"
#include "net/rpc_server.h"
#include "net/tcp_transport.h"
#include "tests/sim/routing_checker.h"
#include "tests/sim/scenario.h"

namespace mica::sim {

inline constexpr uint16_t kMgmtdPort = 7200;
inline constexpr uint16_t kStoragePort = 7300;  // named in the nodes' records; nothing listens
inline constexpr uint32_t kNodes = 6;
inline constexpr uint32_t kTargetsMin = 2;
inline constexpr uint32_t kTargetsMax = 4;
inline constexpr uint32_t kReplicas = 3;
inline constexpr Duration kHeartbeat = std::chrono::milliseconds(100);
inline constexpr Duration kLease = std::chrono::milliseconds(500);
inline constexpr Duration kUpdate = std::chrono::milliseconds(50);
inline constexpr Duration kPollWait = std::chrono::milliseconds(2000);
// A node counts as healthy (its serving targets must keep their chain from blocking) once
// it and mgmtd have been up and connected both ways for this long: a lease, plus the
// heartbeats and reconnects that a partition's or crash's broken connection costs.
inline constexpr Duration kHealthyWindow = std::chrono::milliseconds(1200);
// Faults come and go in [kFaultStart, kFaultEnd); then everything heals.
inline constexpr Duration kFaultStart = std::chrono::milliseconds(1000);
inline constexpr Duration kFaultEnd = std::chrono::milliseconds(5000);
inline constexpr Duration kWindowMin = std::chrono::milliseconds(100);
inline constexpr Duration kWindowMax = std::chrono::milliseconds(1500);
inline constexpr uint32_t kNodeCrashesMax = 4;
inline constexpr uint32_t kPartitionsMax = 3;
inline constexpr uint32_t kMgmtdCrashesMax = 2;
inline constexpr double kDiskReplaceChance = 0.25;  // per node restart: one disk replaced
inline constexpr Duration kSyncTimeMin = std::chrono::milliseconds(50);
inline constexpr Duration kSyncTimeMax = std::chrono::milliseconds(300);
// Once healed, every chain must be back to full strength within this much virtual time.
inline constexpr Duration kRecoveryMax = std::chrono::seconds(15);

// What the scenario knows of a storage host across its boots.
struct NodeState {
  SimHost* host = nullptr;
  uint32_t target_count = 0;
  std::vector<bool> replace_at_boot;                  // per slot: the next boot finds a new disk
  std::vector<std::vector<craq::TargetId>> slot_ids;  // per slot: every id it had, in order
  craq::NodeId node_id = 0;
  bool registered = false;  // since its last boot
  uint32_t partitions = 0;  // partition windows open between it and mgmtd
  TimePoint healthy_since;  // world time of its last boot or heal
};

struct Run {
  SimWorld* world = nullptr;
  TimePoint start;  // world time at the start: the fault schedule counts from it
  ScenarioResult* result = nullptr;
  bool verbose = false;
  SimHost* mgmtd_host = nullptr;
  SocketAddress mgmtd_address;
  craq::Mgmtd* mgmtd = nullptr;  // while the mgmtd host is up and open
  TimePoint mgmtd_since;         // world time of its last boot
  std::vector<NodeState> nodes;
  std::map<craq::NodeId, uint32_t> node_by_id;
  Duration sync_time{0};
  RoutingChecker checker;
  uint64_t last_decided_version = 0;
  bool healed = false;  // every fault is over
  bool done = false;
  // Counts.
  uint64_t mgmtd_boots = 0;
  uint64_t node_boots = 0;
  uint64_t node_crashes = 0;
  uint64_t mgmtd_crashes = 0;
  uint64_t partitions = 0;
  uint64_t one_way_partitions = 0;
  uint64_t disks_replaced = 0;
  uint64_t replacements = 0;
  uint64_t promotions = 0;
  uint64_t stale_at_boot = 0;  // targets a boot's first routing showed in a chain
  uint64_t recovery_ms = 0;

  explicit Run(ScenarioResult* r) : result(r), checker(r) {}
};

struct MgmtdProcess {
  net::TcpTransport transport;
  std::unique_ptr<kv::Env> env;
  std::unique_ptr<craq::Mgmtd> mgmtd;
  std::unique_ptr<net::RpcServer> server;
};

// Where a syncing target's simulated copy stands: since when it has been syncing at which
// chain version.
struct SyncProgress {
  uint64_t chain_version = 0;
  TimePoint since;
};

struct NodeProcess {
  Run* run = nullptr;
  uint32_t index = 0;
  std::string name;
  craq::NodeIdentity identity;
  std::vector<craq::TargetIdentity> targets;  // by slot
  craq::RoutingClient* routing = nullptr;
  craq::NodeAgent* agent = nullptr;
  std::map<craq::TargetId, SyncProgress> syncs;
  bool routing_seen = false;       // this boot has seen a routing snapshot
  std::set<craq::TargetId> stale;  // in a chain at boot, not resynced since
};

craq::RoutingClientOptions routing_client_options(Run* run);
SimHost::BootFn mgmtd_boot(Run* run);
// Every routing snapshot mgmtd publishes, in publication order (MgmtdOptions::on_publish).
void check_published(Run* run, const craq::RoutingSnapshot& published);
SimHost::BootFn node_boot(Run* run, uint32_t index);

}  // namespace mica::sim
