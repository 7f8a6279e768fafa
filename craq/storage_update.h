// UpdatePath: the CRAQ write path of a storage server — client updates at the head and
// forwarded updates at every other member of the chain (docs/craq.md).
//
// At the head, updates of one chunk run one at a time (the target's chunk_order lock, held
// from assigning the pending version until it commits); different chunks run in parallel up
// to the target's in-flight limit (kBusy beyond it). The head checks the request, recognises
// a retry by its (client id, request id) tag, pulls the payload from the client's buffer,
// verifies its CRC, applies it as pending version committed + 1 and forwards it; the tail
// applies and commits at once; each member commits when its successor answered, after
// checking that the successor's chunk checksum equals its own. A successor that is syncing
// gets the whole new chunk (full_chunk), since it may lack the version the update builds on.
//
// Ownership and threads: owned by the StorageServer, which outlives it, with the targets,
// pool and transport it is given. Runs on the server's executor; handlers suspend; stop()
// waits for every update in flight.
#pragma once

#include "craq/storage_server.h"

namespace mica::craq {

class UpdatePath {
 public:
  UpdatePath(StorageTargets* targets, net::ConnectionPool* pool, net::Transport* transport,
             const StorageServerOptions* options);
  UpdatePath(const UpdatePath&) = delete;
  UpdatePath& operator=(const UpdatePath&) = delete;
  ~UpdatePath();

  Task<Result<UpdateResponse>> update(UpdateRequest request, net::CallContext* context);
  Task<Result<ForwardResponse>> forward(ForwardRequest request, net::CallContext* context);
  Task<void> stop();

 private:
  StorageTargets* targets_;
  net::ConnectionPool* pool_;
  net::Transport* transport_;
  const StorageServerOptions* options_;
};

}  // namespace mica::craq
