#include "net/rpc_client.h"

#include <algorithm>

#include "net/service_def.h"

namespace mica::net {

struct RpcClient::Pending {
  Status status;
  std::vector<std::byte> payload;
  Event done;
};

RpcClient::RpcClient(std::unique_ptr<Connection> connection, RpcClientOptions options)
    : connection_(std::move(connection)), options_(options), slots_(options.in_flight_max) {}

RpcClient::~RpcClient() {
  MICA_ASSERT_MSG(closed_ && pending_.empty(), "RpcClient destroyed without close()");
}

Task<Result<std::shared_ptr<RpcClient>>> RpcClient::connect(Transport* transport,
                                                            SocketAddress address,
                                                            TimePoint deadline,
                                                            RpcClientOptions options) {
  auto connecting = transport->connect(address, deadline);
  CO_TRY_ASSIGN(std::unique_ptr<Connection> connection, co_await std::move(connecting));
  std::shared_ptr<RpcClient> client(new RpcClient(std::move(connection), options));
  client->scope_.spawn(client->read_responses());
  co_return client;
}

void RpcClient::fail(Status why) {
  if (!failed_.ok()) return;
  failed_ = Status(StatusCode::kConnectionReset,
                   fmt::format("connection to {} lost: {}", connection_->peer(), why.to_string()));
  for (auto& [id, pending] : pending_) {
    pending->status = failed_;
    pending->done.set();
  }
  pending_.clear();
}

Task<void> RpcClient::read_responses() {
  for (;;) {
    auto reading = connection_->next_frame();
    Result<Frame> frame = co_await std::move(reading);
    if (!frame.ok()) {
      fail(frame.status());
      co_return;
    }
    if (frame->header.kind != FrameKind::kResponse) {
      // Servers send only responses (bulk traffic never reaches here), unless they require
      // the cluster token and this client's transport does not hold it.
      if (frame->header.kind == FrameKind::kAuth)
        fail(Status(StatusCode::kUnauthenticated,
                    fmt::format("{} requires the cluster token (net/authenticated_transport.h)",
                                connection_->peer())));
      else
        fail(Status(StatusCode::kProtocolError, "unexpected frame kind from server"));
      auto closing = connection_->close();
      co_await std::move(closing);
      co_return;
    }
    auto it = pending_.find(frame->header.request_id);
    if (it == pending_.end()) continue;  // its caller gave up already
    Pending* pending = it->second;
    pending_.erase(it);
    auto code = static_cast<StatusCode>(frame->header.status);
    if (code == StatusCode::kOk) {
      pending->payload = std::move(frame->payload);
    } else {
      std::string message(reinterpret_cast<const char*>(frame->payload.data()),
                          frame->payload.size());
      // A code this build does not know (a newer server's) fails the call, not the
      // connection: the enum is closed, so it is never stored as it came.
      if (!status_code_known(frame->header.status)) {
        message = fmt::format("unknown status code {} from {}: {}", frame->header.status,
                              connection_->peer(), message);
        code = StatusCode::kProtocolError;
      }
      pending->status = Status(code, std::move(message));
    }
    pending->done.set();
  }
}

Task<Result<std::vector<std::byte>>> RpcClient::call_raw(ServiceId service, MethodId method,
                                                         std::vector<std::byte> request,
                                                         CallOptions options) {
  if (closed_) co_return Status(StatusCode::kClosed, "client closed");
  if (!failed_.ok()) co_return failed_;
  if (options.deadline == kNoDeadline) options.deadline = deadline_after(options_.default_timeout);
  Status slot = co_await slots_.acquire(1, options.deadline);
  if (!slot.ok()) co_return slot;
  Pending pending;
  FrameHeader header;
  header.kind = FrameKind::kRequest;
  header.service = service;
  header.method = method;
  header.request_id = next_request_++;
  Duration left = options.deadline - Executor::current()->now();
  int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
  header.timeout_us = static_cast<uint32_t>(std::clamp<int64_t>(us, 1, UINT32_MAX));
  pending_[header.request_id] = &pending;
  auto sending = connection_->send(header, request);
  Status status = co_await std::move(sending);
  if (status.ok()) status = co_await pending.done.wait(options.deadline);
  bool answered = pending_.erase(header.request_id) == 0;
  slots_.release();
  if (!status.ok()) {
    if (!answered && failed_.ok() && !closed_) scope_.spawn(send_cancel(header));
    co_return status;
  }
  if (!pending.status.ok()) co_return pending.status;
  co_return std::move(pending.payload);
}

Task<void> RpcClient::send_cancel(FrameHeader request) {
  request.kind = FrameKind::kCancel;
  auto sending = connection_->send(request, {});
  Status sent = co_await std::move(sending);
  (void)sent;  // best effort: the server also stops at the deadline it was given
}

Task<Result<PingResponse>> RpcClient::ping(uint64_t nonce, CallOptions options) {
  auto call = this->call<HealthService::ping>(PingRequest{nonce}, options);
  co_return co_await std::move(call);
}

Task<void> RpcClient::close() {
  if (closed_) {
    // A second closer (the pool retiring it, a storage client fencing a read) also returns
    // only once the reader has stopped: no one-sided transfer of the peer lands after it.
    Status waited = co_await close_done_.wait_uncancellable();
    MICA_ASSERT(waited.ok());
    co_return;
  }
  closed_ = true;
  fail(Status(StatusCode::kClosed, "client closed"));
  auto closing = connection_->close();
  co_await std::move(closing);
  scope_.cancel();
  co_await scope_.join();
  close_done_.set();
}

// ---- pool ----

ConnectionPool::ConnectionPool(Transport* transport, PoolOptions options)
    : transport_(transport), options_(options) {}

ConnectionPool::~ConnectionPool() {
  MICA_ASSERT_MSG(peers_.empty(), "ConnectionPool destroyed without close()");
}

Task<void> ConnectionPool::retire(std::shared_ptr<RpcClient> client) {
  auto closing = client->close();
  co_await std::move(closing);
}

Task<Result<std::shared_ptr<RpcClient>>> ConnectionPool::get(SocketAddress address,
                                                             TimePoint deadline) {
  std::unique_ptr<Peer>& slot = peers_[address.to_string()];
  if (!slot) slot = std::make_unique<Peer>();
  Peer* peer = slot.get();
  for (;;) {
    if (peer->client && peer->client->healthy()) co_return peer->client;
    if (peer->client) retired_.spawn(retire(std::exchange(peer->client, nullptr)));
    if (peer->connecting) {  // someone else is connecting: share its outcome
      Status waited = co_await peer->attempt_done.wait(deadline);
      if (!waited.ok()) co_return waited;
      continue;
    }
    TimePoint now = Executor::current()->now();
    if (now < peer->next_attempt) {
      if (peer->next_attempt > deadline) co_return peer->last_error;
      Status slept = co_await sleep_until(peer->next_attempt);
      if (!slept.ok()) co_return slept;
      continue;
    }
    peer->connecting = true;
    peer->attempt_done.reset();
    ++connect_attempts_;
    auto connecting = RpcClient::connect(transport_, address, deadline, options_.client);
    Result<std::shared_ptr<RpcClient>> client = co_await std::move(connecting);
    peer->connecting = false;
    peer->attempt_done.set();
    if (client.ok()) {
      peer->client = std::move(*client);
      peer->backoff = Duration(0);
      peer->last_error = Status();
      continue;
    }
    peer->last_error = client.status();
    peer->backoff = peer->backoff == Duration(0)
                        ? options_.backoff_initial
                        : std::min(peer->backoff * 2, options_.backoff_max);
    peer->next_attempt = Executor::current()->now() + peer->backoff;
    if (peer->next_attempt > deadline) co_return peer->last_error;
  }
}

Task<void> ConnectionPool::close() {
  for (auto& [name, peer] : peers_)
    if (peer->client) retired_.spawn(retire(std::exchange(peer->client, nullptr)));
  co_await retired_.join();
  peers_.clear();
}

}  // namespace mica::net
