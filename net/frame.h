// Frames: the unit every transport carries.
//
// A frame is a 40-byte header and a payload. The header names what the frame is (request,
// response, cancel, data, auth), which service and method, the request id that pairs a response
// with its request, a time budget (requests carry how long the caller will still wait, in
// microseconds, so clocks need not agree), the payload length and a CRC32C over header and
// payload. Decoding checks magic, version, kind, the configured maximum frame size and the
// checksum; any violation is kProtocolError and the connection that sent it is closed.
// Pure functions: thread-safe, never suspend.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "async/status.h"

namespace mica::net {

inline constexpr uint32_t kFrameMagic = 0x4143494d;  // "MICA" little-endian
inline constexpr uint8_t kProtocolVersion = 1;
inline constexpr size_t kFrameHeaderBytes = 40;

enum class FrameKind : uint8_t {
  kRequest = 1,
  kResponse = 2,
  kCancel = 3,  // the caller gave up on request_id; the server cancels its handler
  kData = 4,    // a bulk transfer (TCP's stand-in for one-sided RDMA operations)
  kAuth = 5,    // a step of the cluster-token handshake (net/authenticated_transport.h)
};
inline constexpr uint8_t kFrameKindMax = 5;

struct FrameHeader {
  uint32_t magic = kFrameMagic;
  uint8_t version = kProtocolVersion;
  FrameKind kind = FrameKind::kRequest;
  uint16_t flags = 0;
  uint16_t service = 0;
  uint16_t method = 0;
  uint16_t status = 0;  // responses: a StatusCode, 0 for ok
  uint16_t reserved = 0;
  uint64_t request_id = 0;
  uint32_t timeout_us = 0;  // requests: budget left when sent; 0 means no deadline
  uint32_t payload_length = 0;
  uint32_t crc = 0;
  uint32_t reserved2 = 0;
};
// The in-memory struct mirrors the wire layout (little-endian hosts only).
static_assert(sizeof(FrameHeader) == kFrameHeaderBytes);
static_assert(std::endian::native == std::endian::little);

using HeaderBytes = std::array<std::byte, kFrameHeaderBytes>;

// kData frames carry a descriptor (a message) and then bulk bytes. Their CRC covers the
// header and the descriptor only; the bulk bytes carry no checksum here (as RDMA transfers
// carry none in 3FS), since checksumming them too would halve one-sided throughput. What
// protects them end to end today: a chunk write carries the writer's CRC32C of its payload
// and the chunk engine verifies the bytes it received against it before storing anything
// (ChunkEngine::write, kChecksumMismatch), and read_with_crc gives a reader the CRC of what
// it returns. Bulk bytes that no such check covers are unprotected. All kData frames, and
// only they, carry this flag.
inline constexpr uint16_t kFrameFlagBulkTail = 1;
// The largest descriptor a kData frame may carry.
inline constexpr uint32_t kBulkDescriptorBytesMax = 4096;

// Fills in payload_length and crc and returns the wire bytes of the header.
HeaderBytes seal_frame(FrameHeader header, std::span<const std::byte> payload);
// Checks the fixed fields and the size limit; the CRC is checked by verify_payload once
// the payload is in.
Result<FrameHeader> parse_header(std::span<const std::byte, kFrameHeaderBytes> bytes,
                                 uint32_t frame_bytes_max);
Status verify_payload(const FrameHeader& header, std::span<const std::byte> payload);

// The kData forms: payload = descriptor + tail_bytes of bulk data.
HeaderBytes seal_bulk_frame(FrameHeader header, std::span<const std::byte> descriptor,
                            size_t tail_bytes);
Status verify_bulk_descriptor(const FrameHeader& header, std::span<const std::byte> descriptor);

}  // namespace mica::net
