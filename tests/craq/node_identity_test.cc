// Node and target identity files (craq/node_identity.h) on the real disk through io_uring:
// they survive a reopen, a save replaces them whole, a torn temp file left by a crash
// during a save is ignored, and a corrupted file is refused rather than replaced.
#include "craq/node_identity.h"

#include <gtest/gtest.h>

#include <fstream>

#include "async/file.h"
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
