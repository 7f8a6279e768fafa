#include "async/frame_alloc.h"

#include <atomic>
#include <cstdlib>
#include <new>

#include "async/assert.h"

namespace mica {
namespace {

constexpr std::size_t kClassBytes = 64;
constexpr std::size_t kClassCount = 32;  // frames up to 2 KiB are cached
constexpr std::size_t kCacheBytesMax = 4 << 20;

std::atomic<int64_t> g_live_frames{0};

struct FreeBlock {
  FreeBlock* next;
};

// Per-thread cache. Frames are freed into the freeing thread's cache; the byte bound keeps
// a producer/consumer pair of threads from hoarding memory on the consumer side.
struct FrameCache {
  FreeBlock* heads[kClassCount] = {};
  std::size_t cached_bytes = 0;
  ~FrameCache() {
    for (FreeBlock*& head : heads) {
      while (head) {
        FreeBlock* next = head->next;
        std::free(head);
        head = next;
      }
    }
  }
};

thread_local FrameCache t_cache;

std::size_t class_of(std::size_t size) {
  return (size + kClassBytes - 1) / kClassBytes - 1;
}

}  // namespace

void* frame_allocate(std::size_t size) {
  g_live_frames.fetch_add(1, std::memory_order_relaxed);
  std::size_t c = class_of(size);
  if (c < kClassCount) {
    FrameCache& cache = t_cache;
    if (FreeBlock* block = cache.heads[c]) {
      cache.heads[c] = block->next;
      cache.cached_bytes -= (c + 1) * kClassBytes;
      return block;
    }
    size = (c + 1) * kClassBytes;
  }
  void* p = std::malloc(size);
  if (!p) throw std::bad_alloc();
  return p;
}

void frame_deallocate(void* frame, std::size_t size) noexcept {
  int64_t before = g_live_frames.fetch_sub(1, std::memory_order_relaxed);
  MICA_ASSERT_MSG(before > 0, "more frames freed than allocated");
  std::size_t c = class_of(size);
  if (c < kClassCount) {
    FrameCache& cache = t_cache;
    std::size_t bytes = (c + 1) * kClassBytes;
    if (cache.cached_bytes + bytes <= kCacheBytesMax) {
      auto* block = static_cast<FreeBlock*>(frame);
      block->next = cache.heads[c];
      cache.heads[c] = block;
      cache.cached_bytes += bytes;
      return;
    }
  }
  std::free(frame);
}

int64_t live_frames() {
  return g_live_frames.load(std::memory_order_relaxed);
}

}  // namespace mica
