// TcpTransport: frames and bulk data over TCP streams through the runtime's sockets.
//
// Frames go out as one sendmsg of header + payload under a per-connection send lock, so
// concurrent senders never interleave. Incoming bytes are read through a 64 KiB buffer;
// payloads of 32 KiB or more bypass it and land directly in their destination. One-sided
// operations are kData frames (see connection.h): a read_from sends a read request and
// waits for the peer's reply; a write_to sends the bytes and waits for the peer's
// acknowledgement. A peer serves them from its registered regions, checking region id,
// key and bounds. Keys come from a per-transport seeded generator (seed in the options, so
// simulated runs stay deterministic).
// Thread rule: a transport and its connections belong to one executor.
#pragma once

#include <functional>
#include <map>
#include <memory>

#include "net/connection.h"

namespace mica::net {

struct TcpTransportOptions {
  TransportLimits limits;
  uint64_t key_seed = 0x6d696361;  // "mica"; change per process where keys must differ
  // Tests only (fault injection): called with the bytes of each read_from reply as soon as
  // they have landed in the caller's buffer, before the caller sees them; it may change
  // them, as a bad link or NIC would. Works alike on io_uring and on the simulator.
  std::function<void(std::span<std::byte>)> received_bulk_hook;
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

  // For connections: the registered bytes `remote` names, or why it may not be touched.
  Result<std::span<std::byte>> resolve(const RemoteBuffer& remote);

 private:
  friend class TcpRegion;
  struct Region {
    std::span<std::byte> bytes;
    uint32_t key;
  };
  TcpTransportOptions options_;
  uint64_t next_region_ = 1;
  uint64_t key_state_;
  std::map<uint64_t, Region> regions_;
};

}  // namespace mica::net
