// BufferPool: freed buffers come back for the next request of their size class, within the
// pool's cache limit.
#include "craq/buffer_pool.h"

#include <gtest/gtest.h>

namespace mica::craq {
namespace {

TEST(BufferPool, ReleasedBufferIsHandedOutAgainForItsClass) {
  BufferPool pool(4 << 20);
  std::byte* first = nullptr;
  {
    PooledBuffer buffer = pool.take(1 << 20);
    EXPECT_EQ(buffer.size(), size_t{1} << 20);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(buffer.data()) % 4096, 0u);
    first = buffer.data();
  }
  EXPECT_EQ(pool.cached_bytes(), uint64_t{1} << 20);
  // A smaller request of the same power-of-two class gets the same memory.
  PooledBuffer again = pool.take((1 << 20) - 4096);
  EXPECT_EQ(again.data(), first);
  EXPECT_EQ(again.size(), size_t{(1 << 20) - 4096});
  EXPECT_EQ(pool.cached_bytes(), 0u);
}

TEST(BufferPool, KeepsNoMoreThanItsCacheLimit) {
  BufferPool pool(1 << 20);
  {
    PooledBuffer a = pool.take(1 << 20);
    PooledBuffer b = pool.take(1 << 20);
    PooledBuffer moved = std::move(b);  // given back once, by its last owner
  }
  EXPECT_EQ(pool.cached_bytes(), uint64_t{1} << 20);
}

}  // namespace
}  // namespace mica::craq
