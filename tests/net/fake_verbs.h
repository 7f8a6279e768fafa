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
// Model: reliable-connected QPs only, on one fabric per process. Devices have a port with
// a LID and a GID; a QP reaches its peer by (LID or GID, QP number) and both ends must
// name each other. QP state machine RESET → INIT → RTR → RTS, any → ERR/RESET, with the
// attribute masks RC requires. Work requests execute synchronously inside ibv_post_send
// (and inside ibv_post_recv for SENDs that were waiting for a receive): there is no pump
// and no thread, so a test is deterministic and a completion is in its CQ when the post
// returns. Checks: lkey and bounds of every local SGE (IBV_WC_LOC_PROT_ERR), LOCAL_WRITE
// for memory the HCA writes, rkey, bounds and access flags of the remote MR and the remote
// QP's access flags (IBV_WC_REM_ACCESS_ERR), receive buffers too small
// (IBV_WC_LOC_LEN_ERR at the receiver, IBV_WC_REM_INV_REQ_ERR at the sender), a missing
// or unconnected peer or mismatched PSNs (IBV_WC_RETRY_EXC_ERR). Receiver not ready: when
// the peer has no receive posted, a QP with rnr_retry 7 (infinite) waits — its send queue
// stalls in order until the peer posts one — and a QP with rnr_retry < 7 fails the WR with
// IBV_WC_RNR_RETRY_EXC_ERR at once (the fake has no clock: retries elapse instantly). Any
// error completion moves the QP to ERR, which flushes every outstanding WR with
// IBV_WC_WR_FLUSH_ERR (signaled or not); WRs posted in ERR are flushed at once. A send
// queue slot is retired only when a signaled (or failed) WR at or after it is polled, so
// a consumer that never signals sees ENOMEM from a full send queue, as on hardware.
// Completion channels are pipes: each event is one record, the read end is pollable by
// the runtime (and honours O_NONBLOCK), req_notify_cq arms once and an event is raised
// only for a CQE added after arming. Misuse (CQ overrun, destroying a CQ with unacked
// events or attached QPs, a PD with live MRs or QPs) is counted, never fatal.
//
// Thread rule: every entry point takes one process-wide mutex, so hosts may live on
// different executor threads; nothing here suspends or calls back into user code.
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
};

class FakeVerbs {
 public:
  // Creates the device `name` (if new) and opens a context on it. Each device is one
  // "host" of the fabric with its own LID and GID; it is listed by ibv_get_device_list.
  // The context stays valid until ibv_close_device() or reset().
  static ibv_context* open_device(const std::string& name);
  // Forgets every device and object; for test fixtures. Objects still open are leaked on
  // purpose (a test that forgot them has already failed a misuse check).
  static void reset();

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
