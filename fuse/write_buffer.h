// WriteBuffer: the bytes of one open handle's writes that have not gone to storage yet, one
// contiguous range of at most `capacity` bytes that never crosses a chunk boundary of the
// file (3FS keeps 1 MiB per file the same way; Mica keeps a whole chunk, so a sequential
// stream reaches storage as whole-chunk writes, which the chunk engine stores without
// reading or copying the old version). A write that continues the range is appended up to
// the range's limit; anything else makes the owner flush first or write beside it
// (fuse/file_table.h decides when and does the I/O). Plain data: owned by one handle, used
// on its executor only, never suspends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace mica::fuse {

// What a flush sends: `bytes` at `offset`.
struct BufferedRange {
  uint64_t offset = 0;
  std::vector<std::byte> bytes;
  bool empty() const { return bytes.empty(); }
  uint64_t end() const { return offset + bytes.size(); }
};

class WriteBuffer {
 public:
  // chunk_bytes: the file's chunk size (0: no boundaries to respect).
  explicit WriteBuffer(size_t capacity_bytes, uint64_t chunk_bytes = 0)
      : capacity_(capacity_bytes), chunk_bytes_(chunk_bytes) {}

  size_t capacity() const { return capacity_; }
  size_t size() const { return range_.bytes.size(); }
  bool empty() const { return range_.bytes.empty(); }
  // The range reached its limit: capacity bytes, or the end of its chunk.
  bool full() const { return !empty() && end() >= limit_; }
  uint64_t offset() const { return range_.offset; }
  uint64_t end() const { return range_.end(); }
  // Whether a write at offset would be appended (the buffer is empty, or it starts at end()).
  bool continues(uint64_t offset) const { return empty() || offset == end(); }

  // When continues(offset): appends the longest prefix of data that fits before the range's
  // limit and returns its length (0 when full). Otherwise appends nothing and returns 0.
  size_t append(uint64_t offset, std::span<const std::byte> data);
  // Copies the buffered bytes that overlap [offset, offset + out.size()) into out (the
  // rest of out untouched); returns how many bytes past offset it covers, 0 if none.
  // For readers that see the buffer without flushing it (tests; the table flushes).
  size_t overlay(uint64_t offset, std::span<std::byte> out) const;
  // Hands the buffered range over (for a flush) and leaves the buffer empty.
  BufferedRange take();
  // Forgets buffered bytes at or past length (a truncation below them); returns how many.
  size_t cut(uint64_t length);

 private:
  // Where a range starting at offset must end at the latest.
  uint64_t limit_for(uint64_t offset) const;

  size_t capacity_;
  uint64_t chunk_bytes_;
  uint64_t limit_ = 0;  // of the current range
  BufferedRange range_;
};

}  // namespace mica::fuse
