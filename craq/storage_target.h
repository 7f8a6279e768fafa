// StorageTarget and StorageTargets: the targets one mica-storage process serves, each a chunk
// engine with its place in its chain as the latest routing snapshot says, and the table of
// them that every part of the storage server (updates, reads, resync, scrub) looks up.
//
// A target's ChainView is recomputed from each routing snapshot (apply_routing): its chain,
// the chain version, its public state, its predecessor and successor among the targets that
// take writes (serving, then the syncing one) and the chain's tail for reads (the last
// serving target). Requests are checked against it with for_request(): a request whose chain
// version differs is kStaleChain, one for a chain this node has no target in, or whose
// target is not in a state to take it, kNotServing. What a target reports to mgmtd (its
// LocalState and the chain version it refers to) is kept here too: kOnline after start and
// while behind, kUpToDate at a chain version once it served at it or finished a resync.
//
// Ownership and threads: the StorageServer owns the table; the table owns the targets and
// their engines. Everything runs on the server's one executor; open() and close() suspend,
// the lookups and apply_routing() do not. Pointers to targets stay valid until close().
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "async/metrics.h"
#include "async/socket_address.h"
#include "async/sync.h"
#include "chunk/chunk_locks.h"
#include "chunk/engine.h"
#include "craq/mgmtd_service.h"
#include "craq/storage_service.h"
#include "craq/types.h"

namespace mica::craq {

// One target's directory and limits, as the server's config names it.
struct StorageTargetConfig {
  std::string path;  // the chunk engine's directory (holds target_identity too)
  std::string disk;  // the node's name for its disk, for people (defaults to path)
  chunk::ChunkEngineConfig engine;
};

// This target's place in its chain (from the latest routing snapshot).
struct ChainView {
  ChainId chain = 0;  // 0: in no chain (yet)
  uint64_t version = 0;
  PublicState state = PublicState::kOffline;
  bool head = false;  // the first serving target: takes client updates
  bool tail = false;  // the last target that takes writes: commits at once
  // The next target that takes writes (serving, or the syncing one), and its node's address.
  TargetId successor = 0;
  PublicState successor_state = PublicState::kOffline;
  std::string successor_address;
  TargetId predecessor = 0;
  // The last serving target, which apportioned queries ask (may be this one).
  TargetId read_tail = 0;
  std::string read_tail_address;
};

struct TargetCounters {
  uint64_t updates = 0;
  uint64_t update_bytes = 0;
  uint64_t forwards = 0;
  uint64_t reads = 0;
  uint64_t read_bytes = 0;
  uint64_t dirty_reads = 0;          // answered kDirty
  uint64_t version_queries = 0;      // apportioned queries sent
  uint64_t busy_refusals = 0;        // kBusy: the in-flight limit was reached
  uint64_t duplicates = 0;           // retries recognised by their update tag
  uint64_t checksum_mismatches = 0;  // a successor's chunk checksum differed from ours
};

class StorageTarget {
 public:
  StorageTarget(StorageTargetConfig config, std::string identity,
                std::unique_ptr<chunk::ChunkEngine> engine, uint32_t updates_in_flight_max);

  TargetId id() const { return id_; }
  void set_id(TargetId id) { id_ = id; }
  const std::string& identity() const { return identity_; }
  const StorageTargetConfig& config() const { return config_; }
  chunk::ChunkEngine& engine() { return *engine_; }
  const ChainView& view() const { return view_; }
  void set_view(ChainView view) { view_ = std::move(view); }

  // What the next heartbeat reports for this target.
  LocalState local_state() const { return local_; }
  uint64_t local_chain_version() const { return local_chain_version_; }
  // While a chunk the target could not repair is held (mark_unrepairable), the target stays
  // kOffline whatever is set here: routing or a resync must not put the rot back in service.
  void set_local(LocalState state, uint64_t chain_version) {
    local_ = unrepaired_.empty() ? state : LocalState::kOffline;
    local_chain_version_ = chain_version;
  }
  // A corrupt chunk no peer could repair: kOffline from now on, until every such chunk is
  // repaired (mark_repaired) or the process restarts (a new StorageTarget is opened).
  void mark_unrepairable(chunk::ChunkId chunk);
  // The chunk is whole again; with no unrepaired chunk left the target reports itself
  // kUpToDate when it serves (its copy is the chain's again), else kOnline (behind).
  void mark_repaired(chunk::ChunkId chunk);
  bool has_unrepaired() const { return !unrepaired_.empty(); }

  // A removal this target passed down the chain and has not applied itself yet (the tail
  // removes first): the committed state the chunk had and the removal's tag. While the chunk
  // still holds that state its readers ask the read tail, as for a pending version, and the
  // read tail or the next head to meet it finishes the removal (docs/craq.md, "Removals").
  // In memory: a restarted target resyncs before it serves or heads anything.
  struct RemovalMark {
    ChunkState state;
    chunk::UpdateTag tag;
  };
  void mark_removing(chunk::ChunkId chunk, RemovalMark mark) { removing_[chunk] = mark; }
  void clear_removing(chunk::ChunkId chunk) { removing_.erase(chunk); }
  // The mark, while the chunk still holds its marked committed state (any other change of
  // the chunk came after the removal through the chain, or from a resync: the mark is void).
  std::optional<RemovalMark> removing(const chunk::ChunkInfo& info) const;

  // Updates this target runs at once (head and forwarded alike): try_acquire, kBusy if none.
  Semaphore& updates_in_flight() { return updates_in_flight_; }
  // Per-chunk order at the head: held from assigning a pending version until it commits.
  chunk::ChunkLocks& chunk_order() { return chunk_order_; }

  // Updates running here (head updates, forwards, settles) by the chain version they were
  // admitted under. An update admitted under an older view may still commit here after the
  // view gained a syncing successor — as the write tail it was, without passing the chunk on —
  // and after a resync listed this target's chunks, so neither the copy nor a forward brings
  // the chunk to the successor. A resync therefore lists only once every update admitted
  // before its chain version has ended (drain_updates_before; docs/craq.md, "Resync").
  class UpdateAdmission {
   public:
    UpdateAdmission(StorageTarget* target, uint64_t chain_version);
    UpdateAdmission(const UpdateAdmission&) = delete;
    UpdateAdmission& operator=(const UpdateAdmission&) = delete;
    ~UpdateAdmission();

   private:
    StorageTarget* target_;
    uint64_t chain_version_;
  };
  // True while an update admitted under a chain version below chain_version runs here.
  bool updates_before(uint64_t chain_version) const {
    return !admitted_.empty() && admitted_.begin()->first < chain_version;
  }
  // Waits (suspends) until no update admitted under a chain version below chain_version runs
  // here: ok, kTimedOut at the deadline, or the waiting task's cancellation.
  Task<Status> drain_updates_before(uint64_t chain_version, TimePoint deadline);
  TargetCounters& counters() { return counters_; }
  const TargetCounters& counters() const { return counters_; }

 private:
  StorageTargetConfig config_;
  std::string identity_;
  TargetId id_ = 0;
  std::unique_ptr<chunk::ChunkEngine> engine_;
  ChainView view_;
  LocalState local_ = LocalState::kOnline;
  uint64_t local_chain_version_ = 0;
  std::set<chunk::ChunkId> unrepaired_;
  // Looked up, never iterated. Bounded by the removals a failure interrupted; each is
  // dropped when the chunk is removed here or the mark turns void.
  std::map<chunk::ChunkId, RemovalMark> removing_;
  Semaphore updates_in_flight_;
  chunk::ChunkLocks chunk_order_;
  // Running updates per admission chain version (UpdateAdmission); an entry goes at 0.
  std::map<uint64_t, uint32_t> admitted_;
  Event update_ended_;  // pulsed (set, then reset) whenever an admission ends
  TargetCounters counters_;
};

class StorageTargets {
 public:
  // Opens (creating when new) every target's engine and identity file, in config order.
  static Task<Result<std::unique_ptr<StorageTargets>>> open(
      std::vector<StorageTargetConfig> configs, uint32_t updates_in_flight_max);
  StorageTargets(const StorageTargets&) = delete;
  StorageTargets& operator=(const StorageTargets&) = delete;
  ~StorageTargets();  // asserts close() ran
  // Closes every engine; no request may be in flight.
  Task<Status> close();

  const std::vector<std::unique_ptr<StorageTarget>>& all() const { return targets_; }
  StorageTarget* by_id(TargetId id) const;
  StorageTarget* by_chain(ChainId chain) const;
  StorageTarget* by_identity(const std::string& identity) const;

  // The target of this node in `chain`, checked for a request at chain_version:
  // kNotServing when there is none or its state is not in `allowed`; kStaleChain (with both
  // versions in the message) when chain_version is not the target's.
  Result<StorageTarget*> for_request(ChainId chain, uint64_t chain_version,
                                     std::initializer_list<PublicState> allowed) const;

  // Records the ids mgmtd assigned (by identity) and persists them in the identity files.
  Task<Status> assign_ids(const std::map<std::string, TargetId>& ids);
  // Recomputes every target's ChainView from the snapshot; calls on_view_change(target,
  // old view) for each target whose view changed (resync starts and stops from there).
  void apply_routing(const RoutingSnapshot& routing);
  std::function<void(StorageTarget*, const ChainView&)> on_view_change;

  // The reports the node agent heartbeats (capacity from each engine's space()).
  std::vector<TargetReport> reports() const;
  uint64_t routing_version() const { return routing_version_; }
  // The snapshot apply_routing() last applied (the scrub finds a chain's peers in it).
  const RoutingSnapshot& routing() const { return routing_; }

 private:
  StorageTargets() = default;
  std::vector<std::unique_ptr<StorageTarget>> targets_;
  uint64_t routing_version_ = 0;
  RoutingSnapshot routing_;
  bool closed_ = false;
};

}  // namespace mica::craq
