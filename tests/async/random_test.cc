// The runtime's random source (Backend::random_u64): the kernel's on io_uring, the world's
// seed in the simulator.
#include <gtest/gtest.h>

#include <vector>

#include "async/executor.h"
#include "async/sim/world.h"

namespace mica {
namespace {

constexpr int kDraws = 8;

Task<std::vector<uint64_t>> draw() {
  std::vector<uint64_t> values;
  for (int i = 0; i < kDraws; ++i) values.push_back(Executor::current()->backend().random_u64());
  co_return values;
}

std::vector<uint64_t> draw_on_uring() {
  auto executor = Executor::create_uring();
  return executor->block_on(draw());
}

std::vector<uint64_t> draw_in_simulation(uint64_t seed) {
  sim::SimWorld world(seed);
  sim::SimHost& host = world.add_host("node");
  return world.run(host, draw());
}

TEST(Random, UringBackendNeverRepeatsAcrossExecutors) {
  std::vector<uint64_t> a = draw_on_uring();
  std::vector<uint64_t> b = draw_on_uring();
  EXPECT_NE(a, b);
  EXPECT_NE(a[0], a[1]);
}

TEST(Random, SimulationReplaysFromItsSeed) {
  EXPECT_EQ(draw_in_simulation(5), draw_in_simulation(5));
  EXPECT_NE(draw_in_simulation(5), draw_in_simulation(6));
}

}  // namespace
}  // namespace mica
