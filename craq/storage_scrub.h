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
  StorageTargets* targets_;
  net::ConnectionPool* pool_;
  net::Transport* transport_;
  const StorageServerOptions* options_;
};

}  // namespace mica::craq
