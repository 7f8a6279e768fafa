// Chain placement: builds the chains of a new chain table from the targets available, so
// that a lost node or disk is rebuilt from many others at once (docs/mgmtd.md).
//
// generate_chains() is a pure function of its explicit inputs (the targets, the replica
// count and a seed): the same inputs give the same chains with every compiler and standard
// library, because every random choice comes from PlacementRandom, our own generator with
// a fixed specification (never std::shuffle or std:: distributions). Guarantees, checked
// by tests/craq/chain_table_test.cc for cluster shapes of 3 to 200 nodes: (a) no chain has
// two targets on one node; (b) nodes take part in chains as evenly as their targets allow
// (every node uses the same number of targets within one, when it has them); (c) every
// pair of nodes shares about the same number of chains, so the chains of any one node's
// targets reach as many other nodes as possible, evenly. Any thread, never suspends.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "async/status.h"
#include "craq/types.h"

namespace mica::craq {

// A seeded pseudo-random generator with a fixed output for a fixed seed (splitmix64 to
// seed, xoshiro256** to draw), and a Fisher-Yates shuffle on it. Also used by file layouts
// (the metadata service orders a file's chains with seeded_shuffle).
class PlacementRandom {
 public:
  explicit PlacementRandom(uint64_t seed);
  uint64_t next();
  uint64_t below(uint64_t bound);  // uniform in [0, bound), bound > 0, no modulo bias

 private:
  uint64_t state_[4];
};

// Shuffles `items` in place: for i from size-1 down to 1, swap items[i] with
// items[random.below(i + 1)].
template <class T>
void seeded_shuffle(std::span<T> items, PlacementRandom& random) {
  for (size_t i = items.size(); i > 1; --i) {
    size_t j = static_cast<size_t>(random.below(i));
    if (j != i - 1) std::swap(items[i - 1], items[j]);
  }
}

// One target that may be placed.
struct PlacementTarget {
  TargetId target = 0;
  NodeId node = 0;
  uint32_t disk = 0;  // the disk's index on its node
};

struct PlacementInput {
  std::vector<PlacementTarget> targets;  // in any order; the result does not depend on it
  uint32_t replica_count = 3;
  uint64_t seed = 0;
};

// Placement keeps a node x node matrix of shared chains: this many nodes is 16 MiB of it.
inline constexpr uint32_t kPlacementNodesMax = 2048;

// The chains, each an ordered list of replica_count targets (head first). Every target is
// used at most once; targets left over (when the count does not divide evenly or a node
// has more than its share) are left out. kInvalidArgument when fewer than replica_count
// nodes have targets, replica_count is 0 or above 16, more than kPlacementNodesMax nodes
// have targets, or a target id is 0 or given twice.
Result<std::vector<std::vector<TargetId>>> generate_chains(const PlacementInput& input);

// Spread of a placement, for tests and bench/run.sh mgmtd: for each node, how many of its
// chains' other members sit on each other node (the rebuild load a lost node puts on its
// peers).
struct PlacementSpread {
  uint32_t nodes = 0;
  uint32_t pair_min = 0;       // fewest chains shared by any two nodes that share one
  uint32_t pair_max = 0;       // most chains shared by any two nodes
  double pair_mean = 0;        // over all pairs of distinct nodes
  uint32_t peers_min = 0;      // fewest distinct peers any node's chains reach
  uint32_t targets_per_node_min = 0;
  uint32_t targets_per_node_max = 0;
};
PlacementSpread measure_spread(std::span<const PlacementTarget> targets,
                               std::span<const std::vector<TargetId>> chains);

}  // namespace mica::craq
