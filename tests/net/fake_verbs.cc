// The fake verbs provider's data path (posting, execution, completions) and its control API;
// see fake_verbs.h for the model. The exported ibv_* functions are in fake_verbs_exports.cc.
#include "tests/net/fake_verbs.h"
#include "tests/net/fake_verbs_state.h"

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
#include <optional>
#include <span>
#include <thread>

namespace mica::fake_verbs::detail {

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

bool port_up(const FakeQp* q) {
  const PortSpec* port = port_of(q->ctx->device, q->port);
  return port != nullptr && port->state == IBV_PORT_ACTIVE;
}

// With a GRH: the destination GID is in the peer port's table with our source GID's type.
bool gid_reaches(const FakeQp* q, const FakeQp* p) {
  const PortSpec* mine = port_of(q->ctx->device, q->port);
  const PortSpec* theirs = port_of(p->ctx->device, p->port);
  if (!mine || !theirs || q->ah.grh.sgid_index >= mine->gids.size()) return false;
  ibv_gid_type type = mine->gids[q->ah.grh.sgid_index].type;
  for (const FakeGid& g : theirs->gids)
    if (g.type == type && std::memcmp(g.gid.raw, q->ah.grh.dgid.raw, sizeof g.gid.raw) == 0)
      return true;
  return false;
}

FakeQp* find_peer(FakeQp* q) {
  auto it = fabric().qps.find(q->dest_qpn);
  if (it == fabric().qps.end()) return nullptr;
  FakeQp* p = it->second;
  const FakeDevice* d = p->ctx->device;
  if (!port_up(q) || !port_up(p)) return nullptr;
  if (q->ah.is_global) {
    if (!gid_reaches(q, p)) return nullptr;
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
  fabric().stats.executed_wrs++;
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
  bool timed = fabric().timing.async;
  Clock::time_point now = timed ? Clock::now() : Clock::time_point{};
  while (q->qp.state == IBV_QPS_RTS && !q->sq.empty()) {
    if (timed && q->sq.front().due > now) break;  // the worker runs it when it is due
    FakeContext* c = q->ctx;
    if (c->paused && c->wrs_before_pause == 0) break;
    SendWr wr = std::move(q->sq.front());
    q->sq.pop_front();
    Outcome out = execute(q, wr);
    if (out.stalled) {
      fabric().stats.executed_wrs--;  // it runs again once a receive is posted
      q->sq.push_front(std::move(wr));
      break;
    }
    if (c->paused) c->wrs_before_pause--;
    complete_send(q, wr, out.status, out.byte_len);
  }
  if (q->qp.state == IBV_QPS_ERR) flush_queues(q);
  q->processing = false;
}

uint64_t random_delay_us() {
  uint64_t range = uint64_t(fabric().timing.delay_us_max) + 1;
  return fabric().delays.next() % range;
}

// The asynchronous executor: runs every due WR, then sleeps until the next one is due or
// a post, a resume or a port change wakes it. Runs for the life of the process.
void worker_loop() {
  Fabric& f = fabric();
  std::unique_lock lock(f.mutex);
  while (true) {
    // Taken before the pass: a head due by `now` is run by it (process_sq reads the clock
    // later), so one still waiting afterwards is stalled or paused, not forgotten.
    Clock::time_point now = Clock::now();
    std::vector<FakeQp*> qps;  // process_sq never destroys a QP, and the lock is held
    for (auto& [qpn, q] : f.qps) qps.push_back(q);
    for (FakeQp* q : qps) process_sq(q);
    std::optional<Clock::time_point> next;
    for (auto& [qpn, q] : f.qps) {
      bool held = q->ctx->paused && q->ctx->wrs_before_pause == 0;
      if (q->qp.state != IBV_QPS_RTS || q->sq.empty() || held) continue;
      Clock::time_point due = q->sq.front().due;
      if (due > now && (!next || due < *next)) next = due;  // due ones are stalled (RNR)
    }
    if (next)
      f.wake.wait_until(lock, *next);
    else
      f.wake.wait(lock);
  }
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
    if (fabric().timing.async) {
      // In order within the QP: never due before the WR posted ahead of it.
      Clock::time_point due = Clock::now() + std::chrono::microseconds(random_delay_us());
      s.due = std::max(due, q->last_due);
      q->last_due = s.due;
      q->sq.push_back(std::move(s));
      fabric().wake.notify_all();
    } else {
      q->sq.push_back(std::move(s));
      process_sq(q);
    }
  }
  if (q->qp.state == IBV_QPS_ERR) flush_queues(q);
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
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) std::abort();
  c->ctx.async_fd = fds[0];
  c->async_write_fd = fds[1];
  fcntl(fds[1], F_SETFL, O_NONBLOCK);  // a full pipe is misuse, never a blocked test
  device->contexts.push_back(c);
  c->ctx.num_comp_vectors = 1;
  c->ctx.abi_compat = nullptr;  // not extended: inline ex-verbs fall back to exported ones
  c->ctx.ops.post_send = &op_post_send;
  c->ctx.ops.post_recv = &op_post_recv;
  c->ctx.ops.poll_cq = &op_poll_cq;
  c->ctx.ops.req_notify_cq = &op_req_notify_cq;
  return c;
}

void delete_context(FakeContext* c) {
  auto& list = c->device->contexts;
  list.erase(std::remove(list.begin(), list.end(), c), list.end());
  close(c->ctx.async_fd);
  close(c->async_write_fd);
  delete c;
}

void post_async_event(FakeContext* c, const ibv_async_event& event) {
  if (write(c->async_write_fd, &event, sizeof event) != sizeof event) misuse("async event fd full");
  fabric().stats.async_events++;
}

ibv_gid make_gid(uint64_t prefix, uint64_t interface_id) {
  ibv_gid g{};
  g.global.subnet_prefix = htobe64(prefix);
  g.global.interface_id = htobe64(interface_id);
  return g;
}

// The GID tables a port gets when its spec names none (see PortSpec).
void fill_gids(PortSpec* port, uint16_t host, uint8_t port_num) {
  if (!port->gids.empty()) return;
  uint64_t host_id = 0x0200000000000000ull | (uint64_t(port_num) << 16) | host;
  if (port->link_layer == IBV_LINK_LAYER_INFINIBAND) {
    port->gids.push_back(FakeGid{make_gid(0xfe80000000000000ull, host_id), IBV_GID_TYPE_IB});
    return;
  }
  // ::ffff:10.0.<port>.<host> — the IPv4-mapped form RoCE uses for an IPv4 address.
  uint64_t v4 = 0x0000ffff0a000000ull | (uint64_t(port_num) << 8) | (host & 0xff);
  ibv_gid link_local = make_gid(0xfe80000000000000ull, host_id);
  ibv_gid mapped = make_gid(0, v4);
  port->gids = {FakeGid{link_local, IBV_GID_TYPE_ROCE_V1},
                FakeGid{link_local, IBV_GID_TYPE_ROCE_V2}, FakeGid{mapped, IBV_GID_TYPE_ROCE_V1},
                FakeGid{mapped, IBV_GID_TYPE_ROCE_V2}};
}

FakeDevice* find_or_add_device(const std::string& name, const DeviceSpec& spec) {
  Fabric& f = fabric();
  for (auto& d : f.devices)
    if (name == d->device.name) return d.get();
  auto d = std::make_unique<FakeDevice>();
  std::snprintf(d->device.name, sizeof d->device.name, "%s", name.c_str());
  std::snprintf(d->device.dev_name, sizeof d->device.dev_name, "uverbs%zu", f.devices.size());
  d->device.node_type = IBV_NODE_CA;
  d->device.transport_type = IBV_TRANSPORT_IB;
  d->lid = f.next_lid++;
  d->spec = spec;
  for (size_t i = 0; i < d->spec.ports.size(); ++i)
    fill_gids(&d->spec.ports[i], d->lid, static_cast<uint8_t>(i + 1));
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
    if (!port_of(q->ctx->device, attr->port_num)) return EINVAL;
    q->port = attr->port_num;
    q->access = attr->qp_access_flags;
  } else if (from == IBV_QPS_INIT && to == IBV_QPS_INIT) {
    if (mask & IBV_QP_ACCESS_FLAGS) q->access = attr->qp_access_flags;
  } else if (from == IBV_QPS_INIT && to == IBV_QPS_RTR) {
    int required = IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                   IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
    if (!has_all(mask, required)) return EINVAL;
    const ibv_ah_attr& ah = attr->ah_attr;
    const PortSpec* port = port_of(q->ctx->device, ah.port_num);
    if (!port || ah.port_num != q->port) return EINVAL;
    // RoCE has no LIDs: every packet carries a GRH naming a GID of the table.
    bool roce = port->link_layer == IBV_LINK_LAYER_ETHERNET;
    if ((roce && !ah.is_global) || (ah.is_global && ah.grh.sgid_index >= port->gids.size()) ||
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
    if (mask & IBV_QP_ACCESS_FLAGS) q->access = attr->qp_access_flags;
  } else {
    return EINVAL;
  }
  q->qp.state = to;
  return 0;
}

}  // namespace mica::fake_verbs::detail

namespace mica::fake_verbs {

using namespace detail;

// ---- FakeVerbs ----

ibv_context* FakeVerbs::open_device(const std::string& name) {
  return open_device(name, DeviceSpec{});
}

ibv_context* FakeVerbs::open_device(const std::string& name, const DeviceSpec& spec) {
  std::lock_guard lock(fabric().mutex);
  return &new_context(find_or_add_device(name, spec))->ctx;
}

void FakeVerbs::reset(uint64_t key_seed) {
  std::lock_guard lock(fabric().mutex);
  Fabric& f = fabric();
  f.keys.state = key_seed;
  f.timing = Timing{};
  f.async_unacked = 0;
  f.devices.clear();
  f.qps.clear();
  f.lkeys.clear();
  f.rkeys.clear();
  f.stats = {};
  f.misuse.clear();
}

void FakeVerbs::set_timing(Timing timing) {
  std::lock_guard lock(fabric().mutex);
  Fabric& f = fabric();
  f.timing = timing;
  f.delays.state = timing.seed;
  if (timing.async && !f.worker_started) {
    f.worker_started = true;
    std::thread(worker_loop).detach();  // lives as long as the never-destroyed fabric
  }
  f.wake.notify_all();
}

void FakeVerbs::set_port_state(ibv_context* ctx, uint8_t port, ibv_port_state state) {
  std::lock_guard lock(fabric().mutex);
  FakeDevice* d = fctx(ctx)->device;
  if (port == 0 || port > d->spec.ports.size()) return;
  d->spec.ports[port - 1].state = state;
  ibv_async_event event{};
  event.element.port_num = port;
  event.event_type = state == IBV_PORT_ACTIVE ? IBV_EVENT_PORT_ACTIVE : IBV_EVENT_PORT_ERR;
  for (FakeContext* c : d->contexts) post_async_event(c, event);
  fabric().wake.notify_all();
}

void FakeVerbs::raise_async_event(ibv_context* ctx, ibv_event_type type, uint32_t qp_num) {
  std::lock_guard lock(fabric().mutex);
  ibv_async_event event{};
  auto it = fabric().qps.find(qp_num);
  if (qp_num != 0 && it != fabric().qps.end())
    event.element.qp = &it->second->qp;
  else
    event.element.port_num = 1;
  event.event_type = type;
  post_async_event(fctx(ctx), event);
}

uint64_t FakeVerbs::unacked_async_events() {
  std::lock_guard lock(fabric().mutex);
  return fabric().async_unacked;
}

void FakeVerbs::pause_after(ibv_context* ctx, uint64_t wrs) {
  std::lock_guard lock(fabric().mutex);
  fctx(ctx)->paused = true;
  fctx(ctx)->wrs_before_pause = wrs;
}

void FakeVerbs::resume(ibv_context* ctx) {
  std::lock_guard lock(fabric().mutex);
  fctx(ctx)->paused = false;
  for (uint32_t qpn : fctx(ctx)->qpns) {
    auto it = fabric().qps.find(qpn);
    if (it != fabric().qps.end()) process_sq(it->second);
  }
  fabric().wake.notify_all();
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
