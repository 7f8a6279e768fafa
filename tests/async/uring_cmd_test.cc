// 128-byte SQE rings and IORING_OP_URING_CMD on the real io_uring backend: ordinary ops
// keep working on a big-SQE ring (also once the SQ array has wrapped), and a driver command
// on an fd whose driver takes none completes with the kernel's error through the normal
// awaiter path instead of hanging or corrupting the ring.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "async/file.h"
#include "async/runtime.h"
#include "async/uring_cmd.h"
#include "tests/co_test.h"
#include "tests/temp_dir.h"

namespace mica {
namespace {

using testing::TempDir;

IoAwaiter<uint32_t> nop() {
  IoAwaiter<uint32_t> awaiter;
  awaiter.op().opcode = IoOpcode::kNop;
  return awaiter;
}

// Enough ops to go round a 256-entry SQ array several times (each slot 128 bytes).
constexpr int kNopsPastWrap = 1000;

Task<void> nops_and_file_io(std::string path) {
  EXPECT_TRUE(Executor::current()->backend().big_sqes());
  for (int i = 0; i < kNopsPastWrap; ++i) {
    auto op = nop();
    Result<uint32_t> r = co_await op;
    CO_ASSERT_OK(r);
  }
  auto opened = File::open(path, O_RDWR | O_CREAT | O_TRUNC);
  Result<File> file = co_await std::move(opened);
  CO_ASSERT_OK(file);
  std::vector<std::byte> data(64 * 1024), back(64 * 1024);
  for (size_t i = 0; i < data.size(); ++i) data[i] = std::byte((i * 7 + 1) & 0xff);
  auto writing = file->write_full(data, 0);
  CO_ASSERT_OK(co_await std::move(writing));
  auto reading = file->read_full(back, 0);
  Result<size_t> n = co_await std::move(reading);
  CO_ASSERT_OK(n);
  EXPECT_EQ(*n, data.size());
  EXPECT_EQ(data, back);
  CO_ASSERT_OK(co_await file->close());
}

TEST(UringCmd, BigSqeRingRunsNopsAndFileIo) {
  TempDir dir(testing::binary_dir() + "/uring-cmd-data", "big-sqe");
  auto executor = Executor::create_uring(/*big_sqes=*/true);
  executor->block_on(nops_and_file_io(dir.path() + "/f"));
}

// The kernel's answer to a command for a driver without uring_cmd: -EOPNOTSUPP (or
// -EINVAL on kernels that check the command first).
bool is_refusal(int32_t result) {
  return result == -EOPNOTSUPP || result == -EINVAL;
}

Task<void> command_is_refused(int fd) {
  unsigned char area[kUringCmdBytes];
  std::memset(area, 0xab, sizeof area);
  auto command = uring_cmd(UringCommand{.fd = fd, .op = 1, .area = area});
  Result<uint32_t> r = co_await command;
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(is_refusal(command.result())) << "result " << command.result();
  // The ring is still in order afterwards.
  auto after = nop();
  Result<uint32_t> ok = co_await after;
  CO_ASSERT_OK(ok);
}

TEST(UringCmd, CommandOnARegularFileCompletesWithTheKernelsError) {
  TempDir dir(testing::binary_dir() + "/uring-cmd-data", "regular");
  std::string path = dir.path() + "/plain";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  auto executor = Executor::create_uring(/*big_sqes=*/true);
  executor->block_on(command_is_refused(fd));
  ::close(fd);
}

TEST(UringCmd, CommandOnAPipeCompletesWithTheKernelsError) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  auto executor = Executor::create_uring(/*big_sqes=*/true);
  executor->block_on(command_is_refused(fds[0]));
  ::close(fds[0]);
  ::close(fds[1]);
}

Task<bool> has_big_sqes() {
  co_return Executor::current()->backend().big_sqes();
}

TEST(UringCmd, RuntimeOptionGivesEveryExecutorBigSqes) {
  Runtime big(RuntimeOptions{.threads = 2, .big_sqes = true});
  EXPECT_TRUE(big.block_on(has_big_sqes(), 0));
  EXPECT_TRUE(big.block_on(has_big_sqes(), 1));
  Runtime plain(RuntimeOptions{.threads = 1});
  EXPECT_FALSE(plain.block_on(has_big_sqes(), 0));
}

}  // namespace
}  // namespace mica
