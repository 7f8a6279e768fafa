// SimBackend: the Backend of one simulated host of a SimWorld (see async/sim/world.h).
//
// It interprets IoOps against the host's in-memory disk (SimDisk) and the world's simulated
// network instead of the kernel. Nothing completes inside start(): every operation becomes
// one or more world events (a zero delay at least), and completions are delivered by the
// world loop with this host's executor as Executor::current(), as io_uring's reaping step
// would. fds are small per-host integers handed out here (lowest free, from 3), never real
// fds. The backend lives as long as its host (across crashes); a crash drops its fds,
// sockets and listeners and fails every pending op with -ECANCELED, but keeps the disk,
// whose files fall back to their durable content.
//
// Thread rule: the world's single thread only; wake() is a no-op, wait() must not be called
// (the world drives the executor; Executor::block_on/turn on a simulated host asserts).
// No method suspends.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "async/backend.h"
#include "async/sim/disk.h"

namespace mica::sim {

class SimWorld;
class SimHost;
class SimBackend;

// A world event's key: virtual time, then a sequence number that breaks ties in the order
// events were scheduled (so the order never depends on addresses or hash tables).
using SimEventKey = std::pair<TimePoint, uint64_t>;

// One end of a simulated TCP connection, or a socket not yet connected.
struct SimSocket : std::enable_shared_from_this<SimSocket> {
  enum class State : uint8_t { kFresh, kConnecting, kConnected, kReset, kClosed };
  SimBackend* owner = nullptr;  // the host this end lives on
  State state = State::kFresh;
  SocketAddress local;
  SocketAddress remote;
  std::weak_ptr<SimSocket> peer;
  std::string rx;  // received, not yet read bytes, from rx_offset on
  size_t rx_offset = 0;
  bool rx_eof = false;  // the peer's FIN arrived (after all its data)
  bool shut_rd = false;
  bool shut_wr = false;
  bool loss_pending = false;  // a lost segment will reset this connection
  // Arrival time of the last segment sent from this end: later segments never arrive before
  // it, which keeps one connection's byte order while connections reorder among themselves.
  TimePoint last_arrival_out = TimePoint::min();
  uint64_t connect_op = 0;
  std::vector<uint64_t> waiters;  // pending recv/poll op ids, retried when state changes
  size_t available() const { return rx.size() - rx_offset; }
};

struct SimListener {
  SocketAddress local;
  uint32_t backlog = 0;
  std::deque<std::shared_ptr<SimSocket>> queue;  // established, not yet accepted
  std::vector<uint64_t> waiters;                 // pending accept/poll op ids
};

class SimBackend final : public Backend {
 public:
  SimBackend(SimWorld* world, SimHost* host);
  ~SimBackend() override;

  TimePoint now() override;
  uint64_t random_u64() override;
  void start(IoOp* op) override;
  void cancel(IoOp* op) override;
  void wait(TimePoint until) override;
  void wake() override {}

  Result<int> open_socket(int family) override;
  Result<int> listen(const SocketAddress& address, int backlog) override;
  Result<SocketAddress> local_address(int fd) override;
  Result<SocketAddress> peer_address(int fd) override;
  Status set_socket_option(int fd, int level, int name, int value) override;
  void close_now(int fd) override;
  Result<FsSpace> statvfs(const std::string& path) override;
  Status register_buffers(std::span<const iovec> buffers) override;

  SimDisk& disk() { return disk_; }
  size_t pending_ops() const { return pending_.size(); }
  size_t open_fds() const { return fds_.size(); }

  // Called by SimWorld::crash with the host already marked down.
  void crash();

 private:
  struct FdEntry {
    // Files and directories: the node's SimFile (unused for a directory), so a non-null
    // `file` means "not a socket". Points into the disk's node map (stable addresses; an
    // open fd keeps its node alive).
    SimFile* file = nullptr;
    SimNodeId node = 0;
    bool directory = false;
    std::string path;  // as opened
    int access = 0;    // O_RDONLY / O_WRONLY / O_RDWR
    std::shared_ptr<SimSocket> socket;
    std::shared_ptr<SimListener> listener;
  };
  struct PendingOp {
    IoOp* op = nullptr;
    std::vector<SimEventKey> events;  // this op's own events, dropped when it completes
  };
  enum class Segment : uint8_t { kData, kFin };

  // Op bookkeeping (backend.cc).
  IoOp* find(uint64_t id);
  void complete(uint64_t id, int32_t result, bool more = false);
  void complete_if_pending(uint64_t id, int32_t result);
  void op_event(uint64_t id, Duration delay, std::function<void()> fn);
  void host_event(TimePoint when, std::function<void()> fn);
  void on_failed(IoOp* op);
  int allocate_fd(FdEntry entry);
  FdEntry* entry(int fd);
  void close_fd(int fd);
  uint32_t ip() const;

  // Disk (disk_ops.cc).
  void start_disk(uint64_t id);
  int32_t run_disk_op(IoOp* op);
  int32_t run_name_op(IoOp* op);
  int32_t do_open(IoOp* op);
  int32_t do_read(IoOp* op, FdEntry& e);
  int32_t do_write(IoOp* op, FdEntry& e);
  int32_t do_fallocate(IoOp* op, FdEntry& e);
  int32_t do_statx(IoOp* op);
  bool inject_eio(const std::string& path, IoOpcode opcode);
  bool in_eio_range(const std::string& path, IoOp* op);
  void flip_a_bit(const std::string& path, IoOp* op, uint64_t length);
  bool has_room(const SimFile& file, uint64_t end) const;
  // At a crash: each file write still in flight may have reached the disk.
  void land_in_flight_writes();

  // Network (net.cc).
  void attempt_net(uint64_t id);
  void start_connect(uint64_t id);
  void attempt_accept(uint64_t id, IoOp* op);
  void attempt_send(uint64_t id, IoOp* op);
  void attempt_recv(uint64_t id, IoOp* op);
  void attempt_poll(uint64_t id, IoOp* op);
  void do_shutdown(uint64_t id, IoOp* op);
  int poll_mask(int fd);
  void on_syn(std::shared_ptr<SimSocket> client, uint16_t port);
  void on_synack(std::shared_ptr<SimSocket> client, std::shared_ptr<SimSocket> server);
  void on_refused(std::shared_ptr<SimSocket> client);
  void deliver(std::shared_ptr<SimSocket> to, Segment kind, std::string data,
               std::weak_ptr<SimSocket> from);
  void transmit(SimSocket* from, Segment kind, std::string data);
  Duration net_latency();
  // RST from the network: `s` (on its own host) is reset after `delay`.
  static void reset_later(std::shared_ptr<SimSocket> s, Duration delay);
  void reset_end(SimSocket* s);
  void wake(SimSocket* s);
  void wake(SimListener* l);
  void close_socket(SimSocket* s);
  void close_listener(SimListener* l);
  std::shared_ptr<SimSocket> new_socket();
  uint16_t ephemeral_port();

  SimWorld* world_;
  SimHost* host_;
  SimDisk disk_;
  std::map<int, FdEntry> fds_;
  std::map<uint64_t, PendingOp> pending_;  // by op id: crash fails them in start order
  uint64_t next_op_id_ = 1;
  std::map<uint16_t, std::shared_ptr<SimListener>> listeners_;  // by port
  std::vector<std::weak_ptr<SimSocket>> sockets_;  // every socket of this host, for crash
  size_t sockets_prune_at_ = kSocketsPruneMin;
  uint16_t next_ephemeral_port_ = kEphemeralPortFirst;

  static constexpr int kFirstFd = 3;
  static constexpr size_t kSocketsPruneMin = 64;
  static constexpr uint16_t kListenPortFirst = 20000;
  static constexpr uint16_t kEphemeralPortFirst = 40000;
};

}  // namespace mica::sim
