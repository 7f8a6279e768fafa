// mica-sim: lists, sweeps and replays the simulation scenarios of tests/sim/.
//
//   mica-sim --list
//   mica-sim --scenario rpc_faults --seeds 1-10000 --jobs 2     sweep (exit 1 on any failure)
//   mica-sim --scenario rpc_faults                              sweep 1..suite seeds, or
//                                                               MICA_SIM_SEEDS (N or A-B)
//   mica-sim --scenario all --jobs 2                            sweep every scenario
//   mica-sim --scenario rpc_faults --seed 1234 --trace          replay one seed with its trace
//   mica-sim --scenario rpc_faults --seed 7 --print-hash        the golden-hash line
//   mica-sim --golden                                           check every golden hash
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "tests/sim/runner.h"

namespace mica::sim {
namespace {

// Enough readable lines to hold every event of a scenario's run.
constexpr size_t kTraceLinesAll = size_t{1} << 24;

struct Args {
  bool list = false;
  bool golden = false;
  bool trace = false;
  bool verbose = false;
  bool print_hash = false;
  std::string scenario;
  std::optional<uint64_t> seed;
  std::optional<SeedRange> seeds;
  uint32_t jobs = 1;
  uint32_t seed_timeout_s = 300;
};

void usage(const char* program) {
  std::fprintf(stderr,
               "usage: %s --list | --golden\n"
               "       %s --scenario NAME|all [--seeds A-B] [--jobs N] [--seed-timeout S]\n"
               "       %s --scenario NAME --seed S [--trace] [--verbose] [--print-hash]\n"
               "Without --seeds a sweep runs seeds 1..N, N from MICA_SIM_SEEDS (a count or\n"
               "a range A-B) or the scenario's suite count.\n",
               program, program, program);
}

std::optional<uint64_t> number(const char* text) {
  std::optional<SeedRange> r = parse_seed_range(text);
  if (!r || r->first != r->last) return std::nullopt;
  return r->first;
}

std::optional<Args> parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    auto take = [&]() -> const char* { return value != nullptr ? (++i, value) : nullptr; };
    if (arg == "--list") {
      a.list = true;
    } else if (arg == "--golden") {
      a.golden = true;
    } else if (arg == "--trace") {
      a.trace = true;
    } else if (arg == "--verbose") {
      a.verbose = true;
    } else if (arg == "--print-hash") {
      a.print_hash = true;
    } else if (arg == "--scenario" && take()) {
      a.scenario = value;
    } else if (arg == "--seed" && take()) {
      if (!(a.seed = number(value))) return std::nullopt;
    } else if (arg == "--seeds" && take()) {
      if (!(a.seeds = parse_seed_range(value))) return std::nullopt;
    } else if (arg == "--jobs" && take()) {
      std::optional<uint64_t> n = number(value);
      if (!n || *n == 0 || *n > 256) return std::nullopt;
      a.jobs = uint32_t(*n);
    } else if (arg == "--seed-timeout" && take()) {
      std::optional<uint64_t> n = number(value);
      if (!n || *n == 0 || *n > 86400) return std::nullopt;
      a.seed_timeout_s = uint32_t(*n);
    } else {
      return std::nullopt;
    }
  }
  return a;
}

int list() {
  for (const Scenario* s : scenarios())
    fmt::print("{:<20} {} (suite: {} seeds; golden seed {})\n", s->name, s->summary, s->suite_seeds,
               s->golden_seed);
  return 0;
}

int check_golden() {
  int failed = 0;
  for (const Scenario* s : scenarios()) {
    ScenarioResult r = run_scenario(*s, s->golden_seed, ScenarioOptions{});
    bool match = r.trace_hash == s->golden_hash;
    fmt::print("{} {} seed {}: hash {:#018x}, golden {:#018x}{}\n", match ? "ok  " : "FAIL",
               s->name, s->golden_seed, r.trace_hash, s->golden_hash,
               r.ok() ? "" : " (the seed fails: " + r.failure + ")");
    failed += match && r.ok() ? 0 : 1;
  }
  return failed == 0 ? 0 : 1;
}

int replay(const Scenario& s, const Args& a) {
  ScenarioOptions options;
  options.trace_lines_max = a.trace ? kTraceLinesAll : 0;
  options.verbose = a.verbose;
  ScenarioResult r = run_scenario(s, *a.seed, options);
  for (const std::string& line : r.trace) fmt::print("trace: {}\n", line);
  for (const std::string& line : r.notes) fmt::print("note: {}\n", line);
  std::string counters;
  for (const auto& [name, value] : r.counters) counters += fmt::format(" {}={}", name, value);
  fmt::print("{} seed {}: {}; {} events, trace hash {:#018x};{}\n", s.name, *a.seed,
             r.ok() ? "ok" : "FAILED: " + r.failure, r.trace_events, r.trace_hash, counters);
  if (a.print_hash)
    fmt::print("golden: .golden_seed = {}, .golden_hash = {:#018x}\n", *a.seed, r.trace_hash);
  return r.ok() ? 0 : 1;
}

int sweep(const Scenario& s, const Args& a, const char* program) {
  SweepOptions options;
  options.seeds = a.seeds ? *a.seeds : sweep_seeds(s.suite_seeds);
  options.jobs = a.jobs;
  options.seed_timeout_s = a.seed_timeout_s;
  options.program = program;
  SweepReport report = run_sweep(s, options);
  return report.ok() ? 0 : 1;
}

int main_body(int argc, char** argv) {
  std::optional<Args> args = parse(argc, argv);
  if (!args || (!args->list && !args->golden && args->scenario.empty())) {
    usage(argv[0]);
    return 2;
  }
  if (args->list) return list();
  if (args->golden) return check_golden();
  if (args->scenario == "all" && !args->seed) {
    int status = 0;
    for (const Scenario* s : scenarios()) status |= sweep(*s, *args, argv[0]);
    return status;
  }
  const Scenario* s = find_scenario(args->scenario);
  if (s == nullptr) {
    fmt::print(stderr, "mica-sim: no scenario '{}' (see --list)\n", args->scenario);
    return 2;
  }
  if (args->seed) return replay(*s, *args);
  return sweep(*s, *args, argv[0]);
}

}  // namespace
}  // namespace mica::sim

int main(int argc, char** argv) {
  return mica::sim::main_body(argc, argv);
}
