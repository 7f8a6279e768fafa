// random_reader: reads a data set of shard files at random, as a data loader does, with
// Client::read_batch, and prints the bytes per second it got.
//
//   random_reader --mgmtd H:P --token-file F [--sample-bytes N] [--batch N] [--batches N]
//                 [--seed N] [--verify LOCAL_DIR] /mica/dataset
//
// Opens every file of the directory, then --batches times reads --batch samples of
// --sample-bytes (default 128 KiB) at random files and offsets in one read_batch call (the
// client groups them into one request per storage node). --verify compares every sample
// with the same bytes of LOCAL_DIR/<name>, a local copy of the data set (for tests).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "async/executor.h"
#include "client/client.h"
#include "client/examples/example_args.h"

namespace mica::examples {
namespace {

constexpr const char* kProgram = "random_reader";
constexpr uint64_t kDefaultSampleBytes = uint64_t{128} << 10;
constexpr uint64_t kDefaultBatch = 32;
constexpr uint64_t kDefaultBatches = 100;
constexpr uint64_t kBatchMax = 4096;  // items of one read_batch call

void usage() {
  std::fprintf(stderr,
               "usage: random_reader --mgmtd HOST:PORT [--token-file FILE] [--sample-bytes N] "
               "[--batch N] [--batches N] [--seed N] [--verify LOCAL_DIR] /mica/dataset\n");
}

struct ReadPlan {
  std::string dataset;
  uint64_t sample_bytes = kDefaultSampleBytes;
  uint64_t batch = kDefaultBatch;
  uint64_t batches = kDefaultBatches;
  uint64_t seed = 1;
  std::string verify_dir;  // "" : no verification
};

// splitmix64: a small, well-mixed generator; the same seed picks the same samples.
uint64_t next_random(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

struct Shard {
  std::string name;
  std::unique_ptr<client::File> file;
};

// The names of the directory's regular files, page by page.
Task<Result<std::vector<std::string>>> list_files(client::Client* mica, std::string dir) {
  std::vector<std::string> names;
  std::string after;
  while (true) {
    auto listing = mica->readdir(dir, after);
    CO_TRY_ASSIGN(client::DirPage page, co_await std::move(listing));
    for (const meta::ReaddirEntry& entry : page.entries) {
      if (entry.type == meta::InodeType::kFile) names.push_back(entry.name);
      after = entry.name;
    }
    if (page.done || page.entries.empty()) break;
  }
  co_return names;
}

Task<Status> open_shards(client::Client* mica, std::string dir, std::vector<Shard>* shards) {
  auto listing = list_files(mica, dir);
  CO_TRY_ASSIGN(std::vector<std::string> names, co_await std::move(listing));
  for (const std::string& name : names) {
    auto opening = mica->open(dir + "/" + name, client::OpenMode{.flags = O_RDONLY});
    CO_TRY_ASSIGN(std::unique_ptr<client::File> file, co_await std::move(opening));
    if (file->known_length() == 0) {
      auto closing = file->close();
      CO_TRY(co_await std::move(closing));
      continue;  // nothing to sample
    }
    shards->push_back(Shard{.name = name, .file = std::move(file)});
  }
  if (shards->empty()) co_return Status(StatusCode::kNotFound, dir + " holds no non-empty file");
  co_return Status::ok_status();
}

// Whether out holds the bytes of the local copy of `name` at offset.
bool matches_local(const std::string& dir, const std::string& name, uint64_t offset,
                   std::span<const std::byte> out) {
  int fd = ::open((dir + "/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::vector<std::byte> local(out.size());
  ssize_t got = ::pread(fd, local.data(), local.size(), static_cast<off_t>(offset));
  ::close(fd);
  return got == static_cast<ssize_t>(out.size()) &&
         std::memcmp(local.data(), out.data(), out.size()) == 0;
}

// Runs the batches; the bytes read, or the first error.
Task<Result<uint64_t>> read_batches(client::Client* mica, std::vector<Shard>* shards,
                                    ReadPlan plan) {
  std::vector<std::byte> buffer(plan.batch * plan.sample_bytes);
  uint64_t random = plan.seed, total = 0;
  for (uint64_t b = 0; b < plan.batches; ++b) {
    std::vector<client::BatchRead> reads;
    std::vector<size_t> picked;
    for (uint64_t i = 0; i < plan.batch; ++i) {
      size_t s = next_random(&random) % shards->size();
      uint64_t length = (*shards)[s].file->known_length();
      uint64_t size = std::min(plan.sample_bytes, length);
      uint64_t offset = next_random(&random) % (length - size + 1);
      std::span<std::byte> out(buffer.data() + i * plan.sample_bytes, size);
      reads.push_back(
          client::BatchRead{.file = (*shards)[s].file.get(), .offset = offset, .out = out});
      picked.push_back(s);
    }
    auto reading = mica->read_batch(reads);
    std::vector<Result<size_t>> results = co_await std::move(reading);
    for (size_t i = 0; i < results.size(); ++i) {
      if (!results[i].ok()) co_return results[i].status();
      if (*results[i] != reads[i].out.size()) {
        co_return Status(StatusCode::kIoError, "a sample came back short");
      }
      total += *results[i];
      if (!plan.verify_dir.empty() && !matches_local(plan.verify_dir, (*shards)[picked[i]].name,
                                                     reads[i].offset, reads[i].out)) {
        co_return Status(StatusCode::kCorruption,
                         "sample of " + (*shards)[picked[i]].name + " at offset " +
                             std::to_string(reads[i].offset) + " differs from the local copy");
      }
    }
  }
  co_return total;
}

Task<int> random_reader(ExampleArgs args, ReadPlan plan) {
  auto connecting = client::Client::connect(args.client);
  Result<std::unique_ptr<client::Client>> connected = co_await std::move(connecting);
  if (!connected.ok()) {
    report_error(kProgram, "cannot connect", connected.status());
    co_return 1;
  }
  std::unique_ptr<client::Client> mica = std::move(*connected);
  std::vector<Shard> shards;
  auto opening = open_shards(mica.get(), plan.dataset, &shards);
  Status status = co_await std::move(opening);
  TimePoint started = Executor::current()->now();
  uint64_t bytes = 0;
  if (status.ok()) {
    auto reading = read_batches(mica.get(), &shards, plan);
    Result<uint64_t> read = co_await std::move(reading);
    status = read.status();
    if (read.ok()) bytes = *read;
  }
  double seconds = std::chrono::duration<double>(Executor::current()->now() - started).count();
  for (Shard& shard : shards) {
    auto closing = shard.file->close();
    Status closed = co_await std::move(closing);
    if (!closed.ok() && status.ok()) status = closed;
  }
  auto closing = mica->close();
  co_await std::move(closing);
  if (!status.ok()) {
    report_error(kProgram, "reading " + plan.dataset, status);
    co_return 1;
  }
  std::printf("read %llu samples (%llu bytes) from %zu files in %.3f s: %.1f MiB/s%s\n",
              static_cast<unsigned long long>(plan.batch * plan.batches),
              static_cast<unsigned long long>(bytes), shards.size(), seconds,
              static_cast<double>(bytes) / (1 << 20) / std::max(seconds, 1e-9),
              plan.verify_dir.empty() ? "" : ", every sample matches the local copy");
  co_return 0;
}

std::optional<ReadPlan> read_plan(const ExampleArgs& args) {
  ReadPlan plan{.dataset = args.positional[0]};
  std::optional<uint64_t> sample =
      positive_option(args, kProgram, "sample-bytes", plan.sample_bytes);
  std::optional<uint64_t> batch = positive_option(args, kProgram, "batch", plan.batch);
  std::optional<uint64_t> batches = positive_option(args, kProgram, "batches", plan.batches);
  std::optional<uint64_t> seed = positive_option(args, kProgram, "seed", plan.seed);
  if (!sample || !batch || !batches || !seed) return std::nullopt;
  if (*batch > kBatchMax) {
    std::fprintf(stderr, "%s: --batch is at most %llu\n", kProgram,
                 static_cast<unsigned long long>(kBatchMax));
    return std::nullopt;
  }
  plan.sample_bytes = *sample;
  plan.batch = *batch;
  plan.batches = *batches;
  plan.seed = *seed;
  auto verify = args.options.find("verify");
  if (verify != args.options.end()) plan.verify_dir = verify->second;
  return plan;
}

}  // namespace
}  // namespace mica::examples

int main(int argc, char** argv) {
  using namespace mica::examples;
  std::optional<ExampleArgs> args =
      parse_example_args(argc, argv, {"sample-bytes", "batch", "batches", "seed", "verify"}, 1);
  std::optional<ReadPlan> plan = args ? read_plan(*args) : std::nullopt;
  if (!plan) {
    usage();
    return 2;
  }
  std::unique_ptr<mica::Executor> executor = mica::Executor::create_uring();
  return executor->block_on(random_reader(std::move(*args), std::move(*plan)));
}
