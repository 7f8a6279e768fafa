// The fake verbs provider's state, shared by its data path (fake_verbs.cc) and its
// exported ibv_* functions (fake_verbs_exports.cc). Test-only; everything here runs under
// fabric().mutex unless a function says otherwise.
#pragma once

#include <infiniband/verbs.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tests/net/fake_verbs.h"

namespace mica::fake_verbs::detail {

inline constexpr uint32_t kMaxWr = 16384;
inline constexpr uint32_t kMaxSge = 30;
inline constexpr uint32_t kMaxInline = 256;
inline constexpr uint32_t kMaxCqe = 1 << 20;
inline constexpr uint32_t kPsnMask = 0xffffff;
inline constexpr uint8_t kRnrRetryInfinite = 7;

struct FakeContext;

struct FakeDevice {
  ibv_device device{};
  uint16_t lid = 0;
  ibv_gid gid{};
};

struct FakePd {
  ibv_pd pd{};
  FakeContext* ctx = nullptr;
  uint32_t mrs = 0;
  uint32_t qps = 0;
};

struct FakeMr {
  ibv_mr mr{};
  uint64_t iova = 0;
  int access = 0;
};

struct FakeChannel {
  ibv_comp_channel channel{};
  int write_fd = -1;
};

struct Cqe {
  ibv_wc wc{};
  uint32_t retire = 0;  // send-queue slots this CQE frees when polled
};

struct FakeCq {
  ibv_cq cq{};
  FakeContext* ctx = nullptr;
  std::deque<Cqe> entries;
  bool armed = false;
  bool solicited_only = false;
  uint64_t unacked_events = 0;
  uint32_t qps = 0;
};

struct SendWr {
  uint64_t wr_id = 0;
  ibv_wr_opcode opcode = IBV_WR_SEND;
  unsigned flags = 0;
  std::vector<ibv_sge> sge;
  std::vector<std::byte> inline_data;
  uint32_t imm = 0;  // network order, as given
  uint64_t remote_addr = 0;
  uint32_t rkey = 0;
};

struct RecvWr {
  uint64_t wr_id = 0;
  std::vector<ibv_sge> sge;
};

struct FakeQp {
  ibv_qp qp{};
  FakeContext* ctx = nullptr;
  ibv_qp_cap cap{};
  bool sq_sig_all = false;
  int access = 0;
  uint8_t port = 0;
  uint32_t dest_qpn = 0;
  ibv_ah_attr ah{};
  ibv_mtu mtu = IBV_MTU_1024;
  uint32_t next_psn = 0;      // requester side
  uint32_t expected_psn = 0;  // responder side
  uint8_t rnr_retry = 0;
  std::deque<SendWr> sq;
  std::deque<RecvWr> rq;
  uint32_t sq_used = 0;
  uint32_t completed_unretired = 0;
  bool processing = false;
};

struct FakeContext {
  ibv_context ctx{};
  FakeDevice* device = nullptr;
  uint32_t fail_posts = 0;
  uint32_t fail_accepted = 0;
  int fail_errno = 0;
  uint32_t error_count = 0;
  ibv_wc_status error_status = IBV_WC_SUCCESS;
  bool receiver_not_ready = false;
  size_t objects = 0;
  std::vector<uint32_t> qpns;
};

struct Fabric {
  std::mutex mutex;
  std::vector<std::unique_ptr<FakeDevice>> devices;
  std::map<uint32_t, FakeQp*> qps;
  std::map<uint32_t, FakeMr*> lkeys;
  std::map<uint32_t, FakeMr*> rkeys;
  uint32_t next_qpn = 0x100;
  uint32_t next_key = 0x10;
  uint16_t next_lid = 1;
  Stats stats;
  std::vector<std::string> misuse;
};

// Never destroyed: verbs may be called from static destructors.
inline Fabric& fabric() {
  static Fabric* f = new Fabric;
  return *f;
}

inline void misuse(std::string what) {
  fabric().stats.misuse++;
  fabric().misuse.push_back(std::move(what));
}

inline FakeContext* fctx(ibv_context* c) {
  return reinterpret_cast<FakeContext*>(c);
}
inline FakeQp* fqp(ibv_qp* q) {
  return reinterpret_cast<FakeQp*>(q);
}
inline FakeCq* fcq(ibv_cq* c) {
  return reinterpret_cast<FakeCq*>(c);
}
inline FakePd* fpd(ibv_pd* p) {
  return reinterpret_cast<FakePd*>(p);
}

// Defined in fake_verbs.cc.
FakeContext* new_context(FakeDevice* device);
int modify_qp_locked(FakeQp* q, ibv_qp_attr* attr, int mask);
void wake_senders_to(uint32_t target_qpn);

}  // namespace mica::fake_verbs::detail
