// bench_storage: the storage suite (bench/run.sh storage) — the replicated storage service
// measured through craq::StorageClient against StorageServers on 127.0.0.1 (real TCP, one
// executor thread per server, chains by hand: bench/storage_cluster.h), and the chunk engine
// alone on the same data for the references. One mode per run, one JSON object on stdout:
//   prepare       a fresh 3-server, one-chain, 3-replica cluster in --dir with --chunks
//                 committed 1 MiB chunks (inode 1), written through the client; the read,
//                 batch, resync and engine modes reopen it.
//   write         a fresh cluster in --dir (--servers, --chains rotating heads, --replicas):
//                 --depth tasks write whole 1 MiB chunks (round robin over --chunks chunks
//                 of inode 2, then new versions of them) for --seconds. {"mib_per_s",
//                 "rss_bytes_per_server": growth of the process's RSS from before the
//                 servers opened to the end of the run, divided by the servers}
//   read          the prepared cluster: --depth tasks read whole random chunks with
//                 --read-choice spread|head. {"mib_per_s"}
//   batch         the prepared cluster: --batches tasks each call read_batch with
//                 --batch-items random reads, alternately 4 KiB and 64 KiB at aligned
//                 random offsets of random chunks. {"reads_per_s", "mib_per_s"}
//   engine_batch  the same reads, --batches x --batch-items tasks doing one ChunkEngine::read
//                 each at a time, on the prepared first replica's engine alone.
//   resync        the prepared first replica and a fresh target syncing after it (chain
//                 [serving, syncing], bandwidth cap off): time from routing until the new
//                 target is up to date. {"mib_per_s": prepared bytes / that time}
//   engine_read   every prepared chunk read whole from the first replica's engine alone,
//                 --depth at once (the resync's chunks in flight). {"mib_per_s"}
//   engine_replace  as many whole 1 MiB chunks as are prepared, each stored with
//                 ChunkEngine::replace (durable, what a syncing target does per chunk) into
//                 a fresh engine alone, --depth at once. {"mib_per_s"}
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "async/crc32c.h"
#include "async/file.h"
#include "async/scope.h"
#include "async/wait_list.h"
#include "bench/flags.h"
#include "bench/storage_cluster.h"
#include "craq/storage_client.h"

namespace mica::bench {
namespace {

constexpr uint32_t kChunkBytes = 1 << 20;
constexpr uint64_t kPreparedInode = 1;
constexpr uint64_t kWriteInode = 2;
constexpr uint32_t kSmallReadBytes = 4 << 10;
constexpr uint32_t kLargeReadBytes = 64 << 10;
constexpr uint32_t kTasksMax = 4096;
constexpr auto kSetupTimeout = std::chrono::seconds(60);
constexpr auto kResyncPoll = std::chrono::milliseconds(1);
constexpr const char* kPreparedMarker = "/prepared-chunks";

struct Config {
  std::string mode;
  std::string dir;
  uint32_t servers = 3;
  uint32_t chains = 1;
  uint32_t replicas = 3;
  uint32_t chunks = 256;
  uint32_t depth = 8;
  uint32_t batches = 4;
  uint32_t batch_items = 32;
  double seconds = 5;
  craq::ReadChoice read_choice = craq::ReadChoice::kSpread;
};

// What the measuring tasks share (all on one executor).
struct Work {
  uint64_t next = 0;  // the next chunk to write
  uint64_t operations = 0;
  uint64_t bytes = 0;
  Status error;
};

Duration to_duration(double seconds) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}
double seconds_since(TimePoint start) {
  return std::chrono::duration<double>(Executor::current()->now() - start).count();
}

// xorshift64: the bench's random offsets (reproducible, no standard-library distribution).
struct Random {
  explicit Random(uint64_t seed) : x(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t x;
  uint64_t next() {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  }
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(next() % n); }
};

// One random read of the batch mix: item i is 4 KiB when even, 64 KiB when odd.
struct ReadItem {
  uint32_t index;
  uint32_t offset;
  uint32_t bytes;
};
ReadItem random_item(Random* random, uint32_t chunks, uint32_t i) {
  uint32_t bytes = i % 2 == 0 ? kSmallReadBytes : kLargeReadBytes;
  return ReadItem{random->below(chunks), random->below(kChunkBytes / bytes) * bytes, bytes};
}

void fill(std::span<std::byte> bytes, uint64_t seed) {
  Random random(seed);
  for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
    uint64_t v = random.next();
    std::memcpy(bytes.data() + i, &v, 8);
  }
}

// ---- the client side ----

struct Client {
  explicit Client(SocketAddress mgmtd, craq::ReadChoice choice)
      : pool(&transport),
        routing(&pool, craq::RoutingClientOptions{.mgmtd = {mgmtd}, .poll_wait_ms = 200}),
        storage(&pool, &transport, &routing, craq::StorageClientOptions{.read_choice = choice}) {}
  net::TcpTransport transport;
  net::ConnectionPool pool;
  craq::RoutingClient routing;
  craq::StorageClient storage;
};

Task<Status> start_client(Client* client) {
  client->routing.start();
  auto waiting = client->routing.wait_for_version(1, deadline_after(kSetupTimeout));
  Result<craq::RoutingClient::SnapshotPtr> snapshot = co_await std::move(waiting);
  co_return snapshot.status();
}

Task<void> stop_client(Client* client) {
  auto stopping = client->routing.stop();
  co_await std::move(stopping);
  auto closing = client->pool.close();
  co_await std::move(closing);
}

craq::ChunkRef chunk_ref(uint64_t inode, uint64_t k) {
  return craq::ChunkRef{inode, static_cast<uint32_t>(k)};
}

// Writes whole chunks, round robin over `chunks` chunks of inode, until stop (or, with
// stop = kNoDeadline, until every chunk was written once).
Task<void> write_loop(craq::StorageClient* client, Config config, uint64_t inode,
                      std::span<const std::byte> data, TimePoint stop, Work* work) {
  for (;;) {
    bool once = stop == kNoDeadline;
    if (once ? work->next >= config.chunks : Executor::current()->now() >= stop) break;
    uint64_t k = work->next++ % config.chunks;  // chunk k always lives on the same chain
    craq::ChainId chain = static_cast<craq::ChainId>(k % config.chains) + 1;
    auto writing = client->write(chain, chunk_ref(inode, k), 0, data, kChunkBytes);
    Result<craq::ChunkState> written = co_await std::move(writing);
    if (!written.ok()) {
      work->error = written.status();
      break;
    }
    ++work->operations;
    work->bytes += data.size();
  }
}

Task<double> write_all(craq::StorageClient* client, Config config, uint64_t inode,
                       AlignedBuffer* buffers, TimePoint stop, Work* work) {
  TimePoint start = Executor::current()->now();
  TaskScope scope;
  for (uint32_t t = 0; t < config.depth; ++t) {
    std::span<const std::byte> data(buffers->data() + size_t{t} * kChunkBytes, kChunkBytes);
    scope.spawn(write_loop(client, config, inode, data, stop, work));
  }
  co_await scope.join();
  co_return seconds_since(start);
}

Task<void> read_loop(craq::StorageClient* client, Config config, std::span<std::byte> out,
                     uint64_t seed, TimePoint stop, Work* work) {
  Random random(seed);
  while (Executor::current()->now() < stop) {
    auto reading = client->read(1, chunk_ref(kPreparedInode, random.below(config.chunks)), 0, out);
    Result<uint32_t> n = co_await std::move(reading);
    if (!n.ok() || *n != out.size()) {
      work->error =
          n.ok() ? Status(StatusCode::kInternal, "a prepared chunk read short") : n.status();
      break;
    }
    ++work->operations;
    work->bytes += *n;
  }
}

Task<void> batch_loop(craq::StorageClient* client, Config config, std::span<std::byte> out,
                      uint64_t seed, TimePoint stop, Work* work) {
  Random random(seed);
  while (Executor::current()->now() < stop) {
    std::vector<craq::ChunkRead> reads;
    size_t at = 0;
    for (uint32_t i = 0; i < config.batch_items; ++i) {
      ReadItem item = random_item(&random, config.chunks, i);
      reads.push_back(craq::ChunkRead{.chain = 1,
                                      .chunk = chunk_ref(kPreparedInode, item.index),
                                      .offset = item.offset,
                                      .out = out.subspan(at, item.bytes)});
      at += item.bytes;
    }
    auto reading = client->read_batch(std::move(reads));
    std::vector<Result<uint32_t>> results = co_await std::move(reading);
    for (uint32_t i = 0; i < results.size(); ++i) {
      uint32_t expected = i % 2 == 0 ? kSmallReadBytes : kLargeReadBytes;
      if (!results[i].ok() || *results[i] != expected) {
        work->error = results[i].ok() ? Status(StatusCode::kInternal, "a batch read was short")
                                      : results[i].status();
        co_return;
      }
      ++work->operations;
      work->bytes += expected;
    }
  }
}

// Bytes of one batch task's buffer: its items alternate 4 KiB and 64 KiB.
size_t batch_buffer_bytes(const Config& config) {
  return size_t{config.batch_items / 2} * kLargeReadBytes +
         size_t{(config.batch_items + 1) / 2} * kSmallReadBytes;
}

// ---- the modes that run a cluster ----

ClusterLayout layout_of(const Config& config) {
  return ClusterLayout{.dir = config.dir,
                       .servers = config.servers,
                       .chains = config.chains,
                       .replicas = config.replicas};
}

// Opens the cluster, routes it, runs body(client) on a started client, closes it all.
template <typename Body>
Task<Status> with_cluster(Runtime* runtime, ClusterLayout layout, craq::ReadChoice choice,
                          Body body) {
  BenchCluster cluster(runtime, layout);
  auto opening = cluster.open();
  Status status = co_await std::move(opening);
  if (status.ok()) {
    auto routing = cluster.route(cluster.snapshot());
    co_await std::move(routing);
    Client client(cluster.routing_address(), choice);
    auto starting = start_client(&client);
    status = co_await std::move(starting);
    if (status.ok()) {
      auto measuring = body(&cluster, &client.storage);
      status = co_await std::move(measuring);
    }
    auto stopping = stop_client(&client);
    co_await std::move(stopping);
  }
  auto closing = cluster.close();
  Status closed = co_await std::move(closing);
  co_return status.ok() ? closed : status;
}

Task<Status> prepare_body(Config config, BenchCluster*, craq::StorageClient* client) {
  AlignedBuffer buffers(size_t{config.depth} * kChunkBytes);
  fill(buffers.span(), 1);
  Work work;
  auto writing = write_all(client, config, kPreparedInode, &buffers, kNoDeadline, &work);
  double seconds = co_await std::move(writing);
  CO_TRY(work.error);
  std::ofstream(config.dir + kPreparedMarker) << config.chunks << "\n";
  std::printf("{\"chunks\": %u, \"mib_per_s\": %.1f}\n", config.chunks,
              double(work.bytes) / (1 << 20) / seconds);
  co_return Status();
}

Task<Status> write_body(Config config, uint64_t rss_before, BenchCluster* cluster,
                        craq::StorageClient* client, AlignedBuffer* buffers) {
  Work work;
  TimePoint stop = Executor::current()->now() + to_duration(config.seconds);
  auto writing = write_all(client, config, kWriteInode, buffers, stop, &work);
  double seconds = co_await std::move(writing);
  CO_TRY(work.error);
  uint64_t rss_after = resident_bytes();
  std::printf("{\"mib_per_s\": %.1f, \"writes\": %lu, \"rss_bytes_per_server\": %.0f}\n",
              double(work.bytes) / (1 << 20) / seconds, static_cast<unsigned long>(work.operations),
              double(rss_after - std::min(rss_after, rss_before)) / cluster->size());
  co_return Status();
}

Task<Status> read_body(Config config, BenchCluster*, craq::StorageClient* client) {
  bool batch = config.mode == "batch";
  uint32_t tasks = batch ? config.batches : config.depth;
  size_t slice = batch ? batch_buffer_bytes(config) : kChunkBytes;
  AlignedBuffer buffers(size_t{tasks} * slice);
  Work work;
  TimePoint start = Executor::current()->now();
  TimePoint stop = start + to_duration(config.seconds);
  {
    TaskScope scope;
    for (uint32_t t = 0; t < tasks; ++t) {
      std::span<std::byte> out(buffers.data() + t * slice, slice);
      if (batch)
        scope.spawn(batch_loop(client, config, out, t + 1, stop, &work));
      else
        scope.spawn(read_loop(client, config, out, t + 1, stop, &work));
    }
    co_await scope.join();
  }
  CO_TRY(work.error);
  double seconds = seconds_since(start);
  std::printf("{\"reads_per_s\": %.0f, \"mib_per_s\": %.1f}\n", double(work.operations) / seconds,
              double(work.bytes) / (1 << 20) / seconds);
  co_return Status();
}

// ---- resync ----

// Waits on the syncing server's executor until its target reports up to date.
Task<Status> wait_up_to_date(BenchServer* server, uint64_t chain_version, TimePoint deadline) {
  Executor* home = Executor::current();
  co_await server->executor->schedule();
  Status status;
  for (;;) {
    const craq::StorageTarget& target = *server->server->targets().all().at(0);
    if (target.local_state() == craq::LocalState::kUpToDate &&
        target.local_chain_version() == chain_version)
      break;
    if (server->executor->now() >= deadline) {
      status = Status(StatusCode::kTimedOut, "the syncing target did not catch up");
      break;
    }
    Status slept = co_await sleep_for(kResyncPoll);
    (void)slept;
  }
  co_await home->schedule();
  co_return status;
}

Task<Result<uint64_t>> chunk_count_on(BenchServer* server) {
  Executor* home = Executor::current();
  co_await server->executor->schedule();
  uint64_t chunks = server->server->targets().all().at(0)->engine().space().chunks;
  co_await home->schedule();
  co_return chunks;
}

Task<Status> resync_run(Runtime* runtime, Config config) {
  std::string fresh = config.dir + "/resync-target";
  std::error_code ignored;
  std::filesystem::remove_all(fresh, ignored);
  ClusterLayout layout{.dir = config.dir,
                       .servers = 2,
                       .chains = 1,
                       .replicas = 2,
                       .resync_chunks_in_flight_max = config.depth,
                       .last_syncing = true,
                       .server_dirs = {config.dir + "/s0", fresh}};
  BenchCluster cluster(runtime, layout);
  auto opening = cluster.open();
  Status status = co_await std::move(opening);
  if (status.ok()) {
    TimePoint start = Executor::current()->now();
    auto routing = cluster.route(cluster.snapshot());
    co_await std::move(routing);
    auto waiting = wait_up_to_date(&cluster.server(1), layout.chain_version,
                                   start + std::chrono::seconds(600));
    status = co_await std::move(waiting);
    double seconds = seconds_since(start);
    auto counting = chunk_count_on(&cluster.server(1));
    Result<uint64_t> chunks = co_await std::move(counting);
    if (status.ok() && (!chunks.ok() || *chunks != config.chunks))
      status = Status(StatusCode::kInternal, "the synced target lacks chunks");
    if (status.ok())
      std::printf("{\"mib_per_s\": %.1f, \"seconds\": %.3f}\n",
                  double(config.chunks) * kChunkBytes / (1 << 20) / seconds, seconds);
  }
  auto closing = cluster.close();
  Status closed = co_await std::move(closing);
  std::filesystem::remove_all(fresh, ignored);
  co_return status.ok() ? closed : status;
}

// ---- the chunk engine alone ----

Task<void> engine_read_loop(chunk::ChunkEngine* engine, Config config, std::span<std::byte> out,
                            Work* work, uint64_t seed, TimePoint stop) {
  Random random(seed);
  bool whole = config.mode == "engine_read";
  for (uint32_t i = static_cast<uint32_t>(seed);; ++i) {
    ReadItem item{0, 0, kChunkBytes};
    if (whole) {
      if (work->next >= config.chunks) break;
      item.index = static_cast<uint32_t>(work->next++);
    } else {
      if (Executor::current()->now() >= stop) break;
      item = random_item(&random, config.chunks, i);
    }
    auto reading = engine->read(chunk::ChunkId{kPreparedInode, item.index}, item.offset,
                                out.first(item.bytes));
    Result<size_t> n = co_await std::move(reading);
    if (!n.ok() || *n != item.bytes) {
      work->error =
          n.ok() ? Status(StatusCode::kInternal, "a prepared chunk read short") : n.status();
      break;
    }
    ++work->operations;
    work->bytes += item.bytes;
  }
}

Task<void> replace_loop(chunk::ChunkEngine* engine, Config config, std::span<const std::byte> data,
                        uint32_t crc, Work* work) {
  while (work->next < config.chunks) {
    auto index = static_cast<uint32_t>(work->next++);
    chunk::UpdateVersion version{.version = 1, .chain_version = 1};
    auto replacing = engine->replace(chunk::ChunkId{kPreparedInode, index}, data, crc, version);
    Result<chunk::ChunkInfo> info = co_await std::move(replacing);
    if (!info.ok()) {
      work->error = info.status();
      break;
    }
    ++work->operations;
    work->bytes += data.size();
  }
}

Task<Status> engine_replace_run(Config config) {
  std::string fresh = config.dir + "/replace-target";
  std::error_code ignored;
  std::filesystem::remove_all(fresh, ignored);
  chunk::ChunkEngineConfig engine_config;
  engine_config.reserve_bytes = 0;
  auto opening = chunk::ChunkEngine::open(fresh, engine_config);
  CO_TRY_ASSIGN(std::unique_ptr<chunk::ChunkEngine> engine, co_await std::move(opening));
  AlignedBuffer buffers(size_t{config.depth} * kChunkBytes);
  fill(buffers.span(), 3);
  Work work;
  TimePoint start = Executor::current()->now();
  {
    TaskScope scope;
    for (uint32_t t = 0; t < config.depth; ++t) {
      std::span<const std::byte> data(buffers.data() + size_t{t} * kChunkBytes, kChunkBytes);
      scope.spawn(replace_loop(engine.get(), config, data, crc32c(data), &work));
    }
    co_await scope.join();
  }
  double seconds = seconds_since(start);
  auto closing = engine->close();
  Status closed = co_await std::move(closing);
  std::filesystem::remove_all(fresh, ignored);
  CO_TRY(work.error);
  CO_TRY(closed);
  std::printf("{\"mib_per_s\": %.1f}\n", double(work.bytes) / (1 << 20) / seconds);
  co_return Status();
}

Task<Status> engine_run(Config config) {
  chunk::ChunkEngineConfig engine_config;
  engine_config.reserve_bytes = 0;
  auto opening = chunk::ChunkEngine::open(config.dir + "/s0/c0", engine_config);
  CO_TRY_ASSIGN(std::unique_ptr<chunk::ChunkEngine> engine, co_await std::move(opening));
  bool whole = config.mode == "engine_read";
  uint32_t tasks = whole ? config.depth : config.batches * config.batch_items;
  size_t slice = whole ? kChunkBytes : kLargeReadBytes;
  AlignedBuffer buffers(size_t{tasks} * slice);
  Work work;
  TimePoint start = Executor::current()->now();
  TimePoint stop = start + to_duration(config.seconds);
  {
    TaskScope scope;
    for (uint32_t t = 0; t < tasks; ++t) {
      std::span<std::byte> out(buffers.data() + t * slice, slice);
      // Every task alternates 4 KiB and 64 KiB reads, as the items of a batch do.
      scope.spawn(engine_read_loop(engine.get(), config, out, &work, t, stop));
    }
    co_await scope.join();
  }
  double seconds = seconds_since(start);
  auto closing = engine->close();
  Status closed = co_await std::move(closing);
  CO_TRY(work.error);
  CO_TRY(closed);
  std::printf("{\"reads_per_s\": %.0f, \"mib_per_s\": %.1f}\n", double(work.operations) / seconds,
              double(work.bytes) / (1 << 20) / seconds);
  co_return Status();
}

// ---- main ----

Task<Status> write_run(Runtime* runtime, Config config) {
  std::error_code ignored;
  std::filesystem::remove_all(config.dir, ignored);
  // Touched before the baseline, so the RSS growth is the servers' (and connections').
  AlignedBuffer buffers(size_t{config.depth} * kChunkBytes);
  fill(buffers.span(), 2);
  uint64_t rss_before = resident_bytes();
  auto body = [&](BenchCluster* cluster, craq::StorageClient* client) {
    return write_body(config, rss_before, cluster, client, &buffers);
  };
  auto running = with_cluster(runtime, layout_of(config), config.read_choice, body);
  Status status = co_await std::move(running);
  std::filesystem::remove_all(config.dir, ignored);
  co_return status;
}

Task<Status> run(Runtime* runtime, Config config) {
  if (config.mode == "write") {
    auto running = write_run(runtime, config);
    co_return co_await std::move(running);
  }
  if (config.mode == "resync") {
    auto running = resync_run(runtime, config);
    co_return co_await std::move(running);
  }
  if (config.mode == "engine_replace") {
    auto running = engine_replace_run(config);
    co_return co_await std::move(running);
  }
  if (config.mode == "engine_batch" || config.mode == "engine_read") {
    auto running = engine_run(config);
    co_return co_await std::move(running);
  }
  if (config.mode == "prepare") {
    std::error_code ignored;
    std::filesystem::remove_all(config.dir, ignored);
    auto body = [&](BenchCluster* cluster, craq::StorageClient* client) {
      return prepare_body(config, cluster, client);
    };
    auto running = with_cluster(runtime, layout_of(config), config.read_choice, body);
    co_return co_await std::move(running);
  }
  auto body = [&](BenchCluster* cluster, craq::StorageClient* client) {
    return read_body(config, cluster, client);
  };
  auto running = with_cluster(runtime, layout_of(config), config.read_choice, body);
  co_return co_await std::move(running);
}

// The prepared data set's chunk count (0 when there is none).
uint32_t prepared_chunks(const std::string& dir) {
  std::ifstream marker(dir + kPreparedMarker);
  uint32_t chunks = 0;
  marker >> chunks;
  return chunks;
}

bool valid(const Config& c) {
  static const char* kModes[] = {"prepare", "write",        "read",        "batch",
                                 "resync",  "engine_batch", "engine_read", "engine_replace"};
  bool known =
      std::any_of(std::begin(kModes), std::end(kModes), [&](const char* m) { return c.mode == m; });
  return known && !c.dir.empty() && c.servers >= 1 && c.replicas <= c.servers && c.chains >= 1 &&
         c.chunks >= 1 && c.depth >= 1 && c.depth <= kTasksMax &&
         c.batches * c.batch_items <= kTasksMax && c.batch_items >= 1;
}

}  // namespace
}  // namespace mica::bench

int main(int argc, char** argv) {
  using namespace mica::bench;
  Flags flags(argc, argv,
              "bench_storage --mode prepare|write|read|batch|resync|engine_batch|engine_read|"
              "engine_replace "
              "--dir DIR [--servers N] [--chains C] [--replicas R] [--chunks K] [--depth D] "
              "[--batches Q] [--batch-items B] [--seconds S] [--read-choice spread|head]");
  Config config;
  config.mode = flags.text("mode", "");
  config.dir = flags.text("dir", "");
  config.servers = static_cast<uint32_t>(flags.number("servers", 3));
  config.chains = static_cast<uint32_t>(flags.number("chains", 1));
  config.replicas = static_cast<uint32_t>(flags.number("replicas", 3));
  config.chunks = static_cast<uint32_t>(flags.number("chunks", 256));
  config.depth = static_cast<uint32_t>(flags.number("depth", 8));
  config.batches = static_cast<uint32_t>(flags.number("batches", 4));
  config.batch_items = static_cast<uint32_t>(flags.number("batch-items", 32));
  config.seconds = flags.number("seconds", 5);
  std::string choice = flags.text("read-choice", "spread");
  flags.finish();
  config.read_choice =
      choice == "head" ? mica::craq::ReadChoice::kHead : mica::craq::ReadChoice::kSpread;
  if (!valid(config) || (choice != "head" && choice != "spread")) {
    std::fprintf(stderr, "bench_storage: bad mode, directory or limits\n");
    return 2;
  }
  bool uses_prepared = config.mode != "write" && config.mode != "prepare";
  if (uses_prepared) {
    uint32_t prepared = prepared_chunks(config.dir);
    if (prepared == 0) {
      std::fprintf(stderr, "bench_storage: %s holds no prepared data (--mode prepare)\n",
                   config.dir.c_str());
      return 1;
    }
    config.chunks = prepared;
  }
  // Servers on executors 1.., the client (or the engine alone) on executor 0.
  uint32_t threads = config.mode.starts_with("engine_") ? 1
                     : config.mode == "resync"          ? 3
                                                        : config.servers + 1;
  mica::Status status;
  {
    mica::Runtime runtime(mica::RuntimeOptions{.threads = threads});
    status = runtime.block_on(run(&runtime, config));
  }
  if (!status.ok()) {
    std::fprintf(stderr, "bench_storage: %s\n", status.to_string().c_str());
    return 1;
  }
  return 0;
}
