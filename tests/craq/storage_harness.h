// StorageHarness: N in-process StorageServers (craq/storage_server.h) for the storage tests,
// each with its own TcpTransport, net::RpcServer on 127.0.0.1 and ConnectionPool, all on the
// test's one executor (MICA_CO_TEST), with target directories under a test directory. Chains
// are built by hand: routing() makes a RoutingSnapshot of the servers and the chains asked
// for, apply() hands it to every running server (what a RoutingClient would do). TestClient
// is the client side: one registered buffer and direct calls of the StorageService methods.
//
// Target ids are fixed: target t of server s is target_id(s, t) = (s + 1) * 100 + t + 1, on
// node s + 1 (persisted with assign_ids at the first start). stop_server()/start_server()
// stop a server cleanly and reopen it from the same directories on the same port, so routing
// keeps its address. Ownership: the test owns the harness and clients; stop() every client
// and the harness (co_await) before they are destroyed. One executor; tasks suspend.
#pragma once

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "async/crc32c.h"
#include "async/file.h"
#include "craq/storage_server.h"
#include "net/rpc_client.h"
#include "net/rpc_server.h"
#include "net/tcp_transport.h"

namespace mica::craq::testing {

// Engine limits that suit tests on any file system (tmpfs included): buffered I/O, no disk
// reserve, small file growth and a small LMDB map.
inline chunk::ChunkEngineConfig test_engine_config() {
  chunk::ChunkEngineConfig c;
  c.buffered_io = true;
  c.reserve_bytes = 0;
  c.growth_step_bytes = 1 << 20;
  c.lmdb_map_size_bytes = uint64_t{1} << 28;
  return c;
}

inline net::PoolOptions fast_reconnect_pool() {
  net::PoolOptions options;
  options.backoff_initial = std::chrono::milliseconds(5);
  options.backoff_max = std::chrono::milliseconds(50);
  return options;
}

struct StorageHarnessOptions {
  uint32_t servers = 3;
  uint32_t targets_per_server = 1;
  chunk::ChunkEngineConfig engine = test_engine_config();
  StorageServerOptions server;  // targets and node are filled in per server
  net::RpcServerOptions rpc;
  net::PoolOptions pool = fast_reconnect_pool();
};

struct HarnessServer {
  NodeId node = 0;
  std::vector<std::string> target_dirs;
  std::unique_ptr<net::TcpTransport> transport;
  std::unique_ptr<net::ConnectionPool> pool;
  std::unique_ptr<StorageServer> server;
  std::unique_ptr<net::Service> service;
  std::unique_ptr<net::RpcServer> rpc;
  SocketAddress address = SocketAddress::loopback(0);  // the bound one after the first start
  bool running = false;
};

// One member of a chain in a hand-made routing snapshot.
struct ChainMember {
  TargetId target = 0;
  PublicState state = PublicState::kServing;
};
struct ChainSpec {
  ChainId id = 1;
  uint64_t version = 1;
  std::vector<ChainMember> members;  // in chain order (types.h: serving first)
};

class StorageHarness {
 public:
  StorageHarness(std::string dir, StorageHarnessOptions options = {})
      : dir_(std::move(dir)), options_(std::move(options)) {
    for (uint32_t s = 0; s < options_.servers; ++s) {
      auto server = std::make_unique<HarnessServer>();
      server->node = s + 1;
      for (uint32_t t = 0; t < options_.targets_per_server; ++t) {
        std::string path = dir_ + "/server" + std::to_string(s) + "-target" + std::to_string(t);
        std::filesystem::create_directories(path);
        server->target_dirs.push_back(path);
      }
      server->transport = std::make_unique<net::TcpTransport>();
      servers_.push_back(std::move(server));
    }
  }
  StorageHarness(const StorageHarness&) = delete;
  StorageHarness& operator=(const StorageHarness&) = delete;

  size_t size() const { return servers_.size(); }
  HarnessServer& at(size_t s) { return *servers_.at(s); }
  StorageServer* server(size_t s) { return servers_.at(s)->server.get(); }
  StorageHarnessOptions& options() { return options_; }
  static TargetId target_id(size_t s, size_t t = 0) { return (s + 1) * 100 + t + 1; }
  StorageTarget* target(size_t s, size_t t = 0) {
    return server(s)->targets().by_id(target_id(s, t));
  }
  chunk::ChunkEngine& engine(size_t s, size_t t = 0) { return target(s, t)->engine(); }
  std::string address(size_t s) const { return servers_.at(s)->address.to_string(); }
  // The options server s opens with (its targets, node and the shared limits).
  StorageServerOptions server_options(size_t s) const {
    StorageServerOptions o = options_.server;
    o.node = servers_.at(s)->node;
    o.targets.clear();
    for (const std::string& path : servers_.at(s)->target_dirs)
      o.targets.push_back(StorageTargetConfig{.path = path, .disk = path, .engine = options_.engine});
    return o;
  }

  Task<Status> start() {
    for (size_t s = 0; s < size(); ++s) {
      auto starting = start_server(s);
      Status started = co_await std::move(starting);
      if (!started.ok()) co_return started;
    }
    co_return Status();
  }

  Task<void> stop() {
    for (size_t s = 0; s < size(); ++s) {
      Task<void> stopping = stop_server(s);
      co_await std::move(stopping);
    }
  }

  // Opens server s from its directories and serves it (again on the same port once bound);
  // the last routing applied is applied to it again.
  Task<Status> start_server(size_t s) {
    HarnessServer& h = *servers_.at(s);
    MICA_ASSERT(!h.running);
    h.pool = std::make_unique<net::ConnectionPool>(h.transport.get(), options_.pool);
    auto opening = StorageServer::open(server_options(s), h.pool.get(), h.transport.get());
    Result<std::unique_ptr<StorageServer>> server = co_await std::move(opening);
    if (!server.ok()) {
      Task<void> closing = h.pool->close();
      co_await std::move(closing);
      h.pool.reset();
      co_return server.status();
    }
    h.server = std::move(*server);
    h.running = true;  // from here on stop_server() undoes it
    std::map<std::string, TargetId> ids;
    for (size_t t = 0; t < h.server->targets().all().size(); ++t)
      ids[h.server->targets().all()[t]->identity()] = target_id(s, t);
    auto assigning = h.server->assign_ids(ids);
    CO_TRY(co_await std::move(assigning));
    h.service = std::make_unique<net::Service>(h.server->service());
    h.rpc = std::make_unique<net::RpcServer>(h.transport.get(), options_.rpc);
    h.rpc->add_service(h.service.get());
    CO_TRY_ASSIGN(h.address, h.rpc->start(h.address));
    if (last_routing_.version != 0) h.server->apply_routing(last_routing_);
    h.server->start();
    co_return Status();
  }

  // A clean stop of server s: its loops and handlers, its RPC server, its engines, its pool.
  Task<void> stop_server(size_t s) {
    HarnessServer& h = *servers_.at(s);
    if (!h.running) co_return;
    h.running = false;
    Task<void> stopping = h.server->stop();
    co_await std::move(stopping);
    if (h.rpc) {
      Task<void> shutting = h.rpc->shutdown();
      co_await std::move(shutting);
    }
    auto closing = h.server->close();
    Status closed = co_await std::move(closing);
    EXPECT_TRUE(closed.ok()) << closed;
    Task<void> pool_closing = h.pool->close();
    co_await std::move(pool_closing);
    h.rpc.reset();
    h.service.reset();
    h.server.reset();
    h.pool.reset();
  }

  // A snapshot of every server (node s + 1 at its address) with chains; targets named in no
  // chain are listed in none. routing_version 0: one above the last one made.
  RoutingSnapshot routing(std::vector<ChainSpec> chains, uint64_t routing_version = 0) {
    RoutingSnapshot r;
    r.version = routing_version != 0 ? routing_version : ++routing_version_;
    routing_version_ = std::max(routing_version_, r.version);
    std::sort(chains.begin(), chains.end(),
              [](const ChainSpec& a, const ChainSpec& b) { return a.id < b.id; });
    for (size_t s = 0; s < size(); ++s) {
      r.nodes.push_back(NodeInfo{.id = servers_[s]->node,
                                 .identity = "node-" + std::to_string(s),
                                 .host_name = "harness",
                                 .rpc_address = address(s)});
      for (size_t t = 0; t < servers_[s]->target_dirs.size(); ++t) {
        TargetInfo info{.id = target_id(s, t), .node = servers_[s]->node,
                        .disk = servers_[s]->target_dirs[t]};
        for (const ChainSpec& c : chains)
          for (const ChainMember& m : c.members)
            if (m.target == info.id) info.chain = c.id;
        r.targets.push_back(info);
      }
    }
    for (const ChainSpec& c : chains) {
      ChainInfo chain{.id = c.id, .version = c.version};
      for (const ChainMember& m : c.members) chain.targets.push_back({m.target, m.state});
      r.chains.push_back(chain);
    }
    return r;
  }
  // One chain (id 1 unless said) of target 0 of the given servers, all serving.
  RoutingSnapshot serving_chain(std::vector<size_t> servers, uint64_t chain_version = 1,
                                ChainId chain = 1) {
    ChainSpec spec{.id = chain, .version = chain_version};
    for (size_t s : servers) spec.members.push_back({target_id(s), PublicState::kServing});
    return routing({spec});
  }
  // Hands the snapshot to every running server (and to servers started later).
  void apply(const RoutingSnapshot& r) {
    last_routing_ = r;
    for (auto& h : servers_)
      if (h->running) h->server->apply_routing(r);
  }
  const RoutingSnapshot& last_routing() const { return last_routing_; }

 private:
  std::string dir_;
  StorageHarnessOptions options_;
  std::vector<std::unique_ptr<HarnessServer>> servers_;
  RoutingSnapshot last_routing_;
  uint64_t routing_version_ = 0;
};

// An update of bytes [offset, offset + data.size()) of chunk at a chain version, with its CRC.
inline UpdateIO write_io(ChainId chain, uint64_t chain_version, ChunkRef chunk, uint32_t offset,
                         std::span<const std::byte> data, uint64_t client_id = 1,
                         uint64_t request_id = 0, uint32_t chunk_size_bytes = 1 << 20) {
  return UpdateIO{.chain = chain,
                  .chain_version = chain_version,
                  .chunk = chunk,
                  .kind = UpdateKind::kWrite,
                  .offset = offset,
                  .length = static_cast<uint32_t>(data.size()),
                  .chunk_size_bytes = chunk_size_bytes,
                  .payload_crc = crc32c(data),
                  .client_id = client_id,
                  .request_id = request_id};
}

// Deterministic bytes for tests.
inline std::vector<std::byte> test_bytes(size_t size, uint32_t seed) {
  std::vector<std::byte> out(size);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<std::byte>(x >> 24);
  }
  return out;
}

// The client side: its own transport and pool, one registered buffer of buffer_bytes.
class TestClient {
 public:
  explicit TestClient(StorageHarness* harness, size_t buffer_bytes = 4 << 20)
      : harness_(harness), buffer_(round_up(buffer_bytes)) {
    pool_ = std::make_unique<net::ConnectionPool>(&transport_, fast_reconnect_pool());
    auto registered = transport_.register_memory(buffer_.span());
    MICA_ASSERT(registered.ok());
    region_ = std::move(*registered);
  }
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  std::span<std::byte> buffer() { return buffer_.span(); }
  net::RemoteBuffer remote(uint64_t offset, uint32_t length) {
    return region_->remote(offset, length);
  }
  // Copies data into the buffer at offset and names that range.
  net::RemoteBuffer stage(std::span<const std::byte> data, uint64_t offset = 0) {
    MICA_ASSERT(offset + data.size() <= buffer_.size());
    if (!data.empty()) std::memcpy(buffer_.data() + offset, data.data(), data.size());
    return remote(offset, static_cast<uint32_t>(data.size()));
  }

  // Any StorageService method on server s (deadline: 10 s unless given).
  template <auto M>
  Task<Result<net::ResponseOf<M>>> call(size_t s, net::RequestOf<M> request,
                                        Duration timeout = std::chrono::seconds(10)) {
    TimePoint deadline = deadline_after(timeout);
    Result<SocketAddress> address = SocketAddress::parse(harness_->address(s));
    if (!address.ok()) co_return address.status();
    auto getting = pool_->get(*address, deadline);
    Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(getting);
    if (!client.ok()) co_return client.status();
    auto calling = (*client)->template call<M>(std::move(request), net::CallOptions{deadline});
    co_return co_await std::move(calling);
  }
  Task<Result<UpdateResponse>> update(size_t s, UpdateRequest request) {
    return call<StorageService::update>(s, std::move(request));
  }
  // A write of data (staged at buffer_offset) with io as given (write_io() fills it in).
  Task<Result<UpdateResponse>> write(size_t s, UpdateIO io, std::span<const std::byte> data,
                                     uint64_t buffer_offset = 0) {
    return update(s, UpdateRequest{.io = io, .payload = stage(data, buffer_offset)});
  }
  // A read of [offset, offset + length) into the buffer at buffer_offset.
  Task<Result<ReadResponse>> read(size_t s, ReadRequest request, uint64_t buffer_offset = 0) {
    request.out = remote(buffer_offset, request.length);
    return call<StorageService::read>(s, std::move(request));
  }
  Task<Result<StatChunkResponse>> stat(size_t s, ChainId chain, ChunkRef chunk) {
    return call<StorageService::stat_chunk>(s, StatChunkRequest{.chain = chain, .chunk = chunk});
  }

  Task<void> stop() {
    Task<void> deregistering = region_->deregister(deadline_after(std::chrono::seconds(5)));
    co_await std::move(deregistering);
    region_.reset();
    Task<void> closing = pool_->close();
    co_await std::move(closing);
  }

 private:
  static size_t round_up(size_t n) {
    return (n + kDirectIoAlignment - 1) / kDirectIoAlignment * kDirectIoAlignment;
  }
  StorageHarness* harness_;
  net::TcpTransport transport_;
  AlignedBuffer buffer_;
  std::unique_ptr<net::ConnectionPool> pool_;
  std::unique_ptr<net::MemoryRegion> region_;
};

}  // namespace mica::craq::testing
