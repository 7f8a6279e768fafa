// BufferPool: reusable 4 KiB-aligned buffers for a storage server's reads and resync copies.
//
// A fresh 1 MiB AlignedBuffer is mapped, faulted in page by page as the disk or the socket
// fills it and unmapped again when it goes, which cost a resync more than its copies; a
// pool keeps freed buffers (up to cached_bytes_max in all) and hands them out again, their
// pages already resident. Sizes are rounded up to a power of two (at least 4 KiB), so a
// buffer fits every later request of its class. PooledBuffer gives its buffer back when it
// is destroyed.
//
// Ownership and threads: owned by the component that uses it (ReadPath, Resync), which
// outlives every PooledBuffer it handed out; one executor, never suspends.
#pragma once

#include <cstdint>
#include <map>
#include <span>

#include "async/file.h"

namespace mica::craq {

class BufferPool;

// A buffer of a pool (or of none: default-constructed, empty). Move-only.
class PooledBuffer {
 public:
  PooledBuffer() = default;
  PooledBuffer(BufferPool* pool, AlignedBuffer buffer, size_t size_bytes)
      : pool_(pool), buffer_(std::move(buffer)), size_(size_bytes) {}
  PooledBuffer(PooledBuffer&& other) noexcept { *this = std::move(other); }
  PooledBuffer& operator=(PooledBuffer&& other) noexcept;
  PooledBuffer(const PooledBuffer&) = delete;
  PooledBuffer& operator=(const PooledBuffer&) = delete;
  ~PooledBuffer() { release(); }

  std::byte* data() { return buffer_.data(); }
  const std::byte* data() const { return buffer_.data(); }
  // The bytes asked for (the buffer may be larger).
  size_t size() const { return size_; }
  std::span<std::byte> span() { return std::span(buffer_.data(), size_); }

 private:
  void release();

  BufferPool* pool_ = nullptr;
  AlignedBuffer buffer_;
  size_t size_ = 0;
};

class BufferPool {
 public:
  explicit BufferPool(uint64_t cached_bytes_max) : cached_bytes_max_(cached_bytes_max) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A 4 KiB-aligned buffer of at least size_bytes (size() == size_bytes).
  PooledBuffer take(size_t size_bytes);
  uint64_t cached_bytes() const { return cached_bytes_; }

 private:
  friend class PooledBuffer;
  void give(AlignedBuffer buffer);

  uint64_t cached_bytes_max_;
  uint64_t cached_bytes_ = 0;
  std::multimap<size_t, AlignedBuffer> free_;  // by capacity
};

}  // namespace mica::craq
