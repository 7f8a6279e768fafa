// A storage cluster in one test process, for the storage client's tests: a real Mgmtd on
// LMDB (tests/craq/served_mgmtd.h), `nodes` StorageNodes (craq/storage_node.h: server, RPC
// server, routing client and node agent each) with `targets_per_node` chunk engines on the
// real disk, one chain table over all of them (replica count 3), and the client side: its
// own transport, pool and RoutingClient. Everything talks TCP on 127.0.0.1. One test, one
// executor (the MICA_CO_TEST one); start_cluster() and stop_cluster() suspend.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "craq/storage_node.h"
#include "tests/craq/served_mgmtd.h"

namespace mica::craq::testing {

struct ClientCluster {
  ClientCluster(std::string directory, size_t node_count, size_t targets)
      : dir(std::move(directory)),
        mgmtd(dir + "/mgmtd"),
        nodes_wanted(node_count),
        targets_per_node(targets) {}
  std::string dir;
  ServedMgmtd mgmtd;
  size_t nodes_wanted;
  size_t targets_per_node;
  net::TcpTransport node_transport;
  std::vector<std::unique_ptr<StorageNode>> nodes;
  std::vector<ChainId> chains;
  // The client's side.
  net::TcpTransport transport;
  std::unique_ptr<net::ConnectionPool> pool;
  std::unique_ptr<RoutingClient> routing;
};

inline RoutingClientOptions fast_routing(SocketAddress mgmtd) {
  RoutingClientOptions options;
  options.mgmtd = {mgmtd};
  options.poll_wait_ms = 1000;
  options.poll_slack = std::chrono::milliseconds(500);
  options.backoff_initial = std::chrono::milliseconds(10);
  options.backoff_max = std::chrono::milliseconds(50);
  options.fetch_timeout = std::chrono::seconds(1);
  return options;
}

inline StorageNodeOptions node_options(const ClientCluster& c, size_t index) {
  StorageNodeOptions options;
  options.mgmtd = {c.mgmtd.address};
  options.data_dir = fmt::format("{}/node{}", c.dir, index);
  std::filesystem::create_directories(options.data_dir);
  options.listen = SocketAddress::loopback(0);
  options.host_name = fmt::format("host{}", index);
  for (size_t t = 0; t < c.targets_per_node; ++t) {
    StorageTargetConfig target;
    target.path = fmt::format("{}/t{}", options.data_dir, t);
    std::filesystem::create_directories(target.path);
    target.engine.chunk_size_max_bytes = 1 << 20;
    target.engine.reserve_bytes = 0;
    target.engine.growth_step_bytes = 1 << 20;
    target.engine.lmdb_map_size_bytes = uint64_t{1} << 28;
    options.server.targets.push_back(std::move(target));
  }
  options.server.scrub_bytes_per_s = 0;
  options.pool = fast_pool();
  options.routing = fast_routing(c.mgmtd.address);
  options.agent.heartbeat_interval = std::chrono::milliseconds(50);
  options.agent.backoff_initial = std::chrono::milliseconds(10);
  return options;
}

// True when every chain of the table is in routing with all its replicas serving.
inline bool all_serving(const RoutingSnapshot& routing, const std::vector<ChainId>& chains) {
  for (ChainId id : chains) {
    const ChainInfo* chain = find_chain(routing, id);
    if (chain == nullptr || chain->targets.size() != 3) return false;
    for (const ChainTarget& target : chain->targets)
      if (target.state != PublicState::kServing) return false;
  }
  return true;
}

inline Task<Status> start_cluster(ClientCluster* c) {
  std::filesystem::create_directories(c->mgmtd.dir);
  auto serving = serve(&c->mgmtd);
  CO_TRY(co_await std::move(serving));
  for (size_t i = 0; i < c->nodes_wanted; ++i) {
    c->nodes.push_back(std::make_unique<StorageNode>(&c->node_transport, node_options(*c, i)));
    auto starting = c->nodes.back()->start();
    CO_TRY(co_await std::move(starting));
  }
  for (auto& node : c->nodes) {
    auto waiting = node->wait_registered(deadline_after(std::chrono::seconds(10)));
    CO_TRY(co_await std::move(waiting));
  }
  CreateChainTableRequest table{.replica_count = 3, .seed = 1};
  auto creating = c->mgmtd.mgmtd->create_chain_table(std::move(table), nullptr);
  CO_TRY_ASSIGN(CreateChainTableResponse created, co_await std::move(creating));
  c->chains = created.table.chains;
  c->pool = std::make_unique<net::ConnectionPool>(&c->transport, fast_pool());
  c->routing = std::make_unique<RoutingClient>(c->pool.get(), fast_routing(c->mgmtd.address));
  c->routing->start();
  std::vector<ChainId> chains = c->chains;
  auto waiting = c->routing->wait_until(
      [chains](const RoutingSnapshot& routing) { return all_serving(routing, chains); },
      deadline_after(std::chrono::seconds(10)));
  CO_TRY(co_await std::move(waiting));
  co_return Status();
}

// The reverse of start_cluster(); safe after a partial start.
inline Task<void> stop_cluster(ClientCluster* c) {
  if (c->routing) {
    Task<void> stopping = c->routing->stop();
    co_await std::move(stopping);
  }
  if (c->pool) {
    Task<void> closing = c->pool->close();
    co_await std::move(closing);
  }
  for (auto& node : c->nodes) {
    Task<void> stopping = node->stop();
    co_await std::move(stopping);
  }
  c->nodes.clear();
  Task<void> unserving = unserve(&c->mgmtd);
  co_await std::move(unserving);
}

// The target of `chain` on each node that has one, in node order.
inline std::vector<StorageTarget*> targets_of(ClientCluster* c, ChainId chain) {
  std::vector<StorageTarget*> found;
  for (auto& node : c->nodes) {
    StorageTarget* target = node->server()->targets().by_chain(chain);
    if (target != nullptr) found.push_back(target);
  }
  return found;
}

}  // namespace mica::craq::testing
