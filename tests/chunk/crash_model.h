// The deterministic workload of the crash test, shared by the writer process
// (helpers/crash_writer.cc) and the checker (crash_test.cc).
//
// Chunk c's version v is produced by update(c, v) applied to version v - 1: a partial write,
// a truncate or a full replace, each a pure function of (c, v). So the content of any version
// is known without a log, and after a SIGKILL the checker can tell whether a chunk holds
// exactly the content of the version its metadata names. The writer reports each operation
// (Report) so the checker also knows which versions were acknowledged and must survive.
// Pure functions; any thread.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "chunk/types.h"

namespace mica::chunk::crash {

inline constexpr uint32_t kChunks = 6;
inline constexpr uint32_t kChunkBytesMax = 256 << 10;
inline constexpr uint32_t kWriters = 3;  // concurrent tasks, each owning kChunks / kWriters

inline ChunkId chunk_id(uint32_t c) {
  return ChunkId{1000 + c / 3, c % 3};
}

inline uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

enum class Kind { kWrite, kTruncate, kReplace };

struct Update {
  Kind kind;
  uint32_t offset;  // write
  uint32_t length;  // bytes written, new length (truncate) or full length (replace)
};

inline Update update_of(uint32_t c, uint32_t v) {
  uint64_t h = mix(uint64_t{c} << 32 | v);
  uint32_t pick = h % 10;
  if (pick < 6) {
    uint32_t offset = static_cast<uint32_t>((h >> 8) % (kChunkBytesMax - 1));
    uint32_t length = 1 + static_cast<uint32_t>((h >> 32) % 70000);
    return Update{Kind::kWrite, offset, std::min(length, kChunkBytesMax - offset)};
  }
  if (pick < 8) return Update{Kind::kTruncate, 0, static_cast<uint32_t>((h >> 8) % kChunkBytesMax)};
  return Update{Kind::kReplace, 0, 1 + static_cast<uint32_t>((h >> 8) % (kChunkBytesMax - 1))};
}

// The bytes a write or replace of version v carries.
inline std::vector<std::byte> payload(uint32_t c, uint32_t v, uint32_t length) {
  std::vector<std::byte> out(length);
  uint64_t x = mix(uint64_t{v} << 32 | c) | 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::byte>(x >> 24);
  }
  return out;
}

// Applies update (c, v) to content (version v - 1) in place.
inline void apply(uint32_t c, uint32_t v, std::vector<std::byte>* content) {
  Update u = update_of(c, v);
  if (u.kind == Kind::kTruncate) {
    content->resize(u.length, std::byte{0});
  } else if (u.kind == Kind::kReplace) {
    *content = payload(c, v, u.length);
  } else {
    if (content->size() < u.offset + u.length) content->resize(u.offset + u.length, std::byte{0});
    auto data = payload(c, v, u.length);
    std::copy(data.begin(), data.end(), content->begin() + u.offset);
  }
}

// What the writer tells the checker through its pipe, one fixed-size message per event: an
// intent before each operation, an ack once the operation returned ok (sent before the
// writer starts its next operation on that chunk). Pipe writes this small are atomic.
enum class Op : uint8_t { kWrite, kTruncate, kWriteCommit, kReplace, kCommit, kAbort, kRemove };
enum class Phase : uint8_t { kIntent, kAck };
struct Report {
  uint32_t chunk = 0;
  uint32_t version = 0;  // the version the operation creates, commits or aborts
  Op op = Op::kWrite;
  Phase phase = Phase::kIntent;
  uint16_t reserved = 0;
};
static_assert(sizeof(Report) == 12);

// A chunk's versions as the checker knows them; (0, 0) is "no chunk".
struct Versions {
  uint32_t committed = 0;
  uint32_t pending = 0;
  friend bool operator==(const Versions&, const Versions&) = default;
};

// The versions after operation (op, version) succeeded on a chunk at `before`.
inline Versions after(Versions before, Op op, uint32_t version) {
  switch (op) {
    case Op::kWrite:
    case Op::kTruncate:
      return Versions{before.committed, version};
    case Op::kWriteCommit:
    case Op::kReplace:
    case Op::kCommit:
      return Versions{version, 0};
    case Op::kAbort:
      return Versions{before.committed, 0};
    case Op::kRemove:
      return Versions{};
  }
  return before;
}

}  // namespace mica::chunk::crash
