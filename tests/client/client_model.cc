// The model test's lanes (tests/client/client_model.h): the run's log and failure, the
// reference helpers, picking operations, and the final close and check of a lane. The
// operations themselves are in client_model_ops.cc.
#include "tests/client/client_model.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/ranges.h>

#include "client/errno.h"

namespace mica::testing::model {

void Run::fail(std::string why) {
  ++mismatches;
  note("MISMATCH: " + why);
  if (failure.empty()) failure = std::move(why);
}

std::string Run::report() const {
  std::string text =
      fmt::format("client model failed (seed {}; replay: MICA_CLIENT_MODEL_SEED={}): {}\n", seed,
                  seed, failure);
  size_t from = log.size() > kLogTailShown ? log.size() - kLogTailShown : 0;
  text += fmt::format("operation log (last {} of {} lines):\n", log.size() - from, log.size());
  for (size_t i = from; i < log.size(); ++i) text += log[i] + "\n";
  return text;
}

std::string Lane::mica_path(const std::string& rel) const {
  return fmt::format("/lane-{}{}", index, rel);
}

std::string Lane::ref_path(const std::string& rel) const {
  return fmt::format("{}/lane-{}{}", run->ref_root, index, rel);
}

std::string pick_file(Lane* lane) {
  const std::string& dir = lane->dirs[lane->random.below(lane->dirs.size())];
  // Now and then a directory not made yet: both trees must say ENOENT.
  std::string parent = lane->random.below(20) == 0 ? "/d9" : dir;
  return fmt::format("{}/f{}", parent, lane->random.below(5));
}

bool file_open(const Lane* lane, ino_t ino, const Handle* except) {
  for (const Handle& h : lane->handles)
    if (h.ino == ino && &h != except) return true;
  return false;
}

bool file_dirty(const Lane* lane, ino_t ino) {
  for (const Handle& h : lane->handles)
    if (h.ino == ino && h.dirty) return true;
  return false;
}

RefStat ref_stat(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  if (S_ISDIR(st.st_mode)) return RefStat{.directory = true};
  return RefStat{.ino = st.st_ino, .size = uint64_t(st.st_size)};
}

void compare_outcome(Lane* lane, const std::string& what, int ref_errno, const Status& got) {
  int got_errno = got.ok() ? 0 : client::status_to_errno(got);
  lane->run->note(fmt::format("  lane {}: {} -> ref errno {}, client {}", lane->index, what,
                              ref_errno, got.ok() ? std::string("ok") : got.to_string()));
  if (got_errno != ref_errno)
    lane->run->fail(fmt::format("lane {} op {}: {}: the reference gave errno {}, the client {}",
                                lane->index, lane->op, what, ref_errno, got.to_string()));
}

Task<Status> open_lane(Lane* lane) {
  lane->dirs = {""};
  if (::mkdir(lane->ref_path("").c_str(), 0755) != 0)
    co_return Status(StatusCode::kInternal, "mkdir of the reference lane failed");
  auto making = lane->client(0)->mkdir(lane->mica_path(""), 0755);
  Result<client::Inode> made = co_await std::move(making);
  if (!made.ok()) co_return made.status();
  co_return Status::ok_status();
}

Task<void> run_one(Lane* lane) {
  // Weights: writes and reads dominate; opens and closes keep handles coming and going.
  uint64_t dice = lane->random.below(100);
  Task<void> op = dice < 7    ? op_create(lane)
                  : dice < 20 ? op_open(lane)
                  : dice < 43 ? op_pwrite(lane)
                  : dice < 61 ? op_pread(lane)
                  : dice < 65 ? op_truncate_handle(lane)
                  : dice < 68 ? op_truncate_path(lane)
                  : dice < 73 ? op_fsync(lane)
                  : dice < 82 ? op_close(lane)
                  : dice < 87 ? op_stat(lane)
                  : dice < 91 ? op_verify(lane)
                  : dice < 95 ? op_unlink(lane)
                  : dice < 98 ? op_rename(lane)
                              : op_mkdir(lane);
  co_await std::move(op);
}

Task<void> run_lane(Lane* lane, uint64_t ops) {
  for (uint64_t i = 0; i < ops && !lane->run->failed(); ++i) {
    lane->op = i;
    auto running = run_one(lane);
    co_await std::move(running);
    ++lane->run->ops_done;
  }
}

// Reference names under a lane directory, sorted (what readdir must answer).
std::vector<std::string> ref_names(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Task<std::vector<std::string>> mica_names(Lane* lane, std::string dir, uint32_t client) {
  std::vector<std::string> names;
  std::string after;
  for (;;) {
    auto reading = lane->client(client)->readdir(lane->mica_path(dir), after);
    Result<client::DirPage> page = co_await std::move(reading);
    if (!page.ok()) {
      lane->run->fail(
          fmt::format("lane {}: readdir {}: {}", lane->index, dir, page.status().to_string()));
      co_return names;
    }
    for (const meta::ReaddirEntry& e : page->entries) names.push_back(e.name);
    if (page->done || page->entries.empty()) break;
    after = page->entries.back().name;
  }
  co_return names;
}

Task<void> close_lane(Lane* lane) {
  while (!lane->handles.empty()) {
    auto closing = close_handle(lane, lane->handles.size() - 1);
    co_await std::move(closing);
  }
  if (lane->run->failed()) co_return;
  lane->run->note(fmt::format("lane {}: final check", lane->index));
  for (const std::string& dir : lane->dirs) {
    uint32_t client = lane->pick_client();
    std::vector<std::string> expected = ref_names(lane->ref_path(dir));
    auto listing = mica_names(lane, dir, client);
    std::vector<std::string> got = co_await std::move(listing);
    if (lane->run->failed()) co_return;
    if (got != expected)
      lane->run->fail(fmt::format("lane {}: directory '{}' lists [{}], the reference [{}]",
                                  lane->index, dir, fmt::join(got, " "), fmt::join(expected, " ")));
    for (const std::string& name : expected) {
      std::string rel = dir + "/" + name;
      if (ref_stat(lane->ref_path(rel)).directory) continue;
      auto verifying = verify_file(lane, rel, lane->pick_client());
      co_await std::move(verifying);
      if (lane->run->failed()) co_return;
    }
  }
}

}  // namespace mica::testing::model

