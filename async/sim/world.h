// SimWorld: a deterministic simulation of many hosts — their executors, disks and the
// network between them — inside one thread, on virtual time.
//
// The world owns the virtual clock, one event queue ordered by (time, sequence number), the
// one seeded PRNG (SimRandom), the network (latency, reordering across connections, loss
// with retransmission, resets, one-way partitions, bit flips) and N SimHosts. Each SimHost
// owns one or more Executors, each on a SimBackend bound to it (sharing the host's disk,
// fds and address), its clock (skew and drift over world time) and the tasks spawned on
// it. The loop runs every executor's ready tasks (in a seeded order, ready queues shuffled,
// unless perturb_schedule is off) until nothing is runnable, then jumps the clock to the
// earliest of the next world event and every executor's next timer (in its host's time)
// and delivers it. So a one-hour sleep costs nothing, and a seed fixes the whole run: every
// delivered event is folded into trace_hash(), and the same seed gives the same hash.
//
// Crash and restart: crash(host) fails the host's pending ops with -ECANCELED, cancels its
// tasks (which then run to completion; every op they start fails with -ECANCELED, so
// nothing they attempt reaches a disk or a peer), drops its fds and sockets silently (no
// FIN, no RST: peers notice by timeouts) and puts its disk through a power loss
// (SimDisk::crash, with the host's SimDiskConfig: synced data and names stay, a seeded
// subset of the rest, possibly torn). restart(host) brings it up and runs its boot
// function again. freeze(host) stops a host without losing anything; unfreeze resumes it.
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
  // Chance that one transmission of a data/FIN segment is lost. As TCP, the sender
  // retransmits it after retransmit_delay, doubling per attempt up to retransmit_delay_max;
  // later segments of the connection wait behind it, so the byte stream never has a hole.
  // A segment sent into a one-way partition or to a down host is lost the same way.
  double drop_probability = 0;
  Duration retransmit_delay = std::chrono::milliseconds(200);
  Duration retransmit_delay_max = std::chrono::seconds(2);
  // The sender gives up on a segment once it has been retransmitted this many times or was
  // first sent this long ago: its end resets with -ETIMEDOUT and an RST goes to the peer
  // (lost like any segment if the way is blocked).
  uint32_t retransmit_attempts_max = 8;
  Duration retransmit_timeout = std::chrono::seconds(10);
  // Chance that sending a segment resets the connection instead (both ends, after latency).
  double reset_probability = 0;
  // A connect that gets no answer (SYN or SYN-ACK blocked, target host down) fails with
  // -ETIMEDOUT after this (or -ETIME at its deadline).
  Duration connect_timeout = std::chrono::seconds(10);
  // Flow control: bytes one end may have sent that the peer has not read; a send completes
  // with what fits and waits while nothing fits. Read space reaches the sender one latency
  // after the peer reads (window updates are never lost). Defaults: Linux's autotuning
  // maxima (tcp_wmem, tcp_rmem).
  uint64_t send_buffer_bytes = uint64_t{4} << 20;
  uint64_t receive_buffer_bytes = uint64_t{6} << 20;
  // Chance that a delivered data segment has one random bit flipped (for checksum tests),
  // and a targeted hook that may change any delivered data segment's bytes.
  double bit_flip_probability = 0;
  std::function<void(const SimHost& from, const SimHost& to, std::string& data)> tamper;
};

// Counts of what the network did, for tests and sweeps to check that faults really hit.
struct SimNetStats {
  uint64_t segments_delivered = 0;
  uint64_t retransmissions = 0;
  uint64_t give_ups = 0;  // connections reset because retransmissions ran out
  uint64_t bit_flips = 0;
};

struct SimConfig {
  SimDiskConfig disk;  // copied into each host at add_host; change it per host there
  SimNetConfig net;
  uint32_t ready_budget = 4096;  // handles a host runs before the loop looks elsewhere
  // Seeded scheduling perturbation: every round of the loop runs the executors in an order
  // drawn from the world's PRNG and shuffles each one's ready queue first, so which ready
  // task runs next differs across seeds (and replays from one) and races surface.
  bool perturb_schedule = true;
  uint32_t executors_per_host = 1;  // add_host's default
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
  kRetransmit = 108,
  kGiveUp = 109,
  kBitFlip = 110,
  kFreeze = 111,
  kUnfreeze = 112,
  kPartition = 113,
  kHeal = 114,
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
  bool frozen() const { return frozen_; }
  SimWorld& world() { return *world_; }
  // The host's executors (as a server's Runtime threads): each has its own SimBackend, and
  // all share the host's disk, fds, sockets and address. Hop with
  // `co_await host.executor(i).schedule()`, as on a Runtime.
  size_t executor_count() const { return lanes_.size(); }
  Executor& executor(size_t i = 0) { return *lane(i).executor; }
  SimBackend& backend(size_t i = 0) { return *lane(i).backend; }
  SimDisk& disk() { return backend().disk(); }
  SimDiskConfig& disk_config() { return disk_config_; }
  // This host's IPv4 address (127.1.0.N, N = index + 1) in host byte order, and with a port.
  uint32_t ip() const { return kIpBase + index_ + 1; }
  SocketAddress address(uint16_t port) const { return SocketAddress::ipv4(ip(), port); }
  size_t task_count() const { return tasks_.size(); }

  // The host's clock: local = epoch + (world - epoch) * (1 + drift_ppm / 10^6) + skew, in
  // integer nanoseconds (so it replays across compilers). Executor::now() on the host reads
  // it, and the host's timers and op deadlines fire when it reaches them. Set it before the
  // host's tasks measure time: a change moves the clock at once.
  void set_clock(Duration skew, int32_t drift_ppm);
  TimePoint now() const;
  TimePoint local_time(TimePoint world_time) const;
  // The earliest world time at which the local clock reads at least `local`.
  TimePoint world_time(TimePoint local) const;

  static constexpr uint32_t kIpBase = 0x7F010000;  // 127.1.0.0

 private:
  friend class SimWorld;
  struct HostTask {
    std::unique_ptr<CancelSource> source;  // declared first: outlives the task's frame
    Task<void> task;
  };
  // One executor of the host with its backend, and the timer that delivers world events
  // with this executor current (see SimWorld::in_host).
  struct Lane {
    SimBackend* backend = nullptr;  // owned by executor
    std::unique_ptr<Executor> executor;
    Timer deliver_timer;
    const std::function<void()>* deliver_fn = nullptr;
  };
  struct Deferred {
    uint32_t executor;
    std::function<void()> fn;
  };
  SimHost(SimWorld* world, uint32_t index, std::string name, SimDiskConfig disk,
          uint32_t executors);
  Lane& lane(size_t i) {
    MICA_ASSERT(i < lanes_.size());
    return *lanes_[i];
  }
  static void on_deliver(Timer* timer);

  SimWorld* world_;
  uint32_t index_;
  std::string name_;
  SimDiskConfig disk_config_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::map<uint64_t, HostTask> tasks_;
  uint64_t next_task_id_ = 1;
  BootFn boot_;
  bool up_ = true;
  bool frozen_ = false;
  std::vector<Deferred> deferred_;  // world events that came due while frozen, in order
  Duration clock_skew_{0};
  int32_t clock_drift_ppm_ = 0;
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
  SimNetStats& net_stats() { return net_stats_; }

  // Adds a host with config().executors_per_host executors (or `executors`); if boot is
  // given it is spawned (on executor 0) at once and again at every restart.
  SimHost& add_host(std::string name, BootFn boot = {});
  SimHost& add_host(std::string name, uint32_t executors, BootFn boot = {});
  SimHost& host(size_t index) {
    MICA_ASSERT(index < hosts_.size());
    return *hosts_[index];
  }
  size_t host_count() const { return hosts_.size(); }

  // Runs task on host's executor `executor` (it gets a CancelSource of the host's, so a
  // crash cancels it). The world owns the task until it finishes. The host must be up.
  void spawn(SimHost& host, Task<void> task, uint32_t executor = 0);
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
  // A frozen host (a stopped VM, a long GC pause) runs no task and fires no timer, and
  // world events for it (segments, completions) wait until unfreeze; its clock runs on and
  // it sends nothing, so peers notice only by their own timeouts. Unfreeze runs what came
  // due, in order.
  void freeze(SimHost& host);
  void unfreeze(SimHost& host);

  // Partitions block segments and handshakes: both ways, or only from -> to.
  void partition(SimHost& a, SimHost& b);
  void partition_one_way(SimHost& from, SimHost& to);
  void heal(SimHost& a, SimHost& b);
  void heal_one_way(SimHost& from, SimHost& to);
  void heal_all();
  bool blocked(uint32_t from, uint32_t to) const;
  bool partitioned(uint32_t a, uint32_t b) const { return blocked(a, b) || blocked(b, a); }

  // Hash of every event so far (time, host, kind, fd, result), and the readable tail.
  uint64_t trace_hash() const { return trace_hash_; }
  uint64_t trace_events() const { return trace_events_; }
  const std::deque<std::string>& trace_log() const { return trace_log_; }
  // Folds a user event (e.g. a workload checkpoint) into the trace.
  void trace_user(const SimHost* host, int64_t value);

  // For SimBackend. `host` null: a world-level event; else it runs with the host's executor
  // `executor` current.
  SimEventKey post_event(SimHost* host, TimePoint when, std::function<void()> fn,
                         uint32_t executor = 0);
  void cancel_event(const SimEventKey& key) { events_.erase(key); }
  void trace(const SimHost* host, uint32_t kind, int fd, int64_t result);
  SimHost* host_by_ip(uint32_t ip);

 private:
  struct Event {
    SimHost* host;
    uint32_t executor;
    std::function<void()> fn;
  };
  RunStop run_until(const std::function<bool()>& done, TimePoint limit);
  void run_ready_all();
  bool run_round();
  void reap_tasks(SimHost& host);
  TimePoint next_due() const;
  void step();
  // Runs fn with host's executor as Executor::current() (as a reaping step would).
  void in_host(SimHost& host, uint32_t executor, const std::function<void()>& fn);
  void release_deferred(SimHost& host);
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
  std::set<std::pair<uint32_t, uint32_t>> partitions_;  // (from, to) pairs blocked
  uint32_t loop_depth_ = 0;
  TimePoint last_step_time_;
  uint64_t steps_this_instant_ = 0;
  SimNetStats net_stats_;
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
