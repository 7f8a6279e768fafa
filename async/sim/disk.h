// SimDisk: the in-memory file system of one simulated host (directories, files) and what a
// power loss does to it.
//
// A disk is a tree of nodes reached by name from the root directory. Paths are resolved
// lexically from the root: "a/b" is "/a/b", "." and ".." are folded by name (a simulated
// host has no working directory and no links). A directory holds its current names and the
// names a crash keeps, those of its last fsync; so a created, renamed or removed name is
// durable only once its directory is synced. A file holds what reads see (`current`), the
// content a crash keeps for sure (`durable`) and the changes made since, oldest first.
// crash() is a power loss: directories fall back to their synced names (a node no name
// reaches any more is gone) and every file keeps its durable content plus a seeded subset
// of its unsynced changes, each write possibly torn at a 4 KiB boundary; writes made with
// RWF_DSYNC are always kept. Every draw comes from the world's SimRandom, in node order.
//
// Ownership: one SimDisk per SimBackend (one host); it outlives the host's crashes.
// Thread: the world's thread only. Nothing suspends. SimBackend (disk_ops.cc) maps file
// ops onto these methods; tests look at the state through find() and node().
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "async/io_op.h"
#include "async/sim/random.h"
#include "async/time.h"

namespace mica::sim {

// A byte range of one file, for targeted faults. Paths compare after lexical
// normalisation ("x", "/x" and "/./x" are one file).
struct SimDiskRange {
  std::string path;
  uint64_t offset = 0;
  uint64_t length_bytes = UINT64_MAX;  // default: to the end of the file
};

struct SimDiskConfig {
  Duration latency_min = std::chrono::microseconds(20);
  Duration latency_max = std::chrono::microseconds(200);
  // With this chance an op also waits a spike drawn from [spike_min, spike_max]: a device
  // that stalls behind a flush or its garbage collection.
  double latency_spike_probability = 0;
  Duration latency_spike_min = std::chrono::milliseconds(10);
  Duration latency_spike_max = std::chrono::milliseconds(200);
  // Chance that one read/write/fsync/fallocate fails with -EIO (nothing is changed).
  double eio_probability = 0;
  // Bytes the host's files may use; a write or fallocate beyond it fails with -ENOSPC and
  // changes nothing.
  uint64_t capacity_bytes = uint64_t{64} << 30;
  // Targeted faults: return true to fail this op on this path with -EIO (any opcode; the
  // path is the one the fd was opened by, or the op's own path for name ops).
  std::function<bool(std::string_view path, IoOpcode opcode)> fail_io;
  // Reads and writes whose byte range meets one of these fail with -EIO and change nothing;
  // the rest of the file works (a bad sector).
  std::vector<SimDiskRange> eio_ranges;
  // A read that meets one of these returns its bytes with one bit flipped inside the range,
  // with bit_flip_probability per read; the stored data stays intact. Silent corruption:
  // only a checksum sees it.
  std::vector<SimDiskRange> bit_flip_ranges;
  double bit_flip_probability = 1.0;
  // Power loss. Each unsynced change (write, truncation, size change) survives a crash with
  // this chance, independently of the others and in the order they were made.
  double crash_keep_unsynced_probability = 0.5;
  // A surviving unsynced write that spans a 4 KiB boundary is torn with this chance: only
  // its part before, or only its part after, one boundary drawn among those it spans stays.
  double crash_tear_probability = 0.25;
  // A write still in flight at the crash had reached the disk (and is then one more
  // unsynced write, kept, lost or torn as above) with this chance.
  double crash_in_flight_write_probability = 0.5;
};

using SimNodeId = uint64_t;

// One change to a file's content made after its last fsync.
struct SimChange {
  enum class Kind : uint8_t { kWrite, kResize };
  Kind kind = Kind::kWrite;
  bool synced = false;  // an RWF_DSYNC write: every crash keeps it
  uint64_t offset = 0;  // kWrite: where data goes; kResize: the new size
  std::string data;
};

struct SimFile {
  std::string current;            // what reads see
  std::string durable;            // kept by any crash (with the synced changes below)
  std::deque<SimChange> changes;  // since the last fsync, oldest first
  uint64_t change_bytes = 0;      // data held by `changes`
  uint64_t reserved_bytes = 0;    // fallocate(KEEP_SIZE) reservations; kept across crashes
  uint64_t usage_bytes() const {
    uint64_t a = current.size(), b = durable.size();
    uint64_t m = a > b ? a : b;
    return m > reserved_bytes ? m : reserved_bytes;
  }
};

struct SimNode {
  bool directory = false;
  SimFile file;                                      // files only
  std::map<std::string, SimNodeId> entries;          // directories: current names
  std::map<std::string, SimNodeId> durable_entries;  // the names of the last fsync
  uint32_t open_fds = 0;
  uint32_t links = 0;  // entries naming this node, current and durable ones both counted
};

class SimDisk {
 public:
  static constexpr SimNodeId kRoot = 1;
  // Unsynced changes one file holds before the oldest is written back (becomes durable),
  // as a page cache writes back dirty pages under pressure: bounds memory and crash work.
  static constexpr size_t kChangesPerFileMax = 4096;
  static constexpr uint64_t kChangeBytesPerFileMax = uint64_t{256} << 20;
  static constexpr uint64_t kTearBoundaryBytes = 4096;

  SimDisk();

  // "/a/b" for "a//b/./c/..": the one spelling of a path.
  static std::string normalize(std::string_view path);

  // Name operations; 0 or a negated errno, as the kernel answers.
  int32_t lookup(std::string_view path, SimNodeId* id) const;
  // O_CREAT: the file at path, created (as an unsynced name) when missing.
  int32_t create_file(std::string_view path, bool exclusive, SimNodeId* id);
  int32_t make_directory(std::string_view path);
  int32_t rename(std::string_view from, std::string_view to);
  int32_t remove(std::string_view path, bool directory);
  // fsync of a directory: its current names become the ones a crash keeps.
  void sync_directory(SimNodeId id);

  // File content: unsynced until sync(file), except a `synced` write (RWF_DSYNC).
  void write(SimFile& file, uint64_t offset, std::string_view data, bool synced);
  void resize(SimFile& file, uint64_t size_bytes);
  void sync(SimFile& file);

  SimNode* node(SimNodeId id);
  const SimNode* node(SimNodeId id) const;
  void open_fd(SimNodeId id) { ++node(id)->open_fds; }
  void close_fd(SimNodeId id);
  // The file at path, or null (not found, or a directory).
  const SimFile* find(const std::string& path) const;
  uint64_t used_bytes() const;
  size_t node_count() const { return nodes_.size(); }
  // Creates the directories along path, their names durable at once: a disk formatted
  // before the run, for test and scenario set-up.
  void make_durable_directories(std::string_view path);

  // Power loss (see the header comment). Open fds must already be gone.
  void crash(SimRandom& random, const SimDiskConfig& config);

 private:
  int32_t resolve_parent(std::string_view path, SimNodeId* parent, std::string* name) const;
  SimNodeId new_node(bool directory);
  void link(SimNodeId id) { ++node(id)->links; }
  void unlink(SimNodeId id);
  void collect(SimNodeId id);
  void set_entry(SimNodeId dir, const std::string& name, SimNodeId target);
  void erase_entry(SimNodeId dir, const std::string& name);
  void write_back_oldest(SimFile& file);
  void recover(SimFile& file, SimRandom& random, const SimDiskConfig& config);
  void forget_unreachable();

  std::map<SimNodeId, SimNode> nodes_;  // std::map: stable addresses, ordered crash draws
  SimNodeId next_id_ = kRoot + 1;
};

}  // namespace mica::sim
