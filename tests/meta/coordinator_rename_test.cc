// Renames through the coordinator over three real LMDB shards: directories between
// parents, the loop check, the replace rules, RENAME_NOREPLACE and RENAME_EXCHANGE, files
// across shards, and what a sticky directory allows.
#include "tests/meta/coordinator_fixture.h"

namespace mica::meta::testing {
namespace {

#define CO_AWAIT(decl, expr)                          \
  auto MICA_CONCAT(awaited_task_, __LINE__) = (expr); \
  decl = co_await std::move(MICA_CONCAT(awaited_task_, __LINE__))

Task<void> run(CoTestDir dir, Task<void> (*body)(Cluster*)) {
  Cluster cluster;
  CO_AWAIT(Status opened, cluster.open(dir.path));
  EXPECT_TRUE(opened.ok()) << opened;
  if (opened.ok()) {
    auto running = body(&cluster);
    co_await std::move(running);
  }
  CO_AWAIT(Status closed, cluster.close());
  EXPECT_TRUE(closed.ok()) << closed;
}

#define RENAME_TEST(Name)                 \
  Task<void> Name##Body(Cluster* c);      \
  MICA_CO_TEST(CoordinatorRename, Name) { \
    auto running = run(dir, &Name##Body); \
    co_await std::move(running);          \
  }                                       \
  Task<void> Name##Body(Cluster* c)

RenameRequest move(InodeId parent, std::string name, InodeId new_parent, std::string new_name) {
  return RenameRequest{.cred = root(),
                       .parent = parent,
                       .name = std::move(name),
                       .new_parent = new_parent,
                       .new_name = std::move(new_name)};
}

// mkdir that must work: the new id (0 after a failed assertion).
Task<InodeId> dir_in(Cluster* c, InodeId parent, std::string name) {
  CO_AWAIT(Result<InodeReply> made, c->mkdir(parent, std::move(name)));
  EXPECT_TRUE(made.ok()) << made.status();
  co_return made.ok() ? made->inode.id : 0;
}

bool unlocked(Cluster* c, InodeId parent, const std::string& name, InodeId inode) {
  auto entry = c->entry(parent, name);
  return entry.ok() && entry->has_value() && (*entry)->inode == inode && (*entry)->locked_by == 0 &&
         !(*entry)->created_locked;
}

bool absent(Cluster* c, InodeId parent, const std::string& name) {
  auto entry = c->entry(parent, name);
  return entry.ok() && !entry->has_value();
}

RENAME_TEST(MovesADirectoryToAnotherParent) {
  CO_AWAIT(InodeId a, dir_in(c, kRootInode, "a"));
  CO_AWAIT(InodeId b, dir_in(c, kRootInode, "b"));
  CO_AWAIT(InodeId x, dir_in(c, a, "x"));
  CO_AWAIT(Result<RenameReply> moved, c->rename(move(a, "x", b, "y")));
  CO_ASSERT_OK(moved);
  CO_ASSERT_EQ(moved->moved.id, x);
  CO_ASSERT_EQ(moved->moved.parent, b);
  CO_ASSERT_TRUE(!moved->replaced.has_value());
  CO_ASSERT_TRUE(absent(c, a, "x"));
  CO_ASSERT_TRUE(unlocked(c, b, "y", x));
  CO_ASSERT_EQ(c->nlink(a), 2u);
  CO_ASSERT_EQ(c->nlink(b), 3u);
  CO_ASSERT_EQ(c->coordinator->directory_parents().at(x), b);
}

RENAME_TEST(RefusesMovingADirectoryIntoItsOwnSubtree) {
  CO_AWAIT(InodeId a, dir_in(c, kRootInode, "a"));
  CO_AWAIT(InodeId b, dir_in(c, a, "b"));
  CO_AWAIT(InodeId deep, dir_in(c, b, "c"));
  CO_AWAIT(Result<RenameReply> under, c->rename(move(kRootInode, "a", deep, "z")));
  CO_ASSERT_EQ(under.status().code(), StatusCode::kInvalidArgument);
  CO_AWAIT(Result<RenameReply> into, c->rename(move(kRootInode, "a", a, "z")));
  CO_ASSERT_EQ(into.status().code(), StatusCode::kInvalidArgument);
  CO_ASSERT_TRUE(unlocked(c, kRootInode, "a", a));
  CO_ASSERT_TRUE(absent(c, deep, "z"));
  // Moving it the other way, out of the subtree, is fine.
  CO_AWAIT(Result<RenameReply> out, c->rename(move(b, "c", kRootInode, "c")));
  CO_ASSERT_OK(out);
  CO_ASSERT_EQ(c->coordinator->directory_parents().at(deep), kRootInode);
}

RENAME_TEST(ReplacesAnEmptyDirectory) {
  CO_AWAIT(InodeId a, dir_in(c, kRootInode, "a"));
  CO_AWAIT(InodeId b, dir_in(c, kRootInode, "b"));
  CO_ASSERT_EQ(c->nlink(kRootInode), 4u);
  CO_AWAIT(Result<RenameReply> moved, c->rename(move(kRootInode, "a", kRootInode, "b")));
  CO_ASSERT_OK(moved);
  CO_ASSERT_TRUE(moved->replaced.has_value());
  CO_ASSERT_EQ(moved->replaced->id, b);
  CO_ASSERT_TRUE(unlocked(c, kRootInode, "b", a));
  CO_ASSERT_TRUE(absent(c, kRootInode, "a"));
  auto gone = c->inode(b);
  CO_ASSERT_TRUE(gone.ok() && !gone->has_value());
  CO_ASSERT_EQ(c->nlink(kRootInode), 3u);
  CO_ASSERT_TRUE(!c->coordinator->directory_parents().contains(b));
}

RENAME_TEST(FollowsTheReplaceRules) {
  CO_AWAIT(InodeId a, dir_in(c, kRootInode, "a"));
  CO_AWAIT(InodeId full, dir_in(c, kRootInode, "full"));
  CO_AWAIT(InodeId inner, dir_in(c, full, "inner"));
  CO_AWAIT(Result<Inode> file, c->add_file(kRootInode, "f"));
  CO_ASSERT_OK(file);
  CO_AWAIT(Result<RenameReply> over_full, c->rename(move(kRootInode, "a", kRootInode, "full")));
  CO_ASSERT_EQ(over_full.status().code(), StatusCode::kNotEmpty);
  CO_AWAIT(Result<RenameReply> over_file, c->rename(move(kRootInode, "a", kRootInode, "f")));
  CO_ASSERT_EQ(over_file.status().code(), StatusCode::kNotDirectory);
  CO_AWAIT(Result<RenameReply> file_over, c->rename(move(kRootInode, "f", full, "inner")));
  CO_ASSERT_EQ(file_over.status().code(), StatusCode::kIsDirectory);
  RenameRequest keep = move(kRootInode, "f", kRootInode, "a");
  keep.noreplace = true;
  CO_AWAIT(Result<RenameReply> noreplace, c->rename(keep));
  CO_ASSERT_EQ(noreplace.status().code(), StatusCode::kAlreadyExists);
  keep.exchange = true;
  CO_AWAIT(Result<RenameReply> both, c->rename(keep));
  CO_ASSERT_EQ(both.status().code(), StatusCode::kInvalidArgument);
  RenameRequest swap = move(kRootInode, "f", kRootInode, "nothing");
  swap.exchange = true;
  CO_AWAIT(Result<RenameReply> alone, c->rename(swap));
  CO_ASSERT_EQ(alone.status().code(), StatusCode::kNotFound);
  CO_ASSERT_TRUE(unlocked(c, kRootInode, "a", a));
  CO_ASSERT_TRUE(unlocked(c, full, "inner", inner));
  CO_ASSERT_TRUE(unlocked(c, kRootInode, "f", file->id));
}

RENAME_TEST(ExchangesADirectoryAndAFileOfDifferentParents) {
  CO_AWAIT(InodeId a, dir_in(c, kRootInode, "a"));
  CO_AWAIT(InodeId b, dir_in(c, kRootInode, "b"));
  CO_AWAIT(InodeId x, dir_in(c, a, "x"));
  CO_AWAIT(Result<Inode> file, c->add_file(b, "f"));
  CO_ASSERT_OK(file);
  RenameRequest swap = move(a, "x", b, "f");
  swap.exchange = true;
  CO_AWAIT(Result<RenameReply> swapped, c->rename(swap));
  CO_ASSERT_OK(swapped);
  CO_ASSERT_TRUE(unlocked(c, b, "f", x));
  CO_ASSERT_TRUE(unlocked(c, a, "x", file->id));
  CO_ASSERT_EQ(c->nlink(a), 2u);
  CO_ASSERT_EQ(c->nlink(b), 3u);
  CO_ASSERT_EQ(c->coordinator->directory_parents().at(x), b);
  auto moved = c->inode(x);
  CO_ASSERT_TRUE(moved.ok() && moved->has_value() && (*moved)->parent == b);
}

RENAME_TEST(MovesAFileAcrossShardsOverAnotherFile) {
  InodeId first = 0;
  InodeId second = 0;
  for (int i = 0; second == 0; ++i) {
    CO_AWAIT(InodeId d, dir_in(c, kRootInode, "d" + std::to_string(i)));
    CO_ASSERT_TRUE(d != 0);
    if (first == 0)
      first = d;
    else if (shard_of(d) != shard_of(first))
      second = d;
  }
  CO_AWAIT(Result<Inode> f, c->add_file(first, "f"));
  CO_ASSERT_OK(f);
  CO_AWAIT(Result<Inode> g, c->add_file(second, "g"));
  CO_ASSERT_OK(g);
  CO_AWAIT(Result<RenameReply> moved, c->rename(move(first, "f", second, "g")));
  CO_ASSERT_OK(moved);
  CO_ASSERT_EQ(moved->moved.id, f->id);
  CO_ASSERT_TRUE(moved->replaced.has_value() && moved->replaced->id == g->id);
  CO_ASSERT_EQ(moved->replaced->nlink, 0u);
  CO_ASSERT_TRUE(moved->replaced_reclaimed);
  CO_ASSERT_TRUE(absent(c, first, "f"));
  CO_ASSERT_TRUE(unlocked(c, second, "g", f->id));
  CO_ASSERT_EQ(c->nlink(f->id), 1u);
  auto replaced = c->inode(g->id);
  CO_ASSERT_TRUE(replaced.ok() && !replaced->has_value());
  // The moved file's inode stays on its shard: the entry names it across shards.
  CO_ASSERT_EQ(shard_of(f->id), shard_of(first));
}

RENAME_TEST(OntoAnotherNameOfTheSameFileDoesNothing) {
  CO_AWAIT(Result<Inode> f, c->add_file(kRootInode, "f"));
  CO_ASSERT_OK(f);
  LinkRequest link{.cred = root(), .inode = f->id, .new_parent = kRootInode, .new_name = "g"};
  CO_AWAIT(Result<InodeReply> linked, c->coordinator->link(link));
  CO_ASSERT_OK(linked);
  CO_AWAIT(Result<RenameReply> moved, c->rename(move(kRootInode, "f", kRootInode, "g")));
  CO_ASSERT_OK(moved);
  CO_ASSERT_TRUE(unlocked(c, kRootInode, "f", f->id));
  CO_ASSERT_TRUE(unlocked(c, kRootInode, "g", f->id));
  CO_ASSERT_EQ(c->nlink(f->id), 2u);
}

RENAME_TEST(InAStickyDirectoryNeedsOwnership) {
  CO_AWAIT(Status opened, c->set_mode(kRootInode, 01777));
  CO_ASSERT_OK(opened);
  CO_AWAIT(Result<Inode> f, c->add_file(kRootInode, "f", 1000));
  CO_ASSERT_OK(f);
  CO_AWAIT(InodeId d, dir_in(c, kRootInode, "d"));
  CO_AWAIT(Status open_d, c->set_mode(d, 0777));
  CO_ASSERT_OK(open_d);
  RenameRequest other = move(kRootInode, "f", d, "f");
  other.cred = user(2000);
  CO_AWAIT(Result<RenameReply> refused, c->rename(other));
  CO_ASSERT_EQ(refused.status().code(), StatusCode::kNotPermitted);
  other.cred = user(1000);
  CO_AWAIT(Result<RenameReply> owner, c->rename(other));
  CO_ASSERT_OK(owner);
  CO_ASSERT_TRUE(unlocked(c, d, "f", f->id));
}

RENAME_TEST(ARetriedTagGetsTheFirstAnswer) {
  CO_AWAIT(InodeId a, dir_in(c, kRootInode, "a"));
  CO_AWAIT(InodeId b, dir_in(c, kRootInode, "b"));
  RenameRequest request = move(kRootInode, "a", b, "a");
  request.tag = RequestTag{.client = 3, .request = 17};
  CO_AWAIT(Result<RenameReply> first, c->rename(request));
  CO_ASSERT_OK(first);
  CO_AWAIT(Result<RenameReply> retry, c->rename(request));
  CO_ASSERT_OK(retry);
  CO_ASSERT_EQ(retry->moved.id, a);
  CO_ASSERT_TRUE(unlocked(c, b, "a", a));
}

}  // namespace
}  // namespace mica::meta::testing
