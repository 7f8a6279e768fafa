// WriteBuffer: the bytes of one open handle's small writes that have not gone to storage
// yet, one contiguous range of at most `capacity` bytes (3FS keeps 1 MiB per file the same
// way). A write that continues the range and fits is appended; anything else makes the
// owner flush first (fuse/file_table.h decides when and does the I/O). Plain data: owned
// by one handle, used on its executor only, never suspends.
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
  explicit WriteBuffer(size_t capacity_bytes) : capacity_(capacity_bytes) {}

  size_t capacity() const { return capacity_; }
  size_t size() const { return range_.bytes.size(); }
  bool empty() const { return range_.bytes.empty(); }
  bool full() const { return range_.bytes.size() >= capacity_; }
  uint64_t offset() const { return range_.offset; }
  uint64_t end() const { return range_.end(); }

  // Appends data at offset when it continues the buffered range (or the buffer is empty)
  // and the whole of it fits; false (nothing changed) otherwise.
  bool try_append(uint64_t offset, std::span<const std::byte> data);
  // Copies the buffered bytes that overlap [offset, offset + out.size()) into out (the
  // rest of out untouched); returns how many bytes past offset it covers, 0 if none.
  // For readers that see the buffer without flushing it (tests; the table flushes).
  size_t overlay(uint64_t offset, std::span<std::byte> out) const;
  // Hands the buffered range over (for a flush) and leaves the buffer empty.
  BufferedRange take();
  // Forgets buffered bytes at or past length (a truncation below them).
  void cut(uint64_t length);

 private:
  size_t capacity_;
  BufferedRange range_;
};

}  // namespace mica::fuse
