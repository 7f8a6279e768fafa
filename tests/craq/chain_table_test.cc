// Chain placement (craq/chain_table.h): the generator's guarantees over cluster shapes of 3
// to 200 nodes, its golden outputs (so a change of the algorithm or of the PRNG shows),
// and the inputs it refuses.
//
// Time cap: the whole file runs in under 10 s in the g++ Debug build on one core (about
// 2 s measured; the sweep generates 1,296 placements once and every property test reads
// them; 528 under ASan, about 5 s). Every placement has its own seed.
#include "craq/chain_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "async/sim/random.h"

namespace mica::craq {
namespace {

struct Shape {
  uint32_t nodes = 0;
  uint32_t targets_per_node = 0;
  uint32_t disks = 1;  // target k of a node sits on disk k % disks
  uint32_t replicas = 3;
};

std::vector<PlacementTarget> make_targets(const Shape& shape) {
  std::vector<PlacementTarget> targets;
  for (uint32_t node = 1; node <= shape.nodes; ++node) {
    for (uint32_t k = 0; k < shape.targets_per_node; ++k) {
      targets.push_back(
          {.target = TargetId{node} * 1000 + k + 1, .node = node, .disk = k % shape.disks});
    }
  }
  return targets;
}

using Chains = std::vector<std::vector<TargetId>>;

Chains generate(const std::vector<PlacementTarget>& targets, uint32_t replicas, uint64_t seed) {
  Result<Chains> chains =
      generate_chains({.targets = targets, .replica_count = replicas, .seed = seed});
  EXPECT_TRUE(chains.ok()) << chains.status();
  return chains.ok() ? std::move(chains).value() : Chains{};
}

// One generated placement of the sweep.
struct Case {
  Shape shape;
  uint64_t seed = 0;
  std::vector<PlacementTarget> targets;
  Chains chains;
  std::string name() const {
    return fmt::format("{} nodes x {} targets on {} disks, {} replicas, seed {}", shape.nodes,
                       shape.targets_per_node, shape.disks, shape.replicas, seed);
  }
};

// Shapes of up to this many nodes run kSmallSeeds seeds each (with the disk count varied
// too); bigger ones one seed, which is what keeps the Debug build under its cap. Under
// AddressSanitizer (about three times slower) every shape runs one seed.
#if defined(__SANITIZE_ADDRESS__)
#define MICA_CHAIN_TABLE_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MICA_CHAIN_TABLE_SANITIZED 1
#endif
#endif
constexpr uint32_t kSmallNodesMax = 64;
#ifdef MICA_CHAIN_TABLE_SANITIZED
constexpr uint32_t kSmallSeeds = 1;
#else
constexpr uint32_t kSmallSeeds = 3;
#endif

// The sweep: every node count of the issue with 1..16 targets per node, 1..4 disks (varied
// with the target count) and 1..3 replicas, generated once for all the property tests.
const std::vector<Case>& sweep() {
  static const std::vector<Case> cases = [] {
    std::vector<Case> out;
    for (uint32_t replicas = 1; replicas <= 3; ++replicas) {
      for (uint32_t nodes : {3, 4, 5, 7, 10, 16, 32, 64, 100, 180, 200}) {
        for (uint32_t t = 1; t <= 16; ++t) {
          for (uint32_t s = 0; s < (nodes <= kSmallNodesMax ? kSmallSeeds : 1); ++s) {
            Case c{.shape = {nodes, t, 1 + (t + nodes + s) % 4, replicas}, .seed = out.size()};
            c.targets = make_targets(c.shape);
            c.chains = generate(c.targets, replicas, c.seed);
            out.push_back(std::move(c));
          }
        }
      }
    }
    return out;
  }();
  return cases;
}

std::map<TargetId, PlacementTarget> by_id(const std::vector<PlacementTarget>& targets) {
  std::map<TargetId, PlacementTarget> out;
  for (const PlacementTarget& t : targets) out[t.target] = t;
  return out;
}

TEST(ChainTable, NoChainHasTwoTargetsOfOneNodeAndNoTargetServesTwoChains) {
  for (const Case& c : sweep()) {
    SCOPED_TRACE(c.name());
    auto targets = by_id(c.targets);
    std::set<TargetId> used;
    // As many chains as the targets allow: every node is in at most one slot per chain.
    EXPECT_EQ(c.chains.size(), c.shape.nodes * c.shape.targets_per_node / c.shape.replicas);
    for (const auto& chain : c.chains) {
      ASSERT_EQ(chain.size(), c.shape.replicas);
      std::set<NodeId> nodes;
      for (TargetId target : chain) {
        ASSERT_TRUE(targets.contains(target));
        EXPECT_TRUE(used.insert(target).second) << "target " << target << " used twice";
        EXPECT_TRUE(nodes.insert(targets[target].node).second) << "node twice in a chain";
      }
    }
  }
}

TEST(ChainTable, NodesUseTheSameNumberOfTargetsWithinOne) {
  for (const Case& c : sweep()) {
    SCOPED_TRACE(c.name());
    PlacementSpread spread = measure_spread(c.targets, c.chains);
    EXPECT_LE(spread.targets_per_node_max - spread.targets_per_node_min, 1u);
  }
}

// The tolerance: when every node joins the same number of chains, the pair counts differ by
// at most one, which is the best any placement can do unless the mean is an integer (and
// then only a perfect block design does better). When uses differ by one (the target count
// does not divide by the replicas), the nodes with one use less share fewer chains with
// everyone, so the spread may be two.
TEST(ChainTable, EveryPairOfNodesSharesAboutAsManyChains) {
  for (const Case& c : sweep()) {
    if (c.shape.replicas < 2) continue;
    SCOPED_TRACE(c.name());
    PlacementSpread spread = measure_spread(c.targets, c.chains);
    bool even = spread.targets_per_node_min == spread.targets_per_node_max;
    EXPECT_LE(spread.pair_max - spread.pair_min, even ? 1u : 2u);
    // Every node reaches as many peers as its slots allow: all others when it has the slots.
    uint32_t reachable =
        std::min(c.shape.nodes - 1, spread.targets_per_node_min * (c.shape.replicas - 1));
    EXPECT_EQ(spread.peers_min, reachable);
  }
}

// Heads take the writes: each node heads its share (uses / replicas) of chains, within one
// either way, so the most and the fewest heads differ by at most two.
TEST(ChainTable, EveryNodeIsHeadOfAboutItsShareOfChains) {
  for (const Case& c : sweep()) {
    SCOPED_TRACE(c.name());
    auto targets = by_id(c.targets);
    std::map<NodeId, uint32_t> heads, uses;
    for (const auto& chain : c.chains) {
      ++heads[targets[chain[0]].node];
      for (TargetId t : chain) ++uses[targets[t].node];
    }
    uint32_t r = c.shape.replicas;
    for (const auto& [node, count] : uses) {
      EXPECT_LE(heads[node] * r, count + r) << "node " << node;
      EXPECT_GE(heads[node] * r + r, count) << "node " << node;
    }
  }
}

// A node's chains are spread over its disks as evenly as the disks' targets allow, and in
// the sparse shapes (a node's chains reach distinct peers) a lost disk is rebuilt from
// (replicas - 1) distinct peers per chain of the disk.
TEST(ChainTable, ANodesChainsAreSpreadOverItsDisks) {
  for (const Case& c : sweep()) {
    SCOPED_TRACE(c.name());
    auto targets = by_id(c.targets);
    std::map<std::pair<NodeId, uint32_t>, std::vector<size_t>> chains_on_disk;
    for (size_t i = 0; i < c.chains.size(); ++i) {
      for (TargetId t : c.chains[i])
        chains_on_disk[{targets[t].node, targets[t].disk}].push_back(i);
    }
    std::map<NodeId, std::pair<size_t, size_t>> low_high;  // chains per disk, per node
    bool sparse = measure_spread(c.targets, c.chains).pair_max <= 1;
    for (const auto& [disk, chains] : chains_on_disk) {
      auto [it, fresh] = low_high.try_emplace(disk.first, chains.size(), chains.size());
      it->second.first = std::min(it->second.first, chains.size());
      it->second.second = std::max(it->second.second, chains.size());
      std::set<NodeId> peers;
      for (size_t i : chains) {
        for (TargetId t : c.chains[i]) peers.insert(targets[t].node);
      }
      peers.erase(disk.first);
      size_t slots = chains.size() * (c.shape.replicas - 1);
      if (sparse) {
        EXPECT_EQ(peers.size(), slots);
      }
    }
    for (const auto& [node, range] : low_high) {
      // A disk without a chain does not appear: only when the node has fewer uses than disks.
      EXPECT_LE(range.second, range.first + 1) << "node " << node << " uneven disks";
    }
  }
}

TEST(ChainTable, TheResultDoesNotDependOnTheOrderOfTheTargets) {
  Shape shape{.nodes = 12, .targets_per_node = 5, .disks = 2, .replicas = 3};
  std::vector<PlacementTarget> targets = make_targets(shape);
  Chains sorted = generate(targets, 3, 9);
  std::reverse(targets.begin(), targets.end());
  EXPECT_EQ(generate(targets, 3, 9), sorted);
  PlacementRandom random(5);
  seeded_shuffle(std::span<PlacementTarget>(targets), random);
  EXPECT_EQ(generate(targets, 3, 9), sorted);
}

TEST(ChainTable, TheSeedChangesTheChainsButNotTheirQuality) {
  std::vector<PlacementTarget> targets = make_targets({.nodes = 20, .targets_per_node = 6});
  Chains first = generate(targets, 3, 1), second = generate(targets, 3, 2);
  EXPECT_NE(first, second);
  EXPECT_EQ(measure_spread(targets, first).pair_max, measure_spread(targets, second).pair_max);
}

TEST(ChainTable, GoldenChainsForFixedInputs) {
  // Any change here changes every new chain table: update only on purpose.
  EXPECT_EQ(generate(make_targets({4, 2, 1, 3}), 3, 0),
            (Chains{{2001, 3001, 4001}, {4002, 2002, 1001}}));
  EXPECT_EQ(generate(make_targets({5, 3, 2, 2}), 2, 7), (Chains{{4001, 2001},
                                                                {5001, 3001},
                                                                {1001, 4003},
                                                                {2003, 1003},
                                                                {3003, 2002},
                                                                {4002, 5002},
                                                                {3002, 1002}}));
  EXPECT_EQ(generate(make_targets({7, 3, 3, 3}), 3, 1), (Chains{{1001, 5001, 7001},
                                                                {5002, 6001, 2001},
                                                                {3001, 4001, 5003},
                                                                {4002, 2002, 7002},
                                                                {6002, 1002, 4003},
                                                                {2003, 3002, 1003},
                                                                {7003, 3003, 6003}}));
}

TEST(ChainTable, PlacementRandomHasAFixedOutputPerSeed) {
  PlacementRandom zero(0), one(1);
  EXPECT_EQ(zero.next(), 0x99ec5f36cb75f2b4ull);
  EXPECT_EQ(zero.next(), 0xbf6e1f784956452aull);
  EXPECT_EQ(zero.next(), 0x1a5f849d4933e6e0ull);
  EXPECT_EQ(one.next(), 0xb3f2af6d0fc710c5ull);
  EXPECT_EQ(one.next(), 0x853b559647364ceaull);
  EXPECT_EQ(one.next(), 0x92f89756082a4514ull);
  PlacementRandom bounded(42);
  std::vector<uint64_t> draws;
  for (int i = 0; i < 8; ++i) draws.push_back(bounded.below(10));
  EXPECT_EQ(draws, (std::vector<uint64_t>{2, 2, 9, 3, 6, 4, 4, 7}));
}

// The same specification as the simulator's generator (xoshiro256** seeded by splitmix64):
// two copies of one algorithm, kept apart so that neither module constrains the other.
TEST(ChainTable, PlacementRandomDrawsWhatTheSimulatorsGeneratorDraws) {
  for (uint64_t seed : {0ull, 1ull, 0xdeadbeefull}) {
    PlacementRandom placement(seed);
    sim::SimRandom simulator(seed);
    for (int i = 0; i < 100; ++i) ASSERT_EQ(placement.next(), simulator.next());
  }
}

TEST(ChainTable, SeededShuffleHasAFixedOutput) {
  std::vector<int> items{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  PlacementRandom random(7);
  seeded_shuffle(std::span<int>(items), random);
  EXPECT_EQ(items, (std::vector<int>{8, 3, 9, 0, 7, 2, 1, 6, 5, 4}));
}

TEST(ChainTable, RefusesFewerNodesThanReplicasAndReplicaCountZero) {
  std::vector<PlacementTarget> targets = make_targets({.nodes = 2, .targets_per_node = 8});
  EXPECT_EQ(generate_chains({.targets = targets, .replica_count = 3}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(generate_chains({.targets = targets, .replica_count = 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(generate_chains({.targets = {}, .replica_count = 1}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(generate_chains({.targets = targets, .replica_count = 2}).ok());
  EXPECT_EQ(generate_chains({.targets = targets, .replica_count = 17}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ChainTable, RefusesMoreNodesThanItsLimit) {
  std::vector<PlacementTarget> targets =
      make_targets({.nodes = kPlacementNodesMax + 1, .targets_per_node = 1});
  EXPECT_EQ(generate_chains({.targets = targets}).status().code(), StatusCode::kInvalidArgument);
  targets.pop_back();  // exactly at the limit is fine
  EXPECT_TRUE(generate_chains({.targets = targets}).ok());
}

TEST(ChainTable, RefusesATargetGivenTwiceAndIdZero) {
  std::vector<PlacementTarget> targets = make_targets({.nodes = 3, .targets_per_node = 2});
  std::vector<PlacementTarget> twice = targets;
  twice.push_back({.target = targets[0].target, .node = 3});
  EXPECT_EQ(generate_chains({.targets = twice}).status().code(), StatusCode::kInvalidArgument);
  std::vector<PlacementTarget> zero = targets;
  zero.push_back({.target = 0, .node = 1});
  EXPECT_EQ(generate_chains({.targets = zero}).status().code(), StatusCode::kInvalidArgument);
}

// Uneven nodes: a node with few targets gives all of them; one with more targets than there
// can be chains gives only one per chain; the others level out.
TEST(ChainTable, NodesWithFewOrManyTargetsUseWhatTheyCan) {
  std::vector<PlacementTarget> targets = make_targets({.nodes = 6, .targets_per_node = 4});
  for (uint32_t k = 0; k < 2; ++k) targets.push_back({.target = 90001 + k, .node = 90});
  Chains chains = generate(targets, 3, 3);
  std::map<NodeId, uint32_t> uses;
  auto ids = by_id(targets);
  for (const auto& chain : chains) {
    for (TargetId t : chain) ++uses[ids[t].node];
  }
  EXPECT_EQ(chains.size(), 26u / 3);
  EXPECT_EQ(uses[90], 2u);
  for (NodeId node = 1; node <= 6; ++node) EXPECT_GE(uses[node], 3u) << node;

  std::vector<PlacementTarget> lopsided = make_targets({.nodes = 3, .targets_per_node = 2});
  for (uint32_t k = 0; k < 10; ++k) lopsided.push_back({.target = 80001 + k, .node = 80});
  // Three chains: node 80 joins each once; the six other targets fill the other slots.
  Chains few = generate(lopsided, 3, 0);
  ASSERT_EQ(few.size(), 3u);
  auto lopsided_ids = by_id(lopsided);
  for (const auto& chain : few) {
    EXPECT_EQ(std::count_if(chain.begin(), chain.end(),
                            [&](TargetId t) { return lopsided_ids[t].node == 80; }),
              1);
  }
}

TEST(ChainTable, MeasureSpreadCountsSharedChainsPeersAndUses) {
  std::vector<PlacementTarget> targets = make_targets({.nodes = 4, .targets_per_node = 2});
  // Nodes 1-2 share two chains, 1-3 and 2-3 one each, node 4 is in none.
  Chains chains{{1001, 2001}, {1002, 2002, 3001}};
  PlacementSpread spread = measure_spread(targets, chains);
  EXPECT_EQ(spread.nodes, 4u);
  EXPECT_EQ(spread.pair_max, 2u);
  EXPECT_EQ(spread.pair_min, 1u);
  EXPECT_DOUBLE_EQ(spread.pair_mean, 4.0 / 6);
  EXPECT_EQ(spread.peers_min, 0u);
  EXPECT_EQ(spread.targets_per_node_min, 0u);
  EXPECT_EQ(spread.targets_per_node_max, 2u);
}

// A one-node cluster (`mica dev up --storage 1`): each target is its own chain of one. It
// once divided by the number of node pairs, which is zero here.
TEST(ChainTable, OneNodeWithOneReplicaMakesAChainOfEachTarget) {
  PlacementInput input{
      .targets = {{.target = 1, .node = 1, .disk = 0}, {.target = 2, .node = 1, .disk = 0}},
      .replica_count = 1,
      .seed = 0};
  Result<std::vector<std::vector<TargetId>>> chains = generate_chains(input);
  ASSERT_TRUE(chains.ok()) << chains.status();
  EXPECT_EQ(chains->size(), 2u);
}

}  // namespace
}  // namespace mica::craq
