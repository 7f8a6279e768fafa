// The pure receive path of an RDMA connection (see rdma_receive.h).
#include "net/rdma/rdma_receive.h"

#include <algorithm>
#include <cstring>

namespace mica::net {

bool ByteBudget::try_reserve(uint64_t bytes) {
  if (bytes > bytes_max_ - reserved_) {
    refusals_++;
    return false;
  }
  reserved_ += bytes;
  return true;
}

void ByteBudget::release(uint64_t bytes) {
  MICA_ASSERT(bytes <= reserved_);
  reserved_ -= bytes;
}

Result<FrameHeader> FrameAssembler::peek_header(std::span<const std::byte> fragment) const {
  MICA_ASSERT(!assembling_);
  if (fragment.size() < kFrameHeaderBytes)
    return Status(StatusCode::kProtocolError, "fragment shorter than a frame header");
  uint32_t limit = frame_bytes_max_;
  if (limited_frames_ > 0) limit = std::min(limit, limited_frame_bytes_max_);
  return parse_header(fragment.first<kFrameHeaderBytes>(), limit);
}

Result<std::optional<Frame>> FrameAssembler::take(std::span<const std::byte> fragment) {
  if (!assembling_) {
    Result<FrameHeader> header = peek_header(fragment);
    if (!header.ok()) return header.status();
    partial_ = Frame{};
    partial_.header = *header;
    assembling_ = true;
    if (limited_frames_ > 0 && limited_frames_ != kFramesUntilLifted) limited_frames_--;
    fragment = fragment.subspan(kFrameHeaderBytes);
  }
  // Grows with what arrived: an announced length alone allocates nothing.
  if (partial_.payload.size() + fragment.size() > partial_.header.payload_length)
    return Status(StatusCode::kProtocolError, "fragment runs past its frame");
  partial_.payload.insert(partial_.payload.end(), fragment.begin(), fragment.end());
  if (partial_.payload.size() < partial_.header.payload_length) return std::optional<Frame>();
  assembling_ = false;
  Status verified = verify_payload(partial_.header, partial_.payload);
  if (!verified.ok()) return verified;
  return std::optional<Frame>(std::move(partial_));
}

RdmaReceiver::RdmaReceiver(uint32_t frame_bytes_max, ByteBudget* connection, ByteBudget* transport,
                           SlotBytes slot_bytes)
    : assembler_(frame_bytes_max),
      connection_(connection),
      transport_(transport),
      slot_bytes_(std::move(slot_bytes)) {}

RdmaReceiver::~RdmaReceiver() {
  connection_->release(reserved_);
  transport_->release(reserved_);
}

Result<bool> RdmaReceiver::try_take(const Held& fragment) {
  std::span<const std::byte> bytes = slot_bytes_(fragment.slot, fragment.length);
  if (assembler_.between_frames()) {
    Result<FrameHeader> header = assembler_.peek_header(bytes);
    if (!header.ok()) return header.status();
    uint64_t announced = header->payload_length;
    if (!connection_->try_reserve(announced)) return false;
    if (!transport_->try_reserve(announced)) {
      connection_->release(announced);
      return false;
    }
    reserved_ += announced;
  }
  Result<std::optional<Frame>> taken = assembler_.take(bytes);
  if (!taken.ok()) return taken.status();
  if (taken->has_value()) {
    queued_bytes_ += (*taken)->payload.size();
    frames_.push_back(std::move(**taken));
  }
  return true;
}

Status RdmaReceiver::on_data(uint32_t slot, uint32_t length, std::vector<uint32_t>* freed) {
  held_.push_back(Held{slot, length});  // behind any held one: fragments stay in order
  return retry(freed);
}

Status RdmaReceiver::retry(std::vector<uint32_t>* freed) {
  while (!held_.empty()) {
    Result<bool> taken = try_take(held_.front());
    if (!taken.ok()) return taken.status();
    if (!*taken) break;
    freed->push_back(held_.front().slot);
    held_.pop_front();
  }
  return Status();
}

std::optional<Frame> RdmaReceiver::pop_frame() {
  if (frames_.empty()) return std::nullopt;
  Frame frame = std::move(frames_.front());
  frames_.pop_front();
  uint64_t bytes = frame.header.payload_length;
  queued_bytes_ -= bytes;
  connection_->release(bytes);
  transport_->release(bytes);
  reserved_ -= bytes;
  return frame;
}

}  // namespace mica::net
