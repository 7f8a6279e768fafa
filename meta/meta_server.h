// MetaServer: the shards one mica-meta process serves, behind one MetaService
// (meta/meta_service.h). It owns a Shard per ShardOptions, the Coordinator when it serves
// shard 0, and answers every request for a shard it does not serve with kWrongShard (the
// client refreshes routing and retries). docs/meta.md, "The server and the client half".
//
// Also bound: ShardStepService for the shards served here (the coordinator's steps), and
// the process's LeaseTable behind renew_lease. The coordinator runs on the server's
// executor (its remote steps use the server's pool) and reaches local shards directly.
//
// Dispatch: name operations go to the shard of `parent`, inode operations to the shard of
// `inode`. mkdir, rmdir, renames the shard gives back (nullopt) and links across shards go
// to the coordinator: locally when this process serves shard 0, else through a
// CoordinatorService call to shard 0's process found in routing. readdir with attrs fills
// the attributes of inodes on other shards by getattr (locally or through a MetaClient
// call); statfs sums capacity from the storage targets in routing and inodes and queued
// bytes from every meta process's status.
//
// Threads: the server, its services, the routing it is given and its calls to other meta
// processes belong to the executor that opened it (the RPC server's). Each shard lives on
// one executor of options.executors (shard i on executors[i % size]; empty: all on the
// server's), and a request hops there for the shard's work and back (`co_await
// executor->schedule()`). open_server() and close_shards() are tasks on the server's
// executor; close_shards() must be awaited before destruction. The pool and the storage
// client outlive the server.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "async/executor.h"
#include "async/metrics.h"
#include "async/scope.h"
#include "async/sync.h"
#include "async/task.h"
#include "craq/types.h"
#include "meta/coordinator.h"
#include "meta/lease.h"
#include "meta/meta_service.h"
#include "meta/shard.h"
#include "meta/shard_steps.h"
#include "net/rpc_client.h"
#include "net/rpc_service.h"

namespace mica::craq {
class StorageClient;
}

namespace mica::meta {

class CoordinatorHandle;

struct MetaServerOptions {
  // The shards served here, each with its own directory (created by the caller). Their
  // `routing` and `storage` fields are filled in by the server.
  std::vector<ShardOptions> shards;
  uint32_t shard_count = 1;     // shards of the whole cluster (placement of directories)
  uint64_t placement_seed = 0;  // the coordinator's seeded spread of new directories
  std::string coordinator_dir;  // the coordinator's log, used when shard 0 is served here
  kv::EnvOptions coordinator_env;
  // Executors the shards run on (they outlive the server); empty: the server's executor.
  std::vector<Executor*> executors;
  LeaseOptions leases;  // the process's client leases (meta/lease.h)
  // Calls to other meta processes (coordinator, getattr for readdir, status for statfs).
  Duration forward_timeout = std::chrono::seconds(10);
  MetricLabels metric_labels;
};

class MetaServer {
 public:
  // Opens every shard (on its executor) and, when shard 0 is served, the coordinator.
  static Task<Result<std::unique_ptr<MetaServer>>> open_server(MetaServerOptions options,
                                                               net::ConnectionPool* pool,
                                                               craq::StorageClient* storage);
  MetaServer(const MetaServer&) = delete;
  MetaServer& operator=(const MetaServer&) = delete;
  ~MetaServer();

  // The services to add to the RPC server (MetaService, and CoordinatorService and the
  // shard-step service when present).
  std::vector<net::Service*> services();
  net::Service* service() { return &service_; }

  // A new routing snapshot (from the RoutingClient); never suspends.
  void apply_routing(std::shared_ptr<const craq::RoutingSnapshot> routing);
  std::shared_ptr<const craq::RoutingSnapshot> routing() const { return routing_; }
  void set_node(craq::NodeId node) { node_ = node; }
  craq::NodeId node() const { return node_; }

  std::vector<ShardId> shard_ids() const;  // sorted
  bool serves(ShardId shard) const { return slots_.count(shard) != 0; }
  // The shard served here, or null. Call its methods on its executor only.
  Shard* shard(ShardId shard) const;
  Executor* executor_of(ShardId shard) const;
  // Whether the coordinator is open here (shard 0 served and its open done).
  bool has_coordinator() const { return coordinator_ != nullptr; }
  // Waits until the coordinator opened (ok at once when shard 0 is not served here).
  Task<Status> wait_coordinator(TimePoint deadline);
  LeaseTable* leases() const { return leases_.get(); }
  // The process's labels every metric of the server and its shards carries.
  const MetricLabels& metric_labels() const { return options_.metric_labels; }

  // Waits for requests in flight on other executors, closes the coordinator and every
  // shard. The RPC server must be shut down first.
  Task<Status> close_shards();

  // ---- MetaService (bound by service()) ----
  Task<Result<InodeReply>> lookup(LookupRequest request, net::CallContext* ctx);
  Task<Result<InodeReply>> getattr(GetattrRequest request, net::CallContext* ctx);
  Task<Result<InodeReply>> setattr(SetattrRequest request, net::CallContext* ctx);
  Task<Result<CreateReply>> create(CreateRequest request, net::CallContext* ctx);
  Task<Result<InodeReply>> mkdir(MkdirRequest request, net::CallContext* ctx);
  Task<Result<RemoveReply>> remove(RemoveRequest request, net::CallContext* ctx);
  Task<Result<RenameReply>> rename(RenameRequest request, net::CallContext* ctx);
  Task<Result<InodeReply>> link(LinkRequest request, net::CallContext* ctx);
  Task<Result<ReadlinkReply>> readlink(ReadlinkRequest request, net::CallContext* ctx);
  Task<Result<ReaddirReply>> readdir(ReaddirRequest request, net::CallContext* ctx);
  Task<Result<StatfsReply>> statfs(StatfsRequest request, net::CallContext* ctx);
  Task<Result<XattrValue>> get_xattr(GetXattrRequest request, net::CallContext* ctx);
  Task<Result<InodeReply>> set_xattr(SetXattrRequest request, net::CallContext* ctx);
  Task<Result<XattrNames>> list_xattr(ListXattrRequest request, net::CallContext* ctx);
  Task<Result<InodeReply>> remove_xattr(RemoveXattrRequest request, net::CallContext* ctx);
  Task<Result<OpenReply>> open(OpenRequest request, net::CallContext* ctx);
  Task<Result<InodeReply>> report_length(LengthReport request, net::CallContext* ctx);
  Task<Result<InodeReply>> close(CloseRequest request, net::CallContext* ctx);
  Task<Result<LeaseReply>> renew_lease(LeaseRequest request, net::CallContext* ctx);
  Task<Result<MetaStatusReply>> status(MetaStatusRequest request, net::CallContext* ctx);
  Task<Result<ScanReply>> scan(ScanRequest request, net::CallContext* ctx);

 private:
  // One shard served here, on its executor. `routing` is the snapshot the shard reads (on
  // its executor): installed there after every routing change.
  struct Slot {
    std::unique_ptr<Shard> shard;
    Executor* executor = nullptr;
    std::shared_ptr<const craq::RoutingSnapshot> routing;
  };
  // CoordinatorService as the process serving shard 0 binds it: every call goes to the
  // local coordinator; a process without one answers kWrongShard (routing moved shard 0).
  class CoordinatorFront {
   public:
    explicit CoordinatorFront(MetaServer* server) : server_(server) {}
    Task<Result<InodeReply>> mkdir(MkdirRequest request, net::CallContext* ctx);
    Task<Result<RemoveReply>> rmdir(RemoveRequest request, net::CallContext* ctx);
    Task<Result<RenameReply>> rename(RenameRequest request, net::CallContext* ctx);
    Task<Result<InodeReply>> link(LinkRequest request, net::CallContext* ctx);

   private:
    MetaServer* server_;
  };
  MetaServer(MetaServerOptions options, net::ConnectionPool* pool, craq::StorageClient* storage);

  Slot* slot(ShardId shard) const;
  static Status wrong_shard(ShardId shard);
  // The shard's method on request, on the executor of `shard` when it is served here (else
  // kWrongShard): the one body of every MetaService method a shard answers by itself.
  template <class R, class Req>
  Task<Result<R>> on_shard(ShardId shard, Task<Result<R>> (Shard::*method)(const Req&),
                           Req request);
  Task<Status> open_shards();
  void bind_steps();
  // Opens the coordinator in the background: it loads the directory map from every shard,
  // and other processes' shards may come up later. Until then its operations are kBusy.
  void start_coordinator();
  Task<void> open_coordinator();
  Task<Status> close_coordinator();
  std::optional<SocketAddress> address_of(ShardId shard) const;
  // The process serving `shard` in routing, as an RPC client (kWrongShard: no route).
  Task<Result<std::shared_ptr<net::RpcClient>>> peer(ShardId shard, TimePoint deadline);
  TimePoint forward_deadline(net::CallContext* ctx) const;
  Task<Result<InodeReply>> remote_getattr(InodeId inode, TimePoint deadline);
  // Shard::open on the inode's shard, here or in its process (create of an existing name).
  Task<Result<OpenReply>> open_elsewhere(OpenRequest request, TimePoint deadline);
  Task<Status> fill_attrs(ReaddirReply* reply, TimePoint deadline);
  Task<Result<std::vector<ShardStatus>>> every_status(TimePoint deadline);
  // To the coordinator: the local one, else (may_forward) shard 0's process.
  template <auto M>
  Task<Result<net::ResponseOf<M>>> coordinate(net::RequestOf<M> request, net::CallContext* ctx,
                                              bool may_forward = true);

  MetaServerOptions options_;
  net::ConnectionPool* pool_;
  craq::StorageClient* storage_;
  Executor* home_ = nullptr;
  craq::NodeId node_ = 0;
  std::shared_ptr<const craq::RoutingSnapshot> routing_;
  std::map<ShardId, std::unique_ptr<Slot>> slots_;
  std::unique_ptr<LeaseTable> leases_;
  std::unique_ptr<ShardStepHandlers> step_handlers_;
  std::unique_ptr<net::Service> step_service_;
  std::unique_ptr<ShardStepper> stepper_;
  std::unique_ptr<CoordinatorHandle> coordinator_;
  Status coordinator_status_;  // of its open; kBusy while opening
  Event coordinator_opened_;
  std::unique_ptr<CoordinatorFront> coordinator_front_;
  std::unique_ptr<net::Service> coordinator_service_;
  net::Service service_;
  TaskScope hops_;        // routing installs on other executors
  TaskScope background_;  // the coordinator's open
};

}  // namespace mica::meta
