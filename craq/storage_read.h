// ReadPath: the CRAQ read path of a storage server — reads, batch reads and the apportioned
// query that a replica with a pending version asks the chain's tail (docs/craq.md).
//
// A read is served by a serving target only. When the chunk has no pending version, its
// committed bytes are pushed into the reader's buffer with their CRC32C. When it has one, the
// replica asks the tail for the committed version: if it is the replica's committed version
// the replica serves it, otherwise it answers kDirty and the client retries. Nothing pending
// is ever returned. A chunk whose disk bytes fail their CRC is reported to the server's
// on_corrupt callback (the scrub repairs it from the chain) and answered kChecksumMismatch.
//
// Ownership and threads: owned by the StorageServer, which outlives it, with the targets,
// pool and transport it is given. Runs on the server's executor; handlers suspend; stop()
// waits for every read in flight.
#pragma once

#include <functional>

#include "craq/storage_server.h"

namespace mica::craq {

class ReadPath {
 public:
  ReadPath(StorageTargets* targets, net::ConnectionPool* pool, net::Transport* transport,
           const StorageServerOptions* options);
  ReadPath(const ReadPath&) = delete;
  ReadPath& operator=(const ReadPath&) = delete;
  ~ReadPath();

  Task<Result<ReadResponse>> read(ReadRequest request, net::CallContext* context);
  Task<Result<BatchReadResponse>> batch_read(BatchReadRequest request,
                                             net::CallContext* context);
  Task<Result<QueryVersionResponse>> query_version(QueryVersionRequest request,
                                                   net::CallContext* context);
  Task<void> stop();

  // Called when a target's disk returned data that failed its CRC (never suspends).
  std::function<void(StorageTarget*, ChunkRef)> on_corrupt;

 private:
  StorageTargets* targets_;
  net::ConnectionPool* pool_;
  net::Transport* transport_;
  const StorageServerOptions* options_;
};

}  // namespace mica::craq
