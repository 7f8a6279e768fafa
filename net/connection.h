// Connection and Transport: how net/ moves frames and bulk data, whatever the wire.
//
// A Connection joins two processes. Frames (requests, responses, cancels) are sent with
// send() and received, one at a time, with next_frame(). Bulk data moves one-sidedly, as
// in 3FS: a request names a caller's registered buffer (RemoteBuffer) and the server pulls
// a write's payload with read_from() or pushes a read's data with write_to().
//
// Per transport:
// - TCP: one-sided operations are kData frames on the same connection, served inside the
//   peer's next_frame() loop, so they progress only while the peer keeps calling it (the
//   RPC layer always does, whatever its admission state: docs/net.md). A wrong key or
//   range is answered with kPermissionDenied / kOutOfRange and the connection carries on.
// - RDMA: they are RDMA READ/WRITE, served by the peer's hardware. A refused access (key,
//   range or rights) is one failed work completion: the caller gets kPermissionDenied and
//   the queue pair, hence the connection, fails. A deadline cannot recall work already
//   posted either: expiring during a one-sided operation also ends the connection.
// RemoteBuffer.region is a region id on TCP and a virtual address on RDMA; a buffer is
// only ever named to peers of the transport that registered it.
//
// Registered memory against the peer: a peer may start a transfer on a region at any time
// while it is registered, so the owner ends access with `co_await region->deregister(d)`,
// then destroys the region, then frees the memory. From the deregister() call on (RDMA:
// from the destruction) peers naming the region are refused (kPermissionDenied); it
// returns once no transfer a peer started still reads or writes the memory (TCP pins the
// region for each one), failing those still running at d — their connections end, as a
// cut RDMA transfer ends its queue pair. Destroying a region that a transfer still uses is
// a bug and asserts. Keys are drawn from the runtime's random source
// (Backend::random_u64), never a constant, so a peer cannot guess another region's key.
//
// Lifetimes: every call into a connection must have returned before it is destroyed, and
// a region must outlive the operations that name it; a Frame from next_frame() is
// destroyed before its connection (it holds bytes of the connection's payload budget).
// Thread rule: a Connection belongs to the executor that created it. send() may be called
// by many tasks at once (frames are never interleaved); next_frame() by one task at a
// time. Every method may suspend. A failed connection fails every waiter with a retryable
// status (kConnectionReset, kClosed) and stays failed.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "async/socket_address.h"
#include "async/task.h"
#include "async/time.h"
#include "net/frame.h"
#include "net/payload_budget.h"
#include "net/serde.h"

namespace mica::net {

// A registered buffer of the caller, named in a request so the server can reach it.
struct RemoteBuffer {
  uint64_t region = 0;  // the region id (TCP) or the remote virtual address base (RDMA)
  uint64_t offset = 0;  // byte offset inside the region
  uint32_t length = 0;  // bytes the server may touch, starting at offset
  uint32_t key = 0;     // the region's access key (RDMA rkey)
  MICA_FIELDS(RemoteBuffer, region, offset, length, key)
};

struct Frame {
  FrameHeader header;
  std::vector<std::byte> payload;
  // The payload's bytes in the receiving transport's budget (payload_budget.h), given back
  // when the frame is destroyed; empty for transports that do not count.
  PayloadReservation reservation;
};

// Local memory a peer may read or write with one-sided operations. Owned by whoever
// registered it; belongs to its transport's executor.
class MemoryRegion {
 public:
  virtual ~MemoryRegion() = default;
  virtual std::span<std::byte> bytes() = 0;
  // Names [offset, offset + length) of this region for a peer.
  virtual RemoteBuffer remote(uint64_t offset, uint32_t length) = 0;
  // Refuses peers from now on and returns when none of their transfers touches the memory
  // any more, failing those still running at `deadline` (see the top of this file). After
  // it the region may be destroyed, and then the memory freed. Suspends.
  // The default does nothing: for transports whose destructor itself revokes access
  // synchronously (RDMA: ibv_dereg_mr returns once the device no longer touches the
  // memory), destroying the region is the deregistration.
  virtual Task<void> deregister(TimePoint deadline);
};

inline Task<void> MemoryRegion::deregister(TimePoint) {
  co_return;
}

class Connection {
 public:
  virtual ~Connection() = default;

  virtual Task<Status> send(FrameHeader header, std::span<const std::byte> payload) = 0;
  // The next request, response or cancel frame; serves bulk traffic meanwhile.
  virtual Task<Result<Frame>> next_frame() = 0;

  // Copies remote into local (local.size() == remote.length).
  virtual Task<Status> read_from(RemoteBuffer remote, std::span<std::byte> local,
                                 TimePoint deadline) = 0;
  // Copies local into remote (local.size() == remote.length).
  virtual Task<Status> write_to(RemoteBuffer remote, std::span<const std::byte> local,
                                TimePoint deadline) = 0;

  // Fails pending work with kClosed and releases the wire; idempotent.
  virtual Task<void> close() = 0;
  virtual std::string peer() const = 0;

  // While refused, a one-sided request from the peer fails the connection
  // (kPermissionDenied) instead of being served: an authenticated transport refuses them
  // until its handshake has succeeded (authenticated_transport.h). TCP serves them inside
  // next_frame(), so it honours this; on RDMA the HCA serves them from the moment the queue
  // pair is connected, so there the access rights of the queue pair change (and a
  // transport must refuse_peer_transfers_at_start for no window to remain).
  virtual void refuse_peer_transfers(bool refuse) { (void)refuse; }

  // Holds the peer's next `frames` frames (kFramesUntilLifted: all of them until this is
  // called again; 0 lifts the limit) to frame_bytes_max bytes, header included: a header
  // announcing more fails the connection (kProtocolError) before any of its payload is
  // reserved or read. An authenticated transport holds a peer to the size of the handshake
  // frames until it has proven the token, so a stranger cannot take the receive budget
  // (authenticated_transport.h). TCP checks headers inside next_frame(), so setting it
  // before the first call suffices; RDMA takes frames as they arrive, so there a transport
  // must limit_incoming_frames_at_start for no window to remain.
  virtual void limit_incoming_frames(uint32_t frames, uint32_t frame_bytes_max) {
    (void)frames;
    (void)frame_bytes_max;
  }
};

// limit_incoming_frames(kFramesUntilLifted, n): every frame until the limit is lifted.
inline constexpr uint32_t kFramesUntilLifted = UINT32_MAX;

class Acceptor {
 public:
  virtual ~Acceptor() = default;
  virtual Task<Result<std::unique_ptr<Connection>>> accept() = 0;
  virtual SocketAddress address() const = 0;
  virtual Task<void> close() = 0;
};

struct TransportLimits {
  uint32_t frame_bytes_max = 64 << 20;  // header + payload
  uint32_t bulk_in_flight_max = 64;     // outstanding one-sided operations per connection
};

// Makes connections of one kind (TCP, RDMA). Registered regions belong to the transport
// and are visible to every connection it makes.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual Task<Result<std::unique_ptr<Connection>>> connect(SocketAddress address,
                                                            TimePoint deadline) = 0;
  virtual Result<std::unique_ptr<Acceptor>> listen(SocketAddress address) = 0;
  // Registers memory for one-sided access by peers; the memory must outlive the region.
  virtual Result<std::unique_ptr<MemoryRegion>> register_memory(std::span<std::byte> bytes) = 0;
  // Connections made from now on refuse the peer's one-sided requests from their first
  // moment until refuse_peer_transfers(false) (an authenticated transport calls this on
  // the transport it wraps, which is then used through the wrapper only). RDMA connects
  // its queue pairs without remote access; TCP needs nothing, as it serves them only inside
  // next_frame().
  virtual void refuse_peer_transfers_at_start() {}
  // Likewise, connections made from now on start as if limit_incoming_frames(
  // kFramesUntilLifted, frame_bytes_max) had been called before their first byte arrived
  // (RDMA; TCP needs nothing, as it reads frame headers only inside next_frame()).
  virtual void limit_incoming_frames_at_start(uint32_t frame_bytes_max) { (void)frame_bytes_max; }
  virtual const TransportLimits& limits() const = 0;
  virtual std::string name() const = 0;
};

}  // namespace mica::net
