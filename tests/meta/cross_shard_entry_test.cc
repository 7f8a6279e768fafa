// Entries whose inode lives on another shard than their directory (a cross-shard link, a
// file renamed across shards, or any directory): unlink and rename hand them to the
// coordinator (Shard::unlink_here and Shard::rename answer nullopt), which drops the link on
// the inode's shard and checks the sticky rule against the inode's owner there. The helpers
// dispatch as meta/meta_server_forward.cc does: the entry's shard first, then the coordinator.
#include "tests/meta/coordinator_fixture.h"

namespace mica::meta::testing {
namespace {

// CO_ASSERT_OK of a task's Status, the task named first (no temporary in a co_await).
#define CROSS_ASSERT_OK_AWAIT(expr)                      \
  do {                                                   \
    auto awaited_task_ = (expr);                         \
    Status awaited_ = co_await std::move(awaited_task_); \
    CO_ASSERT_OK(awaited_);                              \
  } while (0)

// The GC records queued on a shard.
Result<size_t> gc_count(Shard& shard) {
  auto read = shard.read();
  if (!read.ok()) return std::move(read).status();
  auto cursor = (*read)->cursor(shard.tables().gc);
  if (!cursor.ok()) return std::move(cursor).status();
  size_t count = 0;
  auto at = (*cursor)->first();
  while (at.ok() && at->has_value()) {
    ++count;
    at = (*cursor)->next();
  }
  if (!at.ok()) return std::move(at).status();
  return count;
}

template <class T>
StatusCode code_of(const Result<T>& result) {
  return result.status().code();
}

// The dispatch of an unlink; *coordinated says whether the coordinator ran it.
Task<Result<RemoveReply>> remove_entry(Cluster* c, InodeId parent, std::string name,
                                       Credentials cred, bool* coordinated, RequestTag tag = {}) {
  RemoveRequest request{
      .cred = cred, .tag = tag, .parent = parent, .name = name, .directory = false};
  auto local = c->shard(shard_of(parent))->unlink_here(request);
  Result<std::optional<RemoveReply>> here = co_await std::move(local);
  *coordinated = false;
  if (!here.ok()) co_return here.status();
  if (*here) co_return std::move(**here);
  *coordinated = true;
  auto removing = c->coordinator->rmdir(request);
  co_return co_await std::move(removing);
}

Task<Result<RenameReply>> rename_entry(Cluster* c, InodeId parent, std::string name,
                                       InodeId new_parent, std::string new_name, Credentials cred,
                                       bool* coordinated, RequestTag tag = {}) {
  RenameRequest request{.cred = cred,
                        .tag = tag,
                        .parent = parent,
                        .name = name,
                        .new_parent = new_parent,
                        .new_name = new_name};
  auto local = c->shard(shard_of(parent))->rename(request);
  Result<std::optional<RenameReply>> here = co_await std::move(local);
  *coordinated = false;
  if (!here.ok()) co_return here.status();
  if (*here) co_return std::move(**here);
  *coordinated = true;
  auto renaming = c->coordinator->rename(request);
  co_return co_await std::move(renaming);
}

// A directory of the root not on shard 0 (where the root's files live).
Task<Result<InodeId>> far_dir(Cluster* c) {
  for (int i = 0; i < 64; ++i) {
    auto making = c->mkdir(kRootInode, "d" + std::to_string(i), root(), 0777);
    Result<InodeReply> made = co_await std::move(making);
    if (!made.ok()) co_return made.status();
    if (shard_of(made->inode.id) != 0) co_return made->inode.id;
  }
  co_return Status(StatusCode::kInternal, "no directory placed off shard 0");
}

// A file in the root (shard 0) with some length (its chunks need GC), also linked as
// far/g: the entry far/g names an inode of shard 0.
Task<Result<Inode>> linked_file(Cluster* c, InodeId far, uint32_t uid = 0) {
  ShardTxn txn = c->shard(0)->begin();
  Inode file;
  file.id = txn.allocate_inode();
  file.type = InodeType::kFile;
  file.mode = 0644;
  file.uid = uid;
  file.nlink = 1;
  file.length = 100;
  txn.put_inode(file);
  txn.put_entry(kRootInode, "f", DirEntry{.inode = file.id, .type = InodeType::kFile});
  auto committing = txn.commit();
  CO_TRY(co_await std::move(committing));
  LinkRequest request{.cred = root(), .inode = file.id, .new_parent = far, .new_name = "g"};
  auto linking = c->coordinator->link(request);
  CO_TRY_ASSIGN(InodeReply linked, co_await std::move(linking));
  co_return linked.inode;
}

bool names(Cluster* c, InodeId parent, const std::string& name, InodeId inode) {
  auto entry = c->entry(parent, name);
  return entry.ok() && entry->has_value() && (*entry)->inode == inode && (*entry)->locked_by == 0;
}

bool absent(Cluster* c, InodeId parent, const std::string& name) {
  auto entry = c->entry(parent, name);
  return entry.ok() && !entry->has_value();
}

Task<void> run_cross(CoTestDir dir, Task<void> (*body)(Cluster*, InodeId, Inode)) {
  Cluster cluster;
  auto opening = cluster.open(dir.path);
  Status opened = co_await std::move(opening);
  EXPECT_TRUE(opened.ok()) << opened;
  Result<InodeId> far = Status(StatusCode::kInternal, "not opened");
  Result<Inode> file = Status(StatusCode::kInternal, "not opened");
  if (opened.ok()) {
    auto placing = far_dir(&cluster);
    far = co_await std::move(placing);
    EXPECT_TRUE(far.ok()) << far.status();
  }
  if (far.ok()) {
    auto linking = linked_file(&cluster, *far);
    file = co_await std::move(linking);
    EXPECT_TRUE(file.ok()) << file.status();
  }
  if (file.ok()) {
    auto running = body(&cluster, *far, *file);
    co_await std::move(running);
  }
  auto closing = cluster.close();
  Status closed = co_await std::move(closing);
  EXPECT_TRUE(closed.ok()) << closed;
}

}  // namespace

// A test over a cluster with a directory `far` off shard 0 and a file f of the root (shard
// 0) linked as far/g.
#define CROSS_TEST(Name)                                          \
  static Task<void> Name##Body(Cluster* c, InodeId far, Inode f); \
  MICA_CO_TEST(CrossShardEntry, Name) {                           \
    auto run = run_cross(dir, &Name##Body);                       \
    co_await std::move(run);                                      \
  }                                                               \
  static Task<void> Name##Body(Cluster* c, InodeId far, Inode f)

CROSS_TEST(UnlinkOfACrossShardHardLinkDropsOneLinkOnTheInodesShard) {
  CO_ASSERT_EQ(c->nlink(f.id), 2u);
  bool coordinated = false;
  auto removing = remove_entry(c, far, "g", root(), &coordinated);
  Result<RemoveReply> removed = co_await std::move(removing);
  CO_ASSERT_OK(removed);
  CO_ASSERT_TRUE(coordinated);
  CO_ASSERT_EQ(removed->inode.id, f.id);
  CO_ASSERT_EQ(removed->inode.nlink, 1u);
  CO_ASSERT_TRUE(!removed->reclaimed);
  CO_ASSERT_EQ(c->nlink(f.id), 1u);
  CO_ASSERT_TRUE(absent(c, far, "g"));
  CO_ASSERT_TRUE(names(c, kRootInode, "f", f.id));
  CO_ASSERT_EQ(c->coordinator->pending(), 0u);
  auto again = remove_entry(c, far, "g", root(), &coordinated);
  CO_ASSERT_EQ(code_of(co_await std::move(again)), StatusCode::kNotFound);
}

CROSS_TEST(UnlinkOfTheLastCrossShardLinkQueuesGcOnTheInodesShard) {
  bool coordinated = false;
  auto local = remove_entry(c, kRootInode, "f", root(), &coordinated);
  CO_ASSERT_OK(co_await std::move(local));
  CO_ASSERT_TRUE(!coordinated);
  auto removing = remove_entry(c, far, "g", root(), &coordinated);
  Result<RemoveReply> removed = co_await std::move(removing);
  CO_ASSERT_OK(removed);
  CO_ASSERT_TRUE(coordinated);
  CO_ASSERT_TRUE(removed->reclaimed);
  auto inode = c->inode(f.id);
  CO_ASSERT_OK(inode);
  CO_ASSERT_TRUE(!inode->has_value());
  auto queued = gc_count(*c->shard(0));
  CO_ASSERT_OK(queued);
  CO_ASSERT_EQ(*queued, 1u);
  auto elsewhere = gc_count(*c->shard(shard_of(far)));
  CO_ASSERT_OK(elsewhere);
  CO_ASSERT_EQ(*elsewhere, 0u);
}

CROSS_TEST(UnlinkOfTheLastCrossShardLinkKeepsAnInodeASessionHolds) {
  ShardTxn txn = c->shard(0)->begin();
  txn.put_session(SessionRecord{.inode = f.id, .session = 1, .client = 7});
  auto committing = txn.commit();
  CO_ASSERT_OK(co_await std::move(committing));
  bool coordinated = false;
  auto local = remove_entry(c, kRootInode, "f", root(), &coordinated);
  CO_ASSERT_OK(co_await std::move(local));
  auto removing = remove_entry(c, far, "g", root(), &coordinated);
  Result<RemoveReply> removed = co_await std::move(removing);
  CO_ASSERT_OK(removed);
  CO_ASSERT_TRUE(coordinated);
  CO_ASSERT_TRUE(!removed->reclaimed);
  auto inode = c->inode(f.id);
  CO_ASSERT_OK(inode);
  CO_ASSERT_TRUE(inode->has_value());
  CO_ASSERT_EQ((*inode)->nlink, 0u);
  auto queued = gc_count(*c->shard(0));
  CO_ASSERT_OK(queued);
  CO_ASSERT_EQ(*queued, 0u);
}

CROSS_TEST(RenameOfACrossShardEntryWithinItsDirectory) {
  bool coordinated = false;
  auto renaming = rename_entry(c, far, "g", far, "h", root(), &coordinated);
  Result<RenameReply> renamed = co_await std::move(renaming);
  CO_ASSERT_OK(renamed);
  CO_ASSERT_TRUE(coordinated);
  CO_ASSERT_EQ(renamed->moved.id, f.id);
  CO_ASSERT_TRUE(absent(c, far, "g"));
  CO_ASSERT_TRUE(names(c, far, "h", f.id));
  CO_ASSERT_EQ(c->nlink(f.id), 2u);
  // Onto itself (its own name): nothing changes, successfully.
  auto same = rename_entry(c, far, "h", far, "h", root(), &coordinated);
  CO_ASSERT_OK(co_await std::move(same));
  CO_ASSERT_TRUE(names(c, far, "h", f.id));
}

CROSS_TEST(RenameOfACrossShardEntryToAnotherDirectory) {
  bool coordinated = false;
  auto renaming = rename_entry(c, far, "g", kRootInode, "back", root(), &coordinated);
  Result<RenameReply> renamed = co_await std::move(renaming);
  CO_ASSERT_OK(renamed);
  CO_ASSERT_TRUE(coordinated);
  CO_ASSERT_TRUE(absent(c, far, "g"));
  CO_ASSERT_TRUE(names(c, kRootInode, "back", f.id));
  CO_ASSERT_EQ(c->nlink(f.id), 2u);
  // Its entry is local again: the shard unlinks it by itself.
  auto removing = remove_entry(c, kRootInode, "back", root(), &coordinated);
  CO_ASSERT_OK(co_await std::move(removing));
  CO_ASSERT_TRUE(!coordinated);
  CO_ASSERT_EQ(c->nlink(f.id), 1u);
}

CROSS_TEST(RenameOverACrossShardEntryDropsItsLinkOnTheInodesShard) {
  auto adding = c->add_file(far, "x");
  Result<Inode> x = co_await std::move(adding);
  CO_ASSERT_OK(x);
  bool coordinated = false;
  auto renaming = rename_entry(c, far, "x", far, "g", root(), &coordinated);
  Result<RenameReply> renamed = co_await std::move(renaming);
  CO_ASSERT_OK(renamed);
  CO_ASSERT_TRUE(coordinated);
  CO_ASSERT_TRUE(renamed->replaced.has_value());
  CO_ASSERT_EQ(renamed->replaced->id, f.id);
  CO_ASSERT_TRUE(!renamed->replaced_reclaimed);
  CO_ASSERT_EQ(c->nlink(f.id), 1u);
  CO_ASSERT_TRUE(names(c, far, "g", x->id));
  CO_ASSERT_TRUE(absent(c, far, "x"));
  // Over the last link: the inode goes and its chunks are queued on its shard.
  auto other = c->add_file(far, "y");
  CO_ASSERT_OK(co_await std::move(other));
  auto moving = rename_entry(c, far, "y", kRootInode, "f", root(), &coordinated);
  Result<RenameReply> over = co_await std::move(moving);
  CO_ASSERT_OK(over);
  CO_ASSERT_TRUE(over->replaced_reclaimed);
  auto queued = gc_count(*c->shard(0));
  CO_ASSERT_OK(queued);
  CO_ASSERT_EQ(*queued, 1u);
}

CROSS_TEST(StickyRulesLookAtTheForeignInodesOwner) {
  CROSS_ASSERT_OK_AWAIT(c->set_mode(far, 01777));
  CROSS_ASSERT_OK_AWAIT(c->set_mode(f.id, 0666, 1000, 100));
  bool coordinated = false;
  auto stranger = remove_entry(c, far, "g", user(2000), &coordinated);
  CO_ASSERT_EQ(code_of(co_await std::move(stranger)), StatusCode::kNotPermitted);
  CO_ASSERT_TRUE(coordinated);
  auto moved = rename_entry(c, far, "g", far, "h", user(2000), &coordinated);
  CO_ASSERT_EQ(code_of(co_await std::move(moved)), StatusCode::kNotPermitted);
  CO_ASSERT_TRUE(names(c, far, "g", f.id));
  auto owner = rename_entry(c, far, "g", far, "h", user(1000), &coordinated);
  CO_ASSERT_OK(co_await std::move(owner));
  auto removing = remove_entry(c, far, "h", user(1000), &coordinated);
  CO_ASSERT_OK(co_await std::move(removing));
  CO_ASSERT_EQ(c->nlink(f.id), 1u);
  // A directory of another shard in a sticky directory: EPERM before EISDIR.
  InodeId sub = 0;
  std::string sub_name;
  for (int i = 0; sub == 0 && i < 64; ++i) {
    sub_name = "s" + std::to_string(i);
    auto making = c->mkdir(far, sub_name, user(1000), 0755);
    Result<InodeReply> made = co_await std::move(making);
    CO_ASSERT_OK(made);
    if (shard_of(made->inode.id) != shard_of(far)) sub = made->inode.id;
  }
  CO_ASSERT_TRUE(sub != 0);
  auto not_theirs = remove_entry(c, far, sub_name, user(2000), &coordinated);
  CO_ASSERT_EQ(code_of(co_await std::move(not_theirs)), StatusCode::kNotPermitted);
  auto is_dir = remove_entry(c, far, sub_name, user(1000), &coordinated);
  CO_ASSERT_EQ(code_of(co_await std::move(is_dir)), StatusCode::kIsDirectory);
}

// The coordinator's resume finishing an operation whose caller saw an error: the retry (same
// tag) reaches the entry's shard first, which finds the entry gone, so the answer must be
// remembered there (StepRequest::answer on the operation's last step on that shard).
Task<Status> restart_coordinator(Cluster* c) {
  auto closing = c->close_coordinator();
  CO_TRY(co_await std::move(closing));
  c->flaky->fail_from = 0;
  auto opening = c->open_coordinator();
  co_return co_await std::move(opening);
}

CROSS_TEST(ARetriedUnlinkTheCoordinatorFinishedOnResumeGetsItsAnswer) {
  RequestTag tag{.client = 5, .request = 1};
  c->flaky->steps = 0;
  c->flaky->fail_from = 3;  // lock and drop link (the decision) pass, the entry's erase fails
  bool coordinated = false;
  auto removing = remove_entry(c, far, "g", root(), &coordinated, tag);
  Result<RemoveReply> first = co_await std::move(removing);
  CO_ASSERT_TRUE(!first.ok());
  CO_ASSERT_TRUE(coordinated);
  CROSS_ASSERT_OK_AWAIT(restart_coordinator(c));
  CO_ASSERT_EQ(c->coordinator->pending(), 0u);
  CO_ASSERT_TRUE(absent(c, far, "g"));
  auto retrying = remove_entry(c, far, "g", root(), &coordinated, tag);
  Result<RemoveReply> again = co_await std::move(retrying);
  CO_ASSERT_OK(again);
  CO_ASSERT_TRUE(!coordinated);  // the shard answered from what it remembers
  CO_ASSERT_EQ(again->inode.id, f.id);
  CO_ASSERT_EQ(again->inode.nlink, 1u);
  CO_ASSERT_EQ(c->nlink(f.id), 1u);
  // Another tag is a new unlink: the name is gone.
  RequestTag other_tag{.client = 5, .request = 2};
  auto other = remove_entry(c, far, "g", root(), &coordinated, other_tag);
  CO_ASSERT_EQ(code_of(co_await std::move(other)), StatusCode::kNotFound);
}

CROSS_TEST(ARetriedRenameTheCoordinatorFinishedOnResumeGetsItsAnswer) {
  RequestTag tag{.client = 6, .request = 1};
  c->flaky->steps = 0;
  c->flaky->fail_from = 4;  // both names locked, the inode set (the decision), then a failure
  bool coordinated = false;
  auto renaming = rename_entry(c, far, "g", far, "h", root(), &coordinated, tag);
  Result<RenameReply> first = co_await std::move(renaming);
  CO_ASSERT_TRUE(!first.ok());
  CO_ASSERT_TRUE(coordinated);
  CROSS_ASSERT_OK_AWAIT(restart_coordinator(c));
  CO_ASSERT_EQ(c->coordinator->pending(), 0u);
  CO_ASSERT_TRUE(absent(c, far, "g"));
  CO_ASSERT_TRUE(names(c, far, "h", f.id));
  auto retrying = rename_entry(c, far, "g", far, "h", root(), &coordinated, tag);
  Result<RenameReply> again = co_await std::move(retrying);
  CO_ASSERT_OK(again);
  CO_ASSERT_TRUE(!coordinated);
  CO_ASSERT_EQ(again->moved.id, f.id);
  CO_ASSERT_TRUE(!again->replaced.has_value());
}

}  // namespace mica::meta::testing
