#include "net/tcp_connection.h"

#include <cstring>

namespace mica::net {

namespace {

constexpr size_t kReadBufferBytes = 64 << 10;
constexpr size_t kDirectReadBytesMin = 32 << 10;  // larger reads skip the buffer

enum BulkOp : uint8_t {
  kReadRequest = 1,
  kReadReply = 2,
  kWriteRequest = 3,
  kWriteAck = 4,
};

// The head of every kData payload; a read reply or write request carries the bytes after it.
struct BulkMessage {
  uint8_t op = 0;
  uint64_t transfer = 0;
  RemoteBuffer remote;
  Status status;
  MICA_FIELDS(BulkMessage, op, transfer, remote, status)
};

}  // namespace

// One outstanding read_from / write_to, living in the caller's frame.
struct TcpConnection::Transfer {
  std::span<std::byte> into;  // read_from: where the reply's bytes go
  Status status;
  Event done;
};

TcpConnection::TcpConnection(TcpTransport* transport, Socket socket, std::string peer)
    : transport_(transport),
      socket_(std::move(socket)),
      peer_(std::move(peer)),
      bulk_slots_(transport->limits().bulk_in_flight_max),
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
  // sendmsg may take part of the data; advance through the iovecs until all is out.
  size_t index = 0;
  while (index < parts.size()) {
    msghdr message{};
    message.msg_iov = parts.data() + index;
    message.msg_iovlen = parts.size() - index;
    Result<size_t> sent = co_await socket_.sendmsg(&message);
    if (!sent.ok()) co_return sent.status();
    size_t n = *sent;
    if (n == 0) co_return Status(StatusCode::kConnectionReset, "send made no progress");
    while (index < parts.size() && n >= parts[index].iov_len) n -= parts[index++].iov_len;
    if (index < parts.size()) {
      parts[index].iov_base = static_cast<std::byte*>(parts[index].iov_base) + n;
      parts[index].iov_len -= n;
    }
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
  Status locked = co_await send_lock_.lock();
  if (!locked.ok()) co_return locked;
  MutexGuard guard(send_lock_);
  if (!failed_.ok()) co_return failed_;
  auto sending = send_parts(std::span(parts, payload.empty() ? 1 : 2));
  Status sent = co_await std::move(sending);
  // A partly sent frame leaves the stream unusable: fail the connection, not just the call.
  if (!sent.ok()) fail(sent);
  co_return sent;
}

Task<Status> TcpConnection::fill() {
  if (buffer_begin_ == buffer_end_) buffer_begin_ = buffer_end_ = 0;
  Result<size_t> n = co_await socket_.recv(std::span(buffer_).subspan(buffer_end_));
  if (!n.ok()) co_return n.status();
  if (*n == 0)
    co_return Status(StatusCode::kClosed, fmt::format("{} closed the connection", peer_));
  buffer_end_ += *n;
  co_return Status();
}

Task<Status> TcpConnection::read_exact(std::span<std::byte> out) {
  size_t buffered = std::min(out.size(), buffer_end_ - buffer_begin_);
  std::memcpy(out.data(), buffer_.data() + buffer_begin_, buffered);
  buffer_begin_ += buffered;
  out = out.subspan(buffered);
  if (out.size() >= kDirectReadBytesMin) {
    auto direct = socket_.recv_exact(out);
    co_return co_await std::move(direct);
  }
  while (!out.empty()) {
    if (buffer_begin_ == buffer_end_ || buffer_end_ == buffer_.size()) {
      if (buffer_begin_ > 0) {  // keep unread bytes, make room behind them
        std::memmove(buffer_.data(), buffer_.data() + buffer_begin_, buffer_end_ - buffer_begin_);
        buffer_end_ -= buffer_begin_;
        buffer_begin_ = 0;
      }
      auto more = fill();
      CO_TRY(co_await std::move(more));
    }
    size_t n = std::min(out.size(), buffer_end_ - buffer_begin_);
    std::memcpy(out.data(), buffer_.data() + buffer_begin_, n);
    buffer_begin_ += n;
    out = out.subspan(n);
  }
  co_return Status();
}

Task<Result<Frame>> TcpConnection::next_frame() {
  for (;;) {
    if (!failed_.ok()) co_return failed_;
    HeaderBytes head;
    auto reading = read_exact(head);
    Status got = co_await std::move(reading);
    if (got.ok()) {
      Result<FrameHeader> header = parse_header(head, transport_->limits().frame_bytes_max);
      if (!header.ok()) {
        got = header.status();
      } else {
        Frame frame{*header, std::vector<std::byte>(header->payload_length)};
        auto payload = read_exact(frame.payload);
        got = co_await std::move(payload);
        if (got.ok()) got = verify_payload(frame.header, frame.payload);
        if (got.ok() && frame.header.kind != FrameKind::kData) co_return std::move(frame);
        if (got.ok()) {
          auto serving = serve_bulk(std::move(frame));
          got = co_await std::move(serving);
        }
      }
    }
    if (!got.ok()) {
      fail(got);
      co_return got;
    }
  }
}

Task<Status> TcpConnection::serve_bulk(Frame frame) {
  size_t used = 0;
  Result<BulkMessage> message = decode_prefix<BulkMessage>(frame.payload, &used);
  if (!message.ok()) co_return message.status();
  std::span<const std::byte> data = std::span(frame.payload).subspan(used);
  BulkMessage reply;
  reply.transfer = message->transfer;
  switch (message->op) {
    case kReadRequest:
    case kWriteRequest: {
      reply.op = message->op == kReadRequest ? kReadReply : kWriteAck;
      Result<std::span<std::byte>> target = transport_->resolve(message->remote);
      std::span<const std::byte> out;
      if (!target.ok()) {
        reply.status = target.status();
      } else if (message->op == kReadRequest) {
        out = *target;
      } else if (data.size() != target->size()) {
        reply.status = Status(StatusCode::kInvalidArgument, "write length differs from range");
      } else {
        std::memcpy(target->data(), data.data(), data.size());
      }
      std::vector<std::byte> payload = encode(reply);
      payload.insert(payload.end(), out.begin(), out.end());
      FrameHeader header;
      header.kind = FrameKind::kData;
      auto sending = send(header, payload);
      co_return co_await std::move(sending);
    }
    case kReadReply:
    case kWriteAck: {
      auto it = transfers_.find(message->transfer);
      if (it == transfers_.end()) co_return Status();  // its caller gave up (deadline)
      Transfer* transfer = it->second;
      transfers_.erase(it);
      transfer->status = message->status;
      if (transfer->status.ok() && message->op == kReadReply) {
        if (data.size() != transfer->into.size())
          transfer->status = Status(StatusCode::kProtocolError, "read reply of wrong length");
        else
          std::memcpy(transfer->into.data(), data.data(), data.size());
      }
      transfer->done.set();
      co_return Status();
    }
    default:
      co_return Status(StatusCode::kProtocolError, fmt::format("unknown bulk op {}", message->op));
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
  BulkMessage request{op, id, remote, Status()};
  std::vector<std::byte> payload = encode(request);
  payload.insert(payload.end(), out.begin(), out.end());
  FrameHeader header;
  header.kind = FrameKind::kData;
  auto sending = send(header, payload);
  Status status = co_await std::move(sending);
  if (status.ok()) {
    status = co_await transfer.done.wait(deadline);
    if (status.ok()) status = transfer.status;
  }
  transfers_.erase(id);  // a late reply finds nothing and is dropped
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
