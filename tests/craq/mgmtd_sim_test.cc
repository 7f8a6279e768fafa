// mgmtd on the simulator's kv store (kv/sim_store.h): the host loses power while mgmtd runs
// rounds, and the restarted mgmtd resumes with at least every version it had published and
// the same nodes, targets and chains (craq/mgmtd.h "durable before published"). Every
// publication and every write's start is recorded from inside mgmtd (MgmtdOptions hooks),
// and some crashes must land while a write is in flight. Handlers are called directly (no
// network). 200 seeds, each well under a second of virtual time: about 0.1 s of real time
// in all (Debug).
#include <gtest/gtest.h>

#include <functional>

#include "async/sim/world.h"
#include "craq/mgmtd.h"
#include "tests/craq/mgmtd_harness.h"

namespace mica::craq {
namespace {

using namespace std::chrono_literals;
constexpr const char* kDir = "/mgmtd";

struct Progress {
  uint64_t published = 0;   // the last routing version mgmtd published (from its hook)
  RoutingSnapshot routing;  // as published then
  uint64_t writing = 0;     // the version of the last write started (from its hook)
  std::function<void(uint64_t version)> on_write;  // the test's, at every write's start
  std::vector<NodeId> nodes;
  std::vector<TargetId> targets;
  bool finished = false;
};

kv::EnvOptions sim_env() {
  return kv::EnvOptions{.implementation = kv::Implementation::kSim};
}

Task<Status> start_cluster(Mgmtd* mgmtd, Progress* progress) {
  for (int i = 0; i < 3; ++i) {
    RegisterRequest request = testing::storage_node(fmt::format("n{}", i), {fmt::format("t{}", i)});
    auto calling = mgmtd->register_node(std::move(request), nullptr);
    CO_TRY_ASSIGN(RegisterResponse response, co_await std::move(calling));
    progress->nodes.push_back(response.node);
    progress->targets.push_back(response.targets[0]);
  }
  CreateChainTableRequest table{.replica_count = 3, .seed = 7};
  auto creating = mgmtd->create_chain_table(std::move(table), nullptr);
  CO_TRY(co_await std::move(creating));
  co_return Status();
}

// Runs mgmtd with nodes 0 and 1 heartbeating and node 2 silent, until the host crashes.
Task<void> run_mgmtd(Progress* progress) {
  auto opening = kv::Env::open(kDir, sim_env());
  auto env = co_await std::move(opening);
  EXPECT_TRUE(env.ok()) << env.status();
  if (!env.ok()) co_return;
  MgmtdOptions options = testing::fast_options();
  options.on_write_start = [progress](uint64_t version) {
    progress->writing = version;
    if (progress->on_write) progress->on_write(version);
  };
  options.on_publish = [progress](const RoutingSnapshot& routing) {
    EXPECT_GE(routing.version, progress->published);  // open() publishes its first again
    progress->published = routing.version;
    progress->routing = routing;
  };
  auto loading = Mgmtd::open(env->get(), std::move(options));
  auto mgmtd = co_await std::move(loading);
  EXPECT_TRUE(mgmtd.ok()) << mgmtd.status();
  if (mgmtd.ok()) {
    (*mgmtd)->start();
    auto starting = start_cluster(mgmtd->get(), progress);
    Status started = co_await std::move(starting);
    EXPECT_TRUE(started.ok()) << started;
    while (started.ok()) {
      for (int i = 0; i < 2; ++i) {
        HeartbeatRequest beat{.node = progress->nodes[i], .identity = fmt::format("n{}", i)};
        beat.targets.push_back(testing::disk_report(fmt::format("t{}", i), progress->targets[i]));
        beat.targets.back().reported_chain_version = 1;
        auto beating = (*mgmtd)->heartbeat(std::move(beat), nullptr);
        Result<HeartbeatResponse> answered = co_await std::move(beating);
        (void)answered;
      }
      Status slept = co_await sleep_for(20ms);
      if (!slept.ok()) break;  // the crash
    }
    auto stopping = (*mgmtd)->stop();
    co_await std::move(stopping);
  }
  auto closing = (*env)->close();
  Status closed = co_await std::move(closing);
  (void)closed;  // after a crash the close fails too
  progress->finished = true;
}

Task<void> check_reopened(Progress* progress) {
  auto opening = kv::Env::open(kDir, sim_env());
  auto env = co_await std::move(opening);
  EXPECT_TRUE(env.ok()) << env.status();
  if (!env.ok()) co_return;
  auto loading = Mgmtd::open(env->get(), testing::fast_options());
  auto mgmtd = co_await std::move(loading);
  EXPECT_TRUE(mgmtd.ok()) << mgmtd.status();
  if (mgmtd.ok()) {
    const RoutingSnapshot& routing = *(*mgmtd)->routing();
    EXPECT_GE(routing.version, progress->published);
    EXPECT_EQ(routing.nodes, progress->routing.nodes);
    EXPECT_EQ(routing.tables, progress->routing.tables);
    EXPECT_EQ(routing.chains.size(), 1u);
    if (routing.chains.size() == 1 && progress->routing.chains.size() == 1) {
      // What was published, or one decision beyond it that was durable but unanswered.
      uint64_t published_chain = progress->routing.chains[0].version;
      EXPECT_GE(routing.chains[0].version, published_chain);
      EXPECT_LE(routing.chains[0].version, published_chain + 1);
    }
    if (routing.version == progress->published) {
      EXPECT_EQ(routing, progress->routing);
    }
    // Beyond what was published, only the write in flight at the crash.
    if (routing.version > progress->published) {
      EXPECT_EQ(routing.version, progress->published + 1);
      EXPECT_EQ(routing.version, progress->writing);
    }
    auto stopping = (*mgmtd)->stop();
    co_await std::move(stopping);
  }
  auto closing = (*env)->close();
  Status closed = co_await std::move(closing);
  EXPECT_TRUE(closed.ok()) << closed;
}

// The first write after the setup (config, three registrations, the table): the round that
// takes the silent node's target offline.
constexpr uint64_t kRoundVersion = 6;

TEST(MgmtdSim, APowerLossKeepsEveryPublishedDecision) {
  int in_flight = 0;  // crashes between a write's start and its publication
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    sim::SimWorld world(sim::sim_seed(seed));
    sim::SimHost& host = world.add_host("mgmtd");
    host.disk().make_durable_directories(kDir);
    Progress progress;
    bool crashed = false;
    bool writing = false;  // a write was in flight at the crash
    auto crash = [&] {
      writing = progress.writing > progress.published;
      crashed = true;
      world.crash(host);
    };
    if (seed % 2 == 0) {
      // Even seeds: a seed-dependent microsecond after the round's write started.
      progress.on_write = [&, seed](uint64_t version) {
        if (version != kRoundVersion) return;
        world.schedule(std::chrono::microseconds((seed * 7919) % 100), crash);
      };
    }
    world.spawn(host, run_mgmtd(&progress));
    // Odd seeds: around the silent node's lease expiry (200 ms after the start at 1 s of
    // virtual time), at a seed-dependent microsecond.
    world.run_for(std::chrono::microseconds(150'000 + (seed * 7919) % 150'000));
    if (!crashed) crash();
    world.run_for(std::chrono::milliseconds(1));  // the crashed host's tasks end
    EXPECT_TRUE(progress.finished) << "seed " << seed;
    in_flight += writing ? 1 : 0;
    world.restart(host, {});
    world.run(host, check_reopened(&progress));
    if (HasFailure()) {
      ADD_FAILURE() << "seed " << seed;
      break;
    }
  }
  // Otherwise the sweep tests nothing about "durable before published".
  EXPECT_GT(in_flight, 0);
}

}  // namespace
}  // namespace mica::craq
