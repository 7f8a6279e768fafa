#include "net/rpc_server.h"

#include "async/log.h"

namespace mica::net {

struct RpcServer::ConnectionState {
  ConnectionState(std::unique_ptr<Connection> c, CancelToken server, uint32_t slots)
      : connection(std::move(c)), requests(server), reader(server), slots(slots) {}
  std::unique_ptr<Connection> connection;
  TaskScope requests;
  CancelSource reader;  // ends the reader's wait (the idle timeout closes the connection)
  Semaphore slots;
  std::map<uint64_t, CancelSource*> running;  // request id → its cancel source, queued too
  uint32_t queued = 0;                        // requests waiting for a slot
  uint64_t queued_bytes = 0;                  // and their payload bytes
  uint32_t open = 0;                          // requests queued or in flight
  TimePoint last_activity;                    // the last frame, or the last request done
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

// The reader: takes every frame as it comes and never waits for a slot, so the bulk
// traffic that running handlers depend on (served inside next_frame on TCP) always flows.
Task<void> RpcServer::serve(ConnectionState* state) {
  state->last_activity = Executor::current()->now();
  if (options_.idle_timeout > Duration::zero()) state->requests.spawn(watch_idle(state));
  for (;;) {
    auto reading = state->connection->next_frame();
    reading.handle().promise().set_token(state->reader.token());
    Result<Frame> frame = co_await std::move(reading);
    if (!frame.ok()) break;  // closed, reset, malformed or idle: this connection only
    state->last_activity = Executor::current()->now();
    const FrameHeader& header = frame->header;
    if (header.kind == FrameKind::kCancel) {
      auto it = state->running.find(header.request_id);
      if (it != state->running.end()) it->second->cancel();
      continue;
    }
    if (header.kind != FrameKind::kRequest) break;  // a client does not send responses
    bool admitted = !draining_ && try_admit(state);
    Status refusal;
    if (draining_) {
      refusal = Status(StatusCode::kClosed, "server shutting down");
    } else if (!admitted && !fits_in_queue(state, frame->payload.size())) {
      refusal = Status(StatusCode::kBusy, "server busy: too many requests wait for a slot");
    }
    if (!refusal.ok()) {
      auto refusing = respond(state, header, std::move(refusal), {});
      co_await std::move(refusing);
      continue;
    }
    // The transport's payload budget bounds bytes still arriving; from here the request's
    // bytes are the server's, bounded by its slots and its queue limits. Holding the
    // reservation through the handler would let large running requests fill the budget and
    // stop this reader, and with it the bulk replies those handlers wait for.
    frame->reservation.reset();
    if (admitted) {
      ++in_flight_;
    } else {  // queued until run_request gets its slots
      ++state->queued;
      ++queued_;
      state->queued_bytes += frame->payload.size();
      queued_bytes_ += frame->payload.size();
    }
    ++state->open;
    idle_.reset();
    state->requests.spawn(run_request(state, std::move(*frame), admitted));
  }
  state->requests.cancel();
  co_await state->requests.join();
  co_await state->connection->close();
  connections_.erase(state);  // destroys *state; nothing below may touch it
}

bool RpcServer::fits_in_queue(const ConnectionState* state, uint64_t bytes) const {
  return state->queued < options_.queued_per_connection_max && queued_ < options_.queued_max &&
         state->queued_bytes + bytes <= options_.queued_bytes_per_connection_max &&
         queued_bytes_ + bytes <= options_.queued_bytes_max;
}

// Both slots at once if they are free and nobody waits for them (first come, first served).
bool RpcServer::try_admit(ConnectionState* state) {
  if (!state->slots.try_acquire()) return false;
  if (server_slots_.try_acquire()) return true;
  state->slots.release();
  return false;
}

// A connection's slot, then the server's: both wait first-come first-served, within the
// request's deadline and cancellable by its kCancel frame.
Task<Status> RpcServer::admit(ConnectionState* state, TimePoint deadline) {
  Status slot = co_await state->slots.acquire(1, deadline);
  if (!slot.ok()) co_return slot;
  slot = co_await server_slots_.acquire(1, deadline);
  if (!slot.ok()) state->slots.release();
  co_return slot;
}

Task<void> RpcServer::run_request(ConnectionState* state, Frame frame, bool admitted) {
  const FrameHeader& header = frame.header;
  CancelSource cancel(co_await current_token());
  state->running[header.request_id] = &cancel;
  CallContext context;
  context.connection = state->connection.get();
  context.request_id = header.request_id;
  Duration budget = header.timeout_us != 0 ? std::chrono::microseconds(header.timeout_us)
                                           : options_.default_request_timeout;
  context.deadline = Executor::current()->now() + budget;
  if (!admitted) {
    auto admitting = admit(state, context.deadline);
    admitting.handle().promise().set_token(cancel.token());
    Status slots = co_await std::move(admitting);
    --state->queued;
    --queued_;
    state->queued_bytes -= frame.payload.size();
    queued_bytes_ -= frame.payload.size();
    if (!slots.ok()) {  // its deadline passed or it was cancelled while queued
      state->running.erase(header.request_id);
      auto refusing = respond(state, header, std::move(slots), {});
      co_await std::move(refusing);
      request_done(state);
      co_return;
    }
    ++in_flight_;
  }
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
  --in_flight_;
  request_done(state);
}

void RpcServer::request_done(ConnectionState* state) {
  if (--state->open == 0) state->last_activity = Executor::current()->now();
  if (in_flight_ == 0 && queued_ == 0) idle_.set();
}

// Closes the connection once it has had nothing in flight and sent no frame for
// idle_timeout, by ending the reader's wait; the reader then closes it as usual.
Task<void> RpcServer::watch_idle(ConnectionState* state) {
  TimePoint due = state->last_activity + options_.idle_timeout;
  for (;;) {
    Status slept = co_await sleep_until(due);
    if (!slept.ok()) co_return;  // the connection is ending
    TimePoint now = Executor::current()->now();
    due = state->open > 0 ? now + options_.idle_timeout
                          : state->last_activity + options_.idle_timeout;
    if (due > now) continue;
    auto idle_ms = std::chrono::duration_cast<std::chrono::milliseconds>(options_.idle_timeout);
    MICA_LOG(Info, "net", "closing the idle connection with {}: no request for {} ms",
             state->connection->peer(), idle_ms.count());
    state->reader.cancel();
    co_return;
  }
}

Task<Result<std::vector<std::byte>>> RpcServer::dispatch(Frame* frame, CallContext* context) {
  auto service = services_.find(frame->header.service);
  if (service == services_.end())
    co_return Status(StatusCode::kNotFound,
                     fmt::format("unknown service {}", frame->header.service));
  const MethodEntry* method = service->second->find(frame->header.method);
  if (method == nullptr)
    co_return Status(StatusCode::kNotFound,
                     fmt::format("unknown method {} of service {}", frame->header.method,
                                 service->second->name()));
  auto handling = method->handler(method->object, std::move(frame->payload), context);
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
