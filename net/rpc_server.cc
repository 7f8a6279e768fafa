#include "net/rpc_server.h"

namespace mica::net {

struct RpcServer::ConnectionState {
  ConnectionState(std::unique_ptr<Connection> c, CancelToken server, uint32_t slots)
      : connection(std::move(c)), requests(server), slots(slots) {}
  std::unique_ptr<Connection> connection;
  TaskScope requests;
  Semaphore slots;
  std::map<uint64_t, CancelSource*> running;  // request id → its cancel source
};

RpcServer::RpcServer(Transport* transport, RpcServerOptions options)
    : transport_(transport), options_(options), server_slots_(options.in_flight_max) {
  services_[HealthService::kId] = &health_;
  idle_.set();
}

RpcServer::~RpcServer() {
  MICA_ASSERT_MSG(!started_ || (acceptor_ == nullptr && connections_.empty()),
                  "RpcServer destroyed without shutdown()");
}

void RpcServer::add_service(Service* service) {
  MICA_ASSERT_MSG(!started_, "services are added before start()");
  MICA_ASSERT_MSG(!services_.contains(service->id()), "service id used twice");
  services_[service->id()] = service;
}

Result<SocketAddress> RpcServer::start(SocketAddress address) {
  MICA_ASSERT(!started_);
  auto acceptor = transport_->listen(address);
  if (!acceptor.ok()) return acceptor.status();
  acceptor_ = std::move(*acceptor);
  started_ = true;
  scope_.spawn(accept_loop());
  return acceptor_->address();
}

Task<void> RpcServer::accept_loop() {
  while (!draining_) {
    auto accepting = acceptor_->accept();
    Result<std::unique_ptr<Connection>> connection = co_await std::move(accepting);
    if (draining_) {
      if (connection.ok()) co_await (*connection)->close();
      break;
    }
    if (!connection.ok()) {
      // Out of fds or a similar passing condition: try again a little later.
      Status paused = co_await sleep_for(std::chrono::milliseconds(10));
      if (!paused.ok()) break;
      continue;
    }
    if (connections_.size() >= options_.connections_max) {
      co_await (*connection)->close();  // over the limit: refuse, keep serving the others
      continue;
    }
    auto state = std::make_unique<ConnectionState>(std::move(*connection), scope_.token(),
                                                   options_.in_flight_per_connection_max);
    ConnectionState* raw = state.get();
    connections_[raw] = std::move(state);
    scope_.spawn(serve(raw));
  }
}

Task<void> RpcServer::serve(ConnectionState* state) {
  for (;;) {
    auto reading = state->connection->next_frame();
    Result<Frame> frame = co_await std::move(reading);
    if (!frame.ok()) break;  // closed, reset or malformed: this connection only
    const FrameHeader& header = frame->header;
    if (header.kind == FrameKind::kCancel) {
      auto it = state->running.find(header.request_id);
      if (it != state->running.end()) it->second->cancel();
      continue;
    }
    if (header.kind != FrameKind::kRequest) break;  // a client does not send responses
    if (draining_) {
      auto refusing =
          respond(state, header, Status(StatusCode::kClosed, "server shutting down"), {});
      co_await std::move(refusing);
      continue;
    }
    // Back-pressure: stop reading until a slot frees up.
    Status slot = co_await state->slots.acquire();
    if (!slot.ok()) break;
    slot = co_await server_slots_.acquire();
    if (!slot.ok()) {
      state->slots.release();
      break;
    }
    ++in_flight_;
    idle_.reset();
    state->requests.spawn(run_request(state, std::move(*frame)));
  }
  state->requests.cancel();
  co_await state->requests.join();
  co_await state->connection->close();
  connections_.erase(state);  // destroys *state; nothing below may touch it
}

Task<void> RpcServer::run_request(ConnectionState* state, Frame frame) {
  const FrameHeader& header = frame.header;
  CancelSource cancel(co_await current_token());
  state->running[header.request_id] = &cancel;
  CallContext context;
  context.connection = state->connection.get();
  context.request_id = header.request_id;
  if (header.timeout_us != 0)
    context.deadline = Executor::current()->now() + std::chrono::microseconds(header.timeout_us);
  auto handling = dispatch(&frame, &context);
  auto bounded = with_deadline(std::move(handling), context.deadline);
  bounded.handle().promise().set_token(cancel.token());
  Result<std::vector<std::byte>> result = co_await std::move(bounded);
  state->running.erase(header.request_id);
  if (result.ok()) {
    auto replying = respond(state, header, Status(), *result);
    co_await std::move(replying);
  } else {
    auto replying = respond(state, header, result.status(), {});
    co_await std::move(replying);
  }
  state->slots.release();
  server_slots_.release();
  if (--in_flight_ == 0) idle_.set();
}

Task<Result<std::vector<std::byte>>> RpcServer::dispatch(const Frame* frame, CallContext* context) {
  auto service = services_.find(frame->header.service);
  if (service == services_.end())
    co_return Status(StatusCode::kNotFound,
                     fmt::format("unknown service {}", frame->header.service));
  const MethodEntry* method = service->second->find(frame->header.method);
  if (method == nullptr)
    co_return Status(StatusCode::kNotFound,
                     fmt::format("unknown method {} of service {}", frame->header.method,
                                 service->second->name()));
  auto handling = method->handler(method->object, frame->payload, context);
  co_return co_await std::move(handling);
}

Task<void> RpcServer::respond(ConnectionState* state, FrameHeader request, Status status,
                              std::span<const std::byte> payload) {
  FrameHeader header;
  header.kind = FrameKind::kResponse;
  header.service = request.service;
  header.method = request.method;
  header.request_id = request.request_id;
  header.status = static_cast<uint16_t>(status.code());
  std::string_view message = status.message();
  if (!status.ok()) payload = std::as_bytes(std::span(message.data(), message.size()));
  auto sending = state->connection->send(header, payload);
  Status sent = co_await std::move(sending);
  (void)sent;  // a broken connection ends its reader, which cleans up
}

Task<Result<PingResponse>> RpcServer::ping(PingRequest request, CallContext*) {
  co_return PingResponse{request.nonce, static_cast<uint32_t>(connections_.size()), in_flight_};
}

Task<void> RpcServer::shutdown() {
  if (!started_ || acceptor_ == nullptr) co_return;  // never started, or already stopped
  draining_ = true;
  co_await acceptor_->close();
  Status drained = co_await idle_.wait(Executor::current()->now() + options_.drain_timeout);
  (void)drained;  // past the drain timeout the rest is cancelled
  // Cancelling the scope ends every reader's wait; each reader then cancels its requests
  // and closes its connection itself.
  scope_.cancel();
  co_await scope_.join();
  acceptor_.reset();
}

}  // namespace mica::net
