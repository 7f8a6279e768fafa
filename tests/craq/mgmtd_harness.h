// The mgmtd test harness: a real Mgmtd on LMDB in the test's directory, served by a real
// RpcServer over TCP on 127.0.0.1, and one RpcClient to it; plus helpers that build the
// requests storage nodes send. One test, one executor (the MICA_CO_TEST one); every helper
// that talks to mgmtd suspends.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "async/wait_list.h"
#include "craq/mgmtd.h"
#include "kv/kv.h"
#include "net/rpc_client.h"
#include "net/rpc_server.h"
#include "net/tcp_transport.h"

namespace mica::craq::testing {

// Short intervals, so lease expiry and rounds take milliseconds.
inline MgmtdOptions fast_options() {
  MgmtdOptions options;
  options.config.lease_timeout_ms = 200;
  options.config.heartbeat_interval_ms = 50;
  options.config.replica_count = 3;
  options.update_interval = std::chrono::milliseconds(20);
  return options;
}

struct Harness {
  explicit Harness(std::string directory) : dir(std::move(directory)) {}
  std::string dir;
  MgmtdOptions options = fast_options();
  std::unique_ptr<kv::Env> env;
  std::unique_ptr<Mgmtd> mgmtd;
  net::TcpTransport transport;
  std::unique_ptr<net::RpcServer> server;
  std::shared_ptr<net::RpcClient> client;

  MgmtdService::Stub stub() { return MgmtdService::Stub(client.get()); }
};

// Opens the env and Mgmtd in h->dir, starts the loop, the server and the client.
inline Task<Status> start(Harness* h) {
  // Room for mgmtd's tables twice: a test may open a second Mgmtd on the same env.
  kv::EnvOptions options{.map_size_bytes = uint64_t{1} << 28, .tables_max = 2 * kMgmtdTables + 2};
  auto opening = kv::Env::open(h->dir, options);
  CO_TRY_ASSIGN(h->env, co_await std::move(opening));
  auto loading = Mgmtd::open(h->env.get(), h->options);
  CO_TRY_ASSIGN(h->mgmtd, co_await std::move(loading));
  h->mgmtd->start();
  h->server = std::make_unique<net::RpcServer>(&h->transport);
  h->server->add_service(h->mgmtd->service());
  CO_TRY_ASSIGN(SocketAddress address, h->server->start(SocketAddress::loopback(0)));
  auto connecting =
      net::RpcClient::connect(&h->transport, address, deadline_after(std::chrono::seconds(5)));
  CO_TRY_ASSIGN(h->client, co_await std::move(connecting));
  co_return Status();
}

// Everything start() made, in reverse; safe after a partial start.
inline Task<void> stop(Harness* h) {
  if (h->client) {
    auto closing = h->client->close();
    co_await std::move(closing);
  }
  h->client.reset();
  if (h->mgmtd) {
    auto stopping = h->mgmtd->stop();
    co_await std::move(stopping);
  }
  if (h->server) {
    auto draining = h->server->shutdown();
    co_await std::move(draining);
  }
  h->server.reset();
  h->mgmtd.reset();
  if (h->env) {
    auto closing = h->env->close();
    Status closed = co_await std::move(closing);
    EXPECT_TRUE(closed.ok()) << closed;
  }
  h->env.reset();
}

inline TargetReport disk_report(std::string identity, TargetId id = 0,
                                LocalState local = LocalState::kUpToDate) {
  return TargetReport{.target = id,
                      .identity = std::move(identity),
                      .disk = "/disk",
                      .local = local,
                      .capacity_bytes = uint64_t{1} << 40};
}

// A storage node with one target per identity in `targets`.
inline RegisterRequest storage_node(std::string identity, std::vector<std::string> targets,
                                    NodeId id = 0) {
  RegisterRequest request{.node = id,
                          .identity = identity,
                          .kind = NodeKind::kStorage,
                          .host_name = "host-" + identity,
                          .rpc_address = "127.0.0.1:1"};
  for (std::string& target : targets) request.targets.push_back(disk_report(std::move(target)));
  return request;
}

inline Task<Result<RegisterResponse>> register_node(Harness* h, RegisterRequest request) {
  auto calling = h->stub().register_node(std::move(request));
  co_return co_await std::move(calling);
}

// A heartbeat from a registered node reporting its targets' states at their chains'
// current versions (as a node that is up to date would).
inline HeartbeatRequest heartbeat_of(const Harness& h, const RegisterRequest& node, NodeId id,
                                     const std::vector<TargetId>& targets,
                                     LocalState local = LocalState::kUpToDate) {
  HeartbeatRequest request{.node = id, .identity = node.identity};
  std::shared_ptr<const RoutingSnapshot> routing = h.mgmtd->routing();
  for (TargetId target : targets) {
    TargetReport report = disk_report("", target, local);
    const TargetInfo* info = find_target(*routing, target);
    const ChainInfo* chain = info ? find_chain(*routing, info->chain) : nullptr;
    report.reported_chain_version = chain ? chain->version : 0;
    request.targets.push_back(report);
  }
  return request;
}

inline Task<Result<HeartbeatResponse>> heartbeat(Harness* h, HeartbeatRequest request) {
  auto calling = h->stub().heartbeat(std::move(request));
  co_return co_await std::move(calling);
}

}  // namespace mica::craq::testing
