// Resync: bringing a returning (syncing) target up to date, from both ends (docs/craq.md).
//
// The predecessor of a syncing target drives it: when routing makes its successor syncing
// (on_view_change), it pages through the successor's chunk metadata (sync_list), compares it
// with its own and sends full-chunk replacements for what differs (sync_write: version,
// checksum or length, or a damaged record) and removals for what the successor should not
// have (sync_remove), at most resync_chunks_in_flight_max at once and resync_bytes_per_s
// (0: no cap), while new writes keep being forwarded (the update path sends a syncing
// successor whole chunks). It then sends sync_done and the target reports itself up to date
// at that chain version, so mgmtd makes it serve. A newer version always wins on the syncing
// side, so a copy racing a forwarded write never goes back in time. A chain change stops the
// copy; the next one starts over and finds little left to copy (it resumes).
//
// Ownership and threads: owned by the StorageServer, which outlives it, with the targets,
// pool and transport it is given. Runs on the server's executor; handlers and the copy
// suspend; stop() ends every copy and waits for them.
#pragma once

#include "craq/storage_server.h"

namespace mica::craq {

class Resync {
 public:
  Resync(StorageTargets* targets, net::ConnectionPool* pool, net::Transport* transport,
         const StorageServerOptions* options);
  Resync(const Resync&) = delete;
  Resync& operator=(const Resync&) = delete;
  ~Resync();

  // Starts or stops the copy a target drives when its view changed.
  void on_view_change(StorageTarget* target, const ChainView& old_view);
  Task<Result<SyncListResponse>> sync_list(SyncListRequest request, net::CallContext* context);
  Task<Result<SyncAck>> sync_write(SyncWriteRequest request, net::CallContext* context);
  Task<Result<SyncAck>> sync_remove(SyncRemoveRequest request, net::CallContext* context);
  Task<Result<SyncDoneResponse>> sync_done(SyncDoneRequest request, net::CallContext* context);
  // Fills the resync fields of progress for its target.
  void fill_progress(TargetProgress* progress) const;
  Task<void> stop();

 private:
  StorageTargets* targets_;
  net::ConnectionPool* pool_;
  net::Transport* transport_;
  const StorageServerOptions* options_;
};

}  // namespace mica::craq
