// Integrity: damaged data, damaged metadata and foreign formats are detected, reported with a
// clear status and by fsck, and never returned as data.
#include <fcntl.h>
#include <sys/vfs.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "async/crc32c.h"
#include "kv/kv.h"
#include "tests/chunk/test_util.h"

namespace mica::chunk {
namespace {

using namespace mica::chunk::testing;
constexpr ChunkId kId{77, 3};

// Flips one byte of a data file with plain syscalls (the engine is closed).
void flip_byte(const std::string& file, uint64_t offset) {
  int fd = ::open(file.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  unsigned char b = 0;
  ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(offset)), 1);
  b ^= 0x5A;
  ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(offset)), 1);
  ::fsync(fd);
  ::close(fd);
}

Task<void> create_chunk(std::string dir, uint32_t size_bytes) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto writing = write_committed(engine.get(), kId, 0, pattern(size_bytes, 1), 1);
  EXPECT_TRUE((co_await std::move(writing)).ok());
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}

Task<void> flipped_byte_detected(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  // The byte flipped is in block 3 (bytes 12288..16383); block 0 still verifies.
  std::vector<std::byte> out(4096);
  auto good = engine->read(kId, 0, std::span(out));
  Result<size_t> n = co_await std::move(good);
  EXPECT_TRUE(n.ok() && *n == 4096u) << n.status();
  auto bad = engine->read(kId, 12000, std::span(out));
  EXPECT_EQ((co_await std::move(bad)).status().code(), StatusCode::kChecksumMismatch);
  // A partial write needs the damaged block back: it fails and changes nothing.
  std::vector<std::byte> patch(10);
  auto writing = engine->write(kId, 12300, std::span<const std::byte>(patch),
                               crc32c(std::span<const std::byte>(patch)), {2, 1});
  EXPECT_EQ((co_await std::move(writing)).status().code(), StatusCode::kChecksumMismatch);
  EXPECT_EQ(engine->stat(kId)->pending_version, 0u);
  auto checking = engine->fsck();
  Result<FsckReport> report = co_await std::move(checking);
  EXPECT_TRUE(report.ok());
  EXPECT_FALSE(report->ok());
  EXPECT_EQ(report->checksum_mismatches, 1u) << report->to_string();
  EXPECT_NE(report->to_string().find("block 3"), std::string::npos) << report->to_string();
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkIntegrity, AFlippedDataByteIsAChecksumMismatchAndFsckReportsIt) {
  TempDir dir;
  run_on_executor(create_chunk(dir.path(), 50000));
  flip_byte(dir.path() + "/data/64KiB.slots", 13000);  // slot 0 of class 0
  run_on_executor(flipped_byte_detected(dir.path()));
}

Task<void> healthy_fsck(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  for (uint32_t i = 0; i < 5; ++i) {
    auto writing = write_committed(engine.get(), ChunkId{1, i}, 0, pattern(30000 * i, i), 1);
    EXPECT_TRUE((co_await std::move(writing)).ok());
  }
  auto pending_data = pattern(5000, 9);
  auto pending = engine->write(ChunkId{1, 0}, 0, bytes_of(pending_data),
                               crc32c(bytes_of(pending_data)), {2, 1});
  EXPECT_TRUE((co_await std::move(pending)).ok());
  auto checking = engine->fsck();
  Result<FsckReport> report = co_await std::move(checking);
  EXPECT_TRUE(report.ok() && report->ok()) << report->to_string();
  EXPECT_EQ(report->chunks, 5u);
  EXPECT_EQ(report->pending_versions, 1u);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkIntegrity, FsckOfAHealthyTargetFindsNothing) {
  TempDir dir;
  run_on_executor(healthy_fsck(dir.path()));
}

// Rewrites the value under key in table of the target's metadata (the engine closed): edit
// gets the old value (empty when absent) and returns the new one.
Task<void> edit_metadata(std::string dir, std::string table, std::string key,
                         std::function<std::string(std::string)> edit) {
  auto opening = kv::Env::open(dir + "/meta", {});
  auto env = co_await std::move(opening);
  EXPECT_TRUE(env.ok()) << env.status();
  if (!env.ok()) co_return;
  auto t = (*env)->open_table(table);
  EXPECT_TRUE(t.ok());
  std::string old;
  {
    auto txn = (*env)->begin_read();
    EXPECT_TRUE(txn.ok());
    auto value = (*txn)->get(*t, key);
    EXPECT_TRUE(value.ok());
    if (value.ok() && *value) old = std::string(**value);
  }
  kv::WriteRequest request;
  request.put(*t, key, edit(std::move(old)));
  Status written = co_await (*env)->write(&request);
  EXPECT_TRUE(written.ok()) << written;
  Status closed = co_await (*env)->close();
  EXPECT_TRUE(closed.ok()) << closed;
}

std::string flip_committed_version(std::string record) {
  EXPECT_GT(record.size(), 20u);
  record[20] ^= 1;  // committed_version
  return record;
}

void damage_record(const std::string& dir) {
  ChunkKey key = encode_chunk_key(kId);
  run_on_executor(
      edit_metadata(dir, "chunks", std::string(key_view(key)), &flip_committed_version));
}

Task<void> damaged_record_detected(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  std::vector<std::byte> out(100);
  auto reading = engine->read(kId, 0, std::span(out));
  EXPECT_EQ((co_await std::move(reading)).status().code(), StatusCode::kCorruption);
  std::vector<std::byte> data(10);
  auto writing = engine->write(kId, 0, std::span<const std::byte>(data),
                               crc32c(std::span<const std::byte>(data)), {2, 1});
  EXPECT_EQ((co_await std::move(writing)).status().code(), StatusCode::kCorruption);
  auto checking = engine->fsck();
  Result<FsckReport> report = co_await std::move(checking);
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report->corrupt_records, 1u) << report->to_string();
  // remove() sheds the damaged chunk; its slot is unknown, so it is reused, not leaked.
  auto removing = engine->remove(kId);
  EXPECT_TRUE((co_await std::move(removing)).ok());
  auto again = engine->fsck();
  Result<FsckReport> clean = co_await std::move(again);
  EXPECT_TRUE(clean.ok() && clean->ok()) << clean->to_string();
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkIntegrity, ADamagedRecordIsCorruptionAndFsckReportsIt) {
  TempDir dir;
  run_on_executor(create_chunk(dir.path(), 1000));
  damage_record(dir.path());
  run_on_executor(damaged_record_detected(dir.path()));
}

Task<void> create_neighbours(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  for (uint32_t index : {kId.index - 1, kId.index, kId.index + 1}) {
    auto writing = write_committed(engine.get(), ChunkId{kId.inode, index}, 0, pattern(500, 1), 1);
    EXPECT_TRUE((co_await std::move(writing)).ok());
  }
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}

Task<void> damaged_record_listed(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  Result<std::vector<ChunkInfo>> listed = engine->list(std::nullopt, 10);
  EXPECT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed.ok() ? listed->size() : 0u, 3u);
  if (listed.ok() && listed->size() == 3) {
    EXPECT_FALSE((*listed)[0].damaged);
    EXPECT_EQ((*listed)[0].committed_version, 1u);
    EXPECT_TRUE((*listed)[1].damaged);
    EXPECT_EQ((*listed)[1].id, kId);
    EXPECT_FALSE((*listed)[2].damaged);
    EXPECT_EQ((*listed)[2].committed_version, 1u);
  }
  // Paging after the damaged chunk goes on past it.
  Result<std::vector<ChunkInfo>> rest = engine->list(kId, 10);
  EXPECT_TRUE(rest.ok() && rest->size() == 1 && (*rest)[0].id.index == kId.index + 1);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkIntegrity, ListReportsADamagedRecordInsteadOfSkippingIt) {
  TempDir dir;
  run_on_executor(create_neighbours(dir.path()));
  damage_record(dir.path());
  run_on_executor(damaged_record_listed(dir.path()));
}

Task<void> open_fails_with(std::string dir, StatusCode code) {
  auto opening = ChunkEngine::open(dir, test_config());
  Result<std::unique_ptr<ChunkEngine>> engine = co_await std::move(opening);
  EXPECT_EQ(engine.status().code(), code) << engine.status();
}

TEST(ChunkIntegrity, ADamagedLmdbFileFailsOpenWithCorruption) {
  TempDir dir;
  run_on_executor(create_chunk(dir.path(), 1000));
  {
    int fd = ::open((dir.path() + "/meta/data.mdb").c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    std::vector<char> junk(8192, 'x');  // both meta pages
    ASSERT_EQ(::pwrite(fd, junk.data(), junk.size(), 0), 8192);
    ::close(fd);
  }
  run_on_executor(open_fails_with(dir.path(), StatusCode::kCorruption));
}

std::string next_format_version(std::string) {
  FormatRecord f;
  std::string current = encode_format_record();
  std::memcpy(&f, current.data(), sizeof(f));
  f.format_version = kTargetFormatVersion + 1;
  f.record_crc = crc32c(&f, offsetof(FormatRecord, record_crc));
  return std::string(reinterpret_cast<char*>(&f), sizeof(f));
}

TEST(ChunkIntegrity, ATargetOfAnotherFormatVersionIsNotSupported) {
  TempDir dir;
  run_on_executor(create_chunk(dir.path(), 1000));
  run_on_executor(edit_metadata(dir.path(), "target", "format", &next_format_version));
  run_on_executor(open_fails_with(dir.path(), StatusCode::kNotSupported));
}

Task<void> buffered_round_trip(std::string dir) {
  ChunkEngineConfig config = test_config();
  config.buffered_io = true;
  auto opening = open_engine(dir, config);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  EXPECT_FALSE(engine->direct_io());
  std::vector<std::byte> data = pattern(70000, 3);
  auto writing = write_committed(engine.get(), kId, 0, data, 1);
  EXPECT_TRUE((co_await std::move(writing)).ok());
  std::vector<std::byte> patch = pattern(5000, 4);  // read-modify-write of old blocks
  auto patching = write_committed(engine.get(), kId, 10000, patch, 2);
  EXPECT_TRUE((co_await std::move(patching)).ok());
  std::copy(patch.begin(), patch.end(), data.begin() + 10000);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
  auto reopening = open_engine(dir, config);
  engine = co_await std::move(reopening);
  if (!engine) co_return;
  auto reading = read_all(engine.get(), kId);
  Result<std::vector<std::byte>> content = co_await std::move(reading);
  EXPECT_TRUE(content.ok() && *content == data) << content.status();
  auto checking = engine->fsck();
  Result<FsckReport> report = co_await std::move(checking);
  EXPECT_TRUE(report.ok() && report->ok()) << report->to_string();
  auto closing2 = close_engine(std::move(engine));
  co_await std::move(closing2);
}
TEST(ChunkIntegrity, TheBufferedPathChosenByConfigRoundTripsAndVerifies) {
  TempDir dir;
  run_on_executor(buffered_round_trip(dir.path()));
}

Task<void> tmpfs_round_trip(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  // tmpfs refused O_DIRECT (EINVAL) before Linux 6.6; the engine then uses buffered I/O.
  ::testing::Test::RecordProperty("direct_io",
                                  engine->direct_io() ? "yes" : "no (buffered fallback)");
  auto data = pattern(70000, 3);
  auto writing = write_committed(engine.get(), kId, 0, data, 1);
  EXPECT_TRUE((co_await std::move(writing)).ok());
  auto reading = read_all(engine.get(), kId);
  EXPECT_TRUE(*(co_await std::move(reading)) == data);
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkIntegrity, OnTmpfsChunksRoundTripWithOrWithoutODirect) {
  struct statfs fs;
  if (::statfs("/dev/shm", &fs) != 0 || fs.f_type != 0x01021994 /* TMPFS_MAGIC */)
    GTEST_SKIP() << "/dev/shm is not tmpfs here";
  TempDir dir("/dev/shm");
  run_on_executor(tmpfs_round_trip(dir.path()));
}

}  // namespace
}  // namespace mica::chunk
