// bench_fs_client: the native client (client/client.h) on the rows bench/fs_bench.sh runs on
// a mount (bench/run.sh fuse), so the FUSE tax is visible beside the mount's figures. Against
// a real dev cluster (`mica dev up --storage 3`), all in one run, one JSON object on stdout
// with fs_bench.sh's keys:
//   dd_write_mibps   --dd-bytes written in 1 MiB pwrites, one at a time (as dd), then fsync
//                    and close (timed);  dd_read_mibps: read back the same way (the native
//                    client has no page cache: every read is "cold")
//   layout_mibps     a --fio-bytes file written the same way (fio's layout write)
//   seq_read_mibps   --jobs tasks, each reading 1 MiB blocks of its own quarter of that file
//                    in a loop for --seconds (fio --rw=read --numjobs=4 --offset_increment)
//   rand_read_iops   --jobs tasks, each one 4 KiB pread at a time at random aligned offsets
//                    of the whole file for --seconds (fio --rw=randread --numjobs=4)
//   create/stat/unlink_ops    --files empty files in one directory, one task, one call at a
//                    time (create = open O_CREAT + close)
//   create8/stat8/unlink8_ops --parallel tasks, each its own directory, --files in all
// Single-threaded: everything runs on one io_uring executor of the main thread, so the
// parallel rows are tasks of one process (the mount's are processes).
#include <fcntl.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "async/executor.h"
#include "async/file.h"
#include "async/scope.h"
#include "bench/client_pieces.h"
#include "bench/flags.h"
#include "client/client.h"

namespace mica::bench {
namespace {

constexpr uint64_t kBlockBytes = uint64_t{1} << 20;
constexpr uint64_t kRandBytes = 4096;
constexpr uint32_t kTasksMax = 256;
constexpr const char* kRoot = "/fs-bench";

struct Config {
  client::ClientOptions client;
  uint64_t dd_bytes = uint64_t{256} << 20;
  uint64_t fio_bytes = uint64_t{1} << 30;
  uint32_t jobs = 4;
  uint32_t files = 10000;
  uint32_t parallel = 8;
  double seconds = 10;
};

double mib_per_s(uint64_t bytes, double seconds) { return double(bytes) / (1 << 20) / seconds; }

// Each task reads 1 MiB blocks of [begin, begin + span) in order, wrapping, until stop.
Task<void> seq_part(client::File* file, uint64_t begin, uint64_t span, std::span<std::byte> out,
                    TimePoint stop, Work* work) {
  uint64_t at = 0;
  while (work->error.ok() && Executor::current()->now() < stop) {
    auto reading = file->pread(out, begin + at);
    Result<size_t> n = co_await std::move(reading);
    if (!n.ok() || *n != out.size()) {
      work->error = n.ok() ? Status(StatusCode::kIoError, "a read came back short") : n.status();
      break;
    }
    work->bytes += *n;
    at = (at + out.size()) % span;
  }
}

Task<void> rand_part(client::File* file, uint64_t length, std::span<std::byte> out, uint64_t seed,
                     TimePoint stop, Work* work) {
  Random random(seed);
  while (work->error.ok() && Executor::current()->now() < stop) {
    auto reading = file->pread(out, random.below(length / out.size()) * out.size());
    Result<size_t> n = co_await std::move(reading);
    if (!n.ok() || *n != out.size()) {
      work->error = n.ok() ? Status(StatusCode::kIoError, "a read came back short") : n.status();
      break;
    }
    ++work->operations;
  }
}

// rw: "seq" (each job its quarter, 1 MiB) or "rand" (4 KiB anywhere); bytes or reads per s.
Task<Result<double>> timed_reads(client::Client* mica, std::string path, bool seq,
                                 Config config) {
  auto opening = mica->open(path, client::OpenMode{.flags = O_RDONLY});
  CO_TRY_ASSIGN(std::unique_ptr<client::File> file, co_await std::move(opening));
  uint64_t block = seq ? kBlockBytes : kRandBytes;
  AlignedBuffer out(config.jobs * block);
  uint64_t quarter = config.fio_bytes / config.jobs / kBlockBytes * kBlockBytes;
  Work work;
  TimePoint start = Executor::current()->now();
  TimePoint stop = start + to_duration(config.seconds);
  {
    TaskScope scope;
    for (uint32_t j = 0; j < config.jobs; ++j) {
      std::span<std::byte> slice = out.span().subspan(j * block, block);
      if (seq) {
        scope.spawn(seq_part(file.get(), j * quarter, quarter, slice, stop, &work));
      } else {
        scope.spawn(rand_part(file.get(), config.fio_bytes, slice, j + 1, stop, &work));
      }
    }
    co_await scope.join();
  }
  double seconds = seconds_since(start);
  auto closing = file->close();
  Status closed = co_await std::move(closing);
  CO_TRY(work.error);
  CO_TRY(closed);
  co_return seq ? mib_per_s(work.bytes, seconds) : double(work.operations) / seconds;
}

// One metadata phase over files f0..f{n-1} of dir; counts into work.
Task<void> meta_phase(client::Client* mica, std::string dir, std::string phase, uint32_t files,
                      Work* work) {
  for (uint32_t i = 0; i < files && work->error.ok(); ++i) {
    std::string path = dir + "/f" + std::to_string(i);
    Status status;
    if (phase == "create") {
      auto opening = mica->open(path, client::OpenMode{.flags = O_CREAT | O_WRONLY});
      Result<std::unique_ptr<client::File>> file = co_await std::move(opening);
      status = file.status();
      if (file.ok()) {
        auto closing = (*file)->close();
        status = co_await std::move(closing);
      }
    } else if (phase == "stat") {
      auto stating = mica->stat(path);
      Result<meta::Inode> inode = co_await std::move(stating);
      status = inode.status();
    } else {
      auto unlinking = mica->unlink(path);
      status = co_await std::move(unlinking);
    }
    if (!status.ok()) work->error = status;
    ++work->operations;
  }
}

// The three phases with `tasks` tasks, each in its own directory with files / tasks of the
// files (as fs_bench.sh's processes); ops/s of each, in order.
Task<Result<std::vector<double>>> meta_rows(client::Client* mica, uint32_t tasks,
                                            Config config) {
  // A fresh folder per run (an earlier run's files would make creates fail).
  std::string base = std::string(kRoot) + "/meta-" + std::to_string(tasks) + "-" +
                     std::to_string(Executor::current()->now().time_since_epoch().count());
  auto making = ensure_dir(mica, base);
  CO_TRY(co_await std::move(making));
  for (uint32_t t = 0; t < tasks; ++t) {
    auto making_dir = ensure_dir(mica, base + "/d" + std::to_string(t));
    CO_TRY(co_await std::move(making_dir));
  }
  std::vector<double> rates;
  for (const char* phase : {"create", "stat", "unlink"}) {
    Work work;
    TimePoint start = Executor::current()->now();
    {
      TaskScope scope;
      for (uint32_t t = 0; t < tasks; ++t) {
        std::string dir = base + "/d" + std::to_string(t);
        scope.spawn(meta_phase(mica, dir, phase, config.files / tasks, &work));
      }
      co_await scope.join();
    }
    CO_TRY(work.error);
    rates.push_back(double(work.operations) / seconds_since(start));
    std::fprintf(stderr, "bench_fs_client: %s with %u tasks: %.0f ops/s\n", phase, tasks,
                 rates.back());
  }
  co_return rates;
}

Task<Status> data_rows(client::Client* mica, Config config) {
  AlignedBuffer buffer(kBlockBytes);
  fill(buffer.span(), 3);
  SeqShape one{.depth = 1, .block_bytes = kBlockBytes};
  std::string dd = std::string(kRoot) + "/dd.bin";
  std::string fio = std::string(kRoot) + "/fio.dat";
  auto writing = sequential(mica, dd, true, config.dd_bytes, buffer.span(), one);
  CO_TRY_ASSIGN(double dd_write, co_await std::move(writing));
  auto reading = sequential(mica, dd, false, config.dd_bytes, buffer.span(), one);
  CO_TRY_ASSIGN(double dd_read, co_await std::move(reading));
  auto laying = sequential(mica, fio, true, config.fio_bytes, buffer.span(), one);
  CO_TRY_ASSIGN(double layout, co_await std::move(laying));
  auto seq_reading = timed_reads(mica, fio, true, config);
  CO_TRY_ASSIGN(double seq, co_await std::move(seq_reading));
  auto rand_reading = timed_reads(mica, fio, false, config);
  CO_TRY_ASSIGN(double rand, co_await std::move(rand_reading));
  for (const std::string& path : {dd, fio}) {
    auto unlinking = mica->unlink(path);
    CO_TRY(co_await std::move(unlinking));
  }
  std::printf("\"dd_write_mibps\": %.1f, \"dd_read_mibps\": %.1f, \"checksum\": \"-\", "
              "\"layout_mibps\": %.1f, \"seq_read_mibps\": %.1f, \"rand_read_iops\": %.0f, ",
              mib_per_s(config.dd_bytes, dd_write), mib_per_s(config.dd_bytes, dd_read),
              mib_per_s(config.fio_bytes, layout), seq, rand);
  co_return Status();
}

Task<Status> run(Config config) {
  auto connecting = client::Client::connect(config.client);
  CO_TRY_ASSIGN(std::unique_ptr<client::Client> mica, co_await std::move(connecting));
  auto making = ensure_dir(mica.get(), kRoot);
  Status status = co_await std::move(making);
  std::printf("{\"label\": \"native\", ");
  if (status.ok()) {
    auto rows = data_rows(mica.get(), config);
    status = co_await std::move(rows);
  }
  // The keys of fs_bench.sh: the parallel phase is "create8" etc. whatever --parallel is.
  for (bool parallel : {false, true}) {
    if (!status.ok()) break;
    auto rows = meta_rows(mica.get(), parallel ? config.parallel : 1, config);
    Result<std::vector<double>> rates = co_await std::move(rows);
    status = rates.status();
    if (!rates.ok()) break;
    const char* suffix = parallel ? "8" : "";
    std::printf("\"create%s_ops\": %.0f, \"stat%s_ops\": %.0f, \"unlink%s_ops\": %.0f%s", suffix,
                (*rates)[0], suffix, (*rates)[1], suffix, (*rates)[2], parallel ? "}\n" : ", ");
  }
  auto closing = mica->close();
  co_await std::move(closing);
  co_return status;
}

}  // namespace
}  // namespace mica::bench

int main(int argc, char** argv) {
  using namespace mica::bench;
  Flags flags(argc, argv,
              "bench_fs_client --mgmtd H:P --token-file F [--dd-bytes N] [--fio-bytes N] "
              "[--jobs J] [--files N] [--parallel P] [--seconds S]");
  Config config;
  config.client.mgmtd = flags.text("mgmtd", "");
  config.client.token_file = flags.text("token-file", "");
  config.client.transport = mica::net::TransportChoice::kTcp;
  config.dd_bytes = static_cast<uint64_t>(flags.number("dd-bytes", double(config.dd_bytes)));
  config.fio_bytes = static_cast<uint64_t>(flags.number("fio-bytes", double(config.fio_bytes)));
  config.jobs = static_cast<uint32_t>(flags.number("jobs", config.jobs));
  config.files = static_cast<uint32_t>(flags.number("files", config.files));
  config.parallel = static_cast<uint32_t>(flags.number("parallel", config.parallel));
  config.seconds = flags.number("seconds", config.seconds);
  flags.finish();
  bool sizes_ok = config.dd_bytes % kBlockBytes == 0 && config.fio_bytes % kBlockBytes == 0 &&
                  config.fio_bytes / config.jobs >= kBlockBytes;
  if (config.client.mgmtd.empty() || !sizes_ok || config.jobs > kTasksMax ||
      config.parallel > kTasksMax) {
    std::fprintf(stderr, "bench_fs_client: needs --mgmtd, whole-MiB sizes and at most %u "
                 "tasks\n", kTasksMax);
    return 2;
  }
  std::unique_ptr<mica::Executor> executor = mica::Executor::create_uring();
  mica::Status status = executor->block_on(run(config));
  if (!status.ok()) {
    std::printf("}\n");
    std::fprintf(stderr, "bench_fs_client: %s\n", status.to_string().c_str());
    return 1;
  }
  return 0;
}
