// Scenario meta_coordinator's shared pieces (tests/sim/meta_coordinator.cc runs it): the
// node on the simulated host (three shards on the simulated kv store, the local stepper
// behind a counting wrapper that injects the crash, the coordinator), the operations of
// the workload, and the checks (tests/sim/meta_coordinator_check.cc): a canonical text of
// the namespace by paths, and fsck-like invariants over every shard and the coordinator.
//
// Thread rule: one simulated host, one executor; functions returning a Task suspend.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "meta/coordinator.h"
#include "meta/shard.h"
#include "meta/shard_steps.h"

namespace mica::sim::meta_coordinator {

using meta::InodeId;
using meta::ShardId;

inline constexpr uint32_t kShards = 3;

// Counts the steps the coordinator sends and calls on_step with each new count (the
// scenario schedules the crash from it).
class CountingStepper final : public meta::ShardStepper {
 public:
  explicit CountingStepper(meta::ShardStepper* inner) : inner_(inner) {}
  std::function<void(uint64_t)> on_step;
  Task<Result<meta::StepReply>> step(meta::StepRequest request) override {
    ++steps_;
    if (on_step) on_step(steps_);
    return inner_->step(std::move(request));
  }
  Task<Result<meta::ProbeReply>> probe(meta::ProbeRequest request) override {
    return inner_->probe(std::move(request));
  }
  Task<Result<meta::DirectoryPage>> directories(meta::DirectoryPageRequest request) override {
    return inner_->directories(std::move(request));
  }

 private:
  meta::ShardStepper* inner_;
  uint64_t steps_ = 0;
};

struct Node {
  std::vector<std::unique_ptr<meta::Shard>> shards;
  std::unique_ptr<meta::ShardStepper> local;
  std::unique_ptr<CountingStepper> counting;
  std::unique_ptr<meta::Coordinator> coordinator;
  uint32_t close_failures = 0;  // closes that failed (after a crash they may; not a check)
  meta::Shard* shard(ShardId id) { return id < shards.size() ? shards[id].get() : nullptr; }
};

// Opens the shards and the coordinator (which resumes); on_step goes to the stepper.
Task<Status> open_node(Node* node, std::function<void(uint64_t)> on_step);
Task<void> close_node(Node* node);

enum class OpKind : uint8_t { kMkdir, kRmdir, kRename, kNoreplace, kExchange, kLink };
struct Op {
  OpKind kind = OpKind::kMkdir;
  std::vector<std::string> from;  // a path from the root
  std::vector<std::string> to;    // rename's and link's second path
};
std::vector<Op> make_ops(uint64_t seed, size_t count);
std::string describe(const Op& op);
// Runs op through the coordinator (paths resolved by probes): its status code.
Task<StatusCode> run_op(Node* node, Op op);

// Files present before the workload: /f and /g (put straight into shard 0).
Task<Status> add_files(Node* node);

// The namespace by paths: one line per entry ("/a/f file nlink=1 same-as=/g"), sorted.
Result<std::string> canonical(Node* node);
// Every invariant a finished coordinator leaves: "" or what is wrong.
std::string fsck(Node* node);

}  // namespace mica::sim::meta_coordinator
