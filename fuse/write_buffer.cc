// WriteBuffer (fuse/write_buffer.h): one contiguous range, bounded.
#include "fuse/write_buffer.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace mica::fuse {

bool WriteBuffer::try_append(uint64_t offset, std::span<const std::byte> data) {
  if (!empty() && offset != end()) return false;
  if (size() + data.size() > capacity_) return false;
  if (empty()) range_.offset = offset;
  range_.bytes.insert(range_.bytes.end(), data.begin(), data.end());
  return true;
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

void WriteBuffer::cut(uint64_t length) {
  if (empty() || length >= end()) return;
  if (length <= range_.offset) {
    range_ = BufferedRange{};
    return;
  }
  range_.bytes.resize(length - range_.offset);
}

}  // namespace mica::fuse
