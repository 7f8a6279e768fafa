// storage_standin: a storage node without storage, for the apps tests until the storage
// issue brings mica-storage. It is one node process with --targets targets (each a directory
// with its identity file under --dir), registers with mgmtd through craq::NodeAgent and
// heartbeats every target as up to date at its chain's current version (learned from a
// RoutingClient). It always reports up to date, also for a target mgmtd has just put
// online: a real storage node reports such a target online until it has resynced it. That
// is fine for the mgmtd SIGKILL test, where no target changes state. Runs until SIGINT or
// SIGTERM (then leaves cleanly) or SIGKILL.
//
//   storage_standin --mgmtd HOST:PORT --token-file FILE --dir DIR [--targets N] [--host NAME]
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/server_runtime.h"
#include "async/executor.h"
#include "async/log.h"
#include "craq/node_agent.h"
#include "craq/node_identity.h"
#include "craq/routing_client.h"
#include "net/authenticated_transport.h"
#include "net/tcp_transport.h"

namespace mica {
namespace {

struct StandinArgs {
  std::string mgmtd;
  std::string token_file;
  std::string dir;
  std::string host = "standin";
  int targets = 2;
};

struct Target {
  std::string dir;
  craq::TargetIdentity identity;
};

// Every target up to date at the version of the chain it is in (0 while in none).
std::vector<craq::TargetReport> reports(const std::vector<Target>& targets,
                                        const craq::RoutingClient& routing) {
  std::vector<craq::TargetReport> out;
  std::shared_ptr<const craq::RoutingSnapshot> snapshot = routing.current();
  for (const Target& target : targets) {
    craq::TargetReport report{.identity = target.identity.identity,
                              .disk = target.dir,
                              .local = craq::LocalState::kUpToDate,
                              .capacity_bytes = uint64_t{1} << 40,
                              .used_bytes = 0};
    // Targets are found by identity: the ids arrive with the registration.
    const craq::TargetInfo* info = nullptr;
    if (snapshot) {
      for (const craq::TargetInfo& t : snapshot->targets) {
        if (t.identity == target.identity.identity) info = &t;
      }
    }
    if (info != nullptr) {
      const craq::ChainInfo* chain = craq::find_chain(*snapshot, info->chain);
      report.reported_chain_version = chain ? chain->version : 0;
    }
    out.push_back(std::move(report));
  }
  return out;
}

Task<Result<std::vector<Target>>> load_targets(StandinArgs args) {
  std::vector<Target> targets;
  for (int i = 0; i < args.targets; ++i) {
    Target target{.dir = args.dir + "/target-" + std::to_string(i), .identity = {}};
    auto loading = craq::load_or_create_target_identity(target.dir);
    CO_TRY_ASSIGN(target.identity, co_await std::move(loading));
    targets.push_back(std::move(target));
  }
  co_return targets;
}

Task<int> run(StandinArgs args, net::ClusterToken token, apps::StopSignals* signals) {
  auto loading = craq::load_or_create_node_identity(args.dir);
  Result<craq::NodeIdentity> node = co_await std::move(loading);
  auto loading_targets = load_targets(args);
  Result<std::vector<Target>> targets = co_await std::move(loading_targets);
  if (!node.ok() || !targets.ok()) co_return 1;
  net::TcpTransport tcp;
  net::AuthenticatedTransport transport(&tcp, token);
  net::ConnectionPool pool(&transport,
                           net::PoolOptions{.backoff_max = craq::kMgmtdReconnectBackoffMax});
  std::vector<SocketAddress> mgmtd{SocketAddress::parse(args.mgmtd).value()};
  craq::RoutingClient routing(&pool, craq::RoutingClientOptions{.mgmtd = mgmtd});
  routing.start();
  craq::NodeAgentOptions options{.mgmtd = mgmtd,
                                 .host_name = args.host,
                                 .rpc_address = "127.0.0.1:1",
                                 .node = node->node,
                                 .identity = node->identity};
  options.reports = [&] { return reports(*targets, routing); };
  options.on_registered = [&](const craq::RegisterResponse& response) -> Task<Status> {
    return craq::save_node_identity(args.dir, craq::NodeIdentity{response.node, node->identity});
  };
  options.routing = &routing;
  craq::NodeAgent agent(&pool, std::move(options));
  agent.start();
  auto waiting = signals->wait();
  Result<int> signal = co_await std::move(waiting);
  (void)signal;
  auto stopping_agent = agent.stop();
  co_await std::move(stopping_agent);
  auto stopping_routing = routing.stop();
  co_await std::move(stopping_routing);
  auto closing = pool.close();
  co_await std::move(closing);
  co_return 0;
}

bool parse(int argc, char** argv, StandinArgs* out) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string name = argv[i], value = argv[i + 1];
    if (name == "--mgmtd")
      out->mgmtd = value;
    else if (name == "--token-file")
      out->token_file = value;
    else if (name == "--dir")
      out->dir = value;
    else if (name == "--host")
      out->host = value;
    else if (name == "--targets")
      out->targets = std::atoi(value.c_str());
    else
      return false;
  }
  return (argc % 2) == 1 && !out->mgmtd.empty() && !out->dir.empty() && out->targets > 0;
}

}  // namespace
}  // namespace mica

int main(int argc, char** argv) {
  using namespace mica;
  Result<apps::StopSignals> signals = apps::StopSignals::install();
  StandinArgs args;
  if (!signals.ok() || !parse(argc, argv, &args)) {
    std::fprintf(stderr,
                 "usage: storage_standin --mgmtd HOST:PORT --token-file FILE --dir DIR "
                 "[--targets N] [--host NAME]\n");
    return 2;
  }
  Result<net::ClusterToken> token = net::load_cluster_token(args.token_file);
  if (!token.ok()) {
    std::fprintf(stderr, "storage_standin: %s\n", token.status().to_string().c_str());
    return 2;
  }
  std::filesystem::create_directories(args.dir);
  for (int i = 0; i < args.targets; ++i) {
    std::filesystem::create_directories(args.dir + "/target-" + std::to_string(i));
  }
  std::unique_ptr<Executor> executor = Executor::create_uring();
  return executor->block_on(run(args, std::move(*token), &*signals));
}
