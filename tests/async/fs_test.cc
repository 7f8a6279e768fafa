// The name operations of async/file.h (mkdir, rename, unlink, stat, directory sync,
// statvfs) on both backends: every body below runs once on io_uring in a real directory and
// once on a simulated host, and must see the same answers.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "async/file.h"
#include "async/sim/world.h"

namespace mica {
namespace {

enum class Kind { kUring, kSim };

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

Task<Status> write_new(std::string path, std::string data) {
  Task<Result<File>> opening = File::open(path, O_RDWR | O_CREAT | O_TRUNC);
  CO_TRY_ASSIGN(File file, co_await std::move(opening));
  Task<Status> writing = file.write_full(bytes_of(data), 0);
  CO_TRY(co_await std::move(writing));
  CO_TRY(co_await file.close());
  co_return Status();
}

Task<Result<std::string>> read_all(std::string path) {
  Task<Result<File>> opening = File::open(path, O_RDONLY);
  CO_TRY_ASSIGN(File file, co_await std::move(opening));
  std::string buffer(4096, '\0');
  std::span<std::byte> span = std::as_writable_bytes(std::span(buffer.data(), buffer.size()));
  Task<Result<size_t>> reading = file.read_full(span, 0);
  CO_TRY_ASSIGN(size_t n, co_await std::move(reading));
  CO_TRY(co_await file.close());
  buffer.resize(n);
  co_return buffer;
}

// Each body gets an existing, empty directory and reports the first broken expectation.
using Body = Task<Status> (*)(std::string root);

Status expect(bool ok, std::string_view what) {
  return ok ? Status() : Status(StatusCode::kInternal, std::string(what));
}

Task<Status> mkdir_then_stat(std::string root) {
  std::string dir = root + "/d";
  auto making = make_directory(dir);
  CO_TRY(co_await std::move(making));
  auto stating = stat_path(dir);
  CO_TRY_ASSIGN(FileStat st, co_await std::move(stating));
  CO_TRY(expect(st.is_directory(), "a made directory stats as a directory"));
  auto again = make_directory(dir);
  Status twice = co_await std::move(again);
  CO_TRY(expect(twice.code() == StatusCode::kAlreadyExists, "mkdir twice: " + twice.to_string()));
  auto nested = make_directory(root + "/missing/d");
  Status orphan = co_await std::move(nested);
  co_return expect(orphan.code() == StatusCode::kNotFound, "mkdir without parent");
}

Task<Status> ensure_accepts_a_directory_not_a_file(std::string root) {
  auto first = ensure_directory(root + "/d");
  CO_TRY(co_await std::move(first));
  auto second = ensure_directory(root + "/d");
  CO_TRY(co_await std::move(second));
  auto writing = write_new(root + "/f", "x");
  CO_TRY(co_await std::move(writing));
  auto over_file = ensure_directory(root + "/f");
  Status s = co_await std::move(over_file);
  co_return expect(s.code() == StatusCode::kInvalidArgument,
                   "ensure over a file: " + s.to_string());
}

Task<Status> rename_replaces_the_target(std::string root) {
  auto a = write_new(root + "/a", "new content");
  CO_TRY(co_await std::move(a));
  auto b = write_new(root + "/b", "old");
  CO_TRY(co_await std::move(b));
  auto renaming = rename_path(root + "/a", root + "/b");
  CO_TRY(co_await std::move(renaming));
  auto reading = read_all(root + "/b");
  CO_TRY_ASSIGN(std::string content, co_await std::move(reading));
  CO_TRY(expect(content == "new content", "rename target holds the source: " + content));
  auto stating = stat_path(root + "/a");
  Result<FileStat> gone = co_await std::move(stating);
  CO_TRY(expect(gone.status().code() == StatusCode::kNotFound, "the old name is gone"));
  auto missing = rename_path(root + "/a", root + "/c");
  Status s = co_await std::move(missing);
  co_return expect(s.code() == StatusCode::kNotFound, "rename of a missing name");
}

Task<Status> remove_file_and_empty_directory(std::string root) {
  auto making = make_directory(root + "/d");
  CO_TRY(co_await std::move(making));
  auto writing = write_new(root + "/d/f", "x");
  CO_TRY(co_await std::move(writing));
  auto too_early = remove_directory(root + "/d");
  Status full = co_await std::move(too_early);
  CO_TRY(
      expect(full.code() == StatusCode::kInvalidArgument, "rmdir non-empty: " + full.to_string()));
  auto on_dir = remove_file(root + "/d");
  Status is_dir = co_await std::move(on_dir);
  CO_TRY(expect(!is_dir.ok(), "unlink of a directory fails"));
  auto removing = remove_file(root + "/d/f");
  CO_TRY(co_await std::move(removing));
  auto rmdir = remove_directory(root + "/d");
  CO_TRY(co_await std::move(rmdir));
  auto stating = stat_path(root + "/d");
  Result<FileStat> gone = co_await std::move(stating);
  co_return expect(gone.status().code() == StatusCode::kNotFound, "removed directory is gone");
}

Task<Status> file_stat_reports_size_and_allocation(std::string root) {
  auto opening = File::open(root + "/f", O_RDWR | O_CREAT);
  CO_TRY_ASSIGN(File file, co_await std::move(opening));
  std::string data(10000, 'z');
  auto writing = file.write_full(bytes_of(data), 0);
  CO_TRY(co_await std::move(writing));
  CO_TRY(co_await file.fallocate(FALLOC_FL_KEEP_SIZE, 0, 1 << 20));
  auto stating = file.stat();
  CO_TRY_ASSIGN(FileStat st, co_await std::move(stating));
  CO_TRY(co_await file.close());
  CO_TRY(expect(st.size_bytes == 10000, fmt::format("size {}", st.size_bytes)));
  CO_TRY(expect(!st.is_directory(), "a file is no directory"));
  co_return expect(st.allocated_bytes >= (1 << 20),
                   fmt::format("allocated {}", st.allocated_bytes));
}

Task<Status> sync_directory_of_missing_is_not_found(std::string root) {
  auto syncing = sync_directory(root);
  CO_TRY(co_await std::move(syncing));
  auto missing = sync_directory(root + "/none");
  Status s = co_await std::move(missing);
  co_return expect(s.code() == StatusCode::kNotFound, "sync of a missing directory");
}

Task<Status> file_system_space_is_sane(std::string root) {
  CO_TRY_ASSIGN(FsSpace space, file_system_space(root));
  CO_TRY(expect(space.total_bytes > 0, "total"));
  CO_TRY(expect(space.available_bytes <= space.total_bytes, "available <= total"));
  Result<FsSpace> missing = file_system_space(root + "/none");
  co_return expect(missing.status().code() == StatusCode::kNotFound, "statvfs of a missing path");
}

class FsTest : public ::testing::TestWithParam<Kind> {
 protected:
  void run(Body body) {
    int64_t frames_before = live_frames();
    Status s;
    if (GetParam() == Kind::kUring) {
      // Inside the build tree: a real file system, not a tmpfs with its own rules.
      std::filesystem::path dir = std::filesystem::current_path() /
                                  ("fs_test_" + std::to_string(getpid()) + "_" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
      std::filesystem::remove_all(dir);
      std::filesystem::create_directories(dir);
      {
        std::unique_ptr<Executor> executor = Executor::create_uring();
        s = executor->block_on(body(dir.string()));
      }
      std::filesystem::remove_all(dir);
    } else {
      sim::SimWorld world(sim::sim_seed(9));
      sim::SimHost& host = world.add_host("fs");
      host.disk().make_durable_directories("/fs/test");
      s = world.run(host, body("/fs/test"));
    }
    EXPECT_TRUE(s.ok()) << s.to_string();
    EXPECT_EQ(live_frames(), frames_before) << "frame leak";
  }
};

TEST_P(FsTest, MakeDirectoryThenStatSaysDirectory) {
  run(&mkdir_then_stat);
}
TEST_P(FsTest, EnsureDirectoryAcceptsADirectoryNotAFile) {
  run(&ensure_accepts_a_directory_not_a_file);
}
TEST_P(FsTest, RenameReplacesTheTarget) {
  run(&rename_replaces_the_target);
}
TEST_P(FsTest, RemoveFileAndEmptyDirectory) {
  run(&remove_file_and_empty_directory);
}
TEST_P(FsTest, FileStatReportsSizeAndAllocation) {
  run(&file_stat_reports_size_and_allocation);
}
TEST_P(FsTest, SyncDirectoryOfAMissingDirectoryIsNotFound) {
  run(&sync_directory_of_missing_is_not_found);
}
TEST_P(FsTest, FileSystemSpaceIsSane) {
  run(&file_system_space_is_sane);
}

INSTANTIATE_TEST_SUITE_P(Backends, FsTest, ::testing::Values(Kind::kUring, Kind::kSim),
                         [](const ::testing::TestParamInfo<Kind>& info) {
                           return info.param == Kind::kUring ? "Uring" : "Sim";
                         });

}  // namespace
}  // namespace mica
