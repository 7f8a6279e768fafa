// Sessions and lengths on one shard (meta/shard.h, meta/shard_sessions.cc, meta/lease.h):
// open's permission rules, O_TRUNC, length reports that only grow, kStaleSession after a
// close, a file unlinked while open that stays until its last session ends, and leases:
// renewals keep sessions, a lapsed lease ends them (a writer's length recomputed from the
// storage service), clients found on disk at a start get one lease of grace, and a batched
// close that shares the next commit. Real LMDB in
// the test's directory; the storage tests start a storage cluster (a second or two each).
#include <gtest/gtest.h>

#include "async/scope.h"
#include "async/wait_list.h"
#include "meta/lease.h"
#include "tests/meta/session_helpers.h"

namespace mica::meta {
namespace {

using namespace std::chrono_literals;
using testing::close_file;
using testing::kOwner;
using testing::make_file;
using testing::open_file;
using testing::stat;
using testing::user;

constexpr OpenFlags kRead{.read = true};
constexpr OpenFlags kWrite{.write = true};
constexpr OpenFlags kReadWrite{.read = true, .write = true};

template <class T>
StatusCode code_of(const Result<T>& result) {
  return result.ok() ? StatusCode::kOk : result.status().code();
}

// Opens a shard in dir, runs body on it, closes it (also after a failed assertion).
Task<void> with_shard(std::string dir, Task<void> (*body)(Shard*)) {
  auto opening = Shard::open(testing::shard_options(dir));
  Result<std::unique_ptr<Shard>> shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto running = body(shard->get());
  co_await std::move(running);
  auto closing = (*shard)->close();
  Status closed = co_await std::move(closing);
  EXPECT_TRUE(closed.ok()) << closed;
}

Task<void> permission_body(Shard* shard) {
  auto making = make_file(shard, "f", 0640);
  Result<Inode> file = co_await std::move(making);
  CO_ASSERT_OK(file);
  struct Case {
    Credentials cred;
    OpenFlags flags;
    StatusCode expected;
  };
  std::vector<Case> cases{
      {user(kOwner), kReadWrite, StatusCode::kOk},
      {user(2000), kRead, StatusCode::kOk},  // the group reads
      {user(2000), kWrite, StatusCode::kPermissionDenied},
      {user(2000), OpenFlags{.read = true, .truncate = true}, StatusCode::kPermissionDenied},
      {user(3000, 300), kRead, StatusCode::kPermissionDenied},        // others: nothing
      {user(3000, 300), OpenFlags{}, StatusCode::kPermissionDenied},  // O_RDONLY is 0
      {Credentials{.uid = 3000, .gid = 300, .groups = {testing::kOwnerGroup}}, kRead,
       StatusCode::kOk},                          // a supplementary group
      {user(0, 0), kReadWrite, StatusCode::kOk},  // root
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    auto opening = open_file(shard, file->id, cases[i].cred, cases[i].flags);
    Result<OpenReply> opened = co_await std::move(opening);
    EXPECT_EQ(code_of(opened), cases[i].expected) << "case " << i << ": " << opened.status();
  }
  // The owner without the bits is refused too (no owner bypass).
  auto making_locked = make_file(shard, "locked", 0044);
  Result<Inode> locked = co_await std::move(making_locked);
  CO_ASSERT_OK(locked);
  auto opening = open_file(shard, locked->id, user(kOwner), kRead);
  Result<OpenReply> opened = co_await std::move(opening);
  EXPECT_EQ(code_of(opened), StatusCode::kPermissionDenied);
}

MICA_CO_TEST(Sessions, OpenChecksReadAndWritePermissionAsTheFlagsAsk) {
  auto running = with_shard(dir.file("shard"), &permission_body);
  co_await std::move(running);
}

Task<void> directory_body(Shard* shard) {
  ShardTxn txn = shard->begin();
  Inode dir_inode{.id = txn.allocate_inode(),
                  .type = InodeType::kDirectory,
                  .mode = 0755,
                  .uid = kOwner,
                  .gid = testing::kOwnerGroup,
                  .nlink = 2,
                  .parent = kRootInode};
  txn.put_inode(dir_inode);
  auto committing = txn.commit();
  CO_ASSERT_OK(co_await std::move(committing));
  auto writing = open_file(shard, dir_inode.id, user(kOwner), kWrite);
  Result<OpenReply> for_write = co_await std::move(writing);
  EXPECT_EQ(code_of(for_write), StatusCode::kIsDirectory);
  auto reading = open_file(shard, dir_inode.id, user(kOwner), kRead);
  Result<OpenReply> for_read = co_await std::move(reading);
  EXPECT_TRUE(for_read.ok()) << for_read.status();
  auto missing = open_file(shard, dir_inode.id + 100, user(kOwner), kRead);
  Result<OpenReply> none = co_await std::move(missing);
  EXPECT_EQ(code_of(none), StatusCode::kNotFound);
}

MICA_CO_TEST(Sessions, ADirectoryOpensForReadingOnly) {
  auto running = with_shard(dir.file("shard"), &directory_body);
  co_await std::move(running);
}

Task<void> grow_body(Shard* shard) {
  auto making = make_file(shard, "f", 0644);
  Result<Inode> file = co_await std::move(making);
  CO_ASSERT_OK(file);
  auto opening = open_file(shard, file->id, user(kOwner), kWrite);
  Result<OpenReply> opened = co_await std::move(opening);
  CO_ASSERT_OK(opened);
  LengthReport report{
      .inode = file->id, .client = 7, .session = opened->session, .length = 5000, .mtime_ns = 2000};
  auto reporting = shard->report_length(report);
  Result<InodeReply> grown = co_await std::move(reporting);
  CO_ASSERT_OK(grown);
  EXPECT_EQ(grown->inode.length, 5000u);
  EXPECT_EQ(grown->inode.mtime_ns, 2000);
  EXPECT_EQ(grown->inode.ctime_ns, 2000);
  // A smaller (late) report changes neither the length nor moves the times back.
  report.length = 100;
  report.mtime_ns = 1500;
  auto reporting_less = shard->report_length(report);
  Result<InodeReply> same = co_await std::move(reporting_less);
  CO_ASSERT_OK(same);
  EXPECT_EQ(same->inode.length, 5000u);
  EXPECT_EQ(same->inode.mtime_ns, 2000);
  auto statting = stat(shard, file->id);
  Result<Inode> stored = co_await std::move(statting);
  CO_ASSERT_OK(stored);
  EXPECT_EQ(stored->length, 5000u);
  // The close's final report applies too.
  auto closing = close_file(shard, file->id, opened->session, 9000, 3000);
  Result<InodeReply> closed = co_await std::move(closing);
  CO_ASSERT_OK(closed);
  EXPECT_EQ(closed->inode.length, 9000u);
  EXPECT_EQ(closed->inode.mtime_ns, 3000);
}

MICA_CO_TEST(Sessions, ReportedLengthsOnlyGrow) {
  auto running = with_shard(dir.file("shard"), &grow_body);
  co_await std::move(running);
}

Task<void> setid_body(Shard* shard) {
  auto making = make_file(shard, "f", 06775);
  Result<Inode> file = co_await std::move(making);
  CO_ASSERT_OK(file);
  // Root's write keeps the bits; anyone else's, the owner's too, clears them (Linux).
  for (uint32_t uid : {0u, kOwner}) {
    auto opening = open_file(shard, file->id, user(uid), kWrite);
    Result<OpenReply> opened = co_await std::move(opening);
    CO_ASSERT_OK(opened);
    LengthReport report{
        .inode = file->id, .client = 7, .session = opened->session, .length = 10, .mtime_ns = 5000};
    auto reporting = shard->report_length(report);
    Result<InodeReply> reported = co_await std::move(reporting);
    CO_ASSERT_OK(reported);
    EXPECT_EQ(reported->inode.mode, uid == 0 ? 06775u : 0775u) << "uid " << uid;
  }
}

MICA_CO_TEST(Sessions, AWriteByAnyoneButRootClearsTheSetIdBits) {
  auto running = with_shard(dir.file("shard"), &setid_body);
  co_await std::move(running);
}

Task<void> stale_body(Shard* shard) {
  auto making = make_file(shard, "f", 0644);
  Result<Inode> file = co_await std::move(making);
  CO_ASSERT_OK(file);
  auto opening = open_file(shard, file->id, user(kOwner), kReadWrite);
  Result<OpenReply> opened = co_await std::move(opening);
  CO_ASSERT_OK(opened);
  // Another client cannot use the session.
  auto foreign = close_file(shard, file->id, opened->session, 0, 0, /*client=*/8);
  Result<InodeReply> refused = co_await std::move(foreign);
  EXPECT_EQ(code_of(refused), StatusCode::kStaleSession);
  auto closing = close_file(shard, file->id, opened->session);
  Result<InodeReply> closed = co_await std::move(closing);
  CO_ASSERT_OK(closed);
  LengthReport report{
      .inode = file->id, .client = 7, .session = opened->session, .length = 10, .mtime_ns = 5000};
  auto reporting = shard->report_length(report);
  Result<InodeReply> late = co_await std::move(reporting);
  EXPECT_EQ(code_of(late), StatusCode::kStaleSession);
  auto closing_again = close_file(shard, file->id, opened->session);
  Result<InodeReply> again = co_await std::move(closing_again);
  EXPECT_EQ(code_of(again), StatusCode::kStaleSession);
  auto statting = stat(shard, file->id);
  Result<Inode> stored = co_await std::move(statting);
  CO_ASSERT_OK(stored);
  EXPECT_EQ(stored->length, 0u);  // the refused report changed nothing
}

MICA_CO_TEST(Sessions, ASessionIsStaleAfterItsClose) {
  auto running = with_shard(dir.file("shard"), &stale_body);
  co_await std::move(running);
}

Task<void> unlinked_body(Shard* shard) {
  auto making = make_file(shard, "f", 0644);
  Result<Inode> file = co_await std::move(making);
  CO_ASSERT_OK(file);
  auto opening_a = open_file(shard, file->id, user(kOwner), kReadWrite);
  Result<OpenReply> a = co_await std::move(opening_a);
  CO_ASSERT_OK(a);
  auto opening_b = open_file(shard, file->id, user(kOwner), kRead);
  Result<OpenReply> b = co_await std::move(opening_b);
  CO_ASSERT_OK(b);
  RemoveRequest unlink{.cred = Credentials{}, .parent = kRootInode, .name = "f"};
  auto unlinking = shard->unlink(unlink);
  Result<RemoveReply> removed = co_await std::move(unlinking);
  CO_ASSERT_OK(removed);
  EXPECT_FALSE(removed->reclaimed);  // the sessions hold it
  // Still there through its handles: attributes, and a writer's report.
  auto statting = stat(shard, file->id);
  Result<Inode> open_unlinked = co_await std::move(statting);
  CO_ASSERT_OK(open_unlinked);
  EXPECT_EQ(open_unlinked->nlink, 0u);
  auto closing_a = close_file(shard, file->id, a->session, 4096, 7000);
  Result<InodeReply> closed_a = co_await std::move(closing_a);
  CO_ASSERT_OK(closed_a);
  auto still = stat(shard, file->id);
  Result<Inode> held = co_await std::move(still);
  CO_ASSERT_OK(held);
  EXPECT_EQ(held->length, 4096u);
  auto status = shard->status();
  CO_ASSERT_OK(status);
  EXPECT_EQ(status->gc_queued_files, 0u);
  // The last close reclaims it: the inode goes, its chunks are queued.
  auto closing_b = close_file(shard, file->id, b->session);
  Result<InodeReply> closed_b = co_await std::move(closing_b);
  CO_ASSERT_OK(closed_b);
  auto gone = stat(shard, file->id);
  Result<Inode> none = co_await std::move(gone);
  EXPECT_EQ(code_of(none), StatusCode::kNotFound);
  auto after = shard->status();
  CO_ASSERT_OK(after);
  EXPECT_EQ(after->gc_queued_files, 1u);
  EXPECT_EQ(after->gc_queued_bytes, 4096u);
}

MICA_CO_TEST(Sessions, AFileUnlinkedWhileOpenStaysUntilItsLastClose) {
  auto running = with_shard(dir.file("shard"), &unlinked_body);
  co_await std::move(running);
}

Task<void> retry_body(Shard* shard) {
  auto making = make_file(shard, "f", 0644);
  Result<Inode> file = co_await std::move(making);
  CO_ASSERT_OK(file);
  OpenRequest request{.cred = user(kOwner),
                      .tag = RequestTag{.client = 7, .request = 41},
                      .inode = file->id,
                      .flags = kRead};
  auto first = shard->open(request);
  Result<OpenReply> a = co_await std::move(first);
  CO_ASSERT_OK(a);
  auto second = shard->open(request);
  Result<OpenReply> b = co_await std::move(second);
  CO_ASSERT_OK(b);
  EXPECT_EQ(a->session, b->session);  // the retry got the first answer, no second session
  // The close's answer was lost: its retry (same tag) gets the first answer, not
  // kStaleSession; another close of the session (a new tag) is refused.
  CloseRequest close{.report = LengthReport{.inode = file->id, .client = 7, .session = a->session},
                     .tag = RequestTag{.client = 7, .request = 42}};
  auto closing = shard->close(close);
  Result<InodeReply> closed = co_await std::move(closing);
  CO_ASSERT_OK(closed);
  auto closing_again = shard->close(close);
  Result<InodeReply> again = co_await std::move(closing_again);
  CO_ASSERT_OK(again);
  EXPECT_EQ(again->inode.id, file->id);
  EXPECT_EQ(again->inode.ctime_ns, closed->inode.ctime_ns);
  close.tag.request = 43;
  auto closing_anew = shard->close(close);
  Result<InodeReply> anew = co_await std::move(closing_anew);
  EXPECT_EQ(code_of(anew), StatusCode::kStaleSession);
}

MICA_CO_TEST(Sessions, ARetriedOpenOrCloseGetsTheFirstAnswer) {
  auto running = with_shard(dir.file("shard"), &retry_body);
  co_await std::move(running);
}

Task<void> truncate_empty_body(Shard* shard) {
  auto making = make_file(shard, "f", 0644);
  Result<Inode> file = co_await std::move(making);
  CO_ASSERT_OK(file);
  auto opening =
      open_file(shard, file->id, user(kOwner), OpenFlags{.write = true, .truncate = true});
  Result<OpenReply> opened = co_await std::move(opening);
  CO_ASSERT_OK(opened);
  EXPECT_EQ(opened->inode.length, 0u);
  EXPECT_GT(opened->inode.mtime_ns, 1000);  // Linux marks m/ctime on any O_TRUNC
  EXPECT_EQ(opened->inode.ctime_ns, opened->inode.mtime_ns);
}

MICA_CO_TEST(Sessions, TruncatingAnEmptyFileStillMarksItsTimes) {
  auto running = with_shard(dir.file("shard"), &truncate_empty_body);
  co_await std::move(running);
}

// ---- batched closes (CloseRequest::batched) ----

Task<void> close_batched(Shard* shard, InodeId id, SessionId session, Result<InodeReply>* out) {
  CloseRequest request{.report = LengthReport{.inode = id, .client = 7, .session = session},
                       .batched = true};
  auto closing = shard->close(request);
  *out = co_await std::move(closing);
}

Task<void> make_into(Shard* shard, std::string name, Result<Inode>* out) {
  auto making = make_file(shard, std::move(name), 0644);
  *out = co_await std::move(making);
}

// A new file "f", open for reading and writing by kOwner.
Task<Result<OpenReply>> open_new_file(Shard* shard) {
  auto making = make_file(shard, "f", 0644);
  Result<Inode> file = co_await std::move(making);
  if (!file.ok()) co_return file.status();
  auto opening = open_file(shard, file->id, user(kOwner), kReadWrite);
  co_return co_await std::move(opening);
}

MICA_CO_TEST(Sessions, ABatchedCloseWaitsForTheNextCommitAndGoesWithIt) {
  ShardOptions options = testing::shard_options(dir.file("shard"));
  options.batched_commit_delay = 1h;  // only company can launch it
  auto opening = Shard::open(options);
  Result<std::unique_ptr<Shard>> shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  Shard* s = shard->get();
  auto preparing = open_new_file(s);
  Result<OpenReply> opened = co_await std::move(preparing);
  CO_ASSERT_OK(opened);
  InodeId file = opened->inode.id;
  uint64_t transactions_before = s->env()->counters().transactions;
  Result<InodeReply> closed = Status(StatusCode::kInternal, "not answered");
  Result<Inode> made = Status(StatusCode::kInternal, "not answered");
  TaskScope scope;
  scope.spawn(close_batched(s, file, opened->session, &closed));
  Status slept = co_await sleep_for(50ms);
  EXPECT_TRUE(slept.ok()) << slept;
  EXPECT_EQ(code_of(closed), StatusCode::kInternal) << "answered before any commit";
  EXPECT_EQ(s->env()->counters().transactions, transactions_before) << "committed alone";
  scope.spawn(make_into(s, "g", &made));
  co_await scope.join();
  CO_ASSERT_OK(closed);
  CO_ASSERT_OK(made);
  // The create's commit launched the held close with it: one generation, one transaction.
  EXPECT_EQ(s->env()->counters().transactions - transactions_before, 1u);
  auto closing_again = close_file(s, file, opened->session);
  Result<InodeReply> again = co_await std::move(closing_again);
  EXPECT_EQ(code_of(again), StatusCode::kStaleSession);
  auto closing = s->close();
  CO_ASSERT_OK(co_await std::move(closing));
}

Task<void> batched_alone_body(Shard* shard) {
  auto preparing = open_new_file(shard);
  Result<OpenReply> opened = co_await std::move(preparing);
  CO_ASSERT_OK(opened);
  InodeId file = opened->inode.id;
  uint64_t transactions_before = shard->env()->counters().transactions;
  Result<InodeReply> closed = Status(StatusCode::kInternal, "not answered");
  auto closing = close_batched(shard, file, opened->session, &closed);
  co_await std::move(closing);
  CO_ASSERT_OK(closed);
  EXPECT_EQ(shard->env()->counters().transactions - transactions_before, 1u);
  auto closing_again = close_file(shard, file, opened->session);
  Result<InodeReply> again = co_await std::move(closing_again);
  EXPECT_EQ(code_of(again), StatusCode::kStaleSession);
}

MICA_CO_TEST(Sessions, ABatchedCloseAloneCommitsWhenItsWaitRunsOut) {
  // The default wait (2 ms): nothing else commits, the close still ends and is durable.
  auto running = with_shard(dir.file("shard"), &batched_alone_body);
  co_await std::move(running);
  auto opening = Shard::open(testing::shard_options(dir.file("shard")));
  Result<std::unique_ptr<Shard>> reopened = co_await std::move(opening);
  CO_ASSERT_OK(reopened);
  auto sessions = (*reopened)->status();
  CO_ASSERT_OK(sessions);
  EXPECT_EQ(sessions->sessions, 0u) << "the close was durable";
  auto closing = (*reopened)->close();
  CO_ASSERT_OK(co_await std::move(closing));
}

// ---- leases ----

LeaseOptions fast_leases() {
  return LeaseOptions{.lease_ms = 400, .check_interval_ms = 50};
}

MICA_CO_TEST(LeaseTable, RenewAnswersTheLeaseAndTheClientsSessions) {
  LeaseTable leases(LeaseOptions{.lease_ms = 300, .check_interval_ms = 50, .clients_max = 2});
  leases.opened(5);
  leases.opened(5);
  leases.closed(5);
  Result<LeaseReply> reply = leases.renew(5);
  CO_ASSERT_OK(reply);
  EXPECT_EQ(reply->lease_ms, 300u);
  EXPECT_EQ(reply->sessions, 1u);
  EXPECT_TRUE(leases.renew(6).ok());
  EXPECT_EQ(code_of(leases.renew(7)), StatusCode::kBusy);  // full
  EXPECT_TRUE(leases.holds(5));
  EXPECT_FALSE(leases.holds(7));
  co_return;
}

// Opens a shard told of `leases`, which is started on it.
Task<Result<std::unique_ptr<Shard>>> open_leased(std::string dir, LeaseTable* leases) {
  ShardOptions options = testing::shard_options(dir);
  options.leases = leases;
  auto opening = Shard::open(std::move(options));
  CO_TRY_ASSIGN(std::unique_ptr<Shard> shard, co_await std::move(opening));
  leases->add_shard(shard.get(), Executor::current());
  auto starting = leases->start();
  Status started = co_await std::move(starting);
  if (!started.ok()) {
    auto closing = shard->close();
    Status closed = co_await std::move(closing);
    EXPECT_TRUE(closed.ok()) << closed;
    co_return started;
  }
  co_return shard;
}

Task<void> renewals_body(Shard* shard, LeaseTable* leases) {
  auto making = make_file(shard, "f", 0644);
  Result<Inode> file = co_await std::move(making);
  CO_ASSERT_OK(file);
  auto opening_kept = open_file(shard, file->id, user(kOwner), kRead, /*client=*/1);
  Result<OpenReply> kept = co_await std::move(opening_kept);
  CO_ASSERT_OK(kept);
  auto opening_lost = open_file(shard, file->id, user(kOwner), kRead, /*client=*/2);
  Result<OpenReply> lost = co_await std::move(opening_lost);
  CO_ASSERT_OK(lost);
  // Client 1 renews every 100 ms for a second (two and a half leases); client 2 never does.
  for (int i = 0; i < 10; ++i) {
    CO_ASSERT_OK(leases->renew(1));
    Status slept = co_await sleep_for(100ms);
    CO_ASSERT_OK(slept);
  }
  EXPECT_TRUE(leases->holds(1));
  EXPECT_FALSE(leases->holds(2));
  auto closing_lost = close_file(shard, file->id, lost->session, 0, 0, 2);
  Result<InodeReply> closed_lost = co_await std::move(closing_lost);
  EXPECT_EQ(code_of(closed_lost), StatusCode::kStaleSession);
  auto closing_kept = close_file(shard, file->id, kept->session, 0, 0, 1);
  Result<InodeReply> closed_kept = co_await std::move(closing_kept);
  EXPECT_TRUE(closed_kept.ok()) << closed_kept.status();
}

MICA_CO_TEST(Leases, RenewalsKeepSessionsAndALapsedLeaseEndsThem) {
  LeaseTable leases(fast_leases());
  auto opening = open_leased(dir.file("shard"), &leases);
  Result<std::unique_ptr<Shard>> shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto running = renewals_body(shard->get(), &leases);
  co_await std::move(running);
  auto stopping = leases.stop();
  co_await std::move(stopping);
  auto closing = (*shard)->close();
  CO_ASSERT_OK(co_await std::move(closing));
}

// Before a restart: an unlinked file held only by client 3's session.
Task<void> held_body(Shard* shard) {
  // A layout (no storage here: the queued record only waits) gives it chunks to collect.
  Layout layout{.chunk_size_bytes = testing::kTestChunkBytes, .table = 1, .stripe = 1};
  auto making = make_file(shard, "f", 0644, layout);
  Result<Inode> file = co_await std::move(making);
  CO_ASSERT_OK(file);
  auto opening = open_file(shard, file->id, user(kOwner), kRead, /*client=*/3);
  CO_ASSERT_OK(co_await std::move(opening));
  auto dropping = testing::drop_link(shard, "f", file->id);
  CO_ASSERT_OK(co_await std::move(dropping));
}

Task<void> grace_body(Shard* shard, LeaseTable* leases) {
  EXPECT_TRUE(leases->holds(3));  // its lease did not survive: it gets one of grace
  EXPECT_EQ(leases->clients(), 1u);
  auto status = shard->status();
  CO_ASSERT_OK(status);
  EXPECT_EQ(status->sessions, 1u);
  EXPECT_EQ(status->gc_queued_files, 0u);
  Status slept = co_await sleep_for(900ms);
  CO_ASSERT_OK(slept);
  // Client 3 never came back: its session ended and the file it held was reclaimed.
  EXPECT_FALSE(leases->holds(3));
  auto after = shard->status();
  CO_ASSERT_OK(after);
  EXPECT_EQ(after->sessions, 0u);
  EXPECT_EQ(after->gc_queued_files, 1u);
}

MICA_CO_TEST(Leases, ClientsWithSessionsOnDiskGetOneLeaseOfGraceAtAStart) {
  auto before = with_shard(dir.file("shard"), &held_body);
  co_await std::move(before);
  if (::testing::Test::HasFatalFailure()) co_return;
  LeaseTable leases(fast_leases());
  auto opening = open_leased(dir.file("shard"), &leases);
  Result<std::unique_ptr<Shard>> shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto running = grace_body(shard->get(), &leases);
  co_await std::move(running);
  auto stopping = leases.stop();
  co_await std::move(stopping);
  auto closing = (*shard)->close();
  CO_ASSERT_OK(co_await std::move(closing));
}

Task<void> created_body(Shard* shard, LeaseTable* leases) {
  CreateRequest request{.cred = Credentials{},
                        .tag = RequestTag{.client = 4, .request = 1},
                        .parent = kRootInode,
                        .name = "c",
                        .type = InodeType::kFile,
                        .mode = 0644,
                        .open = true,
                        .flags = kWrite};
  auto creating = shard->create(request);
  Result<CreateReply> created = co_await std::move(creating);
  CO_ASSERT_OK(created);
  EXPECT_NE(created->session, 0u);
  EXPECT_TRUE(leases->holds(4));  // the create's session put client 4 under a lease
  for (int i = 0; i < 60 && leases->clients() > 0; ++i) {
    Status slept = co_await sleep_for(50ms);
    CO_ASSERT_OK(slept);
  }
  auto status = shard->status();
  CO_ASSERT_OK(status);
  EXPECT_EQ(status->sessions, 0u);  // it never renewed: the session ended
}

MICA_CO_TEST(Leases, ASessionOpenedByCreateIsUnderALease) {
  LeaseTable leases(fast_leases());
  // A routing snapshot with one chain table, so the shard can give the file a layout.
  auto routing = std::make_shared<craq::RoutingSnapshot>();
  routing->tables.push_back(craq::ChainTable{.id = 1, .replica_count = 1, .chains = {1}});
  ShardOptions options = testing::shard_options(dir.file("shard"));
  options.leases = &leases;
  options.routing = [routing] { return routing.get(); };
  auto opening = Shard::open(std::move(options));
  Result<std::unique_ptr<Shard>> shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  leases.add_shard(shard->get(), Executor::current());
  auto starting = leases.start();
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    auto running = created_body(shard->get(), &leases);
    co_await std::move(running);
  }
  auto stopping = leases.stop();
  co_await std::move(stopping);
  auto closing = (*shard)->close();
  CO_ASSERT_OK(co_await std::move(closing));
}

// ---- with the storage service ----

// Opens a shard on the storage cluster (and a lease table when leases is set).
Task<Result<std::unique_ptr<Shard>>> open_stored(std::string dir, testing::Storage* storage,
                                                 LeaseTable* leases) {
  ShardOptions options = testing::shard_options(dir);
  options.storage = storage->client.get();
  options.routing = storage->routing();
  options.leases = leases;
  auto opening = Shard::open(std::move(options));
  CO_TRY_ASSIGN(std::unique_ptr<Shard> shard, co_await std::move(opening));
  if (leases != nullptr) {
    leases->add_shard(shard.get(), Executor::current());
    auto starting = leases->start();
    Status started = co_await std::move(starting);
    if (!started.ok()) {
      auto closing = shard->close();
      Status closed = co_await std::move(closing);
      EXPECT_TRUE(closed.ok()) << closed;
      co_return started;
    }
  }
  co_return shard;
}

Task<void> lapsed_writer_body(Shard* shard, testing::Storage* storage, LeaseTable* leases) {
  CO_ASSERT_OK(storage->layout());
  auto making = make_file(shard, "f", 0644, *storage->layout());
  Result<Inode> file = co_await std::move(making);
  CO_ASSERT_OK(file);
  auto opening = open_file(shard, file->id, user(kOwner), kWrite, /*client=*/9);
  Result<OpenReply> opened = co_await std::move(opening);
  CO_ASSERT_OK(opened);
  // The writer stores two and a half chunks, reports 100 bytes, and goes silent.
  constexpr uint64_t kWritten = 2 * testing::kTestChunkBytes + testing::kTestChunkBytes / 2;
  auto writing = testing::write_file(storage, *file, kWritten);
  CO_ASSERT_OK(co_await std::move(writing));
  CO_ASSERT_OK(leases->renew(9));  // the writes may have taken a while
  LengthReport report{
      .inode = file->id, .client = 9, .session = opened->session, .length = 100, .mtime_ns = 5000};
  auto reporting = shard->report_length(report);
  CO_ASSERT_OK(co_await std::move(reporting));
  // Until the lease table let go of client 9: its lease lapsed and its session ended.
  for (int i = 0; i < 60 && leases->clients() > 0; ++i) {
    Status slept = co_await sleep_for(50ms);
    CO_ASSERT_OK(slept);
  }
  EXPECT_EQ(leases->clients(), 0u);
  auto statting = stat(shard, file->id);
  Result<Inode> stored = co_await std::move(statting);
  CO_ASSERT_OK(stored);
  EXPECT_EQ(stored->length, kWritten);  // from the storage service's last chunk
  auto status = shard->status();
  CO_ASSERT_OK(status);
  EXPECT_EQ(status->sessions, 0u);
}

MICA_CO_TEST(Leases, ALapsedWritersLengthIsRecomputedFromStorage) {
  testing::Storage storage(dir.file("storage"));
  auto starting = testing::start_storage(&storage);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    LeaseTable leases(fast_leases());
    auto opening = open_stored(dir.file("shard"), &storage, &leases);
    Result<std::unique_ptr<Shard>> shard = co_await std::move(opening);
    EXPECT_TRUE(shard.ok()) << shard.status();
    if (shard.ok()) {
      auto running = lapsed_writer_body(shard->get(), &storage, &leases);
      co_await std::move(running);
      auto stopping = leases.stop();
      co_await std::move(stopping);
      auto closing = (*shard)->close();
      Status closed = co_await std::move(closing);
      EXPECT_TRUE(closed.ok()) << closed;
    }
  }
  auto stopping = testing::stop_storage(&storage);
  co_await std::move(stopping);
}

Task<void> truncate_body(Shard* shard, testing::Storage* storage) {
  CO_ASSERT_OK(storage->layout(1));
  auto making = make_file(shard, "f", 0644, *storage->layout(1));
  Result<Inode> file = co_await std::move(making);
  CO_ASSERT_OK(file);
  auto writing = testing::write_file(storage, *file, 3 * testing::kTestChunkBytes);
  CO_ASSERT_OK(co_await std::move(writing));
  auto opening = open_file(shard, file->id, user(kOwner), kWrite);
  Result<OpenReply> opened = co_await std::move(opening);
  CO_ASSERT_OK(opened);
  auto closing = close_file(shard, file->id, opened->session, 3 * testing::kTestChunkBytes, 5000);
  CO_ASSERT_OK(co_await std::move(closing));
  auto opening_trunc =
      open_file(shard, file->id, user(kOwner), OpenFlags{.write = true, .truncate = true});
  Result<OpenReply> truncated = co_await std::move(opening_trunc);
  CO_ASSERT_OK(truncated);
  EXPECT_EQ(truncated->inode.length, 0u);
  EXPECT_GT(truncated->inode.mtime_ns, 5000);
  auto counting = testing::chunks_left(storage, *file);
  Result<uint32_t> left = co_await std::move(counting);
  CO_ASSERT_OK(left);
  EXPECT_EQ(*left, 0u);  // the chunks were cut at the storage service
}

MICA_CO_TEST(Sessions, OpenWithTruncateCutsTheChunksAndTheLength) {
  testing::Storage storage(dir.file("storage"));
  auto starting = testing::start_storage(&storage);
  Status started = co_await std::move(starting);
  EXPECT_TRUE(started.ok()) << started;
  if (started.ok()) {
    auto opening = open_stored(dir.file("shard"), &storage, nullptr);
    Result<std::unique_ptr<Shard>> shard = co_await std::move(opening);
    EXPECT_TRUE(shard.ok()) << shard.status();
    if (shard.ok()) {
      auto running = truncate_body(shard->get(), &storage);
      co_await std::move(running);
      auto closing = (*shard)->close();
      Status closed = co_await std::move(closing);
      EXPECT_TRUE(closed.ok()) << closed;
    }
  }
  auto stopping = testing::stop_storage(&storage);
  co_await std::move(stopping);
}

}  // namespace
}  // namespace mica::meta
