// Bad input and limits: each gets a clear status and changes nothing.
#include "async/crc32c.h"
#include "tests/chunk/test_util.h"

namespace mica::chunk {
namespace {

using namespace mica::chunk::testing;
constexpr ChunkId kId{9, 1};

// Commits version 1 of kId (1000 bytes of pattern 1) and returns the engine.
Task<std::unique_ptr<ChunkEngine>> engine_with_one_chunk(std::string dir,
                                                         ChunkEngineConfig config) {
  auto opening = open_engine(dir, config);
  auto engine = co_await std::move(opening);
  if (!engine) co_return nullptr;
  auto writing = write_committed(engine.get(), kId, 0, pattern(1000, 1), 1);
  Status s = co_await std::move(writing);
  EXPECT_TRUE(s.ok()) << s;
  co_return engine;
}

// The chunk still holds version 1 and nothing else.
Task<void> expect_unchanged(ChunkEngine* engine) {
  Result<ChunkInfo> info = engine->stat(kId);
  EXPECT_TRUE(info.ok() && info->committed_version == 1 && info->pending_version == 0);
  auto reading = read_all(engine, kId);
  Result<std::vector<std::byte>> content = co_await std::move(reading);
  EXPECT_TRUE(content.ok() && *content == pattern(1000, 1));
  EXPECT_EQ(engine->space().chunks, 1u);
  EXPECT_EQ(engine->space().used_slot_bytes, size_class_bytes(0));
}

Task<void> out_of_range(std::string dir) {
  ChunkEngineConfig config = test_config();
  config.chunk_size_max_bytes = 1 << 20;
  auto opening = engine_with_one_chunk(dir, config);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  std::vector<std::byte> data(100);
  auto writing = engine->write(kId, (1 << 20) - 50, std::span<const std::byte>(data),
                               crc32c(std::span<const std::byte>(data)), {2, 1});
  EXPECT_EQ((co_await std::move(writing)).status().code(), StatusCode::kOutOfRange);
  auto cutting = engine->truncate(kId, (1 << 20) + 1, {2, 1});
  EXPECT_EQ((co_await std::move(cutting)).status().code(), StatusCode::kOutOfRange);
  auto reading = engine->read(kId, 1 << 20, std::span(data));
  EXPECT_EQ((co_await std::move(reading)).status().code(), StatusCode::kOutOfRange);
  auto checking = expect_unchanged(engine.get());
  co_await std::move(checking);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkLimits, OffsetsAndLengthsPastTheChunkSizeAreOutOfRange) {
  TempDir dir;
  run_on_executor(out_of_range(dir.path()));
}

Task<void> unknown_chunk(std::string dir) {
  auto opening = engine_with_one_chunk(dir, test_config());
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  ChunkId unknown{1234, 5};
  std::vector<std::byte> out(10);
  auto reading = engine->read(unknown, 0, std::span(out));
  EXPECT_EQ((co_await std::move(reading)).status().code(), StatusCode::kNotFound);
  auto committing = engine->commit(unknown, 1, 1);
  EXPECT_EQ((co_await std::move(committing)).status().code(), StatusCode::kNotFound);
  auto aborting = engine->abort(unknown, 1);
  EXPECT_EQ((co_await std::move(aborting)).code(), StatusCode::kNotFound);
  auto removing = engine->remove(unknown);
  EXPECT_EQ((co_await std::move(removing)).code(), StatusCode::kNotFound);
  EXPECT_EQ(engine->stat(unknown).status().code(), StatusCode::kNotFound);
  auto checking = expect_unchanged(engine.get());
  co_await std::move(checking);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkLimits, UnknownChunksAreNotFound) {
  TempDir dir;
  run_on_executor(unknown_chunk(dir.path()));
}

Task<void> stale_versions(std::string dir) {
  auto opening = engine_with_one_chunk(dir, test_config());
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  std::vector<std::byte> data(10);
  for (uint32_t v : {1u, 3u}) {  // already committed; skips version 2
    auto writing = engine->write(kId, 0, std::span<const std::byte>(data),
                                 crc32c(std::span<const std::byte>(data)), {v, 1});
    EXPECT_EQ((co_await std::move(writing)).status().code(), StatusCode::kStaleVersion) << v;
  }
  auto committing = engine->commit(kId, 1, 1);  // nothing pending
  EXPECT_EQ((co_await std::move(committing)).status().code(), StatusCode::kStaleVersion);
  auto aborting = engine->abort(kId, 2);
  EXPECT_EQ((co_await std::move(aborting)).code(), StatusCode::kStaleVersion);
  auto zero = engine->write(kId, 0, std::span<const std::byte>(data),
                            crc32c(std::span<const std::byte>(data)), {0, 1});
  EXPECT_EQ((co_await std::move(zero)).status().code(), StatusCode::kInvalidArgument);
  auto old_chain = engine->replace(kId, std::span<const std::byte>(data),
                                   crc32c(std::span<const std::byte>(data)), {7, 0});
  EXPECT_EQ((co_await std::move(old_chain)).status().code(), StatusCode::kStaleVersion);
  auto checking = expect_unchanged(engine.get());
  co_await std::move(checking);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkLimits, StaleAndSkippedVersionsAreRejected) {
  TempDir dir;
  run_on_executor(stale_versions(dir.path()));
}

Task<void> stale_chain_commit(std::string dir) {
  auto opening = engine_with_one_chunk(dir, test_config());  // chain version 1
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  std::vector<std::byte> data = pattern(3000, 2);
  auto writing = engine->write(kId, 0, bytes_of(data), crc32c(bytes_of(data)), {2, 1});
  EXPECT_TRUE((co_await std::move(writing)).ok());
  // A commit from an older chain configuration: refused, the pending version stays pending.
  auto old_chain = engine->commit(kId, 2, 0);
  Result<ChunkInfo> refused = co_await std::move(old_chain);
  EXPECT_EQ(refused.status().code(), StatusCode::kStaleVersion) << refused.status();
  Result<ChunkInfo> info = engine->stat(kId);
  EXPECT_TRUE(info.ok() && info->committed_version == 1 && info->pending_version == 2 &&
              info->chain_version == 1);
  auto current = engine->commit(kId, 2, 1);
  Result<ChunkInfo> committed = co_await std::move(current);
  EXPECT_TRUE(committed.ok() && committed->committed_version == 2) << committed.status();
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkLimits, ACommitWithAStaleChainVersionIsRejected) {
  TempDir dir;
  run_on_executor(stale_chain_commit(dir.path()));
}

Task<void> write_while_pending(std::string dir) {
  auto opening = engine_with_one_chunk(dir, test_config());
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  std::vector<std::byte> data(10);
  auto first = engine->write(kId, 0, std::span<const std::byte>(data),
                             crc32c(std::span<const std::byte>(data)), {2, 1});
  EXPECT_TRUE((co_await std::move(first)).ok());
  for (uint32_t v : {2u, 3u}) {
    auto again = engine->write(kId, 0, std::span<const std::byte>(data),
                               crc32c(std::span<const std::byte>(data)), {v, 1});
    EXPECT_EQ((co_await std::move(again)).status().code(), StatusCode::kStaleVersion);
  }
  auto wrong = engine->commit(kId, 3, 1);
  EXPECT_EQ((co_await std::move(wrong)).status().code(), StatusCode::kStaleVersion);
  Result<ChunkInfo> info = engine->stat(kId);
  EXPECT_TRUE(info.ok() && info->committed_version == 1 && info->pending_version == 2);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkLimits, AWriteWhileAVersionIsPendingIsStale) {
  TempDir dir;
  run_on_executor(write_while_pending(dir.path()));
}

Task<void> reserve_rejects(std::string dir) {
  ChunkEngineConfig config = test_config();
  auto opening = engine_with_one_chunk(dir, config);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
  // Reopen with a reserve larger than the free disk: no file may grow any more.
  config.reserve_bytes = uint64_t{1} << 60;
  auto reopening = open_engine(dir, config);
  engine = co_await std::move(reopening);
  if (!engine) co_return;
  auto big = pattern(2 << 20, 3);
  auto writing = engine->write(ChunkId{10, 0}, 0, bytes_of(big), crc32c(bytes_of(big)), {1, 1});
  Result<ChunkInfo> refused = co_await std::move(writing);
  EXPECT_EQ(refused.status().code(), StatusCode::kNoSpace) << refused.status();
  EXPECT_EQ(engine->stat(ChunkId{10, 0}).status().code(), StatusCode::kNotFound);
  uint64_t file_bytes = engine->space().data_file_bytes;
  // A free slot in an existing file is still usable: the reserve guards the disk only.
  auto small = pattern(1000, 4);
  auto reuse = engine->write(ChunkId{10, 1}, 0, bytes_of(small), crc32c(bytes_of(small)), {1, 1});
  EXPECT_TRUE((co_await std::move(reuse)).ok());
  EXPECT_EQ(engine->space().data_file_bytes, file_bytes);
  auto closing2 = close_engine(std::move(engine));
  co_await std::move(closing2);
}
TEST(ChunkLimits, NewDataThatWouldCutIntoTheDiskReserveIsNoSpace) {
  TempDir dir;
  run_on_executor(reserve_rejects(dir.path()));
}

Task<void> data_cap(std::string dir) {
  ChunkEngineConfig config = test_config();
  config.data_bytes_max = 2 << 20;
  auto opening = open_engine(dir, config);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto data = pattern(1 << 20, 5);
  auto first = engine->write(ChunkId{1, 0}, 0, bytes_of(data), crc32c(bytes_of(data)), {1, 1});
  EXPECT_TRUE((co_await std::move(first)).ok());
  auto second = engine->write(ChunkId{1, 1}, 0, bytes_of(data), crc32c(bytes_of(data)), {1, 1});
  Result<ChunkInfo> second_result = co_await std::move(second);
  EXPECT_TRUE(second_result.ok()) << second_result.status();
  auto third = engine->write(ChunkId{1, 2}, 0, bytes_of(data), crc32c(bytes_of(data)), {1, 1});
  EXPECT_EQ((co_await std::move(third)).status().code(), StatusCode::kNoSpace);
  EXPECT_EQ(engine->space().chunks, 2u);
  EXPECT_LE(engine->space().data_file_bytes, uint64_t{2} << 20);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkLimits, DataFilesNeverGrowPastDataBytesMax) {
  TempDir dir;
  run_on_executor(data_cap(dir.path()));
}

Task<void> bad_config(std::string dir) {
  ChunkEngineConfig config = test_config();
  config.chunk_size_max_bytes = 3 << 20;
  auto opening = ChunkEngine::open(dir, config);
  EXPECT_EQ((co_await std::move(opening)).status().code(), StatusCode::kInvalidArgument);
  config = test_config();
  config.group_commit_batch_max = 0;
  auto opening2 = ChunkEngine::open(dir, config);
  EXPECT_EQ((co_await std::move(opening2)).status().code(), StatusCode::kInvalidArgument);
}
TEST(ChunkLimits, AConfigWithImpossibleLimitsIsRejected) {
  TempDir dir;
  run_on_executor(bad_config(dir.path()));
}

}  // namespace
}  // namespace mica::chunk
