// Crash safety: a writer process (chunk_crash_writer) is killed with SIGKILL at random moments;
// after each kill the target must reopen, every chunk must read as exactly the content of
// the version its metadata names (the one before the interrupted update or the new one),
// every pending version must carry its own content's checksum, and fsck must find nothing.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "async/crc32c.h"
#include "tests/chunk/crash_model.h"
#include "tests/chunk/test_util.h"

extern char** environ;

namespace mica::chunk {
namespace {

using namespace mica::chunk::testing;

// The content of each chunk's last computed version, to replay forward cheaply.
struct Model {
  std::map<uint32_t, std::pair<uint32_t, std::vector<std::byte>>> cache;
  const std::vector<std::byte>& content(uint32_t c, uint32_t v) {
    auto& [version, bytes] = cache[c];
    if (version > v) {
      version = 0;
      bytes.clear();
    }
    while (version < v) crash::apply(c, ++version, &bytes);
    return bytes;
  }
};

struct CheckTotals {
  uint64_t committed_versions = 0;  // sum over chunks, to see the writer progress
  uint64_t pending_seen = 0;
};

Task<bool> check_target(std::string dir, Model* model, CheckTotals* totals) {
  auto opening = ChunkEngine::open(dir, test_config());
  Result<std::unique_ptr<ChunkEngine>> opened = co_await std::move(opening);
  EXPECT_TRUE(opened.ok()) << opened.status();
  if (!opened.ok()) co_return false;
  std::unique_ptr<ChunkEngine> engine = std::move(*opened);
  bool ok = true;
  for (uint32_t c = 0; c < crash::kChunks && ok; ++c) {
    ChunkId id = crash::chunk_id(c);
    Result<ChunkInfo> info = engine->stat(id);
    if (!info.ok()) {
      EXPECT_EQ(info.status().code(), StatusCode::kNotFound) << info.status();
      ok = info.status().code() == StatusCode::kNotFound;
      continue;
    }
    totals->committed_versions += info->committed_version;
    if (info->committed_version != 0) {
      auto reading = read_all(engine.get(), id);
      Result<std::vector<std::byte>> content = co_await std::move(reading);
      EXPECT_TRUE(content.ok()) << content.status();
      bool same = content.ok() && *content == model->content(c, info->committed_version);
      EXPECT_TRUE(same) << "chunk " << c << " version " << info->committed_version;
      ok = ok && same;
    }
    if (info->pending_version != 0) {
      ++totals->pending_seen;
      EXPECT_EQ(info->pending_version, info->committed_version + 1);
      const auto& expect = model->content(c, info->pending_version);
      EXPECT_EQ(info->pending_checksum, crc32c(expect.data(), expect.size()))
          << "chunk " << c << " pending version " << info->pending_version;
      ok = ok && info->pending_checksum == crc32c(expect.data(), expect.size());
    }
  }
  auto checking = engine->fsck();
  Result<FsckReport> report = co_await std::move(checking);
  EXPECT_TRUE(report.ok() && report->ok()) << report->to_string();
  ok = ok && report.ok() && report->ok();
  auto closing = engine->close();
  EXPECT_TRUE((co_await std::move(closing)).ok());
  co_return ok;
}

uint64_t env_or(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(ChunkCrash, AKilledWriterLeavesEveryChunkAtAVersionItWroteAndFsckClean) {
  std::string helper = binary_dir() + "/chunk_crash_writer";
  ASSERT_TRUE(std::filesystem::exists(helper)) << helper << " is not built";
  TempDir dir;
  // Iterations stop early when the time budget is spent (sanitizer builds are slower).
  uint64_t iterations = env_or("MICA_CHUNK_CRASH_ITERATIONS", 300);
  uint64_t budget_s = env_or("MICA_CHUNK_CRASH_SECONDS", 45);
  uint64_t seed = env_or("MICA_CHUNK_CRASH_SEED", 20240601);
  std::mt19937_64 rng(seed);
  Model model;
  CheckTotals totals;
  auto start = std::chrono::steady_clock::now();
  uint64_t done = 0;
  for (; done < iterations; ++done) {
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(budget_s)) break;
    std::string seed_arg = std::to_string(seed + done);
    char* argv[] = {helper.data(), const_cast<char*>(dir.path().c_str()), seed_arg.data(), nullptr};
    pid_t pid = 0;
    ASSERT_EQ(posix_spawn(&pid, helper.c_str(), nullptr, nullptr, argv, environ), 0);
    // Up to ~60 ms: from mid-start-up (open, scan) to dozens of updates in.
    std::this_thread::sleep_for(std::chrono::microseconds(1000 + rng() % 60000));
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the writer ended by itself (status " << status << ") in iteration " << done
        << "; see its message above";
    bool ok = run_on_executor(check_target(dir.path(), &model, &totals));
    ASSERT_TRUE(ok) << "iteration " << done << ", seed " << seed;
  }
  RecordProperty("iterations", static_cast<int>(done));
  RecordProperty("committed_versions_total", static_cast<int>(totals.committed_versions));
  RecordProperty("pending_seen", static_cast<int>(totals.pending_seen));
  std::printf(
      "crash test: %lu kills, committed versions summed over checks %lu, pending "
      "versions found after a kill %lu\n",
      static_cast<unsigned long>(done), static_cast<unsigned long>(totals.committed_versions),
      static_cast<unsigned long>(totals.pending_seen));
  EXPECT_GE(done, 100u) << "too few iterations in the time budget";
  EXPECT_GT(totals.committed_versions, done) << "the writer made no progress";
}

}  // namespace
}  // namespace mica::chunk
