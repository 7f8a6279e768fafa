// The fake verbs provider: see fake_verbs.h for the model. The exported ibv_* functions
// at the bottom of this file preempt libibverbs' definitions in the test executable.
#include "tests/net/fake_verbs.h"

#include <endian.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <span>

namespace mica::fake_verbs {
namespace {

constexpr uint32_t kMaxWr = 16384;
constexpr uint32_t kMaxSge = 30;
constexpr uint32_t kMaxInline = 256;
constexpr uint32_t kMaxCqe = 1 << 20;
constexpr uint32_t kPsnMask = 0xffffff;
constexpr uint8_t kRnrRetryInfinite = 7;

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
Fabric& fabric() {
  static Fabric* f = new Fabric;
  return *f;
}

void misuse(std::string what) {
  fabric().stats.misuse++;
  fabric().misuse.push_back(std::move(what));
}

FakeContext* fctx(ibv_context* c) {
  return reinterpret_cast<FakeContext*>(c);
}
FakeQp* fqp(ibv_qp* q) {
  return reinterpret_cast<FakeQp*>(q);
}
FakeCq* fcq(ibv_cq* c) {
  return reinterpret_cast<FakeCq*>(c);
}
FakePd* fpd(ibv_pd* p) {
  return reinterpret_cast<FakePd*>(p);
}

void push_cqe(FakeCq* cq, const ibv_wc& wc, uint32_t retire, bool solicited) {
  if (cq->entries.size() >= static_cast<size_t>(cq->cq.cqe)) {
    misuse("CQ overrun: a completion was dropped");
    return;
  }
  cq->entries.push_back(Cqe{wc, retire});
  if (wc.status != IBV_WC_SUCCESS) fabric().stats.error_completions++;
  bool wakes = !cq->solicited_only || solicited || wc.status != IBV_WC_SUCCESS;
  if (cq->armed && wakes && cq->cq.channel != nullptr) {
    cq->armed = false;
    auto* channel = reinterpret_cast<FakeChannel*>(cq->cq.channel);
    ibv_cq* record = &cq->cq;
    ssize_t n = write(channel->write_fd, &record, sizeof record);
    if (n != sizeof record) misuse("completion channel full");
    fabric().stats.channel_events++;
  }
}

ibv_wc make_wc(FakeQp* q, uint64_t wr_id, ibv_wc_status status, ibv_wc_opcode opcode) {
  ibv_wc wc{};
  wc.wr_id = wr_id;
  wc.status = status;
  wc.opcode = opcode;
  wc.qp_num = q->qp.qp_num;
  return wc;
}

ibv_wc_opcode send_wc_opcode(ibv_wr_opcode op) {
  switch (op) {
    case IBV_WR_RDMA_WRITE:
    case IBV_WR_RDMA_WRITE_WITH_IMM:
      return IBV_WC_RDMA_WRITE;
    case IBV_WR_RDMA_READ:
      return IBV_WC_RDMA_READ;
    default:
      return IBV_WC_SEND;
  }
}

// A send-queue WR finished (successfully or not); error ones move the QP to ERR.
void complete_send(FakeQp* q, const SendWr& wr, ibv_wc_status status, uint32_t byte_len);

void flush_queues(FakeQp* q) {
  while (!q->sq.empty()) {
    SendWr wr = std::move(q->sq.front());
    q->sq.pop_front();
    ibv_wc wc = make_wc(q, wr.wr_id, IBV_WC_WR_FLUSH_ERR, send_wc_opcode(wr.opcode));
    push_cqe(fcq(q->qp.send_cq), wc, q->completed_unretired + 1, false);
    q->completed_unretired = 0;
  }
  while (!q->rq.empty()) {
    ibv_wc wc = make_wc(q, q->rq.front().wr_id, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV);
    q->rq.pop_front();
    push_cqe(fcq(q->qp.recv_cq), wc, 0, false);
  }
}

void process_sq(FakeQp* q);

// QPs whose send queue waits on `target` (receiver not ready) or must learn it is gone.
void wake_senders_to(uint32_t target_qpn) {
  std::vector<FakeQp*> waiting;
  for (auto& [qpn, p] : fabric().qps)
    if (p->dest_qpn == target_qpn && !p->sq.empty()) waiting.push_back(p);
  for (FakeQp* p : waiting) process_sq(p);
}

void move_to_error(FakeQp* q) {
  q->qp.state = IBV_QPS_ERR;
  flush_queues(q);
  wake_senders_to(q->qp.qp_num);
}

FakeQp* find_peer(FakeQp* q) {
  auto it = fabric().qps.find(q->dest_qpn);
  if (it == fabric().qps.end()) return nullptr;
  FakeQp* p = it->second;
  const FakeDevice* d = p->ctx->device;
  if (q->ah.is_global) {
    if (std::memcmp(q->ah.grh.dgid.raw, d->gid.raw, sizeof d->gid.raw) != 0) return nullptr;
  } else if (q->ah.dlid != d->lid) {
    return nullptr;
  }
  if (p->dest_qpn != q->qp.qp_num) return nullptr;
  if (p->qp.state != IBV_QPS_RTR && p->qp.state != IBV_QPS_RTS) return nullptr;
  return p;
}

// Host pointer of [addr, addr+len) inside an MR of qp's PD, or nullptr.
std::byte* local_range(FakeQp* q, const ibv_sge& sge, bool write) {
  auto it = fabric().lkeys.find(sge.lkey);
  if (it == fabric().lkeys.end()) return nullptr;
  FakeMr* mr = it->second;
  if (mr->mr.pd != q->qp.pd) return nullptr;
  if (sge.addr < mr->iova || sge.addr + sge.length > mr->iova + mr->mr.length) return nullptr;
  if (write && !(mr->access & IBV_ACCESS_LOCAL_WRITE)) return nullptr;
  return static_cast<std::byte*>(mr->mr.addr) + (sge.addr - mr->iova);
}

std::byte* remote_range(FakeQp* p, uint32_t rkey, uint64_t addr, uint64_t len, int flag) {
  auto it = fabric().rkeys.find(rkey);
  if (it == fabric().rkeys.end()) return nullptr;
  FakeMr* mr = it->second;
  if (mr->mr.pd != p->qp.pd || !(mr->access & flag) || !(p->access & flag)) return nullptr;
  if (addr < mr->iova || addr + len > mr->iova + mr->mr.length || addr + len < addr) return nullptr;
  return static_cast<std::byte*>(mr->mr.addr) + (addr - mr->iova);
}

bool gather(FakeQp* q, const SendWr& wr, std::vector<std::byte>* out) {
  if (wr.flags & IBV_SEND_INLINE) {
    *out = wr.inline_data;
    return true;
  }
  for (const ibv_sge& s : wr.sge) {
    if (s.length == 0) continue;
    std::byte* p = local_range(q, s, false);
    if (!p) return false;
    out->insert(out->end(), p, p + s.length);
  }
  return true;
}

uint64_t sge_bytes(const std::vector<ibv_sge>& sges) {
  uint64_t n = 0;
  for (const ibv_sge& s : sges) n += s.length;
  return n;
}

// Fails the responder side of a message: its receive completes with `status`, QP to ERR.
void fail_responder(FakeQp* p, ibv_wc_status status) {
  RecvWr r = std::move(p->rq.front());
  p->rq.pop_front();
  push_cqe(fcq(p->qp.recv_cq), make_wc(p, r.wr_id, status, IBV_WC_RECV), 0, false);
  move_to_error(p);
}

// Delivers one message into the peer's next receive; returns the requester's status.
ibv_wc_status deliver(FakeQp* q, FakeQp* p, const SendWr& wr, std::span<const std::byte> data,
                      ibv_wc_opcode opcode) {
  RecvWr& r = p->rq.front();
  if (opcode == IBV_WC_RECV && data.size() > sge_bytes(r.sge)) {
    fail_responder(p, IBV_WC_LOC_LEN_ERR);
    return IBV_WC_REM_INV_REQ_ERR;
  }
  size_t at = 0;
  if (opcode == IBV_WC_RECV) {
    for (const ibv_sge& s : r.sge) {
      if (at == data.size()) break;
      std::byte* dst = s.length ? local_range(p, s, true) : nullptr;
      if (s.length && !dst) {
        fail_responder(p, IBV_WC_LOC_PROT_ERR);
        return IBV_WC_REM_OP_ERR;
      }
      size_t n = std::min<size_t>(s.length, data.size() - at);
      std::memcpy(dst, data.data() + at, n);
      at += n;
    }
  }
  ibv_wc wc = make_wc(p, r.wr_id, IBV_WC_SUCCESS, opcode);
  wc.byte_len = static_cast<uint32_t>(data.size());
  wc.src_qp = q->qp.qp_num;
  bool with_imm = wr.opcode == IBV_WR_SEND_WITH_IMM || wr.opcode == IBV_WR_RDMA_WRITE_WITH_IMM;
  if (with_imm) {
    wc.wc_flags |= IBV_WC_WITH_IMM;
    wc.imm_data = wr.imm;
  }
  p->rq.pop_front();
  push_cqe(fcq(p->qp.recv_cq), wc, 0, (wr.flags & IBV_SEND_SOLICITED) != 0);
  return IBV_WC_SUCCESS;
}

struct Outcome {
  ibv_wc_status status = IBV_WC_SUCCESS;
  uint32_t byte_len = 0;
  bool stalled = false;
};

Outcome execute(FakeQp* q, const SendWr& wr) {
  FakeContext* c = q->ctx;
  if (c->error_count > 0) {
    c->error_count--;
    return {c->error_status};
  }
  std::vector<std::byte> data;
  bool reads = wr.opcode == IBV_WR_RDMA_READ;
  if (!reads && !gather(q, wr, &data)) return {IBV_WC_LOC_PROT_ERR};
  if (reads)
    for (const ibv_sge& s : wr.sge)
      if (s.length && !local_range(q, s, true)) return {IBV_WC_LOC_PROT_ERR};
  FakeQp* p = find_peer(q);
  if (!p || p->expected_psn != q->next_psn) return {IBV_WC_RETRY_EXC_ERR};
  bool consumes_recv = wr.opcode == IBV_WR_SEND || wr.opcode == IBV_WR_SEND_WITH_IMM ||
                       wr.opcode == IBV_WR_RDMA_WRITE_WITH_IMM;
  if (consumes_recv && (p->rq.empty() || p->ctx->receiver_not_ready)) {
    fabric().stats.rnr_stalls++;
    if (q->rnr_retry == kRnrRetryInfinite) return {.stalled = true};
    return {IBV_WC_RNR_RETRY_EXC_ERR};
  }
  Outcome out;
  switch (wr.opcode) {
    case IBV_WR_SEND:
    case IBV_WR_SEND_WITH_IMM:
      out.status = deliver(q, p, wr, data, IBV_WC_RECV);
      out.byte_len = static_cast<uint32_t>(data.size());
      break;
    case IBV_WR_RDMA_WRITE:
    case IBV_WR_RDMA_WRITE_WITH_IMM: {
      std::byte* dst = data.empty() ? nullptr
                                    : remote_range(p, wr.rkey, wr.remote_addr, data.size(),
                                                   IBV_ACCESS_REMOTE_WRITE);
      if (!data.empty() && !dst) {
        move_to_error(p);  // the responder's QP fails too (IBA responder class C)
        return {IBV_WC_REM_ACCESS_ERR};
      }
      if (dst) std::memcpy(dst, data.data(), data.size());
      if (wr.opcode == IBV_WR_RDMA_WRITE_WITH_IMM)
        out.status = deliver(q, p, wr, data, IBV_WC_RECV_RDMA_WITH_IMM);
      out.byte_len = static_cast<uint32_t>(data.size());
      break;
    }
    case IBV_WR_RDMA_READ: {
      uint64_t len = sge_bytes(wr.sge);
      std::byte* src = len == 0
                           ? nullptr
                           : remote_range(p, wr.rkey, wr.remote_addr, len, IBV_ACCESS_REMOTE_READ);
      if (len != 0 && !src) {
        move_to_error(p);
        return {IBV_WC_REM_ACCESS_ERR};
      }
      uint64_t at = 0;
      for (const ibv_sge& s : wr.sge) {
        if (s.length == 0) continue;
        std::memcpy(local_range(q, s, true), src + at, s.length);
        at += s.length;
      }
      out.byte_len = static_cast<uint32_t>(len);
      break;
    }
    default:
      return {IBV_WC_LOC_QP_OP_ERR};
  }
  q->next_psn = (q->next_psn + 1) & kPsnMask;
  p->expected_psn = (p->expected_psn + 1) & kPsnMask;
  return out;
}

void complete_send(FakeQp* q, const SendWr& wr, ibv_wc_status status, uint32_t byte_len) {
  bool signaled = q->sq_sig_all || (wr.flags & IBV_SEND_SIGNALED);
  if (status == IBV_WC_SUCCESS && !signaled) {
    q->completed_unretired++;
    return;
  }
  ibv_wc wc = make_wc(q, wr.wr_id, status, send_wc_opcode(wr.opcode));
  wc.byte_len = byte_len;
  push_cqe(fcq(q->qp.send_cq), wc, q->completed_unretired + 1, false);
  q->completed_unretired = 0;
  if (status == IBV_WC_SUCCESS)
    fabric().stats.signaled_completions++;
  else
    move_to_error(q);
}

void process_sq(FakeQp* q) {
  // Executing a WR may fail the peer, which wakes the peer's senders — possibly q itself;
  // the outer loop already handles q, so the nested call returns at once.
  if (q->processing) return;
  q->processing = true;
  while (q->qp.state == IBV_QPS_RTS && !q->sq.empty()) {
    SendWr wr = std::move(q->sq.front());
    q->sq.pop_front();
    Outcome out = execute(q, wr);
    if (out.stalled) {
      q->sq.push_front(std::move(wr));
      break;
    }
    complete_send(q, wr, out.status, out.byte_len);
  }
  if (q->qp.state == IBV_QPS_ERR) flush_queues(q);
  q->processing = false;
}

// ---- the ops table ----

int op_post_send(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad) {
  std::lock_guard lock(fabric().mutex);
  FakeQp* q = fqp(qp);
  FakeContext* c = q->ctx;
  if (q->qp.state != IBV_QPS_RTS && q->qp.state != IBV_QPS_ERR && q->qp.state != IBV_QPS_SQD) {
    *bad = wr;
    return EINVAL;
  }
  bool inject = c->fail_posts > 0;
  if (inject) c->fail_posts--;
  uint32_t index = 0;
  for (ibv_send_wr* w = wr; w != nullptr; w = w->next, ++index) {
    int error = 0;
    if (inject && index == c->fail_accepted) error = c->fail_errno;
    if (!error && (w->num_sge < 0 || static_cast<uint32_t>(w->num_sge) > q->cap.max_send_sge))
      error = EINVAL;
    if (!error && q->sq_used >= q->cap.max_send_wr) error = ENOMEM;
    SendWr s{w->wr_id, w->opcode, w->send_flags, {}, {}, w->imm_data, 0, 0};
    if (w->num_sge > 0) s.sge.assign(w->sg_list, w->sg_list + w->num_sge);
    if (!error && (w->send_flags & IBV_SEND_INLINE)) {
      if (w->opcode == IBV_WR_RDMA_READ || sge_bytes(s.sge) > q->cap.max_inline_data) {
        error = EINVAL;
      } else {
        for (const ibv_sge& g : s.sge) {
          auto* p = reinterpret_cast<const std::byte*>(g.addr);
          s.inline_data.insert(s.inline_data.end(), p, p + g.length);
        }
      }
    }
    if (error) {
      *bad = w;
      return error;
    }
    if (w->opcode == IBV_WR_RDMA_WRITE || w->opcode == IBV_WR_RDMA_WRITE_WITH_IMM ||
        w->opcode == IBV_WR_RDMA_READ) {
      s.remote_addr = w->wr.rdma.remote_addr;
      s.rkey = w->wr.rdma.rkey;
    }
    q->sq_used++;
    fabric().stats.posted_send_wrs++;
    q->sq.push_back(std::move(s));
    process_sq(q);
  }
  return 0;
}

int op_post_recv(ibv_qp* qp, ibv_recv_wr* wr, ibv_recv_wr** bad) {
  std::lock_guard lock(fabric().mutex);
  FakeQp* q = fqp(qp);
  if (q->qp.state == IBV_QPS_RESET) {
    *bad = wr;
    return EINVAL;
  }
  for (ibv_recv_wr* w = wr; w != nullptr; w = w->next) {
    if (w->num_sge < 0 || static_cast<uint32_t>(w->num_sge) > q->cap.max_recv_sge ||
        q->rq.size() >= q->cap.max_recv_wr) {
      *bad = w;
      return w->num_sge < 0 || static_cast<uint32_t>(w->num_sge) > q->cap.max_recv_sge ? EINVAL
                                                                                       : ENOMEM;
    }
    RecvWr r{w->wr_id, {}};
    if (w->num_sge > 0) r.sge.assign(w->sg_list, w->sg_list + w->num_sge);
    q->rq.push_back(std::move(r));
    fabric().stats.posted_recv_wrs++;
  }
  if (q->qp.state == IBV_QPS_ERR)
    flush_queues(q);
  else
    wake_senders_to(q->qp.qp_num);
  return 0;
}

int op_poll_cq(ibv_cq* cq, int num_entries, ibv_wc* wc) {
  std::lock_guard lock(fabric().mutex);
  FakeCq* c = fcq(cq);
  int n = 0;
  while (n < num_entries && !c->entries.empty()) {
    Cqe e = c->entries.front();
    c->entries.pop_front();
    if (e.retire > 0) {
      auto it = fabric().qps.find(e.wc.qp_num);
      if (it != fabric().qps.end()) it->second->sq_used -= e.retire;
    }
    wc[n++] = e.wc;
  }
  return n;
}

int op_req_notify_cq(ibv_cq* cq, int solicited_only) {
  std::lock_guard lock(fabric().mutex);
  fcq(cq)->armed = true;
  fcq(cq)->solicited_only = solicited_only != 0;
  return 0;
}

FakeContext* new_context(FakeDevice* device) {
  auto* c = new FakeContext;
  c->device = device;
  c->ctx.device = &device->device;
  c->ctx.cmd_fd = -1;
  c->ctx.async_fd = -1;
  c->ctx.num_comp_vectors = 1;
  c->ctx.abi_compat = nullptr;  // not extended: inline ex-verbs fall back to exported ones
  c->ctx.ops.post_send = &op_post_send;
  c->ctx.ops.post_recv = &op_post_recv;
  c->ctx.ops.poll_cq = &op_poll_cq;
  c->ctx.ops.req_notify_cq = &op_req_notify_cq;
  return c;
}

FakeDevice* find_or_add_device(const std::string& name) {
  Fabric& f = fabric();
  for (auto& d : f.devices)
    if (name == d->device.name) return d.get();
  auto d = std::make_unique<FakeDevice>();
  std::snprintf(d->device.name, sizeof d->device.name, "%s", name.c_str());
  std::snprintf(d->device.dev_name, sizeof d->device.dev_name, "uverbs%zu", f.devices.size());
  d->device.node_type = IBV_NODE_CA;
  d->device.transport_type = IBV_TRANSPORT_IB;
  d->lid = f.next_lid++;
  d->gid.global.subnet_prefix = htobe64(0xfe80000000000000ull);
  d->gid.global.interface_id = htobe64(0x0200000000000000ull | d->lid);
  f.devices.push_back(std::move(d));
  return f.devices.back().get();
}

bool has_all(int mask, int required) {
  return (mask & required) == required;
}

int modify_qp_locked(FakeQp* q, ibv_qp_attr* attr, int mask) {
  if (!(mask & IBV_QP_STATE)) return EINVAL;
  ibv_qp_state from = q->qp.state;
  ibv_qp_state to = attr->qp_state;
  if (to == IBV_QPS_ERR) {
    move_to_error(q);
    return 0;
  }
  if (to == IBV_QPS_RESET) {
    q->sq.clear();
    q->rq.clear();
    q->sq_used = 0;
    q->completed_unretired = 0;
    q->qp.state = IBV_QPS_RESET;
    wake_senders_to(q->qp.qp_num);
    return 0;
  }
  if (from == IBV_QPS_RESET && to == IBV_QPS_INIT) {
    if (!has_all(mask, IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS)) return EINVAL;
    if (attr->port_num != 1) return EINVAL;
    q->port = attr->port_num;
    q->access = attr->qp_access_flags;
  } else if (from == IBV_QPS_INIT && to == IBV_QPS_INIT) {
    if (mask & IBV_QP_ACCESS_FLAGS) q->access = attr->qp_access_flags;
  } else if (from == IBV_QPS_INIT && to == IBV_QPS_RTR) {
    int required = IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                   IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
    if (!has_all(mask, required)) return EINVAL;
    const ibv_ah_attr& ah = attr->ah_attr;
    if (ah.port_num != 1 || (ah.is_global && ah.grh.sgid_index != 0) ||
        (!ah.is_global && ah.dlid == 0))
      return EINVAL;
    q->ah = ah;
    q->mtu = attr->path_mtu;
    q->dest_qpn = attr->dest_qp_num;
    q->expected_psn = attr->rq_psn & kPsnMask;
  } else if (from == IBV_QPS_RTR && to == IBV_QPS_RTS) {
    int required = IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
                   IBV_QP_MAX_QP_RD_ATOMIC;
    if (!has_all(mask, required)) return EINVAL;
    q->next_psn = attr->sq_psn & kPsnMask;
    q->rnr_retry = attr->rnr_retry;
  } else if (from == IBV_QPS_RTS && to == IBV_QPS_RTS) {
    if (mask & IBV_QP_RNR_RETRY) q->rnr_retry = attr->rnr_retry;
  } else {
    return EINVAL;
  }
  q->qp.state = to;
  return 0;
}

}  // namespace

// ---- FakeVerbs ----

ibv_context* FakeVerbs::open_device(const std::string& name) {
  std::lock_guard lock(fabric().mutex);
  return &new_context(find_or_add_device(name))->ctx;
}

void FakeVerbs::reset() {
  std::lock_guard lock(fabric().mutex);
  Fabric& f = fabric();
  f.devices.clear();
  f.qps.clear();
  f.lkeys.clear();
  f.rkeys.clear();
  f.stats = {};
  f.misuse.clear();
}

void FakeVerbs::fail_next_posts(ibv_context* ctx, uint32_t posts, uint32_t accepted_wrs,
                                int error_number) {
  std::lock_guard lock(fabric().mutex);
  fctx(ctx)->fail_posts = posts;
  fctx(ctx)->fail_accepted = accepted_wrs;
  fctx(ctx)->fail_errno = error_number;
}

void FakeVerbs::complete_next_with_error(ibv_context* ctx, ibv_wc_status status, uint32_t count) {
  std::lock_guard lock(fabric().mutex);
  fctx(ctx)->error_count = count;
  fctx(ctx)->error_status = status;
}

void FakeVerbs::force_error(ibv_context* ctx) {
  std::lock_guard lock(fabric().mutex);
  for (uint32_t qpn : fctx(ctx)->qpns) {
    auto it = fabric().qps.find(qpn);
    if (it != fabric().qps.end()) move_to_error(it->second);
  }
}

void FakeVerbs::set_receiver_not_ready(ibv_context* ctx, bool on) {
  std::lock_guard lock(fabric().mutex);
  fctx(ctx)->receiver_not_ready = on;
  if (!on)
    for (uint32_t qpn : fctx(ctx)->qpns) wake_senders_to(qpn);
}

Stats FakeVerbs::stats() {
  std::lock_guard lock(fabric().mutex);
  return fabric().stats;
}

std::vector<std::string> FakeVerbs::misuse_log() {
  std::lock_guard lock(fabric().mutex);
  return fabric().misuse;
}

size_t FakeVerbs::open_objects(ibv_context* ctx) {
  std::lock_guard lock(fabric().mutex);
  return fctx(ctx)->objects;
}

std::vector<uint32_t> FakeVerbs::qp_numbers(ibv_context* ctx) {
  std::lock_guard lock(fabric().mutex);
  std::vector<uint32_t> live;
  for (uint32_t qpn : fctx(ctx)->qpns)
    if (fabric().qps.count(qpn)) live.push_back(qpn);
  return live;
}

ibv_qp_state FakeVerbs::qp_state(uint32_t qp_num) {
  std::lock_guard lock(fabric().mutex);
  auto it = fabric().qps.find(qp_num);
  return it == fabric().qps.end() ? IBV_QPS_UNKNOWN : it->second->qp.state;
}

}  // namespace mica::fake_verbs

// ---- exported verbs (preempt libibverbs in the test executable) ----

using mica::fake_verbs::FakeChannel;
using mica::fake_verbs::FakeContext;
using mica::fake_verbs::FakeCq;
using mica::fake_verbs::FakeMr;
using mica::fake_verbs::FakePd;
using mica::fake_verbs::FakeQp;
namespace fv = mica::fake_verbs;

extern "C" {

ibv_device** ibv_get_device_list(int* num_devices) {
  std::lock_guard lock(fv::fabric().mutex);
  auto& devices = fv::fabric().devices;
  if (num_devices) *num_devices = static_cast<int>(devices.size());
  if (devices.empty()) {
    errno = ENOSYS;  // what libibverbs reports on a kernel without InfiniBand
    return nullptr;
  }
  auto** list = static_cast<ibv_device**>(calloc(devices.size() + 1, sizeof(ibv_device*)));
  for (size_t i = 0; i < devices.size(); ++i) list[i] = &devices[i]->device;
  return list;
}

void ibv_free_device_list(ibv_device** list) {
  free(list);
}

const char* ibv_get_device_name(ibv_device* device) {
  return device->name;
}

ibv_context* ibv_open_device(ibv_device* device) {
  std::lock_guard lock(fv::fabric().mutex);
  return &fv::new_context(reinterpret_cast<fv::FakeDevice*>(device))->ctx;
}

int ibv_close_device(ibv_context* context) {
  std::lock_guard lock(fv::fabric().mutex);
  if (fv::fctx(context)->objects != 0) fv::misuse("context closed with objects open");
  delete fv::fctx(context);
  return 0;
}

int ibv_query_device(ibv_context*, ibv_device_attr* attr) {
  *attr = {};
  attr->max_qp_wr = fv::kMaxWr;
  attr->max_sge = fv::kMaxSge;
  attr->max_cqe = fv::kMaxCqe;
  attr->max_qp = 1 << 16;
  attr->max_cq = 1 << 16;
  attr->max_mr = 1 << 20;
  attr->max_mr_size = UINT64_MAX;
  attr->max_qp_rd_atom = 16;
  attr->max_qp_init_rd_atom = 16;
  attr->phys_port_cnt = 1;
  return 0;
}

int(ibv_query_port)(ibv_context* context, uint8_t port_num, _compat_ibv_port_attr* compat) {
  if (port_num != 1) return EINVAL;
  // The inline wrapper passes a full ibv_port_attr for contexts that are not extended.
  auto* attr = reinterpret_cast<ibv_port_attr*>(compat);
  *attr = {};
  attr->state = IBV_PORT_ACTIVE;
  attr->max_mtu = IBV_MTU_4096;
  attr->active_mtu = IBV_MTU_4096;
  attr->gid_tbl_len = 1;
  attr->max_msg_sz = 1u << 31;
  attr->lid = fv::fctx(context)->device->lid;
  attr->link_layer = IBV_LINK_LAYER_INFINIBAND;
  attr->phys_state = 5;  // LinkUp
  return 0;
}

int ibv_query_gid(ibv_context* context, uint8_t port_num, int index, ibv_gid* gid) {
  if (port_num != 1 || index != 0) return -1;
  *gid = fv::fctx(context)->device->gid;
  return 0;
}

ibv_pd* ibv_alloc_pd(ibv_context* context) {
  std::lock_guard lock(fv::fabric().mutex);
  auto* pd = new FakePd;
  pd->pd.context = context;
  pd->ctx = fv::fctx(context);
  pd->ctx->objects++;
  return &pd->pd;
}

int ibv_dealloc_pd(ibv_pd* pd) {
  std::lock_guard lock(fv::fabric().mutex);
  FakePd* p = fv::fpd(pd);
  if (p->mrs || p->qps) {
    fv::misuse("PD deallocated with MRs or QPs");
    return EBUSY;
  }
  p->ctx->objects--;
  delete p;
  return 0;
}

ibv_mr* ibv_reg_mr_iova2(ibv_pd* pd, void* addr, size_t length, uint64_t iova,
                         unsigned int access) {
  std::lock_guard lock(fv::fabric().mutex);
  bool remote_write = access & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC);
  if ((remote_write && !(access & IBV_ACCESS_LOCAL_WRITE)) || (!addr && length)) {
    errno = EINVAL;
    return nullptr;
  }
  fv::Fabric& f = fv::fabric();
  auto* mr = new FakeMr;
  mr->mr.context = pd->context;
  mr->mr.pd = pd;
  mr->mr.addr = addr;
  mr->mr.length = length;
  mr->iova = iova;
  mr->access = static_cast<int>(access);
  uint32_t key = f.next_key++;
  mr->mr.lkey = key << 1;  // lkey and rkey differ so a mix-up is caught
  mr->mr.rkey = (key << 1) | 1;
  f.lkeys[mr->mr.lkey] = mr;
  f.rkeys[mr->mr.rkey] = mr;
  fv::fpd(pd)->mrs++;
  fv::fpd(pd)->ctx->objects++;
  return &mr->mr;
}

ibv_mr*(ibv_reg_mr)(ibv_pd* pd, void* addr, size_t length, int access) {
  return ibv_reg_mr_iova2(pd, addr, length, reinterpret_cast<uintptr_t>(addr),
                          static_cast<unsigned>(access));
}

int ibv_dereg_mr(ibv_mr* mr) {
  std::lock_guard lock(fv::fabric().mutex);
  fv::fabric().lkeys.erase(mr->lkey);
  fv::fabric().rkeys.erase(mr->rkey);
  fv::fpd(mr->pd)->mrs--;
  fv::fpd(mr->pd)->ctx->objects--;
  delete reinterpret_cast<FakeMr*>(mr);
  return 0;
}

ibv_comp_channel* ibv_create_comp_channel(ibv_context* context) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return nullptr;
  std::lock_guard lock(fv::fabric().mutex);
  auto* c = new FakeChannel;
  c->channel.context = context;
  c->channel.fd = fds[0];
  c->write_fd = fds[1];
  fcntl(fds[1], F_SETFL, O_NONBLOCK);  // a full pipe is reported as misuse, never blocks
  fv::fctx(context)->objects++;
  return &c->channel;
}

int ibv_destroy_comp_channel(ibv_comp_channel* channel) {
  std::lock_guard lock(fv::fabric().mutex);
  if (channel->refcnt > 0) {
    fv::misuse("completion channel destroyed with CQs attached");
    return EBUSY;
  }
  auto* c = reinterpret_cast<FakeChannel*>(channel);
  close(c->channel.fd);
  close(c->write_fd);
  fv::fctx(channel->context)->objects--;
  delete c;
  return 0;
}

ibv_cq* ibv_create_cq(ibv_context* context, int cqe, void* cq_context, ibv_comp_channel* channel,
                      int comp_vector) {
  if (cqe <= 0 || static_cast<uint32_t>(cqe) > fv::kMaxCqe || comp_vector != 0) {
    errno = EINVAL;
    return nullptr;
  }
  std::lock_guard lock(fv::fabric().mutex);
  auto* cq = new FakeCq;
  cq->cq.context = context;
  cq->cq.channel = channel;
  cq->cq.cq_context = cq_context;
  cq->cq.cqe = cqe;
  cq->ctx = fv::fctx(context);
  if (channel) channel->refcnt++;
  cq->ctx->objects++;
  return &cq->cq;
}

int ibv_destroy_cq(ibv_cq* cq) {
  std::lock_guard lock(fv::fabric().mutex);
  FakeCq* c = fv::fcq(cq);
  if (c->qps > 0 || c->unacked_events > 0) {
    fv::misuse(c->qps ? "CQ destroyed with QPs attached" : "CQ destroyed with unacked events");
    return EBUSY;
  }
  if (ibv_comp_channel* channel = cq->channel) {
    // Drop this CQ's undelivered events so a later ibv_get_cq_event never names it.
    int flags = fcntl(channel->fd, F_GETFL);
    fcntl(channel->fd, F_SETFL, flags | O_NONBLOCK);
    std::vector<ibv_cq*> keep;
    ibv_cq* record = nullptr;
    while (read(channel->fd, &record, sizeof record) == sizeof record)
      if (record != cq) keep.push_back(record);
    fcntl(channel->fd, F_SETFL, flags);
    auto* fc = reinterpret_cast<FakeChannel*>(channel);
    for (ibv_cq* r : keep)
      if (write(fc->write_fd, &r, sizeof r) != sizeof r) fv::misuse("channel rewrite failed");
    channel->refcnt--;
  }
  c->ctx->objects--;
  delete c;
  return 0;
}

int ibv_get_cq_event(ibv_comp_channel* channel, ibv_cq** cq, void** cq_context) {
  ibv_cq* record = nullptr;
  if (read(channel->fd, &record, sizeof record) != sizeof record) return -1;
  std::lock_guard lock(fv::fabric().mutex);
  fv::fcq(record)->unacked_events++;
  *cq = record;
  *cq_context = record->cq_context;
  return 0;
}

void ibv_ack_cq_events(ibv_cq* cq, unsigned int nevents) {
  std::lock_guard lock(fv::fabric().mutex);
  FakeCq* c = fv::fcq(cq);
  if (nevents > c->unacked_events) {
    fv::misuse("more CQ events acked than received");
    c->unacked_events = 0;
    return;
  }
  c->unacked_events -= nevents;
}

ibv_qp* ibv_create_qp(ibv_pd* pd, ibv_qp_init_attr* init) {
  const ibv_qp_cap& cap = init->cap;
  if (init->qp_type != IBV_QPT_RC || !init->send_cq || !init->recv_cq || init->srq ||
      cap.max_send_wr == 0 || cap.max_send_wr > fv::kMaxWr || cap.max_recv_wr > fv::kMaxWr ||
      cap.max_send_sge > fv::kMaxSge || cap.max_recv_sge > fv::kMaxSge ||
      cap.max_inline_data > fv::kMaxInline) {
    errno = EINVAL;
    return nullptr;
  }
  std::lock_guard lock(fv::fabric().mutex);
  fv::Fabric& f = fv::fabric();
  auto* q = new FakeQp;
  q->ctx = fv::fpd(pd)->ctx;
  q->qp.context = pd->context;
  q->qp.qp_context = init->qp_context;
  q->qp.pd = pd;
  q->qp.send_cq = init->send_cq;
  q->qp.recv_cq = init->recv_cq;
  q->qp.qp_num = f.next_qpn++ & fv::kPsnMask;
  q->qp.state = IBV_QPS_RESET;
  q->qp.qp_type = IBV_QPT_RC;
  q->cap = cap;
  q->sq_sig_all = init->sq_sig_all != 0;
  f.qps[q->qp.qp_num] = q;
  q->ctx->qpns.push_back(q->qp.qp_num);
  q->ctx->objects++;
  fv::fpd(pd)->qps++;
  fv::fcq(init->send_cq)->qps++;
  fv::fcq(init->recv_cq)->qps++;
  return &q->qp;
}

int ibv_modify_qp(ibv_qp* qp, ibv_qp_attr* attr, int attr_mask) {
  std::lock_guard lock(fv::fabric().mutex);
  return fv::modify_qp_locked(fv::fqp(qp), attr, attr_mask);
}

int ibv_query_qp(ibv_qp* qp, ibv_qp_attr* attr, int, ibv_qp_init_attr* init) {
  std::lock_guard lock(fv::fabric().mutex);
  FakeQp* q = fv::fqp(qp);
  *attr = {};
  attr->qp_state = q->qp.state;
  attr->cur_qp_state = q->qp.state;
  attr->path_mtu = q->mtu;
  attr->qp_access_flags = q->access;
  attr->dest_qp_num = q->dest_qpn;
  attr->rq_psn = q->expected_psn;
  attr->sq_psn = q->next_psn;
  attr->ah_attr = q->ah;
  attr->port_num = q->port;
  attr->rnr_retry = q->rnr_retry;
  attr->cap = q->cap;
  if (init) {
    *init = {};
    init->send_cq = q->qp.send_cq;
    init->recv_cq = q->qp.recv_cq;
    init->cap = q->cap;
    init->qp_type = IBV_QPT_RC;
    init->sq_sig_all = q->sq_sig_all;
  }
  return 0;
}

int ibv_destroy_qp(ibv_qp* qp) {
  std::lock_guard lock(fv::fabric().mutex);
  FakeQp* q = fv::fqp(qp);
  fv::fabric().qps.erase(q->qp.qp_num);
  fv::fcq(q->qp.send_cq)->qps--;
  fv::fcq(q->qp.recv_cq)->qps--;
  fv::fpd(q->qp.pd)->qps--;
  q->ctx->objects--;
  uint32_t qpn = q->qp.qp_num;
  delete q;
  fv::wake_senders_to(qpn);  // their peer is gone: retry exceeded
  return 0;
}

}  // extern "C"
