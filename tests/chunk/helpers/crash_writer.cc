// chunk_crash_writer DIR SEED REPORT_FD: the writer process of the crash test. It opens the
// target in DIR and, until it is killed, updates the crash model's chunks from kWriters
// concurrent tasks: writes, truncates and replaces of the next version, commits, writes
// committed at once (write_and_commit), aborts of pending versions found after a restart,
// and occasional removes. Before each operation it writes an intent to REPORT_FD (a pipe to
// the test), and once the operation returned ok an ack, before that chunk's next operation,
// so the test knows every acknowledged version. Any unexpected error ends the process with
// status 3 and a message, which the test reports.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "async/crc32c.h"
#include "async/scope.h"
#include "chunk/engine.h"
#include "tests/chunk/crash_model.h"

namespace mica::chunk::crash {
namespace {

int report_fd = -1;

[[noreturn]] void fail(const Status& s, const char* what) {
  fmt::print(stderr, "chunk_crash_writer: {}: {}\n", what, s.to_string());
  std::_Exit(3);
}

// A blocking write of one message: it is in the pipe (and survives our SIGKILL) when this
// returns. Blocking the executor for it is fine in this helper.
void report(uint32_t c, Op op, uint32_t version, Phase phase) {
  Report r{c, version, op, phase, 0};
  ssize_t n;
  do {
    n = ::write(report_fd, &r, sizeof(r));
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof(r))) fail(Status::from_errno(errno, "report"), "report");
}

// Runs one operation between its intent and its ack. operation is a plain (non-coroutine)
// lambda returning the operation's task.
template <class Operation>
Task<void> reported(uint32_t c, Op op, uint32_t version, const char* what, Operation operation) {
  report(c, op, version, Phase::kIntent);
  auto running = operation();
  Status s = co_await std::move(running);
  if (!s.ok()) fail(s, what);
  report(c, op, version, Phase::kAck);
}

struct Step {
  ChunkEngine* engine;
  uint32_t c;
  ChunkId id;
};

Task<Status> commit_op(Step s, uint32_t v) {
  auto committing = s.engine->commit(s.id, v, 1);
  co_return (co_await std::move(committing)).status();
}
Task<Status> abort_op(Step s, uint32_t v) {
  auto aborting = s.engine->abort(s.id, v);
  co_return co_await std::move(aborting);
}
Task<Status> remove_op(Step s) {
  auto removing = s.engine->remove(s.id);
  co_return co_await std::move(removing);
}
Task<Status> update_op(Step s, Op op, uint32_t v) {
  Update u = update_of(s.c, v);
  if (op == Op::kTruncate) {
    auto cutting = s.engine->truncate(s.id, u.length, {v, 1});
    co_return (co_await std::move(cutting)).status();
  }
  std::vector<std::byte> data = payload(s.c, v, u.length);
  std::span<const std::byte> bytes(data.data(), data.size());
  uint32_t crc = crc32c(bytes);
  Result<ChunkInfo> r = Status(StatusCode::kInternal, "unset");
  if (op == Op::kReplace) {
    auto replacing = s.engine->replace(s.id, bytes, crc, {v, 1});
    r = co_await std::move(replacing);
  } else if (op == Op::kWriteCommit) {
    auto both = s.engine->write_and_commit(s.id, u.offset, bytes, crc, {v, 1});
    r = co_await std::move(both);
  } else {
    auto writing = s.engine->write(s.id, u.offset, bytes, crc, {v, 1});
    r = co_await std::move(writing);
  }
  co_return r.status();
}

Task<void> step(ChunkEngine* engine, uint32_t c, std::mt19937_64* rng) {
  Step s{engine, c, chunk_id(c)};
  Result<ChunkInfo> info = engine->stat(s.id);
  if (!info.ok() && info.status().code() != StatusCode::kNotFound) fail(info.status(), "stat");
  uint32_t committed = info.ok() ? info->committed_version : 0;
  uint32_t pending = info.ok() ? info->pending_version : 0;
  if (pending != 0) {
    if ((*rng)() % 10 < 7) {
      auto running =
          reported(c, Op::kCommit, pending, "commit", [&] { return commit_op(s, pending); });
      co_await std::move(running);
    } else {
      auto running =
          reported(c, Op::kAbort, pending, "abort", [&] { return abort_op(s, pending); });
      co_await std::move(running);
    }
    co_return;
  }
  if (committed != 0 && (*rng)() % 50 == 0) {
    auto running = reported(c, Op::kRemove, 0, "remove", [&] { return remove_op(s); });
    co_await std::move(running);
    co_return;
  }
  uint32_t v = committed + 1;
  Update u = update_of(c, v);
  Op op = u.kind == Kind::kTruncate  ? Op::kTruncate
          : u.kind == Kind::kReplace ? Op::kReplace
          : (*rng)() % 4 == 0        ? Op::kWriteCommit
                                     : Op::kWrite;
  auto updating = reported(c, op, v, "update", [&] { return update_op(s, op, v); });
  co_await std::move(updating);
  if ((op == Op::kWrite || op == Op::kTruncate) && (*rng)() % 10 < 8) {
    auto running =
        reported(c, Op::kCommit, v, "commit after update", [&] { return commit_op(s, v); });
    co_await std::move(running);
  }
}

Task<void> writer(ChunkEngine* engine, uint32_t first, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (;;) {
    uint32_t c = first + static_cast<uint32_t>(rng() % (kChunks / kWriters));
    auto stepping = step(engine, c, &rng);
    co_await std::move(stepping);
  }
}

Task<void> run(std::string dir, uint64_t seed) {
  ChunkEngineConfig config;
  config.reserve_bytes = 0;
  config.growth_step_bytes = 1 << 20;
  config.lmdb_map_size_bytes = uint64_t{1} << 30;
  auto opening = ChunkEngine::open(dir, config);
  Result<std::unique_ptr<ChunkEngine>> engine = co_await std::move(opening);
  if (!engine.ok()) fail(engine.status(), "open");
  TaskScope scope;
  for (uint32_t w = 0; w < kWriters; ++w)
    scope.spawn(writer(engine->get(), w * (kChunks / kWriters), seed * 31 + w));
  co_await scope.join();  // never: the writers loop until the process is killed
}

}  // namespace
}  // namespace mica::chunk::crash

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: chunk_crash_writer DIR SEED REPORT_FD\n");
    return 2;
  }
  mica::chunk::crash::report_fd = std::atoi(argv[3]);
  auto executor = mica::Executor::create_uring();
  executor->block_on(mica::chunk::crash::run(argv[1], std::strtoull(argv[2], nullptr, 10)));
  return 0;
}
