// A metadata shard: one kv/ environment (meta/schema.h's tables) served by one executor,
// answering the operations of meta/meta_service.h that stay inside it, and the steps the
// coordinator drives on it (meta/coordinator.h). docs/meta.md has each operation's rules.
//
// Mutations are decided one at a time on the shard's executor and committed through the
// environment's group-commit writer: a mutation reads through a ShardTxn (the committed
// snapshot overlaid with every write queued before it and not yet committed), decides with
// no co_await in between, and awaits commit(); it answers only once its commit is durable,
// and many mutations share one kv/ transaction. A commit that fails fails the mutation and
// every later one that read its writes through the overlay (they are refused with the same
// status and change nothing). Reads (lookup, getattr, readdir, readlink, xattrs) take a
// short read transaction of the committed state and never wait behind the writer. A
// mutation carrying a RequestTag that was already answered gets the same answer again (the
// requests table keeps recent answers durably, bounded).
//
// Thread rule: executor-bound. open() on the shard's executor; every call there; close()
// awaited before destruction. The routing source and the storage client outlive the shard.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "async/executor.h"
#include "async/metrics.h"
#include "async/task.h"
#include "craq/types.h"
#include "kv/kv.h"
#include "meta/gc.h"
#include "meta/meta_service.h"
#include "meta/schema.h"
#include "meta/shard_steps.h"

namespace mica::craq {
class StorageClient;
}

namespace mica::meta {

class Shard;
class LeaseTable;

struct ShardOptions {
  ShardId shard = 0;
  std::string dir;  // the kv/ environment's directory (created by the caller)
  kv::EnvOptions env;
  uint32_t readdir_page_max = 1024;
  uint32_t requests_kept_max = 1 << 16;  // answers of recent RequestTags kept
  // The routing new files take their layout from (chain tables, chunk sizes) and statfs
  // its capacity from; nullptr or a snapshot without tables: creating a file is kNotFound.
  std::function<const craq::RoutingSnapshot*()> routing;
  // Truncation, last-chunk lengths and garbage collection; nullptr: a size change of a
  // file with chunks is kNotSupported and garbage collection waits.
  craq::StorageClient* storage = nullptr;
  // The executor `storage` belongs to (its pool and routing are not thread-safe): every
  // storage call hops there and back (async/hop.h); nullptr: the shard's own.
  Executor* storage_executor = nullptr;
  // The deadline of one storage step of an operation (truncating a file's chunks).
  Duration storage_timeout = std::chrono::seconds(30);
  // Nanoseconds since the Unix epoch for inode times; nullptr: the executor's clock (virtual
  // time in the simulator). A server passes the system clock.
  std::function<int64_t()> clock_ns;
  MetricLabels metric_labels;
  // The process's leases (meta/lease.h): told of every session opened and ended; nullptr:
  // sessions are kept until closed.
  LeaseTable* leases = nullptr;
  // How long a batched close (CloseRequest::batched) waits for another commit to share.
  Duration batched_commit_delay = std::chrono::milliseconds(2);
  // The shard's garbage collector (meta/gc.h), made and started by open(), stopped by close().
  GcOptions gc;
};

// The overlay view of one mutation (see the contract above). Obtained from
// Shard::begin(); lives in the mutating coroutine's frame; no co_await between begin() and
// commit(). Puts and erases are buffered in the request and become visible to later
// ShardTxns at once (through the overlay), and durable when commit() returns ok.
class ShardTxn {
 public:
  ShardTxn(ShardTxn&&) noexcept;
  ~ShardTxn();  // a txn destroyed without commit() changes nothing

  // Reads: overlay first, then the committed snapshot. kCorruption for a record that does
  // not decode.
  Result<std::optional<Inode>> inode(InodeId id);
  Result<std::optional<DirEntry>> entry(InodeId parent, std::string_view name);
  Result<bool> has_entries(InodeId dir);  // any entry of dir (rmdir)
  Result<std::optional<std::string>> xattr(InodeId inode, std::string_view name);
  Result<std::vector<std::string>> xattr_names(InodeId inode);
  Result<std::vector<SessionRecord>> sessions(InodeId inode);
  Result<std::optional<std::string>> step(std::string_view key);  // the steps table

  void put_inode(const Inode& inode);
  void erase_inode(InodeId id);  // with its xattrs
  void put_entry(InodeId parent, std::string_view name, const DirEntry& entry);
  void erase_entry(InodeId parent, std::string_view name);
  void put_xattr(InodeId inode, std::string_view name, std::string_view value);
  void erase_xattr(InodeId inode, std::string_view name);
  void put_session(const SessionRecord& session);
  void erase_session(InodeId inode, SessionId session);
  void queue_gc(const GcRecord& record);
  void put_step(std::string_view key, std::string_view value);
  void erase_step(std::string_view key);

  // A new inode id of this shard and a new session id (kept in the shard record).
  InodeId allocate_inode();
  SessionId allocate_session();
  // The start index of the next file's layout (rotated per new file).
  uint32_t next_layout_start();

  // Records `answer` (encoded by the caller) under tag, if it names one.
  void remember_answer(RequestTag tag, std::string_view answer);

  // Queues the writes and waits until they are durable (or failed: nothing of this txn
  // happened).
  // `wait_for_company` > 0: the txn is held, not launched, until a later txn's commit
  // launches the generation it is in or the wait runs out (a commit nobody waits for shares
  // the next one's instead of making that one wait behind it).
  Task<Status> commit(Duration wait_for_company = Duration::zero());

  // The txn's data, defined in meta/shard_overlay.h for the shard's own files.
  struct State;

 private:
  friend class Shard;
  explicit ShardTxn(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

struct ShardCounters {
  Counter* operations = nullptr;  // mutations committed
  Counter* commits = nullptr;
  Histogram* batch_size = nullptr;  // mutations per kv/ transaction
};

// mica_meta_shard_commit_batch_size: async/metrics.h's histograms bucket durations by powers
// of two microseconds, so a commit of n mutations is recorded as n microseconds (the bucket
// le="2^i us" counts commits of at most 2^i mutations, _sum times 1e6 is the mutations,
// _count the commits). Finite buckets: batches of 1 to 2^16 mutations.
inline constexpr uint32_t kBatchSizeBuckets = 17;
inline Duration batch_size_sample(uint64_t mutations) {
  return std::chrono::microseconds(static_cast<int64_t>(mutations));
}

// Whether Shard::create's reply hands the open of an existing file to the shard of its
// inode (a create with open always answers a session otherwise).
inline bool is_open_elsewhere(const CreateRequest& request, const CreateReply& reply) {
  return request.open && reply.session == 0 && !reply.created;
}

class Shard {
 public:
  // The overlay of queued writes, defined in meta/shard_overlay.h for the shard's own files.
  struct Overlay;
  static Task<Result<std::unique_ptr<Shard>>> open(ShardOptions options);
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;
  ~Shard();

  ShardId id() const { return options_.shard; }
  const ShardOptions& options() const { return options_; }
  kv::Env* env() { return env_.get(); }
  const ShardTables& tables() const { return tables_; }

  // A mutation's view (see ShardTxn).
  ShardTxn begin();
  // The answer remembered for tag, if any (a retry).
  Result<std::optional<std::string>> remembered_answer(RequestTag tag);
  // A committed-state read transaction (short: never across a co_await).
  Result<std::unique_ptr<kv::ReadTxn>> read();
  // The time inode times take now (ShardOptions::clock_ns).
  int64_t now_ns() const;
  // kWrongShard unless inode lives on this shard.
  Status check_local(InodeId inode) const;

  // ---- operations (meta/meta_service.h) on inodes of this shard ----
  Task<Result<InodeReply>> lookup(const LookupRequest& request);
  Task<Result<InodeReply>> getattr(const GetattrRequest& request);
  Task<Result<InodeReply>> setattr(const SetattrRequest& request);
  // A create with open (not exclusive) of a name whose file inode lives on another shard
  // answers, uncommitted and unremembered, that inode's id and type with session 0
  // (is_open_elsewhere): the server opens it on its own shard (MetaServer::create).
  Task<Result<CreateReply>> create(const CreateRequest& request);
  // unlink only (rmdir is the coordinator's). nullopt when it is the coordinator's: the entry
  // names an inode of another shard (a file, or a directory in a sticky directory), whose
  // nlink and owner live there (meta/meta_server.cc hands it to Coordinator::rmdir).
  Task<Result<std::optional<RemoveReply>>> unlink_here(const RemoveRequest& request);
  // unlink_here for callers without a coordinator: its cases answer kCrossDevice.
  Task<Result<RemoveReply>> unlink(const RemoveRequest& request);
  // A rename of a non-directory between directories of this shard (over a non-directory or
  // nothing); nullopt when it is the coordinator's (a directory moves or is replaced,
  // new_parent lives elsewhere, or the source or replaced entry names another shard's inode).
  Task<Result<std::optional<RenameReply>>> rename(const RenameRequest& request);
  // A link whose inode and new_parent both live here.
  Task<Result<InodeReply>> link(const LinkRequest& request);
  Task<Result<ReadlinkReply>> readlink(const ReadlinkRequest& request);
  // Entries of dir; attrs of inodes of other shards are left empty for the server to fill.
  Task<Result<ReaddirReply>> readdir(const ReaddirRequest& request);
  Task<Result<XattrValue>> get_xattr(const GetXattrRequest& request);
  Task<Result<InodeReply>> set_xattr(const SetXattrRequest& request);
  Task<Result<XattrNames>> list_xattr(const ListXattrRequest& request);
  Task<Result<InodeReply>> remove_xattr(const RemoveXattrRequest& request);
  Task<Result<OpenReply>> open(const OpenRequest& request);
  Task<Result<InodeReply>> report_length(const LengthReport& report);
  Task<Result<InodeReply>> close(const CloseRequest& request);
  Result<ShardStatus> status();
  Result<ScanReply> scan(const ScanRequest& request);

  // ---- the coordinator's steps (meta/shard_steps.h), meta/shard_steps_apply.cc ----
  // Applies a step once (keyed by operation and step number in the steps table) and
  // answers its record to a re-send; an undo inverts it only if it applied.
  Task<Result<StepReply>> apply_step(const StepRequest& request);
  // The coordinator's reads before an operation (committed and queued state).
  Result<ProbeReply> probe_for_step(const ProbeRequest& request);
  // A page of this shard's directory inodes with their parents.
  Result<DirectoryPage> directory_page(const DirectoryPageRequest& request);

  // Ends every session of `client` (its lease lapsed): writers' lengths are recomputed
  // from the storage service, unlinked files no session holds any more are queued for
  // garbage collection.
  Task<Status> end_sessions(ClientId client);

  // The shard's garbage collector (never nullptr once open).
  GcWorker* gc() { return gc_.get(); }

  // Stops background work (garbage collection) and closes the environment.
  Task<Status> close();

 private:
  explicit Shard(ShardOptions options);
  friend class ShardTxn;
  // Sessions (meta/shard_sessions.cc): the length the storage service holds for a file
  // (its last chunk's end; nullopt: nothing to ask), and one lapsed session ended.
  Task<Result<std::optional<uint64_t>>> stored_length(InodeId id);
  Task<Status> end_session_of(SessionRecord session);
  // open()'s steps: tables, the shard record and the in-memory indexes; a fresh shard's
  // record (and root), or an older format's record rewritten at this version.
  Status load();
  Task<Status> create_fresh();

  ShardOptions options_;
  std::unique_ptr<kv::Env> env_;
  ShardTables tables_;
  std::unique_ptr<Overlay> overlay_;
  ShardCounters counters_;
  std::unique_ptr<GcWorker> gc_;
  bool fresh_ = false;
};

}  // namespace mica::meta
