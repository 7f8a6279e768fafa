// The cluster manager's RPC service: the messages and the method table that mgmtd serves
// (craq/mgmtd.h), that servers call to register and heartbeat (craq/node_agent.h), that
// routing clients poll (craq/routing_client.h) and that the `mica` CLI uses for status and
// admin commands.
//
// Declared once (net/service_def.h): ids are forever, fields are only appended. Every
// request is validated by mgmtd; an unknown node, target or chain is kNotFound, a request
// that breaks a rule (two targets of one node in a chain, replacing a serving target) is
// kInvalidArgument with a message saying which rule. Declarations only: any thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "craq/types.h"
#include "net/service_def.h"

namespace mica::craq {

// One target as its node reports it.
struct TargetReport {
  TargetId target = 0;  // 0 in a first registration: mgmtd assigns one
  std::string identity;  // drawn when the target's directory was formatted
  std::string disk;
  LocalState local = LocalState::kOnline;
  uint64_t reported_chain_version = 0;  // the chain version `local` refers to
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;
  static constexpr std::string_view kTypeName = "TargetReport";
  MICA_FIELDS(TargetReport, target, identity, disk, local, reported_chain_version,
              capacity_bytes, used_bytes)
};

// A server process announces itself (at start, and again after mgmtd forgot its lease).
// node 0 asks for a new id; a known id must come with the identity it was given to.
struct RegisterRequest {
  NodeId node = 0;
  std::string identity;
  NodeKind kind = NodeKind::kStorage;
  std::string host_name;
  std::string rpc_address;
  std::vector<std::string> tags;
  std::vector<TargetReport> targets;
  // A meta node: the metadata shards it serves (they replace what it claimed before). A
  // shard another live node serves is refused (kAlreadyExists); a dead node's is taken over.
  std::vector<uint32_t> meta_shards;
  static constexpr std::string_view kTypeName = "RegisterRequest";
  MICA_FIELDS(RegisterRequest, node, identity, kind, host_name, rpc_address, tags, targets,
              meta_shards)
};
struct RegisterResponse {
  NodeId node = 0;
  std::vector<TargetId> targets;  // the ids of the request's targets, in its order
  uint64_t routing_version = 0;
  ClusterConfig config;
  static constexpr std::string_view kTypeName = "RegisterResponse";
  MICA_FIELDS(RegisterResponse, node, targets, routing_version, config)
};

// Every heartbeat_interval_ms: the node is alive, and its targets' states and capacity.
// An unknown node or a target it does not own is refused (kNotFound): register again.
// `targets` lists every target of the node: one left out counts as offline.
struct HeartbeatRequest {
  NodeId node = 0;
  std::string identity;
  std::vector<TargetReport> targets;
  static constexpr std::string_view kTypeName = "HeartbeatRequest";
  MICA_FIELDS(HeartbeatRequest, node, identity, targets)
};
struct HeartbeatResponse {
  uint64_t routing_version = 0;  // newer than the node's: fetch routing
  ClusterConfig config;
  static constexpr std::string_view kTypeName = "HeartbeatResponse";
  MICA_FIELDS(HeartbeatResponse, routing_version, config)
};

// Long poll: answers at once with the snapshot when mgmtd's version differs from
// known_version, otherwise waits up to wait_ms (capped by mgmtd) for a change and answers
// with the snapshot or without one.
struct GetRoutingRequest {
  uint64_t known_version = 0;
  uint32_t wait_ms = 0;
  static constexpr std::string_view kTypeName = "GetRoutingRequest";
  MICA_FIELDS(GetRoutingRequest, known_version, wait_ms)
};
struct GetRoutingResponse {
  uint64_t version = 0;
  std::optional<RoutingSnapshot> routing;  // none: known_version is still current
  static constexpr std::string_view kTypeName = "GetRoutingResponse";
  MICA_FIELDS(GetRoutingResponse, version, routing)
};

// What mgmtd knows beyond routing, for `mica status`.
struct NodeStatus {
  NodeId node = 0;
  bool alive = false;  // heartbeat within the lease
  uint64_t heartbeat_age_ms = 0;
  static constexpr std::string_view kTypeName = "NodeStatus";
  MICA_FIELDS(NodeStatus, node, alive, heartbeat_age_ms)
};
struct TargetStatus {
  TargetId target = 0;
  LocalState local = LocalState::kOffline;
  uint64_t reported_chain_version = 0;
  static constexpr std::string_view kTypeName = "TargetStatus";
  MICA_FIELDS(TargetStatus, target, local, reported_chain_version)
};
struct StatusRequest {
  uint32_t reserved = 0;  // a message needs one field; room to ask for less later
  static constexpr std::string_view kTypeName = "StatusRequest";
  MICA_FIELDS(StatusRequest, reserved)
};
struct StatusResponse {
  RoutingSnapshot routing;
  std::vector<NodeStatus> nodes;
  std::vector<TargetStatus> targets;
  static constexpr std::string_view kTypeName = "StatusResponse";
  MICA_FIELDS(StatusResponse, routing, nodes, targets)
};

// Builds a new chain table from the storage targets in no chain yet (of `nodes`, or of
// every storage node when empty), placed by craq/chain_table.h.
struct CreateChainTableRequest {
  uint32_t replica_count = 0;  // 0: the cluster config's
  std::vector<NodeId> nodes;
  uint64_t seed = 0;
  static constexpr std::string_view kTypeName = "CreateChainTableRequest";
  MICA_FIELDS(CreateChainTableRequest, replica_count, nodes, seed)
};
struct CreateChainTableResponse {
  ChainTable table;
  std::vector<ChainInfo> chains;
  static constexpr std::string_view kTypeName = "CreateChainTableResponse";
  MICA_FIELDS(CreateChainTableResponse, table, chains)
};

// `mica target offline T` (offline = true) and its undo.
struct SetTargetOfflineRequest {
  TargetId target = 0;
  bool offline = true;
  static constexpr std::string_view kTypeName = "SetTargetOfflineRequest";
  MICA_FIELDS(SetTargetOfflineRequest, target, offline)
};
struct SetTargetOfflineResponse {
  uint64_t routing_version = 0;
  static constexpr std::string_view kTypeName = "SetTargetOfflineResponse";
  MICA_FIELDS(SetTargetOfflineResponse, routing_version)
};

// `mica target replace OLD NEW`: NEW (in no chain) takes OLD's place and syncs.
struct ReplaceTargetRequest {
  TargetId old_target = 0;
  TargetId new_target = 0;
  static constexpr std::string_view kTypeName = "ReplaceTargetRequest";
  MICA_FIELDS(ReplaceTargetRequest, old_target, new_target)
};
struct ReplaceTargetResponse {
  ChainInfo chain;
  static constexpr std::string_view kTypeName = "ReplaceTargetResponse";
  MICA_FIELDS(ReplaceTargetResponse, chain)
};

// `mica chain promote C T`: unblocks a chain waiting for its lastsrv target.
struct PromoteTargetRequest {
  ChainId chain = 0;
  TargetId target = 0;
  static constexpr std::string_view kTypeName = "PromoteTargetRequest";
  MICA_FIELDS(PromoteTargetRequest, chain, target)
};
struct PromoteTargetResponse {
  ChainInfo chain;
  std::string warning;  // what may have been lost
  static constexpr std::string_view kTypeName = "PromoteTargetResponse";
  MICA_FIELDS(PromoteTargetResponse, chain, warning)
};

struct MgmtdService {
  static constexpr net::ServiceId kId = 100;
  static constexpr net::Method<kId, 1, RegisterRequest, RegisterResponse> register_node{};
  static constexpr net::Method<kId, 2, HeartbeatRequest, HeartbeatResponse> heartbeat{};
  static constexpr net::Method<kId, 3, GetRoutingRequest, GetRoutingResponse> get_routing{};
  static constexpr net::Method<kId, 4, StatusRequest, StatusResponse> status{};
  static constexpr net::Method<kId, 5, CreateChainTableRequest, CreateChainTableResponse>
      create_chain_table{};
  static constexpr net::Method<kId, 6, SetTargetOfflineRequest, SetTargetOfflineResponse>
      set_target_offline{};
  static constexpr net::Method<kId, 7, ReplaceTargetRequest, ReplaceTargetResponse>
      replace_target{};
  static constexpr net::Method<kId, 8, PromoteTargetRequest, PromoteTargetResponse>
      promote_target{};
  MICA_SERVICE(MgmtdService, "mgmtd", register_node, heartbeat, get_routing, status,
               create_chain_table, set_target_offline, replace_target, promote_target)
};

}  // namespace mica::craq
