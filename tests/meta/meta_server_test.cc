// The metadata service end to end in one test process: a real Mgmtd (LMDB, TCP on
// 127.0.0.1), two meta processes' MetaNodes serving 4 shards between them (0 and 2 on one,
// 1 and 3 on the other), and a MetaClient routing by shard through mgmtd's routing
// (meta/meta_server.h, meta/meta_client.h, meta/fsck.h). Lease 200 ms, heartbeats every
// 50 ms; each test takes well under two seconds.
#include <gtest/gtest.h>

#include <set>

#include "async/file.h"
#include "async/wait_list.h"
#include "meta/fsck.h"
#include "meta/meta_client.h"
#include "meta/meta_node.h"
#include "tests/co_test.h"
#include "tests/craq/served_mgmtd.h"

namespace mica::meta {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kShards = 4;

struct Cluster {
  explicit Cluster(std::string root) : dir(std::move(root)), mgmtd(dir + "/mgmtd") {}
  std::string dir;
  craq::testing::ServedMgmtd mgmtd;
  net::TcpTransport transport;
  std::vector<std::unique_ptr<MetaNode>> nodes;
  std::unique_ptr<net::ConnectionPool> pool;
  std::unique_ptr<craq::RoutingClient> routing;
  std::unique_ptr<MetaClient> client;
};

MetaNodeOptions node_options(const Cluster& c, std::string name, std::vector<ShardId> shards) {
  MetaNodeOptions options;
  options.mgmtd = {c.mgmtd.address};
  options.data_dir = c.dir + "/" + name;
  options.listen = SocketAddress::loopback(0);
  options.host_name = name;
  options.shards = std::move(shards);
  options.server.shard_count = kShards;
  options.server.placement_seed = 7;
  options.shard_template.env.map_size_bytes = uint64_t{1} << 26;
  options.server.coordinator_env.map_size_bytes = uint64_t{1} << 26;
  options.pool = craq::testing::fast_pool();
  options.routing.poll_wait_ms = 200;
  options.agent.backoff_initial = 5ms;
  options.agent.heartbeat_interval = 50ms;
  return options;
}

Task<Status> add_node(Cluster* c, std::string name, std::vector<ShardId> shards) {
  MetaNodeOptions options = node_options(*c, name, std::move(shards));
  auto making = ensure_directory(options.data_dir);
  CO_TRY(co_await std::move(making));
  auto node = std::make_unique<MetaNode>(&c->transport, std::move(options));
  auto starting = node->start();
  Status started = co_await std::move(starting);
  c->nodes.push_back(std::move(node));  // stopped by stop_cluster() even after a failure
  co_return started;
}

// A storage node that never runs: its targets only give routing a chain table, which new
// files take their layouts from.
Task<Status> add_chain_table(Cluster* c) {
  craq::RegisterRequest storage{
      .identity = "storage-0", .kind = craq::NodeKind::kStorage, .rpc_address = "127.0.0.1:1"};
  for (int i = 0; i < 3; ++i)
    storage.targets.push_back(craq::TargetReport{.identity = fmt::format("target-{}", i),
                                                 .disk = fmt::format("/disk{}", i),
                                                 .local = craq::LocalState::kUpToDate,
                                                 .capacity_bytes = uint64_t{1} << 40});
  auto registering = c->mgmtd.mgmtd->register_node(std::move(storage), nullptr);
  CO_TRY(co_await std::move(registering));
  craq::CreateChainTableRequest table{.replica_count = 1, .seed = 1};
  auto creating = c->mgmtd.mgmtd->create_chain_table(std::move(table), nullptr);
  CO_TRY(co_await std::move(creating));
  co_return Status::ok_status();
}

Task<Status> wait_for_shards(craq::RoutingClient* routing, size_t expected) {
  auto waiting = routing->wait_until(
      [expected](const craq::RoutingSnapshot& r) { return r.meta_shards.size() == expected; },
      deadline_after(5s));
  CO_TRY(co_await std::move(waiting));
  co_return Status::ok_status();
}

Task<Status> start_cluster(Cluster* c, bool second_node = true) {
  auto making = ensure_directory(c->mgmtd.dir);
  CO_TRY(co_await std::move(making));
  auto serving = craq::testing::serve(&c->mgmtd);
  CO_TRY(co_await std::move(serving));
  auto tabling = add_chain_table(c);
  CO_TRY(co_await std::move(tabling));
  auto adding_a = add_node(c, "meta-a", {0, 2});
  CO_TRY(co_await std::move(adding_a));
  if (second_node) {
    auto adding_b = add_node(c, "meta-b", {1, 3});
    CO_TRY(co_await std::move(adding_b));
  }
  c->pool = std::make_unique<net::ConnectionPool>(&c->transport, craq::testing::fast_pool());
  craq::RoutingClientOptions routing{.mgmtd = {c->mgmtd.address}, .poll_wait_ms = 200};
  c->routing = std::make_unique<craq::RoutingClient>(c->pool.get(), std::move(routing));
  c->routing->start();
  MetaClientOptions client{.call_timeout = 5s, .attempt_timeout = 1s};
  c->client = std::make_unique<MetaClient>(c->pool.get(), c->routing.get(), client);
  c->client->start();
  size_t expected = second_node ? kShards : 2;
  auto waiting = wait_for_shards(c->routing.get(), expected);
  CO_TRY(co_await std::move(waiting));
  // The servers too: a create takes its layout from its server's routing.
  for (auto& node : c->nodes) {
    auto node_waiting = wait_for_shards(node->routing(), expected);
    CO_TRY(co_await std::move(node_waiting));
  }
  co_return Status::ok_status();
}

Task<void> stop_cluster(Cluster* c) {
  if (c->client) {
    auto stopping = c->client->stop();
    co_await std::move(stopping);
  }
  if (c->routing) {
    auto stopping = c->routing->stop();
    co_await std::move(stopping);
  }
  for (auto& node : c->nodes) {
    auto stopping = node->stop();
    co_await std::move(stopping);
  }
  if (c->pool) {
    auto closing = c->pool->close();
    co_await std::move(closing);
  }
  auto unserving = craq::testing::unserve(&c->mgmtd);
  co_await std::move(unserving);
}

// The node serving `shard`.
MetaNode* node_of(Cluster* c, ShardId shard) {
  for (auto& node : c->nodes)
    if (node->server()->serves(shard)) return node.get();
  return nullptr;
}

// A directory `name` in the root placed on `shard`, written straight into the shards as
// the coordinator's mkdir leaves it (the test does not depend on the coordinator).
Task<Result<InodeId>> plant_directory(Cluster* c, std::string name, ShardId shard) {
  Shard* home = node_of(c, shard)->server()->shard(shard);
  ShardTxn txn = home->begin();
  InodeId id = txn.allocate_inode();
  txn.put_inode(Inode{
      .id = id, .type = InodeType::kDirectory, .mode = 0777, .nlink = 2, .parent = kRootInode});
  auto committing = txn.commit();
  CO_TRY(co_await std::move(committing));
  Shard* root_shard = node_of(c, 0)->server()->shard(0);
  ShardTxn root_txn = root_shard->begin();
  CO_TRY_ASSIGN(std::optional<Inode> root, root_txn.inode(kRootInode));
  if (!root) co_return Status(StatusCode::kNotFound, "no root");
  root->nlink += 1;
  root_txn.put_inode(*root);
  root_txn.put_entry(kRootInode, name, DirEntry{.inode = id, .type = InodeType::kDirectory});
  auto root_committing = root_txn.commit();
  CO_TRY(co_await std::move(root_committing));
  co_return id;
}

Task<Result<CreateReply>> create_file(MetaClient* client, InodeId parent, std::string name) {
  CreateRequest request{.parent = parent, .name = std::move(name), .mode = 0644};
  auto creating = client->create(std::move(request));
  co_return co_await std::move(creating);
}

MICA_CO_TEST(MetaServer, MgmtdRoutesEveryShardToItsProcess) {
  Cluster c(dir.path);
  auto starting = start_cluster(&c);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    craq::RoutingClient::SnapshotPtr routing = c.routing->current();
    CO_ASSERT_EQ(routing->meta_shards.size(), kShards);
    for (const craq::MetaShardRoute& route : routing->meta_shards) {
      const craq::NodeInfo* info = craq::find_node(*routing, route.node);
      EXPECT_TRUE(info != nullptr && info->kind == craq::NodeKind::kMeta);
      EXPECT_EQ(node_of(&c, route.shard)->node(), route.node) << "shard " << route.shard;
    }
  }
  auto stopping = stop_cluster(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(MetaServer, ClientOperationsReachEveryShard) {
  Cluster c(dir.path);
  auto starting = start_cluster(&c);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    auto planting = plant_directory(&c, "d1", 1);
    Result<InodeId> d1 = co_await std::move(planting);
    EXPECT_TRUE(d1.ok()) << d1.status();
    if (d1.ok()) {
      EXPECT_EQ(shard_of(*d1), 1u);
      auto creating = create_file(c.client.get(), *d1, "f");
      Result<CreateReply> file = co_await std::move(creating);
      EXPECT_TRUE(file.ok()) << file.status();
      auto looking = c.client->lookup(LookupRequest{.parent = kRootInode, .name = "d1"});
      Result<InodeReply> found = co_await std::move(looking);
      EXPECT_TRUE(found.ok() && found->inode.id == *d1) << found.status();
      // readdir of the root (shard 0, node a) fills d1's attributes from shard 1 (node b).
      auto listing = c.client->readdir(ReaddirRequest{.dir = kRootInode, .with_attrs = true});
      Result<ReaddirReply> listed = co_await std::move(listing);
      EXPECT_TRUE(listed.ok()) << listed.status();
      if (listed.ok()) {
        CO_ASSERT_EQ(listed->entries.size(), 1u);
        EXPECT_EQ(listed->entries[0].name, "d1");
        CO_ASSERT_TRUE(listed->entries[0].attrs.has_value());
        EXPECT_EQ(listed->entries[0].attrs->id, *d1);
        EXPECT_EQ(listed->entries[0].attrs->type, InodeType::kDirectory);
      }
      auto resolving = c.client->resolve(Credentials{}, "/d1/f");
      Result<Resolved> resolved = co_await std::move(resolving);
      EXPECT_TRUE(resolved.ok()) << resolved.status();
      if (resolved.ok() && file.ok()) {
        EXPECT_EQ(resolved->inode.id, file->inode.id);
      }
      auto past_file = c.client->resolve(Credentials{}, "/d1/f/g");
      Result<Resolved> not_dir = co_await std::move(past_file);
      EXPECT_EQ(not_dir.status().code(), StatusCode::kNotDirectory);
    }
  }
  auto stopping = stop_cluster(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(MetaServer, AMisroutedRequestIsWrongShard) {
  Cluster c(dir.path);
  auto starting = start_cluster(&c);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    // Shard 0's root asked of the process serving shards 1 and 3.
    auto getting = c.pool->get(node_of(&c, 1)->rpc_address(), deadline_after(2s));
    Result<std::shared_ptr<net::RpcClient>> rpc = co_await std::move(getting);
    CO_ASSERT_OK(rpc);
    auto calling = MetaService::Stub(rpc->get()).getattr(GetattrRequest{.inode = kRootInode});
    Result<InodeReply> refused = co_await std::move(calling);
    EXPECT_EQ(refused.status().code(), StatusCode::kWrongShard) << refused.status();
  }
  auto stopping = stop_cluster(&c);
  co_await std::move(stopping);
}

Task<void> add_node_later(Cluster* c, Status* out) {
  Status slept = co_await sleep_for(100ms);
  (void)slept;
  auto adding = add_node(c, "meta-b", {1, 3});
  *out = co_await std::move(adding);
}

// A call for a shard whose process registers only later is retried until it does.
MICA_CO_TEST(MetaServer, TheClientRetriesUntilTheShardIsServed) {
  Cluster c(dir.path);
  auto starting = start_cluster(&c, /*second_node=*/false);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    uint64_t retries = c.client->retries();
    Status added;
    TaskScope scope;
    scope.spawn(add_node_later(&c, &added));
    auto asking = c.client->status(3);
    Result<MetaStatusReply> status = co_await std::move(asking);
    co_await scope.join();
    EXPECT_TRUE(added.ok()) << added;
    EXPECT_TRUE(status.ok()) << status.status();
    if (status.ok()) {
      CO_ASSERT_EQ(status->shards.size(), 2u);
      EXPECT_EQ(status->shards[1].shard, 3u);
    }
    EXPECT_GT(c.client->retries(), retries);
  }
  auto stopping = stop_cluster(&c);
  co_await std::move(stopping);
}

MICA_CO_TEST(MetaServer, FsckIsCleanAfterOperationsAndFindsAPlantedProblem) {
  Cluster c(dir.path);
  auto starting = start_cluster(&c);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    auto planting = plant_directory(&c, "d3", 3);
    Result<InodeId> d3 = co_await std::move(planting);
    CO_ASSERT_OK(d3);
    for (std::string name : {"a", "b", "c"}) {
      auto creating = create_file(c.client.get(), *d3, name);
      Result<CreateReply> file = co_await std::move(creating);
      CO_ASSERT_OK(file);
    }
    auto creating_root = create_file(c.client.get(), kRootInode, "top");
    Result<CreateReply> top = co_await std::move(creating_root);
    CO_ASSERT_OK(top);
    auto renaming = c.client->rename(
        RenameRequest{.parent = *d3, .name = "a", .new_parent = *d3, .new_name = "a2"});
    Result<RenameReply> renamed = co_await std::move(renaming);
    CO_ASSERT_OK(renamed);
    auto removing = c.client->remove(RemoveRequest{.parent = *d3, .name = "b"});
    Result<RemoveReply> removed = co_await std::move(removing);
    CO_ASSERT_OK(removed);
    auto checking = fsck(c.client.get());
    Result<std::vector<FsckProblem>> clean = co_await std::move(checking);
    CO_ASSERT_OK(clean);
    for (const FsckProblem& problem : *clean) ADD_FAILURE() << problem.message;
    // An entry pointing nowhere, written straight into shard 3.
    Shard* shard = node_of(&c, 3)->server()->shard(3);
    ShardTxn txn = shard->begin();
    InodeId nowhere = make_inode_id(3, 999999);
    txn.put_entry(*d3, "ghost", DirEntry{.inode = nowhere, .type = InodeType::kFile});
    auto committing = txn.commit();
    Status committed = co_await std::move(committing);
    CO_ASSERT_OK(committed);
    auto rechecking = fsck(c.client.get());
    Result<std::vector<FsckProblem>> found = co_await std::move(rechecking);
    CO_ASSERT_OK(found);
    CO_ASSERT_EQ(found->size(), 1u);
    EXPECT_EQ((*found)[0].inode, nowhere);
    EXPECT_NE((*found)[0].message.find("does not exist"), std::string::npos) << (*found)[0].message;
  }
  auto stopping = stop_cluster(&c);
  co_await std::move(stopping);
}

Task<Result<InodeId>> make_dir(MetaClient* client, InodeId parent, std::string name) {
  MkdirRequest request{.parent = parent, .name = std::move(name), .mode = 0755};
  auto making = client->mkdir(std::move(request));
  CO_TRY_ASSIGN(InodeReply reply, co_await std::move(making));
  co_return reply.inode.id;
}

// mkdir, rmdir and a rename and a link across shards reach the coordinator in the process
// serving shard 0, also when they arrive at the other process (CoordinatorService).
MICA_CO_TEST(MetaServer, DirectoryOperationsGoThroughTheCoordinator) {
  Cluster c(dir.path);
  auto starting = start_cluster(&c);
  Status started = co_await std::move(starting);
  CO_ASSERT_OK(started);
  std::vector<InodeId> dirs;
  std::set<ShardId> shards;
  for (int i = 0; i < 8; ++i) {
    auto making = make_dir(c.client.get(), kRootInode, fmt::format("d{}", i));
    Result<InodeId> made = co_await std::move(making);
    CO_ASSERT_OK(made);
    dirs.push_back(*made);
    shards.insert(shard_of(*made));
    // A subdirectory asked of the parent's process, wherever that is.
    auto sub = make_dir(c.client.get(), *made, "sub");
    Result<InodeId> made_sub = co_await std::move(sub);
    CO_ASSERT_OK(made_sub);
  }
  EXPECT_GT(shards.size(), 1u) << "the seeded spread put every directory on one shard";
  InodeId from = dirs[0];
  InodeId to = 0;
  for (InodeId d : dirs)
    if (shard_of(d) != shard_of(from)) to = d;
  CO_ASSERT_TRUE(to != 0);
  auto creating = create_file(c.client.get(), from, "f");
  Result<CreateReply> file = co_await std::move(creating);
  CO_ASSERT_OK(file);
  auto linking =
      c.client->link(LinkRequest{.inode = file->inode.id, .new_parent = to, .new_name = "f-link"});
  Result<InodeReply> linked = co_await std::move(linking);
  CO_ASSERT_OK(linked);
  EXPECT_EQ(linked->inode.nlink, 2u);
  auto renaming = c.client->rename(
      RenameRequest{.parent = from, .name = "f", .new_parent = to, .new_name = "f-moved"});
  Result<RenameReply> renamed = co_await std::move(renaming);
  CO_ASSERT_OK(renamed);
  auto removing = c.client->remove(RemoveRequest{.parent = to, .name = "sub", .directory = true});
  Result<RemoveReply> removed = co_await std::move(removing);
  CO_ASSERT_OK(removed);
  auto resolving = c.client->resolve(Credentials{}, "/d1/../d0/sub");
  Result<Resolved> resolved = co_await std::move(resolving);
  CO_ASSERT_OK(resolved);
  EXPECT_EQ(resolved->parent, dirs[0]);
  auto checking = fsck(c.client.get());
  Result<std::vector<FsckProblem>> clean = co_await std::move(checking);
  CO_ASSERT_OK(clean);
  for (const FsckProblem& problem : *clean) ADD_FAILURE() << problem.message;
  auto stopping = stop_cluster(&c);
  co_await std::move(stopping);
}

// open(O_CREAT) without O_EXCL of a name whose file was renamed in from another shard opens
// that file on its own shard (in this process or the other), instead of "no inode" from the
// entry's shard (found by the client model test: tests/client/client_model_test.cc).
MICA_CO_TEST(MetaServer, CreateWithOpenOfAFileRenamedInFromAnotherShardOpensIt) {
  Cluster c(dir.path);
  auto starting = start_cluster(&c);
  Status started = co_await std::move(starting);
  CO_ASSERT_OK(started);
  std::set<ShardId> tried;
  for (int i = 0; i < 8; ++i) {
    auto making = make_dir(c.client.get(), kRootInode, fmt::format("d{}", i));
    Result<InodeId> far = co_await std::move(making);
    CO_ASSERT_OK(far);
    if (shard_of(*far) == 0) continue;
    tried.insert(shard_of(*far));
    std::string name = fmt::format("f{}", i);
    auto creating = create_file(c.client.get(), kRootInode, name);
    Result<CreateReply> file = co_await std::move(creating);
    CO_ASSERT_OK(file);
    auto renaming = c.client->rename(
        RenameRequest{.parent = kRootInode, .name = name, .new_parent = *far, .new_name = "g"});
    Result<RenameReply> renamed = co_await std::move(renaming);
    CO_ASSERT_OK(renamed);
    CreateRequest request{.parent = *far,
                          .name = "g",
                          .mode = 0644,
                          .open = true,
                          .flags = OpenFlags{.read = true, .write = true, .truncate = true}};
    auto opening = c.client->create(std::move(request));
    Result<CreateReply> opened = co_await std::move(opening);
    CO_ASSERT_OK(opened);
    EXPECT_FALSE(opened->created);
    EXPECT_EQ(opened->inode.id, file->inode.id) << "directory on shard " << shard_of(*far);
    EXPECT_NE(opened->session, 0u);
    auto closing = c.client->close(CloseRequest{.report = {.inode = opened->inode.id,
                                                           .client = c.client->client_id(),
                                                           .session = opened->session}});
    Result<InodeReply> closed = co_await std::move(closing);
    CO_ASSERT_OK(closed);
  }
  EXPECT_FALSE(tried.empty()) << "the seeded spread put every directory on shard 0";
  auto stopping = stop_cluster(&c);
  co_await std::move(stopping);
}

}  // namespace
}  // namespace mica::meta
