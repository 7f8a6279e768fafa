// MetaClient: the client half of the metadata service — one method per MetaService method
// (meta/meta_service.h), routed by the shard of the inode a request names first (shard_of)
// through routing's meta_shards -> node -> rpc_address. The native client, the FUSE daemon
// and `mica` build on it; so do the meta servers for their calls to each other.
//
// Retries: a call is retried with backoff (doubling from backoff_initial to backoff_max)
// on kWrongShard or a shard with no route (routing is refreshed first), kBusy (a locked
// entry, a full server), connection errors and an attempt's kTimedOut, until the call's
// deadline (CallOptions::deadline, else call_timeout from the start). A mutation without a
// RequestTag gets one (this client's id, drawn at construction unless given, and a request
// counter) and every attempt carries the same tag, so a retry of an applied mutation is
// answered as the first try was. Every other status is the answer.
//
// Sessions and the lease: create-with-open and open register the meta process that holds
// the new session; start() runs a loop that renews the client's lease at every such
// process every renew_interval (or a third of the lease the server names). close()
// forgets a session. resolve() walks a path from the root by lookups with the caller's
// credentials, following symlinks in the middle (and at the end when asked) up to
// kSymlinkDepthMax levels (kLoop past it); a file in the middle is kNotDirectory.
//
// Threads: executor-bound. The client, its pool and routing client belong to the executor
// that made it, and every call runs there. start() from a task on it; stop() awaited
// before destruction. The pool and routing client outlive the client.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "async/metrics.h"
#include "async/scope.h"
#include "async/sync.h"
#include "async/task.h"
#include "craq/routing_client.h"
#include "meta/meta_service.h"
#include "net/rpc_client.h"

namespace mica::meta {

inline constexpr uint32_t kSymlinkDepthMax = 40;  // Linux's MAXSYMLINKS
inline constexpr size_t kPathMax = 4096;          // bytes of a path resolve() accepts

struct MetaClientOptions {
  ClientId client = 0;  // 0: drawn at construction (the runtime's random source)
  Duration call_timeout = std::chrono::seconds(30);     // a call's deadline when it names none
  Duration attempt_timeout = std::chrono::seconds(10);  // one RPC before it is retried
  Duration backoff_initial = std::chrono::milliseconds(5);
  Duration backoff_max = std::chrono::milliseconds(500);
  // How often the lease is renewed; zero: a third of the lease the server answers with.
  Duration renew_interval = Duration::zero();
  Duration renew_interval_default = std::chrono::seconds(1);  // before any answer
  MetricLabels metric_labels;
};

// A path walk's result: the inode the path names and the directory holding its last
// component (the root for "/": parent is the root itself).
struct Resolved {
  Inode inode;
  InodeId parent = 0;
  std::string name;  // the last component ("" for "/")
};

class MetaClient {
 public:
  using CallOptions = net::CallOptions;

  MetaClient(net::ConnectionPool* pool, craq::RoutingClient* routing,
             MetaClientOptions options = {});
  MetaClient(const MetaClient&) = delete;
  MetaClient& operator=(const MetaClient&) = delete;
  ~MetaClient();  // asserts stop() returned (or start() never ran)

  // Starts the lease loop on the calling executor.
  void start();
  Task<void> stop();

  ClientId client_id() const { return client_; }
  craq::RoutingClient* routing() const { return routing_; }
  // A fresh tag: this client and the next request number.
  RequestTag next_tag() { return RequestTag{.client = client_, .request = ++requests_}; }

  // ---- MetaService, one call each (routed by the request's first inode) ----
  Task<Result<InodeReply>> lookup(LookupRequest request, CallOptions options = {});
  Task<Result<InodeReply>> getattr(GetattrRequest request, CallOptions options = {});
  Task<Result<InodeReply>> setattr(SetattrRequest request, CallOptions options = {});
  Task<Result<CreateReply>> create(CreateRequest request, CallOptions options = {});
  Task<Result<InodeReply>> mkdir(MkdirRequest request, CallOptions options = {});
  Task<Result<RemoveReply>> remove(RemoveRequest request, CallOptions options = {});
  Task<Result<RenameReply>> rename(RenameRequest request, CallOptions options = {});
  Task<Result<InodeReply>> link(LinkRequest request, CallOptions options = {});
  Task<Result<ReadlinkReply>> readlink(ReadlinkRequest request, CallOptions options = {});
  Task<Result<ReaddirReply>> readdir(ReaddirRequest request, CallOptions options = {});
  // Any meta process answers (the one serving shard 0 first).
  Task<Result<StatfsReply>> statfs(StatfsRequest request, CallOptions options = {});
  Task<Result<XattrValue>> get_xattr(GetXattrRequest request, CallOptions options = {});
  Task<Result<InodeReply>> set_xattr(SetXattrRequest request, CallOptions options = {});
  Task<Result<XattrNames>> list_xattr(ListXattrRequest request, CallOptions options = {});
  Task<Result<InodeReply>> remove_xattr(RemoveXattrRequest request, CallOptions options = {});
  Task<Result<OpenReply>> open(OpenRequest request, CallOptions options = {});
  Task<Result<InodeReply>> report_length(LengthReport request, CallOptions options = {});
  Task<Result<InodeReply>> close(CloseRequest request, CallOptions options = {});
  // The lease at the process serving `shard` (the lease loop calls it per process).
  Task<Result<LeaseReply>> renew_lease(ShardId shard, CallOptions options = {});
  // The status of the process serving `shard`.
  Task<Result<MetaStatusReply>> status(ShardId shard, CallOptions options = {});
  // A page of request.shard's records.
  Task<Result<ScanReply>> scan(ScanRequest request, CallOptions options = {});

  // Walks an absolute path ("/a/b/c"; repeated '/' and "." allowed, ".." goes to the
  // parent) by lookups as cred. follow_last: a symlink as the last component is followed
  // too (stat, open) or not (lstat, unlink). kInvalidArgument for a relative path,
  // kNameTooLong past kPathMax or a component past kNameMax.
  Task<Result<Resolved>> resolve(Credentials cred, std::string path, bool follow_last = true,
                                 CallOptions options = {});

  // Meta processes the lease loop renews at (node ids with sessions of this client).
  std::vector<craq::NodeId> lease_holders() const;
  uint64_t retries() const { return retries_; }

 private:
  struct Walk;
  template <auto M>
  Task<Result<net::ResponseOf<M>>> call(ShardId shard, net::RequestOf<M> request,
                                        CallOptions options);
  // call<M> at the shard of the request's `home` inode (the parent for an entry, else the
  // inode: placement in docs/meta.md), with a fresh tag when the request carries one.
  template <auto M>
  Task<Result<net::ResponseOf<M>>> routed(InodeId net::RequestOf<M>::*home,
                                          net::RequestOf<M> request, CallOptions options);
  Task<Result<std::shared_ptr<net::RpcClient>>> connect(ShardId shard, TimePoint deadline,
                                                        craq::NodeId* node);
  TimePoint deadline_of(const CallOptions& options) const;
  void fill_tag(RequestTag* tag) {
    if (tag->client == 0 && tag->request == 0) *tag = next_tag();
  }
  void note_session(craq::NodeId node, ShardId shard, SessionId session);
  void forget_session(ShardId shard, SessionId session);
  Task<void> lease_loop();
  Task<void> renew_all();
  Task<Status> walk_component(Walk* walk, std::string name, bool last, bool follow_last,
                              TimePoint deadline);

  net::ConnectionPool* pool_;
  craq::RoutingClient* routing_;
  MetaClientOptions options_;
  ClientId client_ = 0;
  uint64_t requests_ = 0;
  // Sessions this client holds, by the node serving them (the lease loop's list).
  std::map<craq::NodeId, std::set<std::pair<ShardId, SessionId>>> sessions_;
  Duration lease_interval_{};
  bool lease_answered_ = false;  // a renewal answered: lease_interval_ fits the server's lease
  Event stop_event_;
  TaskScope scope_;
  bool started_ = false;
  bool stopped_ = false;
  uint64_t retries_ = 0;
  Counter* retries_metric_ = nullptr;
};

}  // namespace mica::meta
