// ChunkLocks: per-chunk serialisation of updates. An update of a chunk (write, commit, abort,
// truncate, remove, replace) holds its chunk's lock from reading the record until its new
// record is durable, so updates of one chunk apply one at a time and in arrival order (FIFO),
// while updates of different chunks overlap. Reads take no lock.
//
// Entries exist only while someone holds or waits for them. The lock is a runtime Mutex held
// across co_await on purpose: it orders coroutines, never blocks the thread.
// Ownership: the engine owns the table; a Guard unlocks on destruction and must die before
// the table. Thread: the engine's executor; lock() may suspend.
#pragma once

#include <memory>
#include <unordered_map>
#include <utility>

#include "async/sync.h"
#include "chunk/types.h"

namespace mica::chunk {

class ChunkLocks {
 public:
  class Guard {
   public:
    Guard() = default;
    Guard(ChunkLocks* locks, ChunkId id) : locks_(locks), id_(id) {}
    Guard(Guard&& other) noexcept : locks_(std::exchange(other.locks_, nullptr)), id_(other.id_) {}
    Guard& operator=(Guard&&) = delete;
    Guard(const Guard&) = delete;
    ~Guard() {
      if (locks_ != nullptr) locks_->unlock(id_);
    }

   private:
    ChunkLocks* locks_ = nullptr;
    ChunkId id_;
  };

  // Waits for the chunk's lock (FIFO). Fails only when the caller is cancelled.
  Task<Result<Guard>> lock(ChunkId id) {
    Entry& entry = entries_[id];
    ++entry.users;
    Status s = co_await entry.mutex.lock();
    if (!s.ok()) {
      release(id);
      co_return s;
    }
    co_return Guard(this, id);
  }

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Mutex mutex;
    uint32_t users = 0;
  };
  void unlock(ChunkId id) {
    entries_.at(id).mutex.unlock();
    release(id);
  }
  void release(ChunkId id) {
    auto it = entries_.find(id);
    if (--it->second.users == 0) entries_.erase(it);
  }
  // Node-based: an Entry does not move while others are inserted.
  std::unordered_map<ChunkId, Entry, ChunkIdHash> entries_;
};

}  // namespace mica::chunk
