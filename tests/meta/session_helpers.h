// Helpers of the sessions and garbage-collection tests: a shard opened on real LMDB in the
// test's directory, files made directly through a ShardTxn (no create needed), and a real
// storage cluster in the process (tests/craq/storage_client_cluster.h: mgmtd, three storage
// nodes, TCP on 127.0.0.1) with a StorageClient, to write a file's chunks and look at them.
// One test, one executor (the MICA_CO_TEST one); the tasks here suspend. The test owns the
// cluster and the shard, and stops/closes them (co_await) before they are destroyed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "craq/storage_client.h"
#include "meta/layout.h"
#include "meta/shard.h"
#include "tests/co_test.h"
#include "tests/craq/storage_client_cluster.h"

namespace mica::meta::testing {

using namespace std::chrono_literals;

inline constexpr uint32_t kTestChunkBytes = 64 << 10;  // the cluster's smallest chunk
inline constexpr uint32_t kOwner = 1000;
inline constexpr uint32_t kOwnerGroup = 100;

inline Credentials user(uint32_t uid, uint32_t gid = kOwnerGroup) {
  return Credentials{.uid = uid, .gid = gid, .groups = {}};
}

inline ShardOptions shard_options(const std::string& dir, ShardId shard = 0) {
  ShardOptions options;
  options.shard = shard;
  options.dir = dir;
  std::filesystem::create_directories(dir);
  options.env.map_size_bytes = uint64_t{1} << 28;
  return options;
}

// A regular file inode of kOwner (nlink 1, one entry in the root) with `mode` and `layout`.
inline Task<Result<Inode>> make_file(Shard* shard, std::string name, uint32_t mode,
                                     Layout layout = {}) {
  ShardTxn txn = shard->begin();
  Inode inode{.id = txn.allocate_inode(),
              .type = InodeType::kFile,
              .mode = mode,
              .uid = kOwner,
              .gid = kOwnerGroup,
              .nlink = 1,
              .atime_ns = 1000,
              .mtime_ns = 1000,
              .ctime_ns = 1000,
              .layout = layout};
  txn.put_inode(inode);
  txn.put_entry(kRootInode, name, DirEntry{.inode = inode.id, .type = InodeType::kFile});
  auto committing = txn.commit();
  CO_TRY(co_await std::move(committing));
  co_return inode;
}

// What unlink does to the inode: the entry goes, nlink drops to 0 (the sessions keep it).
inline Task<Status> drop_link(Shard* shard, std::string name, InodeId id) {
  ShardTxn txn = shard->begin();
  CO_TRY_ASSIGN(std::optional<Inode> inode, txn.inode(id));
  if (!inode) co_return Status(StatusCode::kNotFound, "no inode");
  inode->nlink = 0;
  txn.put_inode(*inode);
  txn.erase_entry(kRootInode, name);
  auto committing = txn.commit();
  co_return co_await std::move(committing);
}

inline Task<Result<Inode>> stat(Shard* shard, InodeId id) {
  GetattrRequest request{.inode = id};
  auto asking = shard->getattr(request);
  CO_TRY_ASSIGN(InodeReply reply, co_await std::move(asking));
  co_return reply.inode;
}

inline Task<Result<OpenReply>> open_file(Shard* shard, InodeId id, Credentials cred,
                                         OpenFlags flags, ClientId client = 7) {
  static uint64_t next_request = 1;  // every open a new request: none is a retry
  OpenRequest request{.cred = std::move(cred),
                      .tag = RequestTag{.client = client, .request = next_request++},
                      .inode = id,
                      .flags = flags};
  auto opening = shard->open(request);
  co_return co_await std::move(opening);
}

inline Task<Result<InodeReply>> close_file(Shard* shard, InodeId id, SessionId session,
                                           uint64_t length = 0, int64_t mtime_ns = 0,
                                           ClientId client = 7) {
  CloseRequest request{.report = LengthReport{.inode = id,
                                              .client = client,
                                              .session = session,
                                              .length = length,
                                              .mtime_ns = mtime_ns}};
  auto closing = shard->close(request);
  co_return co_await std::move(closing);
}

inline craq::StorageClientOptions fast_storage_client() {
  craq::StorageClientOptions options;
  options.backoff_initial = 2ms;
  options.backoff_max = 20ms;
  options.attempt_timeout = 2s;
  options.call_timeout = 10s;
  return options;
}

// A storage cluster and a client of it; routing() is what ShardOptions::routing wants.
struct Storage {
  explicit Storage(std::string dir) : cluster(std::move(dir), 3, 1) {}
  craq::testing::ClientCluster cluster;
  std::unique_ptr<craq::StorageClient> client;

  std::function<const craq::RoutingSnapshot*()> routing() {
    craq::RoutingClient* routing = cluster.routing.get();
    return [routing] { return routing->current().get(); };
  }
  // A layout over the cluster's table with small chunks.
  Result<Layout> layout(uint32_t start = 0) {
    return new_layout(*cluster.routing->current(),
                      LayoutChoice{.chunk_size_bytes = kTestChunkBytes, .stripe = 0}, start,
                      start + 17);
  }
};

inline Task<Status> start_storage(Storage* storage) {
  auto starting = craq::testing::start_cluster(&storage->cluster);
  CO_TRY(co_await std::move(starting));
  storage->client = std::make_unique<craq::StorageClient>(
      storage->cluster.pool.get(), &storage->cluster.transport, storage->cluster.routing.get(),
      fast_storage_client());
  co_return Status();
}

inline Task<void> stop_storage(Storage* storage) {
  storage->client.reset();
  auto stopping = craq::testing::stop_cluster(&storage->cluster);
  co_await std::move(stopping);
}

// Writes `bytes` of file data from offset 0 through the storage service, chunk by chunk.
inline Task<Status> write_file(Storage* storage, const Inode& inode, uint64_t bytes) {
  const craq::RoutingSnapshot* routing = storage->cluster.routing->current().get();
  const craq::ChainTable* table = craq::find_table(*routing, inode.layout.table);
  if (table == nullptr) co_return Status(StatusCode::kNotFound, "no table");
  CO_TRY_ASSIGN(std::vector<craq::ChainId> chains, layout_chains(inode.layout, *table));
  uint32_t chunk = inode.layout.chunk_size_bytes;
  for (uint64_t offset = 0; offset < bytes; offset += chunk) {
    auto index = static_cast<uint32_t>(offset / chunk);
    std::vector<std::byte> data(std::min<uint64_t>(chunk, bytes - offset), std::byte(index + 1));
    auto writing = storage->client->write(chunk_chain(chains, index),
                                          craq::ChunkRef{inode.id, index}, 0, data, chunk);
    CO_TRY(co_await std::move(writing));
  }
  co_return Status();
}

// The chunks of inode the storage service still holds: the last one's index + 1 (0: none).
inline Task<Result<uint32_t>> chunks_left(Storage* storage, const Inode& inode) {
  const craq::RoutingSnapshot* routing = storage->cluster.routing->current().get();
  const craq::ChainTable* table = craq::find_table(*routing, inode.layout.table);
  if (table == nullptr) co_return Status(StatusCode::kNotFound, "no table");
  CO_TRY_ASSIGN(std::vector<craq::ChainId> chains, layout_chains(inode.layout, *table));
  auto asking = storage->client->last_chunk(std::move(chains), inode.id);
  CO_TRY_ASSIGN(std::optional<craq::ChunkMeta> last, co_await std::move(asking));
  co_return last ? last->chunk.index + 1 : 0;
}

// How many of chunks 0..indexes-1 of inode any replica of any storage node still holds
// (StorageServer::stat_chunk on every node: every replica, not only the heads).
inline Task<Result<uint32_t>> chunks_on_replicas(Storage* storage, const Inode& inode,
                                                 uint32_t indexes) {
  const craq::RoutingSnapshot* routing = storage->cluster.routing->current().get();
  const craq::ChainTable* table = craq::find_table(*routing, inode.layout.table);
  if (table == nullptr) co_return Status(StatusCode::kNotFound, "no table");
  CO_TRY_ASSIGN(std::vector<craq::ChainId> chains, layout_chains(inode.layout, *table));
  uint32_t held = 0;
  for (uint32_t index = 0; index < indexes; ++index) {
    for (auto& node : storage->cluster.nodes) {
      craq::StatChunkRequest request{.chain = chunk_chain(chains, index),
                                     .chunk = craq::ChunkRef{inode.id, index}};
      auto asking = node->server()->stat_chunk(request, nullptr);
      Result<craq::StatChunkResponse> answer = co_await std::move(asking);
      if (answer.ok() && answer->meta.has_value()) ++held;
    }
  }
  co_return held;
}

// chunks_on_replicas() asked again until it answers `expected` or `timeout` passes (then its
// last answer): a replica that missed its heartbeat under load resyncs what it missed
// before it holds every chunk.
inline Task<Result<uint32_t>> wait_chunks_on_replicas(Storage* storage, const Inode& inode,
                                                      uint32_t indexes, uint32_t expected,
                                                      Duration timeout) {
  TimePoint deadline = deadline_after(timeout);
  while (true) {
    auto counting = chunks_on_replicas(storage, inode, indexes);
    Result<uint32_t> held = co_await std::move(counting);
    if ((held.ok() && *held == expected) || Executor::current()->now() >= deadline) co_return held;
    SleepAwaiter pause = sleep_for(std::chrono::milliseconds(20));
    Status slept = co_await pause;
    if (!slept.ok()) co_return slept;
  }
}

}  // namespace mica::meta::testing
