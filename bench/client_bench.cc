// bench_client: the client suite (bench/run.sh client) — the native client (client/client.h)
// against a real dev cluster (`mica dev up --storage 3`: mgmtd, one mica-meta and three
// mica-storage processes on 127.0.0.1, 3 replicas per chain, every replica on the one disk),
// and the chunk engine alone for the random-read reference. This process is the client
// only, so its resident memory is the client's. One mode per run, one JSON object on stdout:
//   seq_write       --depth tasks write --file-bytes of /bench/seq.bin (O_TRUNC) in
//                   --block-bytes pwrites from a shared cursor, then fsync and close (timed
//                   too). {"mib_per_s", "client_rss_bytes": growth of this process's RSS from
//                   before connect to the end (the bench's own buffers touched before)}
//   seq_read        /bench/seq.bin (written first, untimed, unless it has --file-bytes) read
//                   once whole, --depth tasks of --block-bytes preads. {"mib_per_s"}
//   batch_randread  --shards files of --shard-bytes under /bench/shards (written first when
//                   missing); --batches tasks each loop read_batch of --batch-items samples
//                   of --sample-bytes at aligned random offsets of random shards for
//                   --seconds. {"reads_per_s", "mib_per_s", "client_rss_bytes"}
//   latency         the same shards: one 4 KiB pread at a time at random aligned offsets for
//                   --seconds. {"p50_us", "p99_us"}
//   engine_randread the reference: a ChunkEngine alone in --engine-dir holding as many bytes
//                   in --chunk-bytes chunks (stored once, reused), --batches x --batch-items
//                   tasks each doing one --sample-bytes read at a time. {"reads_per_s"}
// Single-threaded: everything runs on one io_uring executor of the main thread.
#include <fcntl.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "async/crc32c.h"
#include "async/executor.h"
#include "async/file.h"
#include "async/scope.h"
#include "bench/client_pieces.h"
#include "bench/flags.h"
#include "chunk/engine.h"
#include "client/client.h"

namespace mica::bench {
namespace {

constexpr uint32_t kTasksMax = 4096;
constexpr uint32_t kLatencyReadBytes = 4096;
constexpr uint64_t kEngineInode = 1;
constexpr const char* kSeqPath = "/bench/seq.bin";
constexpr const char* kShardDir = "/bench/shards";
constexpr const char* kEngineMarker = "/prepared-bytes";

struct Config {
  std::string mode;
  client::ClientOptions client;
  uint64_t file_bytes = uint64_t{4} << 30;
  uint64_t block_bytes = uint64_t{4} << 20;
  uint32_t depth = 8;
  uint32_t shards = 64;
  uint64_t shard_bytes = uint64_t{16} << 20;
  uint64_t sample_bytes = 4096;
  uint32_t batch_items = 32;
  uint32_t batches = 4;
  double seconds = 5;
  std::string engine_dir;
  uint64_t chunk_bytes = uint64_t{4} << 20;
};

SeqShape shape_of(const Config& config) {
  return SeqShape{.depth = config.depth, .block_bytes = config.block_bytes};
}

// ---- random reads of the shard files ----

std::string shard_path(uint32_t i) {
  return std::string(kShardDir) + "/shard-" + std::to_string(i);
}

// Writes the shards that are missing, opens them all for reading.
Task<Status> open_shards(client::Client* mica, Config config,
                         std::vector<std::unique_ptr<client::File>>* files) {
  auto making = ensure_dir(mica, "/bench");
  CO_TRY(co_await std::move(making));
  auto making_shards = ensure_dir(mica, kShardDir);
  CO_TRY(co_await std::move(making_shards));
  AlignedBuffer buffers(config.depth * config.block_bytes);
  fill(buffers.span(), 7);
  for (uint32_t i = 0; i < config.shards; ++i) {
    auto ensuring =
        ensure_file(mica, shard_path(i), config.shard_bytes, buffers.span(), shape_of(config));
    CO_TRY(co_await std::move(ensuring));
    auto opening = mica->open(shard_path(i), client::OpenMode{.flags = O_RDONLY});
    CO_TRY_ASSIGN(std::unique_ptr<client::File> file, co_await std::move(opening));
    files->push_back(std::move(file));
  }
  co_return Status();
}

Task<void> close_files(std::vector<std::unique_ptr<client::File>>* files) {
  for (auto& file : *files) {
    auto closing = file->close();
    co_await std::move(closing);
  }
}

uint64_t random_offset(Random* random, uint64_t length, uint64_t sample_bytes) {
  return random->below(length / sample_bytes) * sample_bytes;
}

Task<void> batch_loop(client::Client* mica, std::vector<std::unique_ptr<client::File>>* files,
                      Config config, std::span<std::byte> out, uint64_t seed, TimePoint stop,
                      Work* work) {
  Random random(seed);
  while (work->error.ok() && Executor::current()->now() < stop) {
    std::vector<client::BatchRead> reads;
    for (uint32_t i = 0; i < config.batch_items; ++i) {
      client::File* file = (*files)[random.below(files->size())].get();
      uint64_t offset = random_offset(&random, config.shard_bytes, config.sample_bytes);
      reads.push_back(
          client::BatchRead{.file = file,
                            .offset = offset,
                            .out = out.subspan(i * config.sample_bytes, config.sample_bytes)});
    }
    auto reading = mica->read_batch(std::move(reads));
    std::vector<Result<size_t>> results = co_await std::move(reading);
    for (const Result<size_t>& result : results) {
      if (!result.ok() || *result != config.sample_bytes) {
        work->error = result.ok() ? Status(StatusCode::kIoError, "a sample came back short")
                                  : result.status();
        co_return;
      }
      ++work->operations;
      work->bytes += *result;
    }
  }
}

Task<void> latency_loop(std::vector<std::unique_ptr<client::File>>* files, Config config,
                        std::span<std::byte> out, TimePoint stop, Work* work) {
  Random random(11);
  while (work->error.ok() && Executor::current()->now() < stop) {
    client::File* file = (*files)[random.below(files->size())].get();
    uint64_t offset = random_offset(&random, config.shard_bytes, kLatencyReadBytes);
    TimePoint start = Executor::current()->now();
    auto reading = file->pread(out, offset);
    Result<size_t> read = co_await std::move(reading);
    if (!read.ok()) {
      work->error = read.status();
      break;
    }
    work->latencies_ns.push_back((Executor::current()->now() - start).count());
  }
}

Task<Status> random_reads(client::Client* mica, Config config, uint64_t rss_before) {
  std::vector<std::unique_ptr<client::File>> files;
  auto opening = open_shards(mica, config, &files);
  Status status = co_await std::move(opening);
  bool batch = config.mode == "batch_randread";
  AlignedBuffer out(batch ? size_t{config.batches} * config.batch_items * config.sample_bytes
                          : kLatencyReadBytes);
  Work work;
  TimePoint start = Executor::current()->now();
  TimePoint stop = start + to_duration(config.seconds);
  if (status.ok()) {
    TaskScope scope;
    if (batch) {
      size_t slice = size_t{config.batch_items} * config.sample_bytes;
      for (uint32_t t = 0; t < config.batches; ++t) {
        scope.spawn(batch_loop(mica, &files, config, out.span().subspan(t * slice, slice), t + 1,
                               stop, &work));
      }
    } else {
      scope.spawn(latency_loop(&files, config, out.span(), stop, &work));
    }
    co_await scope.join();
    status = work.error;
  }
  double seconds = seconds_since(start);
  uint64_t rss_now = resident_bytes();
  uint64_t rss = rss_now > rss_before ? rss_now - rss_before : 0;
  auto closing = close_files(&files);
  co_await std::move(closing);
  CO_TRY(status);
  if (batch) {
    std::printf("{\"reads_per_s\": %.0f, \"mib_per_s\": %.1f, \"client_rss_bytes\": %llu}\n",
                double(work.operations) / seconds, double(work.bytes) / (1 << 20) / seconds,
                static_cast<unsigned long long>(rss));
  } else {
    std::printf("{\"p50_us\": %.1f, \"p99_us\": %.1f, \"reads\": %zu}\n",
                percentile_us(&work.latencies_ns, 0.50), percentile_us(&work.latencies_ns, 0.99),
                work.latencies_ns.size());
  }
  co_return Status();
}

Task<Status> sequential_run(client::Client* mica, Config config, AlignedBuffer* buffers,
                            uint64_t rss_before) {
  auto making = ensure_dir(mica, "/bench");
  CO_TRY(co_await std::move(making));
  bool write = config.mode == "seq_write";
  if (!write) {
    auto ensuring =
        ensure_file(mica, kSeqPath, config.file_bytes, buffers->span(), shape_of(config));
    CO_TRY(co_await std::move(ensuring));
  }
  auto running =
      sequential(mica, kSeqPath, write, config.file_bytes, buffers->span(), shape_of(config));
  CO_TRY_ASSIGN(double seconds, co_await std::move(running));
  uint64_t rss_now = resident_bytes();
  std::printf("{\"mib_per_s\": %.1f, \"client_rss_bytes\": %llu}\n",
              double(config.file_bytes) / (1 << 20) / seconds,
              static_cast<unsigned long long>(rss_now > rss_before ? rss_now - rss_before : 0));
  co_return Status();
}

Task<Status> client_run(Config config) {
  // The bench's own buffers are touched before the baseline: the growth is the client's.
  AlignedBuffer buffers(config.depth * config.block_bytes);
  fill(buffers.span(), 3);
  uint64_t rss_before = resident_bytes();
  auto connecting = client::Client::connect(config.client);
  CO_TRY_ASSIGN(std::unique_ptr<client::Client> mica, co_await std::move(connecting));
  Status status;
  if (config.mode == "seq_write" || config.mode == "seq_read") {
    auto running = sequential_run(mica.get(), config, &buffers, rss_before);
    status = co_await std::move(running);
  } else {
    auto running = random_reads(mica.get(), config, rss_before);
    status = co_await std::move(running);
  }
  auto closing = mica->close();
  co_await std::move(closing);
  co_return status;
}

// ---- the reference: the chunk engine alone ----

Task<void> engine_prepare_loop(chunk::ChunkEngine* engine, uint64_t chunks,
                               std::span<const std::byte> data, Work* work) {
  uint32_t crc = crc32c(data);
  while (work->error.ok() && work->next < chunks) {
    auto index = static_cast<uint32_t>(work->next++);
    chunk::UpdateVersion version{.version = 1, .chain_version = 1};
    auto replacing = engine->replace(chunk::ChunkId{kEngineInode, index}, data, crc, version);
    Result<chunk::ChunkInfo> info = co_await std::move(replacing);
    if (!info.ok()) work->error = info.status();
  }
}

Task<void> engine_read_loop(chunk::ChunkEngine* engine, Config config, uint64_t chunks,
                            std::span<std::byte> out, uint64_t seed, TimePoint stop, Work* work) {
  Random random(seed);
  while (work->error.ok() && Executor::current()->now() < stop) {
    auto index = static_cast<uint32_t>(random.below(chunks));
    auto offset =
        static_cast<uint32_t>(random_offset(&random, config.chunk_bytes, config.sample_bytes));
    auto reading = engine->read(chunk::ChunkId{kEngineInode, index}, offset, out);
    Result<size_t> n = co_await std::move(reading);
    if (!n.ok() || *n != out.size()) {
      work->error =
          n.ok() ? Status(StatusCode::kIoError, "an engine read came back short") : n.status();
      break;
    }
    ++work->operations;
  }
}

// Stores the chunks once (a marker file records how many bytes), reused while it matches.
Task<Status> engine_prepare(chunk::ChunkEngine* engine, Config config, uint64_t chunks) {
  std::string marker = config.engine_dir + kEngineMarker;
  uint64_t prepared = 0;
  std::ifstream(marker) >> prepared;
  if (prepared == chunks * config.chunk_bytes) co_return Status();
  AlignedBuffer data(config.chunk_bytes);
  fill(data.span(), 5);
  Work work;
  {
    TaskScope scope;
    for (uint32_t t = 0; t < config.depth; ++t) {
      scope.spawn(engine_prepare_loop(engine, chunks, data.span(), &work));
    }
    co_await scope.join();
  }
  CO_TRY(work.error);
  std::ofstream(marker) << chunks * config.chunk_bytes;
  co_return Status();
}

Task<Status> engine_run(Config config) {
  uint64_t chunks = config.shards * config.shard_bytes / config.chunk_bytes;
  chunk::ChunkEngineConfig engine_config;
  engine_config.reserve_bytes = 0;
  auto opening = chunk::ChunkEngine::open(config.engine_dir, engine_config);
  CO_TRY_ASSIGN(std::unique_ptr<chunk::ChunkEngine> engine, co_await std::move(opening));
  auto preparing = engine_prepare(engine.get(), config, chunks);
  Status status = co_await std::move(preparing);
  uint32_t tasks = config.batches * config.batch_items;
  AlignedBuffer out(size_t{tasks} * config.sample_bytes);
  Work work;
  TimePoint start = Executor::current()->now();
  TimePoint stop = start + to_duration(config.seconds);
  if (status.ok()) {
    TaskScope scope;
    for (uint32_t t = 0; t < tasks; ++t) {
      std::span<std::byte> slice = out.span().subspan(t * config.sample_bytes, config.sample_bytes);
      scope.spawn(engine_read_loop(engine.get(), config, chunks, slice, t + 1, stop, &work));
    }
    co_await scope.join();
    status = work.error;
  }
  double seconds = seconds_since(start);
  auto closing = engine->close();
  Status closed = co_await std::move(closing);
  CO_TRY(status);
  CO_TRY(closed);
  std::printf("{\"reads_per_s\": %.0f}\n", double(work.operations) / seconds);
  co_return Status();
}

bool valid(const Config& c) {
  static const char* kModes[] = {"seq_write", "seq_read", "batch_randread", "latency",
                                 "engine_randread"};
  bool known =
      std::any_of(std::begin(kModes), std::end(kModes), [&](const char* m) { return c.mode == m; });
  bool engine = c.mode == "engine_randread";
  return known && (engine ? !c.engine_dir.empty() : !c.client.mgmtd.empty()) && c.depth >= 1 &&
         c.depth <= kTasksMax && c.batches * c.batch_items <= kTasksMax &&
         c.shard_bytes >= c.sample_bytes && c.chunk_bytes % c.sample_bytes == 0 &&
         (!engine || c.shards * c.shard_bytes % c.chunk_bytes == 0) &&
         c.sample_bytes % kDirectIoAlignment == 0;
}

}  // namespace
}  // namespace mica::bench

int main(int argc, char** argv) {
  using namespace mica::bench;
  Flags flags(argc, argv,
              "bench_client --mode seq_write|seq_read|batch_randread|latency|engine_randread "
              "[--mgmtd H:P --token-file F] [--engine-dir DIR] [--file-bytes N] "
              "[--block-bytes N] [--depth D] [--shards N] [--shard-bytes N] "
              "[--sample-bytes N] [--batch-items B] [--batches Q] [--seconds S] "
              "[--chunk-bytes N]");
  Config config;
  config.mode = flags.text("mode", "");
  config.client.mgmtd = flags.text("mgmtd", "");
  config.client.token_file = flags.text("token-file", "");
  config.client.transport = mica::net::TransportChoice::kTcp;
  config.engine_dir = flags.text("engine-dir", "");
  config.file_bytes = static_cast<uint64_t>(flags.number("file-bytes", double(config.file_bytes)));
  config.block_bytes =
      static_cast<uint64_t>(flags.number("block-bytes", double(config.block_bytes)));
  config.depth = static_cast<uint32_t>(flags.number("depth", config.depth));
  config.shards = static_cast<uint32_t>(flags.number("shards", config.shards));
  config.shard_bytes =
      static_cast<uint64_t>(flags.number("shard-bytes", double(config.shard_bytes)));
  config.sample_bytes =
      static_cast<uint64_t>(flags.number("sample-bytes", double(config.sample_bytes)));
  config.batch_items = static_cast<uint32_t>(flags.number("batch-items", config.batch_items));
  config.batches = static_cast<uint32_t>(flags.number("batches", config.batches));
  config.seconds = flags.number("seconds", config.seconds);
  config.chunk_bytes =
      static_cast<uint64_t>(flags.number("chunk-bytes", double(config.chunk_bytes)));
  flags.finish();
  if (!valid(config)) {
    std::fprintf(stderr, "bench_client: bad mode, cluster address, engine directory or sizes\n");
    return 2;
  }
  std::unique_ptr<mica::Executor> executor = mica::Executor::create_uring();
  mica::Status status = config.mode == "engine_randread" ? executor->block_on(engine_run(config))
                                                         : executor->block_on(client_run(config));
  if (!status.ok()) {
    std::fprintf(stderr, "bench_client: %s\n", status.to_string().c_str());
    return 1;
  }
  return 0;
}
