#include "chunk/block_crc.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include "async/assert.h"
#include "async/crc32c.h"
#include "async/file.h"
#include "chunk/types.h"

namespace mica::chunk {
namespace {

// CRC32C (Castagnoli) in its reflected form: bit 31 is the coefficient of x^0.
constexpr uint32_t kPoly = 0x82F63B78;
constexpr uint32_t kOne = 0x80000000;  // the polynomial 1

// a * b mod P (both reflected); zlib's multmodp.
constexpr uint32_t multiply_mod_p(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t m = kOne; m != 0; m >>= 1) {
    if ((a & m) != 0) {
      product ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    b = (b & 1) != 0 ? (b >> 1) ^ kPoly : b >> 1;
  }
  return product;
}

// x^(2^k) mod P for k = 0..31.
constexpr std::array<uint32_t, 32> make_powers() {
  std::array<uint32_t, 32> t{};
  t[0] = kOne >> 1;  // x^1
  for (size_t k = 1; k < t.size(); ++k) t[k] = multiply_mod_p(t[k - 1], t[k - 1]);
  return t;
}
constexpr std::array<uint32_t, 32> kPowers = make_powers();

// x^(8 * bytes) mod P: appending `bytes` zero bytes multiplies a CRC's register by it.
constexpr uint32_t shift_operator(uint64_t bytes) {
  uint32_t p = kOne;
  for (uint32_t k = 3; bytes != 0; bytes >>= 1, ++k)
    if ((bytes & 1) != 0) p = multiply_mod_p(kPowers[k & 31], p);
  return p;
}
constexpr uint32_t kBlockShift = shift_operator(kBlockBytes);

#if defined(__x86_64__)
// The CRCs of kLanes whole blocks at once. One crc32 instruction has a latency of 3 cycles
// and a throughput of 1 per cycle, so one stream (crc32c_extend) uses a third of the unit;
// independent blocks interleave perfectly and need no combine.
constexpr uint32_t kLanes = 4;
__attribute__((target("sse4.2"))) uint64_t crc_word(uint64_t crc, const std::byte* p) {
  uint64_t word;
  std::memcpy(&word, p, 8);
  return _mm_crc32_u64(crc, word);
}
__attribute__((target("sse4.2"))) void lanes_hardware(const std::byte* data, uint32_t* crcs) {
  static_assert(kLanes == 4);
  // CRC32C's initial register; the results are inverted, as crc32c's are.
  uint64_t c0 = 0xFFFFFFFF, c1 = c0, c2 = c0, c3 = c0;
  const std::byte* p = data;
  for (uint32_t at = 0; at < kBlockBytes; at += 8, p += 8) {
    c0 = crc_word(c0, p);
    c1 = crc_word(c1, p + kBlockBytes);
    c2 = crc_word(c2, p + 2 * kBlockBytes);
    c3 = crc_word(c3, p + 3 * kBlockBytes);
  }
  crcs[0] = ~static_cast<uint32_t>(c0);
  crcs[1] = ~static_cast<uint32_t>(c1);
  crcs[2] = ~static_cast<uint32_t>(c2);
  crcs[3] = ~static_cast<uint32_t>(c3);
}
const bool kHardwareLanes = __builtin_cpu_supports("sse4.2");
#else
constexpr uint32_t kLanes = 1;
void lanes_hardware(const std::byte*, uint32_t*) {}
constexpr bool kHardwareLanes = false;
#endif

}  // namespace

void fill_block_crcs(const std::byte* data, uint32_t length_bytes, std::span<uint32_t> crcs) {
  MICA_ASSERT(crcs.size() == block_count(length_bytes));
  uint32_t k = 0;
  if (kHardwareLanes) {
    for (uint32_t whole = length_bytes / kBlockBytes; k + kLanes <= whole; k += kLanes)
      lanes_hardware(data + size_t{k} * kBlockBytes, &crcs[k]);
  }
  for (; k < crcs.size(); ++k) {
    uint32_t n = std::min(kBlockBytes, length_bytes - k * kBlockBytes);
    crcs[k] = crc32c(data + size_t{k} * kBlockBytes, n);
  }
}

uint32_t block_crc_append(uint32_t crc_a, uint32_t crc_b, uint32_t length_b) {
  if (length_b == 0) return crc_a;  // as crc32c_combine: B is empty
  uint32_t op = length_b == kBlockBytes ? kBlockShift : shift_operator(length_b);
  return multiply_mod_p(op, crc_a) ^ crc_b;
}

uint32_t compute_block_crcs(const std::byte* data, uint32_t length_bytes,
                            std::span<uint32_t> crcs) {
  MICA_ASSERT(crcs.size() == block_count(length_bytes));
  fill_block_crcs(data, length_bytes, crcs);
  uint32_t checksum = 0;
  for (uint32_t k = 0; k < crcs.size(); ++k)
    checksum =
        block_crc_append(checksum, crcs[k], std::min(kBlockBytes, length_bytes - k * kBlockBytes));
  return checksum;
}

uint32_t range_crc(const std::byte* data, uint32_t data_offset, std::span<const uint32_t> crcs,
                   uint32_t length_bytes, uint32_t from, uint32_t to) {
  MICA_ASSERT(data_offset % kBlockBytes == 0 && data_offset <= from && from <= to &&
              to <= length_bytes && crcs.size() == block_count(length_bytes));
  const std::byte* at = data - data_offset;  // at[x] is byte x of the version
  uint32_t whole_begin = static_cast<uint32_t>(align_up(from, kBlockBytes));
  uint32_t whole_end = to == length_bytes ? to : static_cast<uint32_t>(align_down(to, kBlockBytes));
  // Within one or two partial blocks there is nothing to reuse: under 8 KiB to checksum.
  if (whole_begin >= whole_end) return crc32c(at + from, to - from);
  uint32_t crc = crc32c(at + from, whole_begin - from);
  for (uint32_t b = whole_begin / kBlockBytes; size_t{b} * kBlockBytes < whole_end; ++b)
    crc = block_crc_append(crc, crcs[b], std::min(kBlockBytes, length_bytes - b * kBlockBytes));
  return block_crc_append(crc, crc32c(at + whole_end, to - whole_end), to - whole_end);
}

}  // namespace mica::chunk
