// Scrub (craq/storage_scrub.h): bytes rotted on disk are found by the background pass and
// repaired from another serving member of the chain, so reads return the right bytes again
// and fsck is clean; with no member to repair from, the target reports itself offline.
// In-process servers on 127.0.0.1 (tests/craq/storage_harness.h); a rotten server is
// stopped, damaged on disk and started again, and its scrub's first pass finds the damage.
// Each test takes well under 5 s.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/co_test.h"
#include "tests/craq/resync_helpers.h"

namespace mica::craq {
namespace {

using testing::StorageHarness;
using testing::TestClient;
using PS = PublicState;

constexpr ChunkRef kChunk{.inode = 9, .index = 3};
constexpr uint32_t kChunkBytes = 20 * 1024;  // written once: slot 0 of the 64 KiB class

// Overwrites bytes inside slot 0 of the 64 KiB class file of a target behind its back.
void rot(const std::string& target_dir) {
  std::string file = target_dir + "/data/64KiB.slots";
  int fd = ::open(file.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << file;
  std::byte junk[16];
  for (auto& b : junk) b = std::byte{0x5a};
  ASSERT_EQ(::pwrite(fd, junk, sizeof junk, 5000), static_cast<ssize_t>(sizeof junk));
  ::close(fd);
}

testing::StorageHarnessOptions scrubbing(uint32_t servers) {
  testing::StorageHarnessOptions options;
  options.servers = servers;
  options.server.scrub_bytes_per_s = 64 << 20;
  options.server.scrub_pass_interval = std::chrono::hours(1);  // one pass per start
  return options;
}

Task<Status> read_back(chunk::ChunkEngine* engine, std::vector<std::byte>* out) {
  AlignedBuffer buffer(align_up(kChunkBytes, 4096));
  auto reading =
      engine->read({kChunk.inode, kChunk.index}, 0, std::span(buffer.data(), kChunkBytes));
  CO_TRY_ASSIGN(size_t n, co_await std::move(reading));
  out->assign(buffer.data(), buffer.data() + n);
  co_return Status();
}

// Stops server s, damages its chunk on disk and starts it again (its scrub starts over).
Task<Status> rot_and_restart(StorageHarness* h, size_t s) {
  Task<void> stopping = h->stop_server(s);
  co_await std::move(stopping);
  rot(h->at(s).target_dirs.front());
  if (::testing::Test::HasFatalFailure()) co_return Status(StatusCode::kInternal, "rot failed");
  auto starting = h->start_server(s);
  co_return co_await std::move(starting);
}

Task<void> stop_all(StorageHarness* h, TestClient* client) {
  Task<void> client_stopping = client->stop();
  co_await std::move(client_stopping);
  Task<void> stopping = h->stop();
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageScrub, FindsACorruptChunkAndRepairsItFromAPeer) {
  StorageHarness h(dir.path, scrubbing(2));
  auto starting = h.start();
  CO_ASSERT_OK(co_await std::move(starting));
  TestClient client(&h);
  h.apply(testing::chain_routing(&h, 1, {{0, PS::kServing}, {1, PS::kServing}}));
  std::vector<std::byte> data = testing::test_bytes(kChunkBytes, 77);
  auto writing = testing::write_chunk(&client, 0, 1, kChunk, 0, data);
  CO_ASSERT_OK(co_await std::move(writing));
  auto rotting = rot_and_restart(&h, 1);
  CO_ASSERT_OK(co_await std::move(rotting));
  auto waiting = testing::eventually([&] { return testing::progress_of(&h, 1).scrub_passes >= 1; });
  CO_ASSERT_TRUE(co_await std::move(waiting));
  TargetProgress p = testing::progress_of(&h, 1);
  EXPECT_EQ(p.scrub_chunks_checked, 1u);
  EXPECT_EQ(p.scrub_corrupt_found, 1u);
  EXPECT_EQ(h.target(1)->local_state(), LocalState::kUpToDate);
  std::vector<std::byte> got;
  auto rereading = read_back(&h.engine(1), &got);
  CO_ASSERT_OK(co_await std::move(rereading));
  EXPECT_EQ(got, data);
  auto checking = h.engine(1).fsck();
  Result<chunk::FsckReport> report = co_await std::move(checking);
  CO_ASSERT_OK(report);
  EXPECT_TRUE(report->ok()) << report->to_string();
  auto stopping = stop_all(&h, &client);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageScrub, ACorruptChunkWithNoPeerTakesTheTargetOffline) {
  StorageHarness h(dir.path, scrubbing(1));
  auto starting = h.start();
  CO_ASSERT_OK(co_await std::move(starting));
  TestClient client(&h);
  h.apply(testing::chain_routing(&h, 1, {{0, PS::kServing}}));
  auto writing =
      testing::write_chunk(&client, 0, 1, kChunk, 0, testing::test_bytes(kChunkBytes, 78));
  CO_ASSERT_OK(co_await std::move(writing));
  auto rotting = rot_and_restart(&h, 0);
  CO_ASSERT_OK(co_await std::move(rotting));
  auto waiting = testing::eventually([&] { return testing::progress_of(&h, 0).scrub_passes >= 1; });
  CO_ASSERT_TRUE(co_await std::move(waiting));
  EXPECT_EQ(testing::progress_of(&h, 0).scrub_corrupt_found, 1u);
  EXPECT_EQ(h.target(0)->local_state(), LocalState::kOffline);
  auto stopping = stop_all(&h, &client);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageScrub, TheOfflineDecisionSurvivesTheNextRouting) {
  StorageHarness h(dir.path, scrubbing(1));
  auto starting = h.start();
  CO_ASSERT_OK(co_await std::move(starting));
  TestClient client(&h);
  h.apply(testing::chain_routing(&h, 1, {{0, PS::kServing}}));
  auto writing =
      testing::write_chunk(&client, 0, 1, kChunk, 0, testing::test_bytes(kChunkBytes, 79));
  CO_ASSERT_OK(co_await std::move(writing));
  auto rotting = rot_and_restart(&h, 0);
  CO_ASSERT_OK(co_await std::move(rotting));
  auto waiting = testing::eventually([&] { return testing::progress_of(&h, 0).scrub_passes >= 1; });
  CO_ASSERT_TRUE(co_await std::move(waiting));
  CO_ASSERT_EQ(h.target(0)->local_state(), LocalState::kOffline);
  // A new chain version that still lists the target serving (mgmtd has not seen the report
  // yet) would otherwise reset it to kUpToDate and put the rot back in service.
  h.apply(testing::chain_routing(&h, 2, {{0, PS::kServing}}));
  EXPECT_EQ(h.target(0)->view().version, 2u);
  EXPECT_EQ(h.target(0)->local_state(), LocalState::kOffline);
  EXPECT_TRUE(h.target(0)->has_unrepaired());
  auto stopping = stop_all(&h, &client);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageScrub, ARepairedChunkLiftsTheOfflineDecision) {
  StorageHarness h(dir.path, scrubbing(1));
  auto starting = h.start();
  CO_ASSERT_OK(co_await std::move(starting));
  TestClient client(&h);
  h.apply(testing::chain_routing(&h, 1, {{0, PS::kServing}}));
  StorageTarget* target = h.target(0);
  chunk::ChunkId one{1, 0}, two{1, 1};
  target->mark_unrepairable(one);
  target->mark_unrepairable(two);
  target->mark_repaired(one);
  EXPECT_EQ(target->local_state(), LocalState::kOffline);  // one chunk still rotten
  target->mark_repaired(two);
  EXPECT_EQ(target->local_state(), LocalState::kUpToDate);  // serving: its copy is whole
  auto stopping = stop_all(&h, &client);
  co_await std::move(stopping);
}

MICA_CO_TEST(StorageScrub, AnIntactTargetPassesCleanly) {
  StorageHarness h(dir.path, scrubbing(1));
  auto starting = h.start();
  CO_ASSERT_OK(co_await std::move(starting));
  TestClient client(&h);
  h.apply(testing::chain_routing(&h, 1, {{0, PS::kServing}}));
  for (uint32_t i = 0; i < 4; ++i) {
    ChunkRef chunk{.inode = 9, .index = i};
    auto writing =
        testing::write_chunk(&client, 0, 1, chunk, 0, testing::test_bytes(kChunkBytes + i, i));
    CO_ASSERT_OK(co_await std::move(writing));
  }
  // A restart starts the scrub's first pass over the chunks now there.
  Task<void> stopping_server = h.stop_server(0);
  co_await std::move(stopping_server);
  auto restarting = h.start_server(0);
  CO_ASSERT_OK(co_await std::move(restarting));
  auto waiting = testing::eventually([&] { return testing::progress_of(&h, 0).scrub_passes >= 1; });
  CO_ASSERT_TRUE(co_await std::move(waiting));
  EXPECT_EQ(testing::progress_of(&h, 0).scrub_chunks_checked, 4u);
  EXPECT_EQ(testing::progress_of(&h, 0).scrub_corrupt_found, 0u);
  EXPECT_EQ(h.target(0)->local_state(), LocalState::kUpToDate);
  auto stopping = stop_all(&h, &client);
  co_await std::move(stopping);
}

}  // namespace
}  // namespace mica::craq
