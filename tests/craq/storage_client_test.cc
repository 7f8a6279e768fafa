// StorageClient (craq/storage_client.h) against a real Mgmtd served over TCP on 127.0.0.1
// and a RoutingClient that follows it: calls give up at their deadline when nobody serves,
// and a chain that routing does not know is refused at once. Runs in about a second.
#include "craq/storage_client.h"

#include <gtest/gtest.h>

#include "tests/co_test.h"
#include "tests/craq/served_mgmtd.h"

namespace mica::craq {
namespace {

using namespace std::chrono_literals;
using testing::ServedMgmtd;

RoutingClientOptions routing_options(const ServedMgmtd& m) {
  RoutingClientOptions options;
  options.mgmtd = {m.address};
  options.poll_wait_ms = 1000;
  options.poll_slack = 500ms;
  options.backoff_initial = 10ms;
  options.backoff_max = 50ms;
  options.fetch_timeout = 1s;
  return options;
}

StorageClientOptions fast_client() {
  StorageClientOptions options;
  options.backoff_initial = 2ms;
  options.backoff_max = 20ms;
  options.attempt_timeout = 200ms;
  options.call_timeout = 5s;
  return options;
}

// Three storage nodes registered at an address nobody listens on, and one chain table.
Task<Result<std::vector<ChainId>>> nodes_nobody_serves(ServedMgmtd* m) {
  for (int i = 0; i < 3; ++i) {
    RegisterRequest request =
        testing::storage_node(fmt::format("n{}", i), {fmt::format("n{}-t", i)});
    auto registering = m->mgmtd->register_node(std::move(request), nullptr);
    CO_TRY(co_await std::move(registering));
  }
  CreateChainTableRequest table{.replica_count = 3, .seed = 1};
  auto creating = m->mgmtd->create_chain_table(std::move(table), nullptr);
  CO_TRY_ASSIGN(CreateChainTableResponse created, co_await std::move(creating));
  co_return created.table.chains;
}

MICA_CO_TEST(StorageClient, GivesUpAtTheDeadlineWhenNobodyServes) {
  ServedMgmtd m(dir.path);
  auto serving = testing::serve(&m);
  CO_ASSERT_OK(co_await std::move(serving));
  auto preparing = nodes_nobody_serves(&m);
  Result<std::vector<ChainId>> chains = co_await std::move(preparing);
  CO_ASSERT_OK(chains);
  CO_ASSERT_TRUE(!chains->empty());
  net::ConnectionPool pool(&m.transport, testing::fast_pool());
  RoutingClient routing(&pool, routing_options(m));
  routing.start();
  auto first = routing.wait_for_version(m.mgmtd->routing_version(), deadline_after(5s));
  Result<RoutingClient::SnapshotPtr> got = co_await std::move(first);
  EXPECT_TRUE(got.ok()) << got.status();
  {
    StorageClient client(&pool, &m.transport, &routing, fast_client());
    std::vector<std::byte> data(4096, std::byte{7});
    TimePoint deadline = deadline_after(300ms);
    auto writing = client.write((*chains)[0], ChunkRef{1, 0}, 0, data, 1 << 20, deadline);
    Result<ChunkState> written = co_await std::move(writing);
    TimePoint ended = Executor::current()->now();
    EXPECT_EQ(written.status().code(), StatusCode::kTimedOut) << written.status();
    EXPECT_GE(ended, deadline);
    EXPECT_LT(ended, deadline + 100ms);
    std::vector<std::byte> out(4096);
    deadline = deadline_after(300ms);
    auto reading = client.read((*chains)[0], ChunkRef{1, 0}, 0, out, deadline);
    Result<uint32_t> read = co_await std::move(reading);
    ended = Executor::current()->now();
    EXPECT_EQ(read.status().code(), StatusCode::kTimedOut) << read.status();
    EXPECT_LT(ended, deadline + 100ms);
  }
  Task<void> stopping = routing.stop();
  co_await std::move(stopping);
  Task<void> closing = pool.close();
  co_await std::move(closing);
  Task<void> unserving = testing::unserve(&m);
  co_await std::move(unserving);
}

MICA_CO_TEST(StorageClient, RefusesAChainRoutingDoesNotKnow) {
  ServedMgmtd m(dir.path);
  auto serving = testing::serve(&m);
  CO_ASSERT_OK(co_await std::move(serving));
  net::ConnectionPool pool(&m.transport, testing::fast_pool());
  RoutingClient routing(&pool, routing_options(m));
  routing.start();
  auto first = routing.wait_for_version(m.mgmtd->routing_version(), deadline_after(5s));
  Result<RoutingClient::SnapshotPtr> got = co_await std::move(first);
  EXPECT_TRUE(got.ok()) << got.status();
  {
    StorageClient client(&pool, &m.transport, &routing, fast_client());
    std::vector<std::byte> out(16);
    TimePoint started = Executor::current()->now();
    auto reading = client.read(12345, ChunkRef{1, 0}, 0, out, deadline_after(5s));
    Result<uint32_t> read = co_await std::move(reading);
    EXPECT_EQ(read.status().code(), StatusCode::kNotFound) << read.status();
    auto removing = client.remove(12345, ChunkRef{1, 0}, deadline_after(5s));
    Result<ChunkState> removed = co_await std::move(removing);
    EXPECT_EQ(removed.status().code(), StatusCode::kNotFound) << removed.status();
    // One refresh each, not the whole deadline.
    EXPECT_LT(Executor::current()->now() - started, 1s);
  }
  Task<void> stopping = routing.stop();
  co_await std::move(stopping);
  Task<void> closing = pool.close();
  co_await std::move(closing);
  Task<void> unserving = testing::unserve(&m);
  co_await std::move(unserving);
}

}  // namespace
}  // namespace mica::craq
