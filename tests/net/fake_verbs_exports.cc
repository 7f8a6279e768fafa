// The exported ibv_* functions of the fake verbs provider. Defined in the test executable,
// they preempt libibverbs' definitions for every caller in it (link-time interposition),
// including the static mica_net library; see fake_verbs.h.
#include <endian.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "tests/net/fake_verbs_state.h"

// ---- exported verbs (preempt libibverbs in the test executable) ----

using mica::fake_verbs::detail::FakeChannel;
using mica::fake_verbs::detail::FakeContext;
using mica::fake_verbs::detail::FakeCq;
using mica::fake_verbs::detail::FakeMr;
using mica::fake_verbs::detail::FakePd;
using mica::fake_verbs::detail::FakeQp;
namespace fv = mica::fake_verbs::detail;

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
  fv::delete_context(fv::fctx(context));
  return 0;
}

int ibv_query_device(ibv_context* context, ibv_device_attr* attr) {
  std::lock_guard lock(fv::fabric().mutex);
  const mica::fake_verbs::DeviceSpec& spec = fv::fctx(context)->device->spec;
  *attr = {};
  attr->max_qp_wr = static_cast<int>(spec.max_qp_wr);
  attr->max_sge = static_cast<int>(spec.max_sge);
  attr->max_cqe = static_cast<int>(spec.max_cqe);
  attr->max_qp = 1 << 16;
  attr->max_cq = 1 << 16;
  attr->max_mr = 1 << 20;
  attr->max_mr_size = spec.max_mr_size;
  attr->max_qp_rd_atom = spec.max_qp_rd_atom;
  attr->max_qp_init_rd_atom = spec.max_qp_rd_atom;
  attr->phys_port_cnt = static_cast<uint8_t>(spec.ports.size());
  return 0;
}

int(ibv_query_port)(ibv_context* context, uint8_t port_num, _compat_ibv_port_attr* compat) {
  std::lock_guard lock(fv::fabric().mutex);
  const fv::FakeDevice* device = fv::fctx(context)->device;
  const mica::fake_verbs::PortSpec* port = fv::port_of(device, port_num);
  if (!port) return EINVAL;
  // The inline wrapper passes a full ibv_port_attr for contexts that are not extended.
  auto* attr = reinterpret_cast<ibv_port_attr*>(compat);
  *attr = {};
  attr->state = port->state;
  attr->max_mtu = IBV_MTU_4096;
  attr->active_mtu = port->active_mtu;
  attr->gid_tbl_len = static_cast<int>(port->gids.size());
  attr->max_msg_sz = port->max_msg_bytes;
  bool ib = port->link_layer == IBV_LINK_LAYER_INFINIBAND;
  attr->lid = ib ? device->lid : 0;
  attr->link_layer = port->link_layer;
  attr->phys_state = port->state == IBV_PORT_ACTIVE ? 5 : 3;  // LinkUp : Disabled
  return 0;
}

int ibv_query_gid(ibv_context* context, uint8_t port_num, int index, ibv_gid* gid) {
  std::lock_guard lock(fv::fabric().mutex);
  const mica::fake_verbs::PortSpec* port = fv::port_of(fv::fctx(context)->device, port_num);
  if (!port || index < 0 || static_cast<size_t>(index) >= port->gids.size()) return -1;
  *gid = port->gids[index].gid;
  return 0;
}

int _ibv_query_gid_ex(ibv_context* context, uint32_t port_num, uint32_t gid_index,
                      ibv_gid_entry* entry, uint32_t flags, size_t entry_size) {
  std::lock_guard lock(fv::fabric().mutex);
  const mica::fake_verbs::PortSpec* port = fv::port_of(fv::fctx(context)->device, port_num);
  if (flags != 0 || entry_size < sizeof *entry) return EINVAL;
  if (!port || gid_index >= port->gids.size()) return ENODATA;
  *entry = {};
  entry->gid = port->gids[gid_index].gid;
  entry->gid_index = gid_index;
  entry->port_num = port_num;
  entry->gid_type = port->gids[gid_index].type;
  return 0;
}

int ibv_get_async_event(ibv_context* context, ibv_async_event* event) {
  if (read(context->async_fd, event, sizeof *event) != sizeof *event) return -1;
  std::lock_guard lock(fv::fabric().mutex);
  fv::fabric().async_unacked++;
  return 0;
}

void ibv_ack_async_event(ibv_async_event*) {
  std::lock_guard lock(fv::fabric().mutex);
  if (fv::fabric().async_unacked == 0) {
    fv::misuse("more async events acked than received");
    return;
  }
  fv::fabric().async_unacked--;
  fv::fabric().stats.async_events_acked++;
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
  if (length > fv::fpd(pd)->ctx->device->spec.max_mr_size) {
    errno = EINVAL;
    return nullptr;
  }
  auto* mr = new FakeMr;
  mr->mr.context = pd->context;
  mr->mr.pd = pd;
  mr->mr.addr = addr;
  mr->mr.length = length;
  mr->iova = iova;
  mr->access = static_cast<int>(access);
  // Random, distinct keys: a peer cannot guess a region's rkey from another's, and an
  // lkey passed as an rkey (or the reverse) is caught.
  auto fresh = [&f]() {
    while (true) {
      auto key = static_cast<uint32_t>(f.keys.next());
      if (key != 0 && !f.lkeys.count(key) && !f.rkeys.count(key)) return key;
    }
  };
  mr->mr.lkey = fresh();
  f.lkeys[mr->mr.lkey] = mr;
  mr->mr.rkey = fresh();
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
  std::lock_guard lock(fv::fabric().mutex);
  if (cqe <= 0 || static_cast<uint32_t>(cqe) > fv::fctx(context)->device->spec.max_cqe ||
      comp_vector != 0) {
    errno = EINVAL;
    return nullptr;
  }
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
  std::lock_guard lock(fv::fabric().mutex);
  const ibv_qp_cap& cap = init->cap;
  const mica::fake_verbs::DeviceSpec& spec = fv::fpd(pd)->ctx->device->spec;
  if (init->qp_type != IBV_QPT_RC || !init->send_cq || !init->recv_cq || init->srq ||
      cap.max_send_wr == 0 || cap.max_send_wr > spec.max_qp_wr ||
      cap.max_recv_wr > spec.max_qp_wr || cap.max_send_sge > spec.max_sge ||
      cap.max_recv_sge > spec.max_sge || cap.max_inline_data > fv::kMaxInline) {
    errno = EINVAL;
    return nullptr;
  }
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
