// mica-storage: the storage server as a program — its command line, its startup in order
// (token, transport, craq::StorageNode with its targets, HTTP metrics endpoint, metrics
// refresh), one log line with its addresses, and on SIGINT or SIGTERM a clean shutdown
// (HTTP, metrics loop, the node's agent, routing, RPC drain, server loops, engines).
//
// storage_main is the whole program (apps/storage_main.cc only calls it); the pieces are
// here for tests. Exit codes as mica-mgmtd's: kExitOk after a signal-driven stop, kExitUsage
// for bad arguments or a bad config (an unusable token file included), kExitFailure when
// startup fails otherwise (a port taken, a target directory that cannot be opened).
// storage_main blocks the main thread until the process should end; StorageProcess runs on
// one executor (start() and stop() are tasks on it; stop() must follow any start()).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "apps/storage_config.h"
#include "apps/storage_metrics.h"
#include "async/scope.h"
#include "craq/storage_node.h"
#include "net/cluster_token.h"
#include "net/http_server.h"

namespace mica::apps {

// What the config asks of the StorageNode (addresses parsed; the config was validated).
Result<craq::StorageNodeOptions> storage_node_options(const StorageConfig& config);

class StorageProcess {
 public:
  StorageProcess(StorageConfig config, std::optional<net::ClusterToken> token);
  StorageProcess(const StorageProcess&) = delete;
  StorageProcess& operator=(const StorageProcess&) = delete;
  ~StorageProcess();

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

  StorageConfig config_;
  std::optional<net::ClusterToken> token_;
  std::unique_ptr<net::Transport> inner_transport_;
  std::unique_ptr<net::Transport> transport_;  // the authenticated one, or none
  std::unique_ptr<craq::StorageNode> node_;
  std::unique_ptr<StorageMetrics> metrics_;
  std::unique_ptr<net::HttpServer> http_;
  std::optional<SocketAddress> http_address_;
  TaskScope loops_;
  bool node_started_ = false;
};

int storage_main(int argc, char** argv);

}  // namespace mica::apps
