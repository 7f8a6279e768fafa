// The fake verbs provider's state, shared by its data path (fake_verbs.cc) and its
// exported ibv_* functions (fake_verbs_exports.cc). Test-only; everything here runs under
// fabric().mutex unless a function says otherwise.
#pragma once

#include <infiniband/verbs.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tests/net/fake_verbs.h"

namespace mica::fake_verbs::detail {

inline constexpr uint32_t kMaxInline = 256;
inline constexpr uint32_t kPsnMask = 0xffffff;
inline constexpr uint8_t kRnrRetryInfinite = 7;

struct FakeContext;

using Clock = std::chrono::steady_clock;

struct FakeDevice {
  ibv_device device{};
  uint16_t lid = 0;
  DeviceSpec spec;
  std::vector<FakeContext*> contexts;  // open ones, for port events
};

// splitmix64: small, seedable, good enough for keys and delays that must replay.
struct Rng {
  uint64_t state = 1;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
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
  Clock::time_point due{};  // asynchronous timing: not executed before
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
  Clock::time_point last_due{};
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
  bool paused = false;
  uint64_t wrs_before_pause = 0;
  int async_write_fd = -1;
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
  Rng keys;
  Rng delays;
  Timing timing;
  std::condition_variable wake;  // the asynchronous worker waits on it
  bool worker_started = false;
  uint16_t next_lid = 1;
  uint64_t async_unacked = 0;
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

inline const PortSpec* port_of(const FakeDevice* d, uint32_t port_num) {
  if (port_num == 0 || port_num > d->spec.ports.size()) return nullptr;
  return &d->spec.ports[port_num - 1];
}

// Defined in fake_verbs.cc.
FakeContext* new_context(FakeDevice* device);
void delete_context(FakeContext* c);
void post_async_event(FakeContext* c, const ibv_async_event& event);
int modify_qp_locked(FakeQp* q, ibv_qp_attr* attr, int mask);
void wake_senders_to(uint32_t target_qpn);

}  // namespace mica::fake_verbs::detail
