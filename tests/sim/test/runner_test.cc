// The sweep runner: seed ranges, failing and crashing seeds, replay commands, sweep checks.
//
// The scenarios here are built in the test (not registered), so mica-sim never lists them.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "tests/sim/runner.h"

namespace mica::sim {
namespace {

// Fails its checks on multiples of 7; counts one "ran" per seed.
ScenarioResult every_seventh_fails(uint64_t seed, ScenarioOptions) {
  ScenarioResult r;
  r.counters["ran"] = 1;
  r.trace_hash = seed * 3;
  if (seed % 7 == 0) r.fail("seed is a multiple\nof seven");
  return r;
}

// Aborts the process on seeds 5 and 12, as a broken invariant in the simulation would.
ScenarioResult aborts_on_five_and_twelve(uint64_t seed, ScenarioOptions) {
  if (seed == 5 || seed == 12) {
    std::fprintf(stderr, "about to abort on seed %llu\n", static_cast<unsigned long long>(seed));
    std::abort();
  }
  ScenarioResult r;
  r.counters["ran"] = 1;
  return r;
}

ScenarioResult hangs_on_three(uint64_t seed, ScenarioOptions) {
  if (seed == 3) std::this_thread::sleep_for(std::chrono::seconds(30));
  return ScenarioResult{};
}

std::string at_most_ten_runs(const ScenarioCounters& totals, uint64_t) {
  auto it = totals.find("ran");
  uint64_t ran = it == totals.end() ? 0 : it->second;
  return ran <= 10 ? "" : "ran " + std::to_string(ran) + " seeds, more than ten";
}

// Runs a sweep with its output captured; returns the report and sets *text.
SweepReport sweep_capturing(const Scenario& scenario, SweepOptions options, std::string* text) {
  FILE* out = std::tmpfile();
  options.out = out;
  SweepReport report = run_sweep(scenario, options);
  std::rewind(out);
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, out)) > 0;) text->append(buffer, n);
  std::fclose(out);
  return report;
}

TEST(SimRunner, SeedRangeParsesOneSeedOrAnInclusiveRange) {
  auto one = parse_seed_range("17");
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->first, 17u);
  EXPECT_EQ(one->count(), 1u);
  auto range = parse_seed_range("1-10000");
  ASSERT_TRUE(range.has_value());
  EXPECT_EQ(range->first, 1u);
  EXPECT_EQ(range->last, 10000u);
  EXPECT_EQ(range->count(), 10000u);
  EXPECT_FALSE(parse_seed_range("").has_value());
  EXPECT_FALSE(parse_seed_range("9-3").has_value());
  EXPECT_FALSE(parse_seed_range("1-").has_value());
  EXPECT_FALSE(parse_seed_range("x").has_value());
}

TEST(SimRunner, SweepSeedsComeFromTheEnvironmentOrTheDefault) {
  const char* saved = std::getenv("MICA_SIM_SEEDS");
  std::string saved_value = saved ? saved : "";
  unsetenv("MICA_SIM_SEEDS");
  EXPECT_EQ(sweep_seeds(1000).last, 1000u);
  setenv("MICA_SIM_SEEDS", "100000", 1);
  EXPECT_EQ(sweep_seeds(1000).first, 1u);
  EXPECT_EQ(sweep_seeds(1000).last, 100000u);
  setenv("MICA_SIM_SEEDS", "500-600", 1);
  EXPECT_EQ(sweep_seeds(1000).first, 500u);
  EXPECT_EQ(sweep_seeds(1000).last, 600u);
  if (saved)
    setenv("MICA_SIM_SEEDS", saved_value.c_str(), 1);
  else
    unsetenv("MICA_SIM_SEEDS");
}

TEST(SimRunner, EveryFailingSeedIsPrintedWithTheCommandThatReplaysIt) {
  Scenario scenario{.name = "selftest_checks", .run = every_seventh_fails};
  SweepOptions options{.seeds = {1, 50}, .jobs = 2, .batch_seeds = 4};
  std::string text;
  SweepReport report = sweep_capturing(scenario, options, &text);
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.seeds_run, 50u);
  EXPECT_EQ(report.totals["ran"], 50u);
  ASSERT_EQ(report.failures.size(), 7u);
  for (size_t i = 0; i < report.failures.size(); ++i) {
    EXPECT_EQ(report.failures[i].seed, 7 * (i + 1));
    EXPECT_FALSE(report.failures[i].crashed);
    EXPECT_EQ(report.failures[i].why, "seed is a multiple of seven");
  }
  EXPECT_NE(text.find("FAIL selftest_checks seed 49: seed is a multiple of seven"), text.npos);
  EXPECT_NE(text.find("replay: mica-sim --scenario selftest_checks --seed 14 --trace"), text.npos)
      << text;
  EXPECT_NE(text.find("seeds/s"), text.npos) << text;
}

TEST(SimRunner, CrashingSeedIsIsolatedReportedAndTheRestOfItsBatchStillRuns) {
  Scenario scenario{.name = "selftest_aborts", .run = aborts_on_five_and_twelve};
  SweepOptions options{.seeds = {1, 20}, .jobs = 2, .batch_seeds = 10};
  std::string text;
  SweepReport report = sweep_capturing(scenario, options, &text);
  EXPECT_EQ(report.seeds_run, 20u);
  EXPECT_EQ(report.totals["ran"], 18u);  // every seed but the two that crashed
  ASSERT_EQ(report.failures.size(), 2u);
  EXPECT_EQ(report.failures[0].seed, 5u);
  EXPECT_EQ(report.failures[1].seed, 12u);
  EXPECT_TRUE(report.failures[0].crashed);
  EXPECT_NE(report.failures[0].why.find("signal"), std::string::npos) << report.failures[0].why;
  // What the seed printed before dying is attached to it, and only to it.
  EXPECT_NE(report.failures[0].output.find("about to abort on seed 5"), std::string::npos);
  EXPECT_EQ(report.failures[0].output.find("seed 12"), std::string::npos);
  EXPECT_NE(text.find("replay: mica-sim --scenario selftest_aborts --seed 12 --trace"), text.npos)
      << text;
}

// Costs one second of wall time: the per-seed timeout is one second.
TEST(SimRunner, HungSeedIsKilledAfterItsWallClockTimeoutAndReported) {
  Scenario scenario{.name = "selftest_hangs", .run = hangs_on_three};
  SweepOptions options{.seeds = {1, 6}, .jobs = 1, .batch_seeds = 6, .seed_timeout_s = 1};
  std::string text;
  SweepReport report = sweep_capturing(scenario, options, &text);
  EXPECT_EQ(report.seeds_run, 6u);
  ASSERT_EQ(report.failures.size(), 1u);
  EXPECT_EQ(report.failures[0].seed, 3u);
  EXPECT_NE(report.failures[0].why.find("hung"), std::string::npos) << report.failures[0].why;
}

TEST(SimRunner, SweepCheckSeesCountersSummedOverAllSeedsAndItsVerdictFailsTheSweep) {
  Scenario scenario{
      .name = "selftest_sweep_check", .run = every_seventh_fails, .check_sweep = at_most_ten_runs};
  std::string text;
  SweepReport small = sweep_capturing(scenario, SweepOptions{.seeds = {1, 6}, .jobs = 2}, &text);
  EXPECT_TRUE(small.ok()) << text;
  SweepReport large = sweep_capturing(scenario, SweepOptions{.seeds = {1, 13}, .jobs = 2}, &text);
  EXPECT_EQ(large.sweep_failure, "ran 13 seeds, more than ten");
  EXPECT_FALSE(large.ok());
  EXPECT_NE(text.find("FAIL selftest_sweep_check sweep check: ran 13 seeds"), text.npos) << text;
}

}  // namespace
}  // namespace mica::sim
