// RdmaTransport, its acceptor and the TCP handshake (see rdma_transport.h).
#include "net/rdma/rdma_transport.h"

#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "async/io_awaiter.h"
#include "async/socket.h"
#include "net/rdma/rdma_connection.h"
#include "net/rdma/rdma_device.h"

namespace mica::net {

namespace {

TimePoint handshake_deadline(const RdmaConfig& config, TimePoint deadline) {
  TimePoint limit =
      Executor::current()->now() + std::chrono::milliseconds(config.handshake_timeout_ms);
  return std::min(deadline, limit);
}

Task<Status> send_hello(Socket* socket, RdmaHello hello, TimePoint deadline) {
  std::vector<std::byte> bytes = encode(hello);
  auto sending = socket->send_all(bytes, IoOptions{deadline});
  co_return co_await std::move(sending);
}

Task<Result<RdmaHello>> recv_hello(Socket* socket, uint32_t bytes_max, TimePoint deadline) {
  std::vector<std::byte> message(4);
  auto head = socket->recv_exact(message, IoOptions{deadline});
  CO_TRY(co_await std::move(head));
  uint32_t length = 0;
  for (int i = 3; i >= 0; --i) length = (length << 8) | std::to_integer<uint32_t>(message[i]);
  if (length > bytes_max)
    co_return Status(StatusCode::kProtocolError, "RDMA handshake message too large");
  message.resize(4 + length);
  auto body = socket->recv_exact(std::span(message).subspan(4), IoOptions{deadline});
  CO_TRY(co_await std::move(body));
  co_return decode<RdmaHello>(message);
}

std::string peer_name(const Socket& socket) {
  Result<SocketAddress> address = socket.peer_address();
  return address.ok() ? "rdma://" + address->to_string() : "rdma://?";
}

// Errors a misbehaving or vanished client causes; the acceptor moves on to the next one.
bool is_peer_error(const Status& s) {
  switch (s.code()) {
    case StatusCode::kProtocolError:
    case StatusCode::kTimedOut:
    case StatusCode::kClosed:
    case StatusCode::kConnectionReset:
    case StatusCode::kUnreachable:  // our port is down: refuse this client, keep listening
      return true;
    default:
      return false;
  }
}

class RdmaAcceptor final : public Acceptor {
 public:
  RdmaAcceptor(std::shared_ptr<RdmaDevice> device, RdmaConfig config, Listener listener)
      : device_(std::move(device)), config_(config), listener_(std::move(listener)) {}

  Task<Result<std::unique_ptr<Connection>>> accept() override {
    while (true) {
      // Closed while a client's handshake was under way: the listener is gone.
      if (closed_) co_return Status(StatusCode::kClosed, "acceptor closed");
      auto accepting = listener_.accept();
      CO_TRY_ASSIGN(Socket socket, co_await std::move(accepting));
      auto shaking = handshake(std::move(socket));
      Result<std::unique_ptr<Connection>> connection = co_await std::move(shaking);
      if (connection.ok() || !is_peer_error(connection.status())) co_return connection;
    }
  }
  SocketAddress address() const override { return listener_.address(); }
  Task<void> close() override {
    closed_ = true;
    return listener_.close();
  }

 private:
  Task<Result<std::unique_ptr<Connection>>> handshake(Socket socket) {
    TimePoint deadline = handshake_deadline(config_, kNoDeadline);
    auto receiving = recv_hello(&socket, config_.handshake_bytes_max, deadline);
    CO_TRY_ASSIGN(RdmaHello peer, co_await std::move(receiving));
    CO_TRY(device_->usable());
    CO_TRY_ASSIGN(std::shared_ptr<RdmaCore> core, RdmaCore::create(device_, config_));
    CO_TRY(core->to_rtr(peer));
    auto sending = send_hello(&socket, core->hello(), deadline);
    CO_TRY(co_await std::move(sending));
    // RTS only once the client is in RTS: nothing is sent to a QP that cannot take it.
    std::array<std::byte, 1> ready{};
    auto waiting = socket.recv_exact(ready, IoOptions{deadline});
    CO_TRY(co_await std::move(waiting));
    CO_TRY(core->to_rts());
    std::string name = peer_name(socket);
    core->start(std::move(socket), std::move(name));
    co_return std::unique_ptr<Connection>(new RdmaConnection(std::move(core)));
  }

  std::shared_ptr<RdmaDevice> device_;
  RdmaConfig config_;
  Listener listener_;
  bool closed_ = false;
};

class RdmaTransport final : public Transport {
 public:
  explicit RdmaTransport(std::shared_ptr<RdmaDevice> device)
      : device_(std::move(device)), config_(device_->config()) {
    limits_.frame_bytes_max = config_.frame_bytes_max;
    limits_.bulk_in_flight_max = config_.bulk_wrs_in_flight_max;
  }

  Task<Result<std::unique_ptr<Connection>>> connect(SocketAddress address,
                                                    TimePoint deadline) override {
    TimePoint until = handshake_deadline(config_, deadline);
    auto connecting = Socket::connect(address, IoOptions{until});
    CO_TRY_ASSIGN(Socket socket, co_await std::move(connecting));
    CO_TRY(device_->usable());
    CO_TRY_ASSIGN(std::shared_ptr<RdmaCore> core, RdmaCore::create(device_, config_));
    auto sending = send_hello(&socket, core->hello(), until);
    CO_TRY(co_await std::move(sending));
    auto receiving = recv_hello(&socket, config_.handshake_bytes_max, until);
    CO_TRY_ASSIGN(RdmaHello peer, co_await std::move(receiving));
    CO_TRY(core->to_rtr(peer));
    CO_TRY(core->to_rts());
    std::array<std::byte, 1> ready{std::byte{1}};
    auto telling = socket.send_all(ready, IoOptions{until});
    CO_TRY(co_await std::move(telling));
    std::string name = peer_name(socket);
    core->start(std::move(socket), std::move(name));
    co_return std::unique_ptr<Connection>(new RdmaConnection(std::move(core)));
  }

  Result<std::unique_ptr<Acceptor>> listen(SocketAddress address) override {
    Result<Listener> listener = Listener::listen(address);
    if (!listener.ok()) return listener.status();
    return std::unique_ptr<Acceptor>(
        new RdmaAcceptor(device_, config_, std::move(listener).value()));
  }
  void refuse_peer_transfers_at_start() override { config_.peer_transfers_refused_at_start = true; }
  void limit_incoming_frames_at_start(uint32_t frame_bytes_max) override {
    config_.frame_bytes_max_at_start = frame_bytes_max;
  }

  Result<std::unique_ptr<MemoryRegion>> register_memory(std::span<std::byte> bytes) override {
    if (bytes.empty()) return Status(StatusCode::kInvalidArgument, "empty memory region");
    if (bytes.size() > device_->limits().max_mr_size)
      return Status(StatusCode::kInvalidArgument, "region larger than the device's max_mr_size");
    if (device_->find_lkey(bytes.data(), 1) || device_->find_lkey(&bytes.back(), 1))
      return Status(StatusCode::kAlreadyExists, "memory overlaps a registered region");
    int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE;
    ibv_mr* mr = ibv_reg_mr(device_->pd(), bytes.data(), bytes.size(), access);
    if (mr == nullptr) return Status::from_errno(errno ? errno : ENOMEM, "ibv_reg_mr");
    return std::unique_ptr<MemoryRegion>(new RdmaRegion(device_, bytes, mr));
  }

  const TransportLimits& limits() const override { return limits_; }
  std::string name() const override { return "rdma"; }
  RdmaDevice& device() const { return *device_; }

 private:
  std::shared_ptr<RdmaDevice> device_;
  RdmaConfig config_;
  TransportLimits limits_;
};

}  // namespace

Result<RdmaReceiveCounters> rdma_receive_counters(const Transport& transport) {
  auto* rdma = dynamic_cast<const RdmaTransport*>(&transport);
  if (rdma == nullptr) return Status(StatusCode::kInvalidArgument, "not an RDMA transport");
  const ByteBudget& budget = rdma->device().recv_budget();
  return RdmaReceiveCounters{budget.reserved(), budget.bytes_max(), budget.refusals()};
}

Result<std::unique_ptr<Transport>> make_rdma_transport(ibv_context* context, RdmaConfig config) {
  Result<std::shared_ptr<RdmaDevice>> device = RdmaDevice::open(context, false, config);
  if (!device.ok()) return device.status();
  return std::unique_ptr<Transport>(new RdmaTransport(std::move(device).value()));
}

Result<std::unique_ptr<Transport>> open_rdma_transport(RdmaConfig config) {
  int count = 0;
  ibv_device** list = ibv_get_device_list(&count);
  if (list == nullptr || count == 0) {
    int error = errno;
    if (list != nullptr) ibv_free_device_list(list);
    return Status(
        StatusCode::kNotSupported,
        list ? "no RDMA device" : fmt::format("no RDMA device ({})", std::strerror(error)));
  }
  // The first device with an active port; one whose ports are all down is skipped (its
  // context is closed by the failed RdmaDevice, which owns it).
  std::string skipped;
  Result<std::shared_ptr<RdmaDevice>> device = Status(StatusCode::kNotSupported, "");
  for (int i = 0; i < count && !device.ok(); ++i) {
    std::string name = ibv_get_device_name(list[i]);
    ibv_context* context = ibv_open_device(list[i]);
    if (context == nullptr) {
      skipped += fmt::format(" {} (did not open)", name);
      continue;
    }
    device = RdmaDevice::open(context, true, config);
    if (!device.ok() && device.status().code() != StatusCode::kUnreachable) break;
    if (!device.ok()) skipped += fmt::format(" {} ({})", name, device.status().message());
  }
  ibv_free_device_list(list);
  if (!device.ok() && device.status().code() == StatusCode::kUnreachable)
    return Status(StatusCode::kNotSupported, "no active RDMA port:" + skipped);
  if (!device.ok()) return device.status();
  return std::unique_ptr<Transport>(new RdmaTransport(std::move(device).value()));
}

}  // namespace mica::net
