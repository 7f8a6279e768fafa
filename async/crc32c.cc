#include "async/crc32c.h"

#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace mica {
namespace {

constexpr uint32_t kPolynomial = 0x82F63B78;  // reflected Castagnoli polynomial

struct Table {
  uint32_t entries[8][256];
  constexpr Table() : entries{} {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t crc = i;
      for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? kPolynomial : 0);
      entries[0][i] = crc;
    }
    // Slicing-by-8: entries[k][i] is the CRC of byte i followed by k zero bytes.
    for (uint32_t i = 0; i < 256; ++i)
      for (int k = 1; k < 8; ++k)
        entries[k][i] = (entries[k - 1][i] >> 8) ^ entries[0][entries[k - 1][i] & 0xff];
  }
};
constexpr Table kTable;

uint32_t extend_software(uint32_t crc, const uint8_t* p, size_t n) {
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    word ^= crc;
    crc = kTable.entries[7][word & 0xff] ^ kTable.entries[6][(word >> 8) & 0xff] ^
          kTable.entries[5][(word >> 16) & 0xff] ^ kTable.entries[4][(word >> 24) & 0xff] ^
          kTable.entries[3][(word >> 32) & 0xff] ^ kTable.entries[2][(word >> 40) & 0xff] ^
          kTable.entries[1][(word >> 48) & 0xff] ^ kTable.entries[0][word >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ kTable.entries[0][(crc ^ *p++) & 0xff];
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t extend_hardware(uint32_t crc, const uint8_t* p,
                                                           size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}
const bool kHardware = __builtin_cpu_supports("sse4.2");
#else
const bool kHardware = false;
#endif

// GF(2) matrix helpers for combine (the zlib method): multiply a 32x32 matrix by a vector.
uint32_t gf2_times(const uint32_t* matrix, uint32_t vector) {
  uint32_t sum = 0;
  for (int i = 0; vector; ++i, vector >>= 1)
    if (vector & 1) sum ^= matrix[i];
  return sum;
}

void gf2_square(uint32_t* square, const uint32_t* matrix) {
  for (int n = 0; n < 32; ++n) square[n] = gf2_times(matrix, matrix[n]);
}

}  // namespace

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t length) {
  auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
#if defined(__x86_64__)
  if (kHardware) return ~extend_hardware(crc, p, length);
#endif
  return ~extend_software(crc, p, length);
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t length_b) {
  if (length_b == 0) return crc_a;
  uint32_t even[32], odd[32];
  // The operator for one zero bit, then squared to two, four, ... zero bits.
  odd[0] = kPolynomial;
  for (int n = 1, row = 1; n < 32; ++n, row <<= 1) odd[n] = row;
  gf2_square(even, odd);  // 2 zero bits
  gf2_square(odd, even);  // 4 zero bits
  // Apply length_b zero bytes to crc_a, one bit of length_b per squaring.
  do {
    gf2_square(even, odd);
    if (length_b & 1) crc_a = gf2_times(even, crc_a);
    length_b >>= 1;
    if (!length_b) break;
    gf2_square(odd, even);
    if (length_b & 1) crc_a = gf2_times(odd, crc_a);
    length_b >>= 1;
  } while (length_b);
  return crc_a ^ crc_b;
}

bool crc32c_is_hardware() { return kHardware; }

uint32_t crc32c_extend_table(uint32_t crc, const void* data, size_t length) {
  return ~extend_software(~crc, static_cast<const uint8_t*>(data), length);
}

}  // namespace mica
