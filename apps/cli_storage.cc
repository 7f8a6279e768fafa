#include "apps/cli_storage.h"

#include <fmt/format.h>

#include "craq/mgmtd_client.h"
#include "craq/routing_client.h"
#include "craq/storage_client.h"

namespace mica::apps {
namespace {

CliResult failure(std::string line) {
  return CliResult{.exit_code = kExitFailure, .out = {}, .err = "mica: " + line + "\n", .data = {}};
}

Task<CliResult> write_range(const CliInvocation& invocation, craq::StorageClient* client,
                            uint32_t chunk_size, TimePoint deadline) {
  const std::string& data = invocation.data;
  if (uint64_t{invocation.offset} + data.size() > chunk_size) {
    co_return failure(fmt::format("put: {} bytes at offset {} do not fit in a chunk of {} bytes",
                                  data.size(), invocation.offset, chunk_size));
  }
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data.data()), data.size());
  craq::ChunkRef chunk{.inode = invocation.inode, .index = invocation.chunk_index};
  auto writing =
      client->write(invocation.chain_id, chunk, invocation.offset, bytes, chunk_size, deadline);
  Result<craq::ChunkState> state = co_await std::move(writing);
  if (!state.ok()) co_return failure(fmt::format("put: {}", state.status().to_string()));
  co_return CliResult{
      .exit_code = kExitOk,
      .out = fmt::format("wrote {} bytes at offset {} of chunk {}/{} on chain {}: version {}, "
                         "length {}, crc32c {:08x}\n",
                         data.size(), invocation.offset, invocation.inode, invocation.chunk_index,
                         invocation.chain_id, state->version, state->length_bytes, state->checksum),
      .err = {},
      .data = {}};
}

Task<CliResult> read_range(const CliInvocation& invocation, craq::StorageClient* client,
                           TimePoint deadline) {
  std::string buffer(invocation.length, '\0');
  std::span<std::byte> out(reinterpret_cast<std::byte*>(buffer.data()), buffer.size());
  craq::ChunkRef chunk{.inode = invocation.inode, .index = invocation.chunk_index};
  auto reading = client->read(invocation.chain_id, chunk, invocation.offset, out, deadline);
  Result<uint32_t> n = co_await std::move(reading);
  if (!n.ok()) co_return failure(fmt::format("get: {}", n.status().to_string()));
  buffer.resize(*n);
  if (invocation.out_file.empty()) {
    co_return CliResult{.exit_code = kExitOk, .out = std::move(buffer), .err = {}, .data = {}};
  }
  std::string note =
      fmt::format("read {} bytes at offset {} of chunk {}/{} on chain {}\n", *n, invocation.offset,
                  invocation.inode, invocation.chunk_index, invocation.chain_id);
  co_return CliResult{
      .exit_code = kExitOk, .out = {}, .err = std::move(note), .data = std::move(buffer)};
}

Task<CliResult> with_client(CliInvocation invocation, net::ConnectionPool* pool,
                            net::Transport* transport, craq::RoutingClient* routing) {
  TimePoint deadline = deadline_after(std::chrono::milliseconds(invocation.timeout_ms));
  auto refreshing = routing->refresh(0, deadline);
  Result<craq::RoutingClient::SnapshotPtr> snapshot = co_await std::move(refreshing);
  if (!snapshot.ok() || *snapshot == nullptr) {
    Status why = snapshot.ok() ? Status(StatusCode::kTimedOut, "no routing") : snapshot.status();
    co_return failure(
        fmt::format("cannot reach mgmtd at {}: {}", invocation.mgmtd, why.to_string()));
  }
  if (craq::find_chain(**snapshot, invocation.chain_id) == nullptr) {
    co_return failure(fmt::format("{}: chain {} does not exist (mica chains lists them)",
                                  invocation.command == CliCommand::kPut ? "put" : "get",
                                  invocation.chain_id));
  }
  craq::StorageClientOptions options;
  options.call_timeout = std::chrono::milliseconds(invocation.timeout_ms);
  craq::StorageClient client(pool, transport, routing, options);
  if (invocation.command == CliCommand::kPut) {
    auto writing =
        write_range(invocation, &client, (*snapshot)->config.chunk_size_default_bytes, deadline);
    co_return co_await std::move(writing);
  }
  auto reading = read_range(invocation, &client, deadline);
  co_return co_await std::move(reading);
}

Task<NodeProgress> node_progress(net::ConnectionPool* pool, craq::NodeInfo node) {
  NodeProgress out{.node = node.id, .address = node.rpc_address, .status = {}, .progress = {}};
  Result<SocketAddress> address = SocketAddress::parse(node.rpc_address);
  if (!address.ok()) {
    out.status = address.status();
    co_return out;
  }
  TimePoint deadline = deadline_after(kProgressTimeout);
  auto getting = pool->get(*address, deadline);
  Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(getting);
  if (!client.ok()) {
    out.status = client.status();
    co_return out;
  }
  craq::StorageService::Stub stub(client->get());
  auto asking = stub.progress(craq::ProgressRequest{}, net::CallOptions{deadline});
  Result<craq::ProgressResponse> progress = co_await std::move(asking);
  if (progress.ok()) {
    out.progress = std::move(*progress);
  } else {
    out.status = progress.status();
  }
  co_return out;
}

}  // namespace

Task<CliResult> run_data_command(CliInvocation invocation, net::Transport* transport) {
  net::ConnectionPool pool(transport);
  Result<SocketAddress> mgmtd = SocketAddress::parse(invocation.mgmtd);
  craq::RoutingClientOptions options;
  options.mgmtd = {*mgmtd};
  craq::RoutingClient routing(&pool, std::move(options));
  routing.start();
  auto running = with_client(invocation, &pool, transport, &routing);
  CliResult result = co_await std::move(running);
  auto stopping = routing.stop();
  co_await std::move(stopping);
  auto closing = pool.close();
  co_await std::move(closing);
  co_return result;
}

Task<std::vector<NodeProgress>> fetch_progress(net::Transport* transport,
                                               craq::StatusResponse status) {
  net::ConnectionPool pool(transport);
  std::vector<NodeProgress> out;
  for (const craq::NodeInfo& node : status.routing.nodes) {
    if (node.kind != craq::NodeKind::kStorage) continue;
    bool alive = false;
    for (const craq::NodeStatus& s : status.nodes) alive |= s.node == node.id && s.alive;
    if (!alive) continue;
    auto asking = node_progress(&pool, node);
    out.push_back(co_await std::move(asking));
  }
  auto closing = pool.close();
  co_await std::move(closing);
  co_return out;
}

}  // namespace mica::apps
