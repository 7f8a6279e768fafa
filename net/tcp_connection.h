// TcpConnection: one TCP stream carrying frames and TCP's form of one-sided transfers.
// Created by TcpTransport (connect or accept), which owns it; see tcp_transport.h for the
// contract. Runs on the transport's executor only; every call but peer() may suspend, and
// a connection that failed once (fail()) refuses everything after with that status.
#pragma once

#include <map>

#include "async/socket.h"
#include "async/sync.h"
#include "net/tcp_transport.h"

namespace mica::net {

// The descriptor at the head of every kData payload; bulk bytes follow it.
struct BulkMessage {
  uint8_t op = 0;  // BulkOp in tcp_connection.cc
  uint64_t transfer = 0;
  RemoteBuffer remote;
  Status status;
  MICA_FIELDS(BulkMessage, op, transfer, remote, status)
};

class TcpConnection final : public Connection {
 public:
  TcpConnection(TcpTransport* transport, Socket socket, std::string peer);
  ~TcpConnection() override;

  Task<Status> send(FrameHeader header, std::span<const std::byte> payload) override;
  Task<Result<Frame>> next_frame() override;
  Task<Status> read_from(RemoteBuffer remote, std::span<std::byte> local,
                         TimePoint deadline) override;
  Task<Status> write_to(RemoteBuffer remote, std::span<const std::byte> local,
                        TimePoint deadline) override;
  Task<void> close() override;
  std::string peer() const override { return peer_; }
  void refuse_peer_transfers(bool refuse) override { refuse_peer_transfers_ = refuse; }
  void limit_incoming_frames(uint32_t frames, uint32_t frame_bytes_max) override {
    limited_frames_ = frames;
    limited_frame_bytes_max_ = frame_bytes_max;
  }

 private:
  struct Transfer;
  Task<Status> send_parts(std::span<iovec> parts);
  // Sends one whole frame's parts under the send lock; a failure fails the connection.
  Task<Status> send_frame_parts(std::span<iovec> parts);
  Task<Status> read_exact(std::span<std::byte> out, TimePoint deadline);
  Task<Status> fill(TimePoint deadline);
  Task<Status> discard(size_t bytes, TimePoint deadline);
  Task<Status> read_frame(FrameHeader header, TimePoint deadline, Frame* frame);
  Task<Status> serve_bulk(FrameHeader header, TimePoint deadline);
  Task<Status> send_bulk(BulkMessage message, std::span<const std::byte> tail);
  Task<Status> bulk(uint8_t op, RemoteBuffer remote, std::span<std::byte> in,
                    std::span<const std::byte> out, TimePoint deadline);
  void fail(Status why);
  // The largest frame the peer may send now (limit_incoming_frames).
  uint32_t incoming_frame_bytes_max() const;

  TcpTransport* transport_;
  Socket socket_;
  std::string peer_;
  Status failed_;
  Mutex send_lock_;
  Semaphore bulk_slots_;
  PayloadBudget budget_;  // this connection's share of the transport's payload budget
  std::vector<std::byte> buffer_;
  size_t buffer_begin_ = 0;
  size_t buffer_end_ = 0;
  uint64_t next_transfer_ = 1;
  bool refuse_peer_transfers_ = false;
  uint32_t limited_frames_ = 0;  // frames still held to limited_frame_bytes_max_
  uint32_t limited_frame_bytes_max_ = 0;
  std::map<uint64_t, Transfer*> transfers_;
};

}  // namespace mica::net
