// bench_meta: the meta suite (bench/run.sh meta) — the metadata service measured through
// meta::MetaClient against one in-process MetaNode (one shard, real LMDB in --dir, a real
// Mgmtd on LMDB, TCP on 127.0.0.1; the node — its RPC server and the shard — on executor 1,
// as mica-meta with one executor runs it, mgmtd and the clients on executor 0), and two
// references. --side reference: raw kv/ of the same keys and value sizes into the same
// tables in process (writes through kv::Env's group-committing writer with the same number
// of concurrent writers, on the same disk; reads as snapshot gets and cursors). --side rpc
// (stat, readdir): the networked read floor, bench/meta_bench_rpc.h's ReadReference on
// executor 1 answering the same requests over the same transport from the same tables, one
// kv/ read each, the clients on executor 0 sharing one connection as MetaClient does. One
// run, one JSON object:
//   --side mica|reference|rpc --op create|stat|readdir|rename|unlink --clients N
//     create   each client creates files c<client>-<i> in the root for --seconds.
//     stat     getattr of --files planted files, round robin. (reference: a snapshot get +
//              decode of the inode)
//     readdir  whole listings of the root holding --entries planted files, page by page
//              (the server's page size); {"ops_per_s"} counts entries listed.
//     rename   f<i> -> r<i> in the root over --files planted files (stops early when they
//              run out).
//     unlink   f<i> removed (its last link: queued for garbage collection).
//     {"ops_per_s", "ops"}
//   --side mica --op footprint --files K: K files created through 8 clients into a fresh
//     shard; {"rss_bytes_per_million": growth of the process's resident memory (server,
//     client and mgmtd together) scaled to a million inodes, "disk_bytes_per_million": the
//     shard's LMDB pages in use, scaled}.
// Reference write sets per op (what the shard's transaction writes): create = new inode,
// entry, parent inode (times), shard record (next sequence), remembered answer; rename =
// entry erased, entry put, inode (ctime), parent, answer; unlink = entry erased, inode
// erased, GC record, parent, answer. Planted files are written straight into the shard in
// batches (not measured). Threads: main() only, then Runtime executors as described.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "async/file.h"
#include "async/runtime.h"
#include "async/scope.h"
#include "bench/flags.h"
#include "bench/meta_bench_rpc.h"
#include "bench/storage_cluster.h"
#include "craq/mgmtd.h"
#include "kv/kv.h"
#include "meta/meta_client.h"
#include "meta/meta_node.h"
#include "meta/schema.h"
#include "meta/shard.h"
#include "net/rpc_client.h"
#include "net/rpc_server.h"
#include "net/tcp_transport.h"

namespace mica::bench {
namespace {

using namespace std::chrono_literals;
using meta::Inode;
using meta::InodeId;
using meta::kRootInode;

constexpr uint32_t kClientsMax = 256;
constexpr uint32_t kPlantBatch = 1000;  // planted files per transaction
constexpr uint64_t kMapBytes = uint64_t{16} << 30;

struct Config {
  std::string side;
  std::string op;
  std::string dir;
  uint32_t clients = 1;
  uint32_t files = 100000;
  uint32_t entries = 100000;
  double seconds = 5;
  // The store of the shard and of the reference alike: mica-meta's default, the journaled one.
  kv::Implementation kv = kv::Implementation::kJournaled;
};

kv::EnvOptions store_options(const Config& config, uint64_t map_bytes) {
  return kv::EnvOptions{.implementation = config.kv, .map_size_bytes = map_bytes};
}

struct Work {
  uint64_t ops = 0;
  uint64_t next = 0;  // the next planted file (rename, unlink)
  Status failure;
  TimePoint stop;
};

Duration to_duration(double seconds) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}
double seconds_since(TimePoint start) {
  return std::chrono::duration<double>(Executor::current()->now() - start).count();
}

std::string file_name(uint64_t i) {
  return "f" + std::to_string(i);
}

Inode file_inode(InodeId id) {
  return Inode{.id = id,
               .type = meta::InodeType::kFile,
               .mode = 0644,
               .nlink = 1,
               .atime_ns = 1'700'000'000'000'000'000,
               .mtime_ns = 1'700'000'000'000'000'000,
               .ctime_ns = 1'700'000'000'000'000'000,
               .layout = {.chunk_size_bytes = 1 << 20, .table = 1, .stripe = 3, .seed = 12345},
               .parent = kRootInode};
}

bool done(Work* w) {
  return !w->failure.ok() || Executor::current()->now() >= w->stop;
}

// ---- Mica: a Mgmtd, one MetaNode with one shard, a MetaClient ----

struct MicaCluster {
  Runtime* runtime = nullptr;
  std::string dir;
  kv::Implementation kv = kv::Implementation::kJournaled;
  net::TcpTransport transport;
  std::unique_ptr<kv::Env> mgmtd_env;
  std::unique_ptr<craq::Mgmtd> mgmtd;
  std::unique_ptr<net::RpcServer> mgmtd_rpc;
  SocketAddress mgmtd_address;
  std::unique_ptr<net::TcpTransport> node_transport;  // executor 1's, as the node
  std::unique_ptr<meta::MetaNode> node;
  std::unique_ptr<net::ConnectionPool> pool;
  std::unique_ptr<craq::RoutingClient> routing;
  std::unique_ptr<meta::MetaClient> client;
};

// A storage node that never runs: its targets give routing the chain table new files take
// their layouts from (as tests/meta/meta_server_test.cc does).
Task<Status> add_chain_table(craq::Mgmtd* mgmtd) {
  craq::RegisterRequest storage{
      .identity = "storage-0", .kind = craq::NodeKind::kStorage, .rpc_address = "127.0.0.1:1"};
  for (int i = 0; i < 3; ++i)
    storage.targets.push_back(craq::TargetReport{.identity = fmt::format("target-{}", i),
                                                 .disk = fmt::format("/disk{}", i),
                                                 .local = craq::LocalState::kUpToDate,
                                                 .capacity_bytes = uint64_t{1} << 40});
  auto registering = mgmtd->register_node(std::move(storage), nullptr);
  CO_TRY(co_await std::move(registering));
  craq::CreateChainTableRequest table{.replica_count = 1, .seed = 1};
  auto creating = mgmtd->create_chain_table(std::move(table), nullptr);
  CO_TRY(co_await std::move(creating));
  co_return Status::ok_status();
}

Task<Status> start_mgmtd(MicaCluster* c) {
  std::string dir = c->dir + "/mgmtd";
  auto making = ensure_directory(dir);
  CO_TRY(co_await std::move(making));
  auto opening = kv::Env::open(dir, kv::EnvOptions{.map_size_bytes = uint64_t{1} << 28});
  CO_TRY_ASSIGN(c->mgmtd_env, co_await std::move(opening));
  auto loading = craq::Mgmtd::open(c->mgmtd_env.get(), craq::MgmtdOptions{});
  CO_TRY_ASSIGN(c->mgmtd, co_await std::move(loading));
  c->mgmtd->start();
  c->mgmtd_rpc = std::make_unique<net::RpcServer>(&c->transport);
  c->mgmtd_rpc->add_service(c->mgmtd->service());
  CO_TRY_ASSIGN(c->mgmtd_address, c->mgmtd_rpc->start(SocketAddress::loopback(0)));
  auto tabling = add_chain_table(c->mgmtd.get());
  CO_TRY(co_await std::move(tabling));
  co_return Status::ok_status();
}

Task<Status> wait_for_shard(craq::RoutingClient* routing) {
  auto waiting =
      routing->wait_until([](const craq::RoutingSnapshot& r) { return r.meta_shards.size() == 1; },
                          deadline_after(10s));
  CO_TRY(co_await std::move(waiting));
  co_return Status::ok_status();
}

// The node (RPC server and shard) on executor 1, as mica-meta with one executor runs it:
// requests reach the shard without a hop between threads.
Task<Status> start_node(MicaCluster* c) {
  meta::MetaNodeOptions options;
  options.mgmtd = {c->mgmtd_address};
  options.data_dir = c->dir + "/meta";
  options.listen = SocketAddress::loopback(0);
  options.host_name = "meta-bench";
  options.shards = {0};
  options.server.shard_count = 1;
  options.server.executors = {&c->runtime->executor(1)};
  options.shard_template.env = kv::EnvOptions{.implementation = c->kv, .map_size_bytes = kMapBytes};
  options.server.coordinator_env =
      kv::EnvOptions{.implementation = c->kv, .map_size_bytes = uint64_t{1} << 28};
  auto making = ensure_directory(options.data_dir);
  CO_TRY(co_await std::move(making));
  c->node_transport = std::make_unique<net::TcpTransport>();
  c->node = std::make_unique<meta::MetaNode>(c->node_transport.get(), std::move(options));
  auto starting = c->node->start();
  CO_TRY(co_await std::move(starting));
  auto node_waiting = wait_for_shard(c->node->routing());
  CO_TRY(co_await std::move(node_waiting));
  co_return Status::ok_status();
}

Task<Status> on_executor_1(Runtime* runtime, Task<Status> work) {
  Executor* home = Executor::current();
  co_await runtime->executor(1).schedule();
  Status status = co_await std::move(work);
  co_await home->schedule();
  co_return status;
}

Task<Status> start_mica(MicaCluster* c) {
  auto mgmtd_starting = start_mgmtd(c);
  CO_TRY(co_await std::move(mgmtd_starting));
  auto node_starting = on_executor_1(c->runtime, start_node(c));
  CO_TRY(co_await std::move(node_starting));
  c->pool = std::make_unique<net::ConnectionPool>(&c->transport, net::PoolOptions{});
  craq::RoutingClientOptions routing{.mgmtd = {c->mgmtd_address}};
  c->routing = std::make_unique<craq::RoutingClient>(c->pool.get(), std::move(routing));
  c->routing->start();
  c->client = std::make_unique<meta::MetaClient>(c->pool.get(), c->routing.get());
  c->client->start();
  auto waiting = wait_for_shard(c->routing.get());
  CO_TRY(co_await std::move(waiting));
  co_return Status::ok_status();
}

Task<Status> stop_node(MicaCluster* c) {
  if (c->node) {
    auto stopping = c->node->stop();
    co_await std::move(stopping);
  }
  c->node.reset();
  c->node_transport.reset();
  co_return Status::ok_status();
}

Task<void> stop_mica(MicaCluster* c) {
  if (c->client) {
    auto stopping = c->client->stop();
    co_await std::move(stopping);
  }
  if (c->routing) {
    auto stopping = c->routing->stop();
    co_await std::move(stopping);
  }
  auto node_stopping = on_executor_1(c->runtime, stop_node(c));
  (void)co_await std::move(node_stopping);
  if (c->pool) {
    auto closing = c->pool->close();
    co_await std::move(closing);
  }
  if (c->mgmtd_rpc) {
    auto shutting = c->mgmtd_rpc->shutdown();
    co_await std::move(shutting);
  }
  if (c->mgmtd) {
    auto stopping = c->mgmtd->stop();
    co_await std::move(stopping);
  }
  if (c->mgmtd_env) {
    auto closing = c->mgmtd_env->close();
    (void)co_await std::move(closing);
  }
}

// Plants `count` files f<i> in the root straight into the shard (on its executor).
Task<Status> plant_mica(MicaCluster* c, uint64_t count, std::vector<InodeId>* ids) {
  Executor* home = Executor::current();
  co_await c->runtime->executor(1).schedule();
  meta::Shard* shard = c->node->server()->shard(0);
  Status status;
  for (uint64_t i = 0; i < count && status.ok(); i += kPlantBatch) {
    meta::ShardTxn txn = shard->begin();
    for (uint64_t k = i; k < std::min(count, i + kPlantBatch); ++k) {
      InodeId id = txn.allocate_inode();
      txn.put_inode(file_inode(id));
      txn.put_entry(kRootInode, file_name(k), meta::DirEntry{.inode = id});
      ids->push_back(id);
    }
    auto committing = txn.commit();
    status = co_await std::move(committing);
  }
  co_await home->schedule();
  co_return status;
}

Task<void> mica_loop(meta::MetaClient* client, std::string op, uint32_t worker,
                     const std::vector<InodeId>* ids, Work* w) {
  for (uint64_t i = 0; !done(w); ++i) {
    Status status;
    if (op == "create") {
      meta::CreateRequest request{
          .parent = kRootInode, .name = fmt::format("c{}-{}", worker, i), .mode = 0644};
      auto creating = client->create(std::move(request));
      status = (co_await std::move(creating)).status();
    } else if (op == "stat") {
      uint64_t at = (worker + i * 7919) % ids->size();
      auto getting = client->getattr(meta::GetattrRequest{.inode = (*ids)[at]});
      status = (co_await std::move(getting)).status();
    } else if (op == "readdir") {
      std::string after;
      for (bool end = false; !end && status.ok();) {
        auto reading = client->readdir(meta::ReaddirRequest{.dir = kRootInode, .after = after});
        Result<meta::ReaddirReply> page = co_await std::move(reading);
        status = page.status();
        if (!page.ok()) break;
        w->ops += page->entries.size();
        end = page->end || page->entries.empty();
        if (!end) after = page->entries.back().name;
      }
      if (status.ok()) continue;
    } else {
      uint64_t at = w->next++;
      if (at >= ids->size()) break;
      if (op == "rename") {
        meta::RenameRequest request{.parent = kRootInode,
                                    .name = file_name(at),
                                    .new_parent = kRootInode,
                                    .new_name = "r" + file_name(at)};
        auto renaming = client->rename(std::move(request));
        status = (co_await std::move(renaming)).status();
      } else {
        meta::RemoveRequest request{.parent = kRootInode, .name = file_name(at)};
        auto removing = client->remove(std::move(request));
        status = (co_await std::move(removing)).status();
      }
    }
    if (!status.ok()) {
      w->failure = status;
      break;
    }
    ++w->ops;
  }
}

// The footprint run: files c<worker>-<i> created until `count` were made by all workers.
Task<void> footprint_loop(meta::MetaClient* client, uint32_t worker, uint64_t count, Work* w) {
  for (uint64_t i = 0; w->failure.ok() && w->next++ < count; ++i) {
    meta::CreateRequest request{
        .parent = kRootInode, .name = fmt::format("c{}-{}", worker, i), .mode = 0644};
    auto creating = client->create(std::move(request));
    Status status = (co_await std::move(creating)).status();
    if (!status.ok()) w->failure = status;
  }
}

Task<Status> run_mica(Runtime* runtime, Config config) {
  MicaCluster c;
  c.runtime = runtime;
  c.dir = config.dir;
  c.kv = config.kv;
  Status status;
  uint64_t rss_before = resident_bytes();
  auto starting = start_mica(&c);
  status = co_await std::move(starting);
  std::vector<InodeId> ids;
  bool footprint = config.op == "footprint";
  uint64_t planted = config.op == "readdir" ? config.entries : config.files;
  if (status.ok() && config.op != "create" && !footprint) {
    auto planting = plant_mica(&c, planted, &ids);
    status = co_await std::move(planting);
  }
  if (status.ok()) {
    Work work;
    TimePoint start = Executor::current()->now();
    work.stop = footprint ? TimePoint::max() : start + to_duration(config.seconds);
    TaskScope scope;
    if (footprint) {
      for (uint32_t t = 0; t < 8; ++t)
        scope.spawn(footprint_loop(c.client.get(), t, config.files, &work));
    } else {
      for (uint32_t t = 0; t < config.clients; ++t)
        scope.spawn(mica_loop(c.client.get(), config.op, t, &ids, &work));
    }
    co_await scope.join();
    double elapsed = seconds_since(start);
    status = work.failure;
    if (status.ok() && footprint) {
      auto used = c.node->server()->shard(0)->env()->used_bytes();
      double scale = 1e6 / config.files;
      std::printf("{\"rss_bytes_per_million\": %.0f, \"disk_bytes_per_million\": %.0f}\n",
                  double(resident_bytes() - rss_before) * scale,
                  used.ok() ? double(*used) * scale : -1.0);
    } else if (status.ok()) {
      std::printf("{\"ops_per_s\": %.0f, \"ops\": %lu}\n", double(work.ops) / elapsed,
                  static_cast<unsigned long>(work.ops));
    }
  }
  auto stopping = stop_mica(&c);
  co_await std::move(stopping);
  co_return status;
}

// ---- the reference: raw kv/ writes of the same keys into the shard's tables ----

struct Reference {
  std::unique_ptr<kv::Env> env;
  meta::ShardTables tables;
  uint64_t next_sequence = 1 << 20;  // inode sequences of this run's new files
  uint64_t requests = 0;
  uint64_t gc_sequence = 1;
  Inode parent = Inode{.id = kRootInode,
                       .type = meta::InodeType::kDirectory,
                       .mode = 0755,
                       .nlink = 2,
                       .parent = kRootInode};
  meta::ShardRecord record;
};

// What every mutation writes besides its own keys: the parent's times and the remembered
// answer of its RequestTag.
template <typename Answer>
void put_common(Reference* r, kv::WriteRequest* request, const Answer& answer) {
  r->parent.mtime_ns += 1;
  r->parent.ctime_ns += 1;
  request->put(r->tables.inodes, meta::inode_key(kRootInode), meta::encode_record(r->parent));
  meta::RequestTag tag{.client = 0x1234567890abcdefULL, .request = ++r->requests};
  request->put(r->tables.requests, meta::request_key(tag), meta::encode_record(answer));
}

Task<Status> plant_reference(Reference* r, uint64_t count) {
  for (uint64_t i = 0; i < count; i += kPlantBatch) {
    kv::WriteRequest request;
    for (uint64_t k = i; k < std::min(count, i + kPlantBatch); ++k) {
      InodeId id = meta::make_inode_id(0, k + 2);
      request.put(r->tables.inodes, meta::inode_key(id), meta::encode_record(file_inode(id)));
      request.put(r->tables.entries, meta::entry_key(kRootInode, file_name(k)),
                  meta::encode_record(meta::DirEntry{.inode = id}));
    }
    CO_TRY(co_await r->env->write(&request));
  }
  co_return Status::ok_status();
}

Status reference_read(Reference* r, kv::ReadTxn* txn, const std::string& op, uint64_t at, Work* w) {
  if (op == "stat") {
    auto got = meta::read_inode(*txn, r->tables, meta::make_inode_id(0, at + 2));
    if (!got.ok()) return got.status();
    if (!*got) return Status(StatusCode::kNotFound, "planted inode missing");
    return Status::ok_status();
  }
  // readdir: the whole root, decoding every entry as the shard's pages do.
  auto opening = txn->cursor(r->tables.entries);
  if (!opening.ok()) return opening.status();
  std::unique_ptr<kv::Cursor> cursor = std::move(opening).value();
  std::string prefix = meta::entry_prefix(kRootInode);
  for (auto entry = cursor->seek(prefix); entry.ok() && *entry; entry = cursor->next()) {
    if (!(*entry)->key.starts_with(prefix)) break;
    auto decoded = meta::decode_record<meta::DirEntry>((*entry)->value, "entry");
    if (!decoded.ok()) return decoded.status();
    ++w->ops;
  }
  return Status::ok_status();
}

Task<Status> reference_write(Reference* r, std::string op, uint32_t worker, uint64_t i, Work* w) {
  kv::WriteRequest request;
  if (op == "create") {
    InodeId id = meta::make_inode_id(0, r->next_sequence++);
    Inode inode = file_inode(id);
    request.put(r->tables.inodes, meta::inode_key(id), meta::encode_record(inode));
    request.put(r->tables.entries, meta::entry_key(kRootInode, fmt::format("c{}-{}", worker, i)),
                meta::encode_record(meta::DirEntry{.inode = id}));
    r->record.next_sequence = r->next_sequence;
    request.put(r->tables.shard, meta::kShardRecordKey, meta::encode_record(r->record));
    put_common(r, &request, meta::CreateReply{.inode = inode, .created = true});
  } else {
    uint64_t at = w->next++;
    InodeId id = meta::make_inode_id(0, at + 2);
    Inode inode = file_inode(id);
    request.erase(r->tables.entries, meta::entry_key(kRootInode, file_name(at)));
    if (op == "rename") {
      request.put(r->tables.entries, meta::entry_key(kRootInode, "r" + file_name(at)),
                  meta::encode_record(meta::DirEntry{.inode = id}));
      inode.ctime_ns += 1;
      request.put(r->tables.inodes, meta::inode_key(id), meta::encode_record(inode));
      put_common(r, &request, meta::RenameReply{.moved = inode});
    } else {
      request.erase(r->tables.inodes, meta::inode_key(id));
      meta::GcRecord gc{.inode = id, .layout = inode.layout, .queued_ns = inode.ctime_ns};
      request.put(r->tables.gc, meta::gc_key(r->gc_sequence++), meta::encode_record(gc));
      inode.nlink = 0;
      put_common(r, &request, meta::RemoveReply{.inode = inode, .reclaimed = true});
    }
  }
  co_return co_await r->env->write(&request);
}

Task<void> reference_loop(Reference* r, std::string op, uint32_t worker, uint64_t planted,
                          Work* w) {
  std::unique_ptr<kv::ReadTxn> txn;
  for (uint64_t i = 0; !done(w); ++i) {
    Status status;
    if (op == "stat" || op == "readdir") {
      if (!txn) {
        auto beginning = r->env->begin_read();
        if (!beginning.ok()) {
          w->failure = beginning.status();
          break;
        }
        txn = std::move(beginning).value();
      } else {
        status = txn->renew();
      }
      if (status.ok()) status = reference_read(r, txn.get(), op, (worker + i * 7919) % planted, w);
      txn->reset();
      if (op == "readdir") {
        if (!status.ok()) w->failure = status;
        // A cooperative yield, as the client's RPC would suspend between listings.
        co_await Executor::current()->schedule();
        continue;
      }
    } else {
      if (op != "create" && w->next >= planted) break;
      auto writing = reference_write(r, op, worker, i, w);
      status = co_await std::move(writing);
    }
    if (!status.ok()) {
      w->failure = status;
      break;
    }
    ++w->ops;
    if (op == "stat" && i % 64 == 63) co_await Executor::current()->schedule();
  }
}

Task<Status> run_reference(Config config) {
  Reference r;
  auto opening = kv::Env::open(config.dir, store_options(config, kMapBytes));
  CO_TRY_ASSIGN(r.env, co_await std::move(opening));
  Status status;
  auto tables = meta::open_shard_tables(r.env.get());
  if (!tables.ok()) status = tables.status();
  uint64_t planted = config.op == "readdir" ? config.entries : config.files;
  if (status.ok()) {
    r.tables = *tables;
    if (config.op != "create") {
      auto planting = plant_reference(&r, planted);
      status = co_await std::move(planting);
    }
  }
  if (status.ok()) {
    Work work;
    TimePoint start = Executor::current()->now();
    work.stop = start + to_duration(config.seconds);
    TaskScope scope;
    for (uint32_t t = 0; t < config.clients; ++t)
      scope.spawn(reference_loop(&r, config.op, t, planted, &work));
    co_await scope.join();
    double elapsed = seconds_since(start);
    status = work.failure;
    if (status.ok()) {
      std::printf("{\"ops_per_s\": %.0f, \"ops\": %lu}\n", double(work.ops) / elapsed,
                  static_cast<unsigned long>(work.ops));
    }
  }
  auto closing = r.env->close();
  Status closed = co_await std::move(closing);
  co_return status.ok() ? closed : status;
}

// ---- the networked read reference: ReadReference on executor 1, clients on executor 0 ----

struct RpcSide {
  Reference store;  // its env and tables, on executor 1
  std::unique_ptr<net::TcpTransport> transport;
  std::unique_ptr<ReadReference> reads;
  std::unique_ptr<net::RpcServer> server;
  SocketAddress address;
};

// On executor 1: the env, the planted files and the server.
Task<Status> start_rpc_reference(RpcSide* s, Config config, uint64_t planted) {
  auto opening = kv::Env::open(config.dir, store_options(config, kMapBytes));
  CO_TRY_ASSIGN(s->store.env, co_await std::move(opening));
  CO_TRY_ASSIGN(s->store.tables, meta::open_shard_tables(s->store.env.get()));
  auto planting = plant_reference(&s->store, planted);
  CO_TRY(co_await std::move(planting));
  s->transport = std::make_unique<net::TcpTransport>();
  s->reads = std::make_unique<ReadReference>(s->store.env.get(), s->store.tables,
                                             meta::ShardOptions{}.readdir_page_max);
  s->server = std::make_unique<net::RpcServer>(s->transport.get());
  s->server->add_service(s->reads->service());
  CO_TRY_ASSIGN(s->address, s->server->start(SocketAddress::loopback(0)));
  co_return Status::ok_status();
}

Task<Status> stop_rpc_reference(RpcSide* s) {
  if (s->server) {
    auto shutting = s->server->shutdown();
    co_await std::move(shutting);
  }
  s->server.reset();
  s->reads.reset();
  s->transport.reset();
  if (!s->store.env) co_return Status::ok_status();
  auto closing = s->store.env->close();
  Status closed = co_await std::move(closing);
  s->store.env.reset();
  co_return closed;
}

Task<void> rpc_loop(net::RpcClient* client, std::string op, uint32_t worker, uint64_t planted,
                    Work* w) {
  for (uint64_t i = 0; !done(w); ++i) {
    if (op == "stat") {
      meta::GetattrRequest request{.inode =
                                       meta::make_inode_id(0, (worker + i * 7919) % planted + 2)};
      auto calling = client->call<ReadReferenceApi::getattr>(request, net::CallOptions{});
      Result<meta::InodeReply> got = co_await std::move(calling);
      if (!got.ok()) {
        w->failure = got.status();
        break;
      }
      ++w->ops;
      continue;
    }
    std::string after;  // readdir: a whole listing, page by page, as mica_loop
    for (bool end = false; !end;) {
      meta::ReaddirRequest request{.dir = kRootInode, .after = after};
      auto calling = client->call<ReadReferenceApi::readdir>(request, net::CallOptions{});
      Result<meta::ReaddirReply> page = co_await std::move(calling);
      if (!page.ok()) {
        w->failure = page.status();
        co_return;
      }
      w->ops += page->entries.size();
      end = page->end || page->entries.empty();
      if (!end) after = page->entries.back().name;
    }
  }
}

Task<Status> measure_rpc(SocketAddress address, Config config, uint64_t planted) {
  net::TcpTransport transport;
  auto connecting = net::RpcClient::connect(&transport, address, deadline_after(10s));
  CO_TRY_ASSIGN(std::shared_ptr<net::RpcClient> client, co_await std::move(connecting));
  Work work;
  TimePoint start = Executor::current()->now();
  work.stop = start + to_duration(config.seconds);
  TaskScope scope;
  for (uint32_t t = 0; t < config.clients; ++t)
    scope.spawn(rpc_loop(client.get(), config.op, t, planted, &work));
  co_await scope.join();
  double elapsed = seconds_since(start);
  co_await client->close();
  if (!work.failure.ok()) co_return work.failure;
  std::printf("{\"ops_per_s\": %.0f, \"ops\": %lu}\n", double(work.ops) / elapsed,
              static_cast<unsigned long>(work.ops));
  co_return Status::ok_status();
}

Task<Status> run_rpc_reference(Runtime* runtime, Config config) {
  RpcSide side;
  uint64_t planted = config.op == "readdir" ? config.entries : config.files;
  auto starting = on_executor_1(runtime, start_rpc_reference(&side, config, planted));
  Status status = co_await std::move(starting);
  if (status.ok()) {
    auto measuring = measure_rpc(side.address, config, planted);
    status = co_await std::move(measuring);
  }
  auto stopping = on_executor_1(runtime, stop_rpc_reference(&side));
  Status stopped = co_await std::move(stopping);
  co_return status.ok() ? stopped : status;
}

Task<Status> run(Runtime* runtime, Config config) {
  auto making = ensure_directory(config.dir);
  CO_TRY(co_await std::move(making));
  if (config.side == "mica") {
    auto running = run_mica(runtime, config);
    co_return co_await std::move(running);
  }
  if (config.side == "rpc") {
    auto running = run_rpc_reference(runtime, config);
    co_return co_await std::move(running);
  }
  auto running = run_reference(config);
  co_return co_await std::move(running);
}

bool valid(const Config& c) {
  bool op = c.op == "create" || c.op == "stat" || c.op == "readdir" || c.op == "rename" ||
            c.op == "unlink" || (c.op == "footprint" && c.side == "mica");
  bool rpc = c.side == "rpc" && (c.op == "stat" || c.op == "readdir");
  return op && (c.side == "mica" || c.side == "reference" || rpc) && !c.dir.empty() &&
         c.clients >= 1 && c.clients <= kClientsMax;
}

}  // namespace
}  // namespace mica::bench

int main(int argc, char** argv) {
  using namespace mica::bench;
  Flags flags(argc, argv,
              "bench_meta --side mica|reference|rpc --op "
              "create|stat|readdir|rename|unlink|footprint "
              "--dir DIR [--clients N] [--files K] [--entries E] [--seconds S] "
              "[--kv journaled|lmdb]");
  Config config;
  config.side = flags.text("side", "");
  config.op = flags.text("op", "");
  config.dir = flags.text("dir", "");
  config.clients = static_cast<uint32_t>(flags.number("clients", 1));
  config.files = static_cast<uint32_t>(flags.number("files", 100000));
  config.entries = static_cast<uint32_t>(flags.number("entries", 100000));
  config.seconds = flags.number("seconds", 5);
  std::string store = flags.text("kv", "journaled");
  config.kv =
      store == "lmdb" ? mica::kv::Implementation::kLmdb : mica::kv::Implementation::kJournaled;
  flags.finish();
  if (store != "lmdb" && store != "journaled") {
    std::fprintf(stderr, "bench_meta: --kv is journaled or lmdb\n");
    return 2;
  }
  if (!valid(config)) {
    std::fprintf(stderr, "bench_meta: bad side, op, directory or clients\n");
    return 2;
  }
  std::error_code ignored;
  std::filesystem::remove_all(config.dir, ignored);  // every run starts fresh
  mica::Status status;
  {
    mica::Runtime runtime(mica::RuntimeOptions{.threads = 2});
    status = runtime.block_on(run(&runtime, config));
  }
  if (!status.ok()) {
    std::fprintf(stderr, "bench_meta: %s\n", status.to_string().c_str());
    return 1;
  }
  return 0;
}
