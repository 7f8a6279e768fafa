// Simulated storage nodes for the mgmtd tests: nodes that register, heartbeat (or go
// silent) and report their targets' states, and helpers that beat until the routing shows
// a state. One test, one executor; every helper that talks to mgmtd suspends, and every
// wait is capped at 5 s.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "async/scope.h"
#include "tests/craq/mgmtd_harness.h"

namespace mica::craq::testing {

using namespace std::chrono_literals;

// A simulated storage node: what it registered and how it reports its targets.
struct Node {
  RegisterRequest request;
  NodeId id = 0;
  std::vector<TargetId> targets;
  bool beating = true;
  LocalState local = LocalState::kUpToDate;
  // The chain version its reports name; nullopt: the chain's current one.
  std::optional<uint64_t> reported_version;
};

inline Task<Status> join(Harness* h, Node* node) {
  auto calling = register_node(h, node->request);
  CO_TRY_ASSIGN(RegisterResponse response, co_await std::move(calling));
  node->id = response.node;
  node->request.node = response.node;
  node->targets = response.targets;
  for (size_t i = 0; i < node->targets.size(); ++i)
    node->request.targets[i].target = node->targets[i];
  co_return Status();
}

// n storage nodes with `per_node` targets each, on distinct disks, all registered.
inline Task<Status> join_nodes(Harness* h, std::vector<Node>* nodes, int n, int per_node) {
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> identities;
    for (int t = 0; t < per_node; ++t) identities.push_back(fmt::format("n{}-t{}", i, t));
    Node node{.request = storage_node(fmt::format("n{}", i), identities)};
    for (int t = 0; t < per_node; ++t) node.request.targets[t].disk = fmt::format("/disk{}", t);
    nodes->push_back(std::move(node));
  }
  for (Node& node : *nodes) {
    auto joining = join(h, &node);
    CO_TRY(co_await std::move(joining));
  }
  co_return Status();
}

inline Task<Status> beat(Harness* h, const Node& node) {
  HeartbeatRequest request = heartbeat_of(*h, node.request, node.id, node.targets, node.local);
  if (node.reported_version)
    for (TargetReport& report : request.targets)
      report.reported_chain_version = *node.reported_version;
  auto calling = heartbeat(h, std::move(request));
  CO_TRY(co_await std::move(calling));
  co_return Status();
}

using Predicate = std::function<bool(const RoutingSnapshot&)>;

// Heartbeats for the beating nodes every 20 ms until `done` holds (true) or 5 s passed.
inline Task<bool> beat_until(Harness* h, std::vector<Node>* nodes, Predicate done) {
  TimePoint deadline = deadline_after(5s);
  while (Executor::current()->now() < deadline) {
    if (done(*h->mgmtd->routing())) co_return true;
    for (const Node& node : *nodes) {
      if (!node.beating) continue;
      auto beating = beat(h, node);
      Status s = co_await std::move(beating);
      EXPECT_TRUE(s.ok()) << s;
    }
    Status slept = co_await sleep_for(20ms);
    EXPECT_TRUE(slept.ok()) << slept;
  }
  co_return done(*h->mgmtd->routing());
}

// Heartbeats for the beating nodes every 20 ms for `length`.
inline Task<void> beat_for(Harness* h, std::vector<Node>* nodes, Duration length) {
  TimePoint end = deadline_after(length);
  auto beating = beat_until(
      h, nodes, [end](const RoutingSnapshot&) { return Executor::current()->now() >= end; });
  co_await std::move(beating);
}

// Heartbeats for the beating nodes every 20 ms until *done is set (by the spawner).
inline Task<void> beat_while(Harness* h, std::vector<Node>* nodes, const bool* done) {
  while (!*done) {
    for (const Node& node : *nodes) {
      if (!node.beating) continue;
      auto beating = beat(h, node);
      Status s = co_await std::move(beating);
      EXPECT_TRUE(s.ok()) << s;
    }
    Status slept = co_await sleep_for(20ms);
    if (!slept.ok()) co_return;
  }
}

// Runs `call` while the beating nodes heartbeat in the background, as real nodes do: calls
// that together take longer than the 200 ms lease on a loaded machine (ASan, parallel
// tests) then see no healthy lease lapse. `nodes` must not change until it returns.
template <class T>
Task<T> while_beating(Harness* h, std::vector<Node>* nodes, Task<T> call) {
  bool done = false;
  TaskScope beaters;
  beaters.spawn(beat_while(h, nodes, &done));
  T result = co_await std::move(call);
  done = true;
  co_await beaters.join();
  co_return result;
}

inline Task<Result<CreateChainTableResponse>> create_table(Harness* h, uint32_t replicas,
                                                           uint64_t seed = 1) {
  CreateChainTableRequest request{.replica_count = replicas, .seed = seed};
  auto calling = h->stub().create_chain_table(std::move(request));
  co_return co_await std::move(calling);
}

inline PublicState state_of(const RoutingSnapshot& routing, TargetId target) {
  const TargetInfo* info = find_target(routing, target);
  const ChainInfo* chain = info ? find_chain(routing, info->chain) : nullptr;
  if (chain == nullptr) return PublicState::kOffline;
  for (const ChainTarget& member : chain->targets)
    if (member.target == target) return member.state;
  return PublicState::kOffline;
}

inline uint64_t chain_version(const RoutingSnapshot& routing, TargetId target) {
  const TargetInfo* info = find_target(routing, target);
  const ChainInfo* chain = info ? find_chain(routing, info->chain) : nullptr;
  return chain ? chain->version : 0;
}

// Three nodes, one target each, in one chain.
inline Task<Status> one_chain(Harness* h, std::vector<Node>* nodes) {
  auto starting = testing::start(h);
  CO_TRY(co_await std::move(starting));
  auto joining = join_nodes(h, nodes, 3, 1);
  CO_TRY(co_await std::move(joining));
  auto creating = while_beating(h, nodes, create_table(h, 3));
  CO_TRY(co_await std::move(creating));
  co_return Status();
}

// Beats until target is in `state`; a failed assertion names the state it got stuck in.
inline Task<bool> reach(Harness* h, std::vector<Node>* nodes, TargetId target, PublicState state) {
  auto beating =
      beat_until(h, nodes, [=](const RoutingSnapshot& r) { return state_of(r, target) == state; });
  bool reached = co_await std::move(beating);
  EXPECT_TRUE(reached) << "target " << target << " is "
                       << public_state_name(state_of(*h->mgmtd->routing(), target)) << ", not "
                       << public_state_name(state);
  co_return reached;
}

}  // namespace mica::craq::testing
