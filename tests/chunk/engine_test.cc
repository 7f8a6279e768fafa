// The chunk engine's operations: versions, copy-on-write, partial writes, truncate, remove,
// replace, queries, reopen. One behaviour per test.
#include <algorithm>
#include <cstring>

#include "async/scope.h"

#include "async/crc32c.h"
#include "tests/chunk/test_util.h"

namespace mica::chunk {
namespace {

using namespace mica::chunk::testing;
constexpr ChunkId kId{42, 7};

Task<void> pending_is_invisible_until_commit(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto data = pattern(100000, 1);
  auto writing = engine->write(kId, 0, bytes_of(data), crc32c(bytes_of(data)), {1, 1});
  Result<ChunkInfo> info = co_await std::move(writing);
  EXPECT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->pending_version, 1u);
  EXPECT_EQ(info->committed_version, 0u);
  auto before = read_all(engine.get(), kId);
  EXPECT_EQ((co_await std::move(before)).status().code(), StatusCode::kNotFound);
  auto committing = engine->commit(kId, 1, 1);
  EXPECT_TRUE((co_await std::move(committing)).ok());
  auto after = read_all(engine.get(), kId);
  Result<std::vector<std::byte>> content = co_await std::move(after);
  EXPECT_TRUE(content.ok() && *content == data);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, WrittenVersionIsInvisibleUntilCommitted) {
  TempDir dir;
  run_on_executor(pending_is_invisible_until_commit(dir.path()));
}

Task<void> old_version_readable_while_pending(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto a = pattern(70000, 2), b = pattern(70000, 3);
  auto step1 = write_committed(engine.get(), kId, 0, a, 1);
  EXPECT_TRUE((co_await std::move(step1)).ok());
  auto writing = engine->write(kId, 0, bytes_of(b), crc32c(bytes_of(b)), {2, 1});
  EXPECT_TRUE((co_await std::move(writing)).ok());
  auto during = read_all(engine.get(), kId);
  EXPECT_TRUE(*(co_await std::move(during)) == a);
  auto committing = engine->commit(kId, 2, 1);
  EXPECT_TRUE((co_await std::move(committing)).ok());
  auto after = read_all(engine.get(), kId);
  EXPECT_TRUE(*(co_await std::move(after)) == b);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, OldVersionStaysReadableWhileTheNewOneIsPending) {
  TempDir dir;
  run_on_executor(old_version_readable_while_pending(dir.path()));
}

Task<void> partial_write_keeps_rest(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto base = pattern(50000, 4), patch = pattern(5001, 5);
  auto step2 = write_committed(engine.get(), kId, 0, base, 1);
  EXPECT_TRUE((co_await std::move(step2)).ok());
  auto step3 = write_committed(engine.get(), kId, 12345, patch, 2);
  EXPECT_TRUE((co_await std::move(step3)).ok());
  std::copy(patch.begin(), patch.end(), base.begin() + 12345);
  auto reading = read_all(engine.get(), kId);
  EXPECT_TRUE(*(co_await std::move(reading)) == base);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, PartialWriteKeepsTheRestOfTheChunk) {
  TempDir dir;
  run_on_executor(partial_write_keeps_rest(dir.path()));
}

Task<void> write_past_end_zero_fills(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto head = pattern(1000, 6), tail = pattern(10, 7);
  auto step4 = write_committed(engine.get(), kId, 0, head, 1);
  EXPECT_TRUE((co_await std::move(step4)).ok());
  auto step5 = write_committed(engine.get(), kId, 90000, tail, 2);
  EXPECT_TRUE((co_await std::move(step5)).ok());
  std::vector<std::byte> expect(90010, std::byte{0});
  std::copy(head.begin(), head.end(), expect.begin());
  std::copy(tail.begin(), tail.end(), expect.begin() + 90000);
  auto reading = read_all(engine.get(), kId);
  EXPECT_TRUE(*(co_await std::move(reading)) == expect);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, WritePastTheEndZeroFillsTheGap) {
  TempDir dir;
  run_on_executor(write_past_end_zero_fills(dir.path()));
}

Task<void> read_at_end_is_short(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto data = pattern(10000, 8);
  auto step6 = write_committed(engine.get(), kId, 0, data, 1);
  EXPECT_TRUE((co_await std::move(step6)).ok());
  std::vector<std::byte> out(5000);
  auto straddling = engine->read(kId, 7000, std::span(out));
  Result<size_t> n = co_await std::move(straddling);
  EXPECT_TRUE(n.ok() && *n == 3000u);
  EXPECT_TRUE(std::equal(out.begin(), out.begin() + 3000, data.begin() + 7000));
  auto beyond = engine->read(kId, 20000, std::span(out));
  Result<size_t> none = co_await std::move(beyond);
  EXPECT_TRUE(none.ok() && *none == 0u);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, ReadPastTheChunkLengthReturnsOnlyTheBytesThatExist) {
  TempDir dir;
  run_on_executor(read_at_end_is_short(dir.path()));
}

Task<void> aligned_read_in_place(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto data = pattern(65536, 9);
  auto step7 = write_committed(engine.get(), kId, 0, data, 1);
  EXPECT_TRUE((co_await std::move(step7)).ok());
  AlignedBuffer out(8192);
  auto reading = engine->read(kId, 16384, out.span());
  Result<size_t> n = co_await std::move(reading);
  EXPECT_TRUE(n.ok() && *n == 8192u);
  EXPECT_EQ(std::memcmp(out.data(), data.data() + 16384, 8192), 0);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, AlignedReadOfSomeBlocksReturnsThoseBlocks) {
  TempDir dir;
  run_on_executor(aligned_read_in_place(dir.path()));
}

Task<void> abort_drops_pending(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto a = pattern(3000, 10), b = pattern(4000, 11);
  auto step8 = write_committed(engine.get(), kId, 0, a, 1);
  EXPECT_TRUE((co_await std::move(step8)).ok());
  auto writing = engine->write(kId, 0, bytes_of(b), crc32c(bytes_of(b)), {2, 1});
  EXPECT_TRUE((co_await std::move(writing)).ok());
  auto aborting = engine->abort(kId, 2);
  EXPECT_TRUE((co_await std::move(aborting)).ok());
  Result<ChunkInfo> info = engine->stat(kId);
  EXPECT_TRUE(info.ok() && info->committed_version == 1 && info->pending_version == 0);
  auto reading = read_all(engine.get(), kId);
  EXPECT_TRUE(*(co_await std::move(reading)) == a);
  // A chunk that never committed disappears with its only version.
  ChunkId fresh{43, 0};
  auto creating = engine->write(fresh, 0, bytes_of(b), crc32c(bytes_of(b)), {1, 1});
  EXPECT_TRUE((co_await std::move(creating)).ok());
  auto dropping = engine->abort(fresh, 1);
  EXPECT_TRUE((co_await std::move(dropping)).ok());
  EXPECT_EQ(engine->stat(fresh).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(engine->space().chunks, 1u);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, AbortDropsThePendingVersionAndKeepsTheCommittedOne) {
  TempDir dir;
  run_on_executor(abort_drops_pending(dir.path()));
}

Task<void> truncate_cuts_and_extends(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto data = pattern(20000, 12);
  auto step9 = write_committed(engine.get(), kId, 0, data, 1);
  EXPECT_TRUE((co_await std::move(step9)).ok());
  auto cutting = engine->truncate(kId, 5001, {2, 1});
  EXPECT_TRUE((co_await std::move(cutting)).ok());
  auto committing = engine->commit(kId, 2, 1);
  EXPECT_TRUE((co_await std::move(committing)).ok());
  auto extending = engine->truncate(kId, 9000, {3, 1});
  EXPECT_TRUE((co_await std::move(extending)).ok());
  auto committing2 = engine->commit(kId, 3, 1);
  Result<ChunkInfo> info = co_await std::move(committing2);
  EXPECT_TRUE(info.ok() && info->length_bytes == 9000u);
  std::vector<std::byte> expect(9000, std::byte{0});
  std::copy(data.begin(), data.begin() + 5001, expect.begin());
  auto reading = read_all(engine.get(), kId);
  EXPECT_TRUE(*(co_await std::move(reading)) == expect);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, TruncateCutsTheChunkAndExtendsItWithZeros) {
  TempDir dir;
  run_on_executor(truncate_cuts_and_extends(dir.path()));
}

Task<void> remove_frees_slots(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto step10 = write_committed(engine.get(), kId, 0, pattern(1000, 13), 1);
  EXPECT_TRUE((co_await std::move(step10)).ok());
  auto next = pattern(1000, 14);
  auto writing = engine->write(kId, 0, bytes_of(next), crc32c(bytes_of(next)), {2, 1});
  EXPECT_TRUE((co_await std::move(writing)).ok());
  EXPECT_EQ(engine->space().used_slot_bytes, 2 * size_class_bytes(0));
  auto removing = engine->remove(kId);
  EXPECT_TRUE((co_await std::move(removing)).ok());
  EXPECT_EQ(engine->stat(kId).status().code(), StatusCode::kNotFound);
  SpaceStats space = engine->space();
  EXPECT_EQ(space.used_slot_bytes, 0u);
  EXPECT_EQ(space.chunks, 0u);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, RemoveDeletesAllVersionsAndFreesTheirSlots) {
  TempDir dir;
  run_on_executor(remove_frees_slots(dir.path()));
}

Task<void> replace_installs_committed(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto step11 = write_committed(engine.get(), kId, 0, pattern(1000, 15), 1);
  EXPECT_TRUE((co_await std::move(step11)).ok());
  auto next = pattern(1000, 16);
  auto writing = engine->write(kId, 0, bytes_of(next), crc32c(bytes_of(next)), {2, 1});
  EXPECT_TRUE((co_await std::move(writing)).ok());
  auto full = pattern(300000, 17);
  auto replacing = engine->replace(kId, bytes_of(full), crc32c(bytes_of(full)), {9, 2});
  Result<ChunkInfo> info = co_await std::move(replacing);
  EXPECT_TRUE(info.ok() && info->committed_version == 9 && info->pending_version == 0 &&
              info->chain_version == 2);
  auto reading = read_all(engine.get(), kId);
  EXPECT_TRUE(*(co_await std::move(reading)) == full);
  EXPECT_EQ(engine->space().used_slot_bytes, size_class_bytes(size_class_for(300000)));
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, ReplaceInstallsACommittedVersionAndDropsThePendingOne) {
  TempDir dir;
  run_on_executor(replace_installs_committed(dir.path()));
}

Task<void> checksum_is_crc_of_content(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto data = pattern(123457, 18);
  auto writing = engine->write(kId, 0, bytes_of(data), crc32c(bytes_of(data)), {1, 1});
  Result<ChunkInfo> info = co_await std::move(writing);
  EXPECT_EQ(info->pending_checksum, crc32c(bytes_of(data)));
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, ChunkChecksumIsTheCrc32cOfItsContent) {
  TempDir dir;
  run_on_executor(checksum_is_crc_of_content(dir.path()));
}

// A 4 KiB-aligned buffer that is the whole new version is written as it is (no copy): the
// bytes, their block CRCs and the chunk CRC must come out as with a copied write.
Task<void> aligned_full_write_replaces_the_content(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto old_data = pattern(3 * 4096, 21);
  auto first = write_committed(engine.get(), kId, 0, old_data, 1);
  EXPECT_TRUE((co_await std::move(first)).ok());
  auto new_data = pattern(4 * 4096, 22);
  AlignedBuffer aligned(new_data.size());
  std::memcpy(aligned.data(), new_data.data(), new_data.size());
  auto writing = engine->write(kId, 0, aligned.span(), crc32c(aligned.span()), {2, 1});
  Result<ChunkInfo> info = co_await std::move(writing);
  EXPECT_TRUE(info.ok()) << info.status();
  std::memset(aligned.data(), 0, aligned.size());  // the engine must not keep the caller's bytes
  auto committing = engine->commit(kId, 2, 1);
  Result<ChunkInfo> committed = co_await std::move(committing);
  EXPECT_TRUE(committed.ok() && committed->checksum == crc32c(new_data.data(), new_data.size()));
  auto reading = read_all(engine.get(), kId);
  Result<std::vector<std::byte>> content = co_await std::move(reading);
  EXPECT_TRUE(content.ok() && *content == new_data);
  auto checking = engine->fsck();
  Result<FsckReport> report = co_await std::move(checking);
  EXPECT_TRUE(report.ok() && report->ok());
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}

TEST(ChunkEngine, AlignedFullWriteIsWrittenWithoutCopyAndReadsBack) {
  TempDir dir;
  run_on_executor(aligned_full_write_replaces_the_content(dir.path()));
}

Task<void> write_and_commit_commits_at_once(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto first = write_committed(engine.get(), kId, 0, pattern(10000, 31), 1);
  EXPECT_TRUE((co_await std::move(first)).ok());
  auto change = pattern(5000, 32);
  auto both =
      engine->write_and_commit(kId, 3000, bytes_of(change), crc32c(bytes_of(change)), {2, 1});
  Result<ChunkInfo> info = co_await std::move(both);
  EXPECT_TRUE(info.ok() && info->committed_version == 2 && info->pending_version == 0);
  auto expected = pattern(10000, 31);
  std::copy(change.begin(), change.end(), expected.begin() + 3000);
  auto reading = read_all(engine.get(), kId);
  Result<std::vector<std::byte>> content = co_await std::move(reading);
  EXPECT_TRUE(content.ok() && *content == expected);
  // Same version rules as write(): the next version only.
  auto stale = engine->write_and_commit(kId, 0, bytes_of(change), crc32c(bytes_of(change)), {2, 1});
  EXPECT_EQ((co_await std::move(stale)).status().code(), StatusCode::kStaleVersion);
  auto checking = engine->fsck();
  Result<FsckReport> report = co_await std::move(checking);
  EXPECT_TRUE(report.ok() && report->ok() && report->free_slots >= 1);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}

TEST(ChunkEngine, WriteAndCommitMakesTheNewVersionCommittedAtOnce) {
  TempDir dir;
  run_on_executor(write_and_commit_commits_at_once(dir.path()));
}

Task<void> last_chunk_query(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  for (ChunkId id : {ChunkId{5, 0}, ChunkId{5, 1}, ChunkId{5, 300}, ChunkId{6, 0}, ChunkId{4, 9},
                     ChunkId{UINT64_MAX, 2}}) {
    auto step12 = write_committed(engine.get(), id, 0, pattern(10, 19), 1);
    EXPECT_TRUE((co_await std::move(step12)).ok());
  }
  auto last = engine->last_chunk(5);
  EXPECT_TRUE(last.ok() && *last && (*last)->id == (ChunkId{5, 300}));
  auto none = engine->last_chunk(7);
  EXPECT_TRUE(none.ok() && !*none);
  auto max = engine->last_chunk(UINT64_MAX);
  EXPECT_TRUE(max.ok() && *max && (*max)->id == (ChunkId{UINT64_MAX, 2}));
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, LastChunkOfAFileIsTheOneWithTheHighestIndex) {
  TempDir dir;
  run_on_executor(last_chunk_query(dir.path()));
}

Task<void> list_pages(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  std::vector<ChunkId> ids;
  for (uint32_t i = 0; i < 25; ++i) ids.push_back(ChunkId{(i * 7919u) % 5, i});
  for (ChunkId id : ids) {
    auto step = write_committed(engine.get(), id, 0, pattern(10, id.index), 1);
    EXPECT_TRUE((co_await std::move(step)).ok());
  }
  std::sort(ids.begin(), ids.end());
  std::vector<ChunkId> seen;
  std::optional<ChunkId> after;
  for (;;) {
    auto page = engine->list(after, 4);
    EXPECT_TRUE(page.ok());
    if (!page.ok() || page->empty()) break;
    for (const ChunkInfo& info : *page) seen.push_back(info.id);
    after = page->back().id;
  }
  EXPECT_EQ(seen, ids);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, ListPagesThroughEveryChunkInIdOrder) {
  TempDir dir;
  run_on_executor(list_pages(dir.path()));
}

Task<void> pending_survives_reopen_step1(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto step14 = write_committed(engine.get(), kId, 0, pattern(5000, 20), 1);
  EXPECT_TRUE((co_await std::move(step14)).ok());
  auto next = pattern(6000, 21);
  auto writing = engine->write(kId, 0, bytes_of(next), crc32c(bytes_of(next)), {2, 1});
  EXPECT_TRUE((co_await std::move(writing)).ok());
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
Task<void> pending_survives_reopen_step2(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  Result<ChunkInfo> info = engine->stat(kId);
  EXPECT_TRUE(info.ok() && info->committed_version == 1 && info->pending_version == 2);
  auto committing = engine->commit(kId, 2, 1);
  EXPECT_TRUE((co_await std::move(committing)).ok());
  auto reading = read_all(engine.get(), kId);
  EXPECT_TRUE(*(co_await std::move(reading)) == pattern(6000, 21));
  auto checking = engine->fsck();
  Result<FsckReport> report = co_await std::move(checking);
  EXPECT_TRUE(report.ok() && report->ok()) << report->to_string();
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, PendingVersionSurvivesReopenAndCanBeCommittedAfterwards) {
  TempDir dir;
  run_on_executor(pending_survives_reopen_step1(dir.path()));
  run_on_executor(pending_survives_reopen_step2(dir.path()));
}

Task<void> write_one(ChunkEngine* engine, ChunkId id, std::vector<Status>* out) {
  auto data = pattern(4096, id.index);
  auto step = write_committed(engine, id, 0, data, 1);
  out->push_back(co_await std::move(step));
}
Task<void> concurrent_group_commit(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  std::vector<Status> results;
  // Creating the target wrote its format record.
  EngineCounters before = engine->counters();
  {
    TaskScope scope;
    for (uint32_t i = 0; i < 64; ++i) scope.spawn(write_one(engine.get(), ChunkId{1, i}, &results));
    co_await scope.join();
  }
  EXPECT_EQ(results.size(), 64u);
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s;
  EngineCounters counters = engine->counters();
  EXPECT_EQ(counters.meta_requests - before.meta_requests, 128u);
  EXPECT_LT(counters.meta_transactions - before.meta_transactions,
            counters.meta_requests - before.meta_requests);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, ConcurrentUpdatesShareLmdbTransactions) {
  TempDir dir;
  run_on_executor(concurrent_group_commit(dir.path()));
}

Task<void> write_version(ChunkEngine* engine, uint32_t seed, std::vector<Status>* out) {
  auto data = pattern(20000, seed);
  auto writing = engine->write(kId, 0, bytes_of(data), crc32c(bytes_of(data)), {1, 1});
  out->push_back((co_await std::move(writing)).status());
}
Task<void> same_chunk_serialised(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  std::vector<Status> results;
  {
    TaskScope scope;
    scope.spawn(write_version(engine.get(), 1, &results));
    scope.spawn(write_version(engine.get(), 2, &results));
    co_await scope.join();
  }
  EXPECT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[0].ok()) << results[0];
  EXPECT_EQ(results[1].code(), StatusCode::kStaleVersion);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, ConcurrentWritesOfOneVersionOfOneChunkLetOnlyTheFirstThrough) {
  TempDir dir;
  run_on_executor(same_chunk_serialised(dir.path()));
}

Task<void> space_stats(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto step15 = write_committed(engine.get(), ChunkId{1, 0}, 0, pattern(1, 1), 1);
  EXPECT_TRUE((co_await std::move(step15)).ok());
  auto second = write_committed(engine.get(), ChunkId{1, 1}, 0, pattern(100000, 1), 1);
  EXPECT_TRUE((co_await std::move(second)).ok());
  SpaceStats s = engine->space();
  EXPECT_EQ(s.chunks, 2u);
  EXPECT_EQ(s.classes[0].used_slots, 1u);
  EXPECT_EQ(s.classes[1].used_slots, 1u);
  EXPECT_EQ(s.used_slot_bytes, size_class_bytes(0) + size_class_bytes(1));
  EXPECT_EQ(s.data_file_bytes, s.used_slot_bytes + s.free_slot_bytes);
  EXPECT_GT(s.lmdb_bytes, 0u);
  EXPECT_GT(s.disk_total_bytes, 0u);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkEngine, SpaceStatsCountChunksSlotsAndMetadata) {
  TempDir dir;
  run_on_executor(space_stats(dir.path()));
}

}  // namespace
}  // namespace mica::chunk
