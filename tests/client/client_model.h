// The client model test's machinery (tests/client/client_model_test.cc runs it): random
// file operations from several Clients against one real dev cluster, applied in the same
// order to a reference folder on the local disk with POSIX calls, and compared byte for
// byte, length for length and errno for errno.
//
// The workload is cut into lanes: lane k owns /lane-k (and its subdirectories) in both
// trees, runs its operations one after another (so the reference order is exact) and
// picks a client per operation or per open handle, while the lanes' tasks interleave on
// one executor. Only what docs/client.md promises is compared: a read through a handle
// sees every acknowledged write; its length is at least what that handle knows (its own
// writes, the length at its open) and at most the file's real length; a stat or a fresh
// open sees the exact length only while no handle of the file has writes it has not yet
// reported by fsync or close. Reference handles are real file descriptors, so unlink and
// rename under open handles behave as POSIX says.
//
// Threads: every task runs on the test thread's executor; the Clients outlive the run.
// Every open handle is closed by close_lane(), whatever failed.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "craq/chain_table.h"

namespace mica::testing::model {

// Chunks of files made by the `create` operation: the smallest the cluster allows, so a
// file of a few hundred KiB spans several chunks and chains.
inline constexpr uint32_t kSmallChunkBytes = 64 * 1024;
inline constexpr uint32_t kLanes = 3;
inline constexpr uint32_t kClients = 3;
inline constexpr size_t kHandlesPerLaneMax = 6;
// Offsets and sizes of writes and reads.
inline constexpr uint64_t kNearBytes = uint64_t{1} << 20;  // most writes land below
inline constexpr uint64_t kFarBytes = uint64_t{5} << 20;   // a few past the 4 MiB chunk
inline constexpr uint64_t kWriteBytesMax = 256 * 1024;
inline constexpr uint64_t kReadBytesMax = 300 * 1024;
inline constexpr size_t kLogTailShown = 400;  // lines of the operation log in a failure

struct Run {
  uint64_t seed = 0;
  std::vector<client::Client*> clients;
  std::string ref_root;  // the reference folder (local disk)
  std::vector<std::string> log;
  std::string failure;  // the first mismatch; the lanes stop at it
  uint64_t ops_done = 0;
  uint64_t mismatches = 0;

  void note(std::string line) { log.push_back(std::move(line)); }
  void fail(std::string why);
  bool failed() const { return !failure.empty(); }
  // The failure with the seed and the log's tail.
  std::string report() const;
};

struct Handle {
  uint32_t client = 0;
  std::unique_ptr<client::File> file;
  int fd = -1;
  ino_t ino = 0;  // the reference file's inode: which handles share a file
  int flags = 0;
  bool dirty = false;  // writes not yet reported by fsync or close
  std::string path;    // at open (the file may be renamed or unlinked since)
};

struct Lane {
  Lane(Run* r, uint32_t i, uint64_t seed) : run(r), index(i), random(seed) {}
  Run* run;
  uint32_t index;
  craq::PlacementRandom random;
  std::vector<Handle> handles;
  std::vector<std::string> dirs;  // lane-relative: "" (the lane's own), "/d0", "/d1"
  uint64_t op = 0;

  std::string mica_path(const std::string& rel) const;
  std::string ref_path(const std::string& rel) const;
  client::Client* client(uint32_t i) const { return run->clients[i]; }
  uint32_t pick_client() { return uint32_t(random.below(run->clients.size())); }
};

// Makes /lane-k in both trees.
Task<Status> open_lane(Lane* lane);
// `ops` random operations, stopping at the first mismatch.
Task<void> run_lane(Lane* lane, uint64_t ops);
// Closes every handle (comparing), then checks every file of the lane: content, length and
// the directory listings, from a client picked at random.
Task<void> close_lane(Lane* lane);

// One operation each (client_model_ops.cc); the lane picks them.
Task<void> op_create(Lane* lane);
Task<void> op_open(Lane* lane);
Task<void> op_pwrite(Lane* lane);
Task<void> op_pread(Lane* lane);
Task<void> op_truncate_handle(Lane* lane);
Task<void> op_truncate_path(Lane* lane);
Task<void> op_fsync(Lane* lane);
Task<void> op_close(Lane* lane);
Task<void> op_stat(Lane* lane);
Task<void> op_verify(Lane* lane);
Task<void> op_unlink(Lane* lane);
Task<void> op_rename(Lane* lane);
Task<void> op_mkdir(Lane* lane);

// Shared by the operations.
std::string pick_file(Lane* lane);  // lane-relative, may not exist
// Closes handle i of the lane in both trees and removes it.
Task<void> close_handle(Lane* lane, size_t i);
// Whether some open handle of the lane has reference inode ino (other than `except`).
bool file_open(const Lane* lane, ino_t ino, const Handle* except = nullptr);
bool file_dirty(const Lane* lane, ino_t ino);
// The reference file's inode and size; ino 0 when the path names no regular file.
struct RefStat {
  ino_t ino = 0;
  uint64_t size = 0;
  bool directory = false;
};
RefStat ref_stat(const std::string& path);
// Opens rel with a random client, reads it whole and compares with the reference.
Task<void> verify_file(Lane* lane, std::string rel, uint32_t client);
// The reference's errno (0: ok) beside the client's status; a mismatch fails the run.
void compare_outcome(Lane* lane, const std::string& what, int ref_errno, const Status& got);

}  // namespace mica::testing::model
