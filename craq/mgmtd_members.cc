// Mgmtd's membership handlers: register_node, heartbeat, get_routing (the long poll) and
// status (craq/mgmtd.h; rules in docs/mgmtd.md "Membership and heartbeats").
#include <algorithm>
#include <set>

#include "async/log.h"
#include "craq/mgmtd.h"

namespace mica::craq {

namespace {

// How long before the caller's deadline a long poll answers without a change.
constexpr Duration kLongPollAnswerMargin = std::chrono::milliseconds(100);

Status invalid(std::string message) {
  return Status(StatusCode::kInvalidArgument, std::move(message));
}

}  // namespace

Status Mgmtd::check_string(std::string_view what, const std::string& text, bool required) const {
  if (required && text.empty()) return invalid(fmt::format("{} is required", what));
  if (text.size() > options_.string_bytes_max)
    return invalid(fmt::format("{} is {} bytes, at most {} allowed", what, text.size(),
                               options_.string_bytes_max));
  return Status();
}

// Everything about a registration that needs no state: sizes, limits, duplicates.
Status Mgmtd::check_register(const RegisterRequest& request) const {
  if (Status s = check_string("node identity", request.identity, true); !s.ok()) return s;
  if (Status s = check_string("host name", request.host_name, false); !s.ok()) return s;
  if (Status s = check_string("rpc address", request.rpc_address, false); !s.ok()) return s;
  if (request.tags.size() > options_.tags_max)
    return invalid(
        fmt::format("{} tags, at most {} allowed", request.tags.size(), options_.tags_max));
  for (const std::string& tag : request.tags)
    if (Status s = check_string("tag", tag, true); !s.ok()) return s;
  if (request.targets.size() > options_.targets_per_node_max)
    return invalid(fmt::format("{} targets, at most {} per node allowed", request.targets.size(),
                               options_.targets_per_node_max));
  if (request.kind != NodeKind::kStorage && !request.targets.empty())
    return invalid(fmt::format("a {} node has no targets", node_kind_name(request.kind)));
  if (request.kind != NodeKind::kMeta && !request.meta_shards.empty())
    return invalid(
        fmt::format("a {} node serves no metadata shards", node_kind_name(request.kind)));
  if (request.meta_shards.size() > options_.meta_shards_per_node_max)
    return invalid(fmt::format("{} metadata shards, at most {} per node allowed",
                               request.meta_shards.size(), options_.meta_shards_per_node_max));
  std::set<uint32_t> shards(request.meta_shards.begin(), request.meta_shards.end());
  if (shards.size() != request.meta_shards.size()) return invalid("a metadata shard appears twice");
  std::set<std::string_view> identities;
  for (const TargetReport& report : request.targets) {
    if (Status s = check_string("target identity", report.identity, true); !s.ok()) return s;
    if (Status s = check_string("disk", report.disk, false); !s.ok()) return s;
    if (!identities.insert(report.identity).second)
      return invalid(fmt::format("target identity {} appears twice", report.identity));
  }
  return Status();
}

// The ids of the request's targets: a known identity keeps its id (it must be this node's),
// a new identity gets a new id in no chain. Adds new and changed records to change.
Result<std::vector<TargetId>> Mgmtd::match_targets(const RegisterRequest& request, NodeId node,
                                                   Change* change, MgmtdCounters* counters) {
  std::vector<TargetId> ids;
  uint64_t new_targets = 0;
  for (const TargetReport& report : request.targets) {
    auto known = target_by_identity_.find(report.identity);
    if (known == target_by_identity_.end()) {
      if (report.target != 0)
        return invalid(fmt::format(
            "target {} is registered with another identity than {}: a new disk registers with "
            "target 0",
            report.target, report.identity));
      ++new_targets;
      TargetInfo target{.id = counters->next_target++,
                        .node = node,
                        .identity = report.identity,
                        .disk = report.disk,
                        .capacity_bytes = report.capacity_bytes,
                        .used_bytes = report.used_bytes};
      ids.push_back(target.id);
      change->targets.push_back(std::move(target));
      continue;
    }
    const TargetInfo& target = targets_.at(known->second);
    if (target.node != node)
      return invalid(fmt::format("target identity {} belongs to target {} of node {}, not node {}",
                                 report.identity, target.id, target.node, node));
    if (report.target != 0 && report.target != target.id)
      return invalid(fmt::format("target identity {} is target {}, not {}", report.identity,
                                 target.id, report.target));
    ids.push_back(target.id);
    if (target.disk != report.disk || target.capacity_bytes != report.capacity_bytes ||
        target.used_bytes != report.used_bytes) {
      TargetInfo updated = target;
      updated.disk = report.disk;
      updated.capacity_bytes = report.capacity_bytes;
      updated.used_bytes = report.used_bytes;
      change->targets.push_back(std::move(updated));
    }
  }
  if (targets_.size() + new_targets > options_.targets_max)
    return Status(StatusCode::kResourceExhausted,
                  fmt::format("the cluster holds {} targets, at most {} allowed", targets_.size(),
                              options_.targets_max));
  return ids;
}

// Records what a (re)registered node reported (a restart is in the records already).
void Mgmtd::note_reports(NodeId node, const std::vector<TargetReport>& reports,
                         const std::vector<TargetId>& ids) {
  // A target it no longer lists counts as offline from now on (listed_now()).
  NodeLive& node_live = node_live_[node];
  uint64_t report = ++node_live.reports;
  node_live.listed = reports.size();
  for (size_t i = 0; i < reports.size(); ++i) {
    TargetLive& live = target_live_[ids[i]];
    live.local = reports[i].local;
    live.reported_chain_version = reports[i].reported_chain_version;
    live.capacity_bytes = reports[i].capacity_bytes;
    live.used_bytes = reports[i].used_bytes;
    live.listed_in = report;
    if (options_.on_report) options_.on_report(node, ids[i], reports[i]);
  }
  node_live.last_heartbeat = Executor::current()->now();
}

Status Mgmtd::claim_meta_shards(const RegisterRequest& request, NodeId node, Change* change) const {
  TimePoint now = Executor::current()->now();
  for (const auto& [id, other] : nodes_) {
    if (id == node || other.meta_shards.empty()) continue;
    std::vector<uint32_t> kept;
    for (uint32_t shard : other.meta_shards) {
      bool claimed = std::find(request.meta_shards.begin(), request.meta_shards.end(), shard) !=
                     request.meta_shards.end();
      if (!claimed) {
        kept.push_back(shard);
        continue;
      }
      if (node_alive(id, now))
        return Status(StatusCode::kAlreadyExists,
                      fmt::format("metadata shard {} is served by live node {} ({})", shard, id,
                                  other.rpc_address));
    }
    if (kept.size() == other.meta_shards.size()) continue;
    NodeInfo updated = other;  // dead: its claimed shards move to the new node
    updated.meta_shards = std::move(kept);
    change->nodes.push_back(std::move(updated));
  }
  return Status();
}

Task<Result<RegisterResponse>> Mgmtd::register_node(RegisterRequest request,
                                                    net::CallContext* ctx) {
  (void)ctx;
  CO_TRY(check_register(request));
  Status locked = co_await writer_.lock();
  MICA_ASSERT(locked.ok());  // no deadline, not cancellable
  MutexGuard guard(writer_);
  NodeId id = request.node;
  if (id == 0) {
    // A node that lost its answer asks again with its identity: it gets the same id.
    auto known = node_by_identity_.find(request.identity);
    if (known != node_by_identity_.end()) id = known->second;
  }
  bool known = id != 0;
  if (known) {
    auto it = nodes_.find(id);
    if (it == nodes_.end())
      co_return Status(StatusCode::kNotFound,
                       fmt::format("node {} is unknown: register with node 0", id));
    if (it->second.identity != request.identity)
      co_return Status(StatusCode::kPermissionDenied,
                       fmt::format("node {} is registered with another identity", id));
    if (it->second.kind != request.kind)
      co_return invalid(fmt::format("node {} is a {} node, not {}", id,
                                    node_kind_name(it->second.kind), node_kind_name(request.kind)));
  } else if (nodes_.size() >= options_.nodes_max) {
    co_return Status(StatusCode::kResourceExhausted,
                     fmt::format("the cluster holds {} nodes, at most {} allowed", nodes_.size(),
                                 options_.nodes_max));
  }
  MgmtdCounters counters = counters_;
  if (!known) id = counters.next_node++;
  Change change;
  CO_TRY_ASSIGN(std::vector<TargetId> ids, match_targets(request, id, &change, &counters));
  NodeInfo node{.id = id,
                .kind = request.kind,
                .identity = request.identity,
                .host_name = request.host_name,
                .rpc_address = request.rpc_address,
                .tags = request.tags,
                .registered_at_ms = options_.wall_clock_ms ? options_.wall_clock_ms() : 0,
                .meta_shards = request.meta_shards};
  std::sort(node.meta_shards.begin(), node.meta_shards.end());
  CO_TRY(claim_meta_shards(request, id, &change));
  change.nodes.push_back(std::move(node));
  for (TargetInfo& target : capacity_changes(true)) {
    bool written = std::any_of(change.targets.begin(), change.targets.end(),
                               [&](const TargetInfo& t) { return t.id == target.id; });
    if (!written) change.targets.push_back(std::move(target));
  }
  // A new process may have missed writes: its chains' next round takes its targets out of
  // serving. Durable with the registration, so an mgmtd crash before that round keeps it.
  if (known)
    for (const auto& [target_id, target] : targets_)
      if (target.node == id && target.chain != 0) change.target(target).restart_pending = true;
  change.counters = counters;  // the new ids are durable with the change
  auto committing = commit(std::move(change));
  CO_TRY(co_await std::move(committing));
  note_reports(id, request.targets, ids);
  metrics_.registrations->add();
  MICA_LOG(Info, "mgmtd", "node {} ({} at {}) registered{} with {} targets", id,
           node_kind_name(request.kind), request.rpc_address, known ? " again" : "", ids.size());
  kick();
  co_return RegisterResponse{.node = id,
                             .targets = std::move(ids),
                             .routing_version = counters_.routing_version,
                             .config = config_};
}

Status Mgmtd::check_heartbeat(const HeartbeatRequest& request) const {
  auto node = nodes_.find(request.node);
  if (node == nodes_.end() || node->second.identity != request.identity)
    return Status(
        StatusCode::kNotFound,
        fmt::format("node {} with this identity is unknown: register first", request.node));
  if (request.targets.size() > options_.targets_per_node_max)
    return invalid(fmt::format("{} targets, at most {} per node allowed", request.targets.size(),
                               options_.targets_per_node_max));
  for (const TargetReport& report : request.targets) {
    auto target = targets_.find(report.target);
    if (target == targets_.end() || target->second.node != request.node)
      return Status(StatusCode::kNotFound, fmt::format("target {} is not node {}'s: register first",
                                                       report.target, request.node));
  }
  return Status();
}

Task<Result<HeartbeatResponse>> Mgmtd::heartbeat(HeartbeatRequest request, net::CallContext* ctx) {
  (void)ctx;
  CO_TRY(check_heartbeat(request));
  metrics_.heartbeats->add();
  NodeLive& node_live = node_live_[request.node];
  uint64_t listed_in = ++node_live.reports;
  // A target no longer listed is gone: react now, as to any state change.
  bool state_changed = request.targets.size() < node_live.listed;
  node_live.listed = request.targets.size();
  for (const TargetReport& report : request.targets) {
    TargetLive& live = target_live_[report.target];
    bool newly_listed = live.listed_in == 0 || live.listed_in + 1 != listed_in;
    state_changed |= newly_listed || live.local != report.local ||
                     live.reported_chain_version != report.reported_chain_version;
    live.local = report.local;
    live.reported_chain_version = report.reported_chain_version;
    live.capacity_bytes = report.capacity_bytes;
    live.used_bytes = report.used_bytes;
    live.listed_in = listed_in;
    if (options_.on_report) options_.on_report(request.node, report.target, report);
  }
  node_live.last_heartbeat = Executor::current()->now();
  if (state_changed) kick();  // react now rather than at the next tick
  co_return HeartbeatResponse{.routing_version = counters_.routing_version, .config = config_};
}

Task<Result<GetRoutingResponse>> Mgmtd::get_routing(GetRoutingRequest request,
                                                    net::CallContext* ctx) {
  metrics_.routing_fetches->add();
  if (request.known_version == counters_.routing_version && request.wait_ms > 0 && !stopping_) {
    uint32_t wait_ms = std::min(request.wait_ms, options_.routing_wait_ms_max);
    TimePoint deadline = Executor::current()->now() + std::chrono::milliseconds(wait_ms);
    // Answer a little before the caller gives up, so the empty answer arrives in time.
    if (ctx != nullptr && ctx->deadline != kNoDeadline)
      deadline = std::min(deadline, ctx->deadline - kLongPollAnswerMargin);
    Status woke = co_await changed_.wait(deadline);
    if (woke.code() == StatusCode::kCancelled) co_return woke;
  }
  GetRoutingResponse response{.version = counters_.routing_version};
  if (request.known_version != response.version) response.routing = *routing_;
  co_return response;
}

Duration Mgmtd::heartbeat_age(NodeId node, TimePoint now) const {
  auto live = node_live_.find(node);
  if (live == node_live_.end()) return Duration::max();
  return std::max(Duration::zero(), now - live->second.last_heartbeat);
}

bool Mgmtd::node_alive(NodeId node, TimePoint now) const {
  return heartbeat_age(node, now) <= lease();
}

Task<Result<StatusResponse>> Mgmtd::status(StatusRequest request, net::CallContext* ctx) {
  (void)request;
  (void)ctx;
  StatusResponse response;
  response.routing = *routing_;
  // Capacity is shown as last reported, even when not yet persisted.
  for (TargetInfo& target : response.routing.targets) {
    auto live = target_live_.find(target.id);
    if (live == target_live_.end()) continue;
    target.capacity_bytes = live->second.capacity_bytes;
    target.used_bytes = live->second.used_bytes;
  }
  TimePoint now = Executor::current()->now();
  for (const auto& [id, node] : nodes_) {
    Duration age = heartbeat_age(node.id, now);
    uint64_t age_ms = age == Duration::max()
                          ? UINT64_MAX
                          : static_cast<uint64_t>(
                                std::chrono::duration_cast<std::chrono::milliseconds>(age).count());
    response.nodes.push_back(
        NodeStatus{.node = node.id, .alive = age <= lease(), .heartbeat_age_ms = age_ms});
  }
  for (const auto& [id, target] : targets_) {
    const TargetLive* live = listed_now(target);  // null: not in its node's latest report
    TargetStatus item{.target = target.id};
    if (live != nullptr) {
      item.local = live->local;
      item.reported_chain_version = live->reported_chain_version;
    }
    response.targets.push_back(item);
  }
  co_return response;
}

}  // namespace mica::craq
