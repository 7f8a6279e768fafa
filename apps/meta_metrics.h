// MetaMetrics: what mica-meta adds to /metrics beyond the shards' own series (commit batch
// sizes mica_meta_shard_commit_batch_size and operation counts, meta/shard.h ShardCounters):
// every MetaService method's request count, error count and latency, and per-shard gauges.
// Every series carries the server's labels (MetaServer::metric_labels: mica-meta's
// process="mica-meta"), the per-shard ones also shard="N", as the shards' own series do.
//
// MeteredMetaService is the MetaService the process's RPC server serves: each method times
// the MetaServer's answer (mica_meta_request_seconds{method=...}, a histogram whose _count
// is the operations of that type) and counts requests and errors
// (mica_meta_requests_total, mica_meta_request_errors_total). MetaMetrics::refresh() asks
// the server for its shards' status (it hops to each shard's executor) and sets the gauges
// mica_meta_shard_{inodes,entries,sessions,gc_queued_files,gc_queued_bytes,used_bytes}
// {process=...,shard="N"} and mica_meta_coordinator_pending. Both are bound to the server's
// executor (the RPC server's); the server outlives them.
#pragma once

#include <array>
#include <map>
#include <memory>

#include "async/metrics.h"
#include "meta/meta_server.h"
#include "net/rpc_service.h"

namespace mica::apps {

class MeteredMetaService {
 public:
  explicit MeteredMetaService(meta::MetaServer* server);
  MeteredMetaService(const MeteredMetaService&) = delete;
  MeteredMetaService& operator=(const MeteredMetaService&) = delete;

  // The service table to add to the RPC server (in place of the server's own MetaService).
  net::Service* service() { return &service_; }

  struct Series {
    Counter* requests = nullptr;
    Counter* errors = nullptr;
    Histogram* latency = nullptr;
  };

#define MICA_METERED_METHOD(name, Request, Reply)                                          \
  Task<Result<meta::Reply>> name(meta::Request request, net::CallContext* context) {       \
    auto calling = server_->name(std::move(request), context);                             \
    return timed<meta::Reply>(&series_[k_##name], std::move(calling));                      \
  }
#define MICA_METERED_METHODS(X)                           \
  X(lookup, LookupRequest, InodeReply)                    \
  X(getattr, GetattrRequest, InodeReply)                  \
  X(setattr, SetattrRequest, InodeReply)                  \
  X(create, CreateRequest, CreateReply)                   \
  X(mkdir, MkdirRequest, InodeReply)                      \
  X(remove, RemoveRequest, RemoveReply)                   \
  X(rename, RenameRequest, RenameReply)                   \
  X(link, LinkRequest, InodeReply)                        \
  X(readlink, ReadlinkRequest, ReadlinkReply)             \
  X(readdir, ReaddirRequest, ReaddirReply)                \
  X(statfs, StatfsRequest, StatfsReply)                   \
  X(get_xattr, GetXattrRequest, XattrValue)               \
  X(set_xattr, SetXattrRequest, InodeReply)               \
  X(list_xattr, ListXattrRequest, XattrNames)             \
  X(remove_xattr, RemoveXattrRequest, InodeReply)         \
  X(open, OpenRequest, OpenReply)                         \
  X(report_length, LengthReport, InodeReply)              \
  X(close, CloseRequest, InodeReply)                      \
  X(renew_lease, LeaseRequest, LeaseReply)                \
  X(status, MetaStatusRequest, MetaStatusReply)           \
  X(scan, ScanRequest, ScanReply)
#define MICA_METERED_INDEX(name, Request, Reply) k_##name,
  enum MethodIndex { MICA_METERED_METHODS(MICA_METERED_INDEX) kMethods };
  MICA_METERED_METHODS(MICA_METERED_METHOD)
#undef MICA_METERED_INDEX
#undef MICA_METERED_METHOD

 private:
  template <class Reply>
  static Task<Result<Reply>> timed(Series* series, Task<Result<Reply>> call) {
    TimePoint began = Executor::current()->now();
    Result<Reply> answer = co_await std::move(call);
    series->latency->record(Executor::current()->now() - began);
    series->requests->add();
    if (!answer.ok()) series->errors->add();
    co_return answer;
  }

  meta::MetaServer* server_;
  std::array<Series, kMethods> series_;
  net::Service service_;
};

class MetaMetrics {
 public:
  explicit MetaMetrics(meta::MetaServer* server);
  MetaMetrics(const MetaMetrics&) = delete;
  MetaMetrics& operator=(const MetaMetrics&) = delete;
  ~MetaMetrics();

  // Sets the gauges from the shards' status; suspends while the shards answer.
  Task<void> refresh();

 private:
  struct ShardGauges;
  ShardGauges& gauges_of(meta::ShardId shard);

  meta::MetaServer* server_;
  Gauge* coordinator_pending_ = nullptr;
  std::map<meta::ShardId, std::unique_ptr<ShardGauges>> shards_;
};

}  // namespace mica::apps
