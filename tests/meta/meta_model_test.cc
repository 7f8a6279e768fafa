// The model-based test of the metadata service: each seed's random operation sequence
// (tests/meta/model_ops.h: four users, root among them, a small name space so collisions
// and errors are frequent) runs against a MetaServer serving 3 shards and the coordinator
// in this process (meta/meta_server.h, called directly: tests/meta/model_service.h) and
// against the reference model (tests/meta/posix_model.h, itself checked against Linux by
// model_kernel_test.cc); after every step the answers and the whole tree (attributes,
// nlink, hard-link groups, symlink targets, xattrs, listings) must be equal.
//
// The shards are real LMDB environments in a tmpfs folder (/dev/shm when present): their
// commits are what runs, without the disk's fsync. Seeds: MICA_META_MODEL_SEEDS (default
// 1,000 optimised, 100 otherwise), steps per seed MICA_META_MODEL_STEPS (default 80);
// MICA_META_MODEL_SEED=N runs seed N alone and prints its history. Any difference, which
// error wins included (the errors are what programs see), ends its seed and fails the test;
// the sweep goes on so the report lists every differing seed. Time cap: 100 seeds take under
// a second in a Debug build; 30 s cap.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

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
  uint64_t skipped = 0;  // kNotSupported: no coordinator, or no storage (truncate)
  uint64_t failures = 0;
  std::vector<std::string> first_differences;  // one per failing seed
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

// The server of one seed, with a routing that has a chain table (new files' layouts).
Task<Result<std::unique_ptr<MetaServer>>> open_model_server(uint64_t seed, std::string dir) {
  MetaServerOptions options = server_options(dir, seed);
  auto opening = MetaServer::open_server(std::move(options), nullptr, nullptr);
  CO_TRY_ASSIGN(std::unique_ptr<MetaServer> server, co_await std::move(opening));
  server->apply_routing(
      std::make_shared<const craq::RoutingSnapshot>(testing::one_table_routing()));
  co_return server;
}

// One seed: its first difference is recorded in stats. Both refused with different codes is
// which error wins when several apply: the kernel's order is the model's, and the service
// must follow it.
Task<void> run_seed(uint64_t seed, uint32_t steps, std::string dir, SweepStats* stats) {
  auto opening = open_model_server(seed, dir);
  Result<std::unique_ptr<MetaServer>> opened = co_await std::move(opening);
  CO_ASSERT_OK(opened);
  MetaServer* server = opened->get();
  // The coordinator opens in the background; kNotSupported: a build without it, whose
  // directory operations the sweep skips.
  TimePoint deadline = Executor::current()->now() + std::chrono::seconds(10);
  auto waiting = server->wait_coordinator(deadline);
  Status waited = co_await std::move(waiting);
  bool coordinated = waited.ok() && server->has_coordinator();
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
    // Without a storage client a shard cannot cut a file's chunks: a shrinking truncate is
    // kNotSupported here, and skipped like directory operations without a coordinator.
    bool no_storage = op.kind == OpKind::kTruncate && actual.code == StatusCode::kNotSupported;
    if (no_storage ||
        (!coordinated && is_coordinator_op(op) && actual.code == StatusCode::kNotSupported)) {
      ++stats->skipped;
      continue;
    }
    ++stats->steps;
    history += fmt::format("  {}: {} -> {}\n", step, op_to_line(op), outcome_string(actual));
    model = std::move(next);
    bool same = outcome_string(actual) == outcome_string(expected);
    auto dumping = driver.dump();
    Result<std::string> dump = co_await std::move(dumping);
    bool same_tree = dump.ok() && *dump == model.dump();
    if (!same || !same_tree) {
      // The seed's first difference; the sweep goes on with the next seed.
      ++stats->failures;
      std::string what = fmt::format("seed {} step {}: {}: service {}, model {}", seed, step,
                                     op_to_line(op), outcome_string(actual),
                                     outcome_string(expected));
      if (same) what += " (the trees differ)";
      stats->first_differences.push_back(what);
      if (std::getenv("MICA_META_MODEL_SEED") != nullptr) {
        ADD_FAILURE() << what << "\nservice:\n"
                      << (dump.ok() ? *dump : dump.status().to_string()) << "model:\n"
                      << model.dump() << history;
      }
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
    if (::testing::Test::HasFatalFailure()) break;
  }
  if (stats.skipped > 0) {
    std::fprintf(stderr, "meta_model: %llu operations skipped (no coordinator or storage)\n",
                 static_cast<unsigned long long>(stats.skipped));
  }
  std::string report;
  for (size_t i = 0; i < stats.first_differences.size() && i < 30; ++i) {
    report += "  " + stats.first_differences[i] + "\n";
  }
  CO_ASSERT_EQ(stats.failures, 0u) << stats.failures << " of " << seeds
                                    << " seeds differ:\n" << report;
}

}  // namespace
}  // namespace mica::meta::model
