// Node and target identity files (craq/node_identity.h) on the real disk through io_uring:
// they survive a reopen, a save replaces them whole, a torn temp file left by a crash
// during a save is ignored, and a corrupted file is refused rather than replaced; and on
// the simulated disk, a power loss during a save leaves the old record or the new one.
#include "craq/node_identity.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "async/file.h"
#include "async/sim/world.h"
#include "tests/co_test.h"

namespace mica::craq {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

MICA_CO_TEST(NodeIdentity, AFirstLoadCreatesARandomIdentityWithNoId) {
  auto loading = load_or_create_node_identity(dir.path);
  Result<NodeIdentity> first = co_await std::move(loading);
  CO_ASSERT_OK(first);
  EXPECT_EQ(first->node, 0u);
  EXPECT_EQ(first->identity.size(), 32u);
  CO_ASSERT_TRUE(!slurp(dir.file(kNodeIdentityFile)).empty());
  std::string other_dir = dir.file("other");
  auto making = make_directory(other_dir);
  CO_ASSERT_OK(co_await std::move(making));
  auto loading_other = load_or_create_node_identity(other_dir);
  Result<NodeIdentity> other = co_await std::move(loading_other);
  CO_ASSERT_OK(other);
  EXPECT_NE(other->identity, first->identity);
}

MICA_CO_TEST(NodeIdentity, TheSavedIdAndIdentitySurviveAReopen) {
  auto loading = load_or_create_node_identity(dir.path);
  Result<NodeIdentity> created = co_await std::move(loading);
  CO_ASSERT_OK(created);
  NodeIdentity assigned{.node = 17, .identity = created->identity};
  auto saving = save_node_identity(dir.path, assigned);
  CO_ASSERT_OK(co_await std::move(saving));
  auto reloading = load_or_create_node_identity(dir.path);
  Result<NodeIdentity> reopened = co_await std::move(reloading);
  CO_ASSERT_OK(reopened);
  EXPECT_EQ(*reopened, assigned);
  auto again = load_or_create_node_identity(dir.path);
  Result<NodeIdentity> third = co_await std::move(again);
  CO_ASSERT_OK(third);
  EXPECT_EQ(*third, assigned);
}

MICA_CO_TEST(NodeIdentity, ATornTempFileFromACrashedSaveIsIgnored) {
  auto loading = load_or_create_node_identity(dir.path);
  Result<NodeIdentity> created = co_await std::move(loading);
  CO_ASSERT_OK(created);
  // A save that crashed before its rename: half a record in the temp file.
  std::string temp = dir.file(std::string(kNodeIdentityFile) + ".tmp");
  spit(temp, "mica node v1\nid 99\nident");
  auto reloading = load_or_create_node_identity(dir.path);
  Result<NodeIdentity> reopened = co_await std::move(reloading);
  CO_ASSERT_OK(reopened);
  EXPECT_EQ(*reopened, *created);
  EXPECT_FALSE(std::filesystem::exists(temp)) << "the leftover temp file is removed";
}

MICA_CO_TEST(NodeIdentity, ACorruptedFileIsRefusedNotReplaced) {
  auto loading = load_or_create_node_identity(dir.path);
  CO_ASSERT_OK(co_await std::move(loading));
  std::string path = dir.file(kNodeIdentityFile);
  std::string content = slurp(path);
  content[content.find("identity ") + 9] ^= 1;  // one flipped bit in the identity
  spit(path, content);
  auto reloading = load_or_create_node_identity(dir.path);
  Result<NodeIdentity> reopened = co_await std::move(reloading);
  CO_ASSERT_TRUE(!reopened.ok());
  EXPECT_EQ(reopened.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(slurp(path), content) << "a refused file is left for an operator to look at";
}

MICA_CO_TEST(TargetIdentity, ATargetDirectoryKeepsItsOwnIdentityAndId) {
  auto loading = load_or_create_target_identity(dir.path);
  Result<TargetIdentity> created = co_await std::move(loading);
  CO_ASSERT_OK(created);
  EXPECT_EQ(created->target, 0u);
  TargetIdentity assigned{.target = uint64_t{1} << 40, .identity = created->identity};
  auto saving = save_target_identity(dir.path, assigned);
  CO_ASSERT_OK(co_await std::move(saving));
  auto reloading = load_or_create_target_identity(dir.path);
  Result<TargetIdentity> reopened = co_await std::move(reloading);
  CO_ASSERT_OK(reopened);
  EXPECT_EQ(*reopened, assigned);
  // A node identity file is not a target identity file.
  spit(dir.file(kNodeIdentityFile), slurp(dir.file(kTargetIdentityFile)));
  auto misreading = load_or_create_node_identity(dir.path);
  Result<NodeIdentity> wrong = co_await std::move(misreading);
  CO_ASSERT_TRUE(!wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace mica::craq

namespace mica::craq {
namespace {

// Loads into *out (a Task<void>, so the world runs it without carrying the Result).
Task<void> load_into(Result<NodeIdentity>* out) {
  auto loading = load_or_create_node_identity("/node");
  Result<NodeIdentity> loaded = co_await std::move(loading);
  if (!loaded.ok()) {
    *out = loaded.status();
    co_return;
  }
  *out = *loaded;
}

Task<void> save_then_mark(const NodeIdentity* identity, bool* saved) {
  auto saving = save_node_identity("/node", *identity);
  Status status = co_await std::move(saving);
  *saved = status.ok();
}

// On the simulated disk, a power loss at a seeded moment of a save leaves either the old
// record or the new one, whole: never a torn or missing file. Over the seeds both happen.
TEST(NodeIdentity, APowerLossDuringASaveLeavesTheOldOrTheNewRecord) {
  constexpr uint64_t kSeeds = 60;
  uint64_t kept_old = 0, got_new = 0;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    sim::SimWorld world(seed);
    sim::SimHost& host = world.add_host("node");
    host.disk().make_durable_directories("/node");
    Result<NodeIdentity> created = Status(StatusCode::kInternal, "not run");
    world.run(host, load_into(&created));
    ASSERT_TRUE(created.ok()) << created.status();
    bool saved = false;
    NodeIdentity assigned{7, created->identity};
    world.spawn(host, save_then_mark(&assigned, &saved));
    Duration at = world.random().between(Duration(0), std::chrono::milliseconds(2));
    world.schedule(at, [&world, &host] {
      if (host.up()) world.crash(host);
    });
    world.run_until_idle();
    if (!host.up()) world.restart(host, {});
    Result<NodeIdentity> back = Status(StatusCode::kInternal, "not run");
    world.run(host, load_into(&back));
    ASSERT_TRUE(back.ok()) << "seed " << seed << ": " << back.status();
    EXPECT_EQ(back->identity, created->identity) << "seed " << seed;
    if (saved) {
      EXPECT_EQ(back->node, 7u) << "seed " << seed << ": an acknowledged save was lost";
    }
    EXPECT_TRUE(back->node == 0 || back->node == 7) << "seed " << seed;
    (back->node == 7 ? got_new : kept_old) += 1;
  }
  std::printf("NodeIdentity: %llu power losses kept the old record, %llu the new one\n",
              (unsigned long long)kept_old, (unsigned long long)got_new);
  EXPECT_GT(kept_old, 0u) << "no power loss came before the rename was durable";
  EXPECT_GT(got_new, 0u) << "no save completed before the power loss";
}

}  // namespace
}  // namespace mica::craq
