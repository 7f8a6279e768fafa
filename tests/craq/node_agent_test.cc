// NodeAgent (craq/node_agent.h) against a real Mgmtd on LMDB over TCP on 127.0.0.1: it
// registers and heartbeats, keeps its node id across an mgmtd restart, registers again when
// mgmtd has forgotten it (kNotFound), gave its id to another node (kPermissionDenied) or a
// target's disk was replaced, and hints its routing client with newer versions. Heartbeats
// every 50 ms, lease 200 ms: about 2 s.
#include "craq/node_agent.h"

#include <gtest/gtest.h>

#include "craq/routing_client.h"
#include "tests/co_test.h"
#include "tests/craq/served_mgmtd.h"

namespace mica::craq {
namespace {

using namespace std::chrono_literals;
using testing::ServedMgmtd;

// A stand-in storage node: its targets' identities and the answers it was given.
struct StandIn {
  std::vector<std::string> targets = {"disk-a", "disk-b"};
  std::vector<RegisterResponse> registered;
  std::vector<uint64_t> versions_hinted;
};

std::vector<TargetReport> reports_of(const StandIn* node) {
  std::vector<TargetReport> reports;
  for (const std::string& identity : node->targets)
    reports.push_back(testing::disk_report(identity, 0, LocalState::kOnline));
  return reports;
}

Task<Status> remember(StandIn* node, RegisterResponse response) {
  node->registered.push_back(std::move(response));
  co_return Status();
}

NodeAgentOptions agent_options(const ServedMgmtd& m, StandIn* node) {
  NodeAgentOptions options;
  options.mgmtd = {m.address};
  options.host_name = "stand-in";
  options.rpc_address = "127.0.0.1:9";
  options.identity = "node-identity-1";
  options.reports = [node] { return reports_of(node); };
  options.on_registered = [node](const RegisterResponse& r) { return remember(node, r); };
  options.on_routing_version = [node](uint64_t v) { node->versions_hinted.push_back(v); };
  options.call_timeout = 500ms;
  options.backoff_initial = 10ms;
  options.backoff_max = 50ms;
  return options;
}

// Waits (polling every 10 ms) until done() or the deadline; true when done.
template <class F>
Task<bool> eventually(F done, Duration within) {
  TimePoint deadline = deadline_after(within);
  while (!done()) {
    if (Executor::current()->now() >= deadline) co_return false;
    SleepAwaiter pause = sleep_for(10ms);
    Status paused = co_await pause;
    if (!paused.ok()) co_return false;
  }
  co_return true;
}

Task<bool> alive_on_mgmtd(ServedMgmtd* m, NodeId node) {
  auto asking = m->mgmtd->status(StatusRequest{}, nullptr);
  Result<StatusResponse> status = co_await std::move(asking);
  if (!status.ok()) co_return false;
  for (const NodeStatus& n : status->nodes)
    if (n.node == node) co_return n.alive;
  co_return false;
}

Task<void> teardown(NodeAgent* agent, net::ConnectionPool* pool, ServedMgmtd* m) {
  Task<void> stopping = agent->stop();
  co_await std::move(stopping);
  Task<void> closing = pool->close();
  co_await std::move(closing);
  Task<void> unserving = testing::unserve(m);
  co_await std::move(unserving);
}

MICA_CO_TEST(NodeAgent, RegistersAndHeartbeatsAtTheClustersInterval) {
  ServedMgmtd m(dir.path);
  auto serving = testing::serve(&m);
  CO_ASSERT_OK(co_await std::move(serving));
  net::ConnectionPool pool(&m.transport, testing::fast_pool());
  StandIn node;
  NodeAgent agent(&pool, agent_options(m, &node));
  agent.start();
  auto waiting = agent.wait_registered(deadline_after(5s));
  Status registered = co_await std::move(waiting);
  EXPECT_TRUE(registered.ok()) << registered;
  EXPECT_NE(agent.node(), 0u);
  EXPECT_EQ(agent.heartbeat_interval(), 50ms) << "the interval mgmtd's config names";
  EXPECT_EQ(node.registered.size(), 1u);
  if (!node.registered.empty()) {
    EXPECT_EQ(node.registered[0].node, agent.node());
    EXPECT_EQ(node.registered[0].targets.size(), 2u);
  }
  SleepAwaiter pause = sleep_for(400ms);  // two leases
  Status paused = co_await pause;
  EXPECT_TRUE(paused.ok());
  EXPECT_GE(agent.heartbeats(), 4u);
  EXPECT_EQ(agent.heartbeat_errors(), 0u);
  auto asking = alive_on_mgmtd(&m, agent.node());
  EXPECT_TRUE(co_await std::move(asking)) << "the heartbeats kept the lease";
  const RoutingSnapshot& routing = *m.mgmtd->routing();
  for (const auto& [identity, id] : agent.target_ids()) {
    const TargetInfo* target = find_target(routing, id);
    EXPECT_NE(target, nullptr);
    if (target != nullptr) {
      EXPECT_EQ(target->node, agent.node());
      EXPECT_EQ(target->identity, identity);
    }
  }
  EXPECT_EQ(agent.registrations(), 1u) << "a heartbeat mgmtd accepts never re-registers";
  Task<void> down = teardown(&agent, &pool, &m);
  co_await std::move(down);
}

MICA_CO_TEST(NodeAgent, SurvivesAnMgmtdRestartWithTheSameNodeId) {
  ServedMgmtd m(dir.path);
  auto serving = testing::serve(&m);
  CO_ASSERT_OK(co_await std::move(serving));
  net::ConnectionPool pool(&m.transport, testing::fast_pool());
  StandIn node;
  NodeAgent agent(&pool, agent_options(m, &node));
  agent.start();
  auto waiting = agent.wait_registered(deadline_after(5s));
  Status registered = co_await std::move(waiting);
  EXPECT_TRUE(registered.ok()) << registered;
  NodeId id = agent.node();
  std::map<std::string, TargetId> targets = agent.target_ids();
  Task<void> stopping = testing::unserve(&m);
  co_await std::move(stopping);
  uint64_t errors = agent.heartbeat_errors();
  SleepAwaiter pause = sleep_for(300ms);
  Status paused = co_await pause;
  EXPECT_TRUE(paused.ok());
  EXPECT_GT(agent.heartbeat_errors(), errors) << "heartbeats failed while mgmtd was down";
  auto reserving = testing::serve(&m);
  Status back = co_await std::move(reserving);
  EXPECT_TRUE(back.ok()) << back;
  uint64_t heartbeats = agent.heartbeats();
  auto beating = eventually([&] { return agent.heartbeats() >= heartbeats + 3; }, 5s);
  EXPECT_TRUE(co_await std::move(beating)) << "heartbeats resumed";
  EXPECT_EQ(agent.node(), id);
  EXPECT_EQ(agent.target_ids(), targets);
  if (back.ok()) {
    auto asking = alive_on_mgmtd(&m, id);
    EXPECT_TRUE(co_await std::move(asking));
    EXPECT_EQ(m.mgmtd->routing()->nodes.size(), 1u) << "no second node was made";
  }
  Task<void> down = teardown(&agent, &pool, &m);
  co_await std::move(down);
}

MICA_CO_TEST(NodeAgent, RegistersAgainWhenMgmtdHasForgottenIt) {
  ServedMgmtd m(dir.path);
  auto serving = testing::serve(&m);
  CO_ASSERT_OK(co_await std::move(serving));
  net::ConnectionPool pool(&m.transport, testing::fast_pool());
  StandIn node;
  NodeAgent agent(&pool, agent_options(m, &node));
  agent.start();
  auto waiting = agent.wait_registered(deadline_after(5s));
  Status registered = co_await std::move(waiting);
  EXPECT_TRUE(registered.ok()) << registered;
  // mgmtd comes back on an empty state (re-initialised): every heartbeat is kNotFound.
  Task<void> stopping = testing::unserve(&m);
  co_await std::move(stopping);
  m.dir = dir.file("fresh");
  std::filesystem::create_directories(m.dir);
  auto reserving = testing::serve(&m);
  Status back = co_await std::move(reserving);
  EXPECT_TRUE(back.ok()) << back;
  auto again = eventually([&] { return node.registered.size() >= 2; }, 5s);
  EXPECT_TRUE(co_await std::move(again)) << "the agent registered again";
  uint64_t heartbeats = agent.heartbeats();
  auto beating = eventually([&] { return agent.heartbeats() >= heartbeats + 2; }, 5s);
  EXPECT_TRUE(co_await std::move(beating)) << "and heartbeats under its new registration";
  if (back.ok() && node.registered.size() >= 2) {
    EXPECT_EQ(node.registered.back().node, agent.node()) << "the caller learns the new id";
    EXPECT_EQ(m.mgmtd->routing()->targets.size(), 2u);
  }
  Task<void> down = teardown(&agent, &pool, &m);
  co_await std::move(down);
}

// Old nodes A (id 1) and B (id 2); mgmtd is wiped; B registers first and is given id 1 anew,
// so A's id 1 now names another identity (kPermissionDenied): A must ask by identity too.
MICA_CO_TEST(NodeAgent, RegistersAgainWhenMgmtdGaveItsIdToAnotherNode) {
  ServedMgmtd m(dir.path);
  auto serving = testing::serve(&m);
  CO_ASSERT_OK(co_await std::move(serving));
  net::ConnectionPool pool(&m.transport, testing::fast_pool());
  StandIn a;
  StandIn b;
  b.targets = {"disk-c", "disk-d"};
  auto a_agent = std::make_unique<NodeAgent>(&pool, agent_options(m, &a));
  NodeAgentOptions b_options = agent_options(m, &b);
  b_options.identity = "node-identity-2";
  NodeAgent b_agent(&pool, b_options);
  a_agent->start();
  auto a_waiting = a_agent->wait_registered(deadline_after(5s));
  Status a_first = co_await std::move(a_waiting);
  EXPECT_TRUE(a_first.ok()) << a_first;
  b_agent.start();
  auto b_waiting = b_agent.wait_registered(deadline_after(5s));
  Status b_first = co_await std::move(b_waiting);
  EXPECT_TRUE(b_first.ok()) << b_first;
  NodeId a_old = a_agent->node();
  Task<void> a_stopping = a_agent->stop();
  co_await std::move(a_stopping);
  Task<void> unserving = testing::unserve(&m);
  co_await std::move(unserving);
  m.dir = dir.file("fresh");  // re-initialised: an empty state
  std::filesystem::create_directories(m.dir);
  auto reserving = testing::serve(&m);
  Status back = co_await std::move(reserving);
  EXPECT_TRUE(back.ok()) << back;
  auto b_again = eventually([&] { return b.registered.size() >= 2; }, 5s);
  EXPECT_TRUE(co_await std::move(b_again)) << "B registered with the new mgmtd";
  EXPECT_EQ(b_agent.node(), a_old) << "the colliding order: B now holds A's old id";
  NodeAgentOptions a_options = agent_options(m, &a);
  a_options.node = a_old;  // what A persisted
  a_agent = std::make_unique<NodeAgent>(&pool, a_options);
  a_agent->start();
  auto a_again = a_agent->wait_registered(deadline_after(5s));
  Status a_registered = co_await std::move(a_again);
  EXPECT_TRUE(a_registered.ok()) << a_registered;
  EXPECT_NE(a_agent->node(), b_agent.node());
  EXPECT_EQ(a.registered.size(), 2u);
  if (!a.registered.empty()) {
    EXPECT_EQ(a.registered.back().node, a_agent->node()) << "the caller learns the new id";
  }
  uint64_t a_beats = a_agent->heartbeats();
  uint64_t b_beats = b_agent.heartbeats();
  auto beating = eventually(
      [&] { return a_agent->heartbeats() >= a_beats + 2 && b_agent.heartbeats() >= b_beats + 2; },
      5s);
  EXPECT_TRUE(co_await std::move(beating)) << "both heartbeat under their own ids";
  EXPECT_EQ(m.mgmtd->routing()->nodes.size(), 2u);
  Task<void> b_stopping = b_agent.stop();
  co_await std::move(b_stopping);
  Task<void> down = teardown(a_agent.get(), &pool, &m);
  co_await std::move(down);
}

MICA_CO_TEST(NodeAgent, AReplacedDiskRegistersAsANewTarget) {
  ServedMgmtd m(dir.path);
  auto serving = testing::serve(&m);
  CO_ASSERT_OK(co_await std::move(serving));
  net::ConnectionPool pool(&m.transport, testing::fast_pool());
  StandIn node;
  NodeAgent agent(&pool, agent_options(m, &node));
  agent.start();
  auto waiting = agent.wait_registered(deadline_after(5s));
  Status registered = co_await std::move(waiting);
  EXPECT_TRUE(registered.ok()) << registered;
  TargetId old_b = agent.target_ids().count("disk-b") ? agent.target_ids().at("disk-b") : 0;
  node.targets[1] = "disk-b-replaced";
  auto again = eventually([&] { return node.registered.size() >= 2; }, 5s);
  EXPECT_TRUE(co_await std::move(again)) << "the agent registered the new disk";
  EXPECT_EQ(agent.node(), node.registered.front().node) << "the node keeps its id";
  EXPECT_EQ(agent.target_ids().count("disk-b-replaced"), 1u);
  if (agent.target_ids().count("disk-b-replaced")) {
    EXPECT_NE(agent.target_ids().at("disk-b-replaced"), old_b);
  }
  uint64_t heartbeats = agent.heartbeats();
  auto beating = eventually([&] { return agent.heartbeats() >= heartbeats + 2; }, 5s);
  EXPECT_TRUE(co_await std::move(beating));
  EXPECT_EQ(m.mgmtd->routing()->targets.size(), 3u) << "the old disk's target is kept";
  Task<void> down = teardown(&agent, &pool, &m);
  co_await std::move(down);
}

MICA_CO_TEST(NodeAgent, ANewerRoutingVersionInAHeartbeatReachesTheRoutingClient) {
  ServedMgmtd m(dir.path);
  auto serving = testing::serve(&m);
  CO_ASSERT_OK(co_await std::move(serving));
  net::ConnectionPool pool(&m.transport, testing::fast_pool());
  // A routing client without its poller: only the agent's hints make it fetch.
  RoutingClientOptions routing_options;
  routing_options.mgmtd = {m.address};
  RoutingClient routing(&pool, routing_options);
  StandIn node;
  NodeAgentOptions options = agent_options(m, &node);
  options.routing = &routing;
  NodeAgent agent(&pool, options);
  agent.start();
  auto waiting = agent.wait_registered(deadline_after(5s));
  Status registered = co_await std::move(waiting);
  EXPECT_TRUE(registered.ok()) << registered;
  auto registering = m.mgmtd->register_node(testing::storage_node("other", {"t"}), nullptr);
  Result<RegisterResponse> other = co_await std::move(registering);
  EXPECT_TRUE(other.ok()) << other.status();
  uint64_t version = m.mgmtd->routing_version();
  auto hinted = eventually([&] { return routing.version() >= version; }, 5s);
  EXPECT_TRUE(co_await std::move(hinted)) << "the hint made the routing client fetch";
  EXPECT_FALSE(node.versions_hinted.empty());
  if (!node.versions_hinted.empty()) {
    EXPECT_GE(node.versions_hinted.back(), version);
  }
  Task<void> routing_stopping = routing.stop();
  co_await std::move(routing_stopping);
  Task<void> down = teardown(&agent, &pool, &m);
  co_await std::move(down);
}

}  // namespace
}  // namespace mica::craq
