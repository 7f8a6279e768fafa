// Update tags (UpdateVersion.tag) are kept with each version of a chunk and survive restarts;
// record format 2 holds them and format-1 records (no tags) still decode, so an existing target
// opens; read_pending returns the pending version's bytes and CRC.
#include <cstring>

#include "async/crc32c.h"
#include "chunk/record.h"
#include "kv/kv.h"
#include "tests/chunk/test_util.h"

namespace mica::chunk {
namespace {

using namespace mica::chunk::testing;
constexpr ChunkId kId{91, 4};
constexpr UpdateTag kTagA{7, 1001};
constexpr UpdateTag kTagB{7, 1002};
constexpr UpdateTag kTagC{8, 5};

Task<Result<ChunkInfo>> write_tagged(ChunkEngine* engine, ChunkId id, std::vector<std::byte> data,
                                     uint32_t version, UpdateTag tag) {
  auto writing =
      engine->write(id, 0, bytes_of(data), crc32c(bytes_of(data)), UpdateVersion{version, 1, tag});
  co_return co_await std::move(writing);
}

Task<void> tags_before_restart(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto first = write_tagged(engine.get(), kId, pattern(9000, 1), 1, kTagA);
  Result<ChunkInfo> written = co_await std::move(first);
  EXPECT_TRUE(written.ok() && written->pending_tag == kTagA && written->committed_tag.empty());
  auto committing = engine->commit(kId, 1, 1);
  Result<ChunkInfo> committed = co_await std::move(committing);
  EXPECT_TRUE(committed.ok() && committed->committed_tag == kTagA &&
              committed->pending_tag.empty());
  auto second = write_tagged(engine.get(), kId, pattern(7000, 2), 2, kTagB);
  written = co_await std::move(second);
  EXPECT_TRUE(written.ok() && written->committed_tag == kTagA && written->pending_tag == kTagB);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
Task<void> tags_after_restart(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  Result<ChunkInfo> info = engine->stat(kId);
  EXPECT_TRUE(info.ok() && info->committed_tag == kTagA && info->pending_tag == kTagB);
  auto committing = engine->commit(kId, 2, 1);
  Result<ChunkInfo> committed = co_await std::move(committing);
  EXPECT_TRUE(committed.ok() && committed->committed_tag == kTagB &&
              committed->pending_tag.empty());
  info = engine->stat(kId);
  EXPECT_TRUE(info.ok() && info->committed_tag == kTagB && info->pending_tag.empty());
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkUpdateTag, TagsRoundTripThroughWriteCommitAndRestart) {
  TempDir dir;
  run_on_executor(tags_before_restart(dir.path()));
  run_on_executor(tags_after_restart(dir.path()));
}

Task<void> committing_updates_set_committed_tag(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto data = pattern(5000, 3);
  auto tail = engine->write_and_commit(kId, 0, bytes_of(data), crc32c(bytes_of(data)),
                                       UpdateVersion{1, 1, kTagA});
  Result<ChunkInfo> info = co_await std::move(tail);
  EXPECT_TRUE(info.ok() && info->committed_tag == kTagA && info->pending_tag.empty());
  auto pending = write_tagged(engine.get(), kId, pattern(100, 4), 2, kTagB);
  EXPECT_TRUE((co_await std::move(pending)).ok());
  // A replace installs a committed version with its own tag and drops the pending one's.
  auto replacing =
      engine->replace(kId, bytes_of(data), crc32c(bytes_of(data)), UpdateVersion{5, 2, kTagC});
  info = co_await std::move(replacing);
  EXPECT_TRUE(info.ok() && info->committed_tag == kTagC && info->pending_tag.empty());
  info = engine->stat(kId);
  EXPECT_TRUE(info.ok() && info->committed_tag == kTagC && info->pending_tag.empty());
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkUpdateTag, WriteAndCommitAndReplaceSetTheCommittedTag) {
  TempDir dir;
  run_on_executor(committing_updates_set_committed_tag(dir.path()));
}

Task<void> list_reports_tags(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  for (uint32_t i = 0; i < 3; ++i) {
    auto writing = write_tagged(engine.get(), ChunkId{3, i}, pattern(100, i), 1, {9, i + 1});
    EXPECT_TRUE((co_await std::move(writing)).ok());
  }
  auto committing = engine->commit(ChunkId{3, 0}, 1, 1);
  EXPECT_TRUE((co_await std::move(committing)).ok());
  auto truncating = engine->truncate(ChunkId{3, 0}, 10, UpdateVersion{2, 1, kTagC});
  Result<ChunkInfo> truncated = co_await std::move(truncating);
  EXPECT_TRUE(truncated.ok() && truncated->pending_tag == kTagC);
  auto aborting = engine->abort(ChunkId{3, 1}, 1);  // its tag goes with it
  EXPECT_TRUE((co_await std::move(aborting)).ok());
  auto listed = engine->list(std::nullopt, 10);
  EXPECT_TRUE(listed.ok() && listed->size() == 2u);
  if (!listed.ok() || listed->size() != 2u) co_return;
  EXPECT_EQ((*listed)[0].committed_tag, (UpdateTag{9, 1}));
  EXPECT_EQ((*listed)[0].pending_tag, kTagC);
  EXPECT_TRUE((*listed)[1].committed_tag.empty());
  EXPECT_EQ((*listed)[1].pending_tag, (UpdateTag{9, 3}));
  auto last = engine->last_chunk(3);
  EXPECT_TRUE(last.ok() && *last && (*last)->pending_tag == (UpdateTag{9, 3}));
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkUpdateTag, ListAndLastChunkReportTheTags) {
  TempDir dir;
  run_on_executor(list_reports_tags(dir.path()));
}

// A format-2 record rewritten as format 1 would have stored it: no tags, a 56-byte header.
std::string as_format_one(std::string record) {
  EXPECT_GE(record.size(), sizeof(RecordHeader));
  record.erase(kUntaggedHeaderBytes, sizeof(RecordHeader) - kUntaggedHeaderBytes);
  record[4] = static_cast<char>(kRecordFormatUntagged);
  uint32_t crc = crc32c(record.data() + 4, record.size() - 4);
  std::memcpy(record.data(), &crc, 4);
  return record;
}

ChunkRecord sample_record() {
  ChunkRecord r;
  r.chain_version = 3;
  r.committed_version = 4;
  r.pending_version = 5;
  r.committed = Placement{0, 2, 5000, 0x1234};
  r.pending = Placement{1, 7, 70000, 0x5678};
  r.committed_crcs.assign(block_count(5000), 0xAA);
  r.pending_crcs.assign(block_count(70000), 0xBB);
  r.committed_tag = kTagA;
  r.pending_tag = kTagB;
  return r;
}

TEST(ChunkRecordFormat, TagsRoundTripThroughEncodeAndDecode) {
  ChunkRecord r = sample_record();
  std::string bytes = encode_record(r);
  EXPECT_EQ(bytes.size(), 88u + 4 * (r.committed_crcs.size() + r.pending_crcs.size()));
  EXPECT_EQ(bytes[4], static_cast<char>(2));
  Result<ChunkRecord> back = decode_record(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->info(kId), r.info(kId));
  EXPECT_EQ(back->committed_crcs, r.committed_crcs);
  EXPECT_EQ(back->pending_crcs, r.pending_crcs);
}

TEST(ChunkRecordFormat, FormatOneRecordDecodesWithEmptyTags) {
  ChunkRecord r = sample_record();
  Result<ChunkRecord> back = decode_record(as_format_one(encode_record(r)));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->committed_tag.empty());
  EXPECT_TRUE(back->pending_tag.empty());
  EXPECT_EQ(back->committed, r.committed);
  EXPECT_EQ(back->pending, r.pending);
  EXPECT_EQ(back->committed_crcs, r.committed_crcs);
  EXPECT_EQ(back->pending_crcs, r.pending_crcs);
}

TEST(ChunkRecordFormat, TruncatedFormatTwoHeaderIsCorruption) {
  std::string bytes = encode_record(sample_record());
  // A format-2 record cut to a format-1 size (CRC fixed up): the lengths no longer add up.
  bytes.resize(kUntaggedHeaderBytes + 8);
  uint32_t crc = crc32c(bytes.data() + 4, bytes.size() - 4);
  std::memcpy(bytes.data(), &crc, 4);
  EXPECT_EQ(decode_record(bytes).status().code(), StatusCode::kCorruption);
}

// Rewrites kId's record in format 1 with kv/ directly (the engine closed).
Task<void> downgrade_record(std::string dir) {
  auto opening = kv::Env::open(dir + "/meta", {});
  auto env = co_await std::move(opening);
  EXPECT_TRUE(env.ok()) << env.status();
  if (!env.ok()) co_return;
  auto table = (*env)->open_table("chunks");
  EXPECT_TRUE(table.ok());
  ChunkKey key = encode_chunk_key(kId);
  std::string old;
  {
    auto txn = (*env)->begin_read();
    EXPECT_TRUE(txn.ok());
    auto value = (*txn)->get(*table, key_view(key));
    EXPECT_TRUE(value.ok() && *value);
    if (value.ok() && *value) old = std::string(**value);
  }
  kv::WriteRequest request;
  request.put(*table, key_view(key), as_format_one(std::move(old)));
  Status written = co_await (*env)->write(&request);
  EXPECT_TRUE(written.ok()) << written;
  Status closed = co_await (*env)->close();
  EXPECT_TRUE(closed.ok()) << closed;
}

Task<void> format_one_target_opens(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  Result<ChunkInfo> info = engine->stat(kId);
  EXPECT_TRUE(info.ok() && info->committed_version == 1 && info->pending_version == 2);
  EXPECT_TRUE(info.ok() && info->committed_tag.empty() && info->pending_tag.empty());
  auto reading = read_all(engine.get(), kId);
  EXPECT_TRUE(*(co_await std::move(reading)) == pattern(9000, 1));
  auto checking = engine->fsck();
  Result<FsckReport> report = co_await std::move(checking);
  EXPECT_TRUE(report.ok() && report->ok()) << report->to_string();
  // The next update writes the record in format 2, with its tag.
  auto committing = engine->commit(kId, 2, 1);
  Result<ChunkInfo> committed = co_await std::move(committing);
  EXPECT_TRUE(committed.ok() && committed->committed_version == 2);
  auto writing = write_tagged(engine.get(), kId, pattern(10, 5), 3, kTagC);
  Result<ChunkInfo> written = co_await std::move(writing);
  EXPECT_TRUE(written.ok() && written->pending_tag == kTagC);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkUpdateTag, TargetWithFormatOneRecordsOpensAndServesThem) {
  TempDir dir;
  run_on_executor(tags_before_restart(dir.path()));
  run_on_executor(downgrade_record(dir.path()));
  run_on_executor(format_one_target_opens(dir.path()));
}

Task<void> read_pending_bytes(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  std::vector<std::byte> out(20000);
  auto absent = engine->read_pending(kId, 0, std::span(out));
  EXPECT_EQ((co_await std::move(absent)).status().code(), StatusCode::kNotFound);
  auto committing = write_committed(engine.get(), kId, 0, pattern(9000, 1), 1);
  EXPECT_TRUE((co_await std::move(committing)).ok());
  auto none = engine->read_pending(kId, 0, std::span(out));
  EXPECT_EQ((co_await std::move(none)).status().code(), StatusCode::kNotFound);
  auto next = pattern(12000, 2);
  auto writing = write_tagged(engine.get(), kId, next, 2, kTagA);
  EXPECT_TRUE((co_await std::move(writing)).ok());
  auto reading = engine->read_pending(kId, 100, std::span(out));
  Result<ReadResult> got = co_await std::move(reading);
  EXPECT_TRUE(got.ok()) << got.status();
  if (!got.ok()) co_return;
  EXPECT_EQ(got->bytes, 11900u);
  std::span<const std::byte> expected(next.data() + 100, 11900);
  EXPECT_EQ(std::memcmp(out.data(), expected.data(), expected.size()), 0);
  EXPECT_EQ(got->crc, crc32c(expected));
  // The committed version is still what read() returns.
  auto committed = read_all(engine.get(), kId);
  EXPECT_TRUE(*(co_await std::move(committed)) == pattern(9000, 1));
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkUpdateTag, ReadPendingReturnsThePendingBytesAndTheirCrcOrNotFound) {
  TempDir dir;
  run_on_executor(read_pending_bytes(dir.path()));
}

}  // namespace
}  // namespace mica::chunk
