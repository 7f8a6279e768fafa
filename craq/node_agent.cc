#include "craq/node_agent.h"

#include <algorithm>
#include <set>

#include "async/log.h"
#include "craq/routing_client.h"

namespace mica::craq {

namespace {

// mgmtd's answers that mean "register again": it does not know the node or one of its
// targets, or the identity does not match the id.
bool needs_registration(StatusCode code) {
  return code == StatusCode::kNotFound || code == StatusCode::kPermissionDenied;
}

}  // namespace

NodeAgent::NodeAgent(net::ConnectionPool* pool, NodeAgentOptions options)
    : mgmtd_(pool, options.mgmtd), options_(std::move(options)), node_(options_.node) {
  MICA_ASSERT_MSG(options_.reports != nullptr, "a node agent needs a reports callback");
  const MetricLabels& labels = options_.metric_labels;
  registrations_metric_ = &metrics().counter("node_agent", "registrations_total",
                                             "Successful registrations with mgmtd.", labels);
  heartbeats_metric_ =
      &metrics().counter("node_agent", "heartbeats_total", "Heartbeats mgmtd accepted.", labels);
  heartbeat_errors_metric_ = &metrics().counter("node_agent", "heartbeat_errors_total",
                                                "Heartbeats that failed or were refused.", labels);
}

NodeAgent::~NodeAgent() {
  MICA_ASSERT_MSG(!started_ || stopped_, "NodeAgent destroyed without stop()");
}

void NodeAgent::start() {
  MICA_ASSERT_MSG(!started_, "NodeAgent started twice");
  started_ = true;
  scope_.spawn(run());
}

Task<void> NodeAgent::stop() {
  if (stopped_) co_return;
  stopped_ = true;
  scope_.cancel();
  co_await scope_.join();
}

Duration NodeAgent::heartbeat_interval() const {
  if (have_config_ && config_.heartbeat_interval_ms > 0)
    return std::chrono::milliseconds(config_.heartbeat_interval_ms);
  return options_.heartbeat_interval;
}

Task<Status> NodeAgent::wait_registered(TimePoint deadline) {
  co_return co_await registered_event_.wait(deadline);
}

TimePoint NodeAgent::lease_expiry() const {
  if (!accepted_sent_ || !have_config_) return TimePoint::min();
  return *accepted_sent_ + std::chrono::milliseconds(config_.lease_timeout_ms);
}

void NodeAgent::learn(const ClusterConfig& config, uint64_t routing_version) {
  config_ = config;
  have_config_ = true;
  if (routing_version <= routing_version_) return;
  routing_version_ = routing_version;
  if (options_.routing != nullptr) options_.routing->hint_version(routing_version);
  if (options_.on_routing_version) options_.on_routing_version(routing_version);
}

bool NodeAgent::fill_reports(std::vector<TargetReport>* reports) const {
  std::set<std::string> identities;
  for (TargetReport& report : *reports) {
    identities.insert(report.identity);
    // The last registration's answer is the authority: a caller's stale id would only be
    // refused.
    auto known = target_ids_.find(report.identity);
    if (known != target_ids_.end()) report.target = known->second;
  }
  if (identities.size() != target_ids_.size()) return false;
  for (const auto& [identity, id] : target_ids_)
    if (identities.count(identity) == 0) return false;
  return true;
}

Task<Status> NodeAgent::register_once() {
  RegisterRequest request{.node = node_,
                          .identity = options_.identity,
                          .kind = options_.kind,
                          .host_name = options_.host_name,
                          .rpc_address = options_.rpc_address,
                          .tags = options_.tags,
                          .targets = options_.reports(),
                          .meta_shards = options_.meta_shards};
  fill_reports(&request.targets);
  if (forgotten_) {
    // mgmtd does not know this node's ids, or knows them under other identities (its state
    // was lost or re-initialised): ask by identity alone rather than be refused forever.
    request.node = 0;
    for (TargetReport& report : request.targets) report.target = 0;
  }
  std::vector<std::string> identities;
  for (const TargetReport& report : request.targets) identities.push_back(report.identity);
  TimePoint sent = Executor::current()->now();
  auto calling =
      mgmtd_.call<MgmtdService::register_node>(request, deadline_after(options_.call_timeout));
  Result<RegisterResponse> answered = co_await std::move(calling);
  if (!answered.ok()) {
    // kNotFound: mgmtd does not know the id; kPermissionDenied: it gave the id to another
    // identity (re-initialised, and another old node registered first). Either way the
    // identity is the authority: ask as node 0, and mgmtd's identity lookup answers the id
    // it knows for this node, or a new one.
    bool asked_by_id = request.node != 0;
    for (const TargetReport& report : request.targets) asked_by_id |= report.target != 0;
    if (needs_registration(answered.status().code()) && asked_by_id) {
      MICA_LOG(Warn, "craq", "mgmtd refused node {}'s ids ({}); registering as a new node", node_,
               answered.status().to_string());
      forgotten_ = true;
    }
    co_return answered.status();
  }
  RegisterResponse response = std::move(*answered);
  forgotten_ = false;
  if (response.targets.size() != identities.size())
    co_return Status(StatusCode::kProtocolError, "mgmtd answered a registration's targets");
  if (node_ != response.node)
    MICA_LOG(Info, "craq", "registered with mgmtd as node {}", response.node);
  node_ = response.node;
  target_ids_.clear();
  for (size_t i = 0; i < identities.size(); ++i) target_ids_[identities[i]] = response.targets[i];
  registered_ = true;
  accepted_sent_ = sent;  // mgmtd counts a registration as a heartbeat
  ++registrations_;
  registrations_metric_->add();
  learn(response.config, response.routing_version);
  if (options_.on_registered) {
    auto persisting = options_.on_registered(response);
    Status persisted = co_await std::move(persisting);
    if (!persisted.ok())
      MICA_LOG(Error, "craq", "node {}: persisting the ids mgmtd assigned failed: {}", node_,
               persisted.to_string());
  }
  registered_event_.set();
  co_return Status();
}

Task<void> NodeAgent::register_until_done() {
  Duration backoff{0};
  CancelToken token = co_await current_token();
  while (!token.cancelled()) {
    bool was_forgotten = forgotten_;
    auto registering = register_once();
    Status registered = co_await std::move(registering);
    if (registered.ok()) co_return;
    if (token.cancelled()) co_return;
    if (forgotten_ && !was_forgotten) continue;  // at once, as a new node
    if (!is_mgmtd_unreachable(registered.code()))
      MICA_LOG(Warn, "craq", "mgmtd refused to register node {}: {}", node_,
               registered.to_string());
    backoff = backoff == Duration(0) ? options_.backoff_initial
                                     : std::min(backoff * 2, options_.backoff_max);
    SleepAwaiter pause = sleep_for(backoff);
    Status paused = co_await pause;
    if (!paused.ok()) co_return;
  }
}

Task<void> NodeAgent::heartbeat_once() {
  HeartbeatRequest request{
      .node = node_, .identity = options_.identity, .targets = options_.reports()};
  if (!fill_reports(&request.targets)) {
    MICA_LOG(Info, "craq", "node {}: its targets changed; registering again", node_);
    registered_ = false;
    co_return;
  }
  Duration budget = std::min(options_.call_timeout, heartbeat_interval());
  TimePoint sent = Executor::current()->now();
  auto calling = mgmtd_.call<MgmtdService::heartbeat>(request, deadline_after(budget));
  Result<HeartbeatResponse> response = co_await std::move(calling);
  if (response.ok()) {
    accepted_sent_ = sent;
    ++heartbeats_;
    heartbeats_metric_->add();
    learn(response->config, response->routing_version);
    co_return;
  }
  ++heartbeat_errors_;
  heartbeat_errors_metric_->add();
  if (needs_registration(response.status().code())) {
    MICA_LOG(Info, "craq", "mgmtd refused node {}'s heartbeat ({}); registering again", node_,
             response.status().to_string());
    registered_ = false;
  }
}

Task<void> NodeAgent::run() {
  CancelToken token = co_await current_token();
  TimePoint next = Executor::current()->now();
  while (!token.cancelled()) {
    if (!registered_) {
      registered_event_.reset();
      auto registering = register_until_done();
      co_await std::move(registering);
      next = Executor::current()->now() + heartbeat_interval();
      continue;
    }
    Status woke = co_await kick_.wait(next);
    if (token.cancelled()) co_return;
    if (!woke.ok() && woke.code() != StatusCode::kTimedOut) co_return;
    kick_.reset();
    // Fixed rate: the next heartbeat is due one interval after this one started, so a slow
    // answer does not stretch the gaps mgmtd's lease has to cover.
    next = Executor::current()->now() + heartbeat_interval();
    auto beating = heartbeat_once();
    co_await std::move(beating);
  }
}

}  // namespace mica::craq
