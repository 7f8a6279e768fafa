// StorageServer: what one mica-storage process runs — its targets (craq/storage_target.h)
// and the StorageService (craq/storage_service.h) over them: the CRAQ update path (head
// ordering, pull, forward, commit back up: craq/storage_update.h), the read path (apportioned
// queries, batch reads: craq/storage_read.h), resync of a returning successor
// (craq/storage_resync.h) and the background scrub (craq/storage_scrub.h). docs/craq.md.
//
// The server follows routing: the caller's RoutingClient hands every snapshot to
// apply_routing(), and the node agent heartbeats reports() (each target's LocalState). The
// data path never waits on mgmtd. Every limit is a field of StorageServerOptions.
//
// Ownership and threads: the caller owns the pool, the transport and the RPC server the
// service() is added to, all of which outlive the StorageServer. Everything runs on one
// executor: open() there, start() from a task on it, stop() then close() awaited there
// before destruction. Handlers suspend (disk, network); the rest does not.
#pragma once

#include <memory>
#include <vector>

#include "craq/storage_target.h"
#include "net/rpc_client.h"
#include "net/rpc_service.h"

namespace mica::craq {

class UpdatePath;
class ReadPath;
class Resync;
class Scrub;
class StorageHandlers;

struct StorageServerOptions {
  std::vector<StorageTargetConfig> targets;  // at least one
  NodeId node = 0;  // this process's node id (set again with set_node() once registered)
  // Updates one target runs at once; beyond it clients get kBusy (back-pressure).
  uint32_t updates_in_flight_max = 256;
  // Time a forward down the rest of the chain may take before the update fails (the
  // client retries; the chunk's pending version is resolved by the next update or resync).
  Duration forward_timeout = std::chrono::seconds(10);
  // Updates each target remembers by their (client id, request id) tag, so that a retry is
  // answered as a duplicate also after other updates of its chunk (docs/craq.md): at most
  // this many entries, none kept longer than recent_update_age (4x the storage client's
  // default 30 s call deadline; a client call that may retry for longer relies on the
  // chunk's own tags only).
  uint32_t recent_updates_max = uint32_t{1} << 18;
  Duration recent_update_age = std::chrono::seconds(120);
  // Time an apportioned query to the tail may take.
  Duration query_timeout = std::chrono::seconds(2);
  // Items in one batch_read request.
  uint32_t batch_read_items_max = 1024;
  // Bytes one read or batch_read may move in total.
  uint64_t read_bytes_max = uint64_t{256} << 20;
  // Resync: chunks copied at once, bytes per second (0: no cap), metadata page size.
  uint32_t resync_chunks_in_flight_max = 8;
  uint64_t resync_bytes_per_s = 0;
  uint32_t resync_list_page_max = 1024;
  // Scrub: bytes per second read to look for rot (0: scrub off), pause between passes.
  uint64_t scrub_bytes_per_s = 32ull << 20;
  Duration scrub_pass_interval = std::chrono::hours(24);
  MetricLabels metric_labels;
};

class StorageServer {
 public:
  static Task<Result<std::unique_ptr<StorageServer>>> open(StorageServerOptions options,
                                                           net::ConnectionPool* pool,
                                                           net::Transport* transport);
  StorageServer(const StorageServer&) = delete;
  StorageServer& operator=(const StorageServer&) = delete;
  ~StorageServer();  // asserts close() ran

  // The StorageService bound to this server, to add to an RPC server.
  net::Service service();
  // Starts the resync and scrub loops. stop() ends them and waits for every handler in
  // flight; close() then closes the engines.
  void start();
  Task<void> stop();
  Task<Status> close();

  void set_node(NodeId node);
  void apply_routing(const RoutingSnapshot& routing);
  // Asked before every read and apportioned query is served (not ok: refused with its
  // status). The storage node refuses while its mgmtd lease is out or its routing is behind
  // what mgmtd named: mgmtd may have dropped a target from its chain without it hearing so,
  // and a dropped replica misses the chain's updates. Unset (tests): reads are always served.
  void set_read_guard(std::function<Status()> guard);
  std::vector<TargetReport> reports() const;
  Task<Status> assign_ids(const std::map<std::string, TargetId>& ids);
  StorageTargets& targets() { return *targets_; }
  ProgressResponse progress() const;

  // StorageService (craq/storage_service.h).
  Task<Result<UpdateResponse>> update(UpdateRequest request, net::CallContext* context);
  Task<Result<ForwardResponse>> forward(ForwardRequest request, net::CallContext* context);
  Task<Result<ReadResponse>> read(ReadRequest request, net::CallContext* context);
  Task<Result<BatchReadResponse>> batch_read(BatchReadRequest request, net::CallContext* context);
  Task<Result<QueryVersionResponse>> query_version(QueryVersionRequest request,
                                                   net::CallContext* context);
  Task<Result<SyncListResponse>> sync_list(SyncListRequest request, net::CallContext* context);
  Task<Result<SyncAck>> sync_write(SyncWriteRequest request, net::CallContext* context);
  Task<Result<SyncAck>> sync_remove(SyncRemoveRequest request, net::CallContext* context);
  Task<Result<SyncDoneResponse>> sync_done(SyncDoneRequest request, net::CallContext* context);
  Task<Result<ProgressResponse>> progress(ProgressRequest request, net::CallContext* context);
  Task<Result<StatChunkResponse>> stat_chunk(StatChunkRequest request, net::CallContext* context);
  Task<Result<LastChunkResponse>> last_chunk(LastChunkRequest request, net::CallContext* context);

 private:
  StorageServer(StorageServerOptions options, net::ConnectionPool* pool, net::Transport* transport,
                std::unique_ptr<StorageTargets> targets);

  StorageServerOptions options_;
  net::ConnectionPool* pool_;
  net::Transport* transport_;
  std::unique_ptr<StorageTargets> targets_;
  std::unique_ptr<UpdatePath> updates_;
  std::unique_ptr<ReadPath> reads_;
  std::unique_ptr<Resync> resync_;
  std::unique_ptr<Scrub> scrub_;
  // What service() binds: progress() is overloaded here, which Service::bind cannot take.
  std::unique_ptr<StorageHandlers> handlers_;
  bool started_ = false;
  bool closed_ = false;
};

}  // namespace mica::craq
