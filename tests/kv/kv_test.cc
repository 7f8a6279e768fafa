// kv::Env, every implementation through one suite: what an ordered, transactional,
// group-committing key-value store promises (docs/kv.md).
#include <algorithm>

#include "async/scope.h"
#include "async/wait_list.h"
#include "tests/kv/kv_test_util.h"

namespace mica::kv {
namespace {

using testing::be_key;
using testing::run_body;

class KvTest : public ::testing::TestWithParam<Implementation> {};

std::string name_of(const ::testing::TestParamInfo<Implementation>& info) {
  switch (info.param) {
    case Implementation::kLmdb:
      return "Lmdb";
    case Implementation::kJournaled:
      return "Journaled";
    default:
      return "Sim";
  }
}

Task<Result<std::unique_ptr<Env>>> open_env(std::string dir, EnvOptions options) {
  auto opening = Env::open(std::move(dir), options);
  co_return co_await std::move(opening);
}

std::optional<std::string> get(Env& env, Table table, std::string_view key) {
  auto txn = env.begin_read();
  EXPECT_TRUE(txn.ok());
  auto value = (*txn)->get(table, key);
  EXPECT_TRUE(value.ok()) << value.status();
  if (!value.ok() || !*value) return std::nullopt;
  return std::string(**value);
}

Task<Status> put(Env* env, Table table, std::string key, std::string value) {
  WriteRequest request;
  request.put(table, key, value);
  co_return co_await env->write(&request);
}

Task<void> put_get_delete(std::string dir, EnvOptions options) {
  auto opening = open_env(dir, options);
  auto env = co_await std::move(opening);
  EXPECT_TRUE(env.ok()) << env.status();
  if (!env.ok()) co_return;
  Table a = *(*env)->open_table("a");
  Table b = *(*env)->open_table("b");
  EXPECT_FALSE(get(**env, a, "k"));
  auto putting = put(env->get(), a, "k", "v1");
  EXPECT_TRUE((co_await std::move(putting)).ok());
  EXPECT_EQ(get(**env, a, "k"), "v1");
  EXPECT_FALSE(get(**env, b, "k"));  // tables are separate
  auto overwriting = put(env->get(), a, "k", "v2");
  EXPECT_TRUE((co_await std::move(overwriting)).ok());
  EXPECT_EQ(get(**env, a, "k"), "v2");
  WriteRequest erase;
  erase.erase(a, "k");
  erase.erase(a, "never-there");  // deleting an absent key is no error
  EXPECT_TRUE((co_await (*env)->write(&erase)).ok());
  EXPECT_FALSE(get(**env, a, "k"));
  EXPECT_TRUE((co_await (*env)->close()).ok());
  // Reopened: what was committed is there.
  auto reopening = open_env(dir, options);
  auto again = co_await std::move(reopening);
  EXPECT_TRUE(again.ok());
  if (!again.ok()) co_return;
  Table a2 = *(*again)->open_table("a");
  auto putting_last = put(again->get(), a2, "last", "x");
  EXPECT_TRUE((co_await std::move(putting_last)).ok());
  EXPECT_TRUE((co_await (*again)->close()).ok());
  auto third_opening = open_env(dir, options);
  auto third = co_await std::move(third_opening);
  EXPECT_TRUE(third.ok());
  if (!third.ok()) co_return;
  Table a3 = *(*third)->open_table("a");
  EXPECT_EQ(get(**third, a3, "last"), "x");
  EXPECT_FALSE(get(**third, a3, "k"));
  EXPECT_TRUE((co_await (*third)->close()).ok());
}
TEST_P(KvTest, PutGetDeleteAndReopen) {
  run_body(GetParam(), &put_get_delete);
}

Task<void> range_scan(std::string dir, EnvOptions options) {
  auto opening = open_env(dir, options);
  auto env = co_await std::move(opening);
  EXPECT_TRUE(env.ok());
  if (!env.ok()) co_return;
  Table t = *(*env)->open_table("t");
  // Written out of order, in one request: 0, 7, 14, ... mod 100 visits every number once.
  WriteRequest request;
  for (uint64_t i = 0; i < 100; ++i) {
    uint64_t n = (i * 7) % 100;
    request.put(t, be_key(n * 300), std::to_string(n));  // 300 > 255: keys differ in two bytes
  }
  EXPECT_TRUE((co_await (*env)->write(&request)).ok());
  auto txn = (*env)->begin_read();
  auto cursor = (*txn)->cursor(t);
  EXPECT_TRUE(cursor.ok());
  if (!cursor.ok()) co_return;
  Cursor& c = **cursor;
  // A scan from the middle: the first key >= 50 * 300 + 1 is 51 * 300, then in order.
  uint64_t expected = 51;
  for (auto e = c.seek(be_key(50 * 300 + 1)); e.ok() && *e; e = c.next(), ++expected) {
    EXPECT_EQ((*e)->key, be_key(expected * 300));
    EXPECT_EQ((*e)->value, std::to_string(expected));
  }
  EXPECT_EQ(expected, 100u);
  auto last = c.last();
  EXPECT_TRUE(last.ok() && *last && (*last)->value == "99");
  auto before = c.prev();
  EXPECT_TRUE(before.ok() && *before && (*before)->value == "98");
  auto first = c.first();
  EXPECT_TRUE(first.ok() && *first && (*first)->value == "0");
  auto past = c.seek(be_key(UINT64_MAX));
  EXPECT_TRUE(past.ok() && !*past);
  cursor->reset();
  txn->reset();
  EXPECT_TRUE((co_await (*env)->close()).ok());
}
TEST_P(KvTest, RangeScansAreInBigEndianKeyOrder) {
  run_body(GetParam(), &range_scan);
}

Task<void> read_isolation(std::string dir, EnvOptions options) {
  auto opening = open_env(dir, options);
  auto env = co_await std::move(opening);
  EXPECT_TRUE(env.ok());
  if (!env.ok()) co_return;
  Table t = *(*env)->open_table("t");
  auto first = put(env->get(), t, "k", "old");
  EXPECT_TRUE((co_await std::move(first)).ok());
  auto txn = (*env)->begin_read();
  EXPECT_TRUE(txn.ok());
  // Only a test holds a snapshot across a co_await, to see that the commit does not reach it.
  auto second = put(env->get(), t, "k", "new");
  EXPECT_TRUE((co_await std::move(second)).ok());
  auto added = put(env->get(), t, "k2", "added");
  EXPECT_TRUE((co_await std::move(added)).ok());
  auto seen = (*txn)->get(t, "k");
  EXPECT_TRUE(seen.ok() && *seen && **seen == "old");
  auto unseen = (*txn)->get(t, "k2");
  EXPECT_TRUE(unseen.ok() && !*unseen);
  // Table sizes are the snapshot's too.
  Result<uint64_t> counted = (*txn)->count(t);
  EXPECT_TRUE(counted.ok() && *counted == 1u) << counted.status();
  EXPECT_FALSE((*txn)->count(t + 7).ok());  // no such table
  (*txn)->reset();
  EXPECT_TRUE((*txn)->renew().ok());
  auto renewed = (*txn)->get(t, "k");
  EXPECT_TRUE(renewed.ok() && *renewed && **renewed == "new");
  Result<uint64_t> recounted = (*txn)->count(t);
  EXPECT_TRUE(recounted.ok() && *recounted == 2u) << recounted.status();
  txn->reset();
  EXPECT_TRUE((co_await (*env)->close()).ok());
}
TEST_P(KvTest, AReadTransactionSeesItsSnapshotOnly) {
  run_body(GetParam(), &read_isolation);
}

constexpr int kConcurrentWrites = 32;

Task<void> write_one(Env* env, Table table, int i, Status* out) {
  auto putting = put(env, table, be_key(i), std::string(100, char('a' + i % 26)));
  *out = co_await std::move(putting);
}

// One request of n puts of 4 KiB (keys above the ones write_one uses).
Task<void> write_many(Env* env, Table table, int n, Status* out) {
  WriteRequest request;
  for (int i = 0; i < n; ++i) request.put(table, be_key(1000000 + i), std::string(4096, 'm'));
  *out = co_await env->write(&request);
}

// Requests kConcurrentWrites puts at once, the one numbered bad into a table never opened.
Task<void> concurrent_writes(Env* env, Table table, int bad, std::vector<Status>* statuses) {
  statuses->assign(kConcurrentWrites, Status());
  TaskScope scope;
  for (int i = 0; i < kConcurrentWrites; ++i)
    scope.spawn(write_one(env, i == bad ? table + 100 : table, i, &(*statuses)[i]));
  co_await scope.join();
}

Task<void> group_commit(std::string dir, EnvOptions options) {
  auto opening = open_env(dir, options);
  auto env = co_await std::move(opening);
  EXPECT_TRUE(env.ok());
  if (!env.ok()) co_return;
  Table t = *(*env)->open_table("t");
  std::vector<Status> statuses;
  auto writing = concurrent_writes(env->get(), t, -1, &statuses);
  co_await std::move(writing);
  for (const Status& s : statuses) EXPECT_TRUE(s.ok()) << s;
  const WriterCounters& c = (*env)->counters();
  EXPECT_EQ(c.requests.load(), uint64_t(kConcurrentWrites));
  // Requests that queued while a commit ran share the next one.
  EXPECT_LT(c.transactions.load(), uint64_t(kConcurrentWrites) / 2);
  for (int i = 0; i < kConcurrentWrites; ++i) EXPECT_TRUE(get(**env, t, be_key(i)));
  EXPECT_TRUE((co_await (*env)->close()).ok());
}
TEST_P(KvTest, ConcurrentWritesShareCommits) {
  run_body(GetParam(), &group_commit);
}

// write_all: many requests reach the writer at once and share one transaction, also when
// the writer is busy with an earlier write meanwhile (it takes none of them alone).
Task<void> writes_queued_together(std::string dir, EnvOptions options) {
  auto opening = open_env(dir, options);
  auto env = co_await std::move(opening);
  EXPECT_TRUE(env.ok());
  if (!env.ok()) co_return;
  Table t = *(*env)->open_table("t");
  for (bool busy : {false, true}) {
    uint64_t transactions_before = (*env)->counters().transactions.load();
    TaskScope scope;
    Status earlier;
    if (busy) {
      // A big write, in flight when the others are queued.
      scope.spawn(write_many(env->get(), t, 2000, &earlier));
      Status paused = co_await sleep_for(std::chrono::milliseconds(1));
      EXPECT_TRUE(paused.ok()) << paused;
    }
    std::vector<WriteRequest> requests(kConcurrentWrites);
    std::vector<WriteRequest*> pointers;
    for (int i = 0; i < kConcurrentWrites; ++i) {
      requests[i].put(t, be_key(i), std::string(100, char('a' + i % 26)));
      pointers.push_back(&requests[i]);
    }
    co_await (*env)->write_all(std::move(pointers));
    co_await scope.join();
    EXPECT_TRUE(earlier.ok()) << earlier;
    for (const WriteRequest& r : requests) EXPECT_TRUE(r.status.ok()) << r.status;
    // The big write alone (or with the others, had the writer not taken it yet), then all
    // the others together.
    uint64_t transactions = (*env)->counters().transactions.load() - transactions_before;
    if (busy) {
      EXPECT_LE(transactions, 2u) << "behind a busy writer";
    } else {
      EXPECT_EQ(transactions, 1u) << "an idle writer";
    }
  }
  for (int i = 0; i < kConcurrentWrites; ++i) EXPECT_TRUE(get(**env, t, be_key(i)));
  EXPECT_TRUE((co_await (*env)->close()).ok());
}
TEST_P(KvTest, WritesQueuedTogetherShareOneTransaction) {
  run_body(GetParam(), &writes_queued_together);
}

Task<void> failure_isolation(std::string dir, EnvOptions options) {
  auto opening = open_env(dir, options);
  auto env = co_await std::move(opening);
  EXPECT_TRUE(env.ok());
  if (!env.ok()) co_return;
  Table t = *(*env)->open_table("t");
  constexpr int kBad = 5;
  std::vector<Status> statuses;
  auto writing = concurrent_writes(env->get(), t, kBad, &statuses);
  co_await std::move(writing);
  for (int i = 0; i < kConcurrentWrites; ++i) {
    if (i == kBad) {
      EXPECT_EQ(statuses[i].code(), StatusCode::kInvalidArgument) << statuses[i];
    } else {
      EXPECT_TRUE(statuses[i].ok()) << i << ": " << statuses[i];
      EXPECT_TRUE(get(**env, t, be_key(i)));
    }
  }
  EXPECT_FALSE(get(**env, t, be_key(kBad)));
  EXPECT_EQ((*env)->counters().failed_requests.load(), 1u);
  EXPECT_TRUE((co_await (*env)->close()).ok());
}
TEST_P(KvTest, AFailingRequestDoesNotFailItsBatchNeighbours) {
  run_body(GetParam(), &failure_isolation);
}

Task<void> map_full(std::string dir, EnvOptions options) {
  auto opening = open_env(dir, options);
  auto env = co_await std::move(opening);
  EXPECT_TRUE(env.ok()) << env.status();
  if (!env.ok()) co_return;
  Table t = *(*env)->open_table("t");
  std::string value(4000, 'v');
  Status s;
  int stored = 0;
  for (; stored < 1000; ++stored) {
    auto putting = put(env->get(), t, be_key(stored), value);
    s = co_await std::move(putting);
    if (!s.ok()) break;
  }
  EXPECT_EQ(s.code(), StatusCode::kNoSpace) << s;
  EXPECT_GT(stored, 0);
  EXPECT_FALSE(get(**env, t, be_key(stored)));  // the refused put changed nothing
  for (int i = 0; i < stored; ++i) EXPECT_EQ(get(**env, t, be_key(i)), value);
  // Space freed by a delete is usable again.
  WriteRequest erase;
  erase.erase(t, be_key(0));
  EXPECT_TRUE((co_await (*env)->write(&erase)).ok());
  auto small = put(env->get(), t, "small", "fits");
  EXPECT_TRUE((co_await std::move(small)).ok());
  EXPECT_TRUE((co_await (*env)->close()).ok());
}
TEST_P(KvTest, AFullMapIsNoSpaceAndChangesNothing) {
  EnvOptions options;
  options.map_size_bytes = 256 << 10;
  run_body(GetParam(), &map_full, options);
}

INSTANTIATE_TEST_SUITE_P(All, KvTest,
                         ::testing::Values(Implementation::kLmdb, Implementation::kJournaled,
                                           Implementation::kSim),
                         name_of);

}  // namespace
}  // namespace mica::kv
