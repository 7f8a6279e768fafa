// A SIGKILL of one storage process during a parallel checkpoint write (8 tasks writing
// disjoint ranges of one file striped over 2 chains) loses nothing acknowledged: every write
// returns ok (later, while mgmtd takes the dead replicas out of their chains) and every
// range reads back byte-exact, through the writer and through a fresh client.
//
// Heavy: one dev cluster (3 storage processes, 2 targets each); the writes wait out failure
// detection (the dev cluster's lease, a few seconds). Time cap: the client tests' ctest
// TIMEOUT (tests/CMakeLists.txt); the writes' own deadline is the client's call_timeout.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cstring>

#include "async/scope.h"
#include "tests/client/client_cluster.h"
#include "tests/client/file_helpers.h"

namespace mica::testing {
namespace {

using client::Client;
using client::File;

constexpr size_t kWriters = 8;
constexpr size_t kWritesPerTask = 12;
constexpr size_t kWriteBytes = kSmallChunkBytes + 4096;  // across chunk boundaries
constexpr size_t kKillAfterWrites = 3;                    // of task 0

pid_t g_victim = 0;

size_t range_of(size_t task, size_t k) { return (task * kWritesPerTask + k) * kWriteBytes; }
uint32_t seed_of(size_t task, size_t k) { return static_cast<uint32_t>(1000 + task * 100 + k); }

Task<Status> checkpoint_task(File* file, size_t task) {
  for (size_t k = 0; k < kWritesPerTask; ++k) {
    if (task == 0 && k == kKillAfterWrites && g_victim != 0) ::kill(g_victim, SIGKILL);
    std::vector<std::byte> data = pattern(seed_of(task, k), kWriteBytes);
    auto writing = file->pwrite(data, range_of(task, k));
    Result<size_t> wrote = co_await std::move(writing);
    if (!wrote.ok()) co_return wrote.status();
  }
  co_return Status::ok_status();
}

Task<void> expect_checkpoint(File* file) {
  std::vector<std::byte> out(kWriteBytes);
  for (size_t task = 0; task < kWriters; ++task) {
    for (size_t k = 0; k < kWritesPerTask; ++k) {
      auto reading = file->pread(out, range_of(task, k));
      Result<size_t> got = co_await std::move(reading);
      CO_EXPECT_OK(got.status());
      EXPECT_EQ(*got, kWriteBytes);
      std::vector<std::byte> want = pattern(seed_of(task, k), kWriteBytes);
      EXPECT_EQ(std::memcmp(out.data(), want.data(), kWriteBytes), 0)
          << "task " << task << " write " << k;
    }
  }
}

Task<void> checkpoint_through_a_kill(Client* writer, Client* reader) {
  auto creating = create_small_chunks(writer, "checkpoint");
  Result<std::unique_ptr<File>> file = co_await std::move(creating);
  CO_EXPECT_OK(file.status());
  std::vector<Task<Status>> tasks;
  for (size_t task = 0; task < kWriters; ++task)
    tasks.push_back(checkpoint_task(file->get(), task));
  auto all = when_all(std::move(tasks));
  std::vector<Status> results = co_await std::move(all);
  for (size_t task = 0; task < results.size(); ++task)
    EXPECT_TRUE(results[task].ok()) << "task " << task << ": " << results[task];
  auto checking = expect_checkpoint(file->get());
  co_await std::move(checking);
  auto closing = (*file)->close();
  CO_EXPECT_OK(co_await std::move(closing));
  auto opening = reader->open("/checkpoint", client::OpenMode{.flags = O_RDONLY});
  Result<std::unique_ptr<File>> again = co_await std::move(opening);
  CO_EXPECT_OK(again.status());
  EXPECT_EQ((*again)->known_length(), range_of(kWriters - 1, kWritesPerTask));
  auto checking_again = expect_checkpoint(again->get());
  co_await std::move(checking_again);
  auto closing_again = (*again)->close();
  CO_EXPECT_OK(co_await std::move(closing_again));
}

TEST(ClientStorageKill, ASigkilledStorageProcessLosesNoAcknowledgedCheckpointWrite) {
  ClientCluster cluster("storage-kill", 3, 2);
  ASSERT_TRUE(cluster.up()) << cluster.up_output();
  for (const apps::DevProcess& process : cluster.processes()) {
    if (process.name == "storage-1") g_victim = process.pid;
  }
  ASSERT_NE(g_victim, 0);
  Status s = with_two_clients(cluster.options(), cluster.options(), checkpoint_through_a_kill);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_NE(::kill(g_victim, 0), 0) << "the storage process was not killed";
  g_victim = 0;
}

}  // namespace
}  // namespace mica::testing
