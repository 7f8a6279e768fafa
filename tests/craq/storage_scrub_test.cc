// Scrub (craq/storage_scrub.h): bytes rotted on disk are found by the background pass and
// repaired from another serving member of the chain, so reads return the right bytes again
// and fsck is clean; with no member to repair from, the target reports itself offline.
// Real servers on 127.0.0.1 (tests/craq/resync_fixture.h); each test takes well under 5 s.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/chunk/test_util.h"
#include "tests/co_test.h"
#include "tests/craq/resync_fixture.h"

namespace mica::craq {
namespace {

using testing::Fixture;
using PS = PublicState;

constexpr ChunkRef kChunk{.inode = 9, .index = 3};
constexpr uint32_t kChunkBytes = 20 * 1024;  // one write: slot 0 of the 64 KiB class

// Flips bytes inside slot 0 of the 64 KiB class file of a target, behind the engine's back.
void rot(const std::string& target_path) {
  std::string file = target_path + "/64KiB.slots";
  int fd = ::open(file.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << file;
  std::byte junk[16];
  for (auto& b : junk) b = std::byte{0x5a};
  ASSERT_EQ(::pwrite(fd, junk, sizeof junk, 5000), static_cast<ssize_t>(sizeof junk));
  ::close(fd);
}

StorageServerOptions scrubbing() {
  StorageServerOptions options = testing::fixture_options();
  options.scrub_bytes_per_s = 64 << 20;
  options.scrub_pass_interval = std::chrono::hours(1);  // one pass in a test
  return options;
}

TargetProgress progress_of(testing::ServerNode* node) {
  for (const TargetProgress& p : node->server->progress().targets)
    if (p.target == node->target) return p;
  return {};
}

Task<Status> read_back(testing::ServerNode* node, std::vector<std::byte>* out) {
  AlignedBuffer buffer(align_up(kChunkBytes, 4096));
  auto reading =
      node->engine().read({kChunk.inode, kChunk.index}, 0, std::span(buffer.data(), kChunkBytes));
  CO_TRY_ASSIGN(size_t n, co_await std::move(reading));
  out->assign(buffer.data(), buffer.data() + n);
  co_return Status();
}

MICA_CO_TEST(StorageScrub, FindsACorruptChunkAndRepairsItFromAPeer) {
  Fixture f(dir.path);
  auto adding_head = testing::add_server(&f);
  CO_ASSERT_OK(co_await std::move(adding_head));
  auto adding_tail = testing::add_server(&f, scrubbing(), /*start=*/false);
  CO_ASSERT_OK(co_await std::move(adding_tail));
  testing::apply(&f, testing::chain_routing(&f, 1, {{0, PS::kServing}, {1, PS::kServing}}));
  std::vector<std::byte> data = chunk::testing::pattern(kChunkBytes, 77);
  auto writing = testing::write_chunk(&f, 0, 1, kChunk, 0, data);
  CO_ASSERT_OK(co_await std::move(writing));
  testing::ServerNode* rotten = f.nodes[1].get();
  rot(rotten->path);
  std::vector<std::byte> got;
  auto reading = read_back(rotten, &got);
  Status before = co_await std::move(reading);
  CO_ASSERT_EQ(before.code(), StatusCode::kChecksumMismatch) << before;
  rotten->server->start();
  auto waiting = testing::eventually([&] { return progress_of(rotten).scrub_passes >= 1; });
  CO_ASSERT_TRUE(co_await std::move(waiting));
  TargetProgress p = progress_of(rotten);
  EXPECT_EQ(p.scrub_chunks_checked, 1u);
  EXPECT_EQ(p.scrub_corrupt_found, 1u);
  EXPECT_EQ(rotten->storage_target()->local_state(), LocalState::kUpToDate);
  auto rereading = read_back(rotten, &got);
  CO_ASSERT_OK(co_await std::move(rereading));
  EXPECT_EQ(got, data);
  auto checking = rotten->engine().fsck();
  Result<chunk::FsckReport> report = co_await std::move(checking);
  CO_ASSERT_OK(report);
  EXPECT_TRUE(report->ok()) << report->to_string();
  auto stopping = testing::shut_down(&f);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageScrub, ACorruptChunkWithNoPeerTakesTheTargetOffline) {
  Fixture f(dir.path);
  auto adding = testing::add_server(&f, scrubbing(), /*start=*/false);
  CO_ASSERT_OK(co_await std::move(adding));
  testing::apply(&f, testing::chain_routing(&f, 1, {{0, PS::kServing}}));
  auto writing =
      testing::write_chunk(&f, 0, 1, kChunk, 0, chunk::testing::pattern(kChunkBytes, 78));
  CO_ASSERT_OK(co_await std::move(writing));
  testing::ServerNode* alone = f.nodes[0].get();
  rot(alone->path);
  alone->server->start();
  auto waiting = testing::eventually([&] { return progress_of(alone).scrub_passes >= 1; });
  CO_ASSERT_TRUE(co_await std::move(waiting));
  EXPECT_EQ(progress_of(alone).scrub_corrupt_found, 1u);
  EXPECT_EQ(alone->storage_target()->local_state(), LocalState::kOffline);
  auto stopping = testing::shut_down(&f);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageScrub, AnIntactTargetPassesCleanly) {
  Fixture f(dir.path);
  auto adding = testing::add_server(&f, scrubbing(), /*start=*/false);
  CO_ASSERT_OK(co_await std::move(adding));
  testing::apply(&f, testing::chain_routing(&f, 1, {{0, PS::kServing}}));
  for (uint32_t i = 0; i < 4; ++i) {
    ChunkRef chunk{.inode = 9, .index = i};
    auto writing =
        testing::write_chunk(&f, 0, 1, chunk, 0, chunk::testing::pattern(kChunkBytes + i, i));
    CO_ASSERT_OK(co_await std::move(writing));
  }
  testing::ServerNode* node = f.nodes[0].get();
  node->server->start();
  auto waiting = testing::eventually([&] { return progress_of(node).scrub_passes >= 1; });
  CO_ASSERT_TRUE(co_await std::move(waiting));
  EXPECT_EQ(progress_of(node).scrub_chunks_checked, 4u);
  EXPECT_EQ(progress_of(node).scrub_corrupt_found, 0u);
  EXPECT_EQ(node->storage_target()->local_state(), LocalState::kUpToDate);
  auto stopping = testing::shut_down(&f);
  co_await std::move(stopping);
}

}  // namespace
}  // namespace mica::craq
