// StorageNode: one storage server as a member of the cluster — the StorageServer with its
// RPC server, connection pool, routing client and node agent, wired together. mica-storage
// runs one (apps/), and so do the simulator's storage hosts, the cluster tests and the
// benchmarks, so the wiring is written once.
//
// start() opens the targets (their identity files and engines), starts the RPC server on
// the listen address, registers with mgmtd through the node agent (persisting the node id in
// data_dir/node_identity and the target ids in each target's identity file), and follows
// routing: every snapshot goes to StorageServer::apply_routing, every heartbeat carries
// StorageServer::reports(). stop() undoes it in reverse: agent and routing client, RPC
// drain (no handler runs afterwards), server loops, engines closed, pool closed.
//
// Ownership and threads: the caller owns the transport (TCP, authenticated or not, or the
// simulator's), which outlives the node. Everything runs on one executor: start() and stop()
// are tasks on it, stop() must follow any start() (failed or not) before destruction.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "async/socket_address.h"
#include "craq/node_agent.h"
#include "craq/node_identity.h"
#include "craq/routing_client.h"
#include "craq/storage_server.h"
#include "net/rpc_server.h"

namespace mica::craq {

struct StorageNodeOptions {
  std::vector<SocketAddress> mgmtd;  // at least one
  std::string data_dir;              // holds node_identity (must exist)
  SocketAddress listen;              // port 0 picks one
  // Advertised to mgmtd as rpc_address; empty: the bound listen address.
  std::string advertise_address;
  std::string host_name;
  StorageServerOptions server;  // targets and limits (server.node is filled in)
  net::RpcServerOptions rpc;
  net::PoolOptions pool;
  RoutingClientOptions routing;  // mgmtd and on_update are filled in
  NodeAgentOptions agent;        // mgmtd, identity, callbacks are filled in
};

class StorageNode {
 public:
  StorageNode(net::Transport* transport, StorageNodeOptions options);
  StorageNode(const StorageNode&) = delete;
  StorageNode& operator=(const StorageNode&) = delete;
  ~StorageNode();

  // Returns once the RPC server listens; registration and routing proceed in the background
  // (wait_registered() waits for the first registration).
  Task<Status> start();
  Task<void> stop();
  Task<Status> wait_registered(TimePoint deadline);

  const SocketAddress& rpc_address() const { return rpc_address_; }
  NodeId node() const;
  StorageServer* server() { return server_.get(); }
  RoutingClient* routing() { return routing_.get(); }
  net::ConnectionPool* pool() { return pool_.get(); }

 private:
  class MeteredService;
  void start_routing();
  void start_agent();
  Task<Status> persist_registration(RegisterResponse response);

  net::Transport* transport_;
  StorageNodeOptions options_;
  SocketAddress rpc_address_;
  std::unique_ptr<net::ConnectionPool> pool_;
  NodeIdentity identity_;
  std::unique_ptr<StorageServer> server_;
  std::unique_ptr<MeteredService> metered_;
  std::unique_ptr<net::Service> service_;
  std::unique_ptr<net::RpcServer> rpc_;
  std::unique_ptr<RoutingClient> routing_;
  std::unique_ptr<NodeAgent> agent_;
  bool server_started_ = false;
};

}  // namespace mica::craq
