// A real Mgmtd on LMDB in a test directory, served over TCP on 127.0.0.1 at a port that
// stays the same across stop and restart (so the clients under test see "mgmtd went away
// and came back", as after a process restart), for the routing client and node agent tests.
// One test, one executor (the MICA_CO_TEST one); serve() and unserve() suspend. The
// options are the mgmtd harness's fast ones (lease 200 ms, heartbeats every 50 ms).
#pragma once

#include <memory>
#include <string>

#include "craq/mgmtd.h"
#include "kv/kv.h"
#include "net/rpc_server.h"
#include "net/tcp_transport.h"
#include "tests/craq/mgmtd_harness.h"

namespace mica::craq::testing {

struct ServedMgmtd {
  explicit ServedMgmtd(std::string directory) : dir(std::move(directory)) {}
  std::string dir;
  MgmtdOptions options = fast_options();
  net::TcpTransport transport;
  std::unique_ptr<kv::Env> env;
  std::unique_ptr<Mgmtd> mgmtd;
  std::unique_ptr<net::RpcServer> server;
  SocketAddress address = SocketAddress::loopback(0);  // the bound one after the first serve
};

// Opens (or reopens) the state in m->dir and serves it at m->address.
inline Task<Status> serve(ServedMgmtd* m) {
  auto opening = kv::Env::open(m->dir, kv::EnvOptions{.map_size_bytes = uint64_t{1} << 28});
  CO_TRY_ASSIGN(m->env, co_await std::move(opening));
  auto loading = Mgmtd::open(m->env.get(), m->options);
  CO_TRY_ASSIGN(m->mgmtd, co_await std::move(loading));
  m->mgmtd->start();
  m->server = std::make_unique<net::RpcServer>(&m->transport);
  m->server->add_service(m->mgmtd->service());
  CO_TRY_ASSIGN(m->address, m->server->start(m->address));
  co_return Status();
}

// Stops serving and closes the state (a clean process exit); serve() brings it back.
inline Task<void> unserve(ServedMgmtd* m) {
  if (m->server) {
    Task<void> shutting = m->server->shutdown();
    co_await std::move(shutting);
  }
  m->server.reset();
  if (m->mgmtd) {
    Task<void> stopping = m->mgmtd->stop();
    co_await std::move(stopping);
  }
  m->mgmtd.reset();
  if (m->env) {
    Task<Status> closing = m->env->close();
    Status closed = co_await std::move(closing);
    EXPECT_TRUE(closed.ok()) << closed;
  }
  m->env.reset();
}

// A pool that reconnects quickly after mgmtd came back.
inline net::PoolOptions fast_pool() {
  net::PoolOptions options;
  options.backoff_initial = std::chrono::milliseconds(5);
  options.backoff_max = std::chrono::milliseconds(50);
  return options;
}

}  // namespace mica::craq::testing
