// A real mica-meta process for the apps tests, and the client stack a test talks to it with.
//
// MetaServerProcess writes a meta.toml into the test's folder (fixed ports below the
// ephemeral range, so a restarted process comes back on the same address; the shards'
// data in the folder, so a restart reopens them), starts mica-meta, waits for its start
// line, and stops it by pid (SIGTERM or SIGKILL). Its Child SIGKILLs what is left when the
// helper is destroyed. MetaStack is the in-process client side: TCP with the cluster token,
// a connection pool, a routing client following mgmtd and a meta::MetaClient; it lives on
// one executor (made, used and stopped there: stop() awaited before destruction). The
// process helper's calls block the test's thread; failures are gtest failures.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "craq/routing_client.h"
#include "meta/meta_client.h"
#include "net/authenticated_transport.h"
#include "net/cluster_token.h"
#include "net/tcp_transport.h"
#include "tests/apps/http_get.h"
#include "tests/apps/process.h"

namespace mica::testing {

class MetaServerProcess {
 public:
  // dir: the test's folder; the process's files go to dir/meta*.
  MetaServerProcess(std::string dir, std::string mgmtd_address, std::string token_path)
      : dir_(std::move(dir)), mgmtd_(std::move(mgmtd_address)), token_(std::move(token_path)) {}

  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  const std::string& address() const { return address_; }
  int http_port() const { return http_port_; }
  std::string log() const { return log_; }
  Child& child() { return child_; }

  // extra: more TOML lines (root keys) for the config.
  void write_config(uint32_t shard_count, const std::string& extra = "") {
    int port = free_port_below_ephemeral();
    http_port_ = free_port_below_ephemeral(port);
    ASSERT_GT(port, 0);
    ASSERT_GT(http_port_, 0);
    address_ = "127.0.0.1:" + std::to_string(port);
    std::ofstream(path("meta.toml"))
        << "mgmtd = \"" << mgmtd_ << "\"\nlisten = \"" << address_
        << "\"\nhttp_listen = \"127.0.0.1:" << http_port_ << "\"\ndata_dir = \""
        << path("meta-data") << "\"\ntoken_file = \"" << token_
        << "\"\ntransport = \"tcp\"\nhost_name = \"meta\"\nmetrics_interval_ms = 50\n"
        << "map_size_bytes = 268435456\nshard_count = " << shard_count << "\n"
        << extra;
  }

  // Starts mica-meta (again) and waits for its start line.
  void start(std::chrono::milliseconds timeout = std::chrono::milliseconds(20'000)) {
    log_ = path("meta-" + std::to_string(++starts_) + ".log");
    child_ = Child({MICA_META_BINARY, "--config", path("meta.toml")}, log_, log_);
    ASSERT_TRUE(child_.running());
    ASSERT_TRUE(child_.wait_for_err("mica-meta serving shards", timeout)) << child_.err();
  }
  // Waits until the node registered with mgmtd (routing names it for its shards).
  void wait_registered(std::chrono::milliseconds timeout = std::chrono::milliseconds(20'000)) {
    ASSERT_TRUE(child_.wait_for_err("registered with shards", timeout)) << child_.err();
  }
  int stop(int sig) { return child_.stop(sig); }

 private:
  std::string dir_;
  std::string mgmtd_;
  std::string token_;
  std::string address_;
  int http_port_ = 0;
  std::string log_;
  int starts_ = 0;
  Child child_;
};

// The client side of one test client (see the contract above).
struct MetaStack {
  MetaStack(const std::string& mgmtd, const net::ClusterToken& token,
            meta::MetaClientOptions options = {})
      : auth(&tcp, token),
        pool(&auth, net::PoolOptions{.backoff_initial = std::chrono::milliseconds(20),
                                     .backoff_max = std::chrono::milliseconds(200)}),
        routing(&pool, routing_options(mgmtd)),
        client(&pool, &routing, std::move(options)) {
    routing.start();
    client.start();
  }
  static craq::RoutingClientOptions routing_options(const std::string& mgmtd) {
    craq::RoutingClientOptions options;
    options.mgmtd = {SocketAddress::parse(mgmtd).value()};
    return options;
  }
  Task<void> stop() {
    auto stopping = client.stop();
    co_await std::move(stopping);
    auto routing_stopping = routing.stop();
    co_await std::move(routing_stopping);
    auto closing = pool.close();
    co_await std::move(closing);
  }

  net::TcpTransport tcp;
  net::AuthenticatedTransport auth;
  net::ConnectionPool pool;
  craq::RoutingClient routing;
  meta::MetaClient client;
};

}  // namespace mica::testing
