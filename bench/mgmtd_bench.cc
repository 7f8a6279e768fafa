// bench_mgmtd: the chain placement side of the mgmtd suite (bench/run.sh mgmtd).
//
// Builds the chains of one cluster shape (--nodes N, --disks D, --targets-per-disk T,
// --replicas R) with Mica's generator (--placement mica, craq/chain_table.h, seed --seed)
// or with the reference (--placement ring: round k puts nodes k+R*m .. k+R*m+R-1 (mod N)
// in one chain, the copyset-style ring of consecutive nodes), then measures what a failure
// costs. A lost target is rebuilt by the resync protocol from one surviving member of its
// chain, the last one (a replacement joins at the end of the chain and its predecessor
// sends it everything), so each lost chain puts one unit of read load on one peer. Lost
// node: every chain of the node; lost disk: every chain with a target on the disk; lost
// target: one chain, so always exactly one peer reads (printed as such). For every node
// and every disk in turn it records the peers that read, the max/mean of their loads (mean
// over the peers that read; ideal 1.0) and the parallelism (units / the busiest peer's
// units: how many peers' worth of bandwidth the rebuild gets; ideal the number of lost
// chains), and prints the worst over all nodes (disks) as one JSON object on stdout:
//   {"chains": C, "generate_ms": X, "pair_max": P, "node_peers_min": K,
//    "lost_node_peers": .., "lost_node_max_mean": .., "lost_node_parallelism": ..,
//    "lost_disk_peers": .., "lost_disk_max_mean": .., "lost_disk_parallelism": ..,
//    "lost_target_peers": 1}
// Single-threaded; no I/O but stdout.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "bench/flags.h"
#include "craq/chain_table.h"

namespace mica::bench {
namespace {

using craq::NodeId;
using craq::PlacementTarget;
using craq::TargetId;
using Chains = std::vector<std::vector<TargetId>>;

struct Config {
  uint32_t nodes = 180;
  uint32_t disks = 16;
  uint32_t targets_per_disk = 1;
  uint32_t replicas = 3;
  uint64_t seed = 1;
  std::string placement = "mica";
};

// Target (node n, disk d, index i) has id n * 10000 + d * 100 + i + 1 (ids are never 0).
std::vector<PlacementTarget> make_targets(const Config& config) {
  std::vector<PlacementTarget> targets;
  for (uint32_t node = 1; node <= config.nodes; ++node) {
    for (uint32_t disk = 0; disk < config.disks; ++disk) {
      for (uint32_t i = 0; i < config.targets_per_disk; ++i) {
        targets.push_back({TargetId{node} * 10000 + disk * 100 + i + 1, node, disk});
      }
    }
  }
  return targets;
}

// The reference: in round k (one per target of a node) the nodes k + R*m .. k + R*m + R-1
// (mod N), for m = 0 .. N/R - 1, form a chain; each takes its node's next target in disk
// order. Every node pairs with its ring neighbours only.
Chains ring_chains(const Config& config, const std::vector<PlacementTarget>& targets) {
  uint32_t per_node = config.disks * config.targets_per_disk;
  Chains chains;
  std::vector<uint32_t> next(config.nodes, 0);
  for (uint32_t round = 0; round < per_node; ++round) {
    for (uint32_t m = 0; m + 1 <= config.nodes / config.replicas; ++m) {
      std::vector<TargetId> chain;
      for (uint32_t j = 0; j < config.replicas; ++j) {
        uint32_t node = (round + config.replicas * m + j) % config.nodes;
        if (next[node] == per_node) break;
        chain.push_back(targets[size_t{node} * per_node + next[node]++].target);
      }
      if (chain.size() == config.replicas) chains.push_back(std::move(chain));
    }
  }
  return chains;
}

// What one failure costs: the peers that read and how evenly.
struct Rebuild {
  uint32_t peers = 0;
  double max_mean = 0;
  double parallelism = 0;
};

// lost: the chains to rebuild, each without its lost member `gone` (a node).
Rebuild rebuild(const Chains& chains, const std::vector<size_t>& lost, NodeId gone,
                const std::map<TargetId, NodeId>& node_of) {
  std::map<NodeId, uint32_t> load;
  for (size_t c : lost) {
    NodeId source = 0;  // the last member that survives sends the replacement everything
    for (TargetId t : chains[c]) {
      if (node_of.at(t) != gone) source = node_of.at(t);
    }
    if (source != 0) ++load[source];
  }
  Rebuild out;
  if (load.empty()) return out;
  uint32_t max = 0, units = 0;
  for (const auto& [node, count] : load) max = std::max(max, count), units += count;
  out.peers = static_cast<uint32_t>(load.size());
  out.max_mean = max / (static_cast<double>(units) / out.peers);
  out.parallelism = static_cast<double>(units) / max;
  return out;
}

// The worst rebuild over all failures of one kind (all nodes, or all disks).
void worsen(Rebuild& worst, const Rebuild& next, bool first) {
  if (first) {
    worst = next;
    return;
  }
  worst.peers = std::min(worst.peers, next.peers);
  worst.max_mean = std::max(worst.max_mean, next.max_mean);
  worst.parallelism = std::min(worst.parallelism, next.parallelism);
}

void report(const std::vector<PlacementTarget>& targets, const Chains& chains, double generate_ms) {
  std::map<TargetId, NodeId> node_of;
  std::map<TargetId, uint32_t> disk_of;
  for (const PlacementTarget& t : targets) node_of[t.target] = t.node, disk_of[t.target] = t.disk;
  std::map<NodeId, std::vector<size_t>> of_node;
  std::map<std::pair<NodeId, uint32_t>, std::vector<size_t>> of_disk;
  for (size_t c = 0; c < chains.size(); ++c) {
    for (TargetId t : chains[c]) {
      of_node[node_of[t]].push_back(c);
      of_disk[{node_of[t], disk_of[t]}].push_back(c);
    }
  }
  Rebuild node_worst, disk_worst;
  bool first = true;
  for (const auto& [node, lost] : of_node) {
    worsen(node_worst, rebuild(chains, lost, node, node_of), first), first = false;
  }
  first = true;
  for (const auto& [disk, lost] : of_disk) {
    worsen(disk_worst, rebuild(chains, lost, disk.first, node_of), first), first = false;
  }
  craq::PlacementSpread spread = craq::measure_spread(targets, chains);
  std::printf(
      "{\"chains\": %zu, \"generate_ms\": %.3f, \"pair_max\": %u, \"node_peers_min\": %u, "
      "\"lost_node_peers\": %u, \"lost_node_max_mean\": %.3f, \"lost_node_parallelism\": %.3f, "
      "\"lost_disk_peers\": %u, \"lost_disk_max_mean\": %.3f, \"lost_disk_parallelism\": %.3f, "
      "\"lost_target_peers\": 1}\n",
      chains.size(), generate_ms, spread.pair_max, spread.peers_min, node_worst.peers,
      node_worst.max_mean, node_worst.parallelism, disk_worst.peers, disk_worst.max_mean,
      disk_worst.parallelism);
}

int run(const Config& config) {
  std::vector<PlacementTarget> targets = make_targets(config);
  Chains chains;
  double generate_ms = 0;
  if (config.placement == "ring") {
    chains = ring_chains(config, targets);
  } else {
    auto start = std::chrono::steady_clock::now();
    Result<Chains> generated = craq::generate_chains(
        {.targets = targets, .replica_count = config.replicas, .seed = config.seed});
    generate_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!generated.ok()) {
      std::fprintf(stderr, "bench_mgmtd: %s\n", generated.status().to_string().c_str());
      return 1;
    }
    chains = std::move(generated).value();
  }
  report(targets, chains, generate_ms);
  return 0;
}

}  // namespace
}  // namespace mica::bench

int main(int argc, char** argv) {
  mica::bench::Flags flags(argc, argv,
                           "bench_mgmtd [--placement mica|ring] [--nodes N] [--disks D] "
                           "[--targets-per-disk T] [--replicas R] [--seed S]");
  mica::bench::Config config;
  config.placement = flags.text("placement", config.placement);
  config.nodes = static_cast<uint32_t>(flags.number("nodes", config.nodes));
  config.disks = static_cast<uint32_t>(flags.number("disks", config.disks));
  config.targets_per_disk =
      static_cast<uint32_t>(flags.number("targets-per-disk", config.targets_per_disk));
  config.replicas = static_cast<uint32_t>(flags.number("replicas", config.replicas));
  config.seed = static_cast<uint64_t>(flags.number("seed", static_cast<double>(config.seed)));
  flags.finish();
  if (config.placement != "mica" && config.placement != "ring") {
    flags.fail("--placement must be mica or ring");
  }
  return mica::bench::run(config);
}
