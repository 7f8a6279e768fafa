// Target states: the pure functions by which mgmtd decides a chain's next membership, order
// and public states (the rules and why they are safe: docs/mgmtd.md).
//
// next_chain() is called for every chain on every update round with what mgmtd currently
// knows about each of its targets; it returns the chain unchanged (same version) when
// nothing is to change, otherwise the new chain with version + 1. The admin operations
// (promote, replace) are pure too: mgmtd validates and persists their results. No I/O, no
// clock, no randomness: any thread, never suspends, and every transition has a row in
// tests/craq/target_state_test.cc.
#pragma once

#include <span>
#include <string>

#include "async/status.h"
#include "async/time.h"
#include "craq/types.h"

namespace mica::craq {

// What mgmtd knows about one target of the chain when it decides.
struct TargetObservation {
  TargetId target = 0;
  // The target's state as its node last reported it (kOffline if never reported).
  LocalState local = LocalState::kOffline;
  // The chain version the node's report refers to: an up-to-date claim counts only for the
  // chain's current version, so a report sent before the target was made syncing cannot
  // promote it to serving without a resync.
  uint64_t reported_chain_version = 0;
  // Time since the target's node last heartbeat; beyond the lease it counts as offline.
  Duration heartbeat_age{0};
  bool admin_offline = false;  // counts as offline
  // The target's node registered again (a new process) since the last round: it may have
  // missed writes while it was down, so it counts as offline for this one round and comes
  // back through waiting -> syncing like any returning target.
  bool restarted = false;
};

// The local state that counts: kOffline when the lease expired, an admin took the target
// offline or its node restarted, the reported state otherwise.
LocalState effective_local_state(const TargetObservation& observation, Duration lease_timeout);

// The chain's next state. Rules (each a row of the test table):
// - serving + online/up-to-date -> serving (a new chain's targets start serving).
// - serving + offline -> offline (moved to the end); if no serving target is left, the
//   head-most of the serving targets that failed becomes lastsrv instead.
// - lastsrv + online/up-to-date -> serving (the chain unblocks); lastsrv + offline stays.
// - syncing + up-to-date at the current chain version -> serving (the new tail);
//   syncing + offline -> offline; syncing with no serving target left -> offline (also
//   when it claims to be up to date: only a target that served holds every write).
// - offline + online/up-to-date -> waiting.
// - waiting -> syncing when the chain has a serving target and no syncing one (after this
//   round's other changes), for the first target in chain order that was waiting at the
//   start of the round only (one resync per chain at a time).
// - waiting + offline -> offline.
// Targets missing from observations count as offline. The result lists targets in the
// order of types.h (serving, lastsrv, syncing, waiting, offline); within a state those that
// kept it come first in their old order, then those that entered it this round in their old
// order: a target that starts serving is the new tail, one that fails moves to the end.
ChainInfo next_chain(const ChainInfo& chain, std::span<const TargetObservation> observations,
                     Duration lease_timeout);

// Admin: makes `target` (waiting or offline in a chain blocked on a lastsrv target) the
// chain's serving target, demoting the lastsrv one to offline. Acknowledged writes that
// only the lastsrv target held are lost: the caller warns. kInvalidArgument unless the
// chain has a lastsrv target and no serving one and `target` is in it, waiting or offline.
Result<ChainInfo> promote_target(const ChainInfo& chain, TargetId target);

// Admin: `replacement` (a target in no chain) takes `old`'s place: `old` leaves the chain
// and `replacement` joins at the end as offline, so it goes waiting -> syncing -> serving
// like any returning target. kInvalidArgument if `old` is not in the chain, is the chain's
// only serving or lastsrv target, or `replacement` is 0 or already in it.
Result<ChainInfo> replace_target(const ChainInfo& chain, TargetId old, TargetId replacement);

// Structural invariants every chain satisfies (the simulator's checker asserts them):
// no target twice (nor id 0), at most one syncing target, states in the order above, at
// most one lastsrv target and none beside a serving one, no syncing target without a
// serving one, and a chain with targets has a serving or a lastsrv one. next_chain(),
// promote_target() and replace_target() keep them. Returns a description of the first
// violation, or an empty string.
std::string check_chain_invariants(const ChainInfo& chain);

}  // namespace mica::craq
