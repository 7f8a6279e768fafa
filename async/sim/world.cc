#include "async/sim/world.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace mica::sim {
namespace {

// Folds one value into the running trace hash (order-sensitive, well mixed).
uint64_t fold(uint64_t hash, uint64_t value) {
  uint64_t state = hash ^ (value * 0x9E3779B97F4A7C15ull);
  return splitmix64(state);
}

const char* kind_name(uint32_t kind) {
  switch (kind) {
    case uint32_t(SimTraceKind::kTimers):
      return "timers";
    case uint32_t(SimTraceKind::kSegment):
      return "segment";
    case uint32_t(SimTraceKind::kReset):
      return "reset";
    case uint32_t(SimTraceKind::kCrash):
      return "crash";
    case uint32_t(SimTraceKind::kRestart):
      return "restart";
    case uint32_t(SimTraceKind::kTaskStart):
      return "task-start";
    case uint32_t(SimTraceKind::kTaskEnd):
      return "task-end";
    case uint32_t(SimTraceKind::kUser):
      return "user";
    case uint32_t(SimTraceKind::kRetransmit):
      return "retransmit";
    case uint32_t(SimTraceKind::kGiveUp):
      return "give-up";
    case uint32_t(SimTraceKind::kBitFlip):
      return "bit-flip";
    case uint32_t(SimTraceKind::kFreeze):
      return "freeze";
    case uint32_t(SimTraceKind::kUnfreeze):
      return "unfreeze";
    case uint32_t(SimTraceKind::kPartition):
      return "partition";
    case uint32_t(SimTraceKind::kHeal):
      return "heal";
    default:
      break;
  }
  static const char* const kOps[] = {
      "nop",     "read",      "write",     "readv",   "writev",  "read-fixed", "write-fixed",
      "fsync",   "fdatasync", "fallocate", "open",    "close",   "accept",     "accept-multi",
      "connect", "send",      "recv",      "sendmsg", "recvmsg", "shutdown",   "poll",
      "mkdir",   "rename",    "unlink",    "statx"};
  return kind < std::size(kOps) ? kOps[kind] : "?";
}

// Virtual time starts at 1 s rather than 0 so no code mistakes it for "unset".
constexpr TimePoint kEpoch = TimePoint(std::chrono::seconds(1));

}  // namespace

uint64_t sim_seed(uint64_t default_seed) {
  const char* text = std::getenv("MICA_SIM_SEED");
  if (text == nullptr || *text == '\0') return default_seed;
  char* end = nullptr;
  unsigned long long value = std::strtoull(text, &end, 0);
  MICA_ASSERT_MSG(end != nullptr && *end == '\0', "MICA_SIM_SEED is not a number");
  return value;
}

// ---- SimHost ----

SimHost::SimHost(SimWorld* world, uint32_t index, std::string name, SimDiskConfig disk,
                 uint32_t executors)
    : world_(world), index_(index), name_(std::move(name)), disk_config_(std::move(disk)) {
  MICA_ASSERT_MSG(executors >= 1, "a simulated host needs an executor");
  for (uint32_t i = 0; i < executors; ++i) {
    auto lane = std::make_unique<Lane>();
    SimBackend* primary = lanes_.empty() ? nullptr : lanes_[0]->backend;
    auto backend = std::make_unique<SimBackend>(world, this, i, primary);
    lane->backend = backend.get();
    lane->executor = std::make_unique<Executor>(
        std::move(backend), ExecutorOptions{.ready_budget = world->config().ready_budget});
    lane->deliver_timer.fire = &SimHost::on_deliver;
    lane->deliver_timer.context = lane.get();
    lanes_.push_back(std::move(lane));
  }
}

SimHost::~SimHost() {
  MICA_ASSERT_MSG(tasks_.empty(), "simulated host destroyed with tasks");
}

void SimHost::on_deliver(Timer* timer) {
  auto* lane = static_cast<Lane*>(timer->context);
  (*lane->deliver_fn)();
}

void SimHost::set_clock(Duration skew, int32_t drift_ppm) {
  MICA_ASSERT_MSG(drift_ppm > -1'000'000, "a clock must run forwards");
  clock_skew_ = skew;
  clock_drift_ppm_ = drift_ppm;
}

TimePoint SimHost::now() const {
  return local_time(world_->now());
}

TimePoint SimHost::local_time(TimePoint world_time) const {
  if (clock_drift_ppm_ == 0) return world_time + clock_skew_;
  __int128 elapsed = (world_time - kEpoch).count();
  __int128 drift = elapsed * clock_drift_ppm_;
  // Floor division, so the clock never steps backwards as world time grows.
  __int128 q = drift / 1'000'000;
  if (drift % 1'000'000 < 0) --q;
  return world_time + Duration(int64_t(q)) + clock_skew_;
}

TimePoint SimHost::world_time(TimePoint local) const {
  if (local == kNoDeadline || local == TimePoint::min()) return local;
  if (clock_drift_ppm_ == 0) return local - clock_skew_;
  __int128 target = (local - clock_skew_ - kEpoch).count();
  auto guess = int64_t(target * 1'000'000 / (1'000'000 + clock_drift_ppm_));
  TimePoint w = kEpoch + Duration(guess);
  // The guess is off by a few nanoseconds of rounding at most: step to the exact answer.
  while (local_time(w) < local) w += Duration(1);
  while (local_time(w - Duration(1)) >= local) w -= Duration(1);
  return w;
}

// ---- SimWorld ----

SimWorld::SimWorld(uint64_t seed, SimConfig config)
    : seed_(seed), config_(std::move(config)), random_(seed), now_(kEpoch) {}

SimWorld::~SimWorld() {
  // Shut every host down as a crash would (data loss no longer matters) so each task runs
  // to its end and frees its frame; a task that ignores cancellation fails loudly here.
  for (auto& host : hosts_) {
    if (!host->up_) continue;
    host->up_ = false;
    release_deferred(*host);
    for (auto i = uint32_t(host->executor_count()); i-- > 0;)
      in_host(*host, i, [&] { host->backend(i).crash(); });
    in_host(*host, 0, [&] {
      for (auto& [id, t] : host->tasks_) t.source->cancel();
    });
  }
  auto all_done = [this] {
    for (auto& host : hosts_)
      if (!host->tasks_.empty()) return false;
    return true;
  };
  RunStop stop = run_until(all_done, now_ + config_.run_limit);
  if (stop != RunStop::kDone) fail("tasks still running when the world was destroyed");
  // Ops owned outside tasks (an orphaned listener's accept) finish on their own events.
  if (run_until({}, now_ + config_.run_limit) != RunStop::kIdle)
    fail("events still pending when the world was destroyed");
  events_.clear();
  hosts_.clear();
}

SimHost& SimWorld::add_host(std::string name, BootFn boot) {
  return add_host(std::move(name), config_.executors_per_host, std::move(boot));
}

SimHost& SimWorld::add_host(std::string name, uint32_t executors, BootFn boot) {
  auto index = static_cast<uint32_t>(hosts_.size());
  MICA_ASSERT_MSG(index < 0xFFFE, "too many simulated hosts for the 127.1.0.0/16 range");
  hosts_.push_back(
      std::unique_ptr<SimHost>(new SimHost(this, index, std::move(name), config_.disk, executors)));
  SimHost& host = *hosts_.back();
  host.boot_ = std::move(boot);
  if (host.boot_) spawn(host, host.boot_(host));
  return host;
}

SimHost* SimWorld::host_by_ip(uint32_t ip) {
  if ((ip & 0xFFFF0000u) != SimHost::kIpBase) return nullptr;
  uint32_t n = ip & 0xFFFFu;
  if (n == 0 || n > hosts_.size()) return nullptr;
  return hosts_[n - 1].get();
}

void SimWorld::spawn(SimHost& host, Task<void> task, uint32_t executor) {
  MICA_ASSERT_MSG(host.up_, "spawn on a crashed host");
  MICA_ASSERT(task.valid() && !task.handle().promise().started());
  uint64_t id = host.next_task_id_++;
  auto source = std::make_unique<CancelSource>();
  // The token must be in place before the first resume: children inherit it on co_await.
  task.handle().promise().set_token(source->token());
  host.executor(executor).post(task.handle());
  host.tasks_.emplace(id, SimHost::HostTask{std::move(source), std::move(task)});
  trace(&host, uint32_t(SimTraceKind::kTaskStart), -1, int64_t(id));
}

void SimWorld::reap_tasks(SimHost& host) {
  for (auto it = host.tasks_.begin(); it != host.tasks_.end();) {
    if (!it->second.task.done()) {
      ++it;
      continue;
    }
    trace(&host, uint32_t(SimTraceKind::kTaskEnd), -1, int64_t(it->first));
    it = host.tasks_.erase(it);
  }
}

SimEventKey SimWorld::post_event(SimHost* host, TimePoint when, std::function<void()> fn,
                                 uint32_t executor) {
  if (when < now_) when = now_;
  SimEventKey key{when, next_event_seq_++};
  events_.emplace(key, Event{host, executor, std::move(fn)});
  return key;
}

void SimWorld::schedule(Duration delay, std::function<void()> fn) {
  post_event(nullptr, now_ + delay, std::move(fn));
}

void SimWorld::trace(const SimHost* host, uint32_t kind, int fd, int64_t result) {
  uint32_t host_index = host ? host->index_ : UINT32_MAX;
  trace_hash_ = fold(trace_hash_, uint64_t(to_ns(now_)));
  trace_hash_ = fold(trace_hash_, host_index);
  trace_hash_ = fold(trace_hash_, kind);
  trace_hash_ = fold(trace_hash_, uint64_t(int64_t(fd)));
  trace_hash_ = fold(trace_hash_, uint64_t(result));
  ++trace_events_;
  if (config_.trace_log_lines_max == 0) return;
  int64_t ns = to_ns(now_);
  trace_log_.push_back(fmt::format("{}.{:09} {} {} fd={} result={}", ns / 1'000'000'000,
                                   ns % 1'000'000'000, host ? host->name_ : "world",
                                   kind_name(kind), fd, result));
  if (trace_log_.size() > config_.trace_log_lines_max) trace_log_.pop_front();
}

void SimWorld::trace_user(const SimHost* host, int64_t value) {
  trace(host, uint32_t(SimTraceKind::kUser), -1, value);
}

void SimWorld::in_host(SimHost& host, uint32_t executor, const std::function<void()>& fn) {
  // Executor::fire_due_timers is the one public entry that makes an executor current, so
  // the delivery rides on a timer due at the beginning of time: it fires alone, at once.
  SimHost::Lane& lane = host.lane(executor);
  const std::function<void()>* saved = lane.deliver_fn;
  lane.deliver_fn = &fn;
  lane.deliver_timer.when = TimePoint::min();
  lane.executor->add_timer(&lane.deliver_timer);
  size_t fired = lane.executor->fire_due_timers(TimePoint::min());
  MICA_ASSERT(fired >= 1 && !lane.deliver_timer.queued());
  lane.deliver_fn = saved;
}

void SimWorld::count_step() {
  if (now_ != last_step_time_) {
    last_step_time_ = now_;
    steps_this_instant_ = 0;
  }
  if (++steps_this_instant_ > config_.steps_per_instant_max)
    fail("livelock: the simulation keeps running without virtual time moving");
}

bool SimWorld::run_round() {
  // The executors this round runs, in host order, or (perturbed) in a seeded order with
  // each ready queue shuffled: which ready task runs next then depends on the seed.
  std::vector<std::pair<SimHost*, uint32_t>> order;
  for (auto& host : hosts_) {
    if (host->frozen_) continue;
    for (uint32_t i = 0; i < host->executor_count(); ++i) order.emplace_back(host.get(), i);
  }
  auto below = [this](uint64_t bound) { return random_.below(bound); };
  if (config_.perturb_schedule)
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[below(i)]);
  bool ran = false;
  for (auto [host, i] : order) {
    Executor& e = host->executor(i);
    e.drain_inbox();
    if (e.has_ready()) {
      if (config_.perturb_schedule) e.shuffle_ready(below);
      e.run_ready(config_.ready_budget);
      ran = true;
    }
    reap_tasks(*host);
  }
  return ran;
}

void SimWorld::run_ready_all() {
  for (;;) {
    count_step();
    if (!run_round()) return;
  }
}

TimePoint SimWorld::next_due() const {
  TimePoint next = events_.empty() ? kNoDeadline : events_.begin()->first.first;
  for (auto& host : hosts_) {
    if (host->frozen_) continue;
    for (auto& lane : host->lanes_)
      next = std::min(next, host->world_time(lane->executor->next_timer()));
  }
  return next;
}

void SimWorld::step() {
  // Timers due now fire before events due now, executor by executor in a fixed order; a
  // host's timers are due when its own clock reaches them.
  bool fired = false;
  for (auto& host : hosts_) {
    if (host->frozen_) continue;
    for (auto& lane : host->lanes_) {
      if (host->world_time(lane->executor->next_timer()) > now_) continue;
      size_t n = lane->executor->fire_due_timers(host->local_time(now_));
      trace(host.get(), uint32_t(SimTraceKind::kTimers), -1, int64_t(n));
      fired = true;
    }
  }
  if (fired) return;
  auto it = events_.begin();
  MICA_ASSERT(it != events_.end() && it->first.first <= now_);
  Event event = std::move(it->second);
  events_.erase(it);
  if (event.host && event.host->frozen_)
    event.host->deferred_.push_back({event.executor, std::move(event.fn)});
  else if (event.host)
    in_host(*event.host, event.executor, event.fn);
  else
    event.fn();
}

SimWorld::RunStop SimWorld::run_until(const std::function<bool()>& done, TimePoint limit) {
  ++loop_depth_;
  RunStop stop;
  for (;;) {
    run_ready_all();
    if (done && done()) {
      stop = RunStop::kDone;
      break;
    }
    TimePoint next = next_due();
    if (next == kNoDeadline) {
      stop = RunStop::kIdle;
      break;
    }
    if (next > limit) {
      stop = RunStop::kTimeLimit;
      break;
    }
    if (next > now_) now_ = next;
    count_step();
    step();
  }
  --loop_depth_;
  return stop;
}

bool SimWorld::run_until_idle(Duration max_virtual) {
  MICA_ASSERT_MSG(loop_depth_ == 0, "SimWorld::run_until_idle called from inside the simulation");
  return run_until({}, now_ + max_virtual) == RunStop::kIdle;
}

void SimWorld::run_for(Duration d) {
  MICA_ASSERT_MSG(loop_depth_ == 0, "SimWorld::run_for called from inside the simulation");
  TimePoint end = now_ + d;
  run_until({}, end);
  if (now_ < end) now_ = end;
}

void SimWorld::fail(const std::string& why) const {
  std::string message = fmt::format(
      "{} at virtual time {} ns; simulation seed={} (replay: "
      "MICA_SIM_SEED={})",
      why, to_ns(now_), seed_, seed_);
  std::fprintf(stderr, "%s\n", message.c_str());
  for (const std::string& line : trace_log_) std::fprintf(stderr, "  trace: %s\n", line.c_str());
  MICA_ASSERT_MSG(false, message.c_str());
  std::abort();
}

void SimWorld::check_run(RunStop stop, const SimHost& host) const {
  if (stop == RunStop::kDone) return;
  fail(fmt::format("SimWorld::run on host {}: {}", host.name_,
                   stop == RunStop::kIdle ? "deadlock (task waits, nothing left to happen)"
                                          : "virtual time limit reached"));
}

void SimWorld::drain_host(SimHost& host) {
  RunStop stop = run_until([&host] { return host.tasks_.empty(); }, now_ + config_.run_limit);
  if (stop != RunStop::kDone)
    fail(fmt::format("tasks of crashed host {} did not finish after cancellation", host.name_));
}

void SimWorld::crash(SimHost& host) {
  MICA_ASSERT_MSG(host.up_, "crash of a host that is down");
  host.up_ = false;
  trace(&host, uint32_t(SimTraceKind::kCrash), -1, 0);
  // A frozen host that crashes thaws: its tasks must run to unwind (every op they try now
  // fails), and what waited for it is delivered to a down host (and goes nowhere).
  release_deferred(host);
  // Last executor first: the first backend drops the host's shared fds and sockets.
  for (auto i = uint32_t(host.executor_count()); i-- > 0;)
    in_host(host, i, [&host, i] { host.backend(i).crash(); });
  in_host(host, 0, [&host] {
    for (auto& [id, t] : host.tasks_) t.source->cancel();
  });
  host.disk().crash(random_, host.disk_config_);
  if (loop_depth_ == 0) drain_host(host);
}

void SimWorld::restart(SimHost& host, BootFn boot) {
  MICA_ASSERT_MSG(!host.up_, "restart of a host that is up");
  if (loop_depth_ == 0) drain_host(host);
  MICA_ASSERT_MSG(host.tasks_.empty(), "restart before the crashed host's tasks finished");
  if (boot) host.boot_ = std::move(boot);
  host.up_ = true;
  trace(&host, uint32_t(SimTraceKind::kRestart), -1, 0);
  if (host.boot_) spawn(host, host.boot_(host));
}

void SimWorld::freeze(SimHost& host) {
  MICA_ASSERT_MSG(host.up_ && !host.frozen_, "freeze of a host that is down or frozen");
  host.frozen_ = true;
  trace(&host, uint32_t(SimTraceKind::kFreeze), -1, 0);
}

void SimWorld::unfreeze(SimHost& host) {
  MICA_ASSERT_MSG(host.frozen_, "unfreeze of a host that is not frozen");
  trace(&host, uint32_t(SimTraceKind::kUnfreeze), -1, int64_t(host.deferred_.size()));
  release_deferred(host);
}

void SimWorld::release_deferred(SimHost& host) {
  host.frozen_ = false;
  std::vector<SimHost::Deferred> deferred;
  deferred.swap(host.deferred_);
  for (auto& d : deferred) post_event(&host, now_, std::move(d.fn), d.executor);
}

void SimWorld::partition(SimHost& a, SimHost& b) {
  partition_one_way(a, b);
  partition_one_way(b, a);
}

void SimWorld::partition_one_way(SimHost& from, SimHost& to) {
  partitions_.emplace(from.index_, to.index_);
  trace(&from, uint32_t(SimTraceKind::kPartition), -1, int64_t(to.index_));
}

void SimWorld::heal(SimHost& a, SimHost& b) {
  heal_one_way(a, b);
  heal_one_way(b, a);
}

void SimWorld::heal_one_way(SimHost& from, SimHost& to) {
  partitions_.erase({from.index_, to.index_});
  trace(&from, uint32_t(SimTraceKind::kHeal), -1, int64_t(to.index_));
}

void SimWorld::heal_all() {
  partitions_.clear();
  trace(nullptr, uint32_t(SimTraceKind::kHeal), -1, -1);
}

bool SimWorld::blocked(uint32_t from, uint32_t to) const {
  return partitions_.count({from, to}) != 0;
}

}  // namespace mica::sim
