// In-process storage servers for the resync and scrub tests: each StorageServer with its
// own RPC server on 127.0.0.1 and its own connection pool, all on the test's executor, one
// target each, and chains built by hand as RoutingSnapshots applied to every server. Also a
// client side that writes through the update path (its own pool and registered buffer).
// One test, one executor (the MICA_CO_TEST one); the Task helpers suspend; shut_down()
// must run before the fixture is destroyed.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "async/crc32c.h"
#include "async/file.h"
#include "craq/storage_server.h"
#include "net/rpc_server.h"
#include "net/tcp_transport.h"
#include "tests/co_test.h"

namespace mica::craq::testing {

constexpr ChainId kChain = 1;

struct ServerNode {
  NodeId node = 0;
  TargetId target = 0;
  std::string path;
  std::unique_ptr<net::ConnectionPool> pool;
  std::unique_ptr<StorageServer> server;
  std::unique_ptr<net::Service> service;
  std::unique_ptr<net::RpcServer> rpc;
  SocketAddress address;
  StorageTarget* storage_target() { return server->targets().all().front().get(); }
  chunk::ChunkEngine& engine() { return storage_target()->engine(); }
};

struct Fixture {
  explicit Fixture(std::string directory) : dir(std::move(directory)) {}
  std::string dir;
  net::TcpTransport transport;
  std::vector<std::unique_ptr<ServerNode>> nodes;
  std::unique_ptr<net::ConnectionPool> client_pool;
  uint64_t routing_version = 0;
  uint64_t next_request = 1;
};

inline chunk::ChunkEngineConfig fixture_engine_config() {
  chunk::ChunkEngineConfig c;
  c.reserve_bytes = 0;
  c.growth_step_bytes = 1 << 20;
  c.lmdb_map_size_bytes = uint64_t{1} << 28;
  return c;
}

inline StorageServerOptions fixture_options() {
  StorageServerOptions options;
  options.forward_timeout = std::chrono::seconds(5);
  options.scrub_bytes_per_s = 0;  // tests start the scrub they want
  return options;
}

// Opens a server with one target (id 100 + node) and serves it.
// start: start() the server's loops now (a scrub test starts them once its data is there).
inline Task<Status> add_server(Fixture* f, StorageServerOptions options = fixture_options(),
                               bool start = true) {
  auto node = std::make_unique<ServerNode>();
  node->node = static_cast<NodeId>(f->nodes.size() + 1);
  node->target = 100 + node->node;
  node->path = f->dir + "/target" + std::to_string(node->node);
  std::filesystem::create_directories(node->path);
  options.node = node->node;
  options.targets = {StorageTargetConfig{
      .path = node->path, .disk = node->path, .engine = fixture_engine_config()}};
  node->pool = std::make_unique<net::ConnectionPool>(&f->transport);
  auto opening = StorageServer::open(options, node->pool.get(), &f->transport);
  CO_TRY_ASSIGN(node->server, co_await std::move(opening));
  std::map<std::string, TargetId> ids{{node->storage_target()->identity(), node->target}};
  auto assigning = node->server->assign_ids(ids);
  CO_TRY(co_await std::move(assigning));
  node->service = std::make_unique<net::Service>(node->server->service());
  node->rpc = std::make_unique<net::RpcServer>(&f->transport);
  node->rpc->add_service(node->service.get());
  CO_TRY_ASSIGN(node->address, node->rpc->start(SocketAddress::loopback(0)));
  if (start) node->server->start();
  f->nodes.push_back(std::move(node));
  co_return Status();
}

// A snapshot of one chain: members (node index, state) in chain order, at chain_version.
inline RoutingSnapshot chain_routing(Fixture* f, uint64_t chain_version,
                                     const std::vector<std::pair<size_t, PublicState>>& members) {
  RoutingSnapshot routing;
  routing.version = ++f->routing_version;
  ChainInfo chain{.id = kChain, .version = chain_version};
  for (const auto& node : f->nodes) {
    routing.nodes.push_back(NodeInfo{.id = node->node, .rpc_address = node->address.to_string()});
  }
  for (const auto& [index, state] : members) {
    chain.targets.push_back(ChainTarget{.target = f->nodes[index]->target, .state = state});
  }
  for (const auto& node : f->nodes) {
    bool member = false;
    for (const auto& [index, state] : members) member |= f->nodes[index].get() == node.get();
    routing.targets.push_back(
        TargetInfo{.id = node->target, .node = node->node, .chain = member ? kChain : 0});
  }
  routing.chains.push_back(chain);
  return routing;
}

inline void apply(Fixture* f, const RoutingSnapshot& routing) {
  for (const auto& node : f->nodes) node->server->apply_routing(routing);
}

inline Task<Result<UpdateResponse>> call_update(Fixture* f, size_t head, UpdateRequest request,
                                                TimePoint deadline) {
  auto getting = f->client_pool->get(f->nodes[head]->address, deadline);
  CO_TRY_ASSIGN(std::shared_ptr<net::RpcClient> client, co_await std::move(getting));
  auto calling = client->call<StorageService::update>(request, {.deadline = deadline});
  co_return co_await std::move(calling);
}

// Writes bytes at offset of chunk through the head (node index head), as a client would.
inline Task<Result<UpdateResponse>> write_chunk(Fixture* f, size_t head, uint64_t chain_version,
                                                ChunkRef chunk, uint32_t offset,
                                                std::vector<std::byte> bytes) {
  if (!f->client_pool) f->client_pool = std::make_unique<net::ConnectionPool>(&f->transport);
  AlignedBuffer buffer(align_up(std::max<size_t>(bytes.size(), 1), 4096));
  std::copy(bytes.begin(), bytes.end(), buffer.data());
  CO_TRY_ASSIGN(std::unique_ptr<net::MemoryRegion> region,
                f->transport.register_memory(buffer.span()));
  uint32_t length = static_cast<uint32_t>(bytes.size());
  UpdateRequest request{
      .io = UpdateIO{.chain = kChain,
                     .chain_version = chain_version,
                     .chunk = chunk,
                     .kind = UpdateKind::kWrite,
                     .offset = offset,
                     .length = length,
                     .chunk_size_bytes = 1 << 20,
                     .payload_crc = crc32c(std::span<const std::byte>(buffer.data(), length)),
                     .client_id = 7,
                     .request_id = f->next_request++},
      .payload = region->remote(0, length)};
  TimePoint deadline = Executor::current()->now() + std::chrono::seconds(10);
  auto calling = call_update(f, head, request, deadline);
  Result<UpdateResponse> response = co_await std::move(calling);
  co_await region->deregister(deadline);
  co_return response;
}

// The committed bytes of a chunk on one node (empty when it has none).
inline Task<std::vector<std::byte>> committed_bytes(ServerNode* node, ChunkRef chunk) {
  chunk::ChunkId id{chunk.inode, chunk.index};
  Result<chunk::ChunkInfo> info = node->engine().stat(id);
  if (!info.ok()) co_return std::vector<std::byte>{};
  AlignedBuffer buffer(align_up(std::max<uint32_t>(info->length_bytes, 1), 4096));
  auto reading = node->engine().read(id, 0, std::span(buffer.data(), info->length_bytes));
  Result<size_t> read = co_await std::move(reading);
  EXPECT_TRUE(read.ok()) << read.status();
  if (!read.ok()) co_return std::vector<std::byte>{};
  co_return std::vector<std::byte>(buffer.data(), buffer.data() + *read);
}

// Every chunk's committed metadata on a node, in id order.
inline std::vector<chunk::ChunkInfo> all_chunks(ServerNode* node) {
  Result<std::vector<chunk::ChunkInfo>> page = node->engine().list(std::nullopt, 4096);
  EXPECT_TRUE(page.ok()) << page.status();
  return page.ok() ? *page : std::vector<chunk::ChunkInfo>{};
}

inline Task<void> shut_down(Fixture* f) {
  for (auto& node : f->nodes) {
    Task<void> stopping = node->server->stop();
    co_await std::move(stopping);
  }
  for (auto& node : f->nodes) {
    Task<void> draining = node->rpc->shutdown();
    co_await std::move(draining);
  }
  if (f->client_pool) {
    Task<void> closing = f->client_pool->close();
    co_await std::move(closing);
  }
  for (auto& node : f->nodes) {
    Task<void> closing_pool = node->pool->close();
    co_await std::move(closing_pool);
    Task<Status> closing = node->server->close();
    Status closed = co_await std::move(closing);
    EXPECT_TRUE(closed.ok()) << closed;
  }
  f->nodes.clear();
}

// Polls cond every 10 ms until it holds or the deadline (5 s) passes.
template <class Cond>
Task<bool> eventually(Cond cond) {
  TimePoint deadline = Executor::current()->now() + std::chrono::seconds(5);
  while (!cond()) {
    if (Executor::current()->now() >= deadline) co_return false;
    SleepAwaiter pause = sleep_for(std::chrono::milliseconds(10));
    Status paused = co_await pause;
    if (!paused.ok()) co_return false;
  }
  co_return true;
}

}  // namespace mica::craq::testing
