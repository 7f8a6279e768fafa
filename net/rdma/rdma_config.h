// RdmaConfig: every limit of the RDMA transport in one place (docs/net-rdma.md).
//
// Sizes of the per-connection rings, credit and signaling batches, the in-flight limit of
// one-sided work requests, the bounce-buffer pool, timeouts and the QP attributes handed
// to the HCA. validate() refuses combinations that could deadlock the credit protocol.
// The device clamps queue sizes to its own limits when it opens (clamp_to_device in
// rdma_device.h); the clamped copy is the one connections use.
// Value type; thread-compatible; never suspends.
#pragma once

#include <cstdint>

#include "async/status.h"

namespace mica::net {

struct RdmaConfig {
  // Addressing. port_num 0 takes the device's first active port. gid_index negative
  // chooses itself: none on InfiniBand (the LID routes), on RoCE the best RoCE v2 GID of
  // the table (IPv4-mapped first); zero or more forces that GID (with a GRH) on either.
  uint8_t port_num = 0;
  int32_t gid_index = -1;

  // Two-sided messages: frames are cut into SENDs of at most slot_bytes.
  uint32_t slot_bytes = 16 << 10;
  uint32_t send_slots_max = 32;         // send buffers of one connection
  uint32_t recv_slots_max = 32;         // receive buffers for frames = credits given to the peer
  uint32_t ack_recv_slots_max = 6;      // receives reserved for credit acks and the close notice
  uint32_t credit_batch_max = 8;        // credits returned by one ack
  uint32_t send_signal_batch_max = 8;   // unsignaled SENDs between two signaled ones
  uint32_t frames_queued_max = 64;      // received frames waiting for next_frame (then no credits)
  uint32_t frame_bytes_max = 64 << 20;  // header + payload; larger frames are refused
  // Received payload not yet consumed, as announced by frame headers and reserved before a
  // frame's first fragment is taken: per connection and per transport. Short of it, slots
  // are held and their credits kept, so the peer stops (rdma_receive.h).
  uint64_t recv_budget_bytes_max = uint64_t(128) << 20;
  uint64_t transport_recv_budget_bytes_max = uint64_t(1) << 30;

  // Payload bytes of received frames waiting for next_frame (then no credits either).
  uint32_t frames_queued_bytes_max = 64 << 20;

  // One-sided operations.
  uint32_t bulk_wrs_in_flight_max = 64;  // RDMA READ/WRITE WRs outstanding per connection
  uint32_t bulk_wrs_per_post_max = 16;   // WRs in one ibv_post_send (last one signaled)
  uint32_t bulk_wr_bytes_max = 1 << 20;  // bytes moved by one WR
  uint32_t bounce_buffers_max = 2;       // registered buffers for unregistered local memory
  uint32_t bounce_buffer_bytes = 1 << 20;

  // Completion handling.
  uint32_t cq_poll_batch_max = 16;        // WCs taken by one ibv_poll_cq
  uint32_t cq_event_ack_batch_max = 128;  // CQ events acknowledged together

  // Connection set-up and teardown.
  uint32_t handshake_timeout_ms = 5000;
  uint32_t close_timeout_ms = 1000;  // wait for our last sends to complete on close()
  uint32_t handshake_bytes_max = 1024;
  // Queue pairs start without remote access, granted per connection by
  // refuse_peer_transfers(false): set by Transport::refuse_peer_transfers_at_start (an
  // authenticated transport grants it once its handshake has succeeded).
  bool peer_transfers_refused_at_start = false;
  // Non-zero: connections start holding every incoming frame to this many bytes (header
  // included) until Connection::limit_incoming_frames lifts it: set by
  // Transport::limit_incoming_frames_at_start (an authenticated transport, until the peer
  // has proven the token, so a stranger cannot reserve the receive budgets).
  uint32_t frame_bytes_max_at_start = 0;

  // QP attributes (IBA encodings): local ACK timeout 4.096 µs × 2^timeout_exp, transport
  // retries, RNR retries (7 = infinite; 0 makes a missing receive — a credit bug — fatal
  // at once), minimum RNR NAK timer code, outstanding RDMA READs, path MTU cap in bytes.
  uint8_t timeout_exp = 14;
  uint8_t retry_count = 7;
  uint8_t rnr_retry_count = 0;
  uint8_t min_rnr_timer = 12;
  uint8_t rd_atomic_max = 16;
  uint32_t path_mtu_bytes_max = 4096;

  Status validate() const;
};

}  // namespace mica::net
