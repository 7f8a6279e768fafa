// The pure part of an RDMA connection's receive path: what arrives in a receive ring
// slot — immediate data and the bytes of a frame fragment — turned into credits, frames
// and errors, without verbs or I/O, so it can be fuzzed (tests/fuzz/rdma_receive_fuzz.cc).
//
// Memory is bounded by what arrived, never by what a header announces: a frame's payload
// grows as its fragments come in, and before the first fragment of a frame is taken, the
// payload length it announces is reserved from two ByteBudgets — the connection's and the
// transport's. When either is short, the slot is held (not reposted, so its credit does
// not go back and the peer stops sending) together with every slot after it, and taken
// once consumed frames give bytes back. A reservation lasts until its frame leaves the
// receiver (pop_frame) or the receiver is destroyed.
//
// Ownership: RdmaReceiver belongs to one connection and borrows the two budgets, which
// must outlive it; the ring bytes it reads through `slot_bytes` stay valid while a slot is
// held. Thread rule: one executor; nothing here suspends.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "net/connection.h"
#include "net/frame.h"

namespace mica::net {

// Immediate data of a ring message: 8-bit message type, 24-bit credits returned.
struct ImmData {
  uint8_t type = 0;
  uint32_t credits = 0;
};
inline constexpr uint32_t kImmCreditMask = 0xffffff;
inline ImmData decode_imm(uint32_t host_order) {
  return ImmData{static_cast<uint8_t>(host_order >> 24), host_order & kImmCreditMask};
}
inline uint32_t encode_imm(uint8_t type, uint32_t credits) {
  return (uint32_t(type) << 24) | (credits & kImmCreditMask);
}

// Bytes reserved for received payload not yet consumed, against a limit. The counter is
// the observable (reserved(), refusals()); it never passes bytes_max.
class ByteBudget {
 public:
  explicit ByteBudget(uint64_t bytes_max) : bytes_max_(bytes_max) {}
  bool try_reserve(uint64_t bytes);
  void release(uint64_t bytes);
  uint64_t reserved() const { return reserved_; }
  uint64_t bytes_max() const { return bytes_max_; }
  uint64_t refusals() const { return refusals_; }

 private:
  uint64_t bytes_max_;
  uint64_t reserved_ = 0;
  uint64_t refusals_ = 0;
};

// Fragments of the frame stream (header, then payload, cut at slot boundaries, never
// interleaved) back into verified frames.
class FrameAssembler {
 public:
  explicit FrameAssembler(uint32_t frame_bytes_max) : frame_bytes_max_(frame_bytes_max) {}
  bool between_frames() const { return !assembling_; }
  // Holds the next `frames` frames (kFramesUntilLifted: all until called again; 0 lifts
  // it) to frame_bytes_max, refused by peek_header, before anything is reserved.
  void limit(uint32_t frames, uint32_t frame_bytes_max) {
    limited_frames_ = frames;
    limited_frame_bytes_max_ = frame_bytes_max;
  }
  // The header that a fragment arriving between frames starts its frame with.
  Result<FrameHeader> peek_header(std::span<const std::byte> fragment) const;
  // Takes the next fragment; returns the frame it completes, if any (CRC verified).
  Result<std::optional<Frame>> take(std::span<const std::byte> fragment);

 private:
  uint32_t frame_bytes_max_;
  uint32_t limited_frames_ = 0;
  uint32_t limited_frame_bytes_max_ = 0;
  bool assembling_ = false;
  Frame partial_;
};

class RdmaReceiver {
 public:
  // slot_bytes(slot, length): the bytes that arrived in a receive slot.
  using SlotBytes = std::function<std::span<const std::byte>(uint32_t slot, uint32_t length)>;
  RdmaReceiver(uint32_t frame_bytes_max, ByteBudget* connection, ByteBudget* transport,
               SlotBytes slot_bytes);
  ~RdmaReceiver();
  RdmaReceiver(const RdmaReceiver&) = delete;
  RdmaReceiver& operator=(const RdmaReceiver&) = delete;

  // A data fragment arrived in `slot`. Appends to `freed` every slot whose bytes were taken
  // (the caller reposts it and owes its credit), in arrival order. An error is a protocol
  // violation: the connection must fail.
  Status on_data(uint32_t slot, uint32_t length, std::vector<uint32_t>* freed);
  // Budget came back somewhere: takes what held slots it now can, as on_data.
  Status retry(std::vector<uint32_t>* freed);

  bool holding() const { return !held_.empty(); }
  size_t frames_ready() const { return frames_.size(); }
  // Payload bytes of the complete frames waiting for pop_frame.
  uint64_t queued_bytes() const { return queued_bytes_; }
  // The oldest complete frame; its reservation goes back to both budgets.
  std::optional<Frame> pop_frame();
  uint64_t reserved_bytes() const { return reserved_; }
  // FrameAssembler::limit, for frames not yet started (Connection::limit_incoming_frames).
  void limit_frames(uint32_t frames, uint32_t frame_bytes_max) {
    assembler_.limit(frames, frame_bytes_max);
  }

 private:
  struct Held {
    uint32_t slot;
    uint32_t length;
  };
  // Takes one fragment if its frame's bytes are (or can now be) reserved; false: hold it.
  Result<bool> try_take(const Held& fragment);

  FrameAssembler assembler_;
  ByteBudget* connection_;
  ByteBudget* transport_;
  SlotBytes slot_bytes_;
  std::deque<Held> held_;
  std::deque<Frame> frames_;
  uint64_t reserved_ = 0;  // announced payload of the partial frame and the queued ones
  uint64_t queued_bytes_ = 0;
};

}  // namespace mica::net
