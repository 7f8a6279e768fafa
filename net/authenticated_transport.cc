#include "net/authenticated_transport.h"

#include <cstring>

#include "async/channel.h"
#include "async/log.h"
#include "async/metrics.h"
#include "async/scope.h"

namespace mica::net {

namespace {

constexpr size_t kNonceBytes = 32;
constexpr std::string_view kClientLabel = "mica-auth-client";
constexpr std::string_view kServerLabel = "mica-auth-server";
// The proof scheme a challenge names, so a later one can be told apart.
constexpr uint8_t kSchemeHmacSha256 = 1;
// After refusing, wait this long for the peer to hang up, so the refusal reaches it before
// our side of the connection goes (RDMA may drop sends still queued at close).
constexpr Duration kRefusalLinger = std::chrono::seconds(1);
// An accept error other than closing (out of fds, say) is retried after this.
constexpr Duration kAcceptRetryDelay = std::chrono::milliseconds(10);
// The largest frame (header + payload) a peer may send before it has proven the token:
// room for every handshake frame (the answer, the largest, is about 120 bytes), so a
// stranger cannot reserve the receive budget that authenticated traffic shares.
constexpr uint32_t kHandshakeFrameBytesMax = 256;
// Of a server's refusal reason (untrusted text), at most this much reaches our Status.
constexpr size_t kRefusalReasonBytesMax = 200;

// The steps, carried in FrameHeader::method of kAuth frames.
enum AuthStep : uint16_t {
  kChallenge = 1,
  kAnswer = 2,
  kAccepted = 3,
  kRefused = 4,  // header.status kUnauthenticated, payload the reason as text
};

struct AuthChallenge {
  uint8_t scheme = kSchemeHmacSha256;
  std::vector<std::byte> nonce;
  MICA_FIELDS(AuthChallenge, scheme, nonce)
};
struct AuthAnswer {
  std::vector<std::byte> nonce;
  std::vector<std::byte> proof;
  MICA_FIELDS(AuthAnswer, nonce, proof)
};
struct AuthAccepted {
  std::vector<std::byte> proof;
  MICA_FIELDS(AuthAccepted, proof)
};

std::vector<std::byte> draw_nonce() {
  std::vector<std::byte> nonce(kNonceBytes);
  Backend& backend = Executor::current()->backend();
  for (size_t i = 0; i < kNonceBytes; i += 8) {
    uint64_t draw = backend.random_u64();
    std::memcpy(nonce.data() + i, &draw, 8);
  }
  return nonce;
}

FrameHeader auth_header(AuthStep step, StatusCode status = StatusCode::kOk) {
  FrameHeader header;
  header.kind = FrameKind::kAuth;
  header.method = step;
  header.status = static_cast<uint16_t>(status);
  return header;
}

Task<Status> send_step(Connection* connection, AuthStep step, std::vector<std::byte> payload) {
  auto sending = connection->send(auth_header(step), payload);
  co_return co_await std::move(sending);
}

// The peer's refusal reason as safe text: at most kRefusalReasonBytesMax bytes, anything
// but printable ASCII (newlines, control bytes, UTF-8) escaped as \xNN, so a stranger
// cannot forge log lines or flood the log.
std::string printable_reason(std::span<const std::byte> bytes) {
  std::string text;
  for (std::byte b : bytes.first(std::min(bytes.size(), kRefusalReasonBytesMax))) {
    auto c = static_cast<unsigned char>(b);
    if (c >= 0x20 && c < 0x7f && c != '\\')
      text.push_back(static_cast<char>(c));
    else
      text += fmt::format("\\x{:02x}", c);
  }
  if (bytes.size() > kRefusalReasonBytesMax) text += "...";
  return text;
}

bool is_step(const Frame& frame, AuthStep step) {
  return frame.header.kind == FrameKind::kAuth && frame.header.method == step;
}

std::string frame_kind_name(FrameKind kind) {
  switch (kind) {
    case FrameKind::kRequest:
      return "request";
    case FrameKind::kResponse:
      return "response";
    case FrameKind::kCancel:
      return "cancel";
    case FrameKind::kData:
      return "data";
    case FrameKind::kAuth:
      return "handshake";
  }
  return "unknown";
}

Status unauthenticated(std::string message) {
  return Status(StatusCode::kUnauthenticated, std::move(message));
}

Counter* handshake_counter(std::string_view side, std::string_view result) {
  return &metrics().counter("net", "auth_handshakes_total",
                            "Cluster-token handshakes by side and result.",
                            {{"side", std::string(side)}, {"result", std::string(result)}});
}

// Ends a handshake step at its deadline. Not with_deadline: its kTimedOut would reach the
// TCP reader as if a frame had stalled halfway (and be logged so); a plain cancellation
// ends the wait quietly, and the caller says what happened.
struct StepTimer {
  Timer timer;
  CancelSource* source = nullptr;
  bool fired = false;
  static void fire(Timer* t) {
    auto* self = static_cast<StepTimer*>(t->context);
    self->fired = true;
    self->source->cancel(StatusCode::kCancelled);
  }
};

Task<Status> before(Task<Status> task, TimePoint deadline) {
  CancelSource source(co_await current_token());
  StepTimer timer{{}, &source};
  timer.timer.when = deadline;
  timer.timer.fire = &StepTimer::fire;
  timer.timer.context = &timer;
  Executor* executor = Executor::current();
  executor->add_timer(&timer.timer);
  task.handle().promise().set_token(source.token());
  Status status = co_await std::move(task);
  executor->remove_timer(&timer.timer);
  // Only a wait the timer ended is a timeout; a refusal that came meanwhile stays one.
  if (timer.fired && status.code() == StatusCode::kCancelled)
    co_return Status(StatusCode::kTimedOut, "deadline passed");
  co_return status;
}

Task<Status> next_frame_arrives(Connection* connection) {
  auto reading = connection->next_frame();
  Result<Frame> frame = co_await std::move(reading);
  co_return frame.status();
}

// Waits (up to the linger) for the peer to hang up after a refusal.
Task<void> linger(Connection* connection) {
  auto waiting = before(next_frame_arrives(connection), deadline_after(kRefusalLinger));
  Status done = co_await std::move(waiting);
  (void)done;  // whatever came, the connection is closed next
}

}  // namespace

// ---- the client half ----

Task<Status> AuthenticatedTransport::client_handshake(Connection* connection) {
  std::string peer = connection->peer();
  auto reading = connection->next_frame();
  CO_TRY_ASSIGN(Frame challenge_frame, co_await std::move(reading));
  if (!is_step(challenge_frame, kChallenge))
    co_return Status(StatusCode::kProtocolError,
                     fmt::format("{} sent a {} frame instead of the cluster-token challenge", peer,
                                 frame_kind_name(challenge_frame.header.kind)));
  CO_TRY_ASSIGN(AuthChallenge challenge, decode<AuthChallenge>(challenge_frame.payload));
  if (challenge.scheme != kSchemeHmacSha256 || challenge.nonce.size() != kNonceBytes)
    co_return Status(StatusCode::kProtocolError,
                     fmt::format("{} sent a cluster-token challenge of an unknown form", peer));
  // Only the reply is still held to the handshake's size: a server sends it only after our
  // answer, so whatever it sends once accepted (checked below) is free of the limit.
  connection->limit_incoming_frames(1, kHandshakeFrameBytesMax);
  AuthAnswer answer{draw_nonce(), {}};
  TokenProof proof = token_.prove(kClientLabel, challenge.nonce, answer.nonce);
  answer.proof.assign(proof.begin(), proof.end());
  auto answering = send_step(connection, kAnswer, encode(answer));
  CO_TRY(co_await std::move(answering));
  auto replying = connection->next_frame();
  CO_TRY_ASSIGN(Frame reply, co_await std::move(replying));
  if (is_step(reply, kRefused)) {
    co_return unauthenticated(
        fmt::format("{} refused the connection: {}", peer, printable_reason(reply.payload)));
  }
  if (!is_step(reply, kAccepted))
    co_return Status(StatusCode::kProtocolError,
                     fmt::format("{} answered the cluster-token handshake with a {} frame", peer,
                                 frame_kind_name(reply.header.kind)));
  CO_TRY_ASSIGN(AuthAccepted accepted, decode<AuthAccepted>(reply.payload));
  if (!token_.verify(kServerLabel, answer.nonce, challenge.nonce, accepted.proof))
    co_return unauthenticated(
        fmt::format("{} does not hold the cluster token (its proof does not match)", peer));
  co_return Status();
}

// ---- the server half ----

Task<Status> AuthenticatedTransport::server_handshake(Connection* connection) {
  std::string peer = connection->peer();
  AuthChallenge challenge{kSchemeHmacSha256, draw_nonce()};
  auto challenging = send_step(connection, kChallenge, encode(challenge));
  CO_TRY(co_await std::move(challenging));
  auto reading = connection->next_frame();
  CO_TRY_ASSIGN(Frame frame, co_await std::move(reading));
  if (!is_step(frame, kAnswer)) {
    stats_.not_a_handshake++;
    counters_.refused->add();
    MICA_LOG(Warn, "net",
             "closing the connection with {}: its first frame is a {} frame, not the "
             "cluster-token handshake (a peer without the token?)",
             peer, frame_kind_name(frame.header.kind));
    co_return unauthenticated(fmt::format("{} did not answer the cluster-token challenge", peer));
  }
  Result<AuthAnswer> answer = decode<AuthAnswer>(frame.payload);
  bool good = answer.ok() && answer->nonce.size() == kNonceBytes &&
              token_.verify(kClientLabel, challenge.nonce, answer->nonce, answer->proof);
  if (!good) {
    stats_.refused++;
    counters_.refused->add();
    MICA_LOG(Warn, "net", "refusing the connection with {}: cluster token does not match", peer);
    std::string_view why = "cluster token does not match";
    auto refusing = connection->send(auth_header(kRefused, StatusCode::kUnauthenticated),
                                     std::as_bytes(std::span(why.data(), why.size())));
    Status refused = co_await std::move(refusing);
    if (refused.ok()) co_await linger(connection);
    co_return unauthenticated(fmt::format("{}: cluster token does not match", peer));
  }
  // The peer holds the token: its frames are free of the handshake's limit from now on,
  // before it can send any (it sends nothing else until it has our proof).
  connection->limit_incoming_frames(0, 0);
  TokenProof proof = token_.prove(kServerLabel, answer->nonce, challenge.nonce);
  AuthAccepted accepted{std::vector<std::byte>(proof.begin(), proof.end())};
  auto accepting = send_step(connection, kAccepted, encode(accepted));
  CO_TRY(co_await std::move(accepting));
  co_return Status();
}

// ---- the acceptor ----

class AuthenticatedAcceptor final : public Acceptor {
 public:
  AuthenticatedAcceptor(AuthenticatedTransport* transport, std::unique_ptr<Acceptor> inner)
      : transport_(transport),
        inner_(std::move(inner)),
        ready_(transport->options().ready_max),
        ready_slots_(transport->options().ready_max),
        handshakes_(transport->options().handshakes_max) {}
  ~AuthenticatedAcceptor() override {
    MICA_ASSERT_MSG(!started_ || closed_, "AuthenticatedAcceptor destroyed without close()");
  }

  Task<Result<std::unique_ptr<Connection>>> accept() override;
  SocketAddress address() const override { return inner_->address(); }
  Task<void> close() override;

 private:
  Task<void> accept_loop();
  Task<void> admit(std::unique_ptr<Connection> connection);
  Task<Status> handshake(Connection* connection);

  AuthenticatedTransport* transport_;
  std::unique_ptr<Acceptor> inner_;
  // Authenticated connections for accept(). A handshake takes a slot before it queues its
  // connection, so try_send never finds the channel full and a connection is never
  // dropped unclosed; accept() gives the slot back.
  Channel<std::unique_ptr<Connection>> ready_;
  Semaphore ready_slots_;
  Semaphore handshakes_;
  TaskScope scope_;
  Status inner_failure_;  // why the inner acceptor stopped, if not closed by us
  bool started_ = false;
  bool closed_ = false;
};

Task<Result<std::unique_ptr<Connection>>> AuthenticatedAcceptor::accept() {
  if (closed_) co_return Status(StatusCode::kClosed, "acceptor closed");
  // Handshakes run from the first accept() on (listen() may run off the executor).
  if (!started_) {
    started_ = true;
    scope_.spawn(accept_loop());
  }
  Result<std::unique_ptr<Connection>> connection = co_await ready_.recv();
  if (connection.ok()) ready_slots_.release(1);
  if (!connection.ok() && !inner_failure_.ok()) co_return inner_failure_;
  co_return connection;
}

Task<void> AuthenticatedAcceptor::accept_loop() {
  while (!closed_) {
    Status slot = co_await handshakes_.acquire(1);
    if (!slot.ok()) break;
    auto accepting = inner_->accept();
    Result<std::unique_ptr<Connection>> connection = co_await std::move(accepting);
    if (connection.ok()) {
      scope_.spawn(admit(std::move(*connection)));
      continue;
    }
    handshakes_.release(1);
    if (closed_) break;
    StatusCode code = connection.status().code();
    if (code == StatusCode::kClosed || code == StatusCode::kCancelled) {
      inner_failure_ = connection.status();
      ready_.close();
      break;
    }
    MICA_LOG(Warn, "net", "accept failed, retrying: {}", connection.status());
    Status paused = co_await sleep_for(kAcceptRetryDelay);
    if (!paused.ok()) break;
  }
}

Task<Status> AuthenticatedAcceptor::handshake(Connection* connection) {
  TimePoint deadline = deadline_after(transport_->options().handshake_timeout);
  connection->refuse_peer_transfers(true);  // nothing of ours is reachable before the proof
  connection->limit_incoming_frames(kFramesUntilLifted, kHandshakeFrameBytesMax);
  auto bounded = before(transport_->server_handshake(connection), deadline);
  Status status = co_await std::move(bounded);
  if (status.ok()) connection->refuse_peer_transfers(false);
  co_return status;
}

// One incoming connection: its handshake, then the queue for accept(), or closed.
Task<void> AuthenticatedAcceptor::admit(std::unique_ptr<Connection> connection) {
  auto handshaking = handshake(connection.get());
  Status authenticated = co_await std::move(handshaking);
  AuthStats& stats = transport_->stats_;
  if (authenticated.ok()) {
    stats.accepted++;
    transport_->counters_.accepted->add();
    handshakes_.release(1);
    Status slot = co_await ready_slots_.acquire(1);
    if (slot.ok() && ready_.try_send(connection)) co_return;
    if (slot.ok()) ready_slots_.release(1);
    co_await connection->close();  // the acceptor is closing
    co_return;
  }
  if (authenticated.code() != StatusCode::kUnauthenticated) {
    stats.failed++;
    transport_->counters_.failed->add();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        transport_->options().handshake_timeout);
    if (authenticated.code() == StatusCode::kTimedOut)
      MICA_LOG(Warn, "net",
               "closing the connection with {}: no cluster-token handshake within {} ms",
               connection->peer(), ms.count());
    else if (!closed_)
      MICA_LOG(Info, "net", "cluster-token handshake with {} failed: {}", connection->peer(),
               authenticated);
  }
  co_await connection->close();
  handshakes_.release(1);
}

Task<void> AuthenticatedAcceptor::close() {
  if (closed_) co_return;
  closed_ = true;
  co_await inner_->close();
  scope_.cancel();
  co_await scope_.join();
  ready_.close();
  // Authenticated connections nobody accepted: close them before they are dropped.
  while (std::optional<std::unique_ptr<Connection>> left = ready_.try_recv())
    co_await (*left)->close();
}

// ---- the transport ----

AuthenticatedTransport::AuthenticatedTransport(Transport* inner, ClusterToken token,
                                               AuthOptions options)
    : inner_(inner),
      token_(std::move(token)),
      options_(options),
      counters_{handshake_counter("server", "accepted"), handshake_counter("server", "refused"),
                handshake_counter("server", "failed"), handshake_counter("client", "connected"),
                handshake_counter("client", "failed")} {
  MICA_ASSERT(inner_ != nullptr);
  // No window in which a stranger's one-sided request could be served (RDMA's HCA serves
  // them without us): every connection starts refusing them; the handshake lifts that.
  inner_->refuse_peer_transfers_at_start();
  inner_->limit_incoming_frames_at_start(kHandshakeFrameBytesMax);
}

AuthenticatedTransport::~AuthenticatedTransport() = default;

Task<Result<std::unique_ptr<Connection>>> AuthenticatedTransport::connect(SocketAddress address,
                                                                          TimePoint deadline) {
  auto connecting = inner_->connect(address, deadline);
  CO_TRY_ASSIGN(std::unique_ptr<Connection> connection, co_await std::move(connecting));
  TimePoint bound = std::min(deadline, deadline_after(options_.handshake_timeout));
  connection->refuse_peer_transfers(true);  // a stranger posing as the server reaches nothing
  connection->limit_incoming_frames(kFramesUntilLifted, kHandshakeFrameBytesMax);
  auto bounded = before(client_handshake(connection.get()), bound);
  Status authenticated = co_await std::move(bounded);
  if (authenticated.ok()) {
    connection->refuse_peer_transfers(false);
    stats_.connected++;
    counters_.connected->add();
    co_return std::move(connection);
  }
  stats_.connect_failed++;
  counters_.connect_failed->add();
  if (authenticated.code() == StatusCode::kTimedOut)
    authenticated = Status(StatusCode::kTimedOut,
                           fmt::format("no cluster-token handshake with {} before the deadline "
                                       "(does it run without a token?)",
                                       connection->peer()));
  co_await connection->close();
  co_return authenticated;
}

Result<std::unique_ptr<Acceptor>> AuthenticatedTransport::listen(SocketAddress address) {
  Result<std::unique_ptr<Acceptor>> inner = inner_->listen(address);
  if (!inner.ok()) return inner.status();
  return std::unique_ptr<Acceptor>(new AuthenticatedAcceptor(this, std::move(*inner)));
}

}  // namespace mica::net
