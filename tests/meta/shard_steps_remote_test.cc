// ShardStepService over real TCP on 127.0.0.1: the coordinator drives shards 1 and 2
// through the remote stepper (shard 0 locally), a re-sent step answers its first reply, and
// a shard without an address fails after the stepper's attempts.
#include "net/rpc_server.h"
#include "net/tcp_transport.h"
#include "tests/meta/coordinator_fixture.h"

namespace mica::meta::testing {
namespace {

#define CO_AWAIT(decl, expr)                          \
  auto MICA_CONCAT(awaited_task_, __LINE__) = (expr); \
  decl = co_await std::move(MICA_CONCAT(awaited_task_, __LINE__))

// Serves shards 1 and 2 of the cluster over TCP; shard 0 stays local to the coordinator.
struct RemoteRig {
  net::TcpTransport transport;
  std::unique_ptr<ShardStepHandlers> handlers;
  std::unique_ptr<net::Service> service;
  std::unique_ptr<net::RpcServer> server;
  std::unique_ptr<net::ConnectionPool> pool;
  std::unique_ptr<ShardStepper> remote;
  SocketAddress address;
};

Status start_rig(Cluster* c, RemoteRig* rig) {
  rig->handlers = std::make_unique<ShardStepHandlers>(
      LocalShards{.shard = [c](ShardId id) { return id == 0 ? nullptr : c->shard(id); }});
  rig->service = std::make_unique<net::Service>(shard_step_service(rig->handlers.get()));
  rig->server = std::make_unique<net::RpcServer>(&rig->transport);
  rig->server->add_service(rig->service.get());
  Result<SocketAddress> address = rig->server->start(SocketAddress::loopback(0));
  if (!address.ok()) return address.status();
  rig->address = *address;
  rig->pool = std::make_unique<net::ConnectionPool>(&rig->transport);
  RemoteStepperOptions options{.attempt_timeout = std::chrono::seconds(5),
                               .attempts_max = 2,
                               .backoff_initial = std::chrono::milliseconds(1),
                               .backoff_max = std::chrono::milliseconds(2)};
  rig->remote = remote_shard_stepper(
      rig->pool.get(),
      [rig](ShardId id) -> std::optional<SocketAddress> {
        if (id == 0 || id >= kTestShards) return std::nullopt;
        return rig->address;
      },
      LocalShards{.shard = [c](ShardId id) { return id == 0 ? c->shard(0) : nullptr; }}, options);
  return Status();
}

Task<void> stop_rig(RemoteRig* rig) {
  auto closing = rig->pool->close();
  co_await std::move(closing);
  auto shutting = rig->server->shutdown();
  co_await std::move(shutting);
}

Task<void> remote_body(Cluster* c, RemoteRig* rig) {
  // The coordinator reopens on the remote stepper.
  CO_AWAIT(Status closed, c->close_coordinator());
  CO_ASSERT_OK(closed);
  c->flaky = std::make_unique<FlakyStepper>(rig->remote.get());
  CO_AWAIT(Status opened, c->open_coordinator());
  CO_ASSERT_OK(opened);
  std::vector<InodeId> dirs;
  for (int i = 0; i < 6; ++i) {
    CO_AWAIT(Result<InodeReply> made, c->mkdir(kRootInode, "d" + std::to_string(i)));
    CO_ASSERT_OK(made);
    dirs.push_back(made->inode.id);
  }
  CO_ASSERT_EQ(c->nlink(kRootInode), 8u);
  RenameRequest move{.cred = root(),
                     .parent = kRootInode,
                     .name = "d0",
                     .new_parent = dirs[1],
                     .new_name = "moved"};
  CO_AWAIT(Result<RenameReply> moved, c->rename(move));
  CO_ASSERT_OK(moved);
  CO_ASSERT_EQ(c->nlink(dirs[1]), 3u);
  CO_AWAIT(Result<RemoveReply> removed, c->rmdir(dirs[1], "moved"));
  CO_ASSERT_OK(removed);
  CO_ASSERT_EQ(c->nlink(dirs[1]), 2u);
  CO_ASSERT_EQ(c->coordinator->directory_parents().size(), 6u);
}

Task<void> run_remote(CoTestDir dir, Task<void> (*body)(Cluster*, RemoteRig*)) {
  Cluster cluster;
  CO_AWAIT(Status opened, cluster.open(dir.path));
  EXPECT_TRUE(opened.ok()) << opened;
  RemoteRig rig;
  Status started = opened.ok() ? start_rig(&cluster, &rig) : opened;
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    auto running = body(&cluster, &rig);
    co_await std::move(running);
  }
  CO_AWAIT(Status closed, cluster.close_coordinator());
  EXPECT_TRUE(closed.ok()) << closed;
  if (started.ok()) {
    auto stopping = stop_rig(&rig);
    co_await std::move(stopping);
  }
  CO_AWAIT(Status shut, cluster.close());
  EXPECT_TRUE(shut.ok()) << shut;
}

Task<void> resend_body(Cluster* c, RemoteRig* rig) {
  (void)c;
  StepRequest create;
  create.op = 77;
  create.step = 0;
  create.shard = 2;
  create.kind = StepKind::kCreateInode;
  create.inode.type = InodeType::kDirectory;
  create.inode.nlink = 2;
  CO_AWAIT(Result<StepReply> first, rig->remote->step(create));
  CO_ASSERT_OK(first);
  CO_AWAIT(Result<StepReply> again, rig->remote->step(create));
  CO_ASSERT_OK(again);
  CO_ASSERT_TRUE(first->inode.has_value() && again->inode.has_value());
  CO_ASSERT_EQ(again->inode->id, first->inode->id);
  StepRequest forget = create;
  forget.kind = StepKind::kForget;
  forget.steps = 1;
  CO_AWAIT(Result<StepReply> forgot, rig->remote->step(forget));
  CO_ASSERT_OK(forgot);
  StepRequest lost = create;
  lost.shard = kTestShards;  // no process serves it
  CO_AWAIT(Result<StepReply> nowhere, rig->remote->step(lost));
  CO_ASSERT_EQ(nowhere.status().code(), StatusCode::kUnreachable);
}

}  // namespace

MICA_CO_TEST(ShardStepsRemote, TheCoordinatorDrivesShardsOfAnotherProcess) {
  auto running = run_remote(dir, &remote_body);
  co_await std::move(running);
}

MICA_CO_TEST(ShardStepsRemote, AResentStepAnswersItsFirstReply) {
  auto running = run_remote(dir, &resend_body);
  co_await std::move(running);
}

}  // namespace mica::meta::testing
