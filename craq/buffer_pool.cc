#include "craq/buffer_pool.h"

#include <algorithm>
#include <bit>

namespace mica::craq {

namespace {

// The smallest class: one disk block, the O_DIRECT alignment.
constexpr size_t kClassBytesMin = 4096;

size_t class_of(size_t size_bytes) {
  return std::bit_ceil(std::max(size_bytes, kClassBytesMin));
}

}  // namespace

PooledBuffer& PooledBuffer::operator=(PooledBuffer&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = other.pool_;
    buffer_ = std::move(other.buffer_);
    size_ = other.size_;
    other.pool_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

void PooledBuffer::release() {
  if (pool_ != nullptr && buffer_.data() != nullptr) pool_->give(std::move(buffer_));
  pool_ = nullptr;
  size_ = 0;
}

PooledBuffer BufferPool::take(size_t size_bytes) {
  size_t capacity = class_of(size_bytes);
  auto it = free_.find(capacity);
  if (it == free_.end()) return PooledBuffer(this, AlignedBuffer(capacity), size_bytes);
  AlignedBuffer buffer = std::move(it->second);
  free_.erase(it);
  cached_bytes_ -= capacity;
  return PooledBuffer(this, std::move(buffer), size_bytes);
}

void BufferPool::give(AlignedBuffer buffer) {
  size_t capacity = buffer.size();
  if (cached_bytes_ + capacity > cached_bytes_max_) return;  // freed here
  cached_bytes_ += capacity;
  free_.emplace(capacity, std::move(buffer));
}

}  // namespace mica::craq
