// Shard::create's POSIX rules (create, mknod, symlink, create with open): every refusal
// with the status that maps to Linux's errno, and what a create writes (inode, entry,
// layout, times, group, session), on a shard on real LMDB files.
#include <gtest/gtest.h>

#include "tests/meta/ops_test_util.h"

namespace mica::meta {
namespace {

using testing::create_request;
using testing::make_dir;
using testing::peek_entry;
using testing::peek_inode;
using testing::poke_inode;
using testing::session_count;
using testing::user;

const Credentials kAlice = user(1000, 1000);
const Credentials kBob = user(1001, 1001);

MICA_CO_TEST(CreateRules, FileGetsInodeEntryLayoutAndTimes) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "w", 1000, 1000, 0755));
  CO_ASSERT_OK(dir_made);
  CreateRequest request = create_request(kAlice, dir_made->id, "f", InodeType::kFile, 0640);
  OPS_AWAIT(auto created, shard.create(request));
  CO_ASSERT_OK(created);
  const Inode& inode = created->inode;
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->session, 0u);
  EXPECT_EQ(shard_of(inode.id), 0u);
  EXPECT_EQ(inode.type, InodeType::kFile);
  EXPECT_EQ(inode.mode, 0640u);
  EXPECT_EQ(inode.uid, 1000u);
  EXPECT_EQ(inode.gid, 1000u);
  EXPECT_EQ(inode.nlink, 1u);
  EXPECT_EQ(inode.length, 0u);
  EXPECT_EQ(inode.layout.table, 1u);
  EXPECT_EQ(inode.layout.stripe, 4u);
  EXPECT_GT(inode.layout.chunk_size_bytes, 0u);
  EXPECT_EQ(inode.atime_ns, inode.mtime_ns);
  EXPECT_EQ(inode.ctime_ns, inode.mtime_ns);
  auto stored = peek_inode(shard, inode.id);
  CO_ASSERT_OK(stored);
  CO_ASSERT_TRUE(stored->has_value());
  EXPECT_EQ((*stored)->layout.seed, inode.layout.seed);
  EXPECT_EQ((*stored)->layout.start, inode.layout.start);
  auto entry = peek_entry(shard, dir_made->id, "f");
  CO_ASSERT_OK(entry);
  CO_ASSERT_TRUE(entry->has_value());
  EXPECT_EQ((*entry)->inode, inode.id);
  EXPECT_EQ((*entry)->type, InodeType::kFile);
  // The parent: m/ctime of the create, nlink unchanged for a file.
  auto parent = peek_inode(shard, dir_made->id);
  CO_ASSERT_OK(parent);
  EXPECT_EQ((*parent)->mtime_ns, inode.ctime_ns);
  EXPECT_EQ((*parent)->ctime_ns, inode.ctime_ns);
  EXPECT_EQ((*parent)->nlink, 2u);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, NewFilesRotateTheLayoutStartAndSeed) {
  OPS_OPEN_SHARD(shard);
  CreateRequest first = create_request(testing::root(), kRootInode, "a");
  CreateRequest second = create_request(testing::root(), kRootInode, "b");
  OPS_AWAIT(auto a, shard.create(first));
  OPS_AWAIT(auto b, shard.create(second));
  CO_ASSERT_OK(a);
  CO_ASSERT_OK(b);
  EXPECT_NE(a->inode.layout.start, b->inode.layout.start);
  EXPECT_NE(a->inode.layout.seed, b->inode.layout.seed);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, MissingParentIsNotFound) {
  OPS_OPEN_SHARD(shard);
  CreateRequest request = create_request(kAlice, make_inode_id(0, 999), "f");
  OPS_AWAIT(auto created, shard.create(request));
  EXPECT_EQ(created.status().code(), StatusCode::kNotFound);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, ParentThatIsAFileIsNotADirectory) {
  OPS_OPEN_SHARD(shard);
  CreateRequest file = create_request(testing::root(), kRootInode, "f");
  OPS_AWAIT(auto made, shard.create(file));
  CO_ASSERT_OK(made);
  CreateRequest request = create_request(testing::root(), made->inode.id, "g");
  OPS_AWAIT(auto created, shard.create(request));
  EXPECT_EQ(created.status().code(), StatusCode::kNotDirectory);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, NoWriteOnParentIsPermissionDenied) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "w", 1000, 1000, 0755));
  CO_ASSERT_OK(dir_made);
  for (InodeType type : {InodeType::kFile, InodeType::kFifo, InodeType::kSymlink}) {
    CreateRequest request = create_request(kBob, dir_made->id, "f", type);
    request.symlink_target = "t";
    OPS_AWAIT(auto created, shard.create(request));
    EXPECT_EQ(created.status().code(), StatusCode::kPermissionDenied) << inode_type_name(type);
  }
  auto entry = peek_entry(shard, dir_made->id, "f");
  CO_ASSERT_OK(entry);
  EXPECT_FALSE(entry->has_value());
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, NoSearchOnParentIsPermissionDenied) {
  OPS_OPEN_SHARD(shard);
  // Write without search (0666 for others) is not enough.
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "w", 1000, 1000, 0776));
  CO_ASSERT_OK(dir_made);
  CreateRequest request = create_request(kBob, dir_made->id, "f");
  OPS_AWAIT(auto created, shard.create(request));
  EXPECT_EQ(created.status().code(), StatusCode::kPermissionDenied);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, GroupAndSupplementaryGroupGiveWrite) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "w", 1000, 2000, 0775));
  CO_ASSERT_OK(dir_made);
  CreateRequest outsider = create_request(kBob, dir_made->id, "a");
  OPS_AWAIT(auto refused, shard.create(outsider));
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  CreateRequest member = create_request(user(1001, 1001, {2000}), dir_made->id, "a");
  OPS_AWAIT(auto created, shard.create(member));
  CO_ASSERT_OK(created);
  EXPECT_EQ(created->inode.gid, 1001u);  // the caller's group: the parent is not SGID
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, RootBypassesWriteAndSearch) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "w", 1000, 1000, 0));
  CO_ASSERT_OK(dir_made);
  CreateRequest request = create_request(testing::root(), dir_made->id, "f");
  OPS_AWAIT(auto created, shard.create(request));
  CO_ASSERT_OK(created);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, ExistingNameIsAlreadyExistsForEveryType) {
  OPS_OPEN_SHARD(shard);
  CreateRequest first = create_request(testing::root(), kRootInode, "x");
  OPS_AWAIT(auto made, shard.create(first));
  CO_ASSERT_OK(made);
  for (InodeType type : {InodeType::kFile, InodeType::kFifo, InodeType::kSocket,
                         InodeType::kCharDevice, InodeType::kSymlink}) {
    CreateRequest again = create_request(testing::root(), kRootInode, "x", type);
    again.symlink_target = "t";
    OPS_AWAIT(auto created, shard.create(again));
    EXPECT_EQ(created.status().code(), StatusCode::kAlreadyExists) << inode_type_name(type);
  }
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, ExistingNameWinsOverMissingWrite) {
  // Linux looks the name up before it checks write on the parent: EEXIST, not EACCES.
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "w", 1000, 1000, 0755));
  CO_ASSERT_OK(dir_made);
  CreateRequest first = create_request(kAlice, dir_made->id, "x");
  OPS_AWAIT(auto made, shard.create(first));
  CO_ASSERT_OK(made);
  CreateRequest again = create_request(kBob, dir_made->id, "x");
  OPS_AWAIT(auto created, shard.create(again));
  EXPECT_EQ(created.status().code(), StatusCode::kAlreadyExists);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, ExclusiveOpenOfAnExistingNameIsAlreadyExists) {
  OPS_OPEN_SHARD(shard);
  CreateRequest first = create_request(testing::root(), kRootInode, "x");
  OPS_AWAIT(auto made, shard.create(first));
  CO_ASSERT_OK(made);
  CreateRequest again = create_request(testing::root(), kRootInode, "x");
  again.open = true;
  again.flags = OpenFlags{.read = true, .write = true, .exclusive = true};
  OPS_AWAIT(auto created, shard.create(again));
  EXPECT_EQ(created.status().code(), StatusCode::kAlreadyExists);
  auto sessions = session_count(shard, made->inode.id);
  CO_ASSERT_OK(sessions);
  EXPECT_EQ(*sessions, 0u);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, CreateWithOpenWritesASession) {
  OPS_OPEN_SHARD(shard);
  CreateRequest request = create_request(kAlice, kRootInode, "f");
  request.cred = testing::root();
  request.tag = RequestTag{.client = 7, .request = 1};
  request.open = true;
  request.flags = OpenFlags{.write = true, .exclusive = true};
  OPS_AWAIT(auto created, shard.create(request));
  CO_ASSERT_OK(created);
  EXPECT_TRUE(created->created);
  EXPECT_NE(created->session, 0u);
  {
    ShardTxn txn = shard.begin();  // a read, never committed
    auto sessions = txn.sessions(created->inode.id);
    CO_ASSERT_OK(sessions);
    CO_ASSERT_EQ(sessions->size(), 1u);
    EXPECT_EQ((*sessions)[0].session, created->session);
    EXPECT_EQ((*sessions)[0].client, 7u);
    EXPECT_TRUE((*sessions)[0].flags.write);
  }
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, OpenOfAnExistingFileOpensItWithItsPermissions) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "w", 1000, 1000, 0777));
  CO_ASSERT_OK(dir_made);
  CreateRequest first = create_request(kAlice, dir_made->id, "f", InodeType::kFile, 0644);
  OPS_AWAIT(auto made, shard.create(first));
  CO_ASSERT_OK(made);
  CreateRequest writer = create_request(kBob, dir_made->id, "f");
  writer.open = true;
  writer.flags = OpenFlags{.write = true};
  OPS_AWAIT(auto refused, shard.create(writer));
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  CreateRequest reader = create_request(kBob, dir_made->id, "f");
  reader.open = true;
  reader.flags = OpenFlags{.read = true};
  OPS_AWAIT(auto opened, shard.create(reader));
  CO_ASSERT_OK(opened);
  EXPECT_FALSE(opened->created);
  EXPECT_EQ(opened->inode.id, made->inode.id);
  EXPECT_EQ(opened->inode.uid, 1000u);
  EXPECT_NE(opened->session, 0u);
  auto sessions = session_count(shard, made->inode.id);
  CO_ASSERT_OK(sessions);
  EXPECT_EQ(*sessions, 1u);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, TruncatingOpenOfAnEmptyFileStampsItsTimes) {
  OPS_OPEN_SHARD(shard);
  CreateRequest first = create_request(testing::root(), kRootInode, "f");
  OPS_AWAIT(auto made, shard.create(first));
  CO_ASSERT_OK(made);
  OPS_AWAIT(Status aged, poke_inode(&shard, made->inode.id, [](Inode& inode) {
              inode.mtime_ns = inode.ctime_ns = 1;
            }));
  CO_ASSERT_OK(aged);
  CreateRequest again = create_request(testing::root(), kRootInode, "f");
  again.open = true;
  again.flags = OpenFlags{.write = true, .truncate = true};
  OPS_AWAIT(auto opened, shard.create(again));
  CO_ASSERT_OK(opened);
  EXPECT_FALSE(opened->created);
  EXPECT_GT(opened->inode.mtime_ns, 1);
  EXPECT_EQ(opened->inode.ctime_ns, opened->inode.mtime_ns);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, TruncatingOpenOfAFileWithBytesCutsThroughTheStorageService) {
  // This shard has no storage client: the cut is refused and nothing is opened.
  OPS_OPEN_SHARD(shard);
  CreateRequest first = create_request(testing::root(), kRootInode, "f");
  OPS_AWAIT(auto made, shard.create(first));
  CO_ASSERT_OK(made);
  OPS_AWAIT(Status grown, poke_inode(&shard, made->inode.id,
                                     [](Inode& inode) { inode.length = 1 << 20; }));
  CO_ASSERT_OK(grown);
  CreateRequest again = create_request(testing::root(), kRootInode, "f");
  again.open = true;
  again.flags = OpenFlags{.write = true, .truncate = true};
  OPS_AWAIT(auto opened, shard.create(again));
  EXPECT_EQ(opened.status().code(), StatusCode::kNotSupported);
  auto sessions = session_count(shard, made->inode.id);
  CO_ASSERT_OK(sessions);
  EXPECT_EQ(*sessions, 0u);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, OpenOfAnExistingDirectoryIsIsDirectory) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "d", 0, 0, 0755));
  CO_ASSERT_OK(dir_made);
  CreateRequest request = create_request(testing::root(), kRootInode, "d");
  request.open = true;
  request.flags = OpenFlags{.read = true};
  OPS_AWAIT(auto created, shard.create(request));
  EXPECT_EQ(created.status().code(), StatusCode::kIsDirectory);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, NameOf256BytesIsTooLongAnd255IsFine) {
  OPS_OPEN_SHARD(shard);
  CreateRequest too_long = create_request(testing::root(), kRootInode, std::string(256, 'n'));
  OPS_AWAIT(auto refused, shard.create(too_long));
  EXPECT_EQ(refused.status().code(), StatusCode::kNameTooLong);
  CreateRequest longest = create_request(testing::root(), kRootInode, std::string(255, 'n'));
  OPS_AWAIT(auto created, shard.create(longest));
  CO_ASSERT_OK(created);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, SlashNulEmptyAndDotNamesAreInvalid) {
  OPS_OPEN_SHARD(shard);
  for (std::string name : {std::string("a/b"), std::string("a\0b", 3), std::string(),
                           std::string("."), std::string("..")}) {
    CreateRequest request = create_request(testing::root(), kRootInode, name);
    OPS_AWAIT(auto created, shard.create(request));
    EXPECT_EQ(created.status().code(), StatusCode::kInvalidArgument) << name;
  }
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, SgidParentPassesItsGroup) {
  OPS_OPEN_SHARD(shard);
  OPS_AWAIT(auto dir_made, make_dir(&shard, kRootInode, "w", 0, 3000, 02777));
  CO_ASSERT_OK(dir_made);
  CreateRequest file = create_request(kAlice, dir_made->id, "f", InodeType::kFile, 0644);
  OPS_AWAIT(auto created, shard.create(file));
  CO_ASSERT_OK(created);
  EXPECT_EQ(created->inode.gid, 3000u);
  EXPECT_EQ(created->inode.mode, 0644u);
  // SGID on a group-executable file of a group the caller is not in is dropped.
  CreateRequest sgid = create_request(kAlice, dir_made->id, "g", InodeType::kFile, 02755);
  OPS_AWAIT(auto dropped, shard.create(sgid));
  CO_ASSERT_OK(dropped);
  EXPECT_EQ(dropped->inode.gid, 3000u);
  EXPECT_EQ(dropped->inode.mode, 0755u);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, MknodMakesEveryNonDirectoryType) {
  OPS_OPEN_SHARD(shard);
  struct Case {
    InodeType type;
    uint64_t rdev;
  };
  for (Case c : {Case{InodeType::kFile, 0}, Case{InodeType::kFifo, 0},
                 Case{InodeType::kSocket, 0}, Case{InodeType::kCharDevice, 0x0103},
                 Case{InodeType::kBlockDevice, 0x0801}}) {
    CreateRequest request = create_request(testing::root(), kRootInode,
                                           std::string(inode_type_name(c.type)), c.type, 0600);
    request.rdev = c.rdev;
    OPS_AWAIT(auto created, shard.create(request));
    CO_ASSERT_OK(created) << inode_type_name(c.type);
    EXPECT_EQ(created->inode.type, c.type);
    EXPECT_EQ(created->inode.rdev, c.rdev);
    EXPECT_EQ(created->inode.mode, 0600u);
    auto entry = peek_entry(shard, kRootInode, inode_type_name(c.type));
    CO_ASSERT_OK(entry);
    CO_ASSERT_TRUE(entry->has_value());
    EXPECT_EQ((*entry)->type, c.type);
  }
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, DirectoryTypeIsInvalid) {
  OPS_OPEN_SHARD(shard);
  CreateRequest request =
      create_request(testing::root(), kRootInode, "d", InodeType::kDirectory, 0755);
  OPS_AWAIT(auto created, shard.create(request));
  EXPECT_EQ(created.status().code(), StatusCode::kInvalidArgument);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, SymlinkKeepsItsTarget) {
  OPS_OPEN_SHARD(shard);
  CreateRequest request =
      create_request(testing::root(), kRootInode, "l", InodeType::kSymlink, 0600);
  request.symlink_target = "../some/where";
  OPS_AWAIT(auto created, shard.create(request));
  CO_ASSERT_OK(created);
  EXPECT_EQ(created->inode.symlink_target, "../some/where");
  EXPECT_EQ(created->inode.length, 13u);
  EXPECT_EQ(created->inode.mode, 0777u);  // a symlink's mode is always 0777
  EXPECT_EQ(created->inode.layout.stripe, 0u);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, SymlinkTargetPastTheMaximumIsTooLongAndEmptyIsNotFound) {
  OPS_OPEN_SHARD(shard);
  CreateRequest longest =
      create_request(testing::root(), kRootInode, "a", InodeType::kSymlink, 0777);
  longest.symlink_target = std::string(kSymlinkMax, 't');
  OPS_AWAIT(auto created, shard.create(longest));
  CO_ASSERT_OK(created);
  CreateRequest too_long =
      create_request(testing::root(), kRootInode, "b", InodeType::kSymlink, 0777);
  too_long.symlink_target = std::string(kSymlinkMax + 1, 't');
  OPS_AWAIT(auto refused, shard.create(too_long));
  EXPECT_EQ(refused.status().code(), StatusCode::kNameTooLong);
  // Linux: symlink("", path) is ENOENT.
  CreateRequest empty =
      create_request(testing::root(), kRootInode, "c", InodeType::kSymlink, 0777);
  OPS_AWAIT(auto none, shard.create(empty));
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, ALockedNameIsBusy) {
  OPS_OPEN_SHARD(shard);
  DirEntry locked{.inode = make_inode_id(0, 500), .type = InodeType::kDirectory,
                  .locked_by = 9, .created_locked = true};
  OPS_AWAIT(Status put, testing::put_raw_entry(&shard, kRootInode, "taken", locked));
  CO_ASSERT_OK(put);
  CreateRequest request = create_request(testing::root(), kRootInode, "taken");
  OPS_AWAIT(auto created, shard.create(request));
  EXPECT_EQ(created.status().code(), StatusCode::kBusy);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, FileWithoutAChainTableIsNotFoundButAFifoIsMade) {
  auto opening = testing::open_ops_shard(dir.path, /*with_routing=*/false);
  auto world = co_await std::move(opening);
  CO_ASSERT_OK(world);
  Shard& shard = *(*world)->shard;
  CreateRequest file = create_request(testing::root(), kRootInode, "f");
  OPS_AWAIT(auto refused, shard.create(file));
  EXPECT_EQ(refused.status().code(), StatusCode::kNotFound);
  auto entry = peek_entry(shard, kRootInode, "f");
  CO_ASSERT_OK(entry);
  EXPECT_FALSE(entry->has_value());
  CreateRequest fifo = create_request(testing::root(), kRootInode, "p", InodeType::kFifo);
  OPS_AWAIT(auto made, shard.create(fifo));
  CO_ASSERT_OK(made);
  OPS_CLOSE_SHARD(shard);
}

MICA_CO_TEST(CreateRules, RetryWithTheSameTagAppliesOnceAndAnswersTheSame) {
  OPS_OPEN_SHARD(shard);
  CreateRequest request = create_request(testing::root(), kRootInode, "f");
  request.tag = RequestTag{.client = 3, .request = 44};
  request.open = true;
  request.flags = OpenFlags{.write = true, .exclusive = true};
  OPS_AWAIT(auto first, shard.create(request));
  CO_ASSERT_OK(first);
  OPS_AWAIT(auto again, shard.create(request));
  CO_ASSERT_OK(again);  // not kAlreadyExists: the first answer, remembered
  EXPECT_EQ(again->inode.id, first->inode.id);
  EXPECT_EQ(again->session, first->session);
  EXPECT_TRUE(again->created);
  auto sessions = session_count(shard, first->inode.id);
  CO_ASSERT_OK(sessions);
  EXPECT_EQ(*sessions, 1u);
  // Another request with the same name is a new one.
  request.tag.request = 45;
  OPS_AWAIT(auto other, shard.create(request));
  EXPECT_EQ(other.status().code(), StatusCode::kAlreadyExists);
  OPS_CLOSE_SHARD(shard);
}

}  // namespace
}  // namespace mica::meta
