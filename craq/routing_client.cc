#include "craq/routing_client.h"

#include <algorithm>

#include "async/log.h"

namespace mica::craq {

RoutingClient::RoutingClient(net::ConnectionPool* pool, RoutingClientOptions options)
    : mgmtd_(pool, options.mgmtd), options_(std::move(options)) {
  const MetricLabels& labels = options_.metric_labels;
  fetches_metric_ = &metrics().counter("routing", "fetches_total",
                                       "get_routing calls answered by mgmtd.", labels);
  fetch_errors_metric_ = &metrics().counter("routing", "fetch_errors_total",
                                            "get_routing calls that failed or timed out.", labels);
  updates_metric_ =
      &metrics().counter("routing", "updates_total", "Newer routing snapshots swapped in.", labels);
  version_metric_ =
      &metrics().gauge("routing", "version", "Version of the routing snapshot held.", labels);
}

RoutingClient::~RoutingClient() {
  MICA_ASSERT_MSG(!started_ || stopped_, "RoutingClient destroyed without stop()");
}

void RoutingClient::start() {
  MICA_ASSERT_MSG(!started_, "RoutingClient started twice");
  started_ = true;
  scope_.spawn(poll_loop());
}

Task<void> RoutingClient::stop() {
  if (stopped_) co_return;
  stopped_ = true;
  scope_.cancel();
  co_await scope_.join();
  changed_.set();  // waiters see stopped_ and return kClosed
  changed_.reset();
}

void RoutingClient::install(RoutingSnapshot snapshot) {
  if (snapshot.version <= version()) return;
  current_ = std::make_shared<const RoutingSnapshot>(std::move(snapshot));
  ++updates_;
  updates_metric_->add();
  version_metric_->set(int64_t(current_->version));
  if (options_.on_update) options_.on_update(current_);
  changed_.set();
  changed_.reset();
}

Task<Status> RoutingClient::fetch(uint32_t wait_ms, TimePoint deadline) {
  GetRoutingRequest request{.known_version = version(), .wait_ms = wait_ms};
  auto calling = mgmtd_.call<MgmtdService::get_routing>(request, deadline);
  Result<GetRoutingResponse> response = co_await std::move(calling);
  if (!response.ok()) {
    ++fetch_errors_;
    fetch_errors_metric_->add();
    co_return response.status();
  }
  ++fetches_;
  fetches_metric_->add();
  if (response->routing) {
    // An mgmtd behind the snapshot held (a restored backup; a lagging replica later) is
    // answered at once on every poll: report it so the poller backs off rather than spins.
    if (response->routing->version < version()) {
      MICA_LOG(Warn, "craq", "mgmtd {} answered routing version {}, older than the {} held",
               mgmtd_.current().to_string(), response->routing->version, version());
      co_return Status(StatusCode::kStaleVersion, "mgmtd answered an older routing version");
    }
    install(std::move(*response->routing));
  }
  co_return Status();
}

Task<void> RoutingClient::poll_loop() {
  Duration backoff{0};
  CancelToken token = co_await current_token();
  for (;;) {
    if (token.cancelled()) co_return;
    // The first fetch asks for no wait: there is nothing to wait for before a snapshot.
    uint32_t wait_ms = current_ ? options_.poll_wait_ms : 0;
    TimePoint started = Executor::current()->now();
    TimePoint deadline = started + std::chrono::milliseconds(wait_ms) + options_.poll_slack;
    uint64_t held = version();
    auto fetching = fetch(wait_ms, deadline);
    Status fetched = co_await std::move(fetching);
    if (token.cancelled()) co_return;
    Duration pause{0};
    if (fetched.ok()) {
      backoff = Duration(0);
      // An answer without news before the wait was up (mgmtd shutting down, or capping the
      // wait at nothing) must not turn the long poll into a busy loop.
      bool early = Executor::current()->now() - started < std::chrono::milliseconds(wait_ms);
      if (version() == held && (early || wait_ms == 0)) pause = options_.backoff_initial;
    } else {
      backoff = backoff == Duration(0) ? options_.backoff_initial
                                       : std::min(backoff * 2, options_.backoff_max);
      pause = backoff;
      MICA_LOG(Debug, "craq", "routing poll failed ({}); next in {} ms", fetched.to_string(),
               std::chrono::duration_cast<std::chrono::milliseconds>(backoff).count());
    }
    if (pause == Duration(0)) continue;
    SleepAwaiter sleeping = sleep_for(pause);
    Status slept = co_await sleeping;
    if (!slept.ok()) co_return;
  }
}

Task<void> RoutingClient::fetch_round(std::shared_ptr<Round> round) {
  auto fetching = fetch(0, deadline_after(options_.fetch_timeout));
  round->status = co_await std::move(fetching);
  if (round_ == round) round_ = nullptr;
  round->done.set();
}

std::shared_ptr<RoutingClient::Round> RoutingClient::start_round() {
  if (round_) return round_;
  round_ = std::make_shared<Round>();
  scope_.spawn(fetch_round(round_));
  return round_;
}

void RoutingClient::hint_version(uint64_t version_seen) {
  if (stopped_ || version_seen <= version()) return;
  start_round();
}

Task<Result<RoutingClient::SnapshotPtr>> RoutingClient::refresh(uint64_t at_least_version,
                                                                TimePoint deadline) {
  if (at_least_version != 0 && version() >= at_least_version) co_return current_;
  for (;;) {
    if (stopped_) co_return Status(StatusCode::kClosed, "routing client stopped");
    std::shared_ptr<Round> round = start_round();
    Status waited = co_await round->done.wait(deadline);
    if (!waited.ok()) co_return waited;
    if (at_least_version == 0) {
      if (!round->status.ok()) co_return round->status;
      co_return current_;
    }
    if (version() >= at_least_version) co_return current_;
    // mgmtd unreachable, or not there yet: wait a little before the next fetch, not spin.
    TimePoint next = std::min(deadline, deadline_after(options_.backoff_initial));
    SleepAwaiter pause = sleep_until(next);
    Status paused = co_await pause;
    if (!paused.ok()) co_return paused;
    if (Executor::current()->now() >= deadline)
      co_return Status(StatusCode::kTimedOut, "routing refresh: the version was not reached");
  }
}

Task<Result<RoutingClient::SnapshotPtr>> RoutingClient::wait_until(
    std::function<bool(const RoutingSnapshot&)> predicate, TimePoint deadline) {
  for (;;) {
    if (stopped_) co_return Status(StatusCode::kClosed, "routing client stopped");
    if (current_ && predicate(*current_)) co_return current_;
    Status waited = co_await changed_.wait(deadline);
    if (!waited.ok()) co_return waited;
  }
}

Task<Result<RoutingClient::SnapshotPtr>> RoutingClient::wait_for_version(uint64_t at_least_version,
                                                                         TimePoint deadline) {
  for (;;) {
    if (stopped_) co_return Status(StatusCode::kClosed, "routing client stopped");
    if (current_ && current_->version >= at_least_version) co_return current_;
    Status waited = co_await changed_.wait(deadline);
    if (!waited.ok()) co_return waited;
  }
}

}  // namespace mica::craq
