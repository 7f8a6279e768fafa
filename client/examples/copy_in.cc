// copy_in: copies a local file into Mica through the native client.
//
//   copy_in --mgmtd H:P --token-file F [--block-bytes N] LOCAL /mica/path
//
// Creates (or truncates) /mica/path and writes LOCAL into it in blocks of --block-bytes
// (default 4 MiB); close() reports the length to metadata, so another client that opens the
// file afterwards sees all of it. The local file is read with plain blocking pread(2) on
// the executor's thread: a one-file tool has nothing else to run meanwhile.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "async/executor.h"
#include "client/client.h"
#include "client/examples/example_args.h"

namespace mica::examples {
namespace {

constexpr const char* kProgram = "copy_in";
constexpr uint64_t kDefaultBlockBytes = uint64_t{4} << 20;

void usage() {
  std::fprintf(stderr,
               "usage: copy_in --mgmtd HOST:PORT [--token-file FILE] [--block-bytes N] "
               "LOCAL /mica/path\n");
}

struct CopyJob {
  int local_fd = -1;
  uint64_t length = 0;
  uint64_t block_bytes = kDefaultBlockBytes;
  std::string mica_path;
};

// Writes the whole local file into `file`, one block after the other.
Task<Status> copy_blocks(client::File* file, CopyJob job) {
  std::vector<std::byte> block(job.block_bytes);
  uint64_t offset = 0;
  while (offset < job.length) {
    ssize_t got = ::pread(job.local_fd, block.data(), block.size(), static_cast<off_t>(offset));
    if (got < 0) co_return Status(StatusCode::kIoError, "reading the local file failed");
    if (got == 0) break;  // the file shrank while we copied it
    std::span<const std::byte> data(block.data(), static_cast<size_t>(got));
    auto writing = file->pwrite(data, offset);
    Result<size_t> wrote = co_await std::move(writing);
    if (!wrote.ok()) co_return wrote.status();
    offset += *wrote;
  }
  co_return Status::ok_status();
}

Task<int> copy_in(ExampleArgs args, CopyJob job) {
  auto connecting = client::Client::connect(args.client);
  Result<std::unique_ptr<client::Client>> connected = co_await std::move(connecting);
  if (!connected.ok()) {
    report_error(kProgram, "cannot connect", connected.status());
    co_return 1;
  }
  std::unique_ptr<client::Client> mica = std::move(*connected);
  int code = 0;
  client::OpenMode mode{.flags = O_WRONLY | O_CREAT | O_TRUNC, .mode = 0644};
  auto opening = mica->open(job.mica_path, mode);
  Result<std::unique_ptr<client::File>> opened = co_await std::move(opening);
  if (!opened.ok()) {
    report_error(kProgram, "cannot create " + job.mica_path, opened.status());
    code = 1;
  } else {
    std::unique_ptr<client::File> file = std::move(*opened);
    auto copying = copy_blocks(file.get(), job);
    Status copied = co_await std::move(copying);
    auto closing = file->close();  // reports the length: the copy is visible once it returns
    Status closed = co_await std::move(closing);
    if (copied.ok()) copied = closed;
    if (!copied.ok()) {
      report_error(kProgram, "copying to " + job.mica_path, copied);
      code = 1;
    } else {
      std::printf("copied %llu bytes to %s\n", static_cast<unsigned long long>(job.length),
                  job.mica_path.c_str());
    }
  }
  auto closing = mica->close();
  co_await std::move(closing);
  co_return code;
}

}  // namespace
}  // namespace mica::examples

int main(int argc, char** argv) {
  using namespace mica::examples;
  std::optional<ExampleArgs> args = parse_example_args(argc, argv, {"block-bytes"}, 2);
  if (!args) {
    usage();
    return 2;
  }
  std::optional<uint64_t> block_bytes =
      positive_option(*args, kProgram, "block-bytes", kDefaultBlockBytes);
  if (!block_bytes) {
    usage();
    return 2;
  }
  CopyJob job{.block_bytes = *block_bytes, .mica_path = args->positional[1]};
  const std::string& local = args->positional[0];
  job.local_fd = ::open(local.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (job.local_fd < 0 || ::fstat(job.local_fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    std::fprintf(stderr, "%s: cannot read %s: %s\n", kProgram, local.c_str(),
                 job.local_fd < 0 ? std::strerror(errno) : "not a regular file");
    return 1;
  }
  job.length = static_cast<uint64_t>(st.st_size);
  std::unique_ptr<mica::Executor> executor = mica::Executor::create_uring();
  int code = executor->block_on(copy_in(std::move(*args), job));
  ::close(job.local_fd);
  return code;
}
