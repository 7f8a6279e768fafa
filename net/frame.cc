#include "net/frame.h"

#include <cstring>

#include "async/crc32c.h"

namespace mica::net {

namespace {
uint32_t frame_crc(FrameHeader header, std::span<const std::byte> payload) {
  header.crc = 0;
  uint32_t crc = crc32c(&header, sizeof header);
  return crc32c_extend(crc, payload.data(), payload.size());
}
}  // namespace

HeaderBytes seal_frame(FrameHeader header, std::span<const std::byte> payload) {
  MICA_ASSERT(payload.size() <= UINT32_MAX);
  header.payload_length = static_cast<uint32_t>(payload.size());
  header.crc = frame_crc(header, payload);
  HeaderBytes bytes;
  std::memcpy(bytes.data(), &header, sizeof header);
  return bytes;
}

Result<FrameHeader> parse_header(std::span<const std::byte, kFrameHeaderBytes> bytes,
                                 uint32_t frame_bytes_max) {
  FrameHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);
  auto bad = [](std::string why) { return Status(StatusCode::kProtocolError, std::move(why)); };
  if (h.magic != kFrameMagic) return bad(fmt::format("bad frame magic {:#x}", h.magic));
  if (h.version != kProtocolVersion)
    return bad(fmt::format("unsupported protocol version {}", h.version));
  auto kind = static_cast<uint8_t>(h.kind);
  if (kind < 1 || kind > kFrameKindMax) return bad(fmt::format("unknown frame kind {}", kind));
  bool bulk_flag = (h.flags & kFrameFlagBulkTail) != 0;
  if (bulk_flag != (h.kind == FrameKind::kData))
    return bad("the bulk-tail flag belongs to data frames and only to them");
  if (uint64_t(h.payload_length) + kFrameHeaderBytes > frame_bytes_max)
    return bad(fmt::format("frame of {} bytes exceeds the limit of {}",
                           uint64_t(h.payload_length) + kFrameHeaderBytes, frame_bytes_max));
  return h;
}

HeaderBytes seal_bulk_frame(FrameHeader header, std::span<const std::byte> descriptor,
                            size_t tail_bytes) {
  MICA_ASSERT(header.kind == FrameKind::kData);
  MICA_ASSERT(descriptor.size() + tail_bytes <= UINT32_MAX);
  header.flags |= kFrameFlagBulkTail;
  header.payload_length = static_cast<uint32_t>(descriptor.size() + tail_bytes);
  header.crc = frame_crc(header, descriptor);
  HeaderBytes bytes;
  std::memcpy(bytes.data(), &header, sizeof header);
  return bytes;
}

Status verify_bulk_descriptor(const FrameHeader& header, std::span<const std::byte> descriptor) {
  if (frame_crc(header, descriptor) != header.crc)
    return Status(StatusCode::kProtocolError, "frame checksum mismatch");
  return Status();
}

Status verify_payload(const FrameHeader& header, std::span<const std::byte> payload) {
  MICA_ASSERT(payload.size() == header.payload_length);
  if (frame_crc(header, payload) != header.crc)
    return Status(StatusCode::kProtocolError, "frame checksum mismatch");
  return Status();
}

}  // namespace mica::net
