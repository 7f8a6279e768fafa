// StorageTargets (craq/storage_target.h): opening the table of a server's targets on the
// real disk. A target directory named in the config need not exist yet: open() makes it
// before it writes the identity file into it. Takes well under a second.
#include <filesystem>

#include <gtest/gtest.h>

#include "craq/storage_target.h"
#include "tests/co_test.h"
#include "tests/craq/storage_harness.h"

namespace mica::craq {
namespace {

constexpr uint32_t kUpdatesInFlightMax = 4;

MICA_CO_TEST(StorageTargets, OpenCreatesATargetDirectoryThatDoesNotExist) {
  std::string path = dir.file("new-target");
  std::vector<StorageTargetConfig> configs{
      StorageTargetConfig{.path = path, .engine = testing::test_engine_config()}};
  auto opening = StorageTargets::open(std::move(configs), kUpdatesInFlightMax);
  Result<std::unique_ptr<StorageTargets>> table = co_await std::move(opening);
  CO_ASSERT_OK(table);
  EXPECT_TRUE(std::filesystem::is_directory(path));
  CO_ASSERT_EQ((*table)->all().size(), 1u);
  EXPECT_FALSE((*table)->all().front()->identity().empty());
  EXPECT_EQ((*table)->all().front()->local_state(), LocalState::kOnline);
  auto closing = (*table)->close();
  CO_ASSERT_OK(co_await std::move(closing));
}

MICA_CO_TEST(StorageTargets, OpenRefusesATargetWhoseParentDoesNotExist) {
  // One level is made, as the chunk engine does: a missing parent is a config mistake.
  std::vector<StorageTargetConfig> configs{StorageTargetConfig{
      .path = dir.file("no-parent/target"), .engine = testing::test_engine_config()}};
  auto opening = StorageTargets::open(std::move(configs), kUpdatesInFlightMax);
  Result<std::unique_ptr<StorageTargets>> table = co_await std::move(opening);
  EXPECT_FALSE(table.ok());
}

}  // namespace
}  // namespace mica::craq
