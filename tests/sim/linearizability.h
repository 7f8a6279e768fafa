// A linearizability checker for chunk histories (Wing & Gong's search with Lowe's and
// Porcupine's memoization), used by the storage_cluster scenario and its own unit tests.
//
// A history is a list of operations on chunks (write a byte range, truncate, remove, read)
// with the times they were invoked and completed and their outcome. Each chunk is checked
// on its own (linearizability is compositional: P-compositionality per key). The model
// state of a chunk is its bytes, kept compactly as runs of "who wrote them": a write with
// id W puts the pattern of W at every 8-byte word it covers (pattern_word), so a read's
// bytes decode back into runs (decode_pattern) and a stale, torn or invented read is a run
// that no reachable state holds. Outcomes:
//   - kOk: took effect once, between invoke and complete;
//   - kFailed: refused before any effect (never part of a linearization);
//   - kIndeterminate: a timeout or lost connection: may have taken effect at any time after
//     its invoke, even after the caller gave up, or never.
// The search is capped (CheckOptions::steps_max); past it the verdict is kGaveUp, which is
// neither a pass nor a violation. Plain data and functions: any thread, nothing suspends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace mica::sim {

enum class LinKind : uint8_t { kWrite, kTruncate, kRemove, kRead };
enum class LinOutcome : uint8_t { kOk, kFailed, kIndeterminate };

// Every offset and length of a checked operation is a multiple of this (one pattern word).
inline constexpr uint32_t kLinWordBytes = 8;
// The writer of bytes that decode to no write's pattern (never matches a model state).
inline constexpr uint64_t kLinGarbage = ~uint64_t{0};

// Bytes [begin, end) of a chunk came from write `writer` (0: zeros, never written).
struct ByteRun {
  uint32_t begin = 0;
  uint32_t end = 0;
  uint64_t writer = 0;
  friend bool operator==(const ByteRun&, const ByteRun&) = default;
};

struct LinOp {
  uint64_t key = 0;  // the chunk
  uint64_t id = 0;   // unique in the history (> 0, < 2^32: a write's pattern carries it)
  LinKind kind = LinKind::kRead;
  uint32_t offset = 0;  // write, read
  uint32_t length = 0;  // write, read: bytes; truncate: the new chunk length
  int64_t invoke_ns = 0;
  int64_t complete_ns = 0;  // ignored for kIndeterminate
  LinOutcome outcome = LinOutcome::kOk;
  // A read that succeeded: what it returned, decoded (decode_pattern), covering
  // [offset, offset + observed_bytes).
  uint32_t observed_bytes = 0;
  std::vector<ByteRun> observed;
  uint64_t client = 0;  // who called it (diagnostics only)
};

// The 8-byte word a write with id `writer` puts at chunk offset `offset` (a multiple of 8):
// never zero, and unique per (writer, offset), so it decodes back exactly.
uint64_t pattern_word(uint64_t writer, uint32_t offset);
// Fills out with what write `writer` puts at [offset, offset + out.size()).
void fill_pattern(uint64_t writer, uint32_t offset, std::span<std::byte> out);
// The runs that bytes read at offset decode to (zeros: writer 0; a word that is no write's
// pattern at its place: kLinGarbage), adjacent runs of one writer merged.
std::vector<ByteRun> decode_pattern(uint32_t offset, std::span<const std::byte> bytes);

// The model state of one chunk: its length and the runs covering [0, length), normalised
// (adjacent runs of one writer merged). A removed chunk and an empty one read alike.
struct ChunkBytesModel {
  uint32_t length = 0;
  std::vector<ByteRun> runs;

  void write(uint64_t writer, uint32_t offset, uint32_t length_bytes);
  void truncate(uint32_t length_bytes);
  void remove();
  // Whether a read of [offset, offset + length_bytes) may return exactly `observed`.
  bool read_matches(uint32_t offset, uint32_t length_bytes, uint32_t observed_bytes,
                    const std::vector<ByteRun>& observed) const;
  uint64_t hash() const;
  std::string describe() const;
  friend bool operator==(const ChunkBytesModel&, const ChunkBytesModel&) = default;
};

enum class LinVerdict : uint8_t { kLinearizable, kViolation, kGaveUp };
const char* lin_verdict_name(LinVerdict verdict);

struct CheckOptions {
  // Linearization attempts (model steps) one chunk's search may take before it gives up.
  uint64_t steps_max = 2'000'000;
};

struct ChunkVerdict {
  uint64_t key = 0;
  LinVerdict verdict = LinVerdict::kLinearizable;
  std::string why;  // a violation: the operation no order explains, and the deepest state
  uint64_t steps = 0;
  size_t ops = 0;  // operations checked (failed ones and failed reads are left out)
};

struct HistoryVerdict {
  LinVerdict verdict = LinVerdict::kLinearizable;  // the worst over the chunks
  std::vector<ChunkVerdict> chunks;                // by key
  uint64_t steps = 0;
  std::string why;  // the first violating (else given-up) chunk's why
};

// Checks one chunk's operations (all of one key; the chunk starts empty).
ChunkVerdict check_chunk(std::vector<LinOp> ops, const CheckOptions& options = {});
// Checks every chunk of a history on its own.
HistoryVerdict check_history(const std::vector<LinOp>& ops, const CheckOptions& options = {});

std::string describe_op(const LinOp& op);

}  // namespace mica::sim
