#include "bench/client_pieces.h"

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>

#include "async/scope.h"

namespace mica::bench {

void fill(std::span<std::byte> bytes, uint64_t seed) {
  Random random(seed);
  for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
    uint64_t v = random.next();
    std::memcpy(bytes.data() + i, &v, 8);
  }
}

double seconds_since(TimePoint start) {
  return std::chrono::duration<double>(Executor::current()->now() - start).count();
}

Duration to_duration(double seconds) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

uint64_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

namespace {

Task<void> seq_loop(client::File* file, bool write, uint64_t total, std::span<std::byte> buffer,
                    Work* work) {
  while (work->error.ok() && work->next < total) {
    uint64_t offset = work->next;
    work->next += buffer.size();
    std::span<std::byte> part = buffer.first(std::min<uint64_t>(buffer.size(), total - offset));
    Result<size_t> done = size_t{0};
    if (write) {
      auto writing = file->pwrite(part, offset);
      done = co_await std::move(writing);
    } else {
      auto reading = file->pread(part, offset);
      done = co_await std::move(reading);
    }
    if (!done.ok() || *done != part.size()) {
      work->error =
          done.ok() ? Status(StatusCode::kIoError, "a transfer came back short") : done.status();
      break;
    }
    work->bytes += *done;
  }
}

}  // namespace

Task<Result<double>> sequential(client::Client* mica, std::string path, bool write,
                                uint64_t total, std::span<std::byte> buffers, SeqShape shape) {
  int flags = write ? O_WRONLY | O_CREAT | O_TRUNC : O_RDONLY;
  auto opening = mica->open(path, client::OpenMode{.flags = flags});
  CO_TRY_ASSIGN(std::unique_ptr<client::File> file, co_await std::move(opening));
  Work work;
  TimePoint start = Executor::current()->now();
  {
    TaskScope scope;
    for (uint32_t t = 0; t < shape.depth; ++t) {
      std::span<std::byte> buffer = buffers.subspan(t * shape.block_bytes, shape.block_bytes);
      scope.spawn(seq_loop(file.get(), write, total, buffer, &work));
    }
    co_await scope.join();
  }
  Status status = work.error;
  if (status.ok() && write) {
    auto syncing = file->fsync();
    status = co_await std::move(syncing);
  }
  auto closing = file->close();
  Status closed = co_await std::move(closing);
  CO_TRY(status);
  CO_TRY(closed);
  co_return seconds_since(start);
}

Task<Status> ensure_file(client::Client* mica, std::string path, uint64_t bytes,
                         std::span<std::byte> buffers, SeqShape shape) {
  auto stating = mica->stat(path);
  Result<meta::Inode> inode = co_await std::move(stating);
  if (inode.ok() && inode->length == bytes) co_return Status::ok_status();
  auto writing = sequential(mica, path, true, bytes, buffers, shape);
  Result<double> wrote = co_await std::move(writing);
  co_return wrote.status();
}

Task<Status> ensure_dir(client::Client* mica, std::string path) {
  auto making = mica->mkdir(path, 0755);
  Result<meta::Inode> made = co_await std::move(making);
  if (made.ok() || made.status().code() == StatusCode::kAlreadyExists) co_return Status();
  co_return made.status();
}

double percentile_us(std::vector<int64_t>* samples, double fraction) {
  if (samples->empty()) return 0;
  size_t at = std::min(samples->size() - 1, static_cast<size_t>(fraction * samples->size()));
  std::nth_element(samples->begin(), samples->begin() + static_cast<ptrdiff_t>(at), samples->end());
  return static_cast<double>((*samples)[at]) / 1000.0;
}

}  // namespace mica::bench
