// RdmaDevice: one opened verbs device as the RDMA transport uses it — the context, one
// protection domain, the port's LID/GID/MTU — and the table of memory registered through
// the transport, so a local span can be matched to its lkey without registering anything
// on the data path. Also the handshake message both ends exchange over TCP.
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

namespace mica::net {

class RdmaDevice {
 public:
  static Result<std::shared_ptr<RdmaDevice>> open(ibv_context* context, bool owns_context,
                                                  const RdmaConfig& config);
  RdmaDevice(const RdmaDevice&) = delete;
  RdmaDevice& operator=(const RdmaDevice&) = delete;
  ~RdmaDevice();

  ibv_context* context() const { return context_; }
  ibv_pd* pd() const { return pd_; }
  uint16_t lid() const { return lid_; }
  const ibv_gid& gid() const { return gid_; }
  ibv_mtu active_mtu() const { return active_mtu_; }

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
  ibv_context* context_ = nullptr;
  bool owns_context_ = false;
  ibv_pd* pd_ = nullptr;
  uint16_t lid_ = 0;
  ibv_gid gid_{};
  ibv_mtu active_mtu_ = IBV_MTU_1024;
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
