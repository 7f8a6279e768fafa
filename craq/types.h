// The cluster's vocabulary: nodes, targets, chains, chain tables, the cluster config and the
// routing snapshot that mgmtd publishes (docs/mgmtd.md).
//
// These are plain messages (net/serde.h): the same declaration is mgmtd's durable record
// in kv/, its wire format and its printing. Ids are assigned by mgmtd and never reused; 0
// is "none" for every id. A node is one server process; a target is one chunk engine in
// its own directory on one of its node's disks; a chain is an ordered list of targets,
// one per node at most, whose version grows whenever its members, order or states change;
// a chain table is a fixed list of chains that file layouts name. Value types: any thread,
// never suspend.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "net/serde.h"

namespace mica::craq {

using NodeId = uint32_t;
using TargetId = uint64_t;
using ChainId = uint32_t;
using ChainTableId = uint32_t;

enum class NodeKind : uint8_t { kStorage = 0, kMeta = 1, kClient = 2 };
MICA_ENUM_RANGE(NodeKind, kStorage, kClient)

// What a target's own node reports about it (kept in mgmtd's memory only).
// kUpToDate: holds every committed write of its chain at the chain version it reports.
// kOnline: running, contents possibly behind (just started, or resync not finished).
// kOffline: not usable (disk failed, engine stopped); also what mgmtd assumes for a
// target whose node's lease expired or that an admin took offline.
enum class LocalState : uint8_t { kUpToDate = 0, kOnline = 1, kOffline = 2 };
MICA_ENUM_RANGE(LocalState, kUpToDate, kOffline)

// What mgmtd decides and publishes with the chain (as in 3FS).
// kServing: reads and writes. kSyncing: receives writes and the resync copy, serves no
// reads. kWaiting: back, waiting for its turn to sync. kLastServing: down, but it was the
// last target that served, so the chain waits for it. kOffline: down or failed.
enum class PublicState : uint8_t {
  kServing = 0,
  kSyncing = 1,
  kWaiting = 2,
  kLastServing = 3,
  kOffline = 4,
};
MICA_ENUM_RANGE(PublicState, kServing, kOffline)

std::string_view node_kind_name(NodeKind kind);      // "storage"
std::string_view local_state_name(LocalState state);  // "up-to-date"
std::string_view public_state_name(PublicState state);  // "serving", "lastsrv"

struct NodeInfo {
  NodeId id = 0;
  NodeKind kind = NodeKind::kStorage;
  // Random, drawn by the node on its first start and kept in its data directory: a process
  // that claims a node id must also present its identity.
  std::string identity;
  std::string host_name;
  std::string rpc_address;  // "ip:port" of its RPC server
  std::vector<std::string> tags;
  // Wall-clock time of the last registration (ms since the epoch), for people; liveness is
  // decided on mgmtd's monotonic clock from heartbeats, never from this.
  uint64_t registered_at_ms = 0;
  // A meta node's metadata shards, as of its last registration (sorted; durable, so a
  // restarted mgmtd publishes the same shard map). Routing's meta_shards is built from it.
  std::vector<uint32_t> meta_shards;
  static constexpr std::string_view kTypeName = "NodeInfo";
  MICA_FIELDS(NodeInfo, id, kind, identity, host_name, rpc_address, tags, registered_at_ms,
              meta_shards)
};

struct TargetInfo {
  TargetId id = 0;
  NodeId node = 0;
  // Random, drawn when the target's directory was formatted: a new disk in the same place
  // is a new target, never mistaken for the old one.
  std::string identity;
  std::string disk;  // the node's name for the disk (its mount path), for people
  ChainId chain = 0;  // 0 while the target belongs to no chain
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;
  bool admin_offline = false;  // taken offline by `mica target offline`
  // Its node registered again (a new process) and no update round has decided its chain
  // since: durable, so a mgmtd restart in between still takes it out of serving.
  bool restart_pending = false;
  static constexpr std::string_view kTypeName = "TargetInfo";
  MICA_FIELDS(TargetInfo, id, node, identity, disk, chain, capacity_bytes, used_bytes,
              admin_offline, restart_pending)
};

struct ChainTarget {
  TargetId target = 0;
  PublicState state = PublicState::kOffline;
  static constexpr std::string_view kTypeName = "ChainTarget";
  MICA_FIELDS(ChainTarget, target, state)
};

// Targets in chain order: serving ones first (head .. tail), then lastsrv, syncing, waiting
// and offline ones (target_state.h keeps this order).
struct ChainInfo {
  ChainId id = 0;
  uint64_t version = 0;
  std::vector<ChainTarget> targets;
  static constexpr std::string_view kTypeName = "ChainInfo";
  MICA_FIELDS(ChainInfo, id, version, targets)
};

// A table's chain ids never change once created: layouts that name the table stay valid.
struct ChainTable {
  ChainTableId id = 0;
  uint64_t version = 0;
  uint32_t replica_count = 0;
  std::vector<ChainId> chains;
  static constexpr std::string_view kTypeName = "ChainTable";
  MICA_FIELDS(ChainTable, id, version, replica_count, chains)
};

// Which meta process serves a metadata shard: mgmtd builds the list (sorted by shard) from
// the meta nodes' registrations. A node whose lease ran out keeps its shards (shards are not
// replicated: clients keep retrying it) until another node claims them.
struct MetaShardRoute {
  uint32_t shard = 0;
  NodeId node = 0;
  static constexpr std::string_view kTypeName = "MetaShardRoute";
  MICA_FIELDS(MetaShardRoute, shard, node)
};

struct ClusterConfig {
  uint32_t replica_count = 3;
  uint64_t chunk_size_min_bytes = 64 << 10;
  uint64_t chunk_size_max_bytes = 64 << 20;
  uint64_t chunk_size_default_bytes = 4 << 20;
  uint32_t heartbeat_interval_ms = 1000;
  // A node silent for this long has its targets treated as offline.
  uint32_t lease_timeout_ms = 5000;
  static constexpr std::string_view kTypeName = "ClusterConfig";
  MICA_FIELDS(ClusterConfig, replica_count, chunk_size_min_bytes, chunk_size_max_bytes,
              chunk_size_default_bytes, heartbeat_interval_ms, lease_timeout_ms)
};

// Everything a server or client needs to route: versioned as a whole; the version grows
// with every change mgmtd makes, so "newer" is one comparison.
struct RoutingSnapshot {
  uint64_t version = 0;
  std::vector<NodeInfo> nodes;     // by id
  std::vector<TargetInfo> targets; // by id
  std::vector<ChainInfo> chains;   // by id
  std::vector<ChainTable> tables;  // by id
  std::vector<MetaShardRoute> meta_shards;
  ClusterConfig config;
  static constexpr std::string_view kTypeName = "RoutingSnapshot";
  MICA_FIELDS(RoutingSnapshot, version, nodes, targets, chains, tables, meta_shards, config)
};

// Lookups in a snapshot's id-sorted vectors; nullptr when absent.
const NodeInfo* find_node(const RoutingSnapshot& routing, NodeId id);
const TargetInfo* find_target(const RoutingSnapshot& routing, TargetId id);
const ChainInfo* find_chain(const RoutingSnapshot& routing, ChainId id);
const ChainTable* find_table(const RoutingSnapshot& routing, ChainTableId id);

}  // namespace mica::craq
