// RdmaDevice: one opened verbs device as the RDMA transport uses it — the context, one
// protection domain, the chosen port (its link layer, LID, GID and MTU), the device's
// limits and the config clamped to them, and the table of memory registered through the
// transport, so a local span can be matched to its lkey without registering anything on
// the data path. It also reads the context's asynchronous events (port down, device or QP
// fatal) and fails the connections they concern (RdmaEventSink). Also the handshake
// message both ends exchange over TCP, and the pure choices behind discovery (GID choice,
// clamping) so they can be tested without a device.
//
// Ownership: shared (std::shared_ptr) by the transport, its connections and its memory
// regions, so the PD outlives every QP and MR in it. The context is closed on destruction
// only when the device owns it (open_rdma_transport); make_rdma_transport borrows it.
// Thread rule: one executor, like the transport; nothing here suspends.
#pragma once

#include <infiniband/verbs.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "net/connection.h"
#include "net/rdma/rdma_config.h"
#include "net/rdma/rdma_receive.h"

namespace mica::net {

// One GID table entry as discovery sees it.
struct GidEntry {
  uint32_t index = 0;
  ibv_gid gid{};
  ibv_gid_type type = IBV_GID_TYPE_IB;
};

// The RoCE GID to use: a RoCE v2 entry, IPv4-mapped (::ffff:a.b.c.d) before any other,
// lowest index first; a RoCE v1 entry only when the table has no v2 one. Entries with an
// all-zero GID are empty slots. kNotFound when nothing is usable.
Result<uint32_t> choose_roce_gid(std::span<const GidEntry> table);

// What the device and port allow (ibv_query_device, ibv_query_port).
struct DeviceLimits {
  uint32_t max_qp_wr = 0;
  uint32_t max_sge = 0;
  uint32_t max_cqe = 0;
  uint64_t max_mr_size = 0;
  uint32_t max_qp_rd_atom = 0;       // as responder
  uint32_t max_qp_init_rd_atom = 0;  // as requester
  uint32_t max_msg_bytes = 0;        // port
};

// `config` with every queue size, WR size and outstanding-READ count brought within the
// device's limits (one-sided WRs give way first, then send slots, then receive slots),
// then validated. kNotSupported when even the smallest rings cannot fit.
Result<RdmaConfig> clamp_to_device(RdmaConfig config, const DeviceLimits& limits);

// Send + receive WRs a connection's QP and CQ need for a config (rdma_connection.cc).
uint32_t rdma_send_wrs(const RdmaConfig& c);
uint32_t rdma_recv_wrs(const RdmaConfig& c);

// A connection as the device's event handler sees it.
class RdmaEventSink {
 public:
  virtual ~RdmaEventSink() = default;
  virtual ibv_qp* event_qp() const = 0;
  virtual ibv_cq* event_cq() const = 0;
  // Fails the connection (idempotent); `why` is retryable (kConnectionReset).
  virtual void on_device_failure(Status why) = 0;
  // The transport's receive budget gave bytes back: take held receive slots if possible.
  virtual void on_budget_released() = 0;
};

class RdmaDevice {
 public:
  // Picks the port (config.port_num, or the first active one), reads its link layer,
  // chooses the GID, queries the limits and clamps `config`. kUnreachable when no port is
  // active; kInvalidArgument for a GID index that the port lacks. Sets the context's
  // async_fd O_NONBLOCK (a borrowed context too): the runtime polls it.
  static Result<std::shared_ptr<RdmaDevice>> open(ibv_context* context, bool owns_context,
                                                  const RdmaConfig& config);
  RdmaDevice(const RdmaDevice&) = delete;
  RdmaDevice& operator=(const RdmaDevice&) = delete;
  ~RdmaDevice();

  ibv_context* context() const { return context_; }
  ibv_pd* pd() const { return pd_; }
  uint8_t port_num() const { return port_num_; }
  uint8_t link_layer() const { return link_layer_; }
  uint16_t lid() const { return lid_; }
  const ibv_gid& gid() const { return gid_; }
  // Whether packets carry a GRH (always on RoCE), and the source GID index then.
  bool use_gid() const { return gid_index_ >= 0; }
  int32_t gid_index() const { return gid_index_; }
  ibv_gid_type gid_type() const { return gid_type_; }
  ibv_mtu active_mtu() const { return active_mtu_; }
  const DeviceLimits& limits() const { return limits_; }
  // The caller's config clamped to the device: what connections use.
  const RdmaConfig& config() const { return config_; }

  // Reads and acknowledges every pending asynchronous event (the fd is non-blocking) and
  // acts on it: port down or device fatal fail every attached connection, a QP or CQ error
  // fails its own. Called by each connection's event watcher and before a new connection.
  void take_async_events();
  // Ok when new connections may be made: the port is active (asked of the device, not
  // only from events) and no fatal event came. Otherwise kUnreachable, which is retryable.
  Status usable();
  void attach(RdmaEventSink* sink) { sinks_.push_back(sink); }
  void detach(RdmaEventSink* sink);

  // The transport-wide budget of received payload not yet consumed (rdma_receive.h).
  ByteBudget& recv_budget() { return *recv_budget_; }
  // A connection holds slots for want of budget; budget_released() lets each retry.
  void wait_for_budget(RdmaEventSink* sink);
  void budget_released();

  // The lkey of a registered region holding all of [data, data + size), if any.
  std::optional<uint32_t> find_lkey(const void* data, size_t size) const;
  void add_region(const void* data, size_t size, uint32_t lkey);
  void remove_region(const void* data);

 private:
  RdmaDevice() = default;
  struct Region {
    size_t size;
    uint32_t lkey;
  };
  Status pick_port(uint8_t wanted);
  Status pick_gid(int32_t wanted, int table_length);
  void fail_sinks(const Status& why, ibv_qp* qp, ibv_cq* cq);

  ibv_context* context_ = nullptr;
  bool owns_context_ = false;
  ibv_pd* pd_ = nullptr;
  uint8_t port_num_ = 1;
  uint8_t link_layer_ = IBV_LINK_LAYER_INFINIBAND;
  uint16_t lid_ = 0;
  ibv_gid gid_{};
  int32_t gid_index_ = -1;
  ibv_gid_type gid_type_ = IBV_GID_TYPE_IB;
  ibv_mtu active_mtu_ = IBV_MTU_1024;
  DeviceLimits limits_;
  RdmaConfig config_;
  bool fatal_ = false;
  std::vector<RdmaEventSink*> sinks_;
  std::unique_ptr<ByteBudget> recv_budget_;
  std::vector<RdmaEventSink*> budget_waiters_;
  std::map<uintptr_t, Region> regions_;  // by start address; regions never overlap
};

// Memory registered for one-sided access by peers (LOCAL_WRITE | REMOTE_READ | REMOTE_WRITE).
// RemoteBuffer.region is the region's virtual address, key its rkey.
class RdmaRegion final : public MemoryRegion {
 public:
  RdmaRegion(std::shared_ptr<RdmaDevice> device, std::span<std::byte> bytes, ibv_mr* mr);
  ~RdmaRegion() override;
  std::span<std::byte> bytes() override { return bytes_; }
  RemoteBuffer remote(uint64_t offset, uint32_t length) override;

 private:
  std::shared_ptr<RdmaDevice> device_;
  std::span<std::byte> bytes_;
  ibv_mr* mr_;
};

inline constexpr uint32_t kRdmaHelloMagic = 0x4d524431;  // "1DRM"
inline constexpr uint16_t kRdmaHelloVersion = 1;

// What each end tells the other before the QPs connect (sent as one serde message).
struct RdmaHello {
  uint32_t magic = kRdmaHelloMagic;
  uint16_t version = kRdmaHelloVersion;
  uint32_t qp_num = 0;
  uint32_t psn = 0;
  uint16_t lid = 0;
  std::vector<uint8_t> gid;  // 16 bytes
  bool use_gid = false;
  uint32_t mtu_bytes = 0;
  uint32_t recv_slots = 0;      // frame receives = the credits the peer starts with
  uint32_t ack_recv_slots = 0;  // receives reserved for the peer's acks and close notice
  uint32_t slot_bytes = 0;      // size of each receive buffer
  MICA_FIELDS(RdmaHello, magic, version, qp_num, psn, lid, gid, use_gid, mtu_bytes, recv_slots,
              ack_recv_slots, slot_bytes)
};

// IBA MTU encodings.
ibv_mtu mtu_from_bytes(uint32_t bytes);
uint32_t mtu_bytes(ibv_mtu mtu);

}  // namespace mica::net
