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

// Polynomial arithmetic modulo the CRC polynomial (bit-reflected), for combine: a CRC
// extended by n zero bytes is the CRC multiplied by x^(8n) mod P.
constexpr uint32_t multiply_mod_p(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t m = 1u << 31; m != 0; m >>= 1) {
    if (a & m) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kPolynomial : b >> 1;
  }
  return product;
}

// kPowers[k] = x^(2^k) mod P, so x^(8n) is a product over the set bits of 8n.
struct Powers {
  uint32_t values[64] = {};
  constexpr Powers() {
    values[0] = 1u << 30;  // x^1 (bit-reflected)
    for (int k = 1; k < 64; ++k) values[k] = multiply_mod_p(values[k - 1], values[k - 1]);
  }
};
constexpr Powers kPowers;

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
  // crc(A ‖ B) = crc(A) · x^(8·|B|) mod P  ⊕  crc(B); at most 64 multiplications.
  if (length_b == 0) return crc_a;  // B is empty, whatever crc_b says
  uint32_t shift = 1u << 31;        // x^0
  uint64_t bits = uint64_t(length_b) * 8;
  for (int k = 0; bits != 0; ++k, bits >>= 1)
    if (bits & 1) shift = multiply_mod_p(kPowers.values[k], shift);
  return multiply_mod_p(shift, crc_a) ^ crc_b;
}

bool crc32c_is_hardware() {
  return kHardware;
}

uint32_t crc32c_extend_table(uint32_t crc, const void* data, size_t length) {
  return ~extend_software(~crc, static_cast<const uint8_t*>(data), length);
}

}  // namespace mica
