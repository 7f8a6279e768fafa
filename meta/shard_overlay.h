// The shard's overlay of queued writes and its commit generations: the private half of
// meta/shard.h's ShardTxn, shared by meta/shard.cc and meta/shard_txn.cc only.
//
// Every slot of the overlay holds the newest queued value of one key (nullopt: erased) and
// the txn that wrote it; a slot lives until that txn's commit ends (then the committed
// state says the same, or the write failed and the committed state is the truth again).
// Commits go to kv/ in generations: while one generation is in flight, committing txns are
// held; when it ends, every held txn is enqueued at once (kv/'s writer batches them). Held
// txns that share a key (read or written) are merged into one kv::WriteRequest, so a
// failure can never split them; txns of one generation share no key. A generation with a
// failure fails every held txn with the same code (the "poison" rule: they may have read
// what failed) before they touch kv/. Executor-bound (the shard's); nothing here suspends
// except the writer tasks, which the shard's close() joins.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "async/scope.h"
#include "async/sync.h"
#include "meta/shard.h"

namespace mica::meta {

inline constexpr size_t kShardTablesCount = 8;

struct Shard::Overlay {
  struct Slot {
    std::optional<std::string> value;
    uint64_t owner = 0;  // the txn that queued it
  };
  struct Write {
    kv::Table table = 0;
    std::string key;
    uint64_t owner = 0;
  };
  // One kv::WriteRequest: one txn, or several that share keys.
  struct Group {
    kv::WriteRequest request;
    std::vector<uint64_t> members;
    std::vector<Write> writes;  // the slots its members queued
    bool launched = false;
    Status status;
    Event finished;
    // Groups merged into this one: their committers still wait on their own `finished`,
    // which end_group sets with this group's outcome.
    std::vector<std::shared_ptr<Group>> absorbed;
  };
  using Table = std::map<std::string, Slot, std::less<>>;

  std::array<Table, kShardTablesCount> tables;
  std::map<uint64_t, std::shared_ptr<Group>> live;  // txn -> its group, until it ends
  std::vector<std::shared_ptr<Group>> held;
  size_t in_flight = 0;           // groups of the generation in kv/
  size_t generation_members = 0;  // txns in the generation in kv/ (its batch size)
  Status generation_failure;
  uint64_t next_txn = 1;

  // The newest shard record, allocations of queued txns included (a failed txn leaves a gap
  // in the sequences, never a reuse).
  ShardRecord record;
  uint64_t next_gc = 1;
  // Remembered answers, oldest first, for pruning past requests_kept_max.
  uint64_t next_request = 1;
  std::map<uint64_t, std::string> requests_by_age;
  std::map<std::string, uint64_t, std::less<>> request_age;

  TaskScope writers;
  uint64_t operations = 0;  // txns committed

  // Publishes state's writes as slots and files it in a held group (merged with the held
  // groups it shares keys with); nullptr when the txn has nothing to wait for.
  std::shared_ptr<Group> join(Shard* shard, ShardTxn::State* state);
  // Starts the next generation when none is in flight.
  void launch(Shard* shard);
  // A group's kv/ write ended with status.
  void finish(Shard* shard, const std::shared_ptr<Group>& group, Status status);

 private:
  std::shared_ptr<Group> group_for(const std::set<uint64_t>& owners);
  void end_group(const std::shared_ptr<Group>& group, Status status);
  void prune_requests(Shard* shard, ShardTxn::State* state);
};

// The data of one ShardTxn.
struct ShardTxn::State {
  Shard* shard = nullptr;
  uint64_t id = 0;
  std::unique_ptr<kv::ReadTxn> read;  // opened on first use, dropped before commit suspends
  std::array<std::map<std::string, std::optional<std::string>, std::less<>>, kShardTablesCount>
      local;
  std::set<uint64_t> reads_from;  // owners of overlay slots this txn read
  bool record_dirty = false;
  std::vector<std::pair<uint64_t, std::string>> remembered;  // (age, request key)
};

}  // namespace mica::meta
