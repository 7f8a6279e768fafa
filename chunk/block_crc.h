// Block checksums of chunk versions: the CRC32C of every kBlockBytes block and the
// whole-chunk CRC32C derived from them (the CRC of the chunk's bytes, as a client computes
// it, not a CRC of CRCs).
//
// Why not mica::crc32c_combine per block: it builds zlib's 32x32 GF(2) matrices anew on every
// call (~12 matrix squarings for a 4 KiB piece), which made the combine of a 1 MiB chunk's
// 256 blocks cost milliseconds of the executor's CPU, more than the data I/O. Appending a
// full block to a running CRC is a multiplication by the fixed polynomial x^(8 * 4096) mod P,
// computed once; one multiplication is 32 shift-and-xor steps. Pure functions: thread-safe,
// never suspend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace mica::chunk {

// The CRC of A followed by B from crc(A), crc(B) and B's length; equal to
// mica::crc32c_combine, faster for the block sizes the engine uses.
uint32_t block_crc_append(uint32_t crc_a, uint32_t crc_b, uint32_t length_b);

// Fills crcs[k] with the CRC32C of block k of data[0, length_bytes) (the last block may be
// short; crcs.size() == block_count(length_bytes)). Whole blocks are checksummed four at a
// time with interleaved crc32 instructions (about 3x one stream).
void fill_block_crcs(const std::byte* data, uint32_t length_bytes, std::span<uint32_t> crcs);

// Fills crcs[k] with the CRC32C of block k of data[0, length_bytes) (the last block may be
// short; crcs.size() == block_count(length_bytes)) and returns the CRC32C of all
// length_bytes bytes.
uint32_t compute_block_crcs(const std::byte* data, uint32_t length_bytes, std::span<uint32_t> crcs);

// The CRC32C of bytes [from, to) of a version of length_bytes bytes whose block CRCs are
// crcs (indexed by block of the version), without a second pass over the data: blocks that
// lie wholly inside the range (a short last block counts when to == length_bytes) are taken
// from crcs, and only the partial blocks at the range's two ends are checksummed, from
// data, which holds the version's bytes starting at the block-aligned position data_offset.
// Used to verify a writer's payload CRC and to give a reader the CRC of what it got.
uint32_t range_crc(const std::byte* data, uint32_t data_offset, std::span<const uint32_t> crcs,
                   uint32_t length_bytes, uint32_t from, uint32_t to);

}  // namespace mica::chunk
