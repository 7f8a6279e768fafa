// RoutingClient (craq/routing_client.h) against a real Mgmtd on LMDB over TCP on 127.0.0.1:
// it gets the first snapshot and every newer one, keeps the last one while mgmtd is down and
// catches up once it is back, and refresh() shares one fetch among concurrent callers.
// Intervals are short; the file runs in about a second.
#include "craq/routing_client.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "async/scope.h"
#include "tests/co_test.h"
#include "tests/craq/served_mgmtd.h"

namespace mica::craq {
namespace {

using namespace std::chrono_literals;
using testing::ServedMgmtd;
using testing::storage_node;

RoutingClientOptions client_options(const ServedMgmtd& m) {
  RoutingClientOptions options;
  options.mgmtd = {m.address};
  options.poll_wait_ms = 1000;
  options.poll_slack = 500ms;
  options.backoff_initial = 10ms;
  options.backoff_max = 50ms;
  return options;
}

// A change on mgmtd: registering a node bumps the routing version.
Task<Result<uint64_t>> add_node(ServedMgmtd* m, std::string name) {
  auto registering = m->mgmtd->register_node(storage_node(name, {name + "-t1"}), nullptr);
  CO_TRY(co_await std::move(registering));
  co_return m->mgmtd->routing_version();
}

MICA_CO_TEST(RoutingClient, GetsTheFirstSnapshotAndEveryNewerOne) {
  ServedMgmtd m(dir.path);
  auto serving = testing::serve(&m);
  CO_ASSERT_OK(co_await std::move(serving));
  net::ConnectionPool pool(&m.transport, testing::fast_pool());
  std::vector<uint64_t> seen;
  RoutingClientOptions options = client_options(m);
  options.on_update = [&seen](const RoutingClient::SnapshotPtr& s) { seen.push_back(s->version); };
  RoutingClient client(&pool, options);
  EXPECT_EQ(client.current(), nullptr);
  client.start();
  auto first_wait = client.wait_for_version(m.mgmtd->routing_version(), deadline_after(5s));
  Result<RoutingClient::SnapshotPtr> first = co_await std::move(first_wait);
  EXPECT_TRUE(first.ok()) << first.status();
  std::vector<uint64_t> expected = {m.mgmtd->routing_version()};
  for (int i = 0; i < 3 && first.ok(); ++i) {
    auto adding = add_node(&m, "node-" + std::to_string(i));
    Result<uint64_t> version = co_await std::move(adding);
    EXPECT_TRUE(version.ok()) << version.status();
    if (!version.ok()) break;
    expected.push_back(*version);
    auto waiting = client.wait_for_version(*version, deadline_after(5s));
    Result<RoutingClient::SnapshotPtr> got = co_await std::move(waiting);
    EXPECT_TRUE(got.ok()) << got.status();
    if (got.ok()) {
      EXPECT_EQ((*got)->nodes.size(), size_t(i + 1));
    }
  }
  // Every version waited for was swapped in, in order (a round of mgmtd's own may add one
  // between them).
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()) &&
              std::adjacent_find(seen.begin(), seen.end()) == seen.end());
  for (uint64_t version : expected) {
    EXPECT_NE(std::find(seen.begin(), seen.end(), version), seen.end()) << version;
  }
  EXPECT_EQ(client.version(), m.mgmtd->routing_version());
  EXPECT_EQ(*client.current(), *m.mgmtd->routing());
  Task<void> stopping = client.stop();
  co_await std::move(stopping);
  Task<void> closing = pool.close();
  co_await std::move(closing);
  Task<void> unserving = testing::unserve(&m);
  co_await std::move(unserving);
}

MICA_CO_TEST(RoutingClient, KeepsTheLastSnapshotWhileMgmtdIsDownAndCatchesUpAfter) {
  ServedMgmtd m(dir.path);
  auto serving = testing::serve(&m);
  CO_ASSERT_OK(co_await std::move(serving));
  net::ConnectionPool pool(&m.transport, testing::fast_pool());
  RoutingClient client(&pool, client_options(m));
  client.start();
  auto adding = add_node(&m, "before");
  Result<uint64_t> before = co_await std::move(adding);
  EXPECT_TRUE(before.ok());
  auto waiting = client.wait_for_version(before.ok() ? *before : 1, deadline_after(5s));
  Result<RoutingClient::SnapshotPtr> held = co_await std::move(waiting);
  EXPECT_TRUE(held.ok()) << held.status();
  Task<void> down = testing::unserve(&m);
  co_await std::move(down);
  uint64_t errors_before = client.fetch_errors();
  SleepAwaiter pause = sleep_for(300ms);
  Status slept = co_await pause;
  EXPECT_TRUE(slept.ok());
  EXPECT_GT(client.fetch_errors(), errors_before) << "the poller kept trying";
  EXPECT_NE(client.current(), nullptr);
  if (held.ok()) {
    EXPECT_EQ(client.current(), *held) << "the last snapshot is still served";
  }
  // A refresh while mgmtd is down fails at its deadline and keeps the snapshot too.
  auto refreshing = client.refresh(client.version() + 1, deadline_after(100ms));
  Result<RoutingClient::SnapshotPtr> refreshed = co_await std::move(refreshing);
  EXPECT_FALSE(refreshed.ok());
  if (held.ok()) {
    EXPECT_EQ(client.current(), *held);
  }
  auto reserving = testing::serve(&m);
  Status back = co_await std::move(reserving);
  EXPECT_TRUE(back.ok()) << back;
  if (back.ok()) {
    auto adding_after = add_node(&m, "after");
    Result<uint64_t> after = co_await std::move(adding_after);
    EXPECT_TRUE(after.ok());
    auto catching_up = client.wait_for_version(after.ok() ? *after : 1, deadline_after(5s));
    Result<RoutingClient::SnapshotPtr> caught = co_await std::move(catching_up);
    EXPECT_TRUE(caught.ok()) << caught.status();
    if (caught.ok()) {
      EXPECT_EQ((*caught)->nodes.size(), 2u);
    }
  }
  Task<void> stopping = client.stop();
  co_await std::move(stopping);
  Task<void> closing = pool.close();
  co_await std::move(closing);
  Task<void> unserving = testing::unserve(&m);
  co_await std::move(unserving);
}

Task<Result<RoutingClient::SnapshotPtr>> refresh_now(RoutingClient* client, uint64_t at_least) {
  auto refreshing = client->refresh(at_least, deadline_after(5s));
  co_return co_await std::move(refreshing);
}

MICA_CO_TEST(RoutingClient, ConcurrentRefreshesShareOneFetch) {
  ServedMgmtd m(dir.path);
  auto serving = testing::serve(&m);
  CO_ASSERT_OK(co_await std::move(serving));
  net::ConnectionPool pool(&m.transport, testing::fast_pool());
  // No poller: every fetch is a refresh's.
  RoutingClient client(&pool, client_options(m));
  std::vector<Task<Result<RoutingClient::SnapshotPtr>>> callers;
  for (int i = 0; i < 8; ++i) callers.push_back(refresh_now(&client, 0));
  auto all = when_all(std::move(callers));
  std::vector<Result<RoutingClient::SnapshotPtr>> got = co_await std::move(all);
  EXPECT_EQ(client.fetches(), 1u);
  for (const auto& one : got) {
    EXPECT_TRUE(one.ok()) << one.status();
    if (one.ok()) {
      EXPECT_EQ(*one, client.current()) << "every caller got the one snapshot";
    }
  }
  // A caller that met a newer version than the one held fetches again; one that met an
  // older or equal one does not.
  uint64_t fetches = client.fetches();
  auto held_refresh = refresh_now(&client, client.version());
  Result<RoutingClient::SnapshotPtr> held = co_await std::move(held_refresh);
  EXPECT_TRUE(held.ok());
  EXPECT_EQ(client.fetches(), fetches);
  auto adding = add_node(&m, "newer");
  Result<uint64_t> newer = co_await std::move(adding);
  EXPECT_TRUE(newer.ok());
  auto newer_refresh = refresh_now(&client, newer.ok() ? *newer : 1);
  Result<RoutingClient::SnapshotPtr> fresh = co_await std::move(newer_refresh);
  EXPECT_TRUE(fresh.ok()) << fresh.status();
  if (fresh.ok() && newer.ok()) {
    EXPECT_EQ((*fresh)->version, *newer);
  }
  EXPECT_EQ(client.fetches(), fetches + 1);
  Task<void> stopping = client.stop();
  co_await std::move(stopping);
  Task<void> closing = pool.close();
  co_await std::move(closing);
  Task<void> unserving = testing::unserve(&m);
  co_await std::move(unserving);
}

}  // namespace
}  // namespace mica::craq
