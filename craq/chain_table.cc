// Chain placement (craq/chain_table.h): a greedy construction of the chains' member nodes,
// a bounded local search that evens out how many chains each pair of nodes shares, then the
// order of each chain's members (heads rotated) and the choice of each member's target
// (a node's chains spread over its disks). docs/mgmtd.md, "Chain placement", explains why.
#include "craq/chain_table.h"

#include <algorithm>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "async/assert.h"

namespace mica::craq {

namespace {

// One step of splitmix64, which turns any seed (0 included) into a well-mixed state.
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

}  // namespace

PlacementRandom::PlacementRandom(uint64_t seed) {
  uint64_t s = seed;
  for (uint64_t& word : state_) word = splitmix64(s);
}

uint64_t PlacementRandom::next() {
  uint64_t result = rotl(state_[1] * 5, 7) * 9;
  uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

uint64_t PlacementRandom::below(uint64_t bound) {
  MICA_ASSERT(bound > 0);
  // Rejecting the top partial range makes every residue equally likely.
  uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t x;
  do x = next();
  while (x >= limit);
  return x % bound;
}

namespace {

// Replica counts above this are refused: nothing needs more, and the local search's cost
// grows with the square of the chain length.
constexpr uint32_t kReplicaCountMax = 16;
// The local search stops after kImproveStepsMax steps (evaluating a candidate swap costs
// replicas^2 steps: each member of one chain against each of the other), or after
// kImprovePassesMax passes over the chains, or earlier when a pass changes nothing. 200
// nodes x 16 targets x 3 replicas needs about none; the cap bounds the dense shapes (about
// 0.2 s optimised at the cap) and long chains, whose swaps cost more.
constexpr uint64_t kImproveStepsMax = 40'000'000;
constexpr uint32_t kImprovePassesMax = 256;
constexpr uint64_t kSidewaysMovesMax = 2000;
// Rounds of head rebalancing (each tries to move a head away from every node); every move
// strictly lowers the heads' imbalance, so this only bounds a pathological input.
constexpr uint32_t kHeadRoundsMax = 64;

// A chain while it is built: the indices (into the sorted node list) of its member nodes.
using Chain = std::vector<uint32_t>;

// One node's targets, sorted by (disk, target id), and how many chains it joins.
struct NodeTargets {
  NodeId node = 0;
  std::vector<PlacementTarget> targets;
  uint32_t uses = 0;
};

// How many chains each pair of nodes shares (a symmetric matrix of node indices).
class PairCounts {
 public:
  explicit PairCounts(uint32_t nodes) : nodes_(nodes), counts_(size_t{nodes} * nodes, 0) {}
  uint32_t get(uint32_t a, uint32_t b) const { return counts_[size_t{a} * nodes_ + b]; }
  void add(uint32_t a, uint32_t b, int delta) {
    counts_[size_t{a} * nodes_ + b] += delta;
    counts_[size_t{b} * nodes_ + a] += delta;
  }

 private:
  uint32_t nodes_;
  std::vector<uint32_t> counts_;
};

bool contains(const Chain& chain, uint32_t node) {
  return std::find(chain.begin(), chain.end(), node) != chain.end();
}

Status invalid(std::string why) {
  return Status(StatusCode::kInvalidArgument, std::move(why));
}

// Sorts the targets and groups them by node, so nothing after depends on the input order.
Result<std::vector<NodeTargets>> group_by_node(std::span<const PlacementTarget> input) {
  std::vector<PlacementTarget> targets(input.begin(), input.end());
  std::sort(targets.begin(), targets.end(),
            [](const auto& a, const auto& b) { return a.target < b.target; });
  for (size_t i = 0; i < targets.size(); ++i) {
    if (targets[i].target == 0 || targets[i].node == 0) {
      return invalid("placement: target and node ids must not be 0");
    }
    if (i > 0 && targets[i].target == targets[i - 1].target) {
      return invalid(fmt::format("placement: target {} given twice", targets[i].target));
    }
  }
  std::sort(targets.begin(), targets.end(), [](const auto& a, const auto& b) {
    return std::tie(a.node, a.disk, a.target) < std::tie(b.node, b.disk, b.target);
  });
  std::vector<NodeTargets> nodes;
  for (const PlacementTarget& target : targets) {
    if (nodes.empty() || nodes.back().node != target.node) nodes.push_back({target.node, {}});
    nodes.back().targets.push_back(target);
  }
  return nodes;
}

uint64_t targets_up_to(const std::vector<NodeTargets>& nodes, uint64_t level) {
  uint64_t sum = 0;
  for (const NodeTargets& node : nodes) sum += std::min<uint64_t>(node.targets.size(), level);
  return sum;
}

// Decides the number of chains and how many of them each node joins: as many chains as
// the targets allow when no node may join a chain twice (the largest C with
// sum(min(targets, C)) >= replicas * C), then the uses levelled (water-filled) so nodes
// differ by at most one where their targets allow. Returns the chain count.
uint32_t plan_uses(std::vector<NodeTargets>& nodes, uint32_t replicas, PlacementRandom& random) {
  uint64_t low = 0, high = targets_up_to(nodes, UINT64_MAX) / replicas;
  while (low < high) {  // the feasible chain counts are 0..C: the sum is concave in C
    uint64_t mid = (low + high + 1) / 2;
    if (targets_up_to(nodes, mid) >= replicas * mid)
      low = mid;
    else
      high = mid - 1;
  }
  uint64_t chains = low, slots = chains * replicas;
  uint64_t level_low = 0, level_high = chains;  // the highest level that does not overflow
  while (level_low < level_high) {
    uint64_t mid = (level_low + level_high + 1) / 2;
    if (targets_up_to(nodes, mid) <= slots)
      level_low = mid;
    else
      level_high = mid - 1;
  }
  uint64_t level = level_low, extra = slots - targets_up_to(nodes, level);
  // The extra uses (level + 1) go to nodes that have the targets for them: those with the
  // most targets first, the rest of the order drawn, so no node id is favoured.
  std::vector<uint32_t> order(nodes.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  seeded_shuffle(std::span<uint32_t>(order), random);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return nodes[a].targets.size() > nodes[b].targets.size();
  });
  for (uint32_t i : order) {
    nodes[i].uses = static_cast<uint32_t>(std::min<uint64_t>(nodes[i].targets.size(), level));
    if (extra > 0 && nodes[i].targets.size() > level) {
      ++nodes[i].uses;
      --extra;
    }
  }
  MICA_ASSERT(extra == 0);
  return static_cast<uint32_t>(chains);
}

// The next member of `chain`: the node sharing the fewest chains with those already in it,
// then the one with the most uses left (so no node ends with more uses than chains remain),
// then a random one of the tied (reservoir sampling: each equally likely).
uint32_t pick_member(const Chain& chain, const std::vector<uint32_t>& left, const PairCounts& pairs,
                     PlacementRandom& random) {
  uint64_t best_shared = UINT64_MAX;
  uint32_t best_left = 0, best = UINT32_MAX;
  uint64_t ties = 0;
  for (uint32_t node = 0; node < left.size(); ++node) {
    if (left[node] == 0 || contains(chain, node)) continue;
    uint64_t shared = 0;
    for (uint32_t member : chain) shared += pairs.get(node, member);
    if (shared > best_shared || (shared == best_shared && left[node] < best_left)) continue;
    if (shared < best_shared || left[node] > best_left) {
      best = node, best_shared = shared, best_left = left[node], ties = 1;
    } else if (random.below(++ties) == 0) {
      best = node;
    }
  }
  MICA_ASSERT(best != UINT32_MAX);
  return best;
}

// Builds the chains one at a time. A node with as many uses left as chains remain must
// join this chain, or it would need two targets in one later chain; at most `replicas`
// nodes can be in that state because the uses left sum to replicas x chains remaining.
std::vector<Chain> build_chains(const std::vector<NodeTargets>& nodes, uint32_t chain_count,
                                uint32_t replicas, PairCounts& pairs, PlacementRandom& random) {
  std::vector<uint32_t> left(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) left[i] = nodes[i].uses;
  std::vector<Chain> chains(chain_count);
  for (uint32_t c = 0; c < chain_count; ++c) {
    Chain& chain = chains[c];
    uint32_t remaining = chain_count - c;
    for (uint32_t node = 0; node < left.size(); ++node) {
      if (left[node] == remaining) chain.push_back(node);
    }
    MICA_ASSERT(chain.size() <= replicas);
    while (chain.size() < replicas) chain.push_back(pick_member(chain, left, pairs, random));
    for (size_t i = 0; i < chain.size(); ++i) {
      --left[chain[i]];
      for (size_t j = 0; j < i; ++j) pairs.add(chain[i], chain[j], 1);
    }
  }
  return chains;
}

// The local search: swaps one member of a chain with one member of another chain when that
// lowers the cost of the pair counts (their sum of squares, the variance when the total is
// fixed, with a penalty for pairs that share nothing), never putting a node twice in one
// chain. Only members of a pair above hot_level start a search. Swaps that keep the cost
// (up to kSidewaysMovesMax of them, chosen at random among the equal best) let the search
// walk across plateaus where no single swap improves.
class Improver {
 public:
  Improver(std::vector<Chain>& chains, PairCounts& pairs, uint32_t hot_level,
           PlacementRandom& random)
      : chains_(chains), pairs_(pairs), hot_level_(hot_level), random_(random) {}

  void run() {
    for (uint32_t pass = 0; pass < kImprovePassesMax; ++pass) {
      bool improved = false;
      for (uint32_t a = 0; a < chains_.size() && within_budget(); ++a) {
        for (uint32_t xi = 0; xi < chains_[a].size(); ++xi) {
          if (is_hot(a, xi) && improve_member(a, xi)) improved = true;
        }
      }
      if (!improved || !within_budget()) return;
    }
  }

 private:
  bool within_budget() const { return steps_ < kImproveStepsMax; }

  bool is_hot(uint32_t a, uint32_t xi) const {
    uint32_t x = chains_[a][xi];
    for (uint32_t m : chains_[a]) {
      if (m != x && pairs_.get(x, m) > hot_level_) return true;
    }
    return false;
  }

  // Change of the cost if x (in a) and y (in b) trade places. A node in both chains keeps
  // its pairs with x and y, so only the others count.
  int64_t swap_delta(const Chain& a, uint32_t x, const Chain& b, uint32_t y) const {
    int64_t delta = 0;
    for (uint32_t m : a) {
      if (m == x || contains(b, m)) continue;
      delta += lose(pairs_.get(x, m)) + gain(pairs_.get(y, m));
    }
    for (uint32_t m : b) {
      if (m == y || contains(a, m)) continue;
      delta += lose(pairs_.get(y, m)) + gain(pairs_.get(x, m));
    }
    return delta;
  }

  // The cost of a pair sharing n chains is n^2, plus 2 when n is 0: convex, so it evens the
  // counts out like a variance, and it also prefers two pairs at 1 to one at 2 and one at 0
  // (which n^2 alone rates equal), so a node's chains reach every peer they can.
  static int64_t gain(uint32_t n) { return 2 * int64_t{n} + 1 - (n == 0 ? 2 : 0); }
  static int64_t lose(uint32_t n) { return -(2 * int64_t{n} - 1) + (n == 1 ? 2 : 0); }

  // Finds the best swap for member xi of chain a, scanning the other chains from a + 1
  // around; applies it when it improves. True if it did.
  bool improve_member(uint32_t a, uint32_t xi) {
    uint32_t x = chains_[a][xi], count = static_cast<uint32_t>(chains_.size());
    int64_t best = INT64_MAX;
    uint32_t best_b = 0, best_yi = 0;
    uint64_t ties = 0;
    for (uint32_t step = 1; step < count && within_budget(); ++step) {
      uint32_t b = (a + step) % count;
      if (contains(chains_[b], x)) continue;
      for (uint32_t yi = 0; yi < chains_[b].size(); ++yi) {
        uint32_t y = chains_[b][yi];
        if (contains(chains_[a], y)) continue;
        steps_ += chains_[a].size() * chains_[b].size();
        int64_t delta = swap_delta(chains_[a], x, chains_[b], y);
        if (delta < best) {
          best = delta, best_b = b, best_yi = yi, ties = 1;
        } else if (delta == best && random_.below(++ties) == 0) {
          best_b = b, best_yi = yi;
        }
      }
    }
    if (best > 0 || (best == 0 && sideways_ >= kSidewaysMovesMax)) return false;
    if (best == 0) ++sideways_;
    Chain& chain_a = chains_[a];
    Chain& chain_b = chains_[best_b];
    uint32_t y = chain_b[best_yi];
    for (uint32_t m : chain_a) {
      if (m != x) pairs_.add(x, m, -1), pairs_.add(y, m, 1);
    }
    for (uint32_t m : chain_b) {
      if (m != y) pairs_.add(y, m, -1), pairs_.add(x, m, 1);
    }
    chain_a[xi] = y;
    chain_b[best_yi] = x;
    return true;
  }

  std::vector<Chain>& chains_;
  PairCounts& pairs_;
  uint32_t hot_level_;
  PlacementRandom& random_;
  uint64_t steps_ = 0;
  uint64_t sideways_ = 0;
};

// A pair is "hot" above the mean pair count rounded down, but never at 1: below one shared
// chain per pair on average the goal is that no pair shares two.
uint32_t hot_level(size_t nodes, uint32_t chain_count, uint32_t replicas) {
  uint64_t pair_slots = uint64_t{chain_count} * replicas * (replicas - 1) / 2;
  uint64_t pairs = uint64_t{nodes} * (nodes - 1) / 2;
  if (pairs == 0) return 1;  // one node (a one-node dev cluster): no pair to balance
  return static_cast<uint32_t>(std::max<uint64_t>(1, pair_slots / pairs));
}

// Moves one head away from `from` along a path of chains: from gives the head of a chain it
// heads to a member m, m gives one of its own to another member, and so on, until a node
// whose excess is more than `replicas` below from's takes one. Only the two ends change
// their head counts, which lowers the sum of squared excesses; with no such path left that
// sum is minimal (as in a min-cost flow without an improving path). True if it moved one.
bool shift_head(std::vector<Chain>& chains, std::vector<int64_t>& excess, uint32_t from,
                uint32_t replicas) {
  std::vector<std::vector<uint32_t>> headed(excess.size());
  for (uint32_t c = 0; c < chains.size(); ++c) headed[chains[c][0]].push_back(c);
  const auto unseen = static_cast<uint32_t>(chains.size());
  std::vector<uint32_t> via(excess.size(), UINT32_MAX);  // the chain a node was reached by
  via[from] = unseen;
  std::vector<uint32_t> queue{from};
  for (size_t i = 0; i < queue.size(); ++i) {
    for (uint32_t c : headed[queue[i]]) {
      for (uint32_t m : chains[c]) {
        if (via[m] != UINT32_MAX) continue;
        via[m] = c;
        queue.push_back(m);
        if (excess[from] - excess[m] <= int64_t{replicas}) continue;
        excess[from] -= replicas;
        excess[m] += replicas;
        for (uint32_t w = m; w != from;) {  // each chain of the path passes its head on
          Chain& chain = chains[via[w]];
          uint32_t previous = chain[0];
          std::swap(chain[0], *std::find(chain.begin(), chain.end(), w));
          w = previous;
        }
        return true;
      }
    }
  }
  return false;
}

// excess = heads x replicas - uses: zero when a node heads exactly its share.
void balance_heads(std::vector<Chain>& chains, const std::vector<NodeTargets>& nodes,
                   uint32_t replicas, const std::vector<uint32_t>& at) {
  std::vector<int64_t> excess(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    excess[i] = int64_t{at[i * replicas]} * replicas - nodes[i].uses;
  }
  for (uint32_t round = 0; round < kHeadRoundsMax; ++round) {
    bool changed = false;
    for (uint32_t node = 0; node < nodes.size(); ++node) {
      int64_t lowest = *std::min_element(excess.begin(), excess.end());
      if (excess[node] - lowest > int64_t{replicas} && shift_head(chains, excess, node, replicas)) {
        changed = true;
      }
    }
    if (!changed) break;
  }
}

// Orders each chain's members so that every node is head about equally often relative to
// the chains it joins (heads take the writes), and the other positions rotate too (the
// last member is the one a replacement resyncs from). Greedy per position, then heads
// moved along paths of chains while that lowers the imbalance.
void order_members(std::vector<Chain>& chains, const std::vector<NodeTargets>& nodes,
                   uint32_t replicas, PlacementRandom& random) {
  std::vector<uint32_t> at(nodes.size() * replicas, 0);  // at[node * replicas + position]
  for (Chain& chain : chains) {
    for (uint32_t p = 0; p + 1 < replicas; ++p) {
      uint32_t best = p;
      uint64_t ties = 1;
      for (uint32_t q = p + 1; q < replicas; ++q) {
        uint32_t count = at[chain[q] * replicas + p], best_count = at[chain[best] * replicas + p];
        if (count < best_count)
          best = q, ties = 1;
        else if (count == best_count && random.below(++ties) == 0)
          best = q;
      }
      std::swap(chain[p], chain[best]);
    }
    for (uint32_t p = 0; p < replicas; ++p) ++at[chain[p] * replicas + p];
  }
  balance_heads(chains, nodes, replicas, at);
}

// Chooses the targets of one node: its uses spread over its disks round-robin, and each of
// its chains (chain_ids, ascending) placed on the disk whose chains so far share the fewest
// peers with it, so that a lost disk is rebuilt from as many peers as a lost node.
void assign_node_targets(const NodeTargets& node, uint32_t node_index,
                         std::span<const uint32_t> chain_ids, const std::vector<Chain>& chains,
                         size_t node_count, std::vector<std::vector<TargetId>>& out) {
  std::vector<std::vector<TargetId>> disks;  // the node's targets, per disk in disk order
  for (size_t i = 0; i < node.targets.size(); ++i) {
    if (i == 0 || node.targets[i].disk != node.targets[i - 1].disk) disks.emplace_back();
    disks.back().push_back(node.targets[i].target);
  }
  std::vector<uint32_t> capacity(disks.size(), 0), used(disks.size(), 0);
  for (uint32_t taken = 0, round = 0; taken < node.uses; ++round) {
    for (size_t d = 0; d < disks.size() && taken < node.uses; ++d) {
      if (round < disks[d].size()) ++capacity[d], ++taken;
    }
  }
  std::vector<uint32_t> peers_on_disk(disks.size() * node_count, 0);
  for (uint32_t c : chain_ids) {
    const Chain& chain = chains[c];
    size_t best = disks.size();
    uint64_t best_overlap = UINT64_MAX;
    for (size_t d = 0; d < disks.size(); ++d) {
      if (used[d] == capacity[d]) continue;
      uint64_t overlap = 0;
      for (uint32_t m : chain) overlap += peers_on_disk[d * node_count + m];
      bool roomier = best < disks.size() && capacity[d] - used[d] > capacity[best] - used[best];
      if (overlap < best_overlap || (overlap == best_overlap && roomier)) {
        best = d, best_overlap = overlap;
      }
    }
    MICA_ASSERT(best < disks.size());
    for (uint32_t m : chain) {
      if (m != node_index) ++peers_on_disk[best * node_count + m];
    }
    size_t position = std::find(chain.begin(), chain.end(), node_index) - chain.begin();
    out[c][position] = disks[best][used[best]++];
  }
}

std::vector<std::vector<TargetId>> assign_targets(const std::vector<NodeTargets>& nodes,
                                                  const std::vector<Chain>& chains) {
  std::vector<std::vector<uint32_t>> chains_of(nodes.size());
  for (uint32_t c = 0; c < chains.size(); ++c) {
    for (uint32_t m : chains[c]) chains_of[m].push_back(c);
  }
  std::vector<std::vector<TargetId>> out(chains.size());
  for (size_t c = 0; c < chains.size(); ++c) out[c].assign(chains[c].size(), 0);
  for (uint32_t i = 0; i < nodes.size(); ++i) {
    MICA_ASSERT(chains_of[i].size() == nodes[i].uses);
    assign_node_targets(nodes[i], i, chains_of[i], chains, nodes.size(), out);
  }
  return out;
}

}  // namespace

Result<std::vector<std::vector<TargetId>>> generate_chains(const PlacementInput& input) {
  uint32_t replicas = input.replica_count;
  if (replicas == 0 || replicas > kReplicaCountMax) {
    return invalid(
        fmt::format("placement: replica count {} is not in 1..{}", replicas, kReplicaCountMax));
  }
  Result<std::vector<NodeTargets>> grouped = group_by_node(input.targets);
  if (!grouped.ok()) return grouped.status();
  std::vector<NodeTargets> nodes = std::move(grouped).value();
  if (nodes.size() > kPlacementNodesMax) {
    return invalid(
        fmt::format("placement: {} nodes, at most {}", nodes.size(), kPlacementNodesMax));
  }
  if (nodes.size() < replicas) {
    return invalid(fmt::format("placement: {} nodes have targets, {} replicas need as many",
                               nodes.size(), replicas));
  }
  PlacementRandom random(input.seed);
  uint32_t chain_count = plan_uses(nodes, replicas, random);
  PairCounts pairs(static_cast<uint32_t>(nodes.size()));
  std::vector<Chain> chains = build_chains(nodes, chain_count, replicas, pairs, random);
  Improver(chains, pairs, hot_level(nodes.size(), chain_count, replicas), random).run();
  order_members(chains, nodes, replicas, random);
  return assign_targets(nodes, chains);
}

PlacementSpread measure_spread(std::span<const PlacementTarget> targets,
                               std::span<const std::vector<TargetId>> chains) {
  std::vector<NodeId> node_ids;
  for (const PlacementTarget& t : targets) node_ids.push_back(t.node);
  std::sort(node_ids.begin(), node_ids.end());
  node_ids.erase(std::unique(node_ids.begin(), node_ids.end()), node_ids.end());
  std::vector<std::pair<TargetId, uint32_t>> node_of;  // target -> node index, sorted
  for (const PlacementTarget& t : targets) {
    auto index = std::lower_bound(node_ids.begin(), node_ids.end(), t.node) - node_ids.begin();
    node_of.emplace_back(t.target, static_cast<uint32_t>(index));
  }
  std::sort(node_of.begin(), node_of.end());
  auto n = static_cast<uint32_t>(node_ids.size());
  PairCounts pairs(n);
  std::vector<uint32_t> used(n, 0);
  for (const std::vector<TargetId>& chain : chains) {
    Chain members;
    for (TargetId target : chain) {
      auto it = std::lower_bound(node_of.begin(), node_of.end(), std::pair{target, 0u});
      MICA_ASSERT_MSG(it != node_of.end() && it->first == target, "chain names an unknown target");
      members.push_back(it->second);
    }
    for (size_t i = 0; i < members.size(); ++i) {
      ++used[members[i]];
      for (size_t j = 0; j < i; ++j) pairs.add(members[i], members[j], 1);
    }
  }
  PlacementSpread spread{.nodes = n, .pair_min = UINT32_MAX, .peers_min = UINT32_MAX};
  uint64_t pair_sum = 0;
  for (uint32_t a = 0; a < n; ++a) {
    uint32_t peers = 0;
    for (uint32_t b = 0; b < n; ++b) {
      uint32_t shared = a == b ? 0 : pairs.get(a, b);
      if (shared > 0) ++peers, spread.pair_min = std::min(spread.pair_min, shared);
      spread.pair_max = std::max(spread.pair_max, shared);
      if (b > a) pair_sum += shared;
    }
    spread.peers_min = std::min(spread.peers_min, peers);
  }
  if (spread.pair_min == UINT32_MAX) spread.pair_min = 0;
  if (spread.peers_min == UINT32_MAX) spread.peers_min = 0;
  if (n > 1)
    spread.pair_mean = static_cast<double>(pair_sum) / (static_cast<double>(n) * (n - 1) / 2);
  auto [low, high] = std::minmax_element(used.begin(), used.end());
  if (n > 0) spread.targets_per_node_min = *low, spread.targets_per_node_max = *high;
  return spread;
}

}  // namespace mica::craq
