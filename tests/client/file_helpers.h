// Helpers of the client's file tests: byte patterns, a file with small chunks (made through
// the metadata client, so a test spans several chunks and chains with little data), and a
// check that stops a coroutine test body (gtest's ASSERT_* returns, which a coroutine can
// not). Blocking nothing: the helpers run inside a test's task on its executor.
#pragma once

#include <gtest/gtest.h>

#include <fcntl.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"

namespace mica::testing {

// Fails the test and ends the coroutine when `status_expr` is not ok.
#define CO_EXPECT_OK(status_expr)                   \
  do {                                              \
    Status checked_status_ = (status_expr);         \
    if (!checked_status_.ok()) {                    \
      ADD_FAILURE() << #status_expr << ": " << checked_status_; \
      co_return;                                    \
    }                                               \
  } while (0)

// Bytes that differ per seed and position (never all zeros).
inline std::vector<std::byte> pattern(uint32_t seed, size_t size) {
  std::vector<std::byte> out(size);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; ++i) {
    x = x * 1103515245u + 12345u;
    out[i] = static_cast<std::byte>((x >> 16) | 1);
  }
  return out;
}

inline constexpr uint32_t kSmallChunkBytes = 64 << 10;  // the cluster's smallest chunk

// Creates /name with chunks of kSmallChunkBytes over the whole chain table and opens it.
inline Task<Result<std::unique_ptr<client::File>>> create_small_chunks(
    client::Client* c, std::string name, int flags = O_RDWR) {
  meta::CreateRequest request{.cred = c->credentials({}),
                              .parent = meta::kRootInode,
                              .name = std::move(name),
                              .type = meta::InodeType::kFile,
                              .mode = 0644,
                              .chunk_size_bytes = kSmallChunkBytes};
  auto creating = c->meta().create(std::move(request));
  Result<meta::CreateReply> created = co_await std::move(creating);
  if (!created.ok()) co_return created.status();
  auto opening = c->open_inode(created->inode.id, client::OpenMode{.flags = flags});
  co_return co_await std::move(opening);
}

inline Task<Result<uint64_t>> meta_length(client::Client* c, meta::InodeId inode) {
  auto asking = c->meta().getattr(meta::GetattrRequest{.inode = inode});
  Result<meta::InodeReply> reply = co_await std::move(asking);
  if (!reply.ok()) co_return reply.status();
  co_return reply->inode.length;
}

}  // namespace mica::testing
