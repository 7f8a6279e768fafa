// Leases (meta/lease.h) in the simulator: on one simulated host, a shard on the simulated
// store, a client that renews every 3 s and one that never does, with 10 s leases checked
// every second — all in virtual time (a 30 s run takes milliseconds). The silent client's
// session ends between 10 and 11 s after its open, the renewing one's never; a few seeds.
#include <gtest/gtest.h>

#include "async/sim/world.h"
#include "async/wait_list.h"
#include "meta/lease.h"
#include "tests/meta/session_helpers.h"

namespace mica::meta {
namespace {

using namespace std::chrono_literals;
constexpr const char* kSimDir = "/meta/shard0";

struct SimOutcome {
  Status status;
  Duration silent_ended_after{0};  // from the open to the lease table letting go of client 2
  bool kept_closed = false;        // the renewing client's close succeeded
};

Task<Status> lease_run(Shard* shard, LeaseTable* leases, SimOutcome* outcome) {
  auto making = testing::make_file(shard, "f", 0644);
  CO_TRY_ASSIGN(Inode file, co_await std::move(making));
  auto opening_kept = testing::open_file(shard, file.id, testing::user(testing::kOwner),
                                         OpenFlags{.read = true}, 1);
  CO_TRY_ASSIGN(OpenReply kept, co_await std::move(opening_kept));
  TimePoint opened = Executor::current()->now();
  auto opening_silent = testing::open_file(shard, file.id, testing::user(testing::kOwner),
                                           OpenFlags{.read = true}, 2);
  CO_TRY(co_await std::move(opening_silent));
  TimePoint next_renewal = opened;
  while (Executor::current()->now() - opened < 30s) {
    if (Executor::current()->now() >= next_renewal) {
      CO_TRY(leases->renew(1));
      next_renewal += 3s;
    }
    if (outcome->silent_ended_after == Duration(0) && !leases->holds(2)) {
      outcome->silent_ended_after = Executor::current()->now() - opened;
    }
    CO_TRY(co_await sleep_for(100ms));
  }
  auto closing = testing::close_file(shard, file.id, kept.session, 0, 0, 1);
  Result<InodeReply> closed = co_await std::move(closing);
  outcome->kept_closed = closed.ok();
  co_return Status();
}

Task<void> lease_sim_body(SimOutcome* outcome) {
  ShardOptions options;
  options.dir = kSimDir;
  options.env.map_size_bytes = uint64_t{1} << 26;
  LeaseTable leases(LeaseOptions{.lease_ms = 10000, .check_interval_ms = 1000});
  options.leases = &leases;
  auto opening = Shard::open(std::move(options));
  Result<std::unique_ptr<Shard>> shard = co_await std::move(opening);
  if (!shard.ok()) {
    outcome->status = shard.status();
    co_return;
  }
  leases.add_shard(shard->get(), Executor::current());
  auto starting = leases.start();
  outcome->status = co_await std::move(starting);
  if (outcome->status.ok()) {
    auto running = lease_run(shard->get(), &leases, outcome);
    outcome->status = co_await std::move(running);
  }
  auto stopping = leases.stop();
  co_await std::move(stopping);
  auto closing = (*shard)->close();
  Status closed = co_await std::move(closing);
  if (outcome->status.ok()) outcome->status = closed;
}

TEST(LeasesSim, ALapsedLeaseEndsItsSessionsInVirtualTime) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    sim::SimWorld world(seed);
    sim::SimHost& host = world.add_host("meta");
    host.disk().make_durable_directories(kSimDir);
    SimOutcome outcome;
    world.run(host, lease_sim_body(&outcome));
    EXPECT_TRUE(outcome.status.ok()) << "seed " << seed << ": " << outcome.status;
    EXPECT_GE(outcome.silent_ended_after, 10s) << "seed " << seed;
    EXPECT_LE(outcome.silent_ended_after, 11500ms) << "seed " << seed;
    EXPECT_TRUE(outcome.kept_closed) << "seed " << seed;
  }
}

}  // namespace
}  // namespace mica::meta
