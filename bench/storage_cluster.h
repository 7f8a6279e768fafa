// BenchCluster: the storage suite's cluster (bench/storage_bench.cc) — StorageServers in one
// process, each on its own executor thread with its own TCP transport, connection pool and
// RPC server on 127.0.0.1 (real TCP between them), and chains built by hand: a
// RoutingSnapshot made here is applied to every server and served to clients by
// FixedRouting, a stand-in for mgmtd that answers get_routing with it (no registration, no
// heartbeats, so nothing changes the chains while they are measured).
//
// Layout: `servers` servers; chain c (of `chains`) has the `replicas` targets of servers
// c, c+1, ... (mod servers), so the heads rotate over the servers. Server i keeps its
// targets in DIR/s<i>/c<c>, which persist between runs (a prepared data set is reopened).
//
// Ownership and threads: the cluster is made, opened, routed and closed by tasks on the
// Runtime's executor 0 (where clients run); each server lives on executor i + 1 and is only
// touched there (the cluster hops to it). open(), route(), close() suspend.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "async/runtime.h"
#include "craq/mgmtd_service.h"
#include "craq/storage_server.h"
#include "net/rpc_server.h"
#include "net/tcp_transport.h"

namespace mica::bench {

// Serves one fixed snapshot as MgmtdService::get_routing; every other method is refused.
class FixedRouting {
 public:
  explicit FixedRouting(craq::RoutingSnapshot snapshot) : snapshot_(std::move(snapshot)) {}
  void set(craq::RoutingSnapshot snapshot) { snapshot_ = std::move(snapshot); }

  Task<Result<craq::RegisterResponse>> register_node(craq::RegisterRequest, net::CallContext*);
  Task<Result<craq::HeartbeatResponse>> heartbeat(craq::HeartbeatRequest, net::CallContext*);
  Task<Result<craq::GetRoutingResponse>> get_routing(craq::GetRoutingRequest request,
                                                     net::CallContext*);
  Task<Result<craq::StatusResponse>> status(craq::StatusRequest, net::CallContext*);
  Task<Result<craq::CreateChainTableResponse>> create_chain_table(craq::CreateChainTableRequest,
                                                                  net::CallContext*);
  Task<Result<craq::SetTargetOfflineResponse>> set_target_offline(craq::SetTargetOfflineRequest,
                                                                  net::CallContext*);
  Task<Result<craq::ReplaceTargetResponse>> replace_target(craq::ReplaceTargetRequest,
                                                           net::CallContext*);
  Task<Result<craq::PromoteTargetResponse>> promote_target(craq::PromoteTargetRequest,
                                                           net::CallContext*);

 private:
  craq::RoutingSnapshot snapshot_;
};

struct ClusterLayout {
  std::string dir;
  uint32_t servers = 3;
  uint32_t chains = 1;
  uint32_t replicas = 3;
  uint64_t chain_version = 1;
  // Resync: bound on chunks copied at once (the server's default); its bandwidth cap is off.
  uint32_t resync_chunks_in_flight_max = 8;
  // The last member of every chain is syncing instead of serving (the resync figure).
  bool last_syncing = false;
  // When not empty: server i keeps its targets under server_dirs[i] instead of DIR/s<i>.
  std::vector<std::string> server_dirs;
};

// One server and what it owns, all on its executor.
struct BenchServer {
  Executor* executor = nullptr;
  net::TcpTransport transport;
  std::unique_ptr<net::ConnectionPool> pool;
  std::unique_ptr<craq::StorageServer> server;
  std::unique_ptr<net::Service> service;
  std::unique_ptr<net::RpcServer> rpc;
  SocketAddress address;
  std::vector<uint32_t> chains;  // the chains (0-based) it has a target in, in target order
};

class BenchCluster {
 public:
  BenchCluster(Runtime* runtime, ClusterLayout layout);
  ~BenchCluster();  // asserts close() ran after a successful open()

  // Opens every server on its executor (targets created when new) and assigns target ids;
  // serves FixedRouting (routing_address()) on the calling executor. No server has routing
  // until route() gives it snapshot().
  Task<Status> open();
  Task<Status> close();

  // The layout's snapshot (chain versions = layout.chain_version): every target serving,
  // or the last of each chain syncing (layout.last_syncing).
  craq::RoutingSnapshot snapshot() const;
  // Applies snapshot to every server (each on its executor) and to FixedRouting.
  Task<void> route(craq::RoutingSnapshot snapshot);
  SocketAddress routing_address() const { return routing_address_; }
  craq::TargetId target_id(uint32_t server, uint32_t chain) const;
  craq::ChainId chain_id(uint32_t chain) const { return chain + 1; }
  BenchServer& server(uint32_t i) { return *servers_[i]; }
  uint32_t size() const { return static_cast<uint32_t>(servers_.size()); }
  // The directory of server i's target of chain c.
  std::string target_dir(uint32_t server, uint32_t chain) const;

 private:
  Task<void> open_server(uint32_t i, Status* status);
  Task<void> close_server(uint32_t i, Status* status);
  Task<void> apply_on(uint32_t i, craq::RoutingSnapshot snapshot);

  Runtime* runtime_;
  ClusterLayout layout_;
  std::vector<std::unique_ptr<BenchServer>> servers_;
  std::map<std::string, craq::TargetId> ids_;  // identity -> id, in layout order
  std::vector<std::string> identities_;        // by target id - 1
  std::unique_ptr<FixedRouting> routing_;
  std::unique_ptr<net::Service> routing_service_;
  net::TcpTransport routing_transport_;
  std::unique_ptr<net::RpcServer> routing_rpc_;
  SocketAddress routing_address_;
  bool open_ = false;
};

// The resident memory of this process (VmRSS), in bytes.
uint64_t resident_bytes();

}  // namespace mica::bench
