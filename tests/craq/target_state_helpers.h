// A compact notation for chains and observations in the target-state tests, so that a row
// of a transition table reads like the rule it checks.
//
// Chains: "S1 S2 Y3 W4 O5" is targets 1..5 in chain order with their public states (S
// serving, L lastsrv, Y syncing, W waiting, O offline). Observations: "1:up 2:on 3:off"
// with up (up-to-date at the chain's version), up@N (up-to-date at chain version N), on
// (online), off (reported offline), lease (up-to-date, heartbeat older than the lease), edge
// (up-to-date, heartbeat exactly the lease old), admin (up-to-date, admin offline), restart
// (up-to-date, node restarted); a target not named has no observation. Header-only test
// code: value functions, any thread, never suspend; a malformed spec fails the test.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "craq/target_state.h"

namespace mica::craq::testing {

inline constexpr Duration kLease = std::chrono::seconds(5);

inline char state_letter(PublicState state) {
  switch (state) {
    case PublicState::kServing:
      return 'S';
    case PublicState::kLastServing:
      return 'L';
    case PublicState::kSyncing:
      return 'Y';
    case PublicState::kWaiting:
      return 'W';
    case PublicState::kOffline:
      return 'O';
  }
  return '?';
}

inline std::vector<ChainTarget> parse_targets(std::string_view spec) {
  std::vector<ChainTarget> targets;
  std::istringstream in{std::string(spec)};
  std::string word;
  while (in >> word) {
    PublicState state = PublicState::kOffline;
    switch (word[0]) {
      case 'S':
        state = PublicState::kServing;
        break;
      case 'L':
        state = PublicState::kLastServing;
        break;
      case 'Y':
        state = PublicState::kSyncing;
        break;
      case 'W':
        state = PublicState::kWaiting;
        break;
      case 'O':
        state = PublicState::kOffline;
        break;
      default:
        ADD_FAILURE() << "bad chain word " << word;
    }
    targets.push_back({.target = std::stoull(word.substr(1)), .state = state});
  }
  return targets;
}

inline ChainInfo parse_chain(std::string_view spec, uint64_t version) {
  return ChainInfo{.id = 1, .version = version, .targets = parse_targets(spec)};
}

inline std::string chain_text(const ChainInfo& chain) {
  std::string text;
  for (const ChainTarget& t : chain.targets) {
    if (!text.empty()) text += ' ';
    text += state_letter(t.state);
    text += std::to_string(t.target);
  }
  return text;
}

inline TargetObservation parse_observation(const std::string& word, uint64_t version) {
  auto colon = word.find(':');
  TargetObservation o{.target = std::stoull(word.substr(0, colon)),
                      .local = LocalState::kUpToDate,
                      .reported_chain_version = version};
  std::string what = word.substr(colon + 1);
  if (what.rfind("up@", 0) == 0)
    o.reported_chain_version = std::stoull(what.substr(3));
  else if (what == "on")
    o.local = LocalState::kOnline;
  else if (what == "off")
    o.local = LocalState::kOffline;
  else if (what == "lease")
    o.heartbeat_age = kLease + std::chrono::milliseconds(1);
  else if (what == "edge")
    o.heartbeat_age = kLease;
  else if (what == "admin")
    o.admin_offline = true;
  else if (what == "restart")
    o.restarted = true;
  else if (what != "up")
    ADD_FAILURE() << "bad observation " << word;
  return o;
}

inline std::vector<TargetObservation> parse_observations(std::string_view spec, uint64_t version) {
  std::vector<TargetObservation> observations;
  std::istringstream in{std::string(spec)};
  std::string word;
  while (in >> word) observations.push_back(parse_observation(word, version));
  return observations;
}

}  // namespace mica::craq::testing
