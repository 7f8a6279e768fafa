#include "net/tcp_connection.h"

#include <algorithm>
#include <cstring>

#include "async/log.h"

namespace mica::net {

namespace {

// Small frames are read through this buffer, several per recv; larger reads skip it.
constexpr size_t kReadBufferBytes = 16 << 10;
constexpr size_t kDirectReadBytesMin = 8 << 10;
// Large direct reads wake once per this many arrived bytes (SO_RCVLOWAT): measured +20% for
// 4 MiB and +35% for 1 MiB one-sided transfers on loopback (docs/net.md).
constexpr size_t kReceiveLowWaterBytes = 256 << 10;
constexpr size_t kDiscardChunkBytes = 64 << 10;  // scratch for skipping refused bulk bytes
// A frame's payload buffer starts at this size (or the whole payload if smaller) and then
// doubles as bytes arrive: what a header announces is never allocated before it comes.
constexpr size_t kPayloadStepBytes = 64 << 10;

enum BulkOp : uint8_t {
  kReadRequest = 1,
  kReadReply = 2,
  kWriteRequest = 3,
  kWriteAck = 4,
};

}  // namespace

// One outstanding read_from / write_to, living in the caller's frame.
struct TcpConnection::Transfer {
  std::span<std::byte> into;  // read_from: where the reply's bytes go
  Status status;
  Event done;
  // The reader is receiving into `into`: the caller may not leave (its frame owns `into`)
  // until done is set, even past its deadline.
  bool receiving = false;
};

TcpConnection::TcpConnection(TcpTransport* transport, Socket socket, std::string peer)
    : transport_(transport),
      socket_(std::move(socket)),
      peer_(std::move(peer)),
      bulk_slots_(transport->limits().bulk_in_flight_max),
      budget_(transport->options().payload_bytes_per_connection_max, transport->payload_budget()),
      buffer_(kReadBufferBytes) {}

TcpConnection::~TcpConnection() {
  MICA_ASSERT_MSG(transfers_.empty(), "connection destroyed with transfers in flight");
}

void TcpConnection::fail(Status why) {
  if (!failed_.ok()) return;
  failed_ = std::move(why);
  for (auto& [id, transfer] : transfers_) {
    transfer->status = failed_;
    transfer->done.set();
  }
  transfers_.clear();
}

Task<Status> TcpConnection::send_parts(std::span<iovec> parts) {
  // Large last parts (bulk bytes) go out with plain send, the rest with sendmsg + MSG_MORE.
  size_t head_parts = parts.size();
  if (parts.size() > 1 && parts.back().iov_len >= (64 << 10)) head_parts = parts.size() - 1;
  size_t index = 0;
  while (index < head_parts) {
    msghdr message{};
    message.msg_iov = parts.data() + index;
    message.msg_iovlen = head_parts - index;
    int flags = MSG_WAITALL | (head_parts < parts.size() ? MSG_MORE : 0);
    Result<size_t> sent = co_await socket_.sendmsg(&message, {}, flags);
    if (!sent.ok()) co_return sent.status();
    size_t n = *sent;
    if (n == 0) co_return Status(StatusCode::kConnectionReset, "send made no progress");
    while (index < head_parts && n >= parts[index].iov_len) n -= parts[index++].iov_len;
    if (index < head_parts) {
      parts[index].iov_base = static_cast<std::byte*>(parts[index].iov_base) + n;
      parts[index].iov_len -= n;
    }
  }
  if (head_parts < parts.size()) {
    auto bulk = socket_.send_all(
        std::span(static_cast<const std::byte*>(parts.back().iov_base), parts.back().iov_len));
    co_return co_await std::move(bulk);
  }
  co_return Status();
}

Task<Status> TcpConnection::send(FrameHeader header, std::span<const std::byte> payload) {
  if (!failed_.ok()) co_return failed_;
  if (payload.size() + kFrameHeaderBytes > transport_->limits().frame_bytes_max)
    co_return Status(StatusCode::kInvalidArgument,
                     fmt::format("frame of {} bytes exceeds the limit", payload.size()));
  HeaderBytes head = seal_frame(header, payload);
  iovec parts[2] = {{head.data(), head.size()},
                    {const_cast<std::byte*>(payload.data()), payload.size()}};
  auto sending = send_frame_parts(std::span(parts, payload.empty() ? 1 : 2));
  co_return co_await std::move(sending);
}

Task<Status> TcpConnection::send_frame_parts(std::span<iovec> parts) {
  Status locked = co_await send_lock_.lock();
  if (!locked.ok()) co_return locked;
  MutexGuard guard(send_lock_);
  if (!failed_.ok()) co_return failed_;
  auto sending = send_parts(parts);
  Status sent = co_await std::move(sending);
  // A partly sent frame leaves the stream unusable: fail the connection, not just the call.
  if (!sent.ok()) fail(sent);
  co_return sent;
}

Task<Status> TcpConnection::fill(TimePoint deadline) {
  if (buffer_begin_ == buffer_end_) buffer_begin_ = buffer_end_ = 0;
  Result<size_t> n =
      co_await socket_.recv(std::span(buffer_).subspan(buffer_end_), IoOptions{deadline});
  if (!n.ok()) co_return n.status();
  if (*n == 0)
    co_return Status(StatusCode::kClosed, fmt::format("{} closed the connection", peer_));
  buffer_end_ += *n;
  co_return Status();
}

Task<Status> TcpConnection::read_exact(std::span<std::byte> out, TimePoint deadline) {
  size_t buffered = std::min(out.size(), buffer_end_ - buffer_begin_);
  if (buffered > 0) std::memcpy(out.data(), buffer_.data() + buffer_begin_, buffered);
  buffer_begin_ += buffered;
  out = out.subspan(buffered);
  if (out.size() >= kDirectReadBytesMin) {
    auto direct = socket_.recv_exact(out, IoOptions{deadline}, kReceiveLowWaterBytes);
    co_return co_await std::move(direct);
  }
  while (!out.empty()) {
    if (buffer_begin_ == buffer_end_ || buffer_end_ == buffer_.size()) {
      if (buffer_begin_ > 0) {  // keep unread bytes, make room behind them
        std::memmove(buffer_.data(), buffer_.data() + buffer_begin_, buffer_end_ - buffer_begin_);
        buffer_end_ -= buffer_begin_;
        buffer_begin_ = 0;
      }
      auto more = fill(deadline);
      CO_TRY(co_await std::move(more));
    }
    size_t n = std::min(out.size(), buffer_end_ - buffer_begin_);
    std::memcpy(out.data(), buffer_.data() + buffer_begin_, n);
    buffer_begin_ += n;
    out = out.subspan(n);
  }
  co_return Status();
}

uint32_t TcpConnection::incoming_frame_bytes_max() const {
  uint32_t limit = transport_->limits().frame_bytes_max;
  return limited_frames_ > 0 ? std::min(limit, limited_frame_bytes_max_) : limit;
}

Task<Result<Frame>> TcpConnection::next_frame() {
  for (;;) {
    if (!failed_.ok()) co_return failed_;
    // Between frames a connection may stay quiet as long as it likes (the RPC server's idle
    // timeout decides); from a frame's first byte on, the whole frame has a deadline.
    Status got;
    if (buffer_begin_ == buffer_end_) {
      auto waiting = fill(kNoDeadline);
      got = co_await std::move(waiting);
    }
    uint32_t partial_ms = transport_->options().partial_frame_timeout_ms;
    TimePoint deadline = Executor::current()->now() + std::chrono::milliseconds(partial_ms);
    HeaderBytes head;
    if (got.ok()) {
      auto reading = read_exact(head, deadline);
      got = co_await std::move(reading);
    }
    Result<FrameHeader> header =
        got.ok() ? parse_header(head, incoming_frame_bytes_max()) : Result<FrameHeader>(got);
    if (header.ok() && limited_frames_ > 0 && limited_frames_ != kFramesUntilLifted)
      limited_frames_--;
    bool bulk = header.ok() && header->kind == FrameKind::kData;
    if (bulk && refuse_peer_transfers_) {
      got = Status(StatusCode::kPermissionDenied,
                   fmt::format("{} sent a one-sided transfer before it was authenticated", peer_));
    } else if (bulk) {
      auto serving = serve_bulk(*header, deadline);
      got = co_await std::move(serving);
    } else if (header.ok()) {
      Frame frame;
      frame.header = *header;
      auto payload = read_frame(*header, deadline, &frame);
      got = co_await std::move(payload);
      if (got.ok()) got = verify_payload(frame.header, frame.payload);
      if (got.ok()) co_return std::move(frame);
    } else {
      got = header.status();
    }
    if (!got.ok()) {
      if (got.code() == StatusCode::kTimedOut) {
        got = Status(StatusCode::kTimedOut,
                     fmt::format("frame not complete within {} ms of its first byte", partial_ms));
        MICA_LOG(Warn, "net", "closing the connection with {}: {}", peer_, got.message());
      }
      fail(got);
      co_return got;
    }
  }
}

// Grows the payload as its bytes arrive, reserving each growth from the budget first.
Task<Status> TcpConnection::read_frame(FrameHeader header, TimePoint deadline, Frame* frame) {
  std::vector<std::byte>& payload = frame->payload;
  size_t total = header.payload_length;
  while (payload.size() < total) {
    size_t have = payload.size();
    size_t grow = std::min(total, std::max(2 * have, kPayloadStepBytes)) - have;
    auto reserving = budget_.acquire(grow, deadline);
    CO_TRY(co_await std::move(reserving));
    frame->reservation.add(&budget_, grow);
    payload.reserve(have + grow);  // exactly: the reservation counts what is allocated
    payload.resize(have + grow);
    auto reading = read_exact(std::span(payload).subspan(have), deadline);
    CO_TRY(co_await std::move(reading));
  }
  co_return Status();
}

Task<Status> TcpConnection::discard(size_t bytes, TimePoint deadline) {
  std::vector<std::byte> scratch(std::min(bytes, kDiscardChunkBytes));
  while (bytes > 0) {
    std::span<std::byte> piece = std::span(scratch).first(std::min(bytes, scratch.size()));
    auto reading = read_exact(piece, deadline);
    CO_TRY(co_await std::move(reading));
    bytes -= piece.size();
  }
  co_return Status();
}

Task<Status> TcpConnection::send_bulk(BulkMessage message, std::span<const std::byte> tail) {
  if (!failed_.ok()) co_return failed_;
  std::vector<std::byte> descriptor = encode(message);
  FrameHeader header;
  header.kind = FrameKind::kData;
  HeaderBytes head = seal_bulk_frame(header, descriptor, tail.size());
  iovec parts[3] = {{head.data(), head.size()},
                    {descriptor.data(), descriptor.size()},
                    {const_cast<std::byte*>(tail.data()), tail.size()}};
  auto sending = send_frame_parts(std::span(parts, tail.empty() ? 2 : 3));
  co_return co_await std::move(sending);
}

// Reads a kData frame's descriptor, then moves its bulk bytes straight between the socket
// and their destination: registered memory for requests, the caller's buffer for replies.
Task<Status> TcpConnection::serve_bulk(FrameHeader header, TimePoint deadline) {
  std::byte length_bytes[4];
  auto reading = read_exact(length_bytes, deadline);
  CO_TRY(co_await std::move(reading));
  uint32_t body = 0;
  for (int i = 0; i < 4; ++i) body |= uint32_t(length_bytes[i]) << (8 * i);
  if (body > kBulkDescriptorBytesMax || body + 4 > header.payload_length)
    co_return Status(StatusCode::kProtocolError, "bulk descriptor length out of bounds");
  std::vector<std::byte> descriptor(4 + body);
  std::memcpy(descriptor.data(), length_bytes, 4);
  auto rest = read_exact(std::span(descriptor).subspan(4), deadline);
  CO_TRY(co_await std::move(rest));
  CO_TRY(verify_bulk_descriptor(header, descriptor));
  CO_TRY_ASSIGN(BulkMessage message, decode<BulkMessage>(descriptor));
  size_t tail = header.payload_length - descriptor.size();
  switch (message.op) {
    case kReadRequest:
    case kWriteRequest: {
      BulkMessage reply{
          message.op == kReadRequest ? kReadReply : kWriteAck, message.transfer, {}, Status()};
      // The region stays pinned while its bytes land (write) or leave (read): its owner's
      // deregister() waits for that, or fails the transfer through the pin's token.
      CancelToken reader = co_await current_token();
      RegionPin pin;  // empty unless the peer may touch the range
      if (Result<RegionPin> target = transport_->pin(message.remote, reader); !target.ok())
        reply.status = target.status();
      else if (message.op == kWriteRequest && tail != target->bytes().size())
        reply.status = Status(StatusCode::kInvalidArgument, "write length differs from range");
      else
        pin = std::move(*target);
      std::span<const std::byte> out;
      if (pin && message.op == kReadRequest) {
        out = pin.bytes();
      } else if (pin) {
        auto landing = pin.guard(read_exact(pin.bytes(), deadline));
        CO_TRY(co_await std::move(landing));
        pin = RegionPin();  // landed: the ack below no longer needs the region
        tail = 0;
      }
      if (tail > 0) {
        auto skipping = discard(tail, deadline);
        CO_TRY(co_await std::move(skipping));
      }
      auto replying = pin.guard(send_bulk(std::move(reply), out));
      co_return co_await std::move(replying);
    }
    case kReadReply:
    case kWriteAck: {
      auto it = transfers_.find(message.transfer);
      Transfer* transfer = it == transfers_.end() ? nullptr : it->second;
      if (transfer) transfers_.erase(it);
      if (transfer && message.status.ok() && message.op == kReadReply &&
          tail == transfer->into.size() && tail > 0) {
        transfer->receiving = true;
        auto landing = read_exact(transfer->into, deadline);
        Status landed = co_await std::move(landing);
        if (landed.ok() && transport_->options().received_bulk_hook)
          transport_->options().received_bulk_hook(transfer->into);
        transfer->status = landed;
        transfer->done.set();
        co_return landed;
      }
      if (tail > 0) {  // its caller gave up, or the reply is malformed: skip the bytes
        auto skipping = discard(tail, deadline);
        CO_TRY(co_await std::move(skipping));
      }
      if (transfer) {
        transfer->status = message.status;
        if (transfer->status.ok() && message.op == kReadReply && !transfer->into.empty())
          transfer->status = Status(StatusCode::kProtocolError, "read reply of wrong length");
        transfer->done.set();
      }
      co_return Status();
    }
    default:
      co_return Status(StatusCode::kProtocolError, fmt::format("unknown bulk op {}", message.op));
  }
}

Task<Status> TcpConnection::bulk(uint8_t op, RemoteBuffer remote, std::span<std::byte> in,
                                 std::span<const std::byte> out, TimePoint deadline) {
  if (!failed_.ok()) co_return failed_;
  Status slot = co_await bulk_slots_.acquire(1, deadline);
  if (!slot.ok()) co_return slot;
  Transfer transfer;
  transfer.into = in;
  uint64_t id = next_transfer_++;
  transfers_[id] = &transfer;
  auto sending = send_bulk(BulkMessage{op, id, remote, Status()}, out);
  Status status = co_await std::move(sending);
  if (status.ok()) {
    status = co_await transfer.done.wait(deadline);
    if (status.ok()) status = transfer.status;
  }
  transfers_.erase(id);  // a late reply finds nothing and is skipped
  if (transfer.receiving && !transfer.done.is_set()) {
    // The reader is writing into our buffer right now: wait until it has finished.
    Status landed = co_await transfer.done.wait_uncancellable();
    MICA_ASSERT(landed.ok());
  }
  bulk_slots_.release(1);
  co_return status;
}

Task<Status> TcpConnection::read_from(RemoteBuffer remote, std::span<std::byte> local,
                                      TimePoint deadline) {
  if (local.size() != remote.length)
    co_return Status(StatusCode::kInvalidArgument, "local and remote lengths differ");
  auto t = bulk(kReadRequest, remote, local, {}, deadline);
  co_return co_await std::move(t);
}

Task<Status> TcpConnection::write_to(RemoteBuffer remote, std::span<const std::byte> local,
                                     TimePoint deadline) {
  if (local.size() != remote.length)
    co_return Status(StatusCode::kInvalidArgument, "local and remote lengths differ");
  auto t = bulk(kWriteRequest, remote, {}, local, deadline);
  co_return co_await std::move(t);
}

Task<void> TcpConnection::close() {
  fail(Status(StatusCode::kClosed, "connection closed"));
  if (socket_.is_open()) {
    // Shut down first: a task still blocked in recv on this socket then sees end of stream.
    Status down = co_await socket_.shutdown(SHUT_RDWR);
    (void)down;
  }
}

}  // namespace mica::net
