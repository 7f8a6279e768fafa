// TcpTransport: frames and bulk data over TCP streams through the runtime's sockets.
//
// Frames go out as one sendmsg of header + payload under a per-connection send lock, so
// concurrent senders never interleave; a payload or bulk tail of 64 KiB or more follows
// the head in a plain send. Incoming bytes are read through a 16 KiB buffer per
// connection; a read that still needs 8 KiB or more after what the buffer holds bypasses it
// and lands directly in its destination (one larger than 256 KiB wakes once per 256 KiB
// arrived, SO_RCVLOWAT). One-sided
// operations are kData frames (see connection.h): a read_from sends a read request and
// waits for the peer's reply; a write_to sends the bytes and waits for the peer's
// acknowledgement. A peer serves them from its registered regions, checking region id,
// key and bounds, and pins the region (RegionPin) while the bytes land in it or leave it,
// so deregister() can wait for them. Keys are 32 random bits from the runtime's source
// (Backend::random_u64: the kernel's, or the simulator's seed, so simulated runs replay).
// Received payloads are reserved from a per-connection and a transport-wide byte budget as
// they arrive (never up front from the header), and a frame must arrive whole within
// partial_frame_timeout_ms of its first byte.
// Thread rule: a transport, its regions and its connections belong to one executor;
// register_memory() runs on it (it draws the key from that executor's backend).
#pragma once

#include <functional>
#include <map>
#include <memory>

#include "async/cancel.h"
#include "net/connection.h"

namespace mica::net {

struct TcpTransportOptions {
  TransportLimits limits;
  // Received frame payload not yet consumed, per connection and for the whole transport
  // (payload_budget.h). Each must hold at least one frame of limits.frame_bytes_max.
  uint64_t payload_bytes_per_connection_max = 64 << 20;
  uint64_t payload_bytes_max = 1 << 30;
  // A frame whose first byte has arrived must be complete within this, or its connection
  // is closed: a slow or stalled peer cannot hold a reader and its budget for long.
  uint32_t partial_frame_timeout_ms = 10'000;
  // Tests only (fault injection): called with the bytes of each read_from reply as soon as
  // they have landed in the caller's buffer, before the caller sees them; it may change
  // them, as a bad link or NIC would. Works alike on io_uring and on the simulator.
  std::function<void(std::span<std::byte>)> received_bulk_hook;
};

class TcpRegion;

// The registered bytes one transfer started by a peer is reading or writing. While a pin
// exists its region's deregister() waits. Made by TcpTransport::pin(); move-only; released
// by destruction, which must come after the I/O on bytes() has completed.
class RegionPin {
 public:
  RegionPin();
  RegionPin(RegionPin&&) noexcept;
  RegionPin& operator=(RegionPin&&) noexcept;
  ~RegionPin();

  explicit operator bool() const { return state_ != nullptr; }  // false: empty, moved from
  std::span<std::byte> bytes() const;
  // Makes `io` (the operation moving bytes()) run under a token that is cancelled when its
  // task's token is, and also when the region's deregistration stops waiting: the transfer
  // then fails instead of touching memory that is about to be freed. An empty pin leaves
  // `io` under its task's token.
  template <class T>
  Task<T> guard(Task<T> io) const {
    io.handle().promise().set_token(token());
    return io;
  }

 private:
  friend class TcpTransport;
  struct State;
  explicit RegionPin(std::unique_ptr<State> state);
  CancelToken token() const;
  void release();
  std::unique_ptr<State> state_;
};

class TcpTransport final : public Transport {
 public:
  explicit TcpTransport(TcpTransportOptions options = {});
  ~TcpTransport() override;

  Task<Result<std::unique_ptr<Connection>>> connect(SocketAddress address,
                                                    TimePoint deadline) override;
  Result<std::unique_ptr<Acceptor>> listen(SocketAddress address) override;
  Result<std::unique_ptr<MemoryRegion>> register_memory(std::span<std::byte> bytes) override;
  const TransportLimits& limits() const override { return options_.limits; }
  const TcpTransportOptions& options() const { return options_; }
  std::string name() const override { return "tcp"; }

  // For connections: pins the registered bytes `remote` names, or says why they may not be
  // touched. `task` is the token of the task that will move the bytes (see RegionPin::guard).
  Result<RegionPin> pin(const RemoteBuffer& remote, CancelToken task);
  // Pins held right now, over all regions (for tests and shutdown checks).
  size_t pins() const { return pins_; }
  // Payload bytes reserved by this transport's connections (now and at most so far).
  PayloadBudget* payload_budget() { return &payload_budget_; }

 private:
  friend class TcpRegion;
  friend class RegionPin;
  TcpTransportOptions options_;
  PayloadBudget payload_budget_;
  uint64_t next_region_ = 1;
  size_t pins_ = 0;
  std::map<uint64_t, TcpRegion*> regions_;  // registered, not yet deregistered
};

}  // namespace mica::net
