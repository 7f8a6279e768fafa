// The coordinator's shard steps: the messages of ShardStepService (id 301), the ShardStepper
// interface the coordinator (meta/coordinator.h) drives them through, its two
// implementations (local: shards of this process, called directly on their executors;
// remote: RPC through a connection pool, with deadline and retries), and the server half
// that binds the service for a process's shards. docs/meta.md ("Coordinator") has the plans.
//
// A step is one ShardTxn on one shard (meta/shard_steps_apply.cc), keyed by (operation id,
// step number) in the shard's steps table: the first application records its reply in the
// same transaction, and a re-sent step answers that record without applying again. An undo
// (StepRequest::undo) inverts a step only if its record says it applied; otherwise it leaves
// a tombstone under the step's key, so a late copy of the step is refused instead of applied.
// A resolve (StepRequest::resolve) answers a step's record, tombstoning it when absent: the
// coordinator's resume learns whether an operation passed its point of no return.
//
// Thread rule: a stepper is called on the coordinator's executor and suspends; the handlers
// run on the RPC server's executor and hop to each shard's executor. The shard lookup, the
// pool and the routing function outlive the stepper or handlers built on them.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "async/socket_address.h"
#include "async/task.h"
#include "meta/meta_service.h"
#include "meta/types.h"
#include "net/rpc_client.h"
#include "net/service_def.h"

namespace mica {
class Executor;
}

namespace mica::meta {

class Shard;

enum class StepKind : uint8_t {
  kCreateInode = 0,  // inode: a template; its id is allocated here (reply.inode)
  kCreateEntry = 1,  // (parent, name) absent, parent a directory -> entry, created locked
  kLockEntry = 2,    // (parent, name) names entry.inode, unlocked -> locked_by = op
  kRemoveDir = 3,    // inode.id: an empty directory -> erased (kNotEmpty otherwise)
  kDropLink = 4,     // inode.id: a non-directory loses a link (GC at 0 without sessions)
  kAddLink = 5,      // inode.id: a non-directory gains one (kTooManyLinks, kNotFound at 0)
  kSetInode = 6,     // inode.id: parent = new_parent (when set), ctime = time_ns
  kFinishEntry = 7,  // (parent, name) put unlocked (or erased), parent nlink += delta, m/ctime
  kForget = 8,       // erases the records of steps [0, steps) of op on this shard
};
MICA_ENUM_RANGE(StepKind, kCreateInode, kForget)
std::string_view step_kind_name(StepKind kind);

struct StepRequest {
  uint64_t op = 0;    // the coordinator's operation id (never 0)
  uint32_t step = 0;  // the step's number within the operation
  ShardId shard = 0;  // where it applies
  StepKind kind = StepKind::kCreateInode;
  bool undo = false;     // invert step `step` if it applied; tombstone it otherwise
  bool resolve = false;  // answer step `step`'s record; tombstone it when absent
  InodeId parent = 0;
  std::string name;
  DirEntry entry;           // kCreateEntry, kLockEntry (entry.inode expected), kFinishEntry
  bool erase = false;       // kFinishEntry: erase the entry instead of putting it
  Inode inode;              // kCreateInode: the template; others: inode.id names it
  int32_t nlink_delta = 0;  // kFinishEntry: the parent's nlink change
  InodeId new_parent = 0;   // kSetInode: a directory's new parent (0: unchanged)
  int64_t time_ns = 0;      // the operation's time (chosen once, so re-sends agree)
  uint32_t steps = 0;       // kForget
  // A forward step that applies also remembers `answer` (an encoded reply, non-empty) under
  // tag, in the same transaction: the coordinator sets them on the last step on the shard of
  // the request's own entry, where a retry of the request looks first (Shard::unlink_here,
  // Shard::rename), so the retry gets the answer instead of finding the entry gone.
  RequestTag tag;
  std::string answer;
  static constexpr std::string_view kTypeName = "StepRequest";
  MICA_FIELDS(StepRequest, op, step, shard, kind, undo, resolve, parent, name, entry, erase, inode,
              nlink_delta, new_parent, time_ns, steps, tag, answer)
};

// A step's answer (also its durable record). code != 0: the step refused and changed
// nothing (the coordinator rolls the operation back); a tombstone is kCancelled with
// applied false.
struct StepReply {
  uint16_t code = 0;  // a StatusCode
  std::string message;
  bool applied = false;
  std::optional<Inode> inode;  // the inode the step made or changed, afterwards
  bool reclaimed = false;      // kDropLink: the last link went, queued for collection
  Status status() const;
  static StepReply refused(const Status& status);
  static constexpr std::string_view kTypeName = "StepReply";
  MICA_FIELDS(StepReply, code, message, applied, inode, reclaimed)
};

// A read for the coordinator's checks before an operation (no step, changes nothing).
struct ProbeRequest {
  ShardId shard = 0;
  InodeId inode = 0;   // != 0: its inode
  InodeId parent = 0;  // != 0: the entry (parent, name)
  std::string name;
  bool check_empty = false;  // whether `inode` has entries
  static constexpr std::string_view kTypeName = "ProbeRequest";
  MICA_FIELDS(ProbeRequest, shard, inode, parent, name, check_empty)
};
struct ProbeReply {
  std::optional<Inode> inode;
  std::optional<DirEntry> entry;
  bool has_entries = false;
  static constexpr std::string_view kTypeName = "ProbeReply";
  MICA_FIELDS(ProbeReply, inode, entry, has_entries)
};

// A page of a shard's directory inodes (the coordinator's directory -> parent map).
struct DirectoryPageRequest {
  ShardId shard = 0;
  InodeId after = 0;
  uint32_t limit = 0;  // 0: kDirectoryPageMax
  static constexpr std::string_view kTypeName = "DirectoryPageRequest";
  MICA_FIELDS(DirectoryPageRequest, shard, after, limit)
};
struct DirectoryLink {
  InodeId dir = 0;
  InodeId parent = 0;
  static constexpr std::string_view kTypeName = "DirectoryLink";
  MICA_FIELDS(DirectoryLink, dir, parent)
};
struct DirectoryPage {
  std::vector<DirectoryLink> dirs;
  InodeId last = 0;  // the last inode looked at: the next page's `after`
  bool end = false;
  static constexpr std::string_view kTypeName = "DirectoryPage";
  MICA_FIELDS(DirectoryPage, dirs, last, end)
};
inline constexpr uint32_t kDirectoryPageMax = 4096;

struct ShardStepService {
  static constexpr net::ServiceId kId = 301;
  static constexpr net::Method<kId, 1, StepRequest, StepReply> step{};
  static constexpr net::Method<kId, 2, ProbeRequest, ProbeReply> probe{};
  static constexpr net::Method<kId, 3, DirectoryPageRequest, DirectoryPage> directories{};
  MICA_SERVICE(ShardStepService, "shard_steps", step, probe, directories)
};

// How the coordinator reaches every shard. A transport failure is an error status (the
// coordinator retries and, failing that, resumes later); a step's refusal is a StepReply.
class ShardStepper {
 public:
  virtual ~ShardStepper() = default;
  virtual Task<Result<StepReply>> step(StepRequest request) = 0;
  virtual Task<Result<ProbeReply>> probe(ProbeRequest request) = 0;
  virtual Task<Result<DirectoryPage>> directories(DirectoryPageRequest request) = 0;
};

// The shards of this process. shard(id) answers nullptr for a shard served elsewhere
// (kWrongShard); executor(id), when given, is the executor the shard runs on (calls hop
// there and back), otherwise the caller's.
struct LocalShards {
  std::function<Shard*(ShardId)> shard;
  std::function<Executor*(ShardId)> executor;
};

// The server half: ShardStepService's handlers for a process's shards.
class ShardStepHandlers {
 public:
  explicit ShardStepHandlers(LocalShards shards) : shards_(std::move(shards)) {}
  Task<Result<StepReply>> step(StepRequest request, net::CallContext* context);
  Task<Result<ProbeReply>> probe(ProbeRequest request, net::CallContext* context);
  Task<Result<DirectoryPage>> directories(DirectoryPageRequest request, net::CallContext* context);
  const LocalShards& shards() const { return shards_; }

 private:
  LocalShards shards_;
};
// The service to add to the process's RpcServer; handlers outlive it.
net::Service shard_step_service(ShardStepHandlers* handlers);

// Calls the shards of this process directly (no RPC).
std::unique_ptr<ShardStepper> local_shard_stepper(LocalShards shards);

struct RemoteStepperOptions {
  Duration attempt_timeout = std::chrono::seconds(5);
  uint32_t attempts_max = 5;
  Duration backoff_initial = std::chrono::milliseconds(20);
  Duration backoff_max = std::chrono::seconds(1);
};
// Calls each shard's process through the pool: address(shard) from routing (nullopt: not
// served now, retried like a transport failure). A step is idempotent, so a retry after a
// lost answer is safe. Shards `local` serves are called directly.
std::unique_ptr<ShardStepper> remote_shard_stepper(
    net::ConnectionPool* pool, std::function<std::optional<SocketAddress>(ShardId)> address,
    LocalShards local = {}, RemoteStepperOptions options = {});

}  // namespace mica::meta
