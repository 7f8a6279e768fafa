// SimChunk.PowerLossKeepsAcknowledgedWrites: the chunk_power_loss scenario (tests/sim/
// chunk_power_loss.cc) swept over many seeds — the real chunk engine on the simulated disk
// loses power at seeded moments, and every acknowledged write reads back byte-exact after
// each restart, with fsck clean. It prints, over all seeds, the writes acknowledged before a
// crash and the unacknowledged writes really lost, and fails if either is zero.
//
// Seeds: MICA_SIM_SEEDS when set; else 2,000 in an optimised build, 1,000 in a Debug build
// and 300 under a sanitizer. Time cap: a Debug build runs about 500 seeds/s on two cores, so
// each default takes a few seconds; the cap is a minute.
#include <gtest/gtest.h>

#include "tests/sim/runner.h"

namespace mica::sim {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kDefaultSeeds = 300;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr uint64_t kDefaultSeeds = 300;
#elif defined(NDEBUG)
constexpr uint64_t kDefaultSeeds = 2000;
#else
constexpr uint64_t kDefaultSeeds = 1000;
#endif
#elif defined(NDEBUG)
constexpr uint64_t kDefaultSeeds = 2000;
#else
constexpr uint64_t kDefaultSeeds = 1000;
#endif

uint64_t total(const SweepReport& report, const char* name) {
  auto it = report.totals.find(name);
  return it == report.totals.end() ? 0 : it->second;
}

TEST(SimChunk, PowerLossKeepsAcknowledgedWrites) {
  const Scenario* scenario = find_scenario("chunk_power_loss");
  ASSERT_NE(scenario, nullptr);
  SweepOptions options;
  options.seeds = sweep_seeds(kDefaultSeeds);
  options.jobs = 2;
  SweepReport report = run_sweep(*scenario, options);
  uint64_t acked = total(report, "acked_before_crash");
  uint64_t lost = total(report, "unacked_lost");
  uint64_t survived = total(report, "unacked_survived");
  std::printf(
      "SimChunk: %llu seeds, %llu writes acknowledged before a crash, %llu "
      "unacknowledged writes lost, %llu unacknowledged writes survived; %.1f seeds/s\n",
      (unsigned long long)report.seeds_run, (unsigned long long)acked, (unsigned long long)lost,
      (unsigned long long)survived, report.seeds_per_second());
  EXPECT_EQ(report.seeds_run, options.seeds.count());
  EXPECT_TRUE(report.failures.empty())
      << report.failures.size() << " failing seed(s), first " << report.failures.front().seed
      << ": " << report.failures.front().why;
  EXPECT_GT(acked, 0u) << "no write was acknowledged before a crash";
  EXPECT_GT(lost, 0u) << "no crash hit a write in flight";
  EXPECT_TRUE(report.sweep_failure.empty()) << report.sweep_failure;
  RecordProperty("seeds_per_second", std::to_string(int64_t(report.seeds_per_second())));
}

}  // namespace
}  // namespace mica::sim
