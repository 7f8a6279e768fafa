// The FileTable tests' harness (tests/fuse/file_table_test.cc): a Runtime of two executors,
// each with its own client::Client of one real dev cluster (tests/client/client_cluster.h),
// a FileTable over them, and a third client standing for another mount. A test body is a
// named coroutine run on executor 0; afterwards every handle is released and the clients
// closed on their executors. Blocks the calling (non-executor) test thread; suspends
// nothing of its own.
#pragma once

#include <memory>

#include "async/hop.h"
#include "async/runtime.h"
#include "client/client.h"
#include "fuse/file_table.h"
#include "tests/client/client_cluster.h"

namespace mica::testing {

struct Mount {
  fuse::FileTable* table = nullptr;
  client::Client* lane0 = nullptr;
  client::Client* lane1 = nullptr;
  client::Client* other = nullptr;  // another mount's client
  Executor* e0 = nullptr;
  Executor* e1 = nullptr;
  meta::Credentials cred;
};
using MountBody = Task<void> (*)(Mount);

inline Task<Result<std::unique_ptr<client::Client>>> connect_client(client::ClientOptions o) {
  auto connecting = client::Client::connect(std::move(o));
  co_return co_await std::move(connecting);
}

inline Task<int> close_client(client::Client* c) {
  auto closing = c->close();
  co_await std::move(closing);
  co_return 0;
}

inline Task<Status> run_mount_task(client::ClientOptions options, MountBody body, Executor* e1,
                                   fuse::FileTableOptions table_options) {
  Mount m{.e0 = Executor::current(), .e1 = e1};
  auto first = connect_client(options);
  Result<std::unique_ptr<client::Client>> c0 = co_await std::move(first);
  if (!c0.ok()) co_return c0.status();
  auto second = mica::hop(e1, connect_client(options));
  Result<std::unique_ptr<client::Client>> c1 = co_await std::move(second);
  auto third = connect_client(options);
  Result<std::unique_ptr<client::Client>> other = co_await std::move(third);
  Status status = !c1.ok() ? c1.status() : other.status();
  if (status.ok()) {
    fuse::FileTable table({{m.e0, c0->get()}, {e1, c1->get()}}, table_options);
    m.table = &table;
    m.lane0 = c0->get();
    m.lane1 = c1->get();
    m.other = other->get();
    m.cred = m.lane0->credentials({});
    auto running = body(m);
    co_await std::move(running);
    auto closing = table.close_all();
    co_await std::move(closing);
  }
  if (other.ok()) {
    auto closing = close_client(other->get());
    (void)co_await std::move(closing);
  }
  if (c1.ok()) {
    auto closing = mica::hop(e1, close_client(c1->get()));
    (void)co_await std::move(closing);
  }
  auto closing = close_client(c0->get());
  (void)co_await std::move(closing);
  co_return status;
}

inline Status run_mount(const ClientCluster& cluster, MountBody body,
                        fuse::FileTableOptions table_options = {}) {
  Runtime runtime(RuntimeOptions{.threads = 2});
  return runtime.block_on(
      run_mount_task(cluster.options(), body, &runtime.executor(1), table_options), 0);
}

}  // namespace mica::testing
