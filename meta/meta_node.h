// MetaNode: one mica-meta process as a member of the cluster — the MetaServer with its RPC
// server, connection pool, routing client, storage client and node agent, wired together
// as craq/storage_node.h wires a storage server. mica-meta runs one (apps/), and so do the
// meta tests that need real processes' behaviour in one test process.
//
// start() loads (or makes) data_dir/node_identity, opens the shards (data_dir/shard-<n>)
// and, when shard 0 is served, the coordinator (data_dir/coordinator), starts the RPC
// server, registers with mgmtd as a kMeta node naming its shards (so routing's
// meta_shards points clients here) and follows routing (every snapshot goes to
// MetaServer::apply_routing). stop() undoes it in reverse: agent and routing client, RPC
// drain, server close (shards and coordinator), storage client, pool.
//
// Ownership and threads: the caller owns the transport, which outlives the node. start()
// and stop() are tasks on one executor, where everything but the shards runs (those on
// options.server.executors); stop() must follow any start() before destruction.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "async/socket_address.h"
#include "craq/node_agent.h"
#include "craq/node_identity.h"
#include "craq/routing_client.h"
#include "craq/storage_client.h"
#include "meta/meta_server.h"
#include "net/rpc_server.h"

namespace mica::meta {

struct MetaNodeOptions {
  std::vector<SocketAddress> mgmtd;  // at least one
  std::string data_dir;              // node_identity, shard-<n>/, coordinator/ (must exist)
  SocketAddress listen;              // port 0 picks one
  std::string advertise_address;     // empty: the bound listen address
  std::string host_name;
  std::vector<ShardId> shards;  // served here
  // Server options: `shards` is made from the list above (each ShardOptions copied from
  // shard_template with its id and directory), coordinator_dir from data_dir.
  MetaServerOptions server;
  ShardOptions shard_template;
  net::RpcServerOptions rpc;
  net::PoolOptions pool;
  craq::RoutingClientOptions routing;  // mgmtd and on_update are filled in
  craq::NodeAgentOptions agent;        // mgmtd, identity, kind, shards are filled in
  craq::StorageClientOptions storage;
  // Inode times from the system clock (a real process); false: the executor's clock, as the
  // simulator wants. Used when shard_template.clock_ns is unset.
  bool wall_clock = true;
};

class MetaNode {
 public:
  MetaNode(net::Transport* transport, MetaNodeOptions options);
  MetaNode(const MetaNode&) = delete;
  MetaNode& operator=(const MetaNode&) = delete;
  ~MetaNode();

  // Returns once the RPC server listens; registration proceeds in the background.
  Task<Status> start();
  Task<void> stop();
  Task<Status> wait_registered(TimePoint deadline);

  const SocketAddress& rpc_address() const { return rpc_address_; }
  craq::NodeId node() const;
  MetaServer* server() { return server_.get(); }
  craq::RoutingClient* routing() { return routing_.get(); }
  net::ConnectionPool* pool() { return pool_.get(); }

 private:
  Task<Status> persist_registration(craq::RegisterResponse response);
  Task<Status> make_dirs();

  net::Transport* transport_;
  MetaNodeOptions options_;
  SocketAddress rpc_address_;
  craq::NodeIdentity identity_;
  std::unique_ptr<net::ConnectionPool> pool_;
  std::unique_ptr<craq::RoutingClient> routing_;
  std::unique_ptr<craq::StorageClient> storage_;
  std::unique_ptr<MetaServer> server_;
  std::unique_ptr<net::RpcServer> rpc_;
  std::unique_ptr<craq::NodeAgent> agent_;
};

}  // namespace mica::meta
