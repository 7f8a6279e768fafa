// The model-based test of the metadata service: each seed's random operation sequence
// (tests/meta/model_ops.h: four users, root among them, a small name space so collisions
// and errors are frequent) runs against a MetaServer serving 3 shards and the coordinator
// in this process (meta/meta_server.h, called directly: tests/meta/model_service.h) and
// against the reference model (tests/meta/posix_model.h, itself checked against Linux by
// model_kernel_test.cc); after every step the answers and the whole tree (attributes,
// nlink, hard-link groups, symlink targets, xattrs, listings) must be equal.
//
// The shards are real LMDB environments in a tmpfs folder (/dev/shm when present): their
// commits are what runs, without the disk's fsync, which would make 1,000 seeds take
// minutes (measured: about 4 ms a commit on the build disk, 0.1 ms on tmpfs). Seeds:
// MICA_META_MODEL_SEEDS (default 1,000 optimised, 100 otherwise), steps per seed
// MICA_META_MODEL_STEPS (default 80); MICA_META_MODEL_SEED=N runs seed N alone. Time cap:
// about 30 s for the Debug default.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "async/file.h"
#include "meta/meta_server.h"
#include "tests/co_test.h"
#include "tests/meta/model_ops.h"
#include "tests/meta/model_service.h"
#include "tests/meta/ops_test_util.h"
#include "tests/meta/posix_model.h"
#include "tests/temp_dir.h"

namespace mica::meta::model {
namespace {

constexpr uint32_t kShards = 3;

uint32_t knob(const char* name, uint32_t optimised, uint32_t otherwise) {
  if (const char* value = std::getenv(name)) return static_cast<uint32_t>(std::stoul(value));
#ifdef NDEBUG
  (void)otherwise;
  return optimised;
#else
  (void)optimised;
  return otherwise;
#endif
}

uint32_t root_mode_for(uint64_t seed) {
  constexpr uint32_t kRootModes[] = {0777, 01777, 0775, 02777};
  return kRootModes[seed % 4];
}

struct SweepStats {
  uint64_t steps = 0;
  uint64_t skipped = 0;  // directory operations answered kNotSupported (no coordinator)
  uint64_t failures = 0;
};

MetaServerOptions server_options(const std::string& dir, uint64_t seed) {
  MetaServerOptions options;
  for (ShardId shard = 0; shard < kShards; ++shard) {
    std::string shard_dir = fmt::format("{}/shard-{}", dir, shard);
    std::filesystem::create_directories(shard_dir);
    ShardOptions shard_options;
    shard_options.shard = shard;
    shard_options.dir = shard_dir;
    shard_options.env.map_size_bytes = uint64_t{1} << 26;
    options.shards.push_back(shard_options);
  }
  options.shard_count = kShards;
  options.placement_seed = seed;
  options.coordinator_dir = dir + "/coordinator";
  std::filesystem::create_directories(options.coordinator_dir);
  options.coordinator_env.map_size_bytes = uint64_t{1} << 26;
  return options;
}

bool is_coordinator_op(const Op& op) {
  return op.kind == OpKind::kMkdir || op.kind == OpKind::kRmdir ||
         op.kind == OpKind::kRename || op.kind == OpKind::kLink;
}

// One seed: the first difference fails the test with the seed, the step and the history.
Task<void> run_seed(uint64_t seed, uint32_t steps, std::string dir, SweepStats* stats) {
  MetaServerOptions options = server_options(dir, seed);
  auto opening = MetaServer::open_server(std::move(options), nullptr, nullptr);
  Result<std::unique_ptr<MetaServer>> opened = co_await std::move(opening);
  CO_ASSERT_OK(opened);
  MetaServer* server = opened->get();
  server->apply_routing(
      std::make_shared<const craq::RoutingSnapshot>(testing::one_table_routing()));
  bool coordinated = server->coordinator() != nullptr;
  ServiceDriver driver(server);
  uint32_t root_mode = root_mode_for(seed);
  auto setting = driver.set_root_mode(root_mode);
  Status set = co_await std::move(setting);
  PosixModel model(ModelOptions{.root_mode = root_mode});
  OpGenerator generator(seed);
  std::string history;
  for (uint32_t step = 0; step < steps && set.ok(); ++step) {
    Op op = generator.next(model.paths());
    PosixModel next = model;
    Outcome expected = next.apply(op);
    auto applying = driver.apply(op);
    Outcome actual = co_await std::move(applying);
    if (!coordinated && is_coordinator_op(op) && actual.code == StatusCode::kNotSupported) {
      ++stats->skipped;
      continue;
    }
    ++stats->steps;
    history += fmt::format("  {}: {} -> {}\n", step, op_to_line(op), outcome_string(actual));
    model = std::move(next);
    bool same = outcome_string(actual) == outcome_string(expected);
    EXPECT_EQ(outcome_string(actual), outcome_string(expected))
        << "seed " << seed << " step " << step << ": " << op_to_line(op) << "\n" << history;
    auto dumping = driver.dump();
    Result<std::string> dump = co_await std::move(dumping);
    bool same_tree = dump.ok() && *dump == model.dump();
    EXPECT_TRUE(same_tree) << "seed " << seed << " step " << step << ": " << op_to_line(op)
                           << "\nservice:\n" << (dump.ok() ? *dump : dump.status().to_string())
                           << "model:\n" << model.dump() << history;
    if (!same || !same_tree) {
      ++stats->failures;
      break;
    }
  }
  auto closing = server->close_shards();
  Status closed = co_await std::move(closing);
  CO_ASSERT_OK(set);
  CO_ASSERT_OK(closed);
}

std::string scratch_parent(const std::string& fallback) {
  std::error_code error;
  if (std::filesystem::is_directory("/dev/shm", error)) return "/dev/shm";
  return fallback;
}

MICA_CO_TEST(MetaModel, TheServiceAnswersEveryGeneratedSequenceAsTheModelDoes) {
  uint32_t seeds = knob("MICA_META_MODEL_SEEDS", 1000, 100);
  uint32_t steps = knob("MICA_META_MODEL_STEPS", 80, 80);
  uint64_t first = 1;
  if (const char* one = std::getenv("MICA_META_MODEL_SEED")) {
    first = std::stoull(one);
    seeds = 1;
  }
  mica::testing::TempDir scratch(scratch_parent(dir.path), "meta-model");
  SweepStats stats;
  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    std::string seed_dir = fmt::format("{}/seed-{}", scratch.path(), seed);
    auto running = run_seed(seed, steps, seed_dir, &stats);
    co_await std::move(running);
    std::error_code ignored;
    std::filesystem::remove_all(seed_dir, ignored);
    if (stats.failures > 0 || ::testing::Test::HasFatalFailure()) break;
  }
  if (stats.skipped > 0) {
    std::fprintf(stderr, "meta_model: %llu directory operations skipped (no coordinator)\n",
                 static_cast<unsigned long long>(stats.skipped));
  }
  CO_ASSERT_EQ(stats.failures, 0u);
}

}  // namespace
}  // namespace mica::meta::model
