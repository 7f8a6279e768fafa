// Shard::rename's POSIX rules for non-directories inside one shard: move, replace,
// RENAME_NOREPLACE, RENAME_EXCHANGE, a rename onto the same inode, the sticky rule,
// permissions on both parents, and the cases that are the coordinator's (nullopt).
#include <gtest/gtest.h>

#include "tests/meta/ops_test_util.h"

namespace mica::meta {
namespace {

using testing::create_request;
using testing::gc_count;
using testing::link_request;
using testing::make_dir;
using testing::peek_entry;
using testing::peek_inode;
using testing::rename_request;
using testing::user;

const Credentials kAlice = user(1000, 1000);
const Credentials kBob = user(1001, 1001);

// Makes file `name` in parent as cred and answers its inode (asserting success).
Task<Result<Inode>> make_file(Shard* shard, Credentials cred, InodeId parent,
                              std::string name) {
  CreateRequest request = create_request(std::move(cred), parent, std::move(name),
                                         InodeType::kFile, 0644);
  OPS_AWAIT(auto created, shard->create(request));
  CO_TRY(created);
  co_return created->inode;
}

MICA_CO_TEST(RenameRules, MovesAFileBetweenDirectoriesOfTheShard) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto from, make_dir(&shard, kRootInode, "from", 0, 0, 0777));
  OPS_AWAIT(auto to, make_dir(&shard, kRootInode, "to", 0, 0, 0777));
  CO_ASSERT_OK(from);
  CO_ASSERT_OK(to);
  OPS_AWAIT(auto file, make_file(&shard, kAlice, from->id, "a"));
  CO_ASSERT_OK(file);
  RenameRequest request = rename_request(kAlice, from->id, "a", to->id, "b");
  OPS_AWAIT(auto renamed, shard.rename(request));
  CO_ASSERT_OK(renamed);
  CO_ASSERT_TRUE(renamed->has_value());
  EXPECT_EQ((*renamed)->moved.id, file->id);
  EXPECT_FALSE((*renamed)->replaced.has_value());
  EXPECT_GE((*renamed)->moved.ctime_ns, file->ctime_ns);
  auto old_entry = peek_entry(shard, from->id, "a");
  auto new_entry = peek_entry(shard, to->id, "b");
  CO_ASSERT_OK(old_entry);
  CO_ASSERT_OK(new_entry);
  EXPECT_FALSE(old_entry->has_value());
  CO_ASSERT_TRUE(new_entry->has_value());
  EXPECT_EQ((*new_entry)->inode, file->id);
  for (InodeId dir : {from->id, to->id}) {
    auto parent = peek_inode(shard, dir);
    CO_ASSERT_OK(parent);
    EXPECT_EQ((*parent)->mtime_ns, (*renamed)->moved.ctime_ns);
    EXPECT_EQ((*parent)->ctime_ns, (*renamed)->moved.ctime_ns);
    EXPECT_EQ((*parent)->nlink, 2u);  // a file moving changes no directory's nlink
  }
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(RenameRules, ReplacingDropsTheTargetsLinkAndQueuesItsGc) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto a, make_file(&shard, testing::root(), kRootInode, "a"));
  OPS_AWAIT(auto b, make_file(&shard, testing::root(), kRootInode, "b"));
  CO_ASSERT_OK(a);
  CO_ASSERT_OK(b);
  RenameRequest request = rename_request(testing::root(), kRootInode, "a", kRootInode, "b");
  OPS_AWAIT(auto renamed, shard.rename(request));
  CO_ASSERT_OK(renamed);
  CO_ASSERT_TRUE(renamed->has_value());
  CO_ASSERT_TRUE((*renamed)->replaced.has_value());
  EXPECT_EQ((*renamed)->replaced->id, b->id);
  EXPECT_EQ((*renamed)->replaced->nlink, 0u);
  EXPECT_TRUE((*renamed)->replaced_reclaimed);
  auto entry = peek_entry(shard, kRootInode, "b");
  CO_ASSERT_OK(entry);
  EXPECT_EQ((*entry)->inode, a->id);
  auto gone = peek_inode(shard, b->id);
  CO_ASSERT_OK(gone);
  EXPECT_FALSE(gone->has_value());
  auto queued = gc_count(shard);
  CO_ASSERT_OK(queued);
  EXPECT_EQ(*queued, 1u);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(RenameRules, NoreplaceOverAnExistingNameIsAlreadyExists) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto a, make_file(&shard, testing::root(), kRootInode, "a"));
  OPS_AWAIT(auto b, make_file(&shard, testing::root(), kRootInode, "b"));
  CO_ASSERT_OK(a);
  CO_ASSERT_OK(b);
  RenameRequest request = rename_request(testing::root(), kRootInode, "a", kRootInode, "b");
  request.noreplace = true;
  OPS_AWAIT(auto renamed, shard.rename(request));
  EXPECT_EQ(renamed.status().code(), StatusCode::kAlreadyExists);
  request.new_name = "c";
  OPS_AWAIT(auto moved, shard.rename(request));
  CO_ASSERT_OK(moved);
  CO_ASSERT_TRUE(moved->has_value());
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(RenameRules, ExchangeSwapsTwoNames) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "d", 0, 0, 0777));
  CO_ASSERT_OK(dir_made);
  OPS_AWAIT(auto a, make_file(&shard, testing::root(), kRootInode, "a"));
  OPS_AWAIT(auto b, make_file(&shard, testing::root(), dir_made->id, "b"));
  CO_ASSERT_OK(a);
  CO_ASSERT_OK(b);
  RenameRequest request = rename_request(testing::root(), kRootInode, "a", dir_made->id, "b");
  request.exchange = true;
  OPS_AWAIT(auto renamed, shard.rename(request));
  CO_ASSERT_OK(renamed);
  CO_ASSERT_TRUE(renamed->has_value());
  EXPECT_EQ((*renamed)->replaced->nlink, 1u);
  EXPECT_FALSE((*renamed)->replaced_reclaimed);
  auto at_a = peek_entry(shard, kRootInode, "a");
  auto at_b = peek_entry(shard, dir_made->id, "b");
  CO_ASSERT_OK(at_a);
  CO_ASSERT_OK(at_b);
  EXPECT_EQ((*at_a)->inode, b->id);
  EXPECT_EQ((*at_b)->inode, a->id);
  request.new_name = "missing";
  OPS_AWAIT(auto none, shard.rename(request));
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(RenameRules, RenameOntoTheSameInodeDoesNothing) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(Status root_mode, testing::poke_inode(&shard, kRootInode, [](Inode& root) {
              root.uid = 0;
              root.mode = 0755;
            }));
  CO_ASSERT_OK(root_mode);
  OPS_AWAIT(auto a, make_file(&shard, testing::root(), kRootInode, "a"));
  CO_ASSERT_OK(a);
  LinkRequest link = link_request(testing::root(), a->id, kRootInode, "b");
  OPS_AWAIT(auto linked, shard.link(link));
  CO_ASSERT_OK(linked);
  for (std::string target : {"a", "b"}) {
    RenameRequest request = rename_request(kBob, kRootInode, "a", kRootInode, target);
    OPS_AWAIT(auto renamed, shard.rename(request));
    CO_ASSERT_OK(renamed) << target;  // even without write on the parent, as Linux
    CO_ASSERT_TRUE(renamed->has_value());
    EXPECT_EQ((*renamed)->moved.id, a->id);
  }
  auto at_a = peek_entry(shard, kRootInode, "a");
  auto at_b = peek_entry(shard, kRootInode, "b");
  CO_ASSERT_OK(at_a);
  CO_ASSERT_OK(at_b);
  EXPECT_TRUE(at_a->has_value());
  EXPECT_TRUE(at_b->has_value());
  auto inode = peek_inode(shard, a->id);
  CO_ASSERT_OK(inode);
  EXPECT_EQ((*inode)->nlink, 2u);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(RenameRules, NeedsWriteOnBothParents) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto open_dir, make_dir(&shard, kRootInode, "open", 0, 0, 0777));
  OPS_AWAIT(auto closed_dir, make_dir(&shard, kRootInode, "closed", 0, 0, 0755));
  CO_ASSERT_OK(open_dir);
  CO_ASSERT_OK(closed_dir);
  OPS_AWAIT(auto a, make_file(&shard, kBob, open_dir->id, "a"));
  OPS_AWAIT(auto c, make_file(&shard, testing::root(), closed_dir->id, "c"));
  CO_ASSERT_OK(a);
  CO_ASSERT_OK(c);
  RenameRequest into = rename_request(kBob, open_dir->id, "a", closed_dir->id, "a");
  OPS_AWAIT(auto refused_into, shard.rename(into));
  EXPECT_EQ(refused_into.status().code(), StatusCode::kPermissionDenied);
  RenameRequest out = rename_request(kBob, closed_dir->id, "c", open_dir->id, "c");
  OPS_AWAIT(auto refused_out, shard.rename(out));
  EXPECT_EQ(refused_out.status().code(), StatusCode::kPermissionDenied);
  auto still = peek_entry(shard, open_dir->id, "a");
  CO_ASSERT_OK(still);
  EXPECT_TRUE(still->has_value());
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(RenameRules, StickyDirectoryGuardsSourceAndTarget) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto tmp, make_dir(&shard, kRootInode, "tmp", 0, 0, 01777));
  CO_ASSERT_OK(tmp);
  OPS_AWAIT(auto alices, make_file(&shard, kAlice, tmp->id, "alices"));
  OPS_AWAIT(auto bobs, make_file(&shard, kBob, tmp->id, "bobs"));
  CO_ASSERT_OK(alices);
  CO_ASSERT_OK(bobs);
  RenameRequest move_other = rename_request(kBob, tmp->id, "alices", tmp->id, "x");
  OPS_AWAIT(auto refused, shard.rename(move_other));
  EXPECT_EQ(refused.status().code(), StatusCode::kNotPermitted);
  RenameRequest over_other = rename_request(kBob, tmp->id, "bobs", tmp->id, "alices");
  OPS_AWAIT(auto refused_over, shard.rename(over_other));
  EXPECT_EQ(refused_over.status().code(), StatusCode::kNotPermitted);
  RenameRequest own = rename_request(kBob, tmp->id, "bobs", tmp->id, "mine");
  OPS_AWAIT(auto moved, shard.rename(own));
  CO_ASSERT_OK(moved);
  CO_ASSERT_TRUE(moved->has_value());
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(RenameRules, DirectoryOperandOrAnotherShardIsTheCoordinators) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "d", 0, 0, 0777));
  OPS_AWAIT(auto a, make_file(&shard, testing::root(), kRootInode, "a"));
  CO_ASSERT_OK(dir_made);
  CO_ASSERT_OK(a);
  RenameRequest move_dir = rename_request(testing::root(), kRootInode, "d", kRootInode, "e");
  RenameRequest over_dir = rename_request(testing::root(), kRootInode, "a", kRootInode, "d");
  RenameRequest elsewhere =
      rename_request(testing::root(), kRootInode, "a", make_inode_id(1, 1), "a");
  for (RenameRequest* request : {&move_dir, &over_dir, &elsewhere}) {
    OPS_AWAIT(auto renamed, shard.rename(*request));
    CO_ASSERT_OK(renamed);
    EXPECT_FALSE(renamed->has_value()) << request->name << " -> " << request->new_name;
  }
  auto entry = peek_entry(shard, kRootInode, "a");
  CO_ASSERT_OK(entry);
  EXPECT_TRUE(entry->has_value());
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(RenameRules, MissingSourceIsNotFoundAndBadNamesAreInvalid) {
  OPS_OPEN_SHARD(shard);
  RenameRequest missing = rename_request(testing::root(), kRootInode, "no", kRootInode, "x");
  OPS_AWAIT(auto none, shard.rename(missing));
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  OPS_AWAIT(auto a, make_file(&shard, testing::root(), kRootInode, "a"));
  CO_ASSERT_OK(a);
  RenameRequest slash = rename_request(testing::root(), kRootInode, "a", kRootInode, "x/y");
  OPS_AWAIT(auto invalid, shard.rename(slash));
  EXPECT_EQ(invalid.status().code(), StatusCode::kInvalidArgument);
  RenameRequest too_long =
      rename_request(testing::root(), kRootInode, "a", kRootInode, std::string(256, 'n'));
  OPS_AWAIT(auto long_name, shard.rename(too_long));
  EXPECT_EQ(long_name.status().code(), StatusCode::kNameTooLong);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(RenameRules, RetryWithTheSameTagAppliesOnceAndAnswersTheSame) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto a, make_file(&shard, testing::root(), kRootInode, "a"));
  OPS_AWAIT(auto b, make_file(&shard, testing::root(), kRootInode, "b"));
  CO_ASSERT_OK(a);
  CO_ASSERT_OK(b);
  RenameRequest request = rename_request(testing::root(), kRootInode, "a", kRootInode, "b");
  request.tag = RequestTag{.client = 4, .request = 8};
  OPS_AWAIT(auto first, shard.rename(request));
  CO_ASSERT_OK(first);
  CO_ASSERT_TRUE(first->has_value());
  OPS_AWAIT(auto again, shard.rename(request));
  CO_ASSERT_OK(again);  // not kNotFound ("a" is gone): the remembered answer
  CO_ASSERT_TRUE(again->has_value());
  EXPECT_EQ((*again)->moved.id, a->id);
  EXPECT_EQ((*again)->replaced->id, b->id);
  EXPECT_TRUE((*again)->replaced_reclaimed);
  auto queued = gc_count(shard);
  CO_ASSERT_OK(queued);
  EXPECT_EQ(*queued, 1u);
  OPS_CLOSE_SHARD(shard);
}

}  // namespace
}  // namespace mica::meta
