#include "tests/sim/scenario.h"

#include <algorithm>

#include <fmt/format.h>

namespace mica::sim {
namespace {

// A function-local static, so registrations from any translation unit's static
// initialisers find it constructed whatever the initialisation order.
std::vector<Scenario>& registry() {
  static std::vector<Scenario> list;
  return list;
}

bool well_formed_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

}  // namespace

void ScenarioResult::fail(std::string_view why) {
  ++failures;
  if (failures > kFailuresShownMax) return;
  if (!failure.empty()) failure += "; ";
  failure += why;
}

void ScenarioResult::capture(const SimWorld& world) {
  trace_hash = world.trace_hash();
  trace_events = world.trace_events();
  trace.assign(world.trace_log().begin(), world.trace_log().end());
}

bool register_scenario(const Scenario& scenario) {
  MICA_ASSERT_MSG(well_formed_name(scenario.name), "scenario names are [a-z0-9_]+");
  MICA_ASSERT_MSG(scenario.run != nullptr, "a scenario needs a run function");
  MICA_ASSERT_MSG(find_scenario(scenario.name) == nullptr, "scenario registered twice");
  registry().push_back(scenario);
  return true;
}

std::vector<const Scenario*> scenarios() {
  std::vector<const Scenario*> all;
  for (const Scenario& s : registry()) all.push_back(&s);
  std::sort(all.begin(), all.end(),
            [](const Scenario* a, const Scenario* b) { return a->name < b->name; });
  return all;
}

const Scenario* find_scenario(std::string_view name) {
  for (const Scenario& s : registry())
    if (s.name == name) return &s;
  return nullptr;
}

ScenarioResult run_scenario(const Scenario& scenario, uint64_t seed, ScenarioOptions options) {
  ScenarioResult result = scenario.run(seed, options);
  if (result.failures > ScenarioResult::kFailuresShownMax)
    result.failure += fmt::format(" (and {} more failed checks)",
                                  result.failures - ScenarioResult::kFailuresShownMax);
  for (const auto& [name, value] : result.counters) {
    MICA_ASSERT_MSG(well_formed_name(name), "scenario counter names are [a-z0-9_]+");
    (void)value;
  }
  return result;
}

}  // namespace mica::sim
