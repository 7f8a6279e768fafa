// SimWorld: a deterministic simulation of many hosts — their executors, disks and the
// network between them — inside one thread, on virtual time.
//
// The world owns the virtual clock, one event queue ordered by (time, sequence number), the
// one seeded PRNG (SimRandom), the network (latency, reordering across connections, drops,
// resets, partitions) and N SimHosts. Each SimHost owns an Executor built on a SimBackend
// bound to it, its in-memory disk and the set of tasks spawned on it. The loop runs every
// host's ready tasks (fixed host order) until nothing is runnable, then jumps the clock to
// the earliest of the next world event and every host's next timer and delivers it. So a
// one-hour sleep costs nothing, and a seed fixes the whole run: every delivered event is
// folded into trace_hash(), and the same seed gives the same hash.
//
// Crash and restart: crash(host) fails the host's pending ops with -ECANCELED, cancels its
// tasks (which then run to completion; new ops on a down host fail with -ECANCELED),
// drops its fds, resets its connections' peers and puts its disk through a power loss
// (SimDisk::crash, with the host's SimDiskConfig: synced data and names stay, a seeded
// subset of the rest, possibly torn). restart(host) brings it up and runs its boot function again.
//
// Ownership: the world owns hosts, executors, backends and spawned tasks; destroying the
// world cancels the remaining tasks and runs them to completion first.
// Thread rule: one thread; world methods are called from the test (outside the loop), from
// world events (schedule()), or from tasks (then never on the task's own host for crash).
// No method suspends; run*() drive the loop.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "async/executor.h"
#include "async/sim/backend.h"
#include "async/sim/random.h"

namespace mica::sim {

struct SimNetConfig {
  // One-way latency, drawn per segment: independent connections reorder relative to each
  // other; one connection keeps its byte order.
  Duration latency_min = std::chrono::microseconds(50);
  Duration latency_max = std::chrono::microseconds(500);
  // Chance that a data/FIN segment is lost. TCP would retransmit until its timers give
  // up; we model the outcome: the connection is reset on both ends after retransmit_timeout.
  double drop_probability = 0;
  // Chance that sending a segment resets the connection instead (both ends, after latency).
  double reset_probability = 0;
  Duration retransmit_timeout = std::chrono::seconds(3);
  // A connect into a partition fails with -ETIMEDOUT after this (or -ETIME at its deadline).
  Duration connect_timeout = std::chrono::seconds(10);
};

struct SimConfig {
  SimDiskConfig disk;  // copied into each host at add_host; change it per host there
  SimNetConfig net;
  uint32_t ready_budget = 4096;  // handles a host runs before the loop looks elsewhere
  // Bound on virtual time for run() and for draining a crashed host's tasks.
  Duration run_limit = std::chrono::hours(24 * 365);
  // Lines of readable trace kept (the most recent ones); 0 keeps none.
  size_t trace_log_lines_max = 0;
  // Loop steps (ready rounds or deliveries) allowed without virtual time moving; beyond it
  // the world is livelocked (say, an op retried forever on a crashed host) and fails.
  uint64_t steps_per_instant_max = 10'000'000;
};

// What a traced event was: an IoOpcode (0..) for I/O completions, or one of these.
enum class SimTraceKind : uint32_t {
  kTimers = 100,
  kSegment = 101,
  kReset = 102,
  kCrash = 103,
  kRestart = 104,
  kTaskStart = 105,
  kTaskEnd = 106,
  kUser = 107,
};

class SimHost {
 public:
  using BootFn = std::function<Task<void>(SimHost& host)>;

  SimHost(const SimHost&) = delete;
  SimHost& operator=(const SimHost&) = delete;
  ~SimHost();

  const std::string& name() const { return name_; }
  uint32_t index() const { return index_; }
  bool up() const { return up_; }
  SimWorld& world() { return *world_; }
  Executor& executor() { return *executor_; }
  SimBackend& backend() { return *backend_; }
  SimDisk& disk() { return backend_->disk(); }
  SimDiskConfig& disk_config() { return disk_config_; }
  // This host's IPv4 address (127.1.0.N, N = index + 1) in host byte order, and with a port.
  uint32_t ip() const { return kIpBase + index_ + 1; }
  SocketAddress address(uint16_t port) const { return SocketAddress::ipv4(ip(), port); }
  size_t task_count() const { return tasks_.size(); }

  static constexpr uint32_t kIpBase = 0x7F010000;  // 127.1.0.0

 private:
  friend class SimWorld;
  struct HostTask {
    std::unique_ptr<CancelSource> source;  // declared first: outlives the task's frame
    Task<void> task;
  };
  SimHost(SimWorld* world, uint32_t index, std::string name, SimDiskConfig disk);
  static void on_deliver(Timer* timer);

  SimWorld* world_;
  uint32_t index_;
  std::string name_;
  SimDiskConfig disk_config_;
  SimBackend* backend_ = nullptr;  // owned by executor_
  std::unique_ptr<Executor> executor_;
  std::map<uint64_t, HostTask> tasks_;
  uint64_t next_task_id_ = 1;
  BootFn boot_;
  bool up_ = true;
  // Delivers world events with this host's executor current (see SimWorld::in_host).
  Timer deliver_timer_;
  const std::function<void()>* deliver_fn_ = nullptr;
};

class SimWorld {
 public:
  using BootFn = SimHost::BootFn;
  enum class RunStop { kDone, kIdle, kTimeLimit };

  explicit SimWorld(uint64_t seed, SimConfig config = {});
  SimWorld(const SimWorld&) = delete;
  SimWorld& operator=(const SimWorld&) = delete;
  ~SimWorld();

  uint64_t seed() const { return seed_; }
  TimePoint now() const { return now_; }
  SimRandom& random() { return random_; }
  SimConfig& config() { return config_; }
  SimNetConfig& net_config() { return config_.net; }

  // Adds a host; if boot is given it is spawned at once and again at every restart.
  SimHost& add_host(std::string name, BootFn boot = {});
  SimHost& host(size_t index) {
    MICA_ASSERT(index < hosts_.size());
    return *hosts_[index];
  }
  size_t host_count() const { return hosts_.size(); }

  // Runs task on host (it gets a CancelSource of the host's, so a crash cancels it). The
  // world owns the task until it finishes. The host must be up.
  void spawn(SimHost& host, Task<void> task);
  // Spawns task on host and runs the world until it finishes; returns its value. Asserts
  // (printing the seed) on deadlock (nothing left to do) or past config().run_limit.
  template <class T>
  T run(SimHost& host, Task<T> task);
  // Runs until nothing is left to do, or until the next event lies more than max_virtual
  // ahead. Returns true when the world went idle.
  bool run_until_idle(Duration max_virtual = std::chrono::hours(24 * 365));
  // Runs everything due within d; the clock then reads now() + d.
  void run_for(Duration d);
  // Runs fn at now() + delay as a world event (for faults at a chosen virtual time).
  void schedule(Duration delay, std::function<void()> fn);

  // See the header comment. crash() outside the loop also runs the host's tasks to their
  // end; inside the loop they finish as the loop goes on (restart asserts they have).
  void crash(SimHost& host);
  // Brings host up and spawns boot (or the host's earlier boot function).
  void restart(SimHost& host, BootFn boot = {});

  void partition(SimHost& a, SimHost& b);
  void heal(SimHost& a, SimHost& b);
  void heal_all() { partitions_.clear(); }
  bool partitioned(uint32_t a, uint32_t b) const;

  // Hash of every event so far (time, host, kind, fd, result), and the readable tail.
  uint64_t trace_hash() const { return trace_hash_; }
  uint64_t trace_events() const { return trace_events_; }
  const std::deque<std::string>& trace_log() const { return trace_log_; }
  // Folds a user event (e.g. a workload checkpoint) into the trace.
  void trace_user(const SimHost* host, int64_t value);

  // For SimBackend. `host` null: a world-level event.
  SimEventKey post_event(SimHost* host, TimePoint when, std::function<void()> fn);
  void cancel_event(const SimEventKey& key) { events_.erase(key); }
  void trace(const SimHost* host, uint32_t kind, int fd, int64_t result);
  SimHost* host_by_ip(uint32_t ip);

 private:
  struct Event {
    SimHost* host;
    std::function<void()> fn;
  };
  RunStop run_until(const std::function<bool()>& done, TimePoint limit);
  void run_ready_all();
  void reap_tasks(SimHost& host);
  TimePoint next_due() const;
  void step();
  // Runs fn with host's executor as Executor::current() (as a reaping step would).
  void in_host(SimHost& host, const std::function<void()>& fn);
  void drain_host(SimHost& host);
  [[noreturn]] void fail(const std::string& why) const;
  void count_step();
  void check_run(RunStop stop, const SimHost& host) const;

  uint64_t seed_;
  SimConfig config_;
  SimRandom random_;
  TimePoint now_;
  std::map<SimEventKey, Event> events_;
  uint64_t next_event_seq_ = 0;
  std::vector<std::unique_ptr<SimHost>> hosts_;
  std::set<std::pair<uint32_t, uint32_t>> partitions_;
  uint32_t loop_depth_ = 0;
  TimePoint last_step_time_;
  uint64_t steps_this_instant_ = 0;
  uint64_t trace_hash_ = 0;
  uint64_t trace_events_ = 0;
  std::deque<std::string> trace_log_;
};

// The seed for a simulation: MICA_SIM_SEED from the environment if set (decimal or 0x hex),
// else default_seed. Tests print it on failure so a failing run replays.
uint64_t sim_seed(uint64_t default_seed);

template <class T>
T SimWorld::run(SimHost& host, Task<T> task) {
  MICA_ASSERT_MSG(loop_depth_ == 0, "SimWorld::run called from inside the simulation");
  detail::BlockOnSlot<T> slot;
  Task<void> root = detail::block_on_body<T>(std::move(task), &slot);
  spawn(host, std::move(root));
  bool* filled = &slot.filled;
  RunStop stop = run_until([filled] { return *filled; }, now_ + config_.run_limit);
  check_run(stop, host);
  return slot.take();
}

}  // namespace mica::sim
