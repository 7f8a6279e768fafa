// The journaled store alone (kv/journaled_env.h): reads merged from the journal's delta
// and LMDB agree with a map through many journal turns and checkpoints, also for a
// snapshot held across them; a damaged record ends the journal; and a writer killed with
// SIGKILL at random moments, over and over in one directory, loses no acknowledged commit.
// The shared suite (tests/kv/kv_test.cc, `All/KvTest.*/Journaled`) covers the rest.
//
// Heavy: JournaledEnv.AcknowledgedCommitsSurviveSigkill kills 40 writers (a few seconds);
// MICA_KV_CRASH_ITERATIONS sets the count, MICA_KV_CRASH_SECONDS (default 120) caps it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "kv/journaled_env.h"
#include "tests/kv/journal_ops.h"
#include "tests/kv/kv_test_util.h"

extern char** environ;

namespace mica::kv {
namespace {

using Model = std::map<std::string, std::string>;
using testing::be_key;

uint64_t env_or(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::strtoull(value, nullptr, 10) : fallback;
}

EnvOptions journaled(uint64_t journal_file_bytes = uint64_t{64} << 10) {
  return EnvOptions{.implementation = Implementation::kJournaled,
                    .journal_file_bytes = journal_file_bytes};
}

Task<std::unique_ptr<Env>> open_or_fail(std::string dir, EnvOptions options) {
  auto opening = Env::open(std::move(dir), options);
  Result<std::unique_ptr<Env>> env = co_await std::move(opening);
  EXPECT_TRUE(env.ok()) << env.status();
  co_return env.ok() ? std::move(*env) : nullptr;
}

// Everything txn holds in table, read forward (first/next) and backward (last/prev); both
// must agree with model, and so must seeks at random keys and the count.
void expect_reads_like(ReadTxn& txn, Table table, const Model& model, std::mt19937_64* rng,
                       const std::string& when) {
  auto cursor = txn.cursor(table);
  ASSERT_TRUE(cursor.ok());
  Model forward;
  for (auto at = (*cursor)->first(); at.ok() && *at; at = (*cursor)->next())
    forward.emplace((*at)->key, (*at)->value);
  EXPECT_EQ(forward, model) << "forward scan " << when;
  std::vector<std::string> backward;
  for (auto at = (*cursor)->last(); at.ok() && *at; at = (*cursor)->prev())
    backward.emplace_back((*at)->key);
  std::vector<std::string> expected;
  for (auto it = model.rbegin(); it != model.rend(); ++it) expected.push_back(it->first);
  EXPECT_EQ(backward, expected) << "backward scan " << when;
  for (int i = 0; i < 20; ++i) {
    std::string key = journal_ops::key_of((*rng)() % journal_ops::kKeys);
    auto at = (*cursor)->seek(key);
    ASSERT_TRUE(at.ok());
    auto want = model.lower_bound(key);
    if (want == model.end()) {
      EXPECT_FALSE(*at) << when;
    } else {
      ASSERT_TRUE(*at) << when;
      EXPECT_EQ((*at)->key, want->first) << when;
      EXPECT_EQ((*at)->value, want->second) << when;
      // A step back from a seek lands on the key before, as in the map.
      auto before = (*cursor)->prev();
      ASSERT_TRUE(before.ok());
      if (want == model.begin()) {
        EXPECT_FALSE(*before) << when;
      } else {
        ASSERT_TRUE(*before) << when;
        EXPECT_EQ((*before)->key, std::prev(want)->first) << when;
      }
    }
    auto got = txn.get(table, key);
    ASSERT_TRUE(got.ok());
    auto in_model = model.find(key);
    EXPECT_EQ(got->has_value(), in_model != model.end()) << when;
    if (*got && in_model != model.end()) {
      EXPECT_EQ(**got, in_model->second) << when;
    }
  }
  auto count = txn.count(table);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, model.size()) << "count " << when;
}

Task<void> merged_reads(std::string dir) {
  std::mt19937_64 rng(7);
  std::unique_ptr<Env> env = co_await open_or_fail(dir, journaled());
  if (env == nullptr) co_return;
  Table table = *env->open_table(journal_ops::kTable);
  Model model;
  std::unique_ptr<ReadTxn> held;  // a snapshot kept across writes and checkpoints
  Model held_model;
  uint64_t op = 0;
  for (int round = 0; round < 150; ++round) {
    // A few requests at once, so batches share a journal record.
    std::vector<WriteRequest> requests(1 + rng() % 4);
    for (WriteRequest& request : requests) {
      for (int n = 0; n < 3; ++n) {
        journal_ops::Op o = journal_ops::op_of(1, op++);
        if (o.value) {
          request.put(table, o.key, *o.value);
          model[o.key] = *o.value;
        } else {
          request.erase(table, o.key);
          model.erase(o.key);
        }
      }
    }
    std::vector<WriteRequest*> pointers;
    for (WriteRequest& request : requests) pointers.push_back(&request);
    co_await env->write_all(pointers);
    for (WriteRequest& request : requests) EXPECT_TRUE(request.status.ok()) << request.status;
    auto txn = env->begin_read();
    EXPECT_TRUE(txn.ok());
    if (!txn.ok()) co_return;
    expect_reads_like(**txn, table, model, &rng, fmt::format("after round {}", round));
    if (round % 40 == 0) {
      held = std::move(*txn);
      held_model = model;
    }
    if (held != nullptr && round % 40 == 39) {
      expect_reads_like(*held, table, held_model, &rng,
                        fmt::format("in a snapshot held to round {}", round));
      held.reset();
    }
  }
  held.reset();
  EXPECT_GE(env->counters().checkpoints.load(), 3u) << "the test needs journal turns";
  EXPECT_TRUE((co_await env->close()).ok());
  env.reset();
  std::unique_ptr<Env> again = co_await open_or_fail(dir, journaled());
  if (again == nullptr) co_return;
  Table reopened = *again->open_table(journal_ops::kTable);
  {
    auto txn = again->begin_read();
    EXPECT_TRUE(txn.ok());
    if (txn.ok()) expect_reads_like(**txn, reopened, model, &rng, "after reopening");
  }
  EXPECT_TRUE((co_await again->close()).ok());
}

TEST(JournaledEnv, ReadsMergeTheJournalWithLmdbLikeAMap) {
  testing::TempDir dir;
  auto executor = Executor::create_uring();
  executor->block_on(merged_reads(dir.path()));
}

Task<void> put_all(std::string dir, std::vector<std::pair<std::string, std::string>> pairs) {
  std::unique_ptr<Env> env = co_await open_or_fail(dir, journaled());
  if (env == nullptr) co_return;
  Table table = *env->open_table(journal_ops::kTable);
  for (auto& [key, value] : pairs) {
    WriteRequest request;
    request.put(table, key, value);
    EXPECT_TRUE((co_await env->write(&request)).ok());
  }
  EXPECT_TRUE((co_await env->close()).ok());
}

Task<void> expect_values(std::string dir, std::map<std::string, std::optional<std::string>> want) {
  std::unique_ptr<Env> env = co_await open_or_fail(dir, journaled());
  if (env == nullptr) co_return;
  Table table = *env->open_table(journal_ops::kTable);
  {
    auto txn = env->begin_read();
    EXPECT_TRUE(txn.ok());
    for (auto& [key, value] : want) {
      auto got = (*txn)->get(table, key);
      EXPECT_TRUE(got.ok());
      EXPECT_EQ(got->has_value(), value.has_value()) << key;
      if (*got && value) {
        EXPECT_EQ(**got, *value) << key;
      }
    }
  }
  EXPECT_TRUE((co_await env->close()).ok());
}

TEST(JournaledEnv, ADamagedRecordEndsTheJournal) {
  testing::TempDir dir;
  auto executor = Executor::create_uring();
  executor->block_on(
      put_all(dir.path(), {{"a", "first-value"}, {"b", "second-value"}, {"c", "third-value"}}));
  // Flip one byte of the last record's value: its CRC no longer matches.
  std::string path = journal_path(dir.path(), 0);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  size_t at = bytes.find("third-value");
  ASSERT_NE(at, std::string::npos);
  bytes[at] = 'T';
  {
    std::ofstream out(path, std::ios::binary | std::ios::in);
    out.write(bytes.data(), std::streamsize(bytes.size()));
  }
  executor->block_on(expect_values(
      dir.path(), {{"a", "first-value"}, {"b", "second-value"}, {"c", std::nullopt}}));
  // The next commit is written over the old records; it and the replayed ones stay, the
  // damaged one never returns.
  executor->block_on(put_all(dir.path(), {{"d", "fourth-value"}}));
  executor->block_on(expect_values(
      dir.path(),
      {{"a", "first-value"}, {"b", "second-value"}, {"c", std::nullopt}, {"d", "fourth-value"}}));
}

Task<void> open_as(std::string dir, Implementation implementation, bool* opened,
                   Implementation* chosen) {
  EnvOptions options{.implementation = implementation};
  auto opening = Env::open(dir, options);
  Result<std::unique_ptr<Env>> env = co_await std::move(opening);
  *opened = env.ok();
  if (!env.ok()) {
    EXPECT_EQ(env.status().code(), StatusCode::kInvalidArgument) << env.status();
    co_return;
  }
  *chosen = (*env)->implementation();
  EXPECT_TRUE((co_await (*env)->close()).ok());
}

TEST(JournaledEnv, AStoreWithAJournalIsNeverOpenedAsPlainLmdb) {
  testing::TempDir dir;
  auto executor = Executor::create_uring();
  executor->block_on(put_all(dir.path(), {{"a", "in the journal only"}}));
  bool opened = true;
  Implementation chosen = Implementation::kSim;
  // Plain LMDB would not see "a": refused.
  executor->block_on(open_as(dir.path(), Implementation::kLmdb, &opened, &chosen));
  EXPECT_FALSE(opened);
  executor->block_on(open_as(dir.path(), Implementation::kAuto, &opened, &chosen));
  EXPECT_TRUE(opened);
  EXPECT_EQ(chosen, Implementation::kJournaled);
  executor->block_on(expect_values(dir.path(), {{"a", "in the journal only"}}));
}

// ---- the crash test ----

pid_t spawn_writer(const std::string& dir, uint64_t seed, int* report_fd) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 3);
  std::string helper = mica::testing::binary_dir() + "/kv_journal_writer";
  std::string seed_arg = std::to_string(seed), fd_arg = "3", dir_arg = dir;
  char* argv[] = {helper.data(), dir_arg.data(), seed_arg.data(), fd_arg.data(), nullptr};
  pid_t pid = -1;
  if (posix_spawn(&pid, helper.c_str(), &actions, nullptr, argv, environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  *report_fd = fds[0];
  return pid;
}

// Reads acknowledgements ("i\n") for up to timeout_ms; false at EOF.
bool read_acks(int fd, int timeout_ms, std::string* partial, std::optional<uint64_t>* last) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return true;
  char buffer[4096];
  ssize_t n = ::read(fd, buffer, sizeof(buffer));
  if (n <= 0) return false;
  partial->append(buffer, size_t(n));
  size_t end;
  while ((end = partial->find('\n')) != std::string::npos) {
    *last = std::stoull(partial->substr(0, end));
    partial->erase(0, end + 1);
  }
  return true;
}

Task<Model> read_all(std::string dir) {
  Model found;
  std::unique_ptr<Env> env = co_await open_or_fail(dir, journaled());
  if (env == nullptr) co_return found;
  Table table = *env->open_table(journal_ops::kTable);
  {
    auto txn = env->begin_read();
    EXPECT_TRUE(txn.ok());
    auto cursor = (*txn)->cursor(table);
    for (auto at = (*cursor)->first(); at.ok() && *at; at = (*cursor)->next())
      found.emplace((*at)->key, (*at)->value);
  }
  EXPECT_TRUE((co_await env->close()).ok());
  co_return found;
}

TEST(JournaledEnv, AcknowledgedCommitsSurviveSigkill) {
  ASSERT_TRUE(std::filesystem::exists(mica::testing::binary_dir() + "/kv_journal_writer"));
  testing::TempDir dir;
  auto executor = Executor::create_uring();
  uint64_t iterations = env_or("MICA_KV_CRASH_ITERATIONS", 40);
  auto budget = std::chrono::seconds(env_or("MICA_KV_CRASH_SECONDS", 120));
  std::mt19937_64 rng(20261203);
  Model model;  // the store as the last check found it
  uint64_t acked_total = 0;
  auto start = std::chrono::steady_clock::now();
  uint64_t done = 0;
  for (; done < iterations && std::chrono::steady_clock::now() - start < budget; ++done) {
    uint64_t seed = done + 1;
    int fd = -1;
    pid_t pid = spawn_writer(dir.path(), seed, &fd);
    ASSERT_GT(pid, 0);
    std::string partial;
    std::optional<uint64_t> last;
    bool open = true;
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (open && !last && std::chrono::steady_clock::now() < give_up)
      open = read_acks(fd, 50, &partial, &last);
    auto kill_at = std::chrono::steady_clock::now() + std::chrono::microseconds(rng() % 200000);
    while (open && std::chrono::steady_clock::now() < kill_at)
      open = read_acks(fd, 1, &partial, &last);
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    while (open) open = read_acks(fd, 1000, &partial, &last);
    ::close(fd);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the writer ended by itself in iteration " << done << " (see its message above)";
    ASSERT_TRUE(last.has_value()) << "no commit was acknowledged in iteration " << done;
    acked_total += *last + 1;
    // Every acknowledged op is in the store; the one after it was in flight: either way.
    for (uint64_t i = 0; i <= *last; ++i) {
      journal_ops::Op op = journal_ops::op_of(seed, i);
      if (op.value) {
        model[op.key] = *op.value;
      } else {
        model.erase(op.key);
      }
    }
    journal_ops::Op in_flight = journal_ops::op_of(seed, *last + 1);
    Model found = executor->block_on(read_all(dir.path()));
    Model allowed = model;
    if (in_flight.value) {
      allowed[in_flight.key] = *in_flight.value;
    } else {
      allowed.erase(in_flight.key);
    }
    ASSERT_TRUE(found == model || found == allowed)
        << "iteration " << done << ": " << found.size() << " keys found, " << model.size()
        << " acknowledged";
    model = std::move(found);
  }
  std::printf("journal crash test: %lu kills, %lu acknowledged commits\n",
              static_cast<unsigned long>(done), static_cast<unsigned long>(acked_total));
  EXPECT_GE(done, iterations) << "the time cap stopped the run before its kill count";
}

}  // namespace
}  // namespace mica::kv
