// The coordinator's insides (meta/coordinator.h): the operation record it logs, its state,
// and the planning functions (meta/coordinator_plan.cc) that check an operation and turn it
// into steps. Not part of the coordinator's interface; docs/meta.md ("Coordinator") has the
// plans and why a crash anywhere in them is safe.
//
// Thread rule: as the Coordinator — everything on its executor; functions returning a Task
// suspend, the rest does not.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "async/scope.h"
#include "async/sync.h"
#include "meta/coordinator.h"
#include "meta/shard_steps.h"

// CO_TRY_ASSIGN for plain functions returning Result or Status.
#define META_TRY_ASSIGN(decl, expr)                              \
  auto MICA_CONCAT(meta_try_, __LINE__) = (expr);                \
  if (!MICA_CONCAT(meta_try_, __LINE__).ok())                    \
    return std::move(MICA_CONCAT(meta_try_, __LINE__)).status(); \
  decl = std::move(MICA_CONCAT(meta_try_, __LINE__)).value()

namespace mica::meta {

// kUnlink: a file's entry whose inode lives on another shard than the entry.
enum class OpKind : uint8_t { kMkdir = 0, kRmdir = 1, kRename = 2, kLink = 3, kUnlink = 4 };
MICA_ENUM_RANGE(OpKind, kMkdir, kUnlink)

inline constexpr int32_t kNoStep = -1;

// One logged operation: written before its first step, rewritten after each step taken,
// erased when it finished or rolled back. Steps [0, decision) are reversible; once step
// `decision` applied the operation only goes forward.
struct OpRecord {
  uint64_t id = 0;
  OpKind kind = OpKind::kMkdir;
  RequestTag tag;
  std::vector<StepRequest> plan;
  uint32_t decision = 0;
  uint32_t taken = 0;
  std::vector<StepReply> replies;  // of the steps taken, in order
  // The answer: the inode of reply `inode_step` (mkdir, rmdir, link; rename's moved one)
  // and rename's replaced inode from reply `replaced_step`.
  int32_t inode_step = kNoStep;
  int32_t replaced_step = kNoStep;
  // The directory -> parent map once done (mkdir: the new id comes from step 0's reply).
  std::vector<DirectoryLink> map_set;
  std::vector<InodeId> map_erase;
  bool finished = false;  // not logged: set once it finished or rolled back
  static constexpr std::string_view kTypeName = "OpRecord";
  MICA_FIELDS(OpRecord, id, kind, tag, plan, decision, taken, replies, inode_step, replaced_step,
              map_set, map_erase)
};

// What planning an operation gives: a refusal, an answer without steps (a rename onto
// itself), or a plan to log and drive.
struct Planned {
  std::optional<RenameReply> answer;
  OpRecord record;
  bool moves_directory = false;  // serialized with every other such rename (loop check)
};

struct Coordinator::State {
  CoordinatorOptions options;
  std::unique_ptr<kv::Env> env;
  kv::Table ops = 0;
  kv::Table answers = 0;
  kv::Table answer_order = 0;
  kv::Table counters = 0;
  uint64_t next_op = 1;
  uint64_t next_answer = 1;
  uint64_t first_answer = 1;           // the oldest answer kept
  std::map<InodeId, InodeId> parents;  // directory -> parent (root: itself)
  std::map<uint64_t, std::unique_ptr<OpRecord>> active;
  std::map<std::string, std::shared_ptr<Event>> in_flight_tags;
  Mutex tree;            // renames that move a directory to another parent, one at a time
  TaskScope background;  // operations retried after an error
  bool closing = false;
  Counter* started = nullptr;
  Counter* rolled_back = nullptr;
  Counter* resumed = nullptr;

  ShardStepper* stepper() const { return options.stepper; }
  int64_t now_ns() const;

  // Planning (meta/coordinator_plan.cc): refusals before any step.
  Task<Result<Planned>> plan_mkdir(MkdirRequest request);
  Task<Result<Planned>> plan_rmdir(RemoveRequest request);  // unlink too (directory false)
  Task<Result<Planned>> plan_unlink(RemoveRequest request);
  Task<Result<Planned>> plan_link(LinkRequest request);
  Task<Result<Planned>> plan_rename(RenameRequest request);
  // Whether dir is x or one of x's ancestors (the parent map, shards for ids it lacks).
  Task<Result<bool>> is_ancestor(InodeId dir, InodeId x);

  // Driving (meta/coordinator.cc).
  // Logs and drives a planned operation; its encoded answer once it finished.
  Task<Result<std::string>> execute(Planned planned);
  Task<Result<std::optional<std::string>>> claim_tag(RequestTag tag);
  void release_tag(RequestTag tag);
  std::string answer_of(const OpRecord& record) const;
  Task<Status> drive(OpRecord* record);   // from record->taken
  Task<Status> resume(OpRecord* record);  // after a restart or an error
  Task<Status> roll_back(OpRecord* record, uint32_t upto);
  Task<Status> finish(OpRecord* record, bool done);
  Task<Result<StepReply>> send(StepRequest request);
  Task<Status> log(const OpRecord& record);
  Task<void> retry_later(uint64_t op);
  void took_first_step(OpRecord* record);
  void apply_map(const OpRecord& record);
  Result<std::optional<std::string>> remembered(RequestTag tag);
};

std::string tag_key(RequestTag tag);

}  // namespace mica::meta
