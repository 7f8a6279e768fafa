// WriteBuffer (fuse/write_buffer.h): one contiguous range, bounded by capacity and by the
// chunk it lies in.
#include "fuse/write_buffer.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace mica::fuse {

namespace {

// A range that starts with a write this large reserves its whole room at once (a
// sequential stream of large writes then never moves its bytes); smaller ones grow.
constexpr size_t kReserveWholeRangeBytes = size_t{64} << 10;

}  // namespace

uint64_t WriteBuffer::limit_for(uint64_t offset) const {
  uint64_t limit = offset + capacity_;
  if (chunk_bytes_ > 0) limit = std::min(limit, (offset / chunk_bytes_ + 1) * chunk_bytes_);
  return limit;
}

size_t WriteBuffer::append(uint64_t offset, std::span<const std::byte> data) {
  if (!continues(offset) || data.empty() || capacity_ == 0) return 0;
  if (empty()) {
    range_.offset = offset;
    limit_ = limit_for(offset);
    if (data.size() >= kReserveWholeRangeBytes) range_.bytes.reserve(limit_ - offset);
  }
  size_t n = std::min<uint64_t>(data.size(), limit_ - end());
  range_.bytes.insert(range_.bytes.end(), data.begin(), data.begin() + static_cast<long>(n));
  return n;
}

size_t WriteBuffer::overlay(uint64_t offset, std::span<std::byte> out) const {
  uint64_t from = std::max(offset, range_.offset);
  uint64_t to = std::min(offset + out.size(), end());
  if (empty() || from >= to) return 0;
  std::memcpy(out.data() + (from - offset), range_.bytes.data() + (from - range_.offset),
              to - from);
  return to - offset;
}

BufferedRange WriteBuffer::take() {
  BufferedRange out = std::move(range_);
  range_ = BufferedRange{};
  return out;
}

size_t WriteBuffer::cut(uint64_t length) {
  if (empty() || length >= end()) return 0;
  size_t before = size();
  if (length <= range_.offset) {
    range_ = BufferedRange{};
    return before;
  }
  range_.bytes.resize(length - range_.offset);
  return before - size();
}

}  // namespace mica::fuse
