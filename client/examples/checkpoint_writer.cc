// checkpoint_writer: writes one checkpoint file from several tasks in parallel, as a
// training job's ranks do, then fsyncs, closes and verifies it.
//
//   checkpoint_writer --mgmtd H:P --token-file F [--tasks N] [--bytes N] [--block-bytes N]
//                     /mica/path
//
// The checkpoint is --bytes (default 64 MiB) of state whose every 8-byte little-endian word
// holds its own offset in the file (so a test can check any byte of it). Task t of --tasks
// (default 4) writes the t-th contiguous part through the one shared File, --block-bytes
// (default 1 MiB) per pwrite: the parts are disjoint, so the tasks need no coordination.
// fsync then makes the length durable in metadata and close ends the session; the file is
// then reopened and read back whole, and every word is checked.
#include <fcntl.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "async/executor.h"
#include "async/scope.h"
#include "client/client.h"
#include "client/examples/example_args.h"

namespace mica::examples {
namespace {

constexpr const char* kProgram = "checkpoint_writer";
constexpr uint64_t kDefaultBytes = uint64_t{64} << 20;
constexpr uint64_t kDefaultTasks = 4;
constexpr uint64_t kTasksMax = 256;
constexpr uint64_t kDefaultBlockBytes = uint64_t{1} << 20;
constexpr uint64_t kWordBytes = 8;

void usage() {
  std::fprintf(stderr,
               "usage: checkpoint_writer --mgmtd HOST:PORT [--token-file FILE] [--tasks N] "
               "[--bytes N] [--block-bytes N] /mica/path\n");
}

struct Checkpoint {
  std::string path;
  uint64_t bytes = kDefaultBytes;
  uint64_t tasks = kDefaultTasks;
  uint64_t block_bytes = kDefaultBlockBytes;
};

// Fills out with the checkpoint's bytes at offset: word k holds offset + 8k (little endian;
// a part that starts or ends inside a word holds that word's bytes).
void fill_state(std::span<std::byte> out, uint64_t offset) {
  for (size_t i = 0; i < out.size(); ++i) {
    uint64_t at = offset + i;
    uint64_t word = at - at % kWordBytes;
    out[i] = static_cast<std::byte>(word >> (8 * (at % kWordBytes)));
  }
}

// One task's part: [begin, end) of the file, a block at a time.
Task<Status> write_part(client::File* file, uint64_t begin, uint64_t end, uint64_t block_bytes) {
  std::vector<std::byte> block(block_bytes);
  for (uint64_t offset = begin; offset < end; offset += block_bytes) {
    std::span<std::byte> data(block.data(), std::min(block_bytes, end - offset));
    fill_state(data, offset);
    auto writing = file->pwrite(data, offset);
    Result<size_t> wrote = co_await std::move(writing);
    if (!wrote.ok()) co_return wrote.status();
  }
  co_return Status::ok_status();
}

// Creates the file, writes it from every task at once, fsyncs and closes it.
Task<Status> write_checkpoint(client::Client* mica, Checkpoint checkpoint) {
  client::OpenMode mode{.flags = O_RDWR | O_CREAT | O_TRUNC, .mode = 0644};
  auto opening = mica->open(checkpoint.path, mode);
  CO_TRY_ASSIGN(std::unique_ptr<client::File> file, co_await std::move(opening));
  uint64_t part = (checkpoint.bytes + checkpoint.tasks - 1) / checkpoint.tasks;
  std::vector<Task<Status>> tasks;
  for (uint64_t t = 0; t < checkpoint.tasks; ++t) {
    uint64_t begin = std::min(checkpoint.bytes, t * part);
    uint64_t end = std::min(checkpoint.bytes, begin + part);
    tasks.push_back(write_part(file.get(), begin, end, checkpoint.block_bytes));
  }
  auto writing = when_all(std::move(tasks));
  std::vector<Status> written = co_await std::move(writing);
  Status status = Status::ok_status();
  for (const Status& s : written) {
    if (!s.ok() && status.ok()) status = s;
  }
  if (status.ok()) {
    auto syncing = file->fsync();  // the length is durable in metadata once this returns
    status = co_await std::move(syncing);
  }
  auto closing = file->close();
  Status closed = co_await std::move(closing);
  co_return status.ok() ? closed : status;
}

// Reopens the file and checks its length and every byte.
Task<Status> verify_checkpoint(client::Client* mica, Checkpoint checkpoint) {
  auto opening = mica->open(checkpoint.path, client::OpenMode{.flags = O_RDONLY});
  CO_TRY_ASSIGN(std::unique_ptr<client::File> file, co_await std::move(opening));
  Status status = Status::ok_status();
  if (file->known_length() != checkpoint.bytes) {
    status =
        Status(StatusCode::kCorruption, "the file holds " + std::to_string(file->known_length()) +
                                            " bytes, not " + std::to_string(checkpoint.bytes));
  }
  std::vector<std::byte> got(checkpoint.block_bytes), want(checkpoint.block_bytes);
  for (uint64_t offset = 0; status.ok() && offset < checkpoint.bytes;
       offset += checkpoint.block_bytes) {
    size_t size = std::min(checkpoint.block_bytes, checkpoint.bytes - offset);
    auto reading = file->pread(std::span(got.data(), size), offset);
    Result<size_t> read = co_await std::move(reading);
    fill_state(std::span(want.data(), size), offset);
    if (!read.ok()) {
      status = read.status();
    } else if (*read != size || std::memcmp(got.data(), want.data(), size) != 0) {
      status = Status(StatusCode::kCorruption,
                      "the bytes at offset " + std::to_string(offset) + " are not the state's");
    }
  }
  auto closing = file->close();
  Status closed = co_await std::move(closing);
  co_return status.ok() ? closed : status;
}

Task<int> checkpoint_writer(ExampleArgs args, Checkpoint checkpoint) {
  auto connecting = client::Client::connect(args.client);
  Result<std::unique_ptr<client::Client>> connected = co_await std::move(connecting);
  if (!connected.ok()) {
    report_error(kProgram, "cannot connect", connected.status());
    co_return 1;
  }
  std::unique_ptr<client::Client> mica = std::move(*connected);
  TimePoint started = Executor::current()->now();
  auto writing = write_checkpoint(mica.get(), checkpoint);
  Status status = co_await std::move(writing);
  double seconds = std::chrono::duration<double>(Executor::current()->now() - started).count();
  const char* step = "writing";
  if (status.ok()) {
    step = "verifying";
    auto verifying = verify_checkpoint(mica.get(), checkpoint);
    status = co_await std::move(verifying);
  }
  auto closing = mica->close();
  co_await std::move(closing);
  if (!status.ok()) {
    report_error(kProgram, std::string(step) + " " + checkpoint.path, status);
    co_return 1;
  }
  std::printf("wrote %llu bytes to %s from %llu tasks in %.3f s (%.1f MiB/s); verified\n",
              static_cast<unsigned long long>(checkpoint.bytes), checkpoint.path.c_str(),
              static_cast<unsigned long long>(checkpoint.tasks), seconds,
              static_cast<double>(checkpoint.bytes) / (1 << 20) / std::max(seconds, 1e-9));
  co_return 0;
}

}  // namespace
}  // namespace mica::examples

int main(int argc, char** argv) {
  using namespace mica::examples;
  std::optional<ExampleArgs> args =
      parse_example_args(argc, argv, {"tasks", "bytes", "block-bytes"}, 1);
  if (!args) {
    usage();
    return 2;
  }
  std::optional<uint64_t> tasks = positive_option(*args, kProgram, "tasks", kDefaultTasks);
  std::optional<uint64_t> bytes = positive_option(*args, kProgram, "bytes", kDefaultBytes);
  std::optional<uint64_t> block =
      positive_option(*args, kProgram, "block-bytes", kDefaultBlockBytes);
  if (!tasks || !bytes || !block || *tasks > kTasksMax) {
    if (tasks && *tasks > kTasksMax) std::fprintf(stderr, "%s: --tasks is at most 256\n", kProgram);
    usage();
    return 2;
  }
  Checkpoint checkpoint{
      .path = args->positional[0], .bytes = *bytes, .tasks = *tasks, .block_bytes = *block};
  std::unique_ptr<mica::Executor> executor = mica::Executor::create_uring();
  return executor->block_on(checkpoint_writer(std::move(*args), std::move(checkpoint)));
}
