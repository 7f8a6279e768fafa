// RdmaTransport: the Transport over RDMA verbs (reliable-connected queue pairs).
//
// connect() and listen() set connections up the way 3FS does, without rdma_cm: a TCP
// connection through the runtime's sockets carries one handshake message each way (QP
// number, PSN, LID/GID, MTU, ring sizes), then a one-byte "ready" from the connecting
// side once its QP is in RTS, so the accepting side never sends to a QP that cannot
// receive yet. The TCP socket stays open as a liveness signal (rdma_connection.h).
// register_memory() registers with LOCAL_WRITE | REMOTE_READ | REMOTE_WRITE on the
// transport's protection domain; RemoteBuffer.region is the virtual address, key the rkey.
//
// Ownership: the transport shares its device (context + PD) with its connections and
// regions, so they may outlive it; the caller's ibv_context must outlive all of them when
// it is borrowed (make_rdma_transport). Thread rule: one executor, like the TCP transport.
// connect() and accept() suspend; the rest does not.
#pragma once

#include <infiniband/verbs.h>

#include <memory>

#include "net/connection.h"
#include "net/rdma/rdma_config.h"

namespace mica::net {

// The transport's budget of received payload not yet consumed (rdma_receive.h): bytes
// reserved now, the limit, and how often a frame had to wait for it.
struct RdmaReceiveCounters {
  uint64_t reserved_bytes = 0;
  uint64_t bytes_max = 0;
  uint64_t refusals = 0;
};
// kInvalidArgument when `transport` is not an RDMA transport.
Result<RdmaReceiveCounters> rdma_receive_counters(const Transport& transport);

// A transport on an already opened device context (borrowed).
Result<std::unique_ptr<Transport>> make_rdma_transport(ibv_context* context, RdmaConfig config);

// A transport on the first RDMA device of the machine with an active port (owned; port
// choice, GID choice and queue clamping as in RdmaDevice::open). kNotSupported "no RDMA
// device" when there is none or the kernel has no verbs support, "no active RDMA port"
// when every port is down — callers fall back to TCP.
Result<std::unique_ptr<Transport>> open_rdma_transport(RdmaConfig config = {});

}  // namespace mica::net
