// Shard::setattr as a rule table (SetattrRequest's rules in meta/meta_service.h): chmod,
// chown, size and times, who may change each, the set-id bits they clear, every error, and
// a refused request changes nothing. Size changes that need the storage service are
// exercised with one in the sessions tests; here the shard has none.
#include <functional>

#include "tests/meta/shard_fixture.h"

namespace mica::meta {
namespace {

using testing::add_inode;
using testing::call;
using testing::NewInode;
using testing::open_test_shard;
using testing::root_cred;
using testing::test_shard_options;
using testing::user_cred;

Task<Status> close_shard(Shard* shard) {
  auto closing = shard->close();
  co_return co_await std::move(closing);
}

const Credentials kOwner = user_cred(5, 5);
const Credentials kOwnerInGroup = user_cred(5, 5, {6, 9});
const Credentials kGroup = user_cred(7, 6);
const Credentials kOther = user_cred(8, 8);

struct Row {
  const char* what;
  uint32_t mode;  // of the file (uid 5, gid 6) before
  uint64_t length;
  std::function<void(SetattrRequest&)> change;
  StatusCode code;
  std::function<void(const Inode&)> check;  // of the answer, when ok
};

SetattrRequest as(Credentials cred) {
  return SetattrRequest{.cred = std::move(cred)};
}

std::function<void(const Inode&)> mode_is(uint32_t mode) {
  return [mode](const Inode& i) { EXPECT_EQ(i.mode, mode) << std::oct << i.mode; };
}

std::vector<Row> chmod_rules() {
  return {
      // chmod: owner or root
      {"owner chmod", 0644, 0,
       [](auto& r) {
         r = as(kOwner);
         r.mode = 0600;
       },
       StatusCode::kOk, mode_is(0600)},
      {"root chmod", 0644, 0,
       [](auto& r) {
         r = as(root_cred());
         r.mode = 04711;
       },
       StatusCode::kOk, mode_is(04711)},
      {"other chmod", 0666, 0,
       [](auto& r) {
         r = as(kOther);
         r.mode = 0600;
       },
       StatusCode::kNotPermitted, nullptr},
      {"owner outside the group sets SGID", 0644, 0,
       [](auto& r) {
         r = as(kOwner);
         r.mode = 02755;
       },
       StatusCode::kOk, mode_is(0755)},
      {"owner in the group sets SGID", 0644, 0,
       [](auto& r) {
         r = as(kOwnerInGroup);
         r.mode = 02755;
       },
       StatusCode::kOk, mode_is(02755)},
      // all or nothing: an allowed part does not happen when another is refused
      {"chmod with a refused chown", 0644, 0,
       [](auto& r) {
         r = as(kOwner);
         r.mode = 0600;
         r.uid = 8;
       },
       StatusCode::kNotPermitted, nullptr},
  };
}

std::vector<Row> chown_rules() {
  return {
      // chown: uid by root only; gid by the owner to one of its groups
      {"owner gives the file away", 0644, 0,
       [](auto& r) {
         r = as(kOwner);
         r.uid = 8;
       },
       StatusCode::kNotPermitted, nullptr},
      {"owner keeps its uid", 0644, 0,
       [](auto& r) {
         r = as(kOwner);
         r.uid = 5;
       },
       StatusCode::kOk, nullptr},
      {"other sets the same uid", 0644, 0,
       [](auto& r) {
         r = as(kOther);
         r.uid = 5;
       },
       StatusCode::kNotPermitted, nullptr},
      {"root chown clears SUID and SGID", 06755, 0,
       [](auto& r) {
         r = as(root_cred());
         r.uid = 8;
       },
       StatusCode::kOk,
       [](const Inode& i) {
         EXPECT_EQ(i.uid, 8u);
         EXPECT_EQ(i.mode, 0755u);
       }},
      {"chown keeps SGID without group x", 06745, 0,
       [](auto& r) {
         r = as(root_cred());
         r.gid = 0;
       },
       StatusCode::kOk, mode_is(02745)},
      {"owner chgrp to its group", 04755, 0,
       [](auto& r) {
         r = as(kOwnerInGroup);
         r.gid = 9;
       },
       StatusCode::kOk,
       [](const Inode& i) {
         EXPECT_EQ(i.gid, 9u);
         EXPECT_EQ(i.mode, 0755u);
       }},
      {"owner chgrp elsewhere", 0644, 0,
       [](auto& r) {
         r = as(kOwnerInGroup);
         r.gid = 10;
       },
       StatusCode::kNotPermitted, nullptr},
      {"group member chgrp", 0664, 0,
       [](auto& r) {
         r = as(kGroup);
         r.gid = 6;
       },
       StatusCode::kNotPermitted, nullptr},
  };
}

std::vector<Row> size_rules() {
  return {
      // size: write permission
      {"owner grows", 0644, 0,
       [](auto& r) {
         r = as(kOwner);
         r.size = 1 << 20;
       },
       StatusCode::kOk, [](const Inode& i) { EXPECT_EQ(i.length, 1u << 20); }},
      {"group without w", 0644, 0,
       [](auto& r) {
         r = as(kGroup);
         r.size = 10;
       },
       StatusCode::kPermissionDenied, nullptr},
      {"other without w", 0664, 0,
       [](auto& r) {
         r = as(kOther);
         r.size = 10;
       },
       StatusCode::kPermissionDenied, nullptr},
      {"a non-owner's write clears SUID", 06777, 0,
       [](auto& r) {
         r = as(kOther);
         r.size = 10;
       },
       StatusCode::kOk, mode_is(0777)},
      {"the owner's write clears SUID too", 06777, 0,
       [](auto& r) {
         r = as(kOwner);
         r.size = 10;
       },
       StatusCode::kOk, mode_is(0777)},
      {"shrink without storage", 0644, 100,
       [](auto& r) {
         r = as(kOwner);
         r.size = 10;
       },
       StatusCode::kNotSupported, nullptr},
      {"same size without storage", 0644, 100,
       [](auto& r) {
         r = as(kOwner);
         r.size = 100;
       },
       StatusCode::kOk, nullptr},
      {"a stale session", 0600, 0,
       [](auto& r) {
         r = as(kOther);
         r.size = 10;
         r.session = 12345;
       },
       StatusCode::kStaleSession, nullptr},
  };
}

std::vector<Row> time_rules() {
  return {
      // times: both now with write permission or ownership, anything else owner or root
      {"other touches with w", 0666, 0,
       [](auto& r) {
         r = as(kOther);
         r.atime = TimeSet::kNow;
         r.mtime = TimeSet::kNow;
       },
       StatusCode::kOk, nullptr},
      {"other sets one time now, omits the other, with w", 0666, 0,
       [](auto& r) {
         r = as(kOther);
         r.mtime = TimeSet::kNow;
       },
       StatusCode::kNotPermitted, nullptr},
      {"other sets now and a value with w", 0666, 0,
       [](auto& r) {
         r = as(kOther);
         r.atime = TimeSet::kNow;
         r.mtime = TimeSet::kValue;
         r.mtime_ns = 7;
       },
       StatusCode::kNotPermitted, nullptr},
      {"other touches without w", 0644, 0,
       [](auto& r) {
         r = as(kOther);
         r.atime = TimeSet::kNow;
         r.mtime = TimeSet::kNow;
       },
       StatusCode::kPermissionDenied, nullptr},
      {"owner touches without w", 0444, 0,
       [](auto& r) {
         r = as(kOwner);
         r.atime = TimeSet::kNow;
       },
       StatusCode::kOk, nullptr},
      {"other sets a time with w", 0666, 0,
       [](auto& r) {
         r = as(kOther);
         r.mtime = TimeSet::kValue;
         r.mtime_ns = 7;
       },
       StatusCode::kNotPermitted, nullptr},
      {"owner sets times", 0444, 0,
       [](auto& r) {
         r = as(kOwner);
         r.atime = TimeSet::kValue;
         r.atime_ns = 11;
         r.mtime = TimeSet::kValue;
         r.mtime_ns = 22;
       },
       StatusCode::kOk,
       [](const Inode& i) {
         EXPECT_EQ(i.atime_ns, 11);
         EXPECT_EQ(i.mtime_ns, 22);
       }},
  };
}

std::vector<Row> rules() {
  std::vector<Row> all;
  for (auto part : {chmod_rules(), chown_rules(), size_rules(), time_rules()}) {
    for (Row& row : part) all.push_back(std::move(row));
  }
  return all;
}

MICA_CO_TEST(Setattr, FollowsTheRuleTable) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  Shard* s = shard->get();
  auto adding = add_inode(s, kRootInode, "f", NewInode{.uid = 5, .gid = 6});
  auto file = co_await std::move(adding);
  CO_ASSERT_OK(file);
  for (const Row& row : rules()) {
    Inode base = *file;
    base.mode = row.mode;
    base.length = row.length;
    base.ctime_ns = 1;
    base.layout.chunk_size_bytes = 1 << 20;
    auto resetting = testing::put_inode(s, base);
    CO_ASSERT_OK(co_await std::move(resetting));
    SetattrRequest request;
    row.change(request);
    request.inode = file->id;
    auto setting = call(s, &Shard::setattr, request);
    auto reply = co_await std::move(setting);
    EXPECT_EQ(reply.status().code(), row.code) << row.what << ": " << reply.status();
    auto stored = testing::stored_inode(s, file->id);
    CO_ASSERT_OK(stored);
    if (!reply.ok()) {
      EXPECT_EQ(stored->mode, base.mode) << row.what;
      EXPECT_EQ(stored->uid, base.uid) << row.what;
      EXPECT_EQ(stored->length, base.length) << row.what;
      EXPECT_EQ(stored->ctime_ns, 1) << row.what << ": a refused request changed ctime";
      continue;
    }
    EXPECT_GT(reply->inode.ctime_ns, 1) << row.what << ": ctime always changes";
    EXPECT_EQ(stored->ctime_ns, reply->inode.ctime_ns) << row.what;
    EXPECT_EQ(stored->mode, reply->inode.mode) << row.what;
    if (row.check) {
      SCOPED_TRACE(row.what);
      row.check(reply->inode);
    }
  }
  CO_ASSERT_OK(co_await close_shard(s));
}

MICA_CO_TEST(Setattr, SizeNeedsAFileAndAnInodeHere) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  Shard* s = shard->get();
  auto adding =
      add_inode(s, kRootInode, "l", NewInode{.type = InodeType::kSymlink, .symlink_target = "x"});
  auto link = co_await std::move(adding);
  CO_ASSERT_OK(link);
  struct Case {
    const char* what;
    InodeId inode;
    StatusCode code;
  };
  const Case cases[] = {
      {"a directory", kRootInode, StatusCode::kIsDirectory},
      {"a symlink", link->id, StatusCode::kInvalidArgument},
      {"missing", make_inode_id(0, 4242), StatusCode::kNotFound},
      {"another shard", make_inode_id(3, 1), StatusCode::kWrongShard},
  };
  for (const Case& c : cases) {
    SetattrRequest request = as(root_cred());
    request.inode = c.inode;
    request.size = 0;
    auto setting = call(s, &Shard::setattr, request);
    EXPECT_EQ((co_await std::move(setting)).status().code(), c.code) << c.what;
  }
  CO_ASSERT_OK(co_await close_shard(s));
}

MICA_CO_TEST(Setattr, ASessionOpenForWritingMayTruncateWithoutPermission) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  Shard* s = shard->get();
  auto adding = add_inode(s, kRootInode, "f", NewInode{.mode = 0400, .uid = 5, .gid = 6});
  auto file = co_await std::move(adding);
  CO_ASSERT_OK(file);
  {
    ShardTxn txn = s->begin();
    txn.put_session(SessionRecord{
        .inode = file->id, .session = 77, .client = 1, .flags = OpenFlags{.write = true}});
    txn.put_session(SessionRecord{
        .inode = file->id, .session = 78, .client = 1, .flags = OpenFlags{.read = true}});
    auto committing = txn.commit();
    CO_ASSERT_OK(co_await std::move(committing));
  }
  SetattrRequest request = as(kOther);
  request.inode = file->id;
  request.size = 4096;
  request.session = 77;
  auto setting = call(s, &Shard::setattr, request);
  auto reply = co_await std::move(setting);
  CO_ASSERT_OK(reply);
  EXPECT_EQ(reply->inode.length, 4096u);
  request.session = 78;  // read-only
  auto reading_only = call(s, &Shard::setattr, request);
  EXPECT_EQ((co_await std::move(reading_only)).status().code(), StatusCode::kInvalidArgument);
  CO_ASSERT_OK(co_await close_shard(s));
}

}  // namespace
}  // namespace mica::meta
