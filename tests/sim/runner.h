// The seed-sweep runner behind mica-sim and the suite's sweep tests.
//
// run_sweep() runs one scenario over a range of seeds in `jobs` worker processes. Seeds go
// out in batches; each batch runs in a freshly forked child, so a seed that aborts (a
// broken invariant, a livelock the world detects) or hangs (a wall-clock alarm per seed)
// kills only its child: the runner reports that seed, with what the child printed while
// running it, and hands the rest of the batch to a new child. Every failing seed is
// printed with the one command that replays it, and the per-seed counters are summed for
// the scenario's sweep check. The caller's thread runs the sweep; it blocks (no coroutines)
// and must be the only thread of the process (it forks).
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/sim/scenario.h"

namespace mica::sim {

struct SeedRange {
  uint64_t first = 1;
  uint64_t last = 1;  // inclusive
  uint64_t count() const { return last - first + 1; }
};

// "17" or "1-10000" (decimal); nullopt when malformed or empty (last < first).
std::optional<SeedRange> parse_seed_range(std::string_view text);

// Seeds a default sweep runs: MICA_SIM_SEEDS from the environment when set (a count, or a
// range as parse_seed_range reads it), else 1..default_count.
SeedRange sweep_seeds(uint64_t default_count);

struct SweepOptions {
  SeedRange seeds;
  uint32_t jobs = 1;                 // worker processes at once
  uint64_t batch_seeds = 0;          // seeds per forked child; 0 picks one from count and jobs
  uint32_t seed_timeout_s = 300;     // wall clock one seed may take before it counts as hung
  std::string program = "mica-sim";  // how the replay command names the tool
  FILE* out = stdout;                // failures and the summary go here
  bool quiet = false;                // print failures only, no summary
};

struct SweepFailure {
  uint64_t seed = 0;
  std::string why;
  bool crashed = false;  // the child died (signal, exit code or hang) rather than failing a check
  std::string output;    // what the child printed while running this seed (a tail)
};

struct SweepReport {
  uint64_t seeds_run = 0;
  std::vector<SweepFailure> failures;  // sorted by seed
  ScenarioCounters totals;             // summed over the seeds that returned a result
  std::string sweep_failure;           // the scenario's check_sweep verdict, if any
  double wall_seconds = 0;
  bool ok() const { return failures.empty() && sweep_failure.empty(); }
  double seeds_per_second() const { return wall_seconds > 0 ? seeds_run / wall_seconds : 0; }
};

SweepReport run_sweep(const Scenario& scenario, const SweepOptions& options);

// `mica-sim --scenario NAME --seed SEED --trace`, with program for mica-sim.
std::string replay_command(std::string_view program, const Scenario& scenario, uint64_t seed);

}  // namespace mica::sim
