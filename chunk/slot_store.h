// SlotStore: the data files of one target. Each size class (64 KiB … 64 MiB) has one file
// that is an array of fixed-size slots; a chunk version occupies one slot of the smallest
// class that holds it. The store allocates and frees slots (an in-memory bitmap per class,
// rebuilt from the chunk records at open, so nothing about allocation is persisted and
// nothing can leak across a crash), grows files with fallocate while keeping the configured
// disk reserve free, and writes slots with O_DIRECT and RWF_DSYNC, so a slot is durable the
// moment its write completes. Every file-system call goes through the executor's backend
// (async/file.h), so the store runs unchanged in the simulator.
//
// Readers pin a slot while they read it; freeing a pinned slot is deferred until the last
// reader unpins, so a version being read is never overwritten under the reader.
// Ownership: owned by the ChunkEngine. Thread: the engine's executor only. write(), read(),
// allocate() and close() suspend; everything else is synchronous.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "async/file.h"
#include "async/sync.h"
#include "chunk/types.h"

namespace mica::chunk {

struct SizeClassStats {
  uint64_t slot_bytes = 0;
  uint64_t slots = 0;       // capacity of the file
  uint64_t used_slots = 0;  // referenced or being written
};

struct SpaceStats {
  uint64_t chunks = 0;
  uint64_t disk_total_bytes = 0;
  uint64_t disk_available_bytes = 0;
  uint64_t reserve_bytes = 0;
  uint64_t data_file_bytes = 0;  // all slots of all classes
  uint64_t used_slot_bytes = 0;  // slots in use
  uint64_t free_slot_bytes = 0;  // slots ready for reuse
  uint64_t lmdb_bytes = 0;       // pages of the metadata environment in use
  // New data the target can still take: free slots plus disk above the reserve (an upper
  // bound; a free slot serves only its own size class).
  uint64_t writable_bytes = 0;
  std::array<SizeClassStats, kSizeClassCount> classes{};
};

class SlotStore {
 public:
  // Opens (creating) the class files in dir and syncs dir. Falls back to buffered I/O (still
  // RWF_DSYNC) where the file system refuses O_DIRECT (logged once per process).
  static Task<Result<std::unique_ptr<SlotStore>>> open(std::string dir,
                                                       const ChunkEngineConfig* config);
  SlotStore(const SlotStore&) = delete;
  SlotStore& operator=(const SlotStore&) = delete;
  ~SlotStore();
  Task<Status> close();

  // At open, for every placement a record references: false (and nothing marked) when the
  // slot lies outside its file or is already taken.
  bool mark_referenced(const Placement& placement);

  // Reserves a slot of the class that holds length_bytes, growing the file if none is free.
  // kNoSpace when growing would cut into the reserve or exceed data_bytes_max.
  Task<Result<Placement>> allocate(uint32_t length_bytes);
  // Returns a slot (now, or when its last reader unpins).
  void release(const Placement& placement);
  void pin(const Placement& placement);
  void unpin(const Placement& placement);

  // Writes data (aligned, a whole number of blocks, at most the slot) to the slot and
  // returns once it is durable.
  Task<Status> write(Placement placement, std::span<const std::byte> data);
  // Reads data.size() bytes at offset inside the slot (both aligned).
  Task<Status> read(Placement placement, uint64_t offset, std::span<std::byte> data);

  bool slot_in_use(uint32_t size_class, uint32_t slot) const;
  uint64_t slot_count(uint32_t size_class) const { return classes_[size_class]->slots; }
  bool direct_io() const { return direct_io_; }
  // Fills the data-file fields of stats (statvfs of the target's file system included).
  void fill_stats(SpaceStats* stats) const;

 private:
  struct SizeClass {
    uint32_t index = 0;
    uint64_t slot_bytes = 0;
    File file;
    uint64_t slots = 0;
    std::vector<uint64_t> used;  // bitmap over slots
    uint64_t used_count = 0;
    uint64_t search_from = 0;  // no free slot below this word
    Mutex grow_mutex;
  };

  SlotStore(std::string dir, const ChunkEngineConfig* config)
      : dir_(std::move(dir)), config_(config) {}
  static uint64_t pin_key(const Placement& p) { return (uint64_t{p.size_class} << 32) | p.slot; }
  bool take_free_slot(SizeClass& c, uint32_t* slot);
  void set_used(SizeClass& c, uint64_t slot, bool used);
  Status check_growth(const SizeClass& c, uint64_t* growth_bytes) const;
  Task<Status> grow(SizeClass* c);

  std::string dir_;
  const ChunkEngineConfig* config_;
  bool direct_io_ = true;
  std::array<std::unique_ptr<SizeClass>, kSizeClassCount> classes_;
  std::unordered_map<uint64_t, uint32_t> pins_;
  std::unordered_set<uint64_t> release_when_unpinned_;
};

}  // namespace mica::chunk
