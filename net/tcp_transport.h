// TcpTransport: frames and bulk data over TCP streams through the runtime's sockets.
//
// Frames go out as one sendmsg of header + payload under a per-connection send lock, so
// concurrent senders never interleave. Incoming bytes are read through a 64 KiB buffer;
// payloads of 32 KiB or more bypass it and land directly in their destination. One-sided
// operations are kData frames (see connection.h): a read_from sends a read request and
// waits for the peer's reply; a write_to sends the bytes and waits for the peer's
// acknowledgement. A peer serves them from its registered regions, checking region id,
// key and bounds. Keys come from a per-transport seeded generator (seed in the options, so
// simulated runs stay deterministic). Received payloads are reserved from a per-connection
// and a transport-wide byte budget as they arrive (never up front from the header), and a
// frame must arrive whole within partial_frame_timeout_ms of its first byte.
// Thread rule: a transport and its connections belong to one executor.
#pragma once

#include <map>
#include <memory>

#include "net/connection.h"

namespace mica::net {

struct TcpTransportOptions {
  TransportLimits limits;
  uint64_t key_seed = 0x6d696361;  // "mica"; change per process where keys must differ
  // Received frame payload not yet consumed, per connection and for the whole transport
  // (payload_budget.h). Each must hold at least one frame of limits.frame_bytes_max.
  uint64_t payload_bytes_per_connection_max = 64 << 20;
  uint64_t payload_bytes_max = 1 << 30;
  // A frame whose first byte has arrived must be complete within this, or its connection
  // is closed: a slow or stalled peer cannot hold a reader and its budget for long.
  uint32_t partial_frame_timeout_ms = 10'000;
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
  std::string name() const override { return "tcp"; }

  // For connections: the registered bytes `remote` names, or why it may not be touched.
  Result<std::span<std::byte>> resolve(const RemoteBuffer& remote);
  const TcpTransportOptions& options() const { return options_; }
  // Payload bytes reserved by this transport's connections (now and at most so far).
  PayloadBudget* payload_budget() { return &payload_budget_; }

 private:
  friend class TcpRegion;
  struct Region {
    std::span<std::byte> bytes;
    uint32_t key;
  };
  TcpTransportOptions options_;
  PayloadBudget payload_budget_;
  uint64_t next_region_ = 1;
  uint64_t key_state_;
  std::map<uint64_t, Region> regions_;
};

}  // namespace mica::net
