// The coordinator over three real LMDB shards through the local stepper: mkdir, rmdir and
// link with each of their refusals, retries by RequestTag, and resume after an operation
// was left unfinished. Renames are in coordinator_rename_test.cc.
#include "tests/meta/coordinator_fixture.h"

namespace mica::meta::testing {

Task<void> run_on_cluster(CoTestDir dir, Task<void> (*body)(Cluster*)) {
  Cluster cluster;
  auto opening = cluster.open(dir.path);
  Status opened = co_await std::move(opening);
  EXPECT_TRUE(opened.ok()) << opened;
  if (opened.ok()) {
    auto running = body(&cluster);
    co_await std::move(running);
  }
  auto closing = cluster.close();
  Status closed = co_await std::move(closing);
  EXPECT_TRUE(closed.ok()) << closed;
}

// CO_ASSERT_OK of a task's Status, the task named first (no temporary in a co_await).
#define CO_ASSERT_OK_AWAIT(expr)                         \
  do {                                                   \
    auto awaited_task_ = (expr);                         \
    Status awaited_ = co_await std::move(awaited_task_); \
    CO_ASSERT_OK(awaited_);                              \
  } while (0)

#define COORDINATOR_TEST(Suite, Name)                   \
  static Task<void> Suite##Name##Body(Cluster* c);      \
  MICA_CO_TEST(Suite, Name) {                           \
    auto run = run_on_cluster(dir, &Suite##Name##Body); \
    co_await std::move(run);                            \
  }                                                     \
  static Task<void> Suite##Name##Body(Cluster* c)

namespace {

template <class T>
StatusCode code_of(const Result<T>& result) {
  return result.status().code();
}

}  // namespace

COORDINATOR_TEST(CoordinatorMkdir, CreatesTheDirectoryOnItsPlacedShard) {
  auto making = c->mkdir(kRootInode, "a");
  Result<InodeReply> made = co_await std::move(making);
  CO_ASSERT_OK(made);
  InodeId a = made->inode.id;
  CO_ASSERT_EQ(shard_of(a), directory_shard(7, kRootInode, "a", kTestShards));
  CO_ASSERT_EQ(made->inode.nlink, 2u);
  CO_ASSERT_EQ(made->inode.parent, kRootInode);
  auto entry = c->entry(kRootInode, "a");
  CO_ASSERT_OK(entry);
  CO_ASSERT_TRUE(entry->has_value());
  CO_ASSERT_EQ((*entry)->inode, a);
  CO_ASSERT_EQ((*entry)->locked_by, 0u);
  CO_ASSERT_TRUE(!(*entry)->created_locked);
  CO_ASSERT_EQ(c->nlink(kRootInode), 3u);
  CO_ASSERT_EQ(c->coordinator->directory_parents().at(a), kRootInode);
  CO_ASSERT_EQ(c->coordinator->pending(), 0u);
}

COORDINATOR_TEST(CoordinatorMkdir, RefusesBadNamesMissingParentsAndFiles) {
  auto empty = c->mkdir(kRootInode, "");
  CO_ASSERT_EQ(code_of(co_await std::move(empty)), StatusCode::kInvalidArgument);
  auto slash = c->mkdir(kRootInode, "a/b");
  CO_ASSERT_EQ(code_of(co_await std::move(slash)), StatusCode::kInvalidArgument);
  auto dot = c->mkdir(kRootInode, ".");
  CO_ASSERT_EQ(code_of(co_await std::move(dot)), StatusCode::kInvalidArgument);
  auto longer = c->mkdir(kRootInode, std::string(kNameMax + 1, 'x'));
  CO_ASSERT_EQ(code_of(co_await std::move(longer)), StatusCode::kNameTooLong);
  auto missing = c->mkdir(make_inode_id(1, 999), "a");
  CO_ASSERT_EQ(code_of(co_await std::move(missing)), StatusCode::kNotFound);
  auto adding = c->add_file(kRootInode, "f");
  Result<Inode> file = co_await std::move(adding);
  CO_ASSERT_OK(file);
  auto in_file = c->mkdir(file->id, "a");
  CO_ASSERT_EQ(code_of(co_await std::move(in_file)), StatusCode::kNotDirectory);
  auto over_file = c->mkdir(kRootInode, "f");
  CO_ASSERT_EQ(code_of(co_await std::move(over_file)), StatusCode::kAlreadyExists);
  CO_ASSERT_EQ(c->nlink(kRootInode), 2u);
}

COORDINATOR_TEST(CoordinatorMkdir, RefusesAnExistingDirectory) {
  auto first = c->mkdir(kRootInode, "a");
  CO_ASSERT_OK(co_await std::move(first));
  auto again = c->mkdir(kRootInode, "a");
  CO_ASSERT_EQ(code_of(co_await std::move(again)), StatusCode::kAlreadyExists);
  CO_ASSERT_EQ(c->nlink(kRootInode), 3u);
}

COORDINATOR_TEST(CoordinatorMkdir, NeedsWriteAndSearchOnTheParent) {
  CO_ASSERT_OK_AWAIT(c->set_mode(kRootInode, 0755));
  auto no_write = c->mkdir(kRootInode, "a", user(1000));
  CO_ASSERT_EQ(code_of(co_await std::move(no_write)), StatusCode::kPermissionDenied);
  CO_ASSERT_OK_AWAIT(c->set_mode(kRootInode, 0776));
  auto no_search = c->mkdir(kRootInode, "a", user(1000));
  CO_ASSERT_EQ(code_of(co_await std::move(no_search)), StatusCode::kPermissionDenied);
  CO_ASSERT_OK_AWAIT(c->set_mode(kRootInode, 0777));
  auto allowed = c->mkdir(kRootInode, "a", user(1000, 200), 0750);
  Result<InodeReply> made = co_await std::move(allowed);
  CO_ASSERT_OK(made);
  CO_ASSERT_EQ(made->inode.uid, 1000u);
  CO_ASSERT_EQ(made->inode.gid, 200u);
  CO_ASSERT_EQ(made->inode.mode, 0750u);
}

COORDINATOR_TEST(CoordinatorMkdir, AnSgidParentPassesItsGroupAndSgidOn) {
  CO_ASSERT_OK_AWAIT(c->set_mode(kRootInode, 02777, 0, 55));
  auto making = c->mkdir(kRootInode, "a", user(1000, 200), 0755);
  Result<InodeReply> made = co_await std::move(making);
  CO_ASSERT_OK(made);
  CO_ASSERT_EQ(made->inode.gid, 55u);
  CO_ASSERT_EQ(made->inode.mode, 02755u);
}

COORDINATOR_TEST(CoordinatorRmdir, RemovesAnEmptyDirectory) {
  auto making = c->mkdir(kRootInode, "a");
  Result<InodeReply> made = co_await std::move(making);
  CO_ASSERT_OK(made);
  auto removing = c->rmdir(kRootInode, "a");
  Result<RemoveReply> removed = co_await std::move(removing);
  CO_ASSERT_OK(removed);
  CO_ASSERT_EQ(removed->inode.id, made->inode.id);
  CO_ASSERT_EQ(removed->inode.nlink, 0u);
  auto entry = c->entry(kRootInode, "a");
  CO_ASSERT_OK(entry);
  CO_ASSERT_TRUE(!entry->has_value());
  auto inode = c->inode(made->inode.id);
  CO_ASSERT_OK(inode);
  CO_ASSERT_TRUE(!inode->has_value());
  CO_ASSERT_EQ(c->nlink(kRootInode), 2u);
  CO_ASSERT_TRUE(!c->coordinator->directory_parents().contains(made->inode.id));
}

COORDINATOR_TEST(CoordinatorRmdir, RefusesNonEmptyFilesDotsAndMissingNames) {
  auto making = c->mkdir(kRootInode, "a");
  Result<InodeReply> a = co_await std::move(making);
  CO_ASSERT_OK(a);
  auto inner = c->mkdir(a->inode.id, "b");
  CO_ASSERT_OK(co_await std::move(inner));
  auto not_empty = c->rmdir(kRootInode, "a");
  CO_ASSERT_EQ(code_of(co_await std::move(not_empty)), StatusCode::kNotEmpty);
  auto adding = c->add_file(kRootInode, "f");
  CO_ASSERT_OK(co_await std::move(adding));
  auto file = c->rmdir(kRootInode, "f");
  CO_ASSERT_EQ(code_of(co_await std::move(file)), StatusCode::kNotDirectory);
  auto dot = c->rmdir(a->inode.id, ".");
  CO_ASSERT_EQ(code_of(co_await std::move(dot)), StatusCode::kInvalidArgument);
  auto dotdot = c->rmdir(a->inode.id, "..");
  CO_ASSERT_EQ(code_of(co_await std::move(dotdot)), StatusCode::kNotEmpty);
  auto missing = c->rmdir(kRootInode, "nothing");
  CO_ASSERT_EQ(code_of(co_await std::move(missing)), StatusCode::kNotFound);
  CO_ASSERT_EQ(c->nlink(kRootInode), 3u);
  CO_ASSERT_EQ(c->nlink(a->inode.id), 3u);
}

COORDINATOR_TEST(CoordinatorRmdir, NeedsWriteOnTheParentAndOwnershipInASticky) {
  CO_ASSERT_OK_AWAIT(c->set_mode(kRootInode, 0777));
  auto making = c->mkdir(kRootInode, "mine", user(1000));
  CO_ASSERT_OK(co_await std::move(making));
  CO_ASSERT_OK_AWAIT(c->set_mode(kRootInode, 0755));
  auto no_write = c->rmdir(kRootInode, "mine", user(1000));
  CO_ASSERT_EQ(code_of(co_await std::move(no_write)), StatusCode::kPermissionDenied);
  CO_ASSERT_OK_AWAIT(c->set_mode(kRootInode, 01777));
  auto other = c->rmdir(kRootInode, "mine", user(2000));
  CO_ASSERT_EQ(code_of(co_await std::move(other)), StatusCode::kNotPermitted);
  auto owner = c->rmdir(kRootInode, "mine", user(1000));
  CO_ASSERT_OK(co_await std::move(owner));
}

COORDINATOR_TEST(CoordinatorLink, LinksAFileIntoADirectoryOfAnotherShard) {
  InodeId far = 0;
  for (int i = 0; far == 0; ++i) {  // a directory not on shard 0
    auto making = c->mkdir(kRootInode, "d" + std::to_string(i));
    Result<InodeReply> made = co_await std::move(making);
    CO_ASSERT_OK(made);
    if (shard_of(made->inode.id) != 0) far = made->inode.id;
  }
  auto adding = c->add_file(kRootInode, "f");
  Result<Inode> file = co_await std::move(adding);
  CO_ASSERT_OK(file);
  LinkRequest request{.cred = root(), .inode = file->id, .new_parent = far, .new_name = "g"};
  auto linking = c->coordinator->link(request);
  Result<InodeReply> linked = co_await std::move(linking);
  CO_ASSERT_OK(linked);
  CO_ASSERT_EQ(linked->inode.nlink, 2u);
  CO_ASSERT_EQ(c->nlink(file->id), 2u);
  auto entry = c->entry(far, "g");
  CO_ASSERT_OK(entry);
  CO_ASSERT_TRUE(entry->has_value() && (*entry)->inode == file->id && (*entry)->locked_by == 0);
  auto again = c->coordinator->link(request);
  CO_ASSERT_EQ(code_of(co_await std::move(again)), StatusCode::kAlreadyExists);
  LinkRequest to_dir{.cred = root(), .inode = far, .new_parent = kRootInode, .new_name = "x"};
  auto dir_link = c->coordinator->link(to_dir);
  CO_ASSERT_EQ(code_of(co_await std::move(dir_link)), StatusCode::kNotPermitted);
  CO_ASSERT_EQ(c->nlink(file->id), 2u);
}

COORDINATOR_TEST(CoordinatorRetry, ATagAlreadyAnsweredGetsTheSameAnswer) {
  RequestTag tag{.client = 9, .request = 1};
  auto first = c->mkdir(kRootInode, "a", root(), 0755, tag);
  Result<InodeReply> made = co_await std::move(first);
  CO_ASSERT_OK(made);
  auto retry = c->mkdir(kRootInode, "a", root(), 0755, tag);
  Result<InodeReply> again = co_await std::move(retry);
  CO_ASSERT_OK(again);
  CO_ASSERT_EQ(again->inode.id, made->inode.id);
  CO_ASSERT_EQ(c->nlink(kRootInode), 3u);
  auto other = c->mkdir(kRootInode, "a", root(), 0755, RequestTag{.client = 9, .request = 2});
  CO_ASSERT_EQ(code_of(co_await std::move(other)), StatusCode::kAlreadyExists);
  // The answer survives a restart of the coordinator.
  CO_ASSERT_OK_AWAIT(c->close_coordinator());
  CO_ASSERT_OK_AWAIT(c->open_coordinator());
  auto later = c->mkdir(kRootInode, "a", root(), 0755, tag);
  Result<InodeReply> remembered = co_await std::move(later);
  CO_ASSERT_OK(remembered);
  CO_ASSERT_EQ(remembered->inode.id, made->inode.id);
}

// Leaves a mkdir unfinished after `steps_done` steps, reopens the coordinator and checks
// that it was finished (past the decision) or rolled back (before it).
Task<void> resume_after(Cluster* c, uint64_t steps_done, bool expect_done) {
  c->flaky->steps = 0;
  c->flaky->fail_from = steps_done + 1;
  auto making = c->mkdir(kRootInode, "a");
  Result<InodeReply> made = co_await std::move(making);
  CO_ASSERT_TRUE(!made.ok());
  CO_ASSERT_EQ(c->coordinator->pending(), 1u);
  CO_ASSERT_OK_AWAIT(c->close_coordinator());
  c->flaky->fail_from = 0;
  CO_ASSERT_OK_AWAIT(c->open_coordinator());
  CO_ASSERT_EQ(c->coordinator->pending(), 0u);
  auto entry = c->entry(kRootInode, "a");
  CO_ASSERT_OK(entry);
  CO_ASSERT_EQ(entry->has_value(), expect_done);
  CO_ASSERT_EQ(c->nlink(kRootInode), expect_done ? 3u : 2u);
  if (expect_done) {
    CO_ASSERT_EQ((*entry)->locked_by, 0u);
    CO_ASSERT_TRUE(c->coordinator->directory_parents().contains((*entry)->inode));
  }
  CO_ASSERT_EQ(c->coordinator->directory_parents().size(), expect_done ? 2u : 1u);
}

COORDINATOR_TEST(CoordinatorResume, RollsBackAMkdirStoppedBeforeItsDecision) {
  auto resuming = resume_after(c, 1, false);
  co_await std::move(resuming);
}

COORDINATOR_TEST(CoordinatorResume, FinishesAMkdirStoppedAfterItsDecision) {
  auto resuming = resume_after(c, 2, true);
  co_await std::move(resuming);
}

COORDINATOR_TEST(CoordinatorResume, RollsBackAMkdirThatTookNoStep) {
  auto resuming = resume_after(c, 0, false);
  co_await std::move(resuming);
}

}  // namespace mica::meta::testing
