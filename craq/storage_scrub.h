// Scrub: the background check of every chunk of every target at a bounded rate, and the
// repair of a chunk whose bytes on disk fail their CRC (docs/craq.md).
//
// A pass reads each committed chunk through the engine (which verifies every block's CRC)
// at scrub_bytes_per_s, then waits scrub_pass_interval. A chunk found corrupt — by the scrub
// or by a reader (repair()) — is never served again as it is: the target fetches the chunk's
// committed version from another serving member of its chain and replaces its copy with it
// (ChunkEngine::replace); with no other serving member it stays refused (kChecksumMismatch)
// and the target reports itself offline so mgmtd takes it out of serving.
//
// Ownership and threads: owned by the StorageServer, which outlives it, with the targets,
// pool and transport it is given. Runs on the server's executor; start() spawns the loop,
// stop() ends it and every repair and waits for them.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "async/scope.h"
#include "craq/rate_limiter.h"
#include "craq/storage_server.h"

namespace mica::craq {

class Scrub {
 public:
  Scrub(StorageTargets* targets, net::ConnectionPool* pool, net::Transport* transport,
        const StorageServerOptions* options);
  Scrub(const Scrub&) = delete;
  Scrub& operator=(const Scrub&) = delete;
  ~Scrub();

  void start();
  Task<void> stop();
  // Repairs one chunk found corrupt (runs in the background; never suspends the caller).
  void repair(StorageTarget* target, ChunkRef chunk);
  void fill_progress(TargetProgress* progress) const;

 private:
  struct Counts {
    uint64_t passes = 0;
    uint64_t checked = 0;
    uint64_t corrupt = 0;
    uint64_t repaired = 0;
  };

  Task<void> scrub_loop(StorageTarget* target);
  Task<Status> scrub_pass(StorageTarget* target);
  Task<Status> check_chunk(StorageTarget* target, chunk::ChunkInfo info);
  static Task<void> run_repair(Scrub* self, StorageTarget* target, ChunkRef chunk);
  // ok once the chunk is repaired (or needs none); kNotFound without a peer that has it.
  Task<Status> repair_chunk(StorageTarget* target, ChunkRef chunk);
  Task<Status> repair_once(StorageTarget* target, ChunkRef chunk);
  // Fetches the committed version `info` names from the peer at address and replaces the
  // own copy with it. False when the peer could not give exactly that version (yet).
  Task<Result<bool>> repair_from(StorageTarget* target, chunk::ChunkInfo info, std::string address);
  Task<Result<ReadResponse>> read_peer(std::string address, ReadRequest request,
                                       TimePoint deadline);
  // The RPC addresses of the other serving members of the target's chain.
  std::vector<std::string> peer_addresses(const StorageTarget* target) const;

  StorageTargets* targets_;
  net::ConnectionPool* pool_;
  net::Transport* transport_;
  const StorageServerOptions* options_;
  ByteRateLimiter limiter_;
  std::map<const StorageTarget*, Counts> counts_;
  std::set<std::pair<const StorageTarget*, ChunkRef>> repairing_;
  TaskScope scope_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace mica::craq
