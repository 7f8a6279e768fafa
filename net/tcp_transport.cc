#include "net/tcp_transport.h"

#include "async/executor.h"
#include "async/socket.h"
#include "net/tcp_connection.h"

namespace mica::net {

namespace {

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

// A registered region. Peers find it through the transport's table until deregister()
// (or destruction) takes it out; from then on its pins only go down.
class TcpRegion final : public MemoryRegion {
 public:
  TcpRegion(TcpTransport* transport, uint64_t id, std::span<std::byte> bytes, uint32_t key)
      : transport_(transport), id_(id), bytes_(bytes), key_(key) {}
  ~TcpRegion() override {
    MICA_ASSERT_MSG(pins_ == 0,
                    "region destroyed while a peer's transfer uses it: deregister() first");
    revoke();
  }
  std::span<std::byte> bytes() override { return bytes_; }
  RemoteBuffer remote(uint64_t offset, uint32_t length) override {
    MICA_ASSERT(offset + length <= bytes_.size());
    return RemoteBuffer{id_, offset, length, key_};
  }
  Task<void> deregister(TimePoint deadline) override;

 private:
  friend class TcpTransport;
  friend class RegionPin;
  void revoke() {
    if (!revoked_) transport_->regions_.erase(id_);
    revoked_ = true;
  }
  void unpin() {
    MICA_ASSERT(pins_ > 0 && transport_->pins_ > 0);
    --pins_;
    --transport_->pins_;
    if (pins_ == 0 && revoked_) unpinned_.set();
  }

  TcpTransport* transport_;
  uint64_t id_;
  std::span<std::byte> bytes_;
  uint32_t key_;
  bool revoked_ = false;
  size_t pins_ = 0;
  Event unpinned_;      // set once revoked with no pins left
  CancelSource abort_;  // cancels every pin's transfer when deregister() stops waiting
};

Task<void> TcpRegion::deregister(TimePoint deadline) {
  revoke();
  if (pins_ == 0) co_return;
  Status waited = co_await unpinned_.wait(deadline);
  if (waited.ok()) co_return;
  // Past the deadline (or our caller was cancelled): fail the transfers. Their I/O still
  // completes before it lets go of the bytes, so wait for that whatever happens.
  abort_.cancel();
  Status released = co_await unpinned_.wait_uncancellable();
  MICA_ASSERT(released.ok());
}

struct RegionPin::State {
  explicit State(TcpRegion* r, std::span<std::byte> b, CancelToken task)
      : region(r), bytes(b), source(task) {}
  TcpRegion* region;
  std::span<std::byte> bytes;
  CancelSource source;      // the transfer's token: its task's, plus the region's abort
  CancelCallback on_abort;  // declared after source: unlinked first
  static void abort(void* self) { static_cast<State*>(self)->source.cancel(); }
};

RegionPin::RegionPin() = default;
RegionPin::RegionPin(std::unique_ptr<State> state) : state_(std::move(state)) {}
RegionPin::RegionPin(RegionPin&&) noexcept = default;
RegionPin& RegionPin::operator=(RegionPin&& other) noexcept {
  if (this != &other) {
    release();
    state_ = std::move(other.state_);
  }
  return *this;
}
RegionPin::~RegionPin() {
  release();
}
void RegionPin::release() {
  if (!state_) return;
  TcpRegion* region = state_->region;
  state_.reset();  // unhooked from the region's abort before the region may be destroyed
  region->unpin();
}
std::span<std::byte> RegionPin::bytes() const {
  return state_->bytes;
}
CancelToken RegionPin::token() const {
  return state_ ? state_->source.token() : CancelToken();  // none: the task's own applies
}

TcpTransport::TcpTransport(TcpTransportOptions options)
    : options_(options), payload_budget_(options.payload_bytes_max) {
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
  Executor* executor = Executor::current();
  MICA_ASSERT_MSG(executor != nullptr, "register_memory outside the transport's executor");
  uint64_t id = next_region_++;
  auto key = static_cast<uint32_t>(executor->backend().random_u64());
  auto region = std::make_unique<TcpRegion>(this, id, bytes, key);
  regions_[id] = region.get();
  return std::unique_ptr<MemoryRegion>(std::move(region));
}

Result<RegionPin> TcpTransport::pin(const RemoteBuffer& remote, CancelToken task) {
  auto it = regions_.find(remote.region);
  // Unknown region and wrong key look the same to the peer: it learns nothing by probing.
  if (it == regions_.end() || it->second->key_ != remote.key)
    return Status(StatusCode::kPermissionDenied, "unknown region or wrong key");
  TcpRegion* region = it->second;
  std::span<std::byte> bytes = region->bytes_;
  if (remote.offset > bytes.size() || remote.length > bytes.size() - remote.offset)
    return Status(StatusCode::kOutOfRange,
                  fmt::format("range [{}, +{}) outside a region of {} bytes", remote.offset,
                              remote.length, bytes.size()));
  auto state =
      std::make_unique<RegionPin::State>(region, bytes.subspan(remote.offset, remote.length), task);
  // Cannot fail: a region still in the table has not been revoked, so not aborted either.
  bool armed =
      state->on_abort.arm(region->abort_.token().state(), &RegionPin::State::abort, state.get());
  MICA_ASSERT(armed);
  ++region->pins_;
  ++pins_;
  return RegionPin(std::move(state));
}

}  // namespace mica::net
