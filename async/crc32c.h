// CRC32C (Castagnoli), the checksum of every Mica frame and chunk block.
//
// Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at start-up) and a
// table otherwise; both give identical results (RFC 3720 test vectors in the tests).
// crc32c_extend continues a checksum over more bytes; crc32c_combine joins the checksums
// of two adjacent pieces without their bytes. Pure functions: thread-safe, never suspend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace mica {

// Continues `crc` (the value returned for the preceding bytes; 0 to start) over data.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t length);

inline uint32_t crc32c(const void* data, size_t length) {
  return crc32c_extend(0, data, length);
}
inline uint32_t crc32c(std::span<const std::byte> data) {
  return crc32c_extend(0, data.data(), data.size());
}

// The CRC of A followed by B, from crc(A), crc(B) and B's length.
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t length_b);

// True when the hardware instruction is in use (for benchmarks and logs).
bool crc32c_is_hardware();
// The table implementation alone, so tests can hold it against the instruction.
uint32_t crc32c_extend_table(uint32_t crc, const void* data, size_t length);

}  // namespace mica
