// Scenario meta_coordinator: the coordinator and three shards on one simulated host (the
// simulated kv store on its disk, the local stepper) run a seeded mix of mkdir, rmdir,
// rename (plain, RENAME_NOREPLACE, RENAME_EXCHANGE) and link over a small tree, one
// operation at a time. The host loses power once at a chosen step: seed s crashes as the
// ((s mod kPositions) + 1)-th step is sent, after a seeded delay of 0-400 us, so every step
// position is hit in turn and the moment within it varies; a fifth of the seeds crash again
// at a random moment after the restart (during resume or the rest of the workload). After
// every restart the coordinator's open resumes; then the namespace must be exactly the
// state before the interrupted operation or after it (by paths: entries, types, nlinks, hard
// links), with fsck-like invariants (no edge locked, no step record left, every inode named,
// nlink = entries, directory nlink = 2 + subdirectories, each directory's parent, the
// coordinator's directory map equal to the directories' parents). The workload then goes on
// and must end in the reference run's final state, each operation answering as there. The
// reference is the same operations on a fresh world without a crash.
#include <string>
#include <vector>

#include "async/sim/world.h"
#include "tests/sim/meta_coordinator.h"
#include "tests/sim/scenario.h"

namespace mica::sim {
namespace {

using namespace meta_coordinator;

constexpr size_t kOps = 16;
constexpr uint64_t kPositions = 24;  // step positions the seeds crash at in turn
constexpr Duration kCrashDelayMax = std::chrono::microseconds(400);
constexpr Duration kSecondCrashWindow = std::chrono::milliseconds(3);
constexpr uint32_t kBootsMax = 4;

struct Reference {
  std::vector<std::string> states;  // states[i]: after i operations
  std::vector<StatusCode> codes;
};

struct Run {
  SimWorld* world = nullptr;
  SimHost* host = nullptr;
  ScenarioResult* result = nullptr;
  std::vector<Op> ops;
  Reference* reference = nullptr;  // the crash run checks against it; nullptr: building it
  Reference built;
  size_t done = 0;  // operations answered while the host was up
  bool first_boot = true;
  bool finished = false;
  uint64_t crash_at = 0;  // the step that crashes the host (first boot only)
  bool crash_scheduled = false;
  uint64_t recovered_before = 0;  // restarts that found the interrupted operation undone
  uint64_t recovered_after = 0;   // ... and done
};

void fail(Run* run, const std::string& why) {
  run->result->fail(fmt::format("after {} operations: {}", run->done, why));
}

void on_step(Run* run, uint64_t count) {
  if (!run->first_boot || run->crash_scheduled || count != run->crash_at) return;
  run->crash_scheduled = true;
  Duration delay = run->world->random().between(Duration::zero(), kCrashDelayMax);
  SimWorld* world = run->world;
  SimHost* host = run->host;
  world->schedule(delay, [world, host] {
    if (host->up()) world->crash(*host);
  });
}

// After a restart: the state is the one before the interrupted operation or after it.
bool check_recovery(Run* run, Node* node) {
  std::string broken = fsck(node);
  if (!broken.empty()) {
    fail(run, "after restart: " + broken);
    return false;
  }
  Result<std::string> state = canonical(node);
  if (!state.ok()) {
    fail(run, fmt::format("after restart: {}", state.status()));
    return false;
  }
  const std::vector<std::string>& states = run->reference->states;
  if (run->done + 1 < states.size() && *state == states[run->done + 1]) {
    if (*state != states[run->done]) ++run->recovered_after;
    ++run->done;
    return true;
  }
  if (*state == states[run->done]) {
    ++run->recovered_before;
    return true;
  }
  fail(run, fmt::format("after restart the tree is neither before nor after {}:\n{}",
                        describe(run->ops[run->done]), *state));
  return false;
}

// One operation and its check against the reference (or its recording, building it).
Task<bool> step_workload(Run* run, Node* node) {
  auto running = run_op(node, run->ops[run->done]);
  StatusCode code = co_await std::move(running);
  if (!run->host->up()) co_return false;
  Result<std::string> state = canonical(node);
  if (!state.ok()) {
    fail(run, fmt::format("scan: {}", state.status()));
    co_return false;
  }
  if (run->reference == nullptr) {
    run->built.codes.push_back(code);
    run->built.states.push_back(*state);
  } else if (code != run->reference->codes[run->done] ||
             *state != run->reference->states[run->done + 1]) {
    fail(run, fmt::format("{} answered {} (reference {}) and left\n{}",
                          describe(run->ops[run->done]), static_cast<int>(code),
                          static_cast<int>(run->reference->codes[run->done]), *state));
    co_return false;
  }
  ++run->done;
  co_return true;
}

Task<void> boot(Run* run) {
  Node node;
  auto opening = open_node(&node, [run](uint64_t count) { on_step(run, count); });
  Status opened = co_await std::move(opening);
  bool ok = opened.ok() && run->host->up();  // a crash during open: the next boot checks
  if (!opened.ok() && run->host->up()) fail(run, fmt::format("open: {}", opened));
  if (ok && run->first_boot) {
    auto adding = add_files(&node);
    Status added = co_await std::move(adding);
    ok = added.ok();
    if (ok && run->reference == nullptr) {
      Result<std::string> state = canonical(&node);
      ok = state.ok();
      if (ok) run->built.states.push_back(*state);
    }
  } else if (ok) {
    ok = check_recovery(run, &node);
  }
  while (ok && run->host->up() && run->done < run->ops.size()) {
    auto stepping = step_workload(run, &node);
    ok = co_await std::move(stepping);
  }
  if (ok && run->host->up()) {
    std::string broken = fsck(&node);
    if (!broken.empty()) fail(run, "at the end: " + broken);
    run->finished = true;
  }
  auto closing = close_node(&node);
  co_await std::move(closing);
}

// Runs the workload on a fresh world; with reference set, crashing as the seed says.
void run_world(Run* run, uint64_t seed, ScenarioOptions options, bool crash) {
  SimConfig config;
  config.trace_log_lines_max = crash ? options.trace_lines_max : 0;
  SimWorld world(seed, config);
  run->world = &world;
  SimHost& host = world.add_host("meta");
  run->host = &host;
  world.spawn(host, boot(run));
  if (!world.run_until_idle(std::chrono::hours(1))) fail(run, "the host never went idle");
  SimHost::BootFn boot_fn = [run](SimHost&) { return boot(run); };
  for (uint32_t boots = 1; crash && !run->finished && !host.up() && boots < kBootsMax; ++boots) {
    run->first_boot = false;
    world.restart(host, boot_fn);
    if (boots == 1 && world.random().chance(0.2)) {
      Duration at = world.random().between(Duration::zero(), kSecondCrashWindow);
      world.schedule(at, [&world, &host] {
        if (host.up()) world.crash(host);
      });
    }
    if (!world.run_until_idle(std::chrono::hours(1))) fail(run, "the host never went idle");
  }
  if (!run->finished && run->result->ok()) fail(run, "the workload never finished");
  if (crash) run->result->capture(world);
  run->world = nullptr;
  run->host = nullptr;
}

ScenarioResult run_meta_coordinator(uint64_t seed, ScenarioOptions options) {
  ScenarioResult result;
  Run reference;
  reference.result = &result;
  reference.ops = make_ops(seed, kOps);
  reference.crash_at = 0;
  run_world(&reference, seed, options, false);
  if (!result.ok()) return result;
  Run run;
  run.result = &result;
  run.ops = reference.ops;
  run.reference = &reference.built;
  run.crash_at = 1 + seed % kPositions;
  run_world(&run, seed, options, true);
  if (options.verbose) {
    for (size_t i = 0; i < run.ops.size(); ++i)
      result.notes.push_back(fmt::format("{}: {} -> {}", i, describe(run.ops[i]),
                                         static_cast<int>(reference.built.codes[i])));
  }
  result.counters["crashes"] = run.crash_scheduled ? 1 : 0;
  result.counters["recovered_before"] = run.recovered_before;
  result.counters["recovered_after"] = run.recovered_after;
  return result;
}

std::string check_meta_coordinator(const ScenarioCounters& totals, uint64_t seeds) {
  auto count = [&](const char* name) {
    auto it = totals.find(name);
    return it == totals.end() ? uint64_t{0} : it->second;
  };
  if (count("recovered_before") == 0)
    return fmt::format("no restart in {} seeds rolled an operation back or found it untaken",
                       seeds);
  if (count("recovered_after") == 0)
    return fmt::format("no restart in {} seeds finished an interrupted operation", seeds);
  return "";
}

}  // namespace

MICA_SIM_SCENARIO(kMetaCoordinator,
                  {.name = "meta_coordinator",
                   .summary = "the coordinator loses power at every step position in turn; "
                              "after resume each operation happened fully or not at all",
                   .run = run_meta_coordinator,
                   .golden_seed = 1,
                   .golden_hash = 0x21a567f9154a3f32,
                   .check_sweep = check_meta_coordinator,
                   .suite_seeds = 1000,
                   .unoptimised_suite_percent = 100});

}  // namespace mica::sim
