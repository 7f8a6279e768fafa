#include "net/tcp_transport.h"

#include "async/socket.h"
#include "net/tcp_connection.h"

namespace mica::net {

namespace {

uint64_t splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

class TcpAcceptor final : public Acceptor {
 public:
  TcpAcceptor(TcpTransport* transport, Listener listener)
      : transport_(transport), listener_(std::move(listener)) {}
  Task<Result<std::unique_ptr<Connection>>> accept() override {
    auto next = listener_.accept();
    CO_TRY_ASSIGN(Socket socket, co_await std::move(next));
    (void)socket.set_no_delay(true);
    auto peer = socket.peer_address();
    std::string name = peer.ok() ? peer->to_string() : "unknown peer";
    co_return std::unique_ptr<Connection>(
        new TcpConnection(transport_, std::move(socket), std::move(name)));
  }
  SocketAddress address() const override { return listener_.address(); }
  Task<void> close() override {
    auto closing = listener_.close();
    co_await std::move(closing);
  }

 private:
  TcpTransport* transport_;
  Listener listener_;
};

}  // namespace

class TcpRegion final : public MemoryRegion {
 public:
  TcpRegion(TcpTransport* transport, uint64_t id, std::span<std::byte> bytes, uint32_t key)
      : transport_(transport), id_(id), bytes_(bytes), key_(key) {}
  ~TcpRegion() override { transport_->regions_.erase(id_); }
  std::span<std::byte> bytes() override { return bytes_; }
  RemoteBuffer remote(uint64_t offset, uint32_t length) override {
    MICA_ASSERT(offset + length <= bytes_.size());
    return RemoteBuffer{id_, offset, length, key_};
  }

 private:
  TcpTransport* transport_;
  uint64_t id_;
  std::span<std::byte> bytes_;
  uint32_t key_;
};

TcpTransport::TcpTransport(TcpTransportOptions options)
    : options_(options), payload_budget_(options.payload_bytes_max), key_state_(options.key_seed) {
  MICA_ASSERT_MSG(options.payload_bytes_per_connection_max >= options.limits.frame_bytes_max &&
                      options.payload_bytes_max >= options.limits.frame_bytes_max,
                  "a payload budget smaller than one frame");
}

TcpTransport::~TcpTransport() {
  MICA_ASSERT_MSG(regions_.empty(), "transport destroyed with registered regions");
}

Task<Result<std::unique_ptr<Connection>>> TcpTransport::connect(SocketAddress address,
                                                                TimePoint deadline) {
  auto connecting = Socket::connect(address, IoOptions{deadline});
  CO_TRY_ASSIGN(Socket socket, co_await std::move(connecting));
  (void)socket.set_no_delay(true);
  co_return std::unique_ptr<Connection>(
      new TcpConnection(this, std::move(socket), address.to_string()));
}

Result<std::unique_ptr<Acceptor>> TcpTransport::listen(SocketAddress address) {
  auto listener = Listener::listen(address);
  if (!listener.ok()) return listener.status();
  return std::unique_ptr<Acceptor>(new TcpAcceptor(this, std::move(*listener)));
}

Result<std::unique_ptr<MemoryRegion>> TcpTransport::register_memory(std::span<std::byte> bytes) {
  if (bytes.size() > UINT32_MAX)
    return Status(StatusCode::kInvalidArgument, "region larger than 4 GiB");
  uint64_t id = next_region_++;
  auto key = static_cast<uint32_t>(splitmix(key_state_));
  regions_[id] = Region{bytes, key};
  return std::unique_ptr<MemoryRegion>(new TcpRegion(this, id, bytes, key));
}

Result<std::span<std::byte>> TcpTransport::resolve(const RemoteBuffer& remote) {
  auto it = regions_.find(remote.region);
  // Unknown region and wrong key look the same to the peer: it learns nothing by probing.
  if (it == regions_.end() || it->second.key != remote.key)
    return Status(StatusCode::kPermissionDenied, "unknown region or wrong key");
  std::span<std::byte> bytes = it->second.bytes;
  if (remote.offset > bytes.size() || remote.length > bytes.size() - remote.offset)
    return Status(StatusCode::kOutOfRange,
                  fmt::format("range [{}, +{}) outside a region of {} bytes", remote.offset,
                              remote.length, bytes.size()));
  return bytes.subspan(remote.offset, remote.length);
}

}  // namespace mica::net
