// Simulation scenarios: named, seeded whole-system runs that mica-sim sweeps and replays.
//
// A scenario is one function `ScenarioResult run(uint64_t seed, ScenarioOptions options)`
// that builds a SimWorld from the seed, runs a workload under faults, checks what it must
// (a failed check is a value in the result, not an abort) and returns the world's trace
// hash with counters the sweep sums. The same seed must give the same result and the same
// hash in every build (g++ and clang): draw every choice from the world's SimRandom, never
// from std:: distributions, never iterate an unordered container, format no floating point
// into anything hashed. A scenario registers itself by name at static-initialisation time:
//
//   ScenarioResult run_my_scenario(uint64_t seed, ScenarioOptions options);
//   MICA_SIM_SCENARIO(kMyScenario, {.name = "my_scenario", .summary = "...",
//                                   .run = run_my_scenario, .golden_seed = 1,
//                                   .golden_hash = 0x1234});
//
// The registry is a process-wide list filled before main() and read-only afterwards; a run
// is single-threaded and runs on the calling thread (the sweep runner forks workers).
// Nothing here suspends.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "async/sim/world.h"

namespace mica::sim {

struct ScenarioOptions {
  // Readable trace lines the world keeps (SimConfig::trace_log_lines_max); 0 keeps none.
  // `mica-sim --trace` asks for all of them; a sweep asks for none (it only hashes).
  size_t trace_lines_max = 0;
  // The scenario may add its own narrative lines to ScenarioResult::notes.
  bool verbose = false;
};

// Named counters a scenario reports per seed; a sweep sums them over its seeds. Names are
// [a-z0-9_]+ (they travel between processes as text).
using ScenarioCounters = std::map<std::string, uint64_t>;

struct ScenarioResult {
  static constexpr uint32_t kFailuresShownMax = 5;

  std::string failure;  // empty: every check of the seed passed
  uint64_t trace_hash = 0;
  uint64_t trace_events = 0;
  std::vector<std::string> trace;  // the world's readable trace (options.trace_lines_max)
  std::vector<std::string> notes;  // the scenario's own narrative (options.verbose)
  ScenarioCounters counters;
  uint32_t failures = 0;  // failed checks, including those fail() only counted

  bool ok() const { return failure.empty(); }
  // Records a failed check; later failures are appended, so the first one leads (beyond
  // kFailuresShownMax they are only counted, so a seed that fails every call stays legible).
  void fail(std::string_view why);
  // Copies the world's hash, event count and readable trace into the result.
  void capture(const SimWorld& world);
};

using ScenarioFn = ScenarioResult (*)(uint64_t seed, ScenarioOptions options);
// Checks a whole sweep (counters summed over `seeds` seeds); returns a failure or "".
using SweepCheckFn = std::string (*)(const ScenarioCounters& totals, uint64_t seeds);

struct Scenario {
  std::string_view name;     // [a-z0-9_]+, unique
  std::string_view summary;  // one line for `mica-sim --list`
  ScenarioFn run = nullptr;
  // Determinism pin: run(golden_seed) must give golden_hash in every build. Regenerate with
  // `mica-sim --scenario NAME --seed SEED --print-hash` after an intended change.
  uint64_t golden_seed = 1;
  uint64_t golden_hash = 0;
  // Optional: what must hold over a sweep and not necessarily per seed (say, "some writes
  // were really lost across all seeds", or an aggregate success share).
  SweepCheckFn check_sweep = nullptr;
  // Seeds the default test suite sweeps (MICA_SIM_SEEDS overrides; see sweep_seed_count).
  uint64_t suite_seeds = 1000;
  // The share of suite_seeds (percent) swept by builds without optimisation (Debug, and
  // sanitizer builds on top of their own share), for scenarios too heavy for 1,000 seeds
  // there: a whole cluster per seed.
  uint32_t unoptimised_suite_percent = 100;
  // Non-empty while the scenario's sweep still finds open bugs: what they are. The suite's
  // sweep of it is then reported as skipped, with this text, unless MICA_SIM_SWEEP_OPEN=1
  // asks for it (and fails on them); its golden seed and every other test still run.
  std::string_view suite_sweep_open;
};

// Adds a scenario to the registry (asserts the name is new and well formed). Returns true so
// it can initialise a static.
bool register_scenario(const Scenario& scenario);
#define MICA_SIM_SCENARIO(variable, ...) \
  [[maybe_unused]] static const bool variable = ::mica::sim::register_scenario(__VA_ARGS__)

// Every registered scenario, sorted by name.
std::vector<const Scenario*> scenarios();
// The scenario called name, or nullptr.
const Scenario* find_scenario(std::string_view name);

// Runs one seed of a scenario in this process (its failures come back in the result; a
// broken invariant inside the simulation still aborts the process).
ScenarioResult run_scenario(const Scenario& scenario, uint64_t seed, ScenarioOptions options);

}  // namespace mica::sim
