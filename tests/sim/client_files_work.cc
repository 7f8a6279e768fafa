// Scenario client_files' client hosts (tests/sim/client_files.cc has the picture): each
// connects two Clients — one writes, the other looks (stat, the final reads), so lengths
// and bytes are checked across clients — and runs workers that open a new file, write,
// read, fsync and close it, again and again until the faults end; once every chain is back
// at full strength each worker reads every file it wrote through the other client.
#include <fcntl.h>

#include <algorithm>

#include "async/log.h"
#include "async/scope.h"
#include "client/client.h"
#include "craq/chain_table.h"
#include "tests/sim/client_files.h"

namespace mica::sim::client_files {
namespace {

using namespace std::chrono_literals;

enum class Call : int64_t { kOpen = 1, kWrite, kRead, kFsync, kClose, kStat, kVerify };

struct Worker {
  State* s = nullptr;
  SimHost* host = nullptr;
  client::Client* writer = nullptr;
  client::Client* looker = nullptr;
  uint32_t id = 0;
  std::vector<FileModel*> files;
};

SimWorld& world_of(const Worker& w) {
  return *w.s->cluster.world;
}

// Folds a call's outcome into the trace, counts a failure.
void outcome(Worker& w, Call call, const Status& status) {
  world_of(w).trace_user(w.host, int64_t(call) * 1000 + int64_t(status.code()));
  if (status.ok()) return;
  ++w.s->calls_failed;
  MICA_LOG(Warn, "client_files", "worker {}: call {} failed: {}", w.id, int64_t(call), status);
}

void fill(uint64_t seed, std::span<std::byte> out) {
  craq::PlacementRandom random(seed);
  for (size_t i = 0; i < out.size(); i += 8) {
    uint64_t word = random.next();
    for (size_t j = 0; j < 8 && i + j < out.size(); ++j)
      out[i + j] = std::byte((word >> (8 * j)) & 0xff);
  }
}

void grow(FileModel& f, uint64_t end) {
  if (f.bytes.size() < end) {
    f.bytes.resize(end, 0);
    f.unsure.resize(end, false);
  }
}

// Checks what a read of `length` at `offset` returned against the model: a length the
// contract allows (at least `least_end` - offset; never past any write tried) and the
// value of every byte that no failed write may have changed.
void check_read(Worker& w, const FileModel& f, uint64_t offset, uint64_t length,
                std::span<const std::byte> got, uint64_t least_end, const char* what) {
  uint64_t least = least_end > offset ? std::min(length, least_end - offset) : 0;
  uint64_t most = f.tried_end > offset ? std::min(length, f.tried_end - offset) : 0;
  if (got.size() < least || got.size() > most) {
    w.s->cluster.result->fail(fmt::format("{} {}: {} bytes at {} gave {}, the contract {}..{}",
                                          what, f.path, length, offset, got.size(), least, most));
    return;
  }
  for (size_t i = 0; i < got.size(); ++i) {
    uint64_t at = offset + i;
    uint8_t want = at < f.bytes.size() ? f.bytes[at] : 0;
    bool unsure = at < f.unsure.size() && f.unsure[at];
    if (!unsure && uint8_t(got[i]) != want) {
      w.s->cluster.result->fail(fmt::format("{} {}: byte {} is {:#04x}, acknowledged {:#04x}", what,
                                            f.path, at, unsigned(got[i]), unsigned(want)));
      return;
    }
  }
  ++w.s->reads_checked;
}

Task<void> do_write(Worker& w, FileModel& f, client::File* file) {
  SimRandom& random = world_of(w).random();
  uint64_t offset = random.below(kFileBytesMax);
  uint64_t length = 1 + random.below(kWriteBytesMax);
  std::vector<std::byte> data(length);
  uint64_t seed = random.next();
  fill(seed, data);
  f.tried_end = std::max(f.tried_end, offset + length);
  grow(f, offset + length);
  auto writing = file->pwrite(data, offset);
  Result<size_t> wrote = co_await std::move(writing);
  outcome(w, Call::kWrite, wrote.status());
  bool ok = wrote.ok() && *wrote == length;
  if (wrote.ok() && *wrote != length)
    w.s->cluster.result->fail(fmt::format("pwrite {}: {} of {} bytes", f.path, *wrote, length));
  for (uint64_t i = 0; i < length; ++i) {
    if (ok) {
      f.bytes[offset + i] = uint8_t(data[i]);
      f.unsure[offset + i] = false;
    } else {
      f.unsure[offset + i] = true;
    }
  }
  if (ok) {
    f.acked_end = std::max(f.acked_end, offset + length);
    ++w.s->writes_acked;
  } else {
    ++w.s->writes_failed;
  }
}

Task<void> do_read(Worker& w, FileModel& f, client::File* file) {
  SimRandom& random = world_of(w).random();
  uint64_t offset = random.below(f.tried_end + 16 * 1024);
  uint64_t length = 1 + random.below(kWriteBytesMax);
  std::vector<std::byte> got(length);
  auto reading = file->pread(got, offset);
  Result<size_t> read = co_await std::move(reading);
  outcome(w, Call::kRead, read.status());
  if (!read.ok()) co_return;
  // This handle wrote every acknowledged byte itself: it knows the file reaches acked_end.
  check_read(w, f, offset, length, std::span(got).first(std::min(*read, length)), f.acked_end,
             "pread");
}

// After an acknowledged close the other client sees a length the writes allow.
Task<void> check_length(Worker& w, FileModel& f) {
  auto stating = w.looker->stat(f.path);
  Result<client::Inode> inode = co_await std::move(stating);
  outcome(w, Call::kStat, inode.status());
  if (!inode.ok()) co_return;
  ++w.s->closes_checked;
  if (inode->length < f.acked_end || inode->length > f.tried_end)
    w.s->cluster.result->fail(
        fmt::format("after close, the other client sees {} of length {}, "
                    "the writes allow {}..{}",
                    f.path, inode->length, f.acked_end, f.tried_end));
}

// One file: open (new), a few writes, reads and fsyncs, close, the length seen elsewhere.
Task<void> one_file(Worker& w) {
  w.s->files.push_back(std::make_unique<FileModel>());
  FileModel& f = *w.s->files.back();
  f.path = fmt::format("/w{}-{}", w.id, w.files.size());
  w.files.push_back(&f);
  auto opening = w.writer->open(f.path, client::OpenMode{.flags = O_CREAT | O_RDWR});
  Result<std::unique_ptr<client::File>> opened = co_await std::move(opening);
  outcome(w, Call::kOpen, opened.status());
  if (!opened.ok()) {
    f.lost = true;
    co_return;
  }
  std::unique_ptr<client::File> file = std::move(*opened);
  SimRandom& random = world_of(w).random();
  uint64_t ops = 1 + random.below(kOpsPerOpenMax);
  for (uint64_t i = 0; i < ops; ++i) {
    uint64_t dice = random.below(10);
    if (dice < 6) {
      auto writing = do_write(w, f, file.get());
      co_await std::move(writing);
    } else if (dice < 9) {
      auto reading = do_read(w, f, file.get());
      co_await std::move(reading);
    } else {
      auto syncing = file->fsync();
      Status synced = co_await std::move(syncing);
      outcome(w, Call::kFsync, synced);
    }
  }
  auto closing = file->close();
  Status closed = co_await std::move(closing);
  outcome(w, Call::kClose, closed);
  f.closed_ok = closed.ok();
  if (f.closed_ok) {
    auto checking = check_length(w, f);
    co_await std::move(checking);
  }
}

// Once recovered: every file read whole through the other client.
Task<void> verify(Worker& w, FileModel& f) {
  auto opening = w.looker->open(f.path, client::OpenMode{.flags = O_RDONLY});
  Result<std::unique_ptr<client::File>> opened = co_await std::move(opening);
  outcome(w, Call::kVerify, opened.status());
  if (!opened.ok()) {
    w.s->cluster.result->fail(
        fmt::format("after recovery, opening {}: {}", f.path, opened.status().to_string()));
    co_return;
  }
  std::unique_ptr<client::File> file = std::move(*opened);
  std::vector<std::byte> got(f.tried_end + 1);
  auto reading = file->pread(got, 0);
  Result<size_t> read = co_await std::move(reading);
  outcome(w, Call::kVerify, read.status());
  if (!read.ok()) {
    w.s->cluster.result->fail(
        fmt::format("after recovery, reading {}: {}", f.path, read.status().to_string()));
  } else {
    // An unacknowledged close may have left metadata's length short of the writes.
    uint64_t least_end = f.closed_ok ? f.acked_end : 0;
    check_read(w, f, 0, got.size(), std::span(got).first(std::min(*read, got.size())), least_end,
               "final read");
    ++w.s->files_verified;
    w.s->bytes_verified += *read;
  }
  auto closing = file->close();
  Status closed = co_await std::move(closing);
  outcome(w, Call::kVerify, closed);
}

Task<bool> pause(Duration d) {
  SleepAwaiter sleeping = sleep_for(d);
  Status slept = co_await sleeping;
  co_return slept.ok();
}

Task<void> worker(Worker w) {
  State* s = w.s;
  TimePoint end = s->cluster.start + kFaultEnd;
  while (world_of(w).now() < end && !s->cluster.done) {
    auto writing = one_file(w);
    co_await std::move(writing);
    auto pausing = pause(world_of(w).random().between(kFilePauseMin, kFilePauseMax));
    if (!co_await std::move(pausing)) break;
  }
  while (!s->recovered && !s->cluster.done) {
    auto pausing = pause(20ms);
    if (!co_await std::move(pausing)) break;
  }
  for (FileModel* f : w.files) {
    if (!s->recovered || f->lost) continue;
    auto verifying = verify(w, *f);
    co_await std::move(verifying);
  }
  --s->workers_running;
}

client::ClientOptions client_options(const State* s) {
  client::ClientOptions options;
  options.mgmtd = s->cluster.mgmtd_address.to_string();
  options.transport = net::TransportChoice::kTcp;
  options.cred = meta::Credentials{.uid = 0, .gid = 0};
  options.call_timeout = kClientCallTimeout;
  options.length_report_interval = 200ms;
  return options;
}

}  // namespace

Task<void> client_main(State* s, SimHost* host, uint32_t index) {
  while (!s->ready && !s->cluster.done) {
    auto pausing = pause(20ms);
    if (!co_await std::move(pausing)) break;
  }
  std::vector<std::unique_ptr<client::Client>> clients;
  for (uint32_t i = 0; i < 2 && s->ready; ++i) {
    auto connecting = client::Client::connect(client_options(s));
    Result<std::unique_ptr<client::Client>> connected = co_await std::move(connecting);
    if (!connected.ok()) {
      s->cluster.result->fail(
          fmt::format("client-{} cannot connect: {}", index + 1, connected.status().to_string()));
      break;
    }
    clients.push_back(std::move(*connected));
  }
  if (clients.size() == 2) {
    TaskScope scope;
    for (uint32_t k = 0; k < kWorkersPerClient; ++k)
      scope.spawn(worker(Worker{.s = s,
                                .host = host,
                                .writer = clients[k % 2].get(),
                                .looker = clients[(k + 1) % 2].get(),
                                .id = index * kWorkersPerClient + k}));
    co_await scope.join();
  } else {
    s->workers_running -= kWorkersPerClient;
  }
  for (auto& c : clients) {
    auto closing = c->close();
    co_await std::move(closing);
  }
}

}  // namespace mica::sim::client_files

