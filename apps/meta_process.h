// mica-meta: the metadata server as a program — its command line (apps/server_runtime.h),
// its startup in order (token, transport, meta::MetaNode with its shards and, when shard 0
// is served, the coordinator, HTTP metrics endpoint, metrics refresh), one log line with
// its addresses and shards, and on SIGINT or SIGTERM a clean shutdown (HTTP, metrics loop,
// the node: agent, routing, RPC drain, shards closed).
//
// meta_main is the whole program (apps/meta_main.cc only calls it); the pieces are here for
// tests. Exit codes as mica-storage's: kExitOk after a signal-driven stop, kExitUsage for
// bad arguments or a bad config (an unusable token file included), kExitFailure when
// startup fails otherwise (a port taken, a shard that cannot be opened). Metrics on
// /metrics: every MetaService method's count and latency (apps/meta_metrics.h), the
// shards' commit batch sizes (meta/shard.h ShardCounters), and per-shard gauges (inodes,
// entries, sessions, GC queue files and bytes) refreshed every metrics_interval_ms.
// meta_main blocks the main thread until the process should end; MetaProcess runs on
// executor 0 of its runtime (start() and stop() are tasks there; stop() follows start()).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "apps/meta_config.h"
#include "apps/meta_metrics.h"
#include "async/scope.h"
#include "meta/meta_node.h"
#include "net/cluster_token.h"
#include "net/http_server.h"

namespace mica::apps {

// What the config asks of the MetaNode (addresses parsed; the config was validated). The
// executors the shards run on are the caller's.
Result<meta::MetaNodeOptions> meta_node_options(const MetaConfig& config,
                                                std::vector<Executor*> executors);

class MetaProcess {
 public:
  MetaProcess(MetaConfig config, std::optional<net::ClusterToken> token,
              std::vector<Executor*> executors);
  MetaProcess(const MetaProcess&) = delete;
  MetaProcess& operator=(const MetaProcess&) = delete;
  ~MetaProcess();

  // Opens everything in order and logs the start line; the first failure is returned and
  // what was opened stays for stop() to close.
  Task<Status> start();
  // Closes what start() opened, in reverse. Idempotent.
  Task<void> stop();

  const SocketAddress& rpc_address() const { return node_->rpc_address(); }
  const std::optional<SocketAddress>& http_address() const { return http_address_; }

 private:
  Status start_http();
  Task<void> refresh_metrics_loop();

  MetaConfig config_;
  std::optional<net::ClusterToken> token_;
  std::vector<Executor*> executors_;
  std::unique_ptr<net::Transport> inner_transport_;
  std::unique_ptr<net::Transport> transport_;    // the authenticated one, or none
  std::unique_ptr<MeteredMetaService> metered_;  // outlives the node's RPC server
  std::unique_ptr<meta::MetaNode> node_;
  std::unique_ptr<MetaMetrics> metrics_;
  std::unique_ptr<net::HttpServer> http_;
  std::optional<SocketAddress> http_address_;
  TaskScope loops_;
};

int meta_main(int argc, char** argv);

}  // namespace mica::apps
