// SimBackend: the Backend of one executor of a simulated host of a SimWorld (see
// async/sim/world.h).
//
// It interprets IoOps against the host's in-memory disk (SimDisk) and the world's simulated
// network instead of the kernel. Nothing completes inside start(): every operation becomes
// one or more world events (a zero delay at least), and completions are delivered by the
// world loop with this backend's executor as Executor::current(), as io_uring's reaping
// step would. A host with several executors has one backend per executor; they share the
// host's state (disk, fd table, sockets, listeners), so an fd opened on one executor works
// on another, as threads share a process. fds are small per-host integers handed out here
// (lowest free, from 3), never real fds. Backends live as long as their host (across
// crashes); a crash drops the fds, sockets and listeners and fails every pending op with
// -ECANCELED, but keeps the disk, whose files fall back to their durable content. start()
// is the one gate that refuses every op of a crashed host.
//
// Thread rule: the world's single thread only; wake() is a no-op, wait() must not be called
// (the world drives the executor; Executor::block_on/turn on a simulated host asserts).
// No method suspends.
#pragma once

#include <cerrno>
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

// A pending recv/send/accept/poll op waiting on a socket or listener: the backend (one per
// executor of the host) that started it, and its op id there.
struct SimWaiter {
  SimBackend* backend = nullptr;
  uint64_t id = 0;
};

// One end of a simulated TCP connection, or a socket not yet connected.
struct SimSocket : std::enable_shared_from_this<SimSocket> {
  enum class State : uint8_t { kFresh, kConnecting, kConnected, kReset, kClosed };
  enum class Segment : uint8_t { kData, kFin };
  // A segment handed to the network but not yet on the wire: it waits behind a lost one.
  struct Outgoing {
    Segment kind = Segment::kData;
    std::string data;
    TimePoint first_sent;
    uint32_t retransmissions = 0;
  };
  SimBackend* owner = nullptr;     // the backend whose events deliver to this end
  SimHost* remote_host = nullptr;  // the peer's host (known once connecting)
  State state = State::kFresh;
  int reset_errno = ECONNRESET;  // what ops see once state is kReset
  SocketAddress local;
  SocketAddress remote;
  std::weak_ptr<SimSocket> peer;
  std::string rx;  // received, not yet read bytes, from rx_offset on
  size_t rx_offset = 0;
  bool rx_eof = false;  // the peer's FIN arrived (after all its data)
  bool shut_rd = false;
  bool shut_wr = false;
  // Bytes this end sent that the peer has not read yet (in flight, in its receive buffer);
  // send waits while it is at the send + receive buffer limit.
  uint64_t unread_out_bytes = 0;
  std::deque<Outgoing> send_queue;  // head first; its retransmission is scheduled if lost
  // Arrival time of the last segment sent from this end: later segments never arrive before
  // it, which keeps one connection's byte order while connections reorder among themselves.
  TimePoint last_arrival_out = TimePoint::min();
  uint64_t connect_op = 0;
  SimBackend* connect_backend = nullptr;
  std::vector<SimWaiter> waiters;  // pending ops, retried when state changes
  size_t available() const { return rx.size() - rx_offset; }
};

struct SimListener {
  SocketAddress local;
  uint32_t backlog = 0;
  std::deque<std::shared_ptr<SimSocket>> queue;  // established, not yet accepted
  std::vector<SimWaiter> waiters;                // pending accept/poll ops
};

class SimBackend final : public Backend {
 public:
  // The first backend of a host (primary null) owns the host's state (disk, fds, sockets,
  // listeners); the host's other executors' backends share it, as threads share a process.
  SimBackend(SimWorld* world, SimHost* host, uint32_t executor_index, SimBackend* primary);
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

  uint32_t executor_index() const { return executor_index_; }

  // Called by SimWorld::crash, for every backend of the host (the first one last), with
  // the host already marked down: lands or fails this backend's pending ops; the first
  // backend then drops the host's fds, sockets and listeners without a segment leaving the
  // host (peers see no reset).
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
  using Segment = SimSocket::Segment;
  // What the executors of one host share.
  struct HostState {
    SimDisk disk;
    std::map<int, FdEntry> fds;
    std::map<uint16_t, std::shared_ptr<SimListener>> listeners;  // by port
    std::vector<std::weak_ptr<SimSocket>> sockets;  // every socket of the host, for crash
    size_t sockets_prune_at = kSocketsPruneMin;
    uint16_t next_ephemeral_port = kEphemeralPortFirst;
  };

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
  // Puts the head of from's send queue on the wire, or schedules its retransmission.
  static void pump(std::shared_ptr<SimSocket> from);
  bool lost_in_transit(SimHost* to_host);
  void give_up(SimSocket* from);
  void send_rst(SimSocket* from);
  void flip_bits(SimHost* to_host, std::string& data);
  void on_read(SimSocket* s, size_t n);
  void retry(SimWaiter w);
  static void retry_all(std::vector<SimWaiter> waiters);
  static void cancel_all(std::vector<SimWaiter> waiters);
  Duration net_latency();
  // RST from the network: `s` (on its own host) is reset after `delay`.
  static void reset_later(std::shared_ptr<SimSocket> s, Duration delay);
  void reset_end(SimSocket* s, int error = ECONNRESET);
  void wake(SimSocket* s);
  void wake(SimListener* l);
  void close_socket(SimSocket* s);
  void close_listener(SimListener* l);
  std::shared_ptr<SimSocket> new_socket();
  uint16_t ephemeral_port();

  SimWorld* world_;
  SimHost* host_;
  uint32_t executor_index_;
  std::shared_ptr<HostState> shared_;  // declared before the references into it
  SimDisk& disk_;
  std::map<int, FdEntry>& fds_;
  std::map<uint64_t, PendingOp> pending_;  // by op id: crash fails them in start order
  uint64_t next_op_id_ = 1;
  std::map<uint16_t, std::shared_ptr<SimListener>>& listeners_;
  std::vector<std::weak_ptr<SimSocket>>& sockets_;
  size_t& sockets_prune_at_;
  uint16_t& next_ephemeral_port_;

  static constexpr int kFirstFd = 3;
  static constexpr size_t kSocketsPruneMin = 64;
  static constexpr uint16_t kListenPortFirst = 20000;
  static constexpr uint16_t kEphemeralPortFirst = 40000;
};

}  // namespace mica::sim
