// The coordinator: owner of the directory tree. Every operation that creates, removes or
// moves a directory, every rename or link of a file across shards, and every unlink or
// rename of an entry whose inode lives on another shard, runs here; file operations
// inside one shard never do. docs/meta.md ("Coordinator") has the steps and why
// they are safe.
//
// An operation is logged (its own kv/ table in shard 0's process, before any step is
// taken), then driven as idempotent shard steps (meta/shard_steps.h: lock edge, create
// locked edge, create/remove inode, set parent, adjust links, unlock, unlink), each step
// logged as taken. A crash at any point leaves a log that resume() finishes (when the
// operation passed its point of no return) or rolls back (before it): all or nothing. The
// coordinator keeps the directory -> parent map of the whole tree, loaded at open from
// every shard's directories, and refuses a rename that would move a directory into its
// own subtree (kInvalidArgument) before taking any step. Operations on one directory
// edge are serialized; others run concurrently.
//
// Thread rule: executor-bound. It lives on the executor of shard 0 in the process that
// serves shard 0; open() and every call there; close() awaited before destruction. The
// stepper outlives it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "async/metrics.h"
#include "async/task.h"
#include "kv/kv.h"
#include "meta/meta_service.h"

namespace mica::meta {

class ShardStepper;  // meta/shard_steps.h: reaches every shard, local or remote

struct CoordinatorOptions {
  std::string dir;  // its own kv/ environment (the operation log)
  kv::EnvOptions env;
  ShardStepper* stepper = nullptr;
  uint32_t shard_count = 1;
  uint64_t placement_seed = 0;          // new directories' shards: a seeded spread
  uint32_t answers_kept_max = 1 << 16;  // answers of recent RequestTags kept
  // An operation a shard could not be reached for stays logged and is retried this often.
  Duration retry_interval = std::chrono::seconds(1);
  // Nanoseconds since the Unix epoch for the times operations set; nullptr: the executor's
  // clock (virtual time in the simulator). A server passes the system clock.
  std::function<int64_t()> clock_ns;
  MetricLabels metric_labels;
};

// The shard of a new directory `name` in `parent`:
// PlacementRandom(seed ^ parent ^ fnv1a64(name)).below(shard_count).
ShardId directory_shard(uint64_t placement_seed, InodeId parent, std::string_view name,
                        uint32_t shard_count);

class Coordinator {
 public:
  // Opens the log, loads the directory map from the shards and resumes every unfinished
  // operation before it answers anything.
  static Task<Result<std::unique_ptr<Coordinator>>> open(CoordinatorOptions options);
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;
  ~Coordinator();

  Task<Result<InodeReply>> mkdir(const MkdirRequest& request);
  // With request.directory false: an unlink whose entry names an inode of another shard
  // (the inode's shard drops the link; the last one queues GC there).
  Task<Result<RemoveReply>> rmdir(const RemoveRequest& request);
  Task<Result<RenameReply>> rename(const RenameRequest& request);
  Task<Result<InodeReply>> link(const LinkRequest& request);

  uint64_t pending() const;  // operations logged and not finished
  // The directory -> parent map (root: itself), for fsck and tests.
  std::map<InodeId, InodeId> directory_parents() const;
  Task<Status> close();

  struct State;  // the insides (meta/coordinator_state.h)

 private:
  Coordinator() = default;
  std::unique_ptr<State> state_;
};

// How other meta processes hand the coordinator its operations (the same messages as
// MetaService; the process serving shard 0 binds it).
struct CoordinatorService {
  static constexpr net::ServiceId kId = 302;
  static constexpr net::Method<kId, 1, MkdirRequest, InodeReply> mkdir{};
  static constexpr net::Method<kId, 2, RemoveRequest, RemoveReply> rmdir{};
  static constexpr net::Method<kId, 3, RenameRequest, RenameReply> rename{};
  static constexpr net::Method<kId, 4, LinkRequest, InodeReply> link{};
  MICA_SERVICE(CoordinatorService, "coordinator", mkdir, rmdir, rename, link)
};

// CoordinatorService's handlers over a coordinator: each call hops to the coordinator's
// executor (when given and not the server's) and back. The coordinator outlives them.
class CoordinatorHandlers {
 public:
  explicit CoordinatorHandlers(Coordinator* coordinator, Executor* executor = nullptr)
      : coordinator_(coordinator), executor_(executor) {}
  Task<Result<InodeReply>> mkdir(MkdirRequest request, net::CallContext* context);
  Task<Result<RemoveReply>> rmdir(RemoveRequest request, net::CallContext* context);
  Task<Result<RenameReply>> rename(RenameRequest request, net::CallContext* context);
  Task<Result<InodeReply>> link(LinkRequest request, net::CallContext* context);

 private:
  Coordinator* coordinator_;
  Executor* executor_;
};
// The service to add to the RpcServer of the process serving shard 0; handlers outlive it.
net::Service coordinator_service(CoordinatorHandlers* handlers);

}  // namespace mica::meta
