// FakeVerbs: an in-process verbs provider for tests on machines without RDMA hardware.
//
// The fake fills libibverbs' public ops table (ibv_context::ops), so the inline verbs of
// <infiniband/verbs.h> — ibv_post_send, ibv_post_recv, ibv_poll_cq, ibv_req_notify_cq —
// dispatch into it, and it defines the exported control verbs (ibv_get_device_list,
// ibv_open_device, ibv_alloc_pd, ibv_reg_mr, ibv_create_cq, ibv_create_qp, ibv_modify_qp,
// ibv_get_cq_event, ...) itself. Linked into a test executable, those strong definitions
// preempt libibverbs' for every caller in the executable, including static libraries such
// as mica_net, so production code runs unmodified against the fake.
//
// Model: reliable-connected QPs only, on one fabric per process. A device has one or more
// ports (DeviceSpec), each InfiniBand (a LID, GIDs of type IB) or Ethernet/RoCE (no LID, a
// GID table of RoCE v1 and v2 entries, GRH required), and device limits that
// ibv_query_device reports and ibv_create_qp/cq enforce. A QP reaches its peer by (LID or
// GID, QP number); with a GRH the destination GID must be in the peer port's table with
// the same GID type as the source GID (RoCE v1 and v2 do not talk), and both ends must
// name each other. QP state machine RESET → INIT → RTR → RTS, any → ERR/RESET, with the
// attribute masks RC requires. Execution: synchronous by default — a WR runs inside
// ibv_post_send (or inside ibv_post_recv for SENDs that were waiting for a receive) and its
// completion is in the CQ when the post returns. With set_timing({.async = true}) a worker
// thread runs each WR after a delay drawn from a seeded generator, in order within a QP
// (as RC requires) and so out of order across QPs. Either way a one-sided WR resolves its
// remote and local MRs at the moment it touches memory, under the fabric mutex, so a region
// deregistered before that moment is refused (IBV_WC_REM_ACCESS_ERR / LOC_PROT_ERR) and
// freed memory is never touched. Region keys are drawn from a seeded generator (reset()),
// never a counter. Checks: lkey and bounds of every local SGE (IBV_WC_LOC_PROT_ERR),
// LOCAL_WRITE for memory the HCA writes, rkey, bounds and access flags of the remote MR
// and the remote QP's access flags (IBV_WC_REM_ACCESS_ERR), receive buffers too small
// (IBV_WC_LOC_LEN_ERR at the receiver, IBV_WC_REM_INV_REQ_ERR at the sender), a missing
// or unconnected peer, a port that is down or mismatched PSNs (IBV_WC_RETRY_EXC_ERR).
// Receiver not ready: when the peer has no receive posted, a QP with rnr_retry 7
// (infinite) waits — its send queue stalls in order until the peer posts one — and a QP
// with rnr_retry < 7 fails the WR with IBV_WC_RNR_RETRY_EXC_ERR at once (retries elapse
// instantly). Any error completion moves the QP to ERR, which flushes every outstanding
// WR with IBV_WC_WR_FLUSH_ERR (signaled or not); WRs posted in ERR are flushed at once. A
// send queue slot is retired only when a signaled (or failed) WR at or after it is
// polled, so a consumer that never signals sees ENOMEM from a full send queue, as on
// hardware. Completion channels and each context's async_fd are pipes: each event is one
// record, the read end is pollable by the runtime (and honours O_NONBLOCK); req_notify_cq
// arms once and an event is raised only for a CQE added after arming; set_port_state and
// raise_async_event write ibv_async_event records that ibv_get_async_event returns and
// ibv_ack_async_event must acknowledge. Misuse (CQ overrun, destroying a CQ with unacked
// events or attached QPs, a PD with live MRs or QPs) is counted, never fatal.
//
// Thread rule: every entry point takes one process-wide mutex, so hosts may live on
// different executor threads; the asynchronous worker takes it too. Nothing here suspends
// or calls back into user code.
#pragma once

#include <infiniband/verbs.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mica::fake_verbs {

struct Stats {
  uint64_t posted_send_wrs = 0;
  uint64_t posted_recv_wrs = 0;
  uint64_t signaled_completions = 0;
  uint64_t error_completions = 0;
  uint64_t rnr_stalls = 0;      // SENDs that found no receive posted
  uint64_t channel_events = 0;  // records written to completion channels
  uint64_t misuse = 0;          // API misuse (see misuse_log())
  uint64_t executed_wrs = 0;    // send WRs that ran (touched memory or failed)
  uint64_t async_events = 0;    // records written to async event fds
  uint64_t async_events_acked = 0;
};

struct FakeGid {
  ibv_gid gid{};
  ibv_gid_type type = IBV_GID_TYPE_IB;
};

struct PortSpec {
  uint8_t link_layer = IBV_LINK_LAYER_INFINIBAND;
  ibv_port_state state = IBV_PORT_ACTIVE;
  ibv_mtu active_mtu = IBV_MTU_4096;
  uint32_t max_msg_bytes = 1u << 31;
  // Empty: filled at creation — one IB GID on InfiniBand; on Ethernet a RoCE table of
  // link-local v1, link-local v2, IPv4-mapped v1 and IPv4-mapped v2 entries (index 0-3).
  std::vector<FakeGid> gids;
};

// What a device offers; the limits are what ibv_query_device reports and what the fake
// enforces when CQs, QPs and MRs are created.
struct DeviceSpec {
  std::vector<PortSpec> ports = {PortSpec{}};
  uint32_t max_qp_wr = 16384;
  uint32_t max_sge = 30;
  uint32_t max_cqe = 1 << 20;
  uint64_t max_mr_size = UINT64_MAX;
  uint8_t max_qp_rd_atom = 16;

  static DeviceSpec infiniband() { return DeviceSpec{}; }
  static DeviceSpec roce() {
    DeviceSpec d;
    d.ports[0].link_layer = IBV_LINK_LAYER_ETHERNET;
    return d;
  }
};

// Execution timing. Synchronous (the default) runs a WR inside the post; asynchronous
// runs it on the worker thread after a delay in [0, delay_us_max] drawn from `seed`.
struct Timing {
  bool async = false;
  uint64_t seed = 1;
  uint32_t delay_us_max = 200;
};

class FakeVerbs {
 public:
  // Creates the device `name` (if new) and opens a context on it. Each device is one
  // "host" of the fabric with its own LID and GID; it is listed by ibv_get_device_list.
  // The context stays valid until ibv_close_device() or reset().
  static ibv_context* open_device(const std::string& name);
  // The same with the device's ports and limits; `spec` is used only when `name` is new.
  static ibv_context* open_device(const std::string& name, const DeviceSpec& spec);
  // Forgets every device and object and reseeds the key generator; for test fixtures.
  // Objects still open are leaked on purpose (a test that forgot them has already failed a
  // misuse check). Timing goes back to synchronous.
  static void reset(uint64_t key_seed = 1);
  static void set_timing(Timing timing);

  // ---- ports and asynchronous events ----
  // Sets a port's state. Going down raises IBV_EVENT_PORT_ERR on every context of the
  // device and makes WRs through the port fail with IBV_WC_RETRY_EXC_ERR; coming back
  // raises IBV_EVENT_PORT_ACTIVE.
  static void set_port_state(ibv_context* ctx, uint8_t port, ibv_port_state state);
  // Raises one event on ctx's async fd (element: QP `qp_num` when non-zero, else port 1).
  static void raise_async_event(ibv_context* ctx, ibv_event_type type, uint32_t qp_num = 0);
  // Events read by ibv_get_async_event and not yet acknowledged, over the whole fabric.
  static uint64_t unacked_async_events();

  // ---- execution control ----
  // QPs of ctx execute `wrs` more send WRs and then hold the rest until resume(ctx).
  static void pause_after(ibv_context* ctx, uint64_t wrs);
  static void resume(ibv_context* ctx);

  // ---- faults, all keyed by a context and consumed in order ----
  // The next `posts` calls to ibv_post_send on QPs of ctx accept `accepted_wrs` WRs of
  // their list and then fail with error_number, *bad_wr naming the first refused WR.
  static void fail_next_posts(ibv_context* ctx, uint32_t posts, uint32_t accepted_wrs,
                              int error_number = ENOMEM);
  // The next `count` send WRs executed by QPs of ctx complete with `status` instead of
  // their real outcome (and, as every error does, move the QP to ERR).
  static void complete_next_with_error(ibv_context* ctx, ibv_wc_status status, uint32_t count = 1);
  // Moves every QP of ctx to ERR (a fabric or HCA failure seen from outside).
  static void force_error(ibv_context* ctx);
  // While set, QPs of ctx behave as if no receive were posted (receiver not ready).
  static void set_receiver_not_ready(ibv_context* ctx, bool on);

  // ---- inspection ----
  static Stats stats();
  static std::vector<std::string> misuse_log();
  // Number of QPs, CQs, MRs, PDs and channels open on ctx (leak checks).
  static size_t open_objects(ibv_context* ctx);
  // QP numbers of ctx, in creation order.
  static std::vector<uint32_t> qp_numbers(ibv_context* ctx);
  // The state of QP `qp_num` (IBV_QPS_UNKNOWN if none).
  static ibv_qp_state qp_state(uint32_t qp_num);
};

}  // namespace mica::fake_verbs
