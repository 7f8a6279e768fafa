// client_files seeds that once lost or failed acknowledged writes across a chain change
// (docs/craq.md, "Updates admitted under an older view"), pinned so the fix stays: 116 and
// 134 served a chunk as a hole from a target a resync had missed it on, 191 failed a write a
// member had answered as the tail with nothing committed. Each must pass in every build.
//
// Time cap: three seeds, about 0.4 s of CPU each in the g++ Debug build.
#include <gtest/gtest.h>

#include "tests/sim/runner.h"

namespace mica::sim {
namespace {

ScenarioResult run_client_files(uint64_t seed) {
  const Scenario* s = find_scenario("client_files");
  MICA_ASSERT(s != nullptr);
  return run_scenario(*s, seed, ScenarioOptions{});
}

TEST(ClientFilesSeeds, AWriteCommittedUnderTheOldViewReachesTheSyncingSuccessorSeed116) {
  ScenarioResult result = run_client_files(116);
  EXPECT_TRUE(result.failure.empty()) << result.failure;
}

TEST(ClientFilesSeeds, AWriteCommittedUnderTheOldViewReachesTheSyncingSuccessorSeed134) {
  ScenarioResult result = run_client_files(134);
  EXPECT_TRUE(result.failure.empty()) << result.failure;
}

TEST(ClientFilesSeeds, AForwardAppliedPendingIsNotAnsweredAsTheTailSeed191) {
  ScenarioResult result = run_client_files(191);
  EXPECT_TRUE(result.failure.empty()) << result.failure;
}

}  // namespace
}  // namespace mica::sim
