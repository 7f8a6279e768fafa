// Extended attributes on a shard (Shard::get/set/list/remove_xattr, meta/xattr_rules.h): a
// round trip, create/replace modes, and a rule table of who may read and write what, with
// every error the operations answer.
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

SetXattrRequest set_request(Credentials cred, InodeId inode, std::string name, std::string value,
                            XattrMode mode = XattrMode::kAny) {
  return SetXattrRequest{.cred = std::move(cred),
                         .inode = inode,
                         .name = std::move(name),
                         .value = std::move(value),
                         .mode = mode};
}

Task<Status> set(Shard* shard, SetXattrRequest request) {
  auto setting = call(shard, &Shard::set_xattr, std::move(request));
  co_return (co_await std::move(setting)).status();
}

Task<Result<std::string>> get(Shard* shard, Credentials cred, InodeId inode, std::string name) {
  auto getting = call(shard, &Shard::get_xattr,
                      GetXattrRequest{.cred = std::move(cred), .inode = inode, .name = name});
  auto value = co_await std::move(getting);
  CO_TRY(value);
  co_return std::move(value->value);
}

Task<Status> remove(Shard* shard, Credentials cred, InodeId inode, std::string name) {
  auto removing =
      call(shard, &Shard::remove_xattr,
           RemoveXattrRequest{.cred = std::move(cred), .inode = inode, .name = std::move(name)});
  co_return (co_await std::move(removing)).status();
}

MICA_CO_TEST(Xattr, SetGetListRemoveRoundTrip) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  Shard* s = shard->get();
  auto adding = add_inode(s, kRootInode, "f", NewInode{.mode = 0644, .uid = 5, .gid = 5});
  auto file = co_await std::move(adding);
  CO_ASSERT_OK(file);
  Credentials owner = user_cred(5, 5);
  auto setting = call(s, &Shard::set_xattr, set_request(owner, file->id, "user.a", "1"));
  auto set_reply = co_await std::move(setting);
  CO_ASSERT_OK(set_reply);
  EXPECT_GE(set_reply->inode.ctime_ns, file->ctime_ns);
  auto stored = testing::stored_inode(s, file->id);
  CO_ASSERT_OK(stored);
  EXPECT_EQ(stored->ctime_ns, set_reply->inode.ctime_ns);
  CO_ASSERT_OK(
      co_await set(s, set_request(owner, file->id, "user.b", std::string(kXattrValueMax, 'v'))));
  CO_ASSERT_OK(co_await set(s, set_request(root_cred(), file->id, "trusted.t", "root's")));
  auto got = co_await get(s, owner, file->id, "user.a");
  CO_ASSERT_OK(got);
  EXPECT_EQ(*got, "1");
  auto listing = call(s, &Shard::list_xattr, ListXattrRequest{.cred = owner, .inode = file->id});
  auto names = co_await std::move(listing);
  CO_ASSERT_OK(names);
  EXPECT_EQ(names->names, (std::vector<std::string>{"user.a", "user.b"}));  // trusted.* hidden
  auto root_listing =
      call(s, &Shard::list_xattr, ListXattrRequest{.cred = root_cred(), .inode = file->id});
  auto all = co_await std::move(root_listing);
  CO_ASSERT_OK(all);
  EXPECT_EQ(all->names, (std::vector<std::string>{"trusted.t", "user.a", "user.b"}));
  CO_ASSERT_OK(co_await set(s, set_request(owner, file->id, "user.a", "2")));
  auto again = co_await get(s, owner, file->id, "user.a");
  CO_ASSERT_OK(again);
  EXPECT_EQ(*again, "2");
  CO_ASSERT_OK(co_await remove(s, owner, file->id, "user.a"));
  auto gone = co_await get(s, owner, file->id, "user.a");
  EXPECT_EQ(gone.status().code(), StatusCode::kNoData);
  CO_ASSERT_OK(co_await close_shard(s));
}

MICA_CO_TEST(Xattr, CreateAndReplaceModes) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  Shard* s = shard->get();
  InodeId root = kRootInode;
  EXPECT_EQ(
      (co_await set(s, set_request(root_cred(), root, "user.x", "1", XattrMode::kReplace))).code(),
      StatusCode::kNoData);
  CO_ASSERT_OK(co_await set(s, set_request(root_cred(), root, "user.x", "1", XattrMode::kCreate)));
  EXPECT_EQ(
      (co_await set(s, set_request(root_cred(), root, "user.x", "2", XattrMode::kCreate))).code(),
      StatusCode::kAlreadyExists);
  CO_ASSERT_OK(co_await set(s, set_request(root_cred(), root, "user.x", "3", XattrMode::kReplace)));
  auto got = co_await get(s, root_cred(), root, "user.x");
  CO_ASSERT_OK(got);
  EXPECT_EQ(*got, "3");
  CO_ASSERT_OK(co_await close_shard(s));
}

struct Setup {
  Inode file;     // 0640, uid 5 gid 6
  Inode symlink;  // uid 5
  Inode sticky;   // 01777 directory, uid 5
};

Task<Result<Setup>> make_setup(Shard* s) {
  auto a = add_inode(s, kRootInode, "f", NewInode{.mode = 0640, .uid = 5, .gid = 6});
  auto file = co_await std::move(a);
  CO_TRY(file);
  auto b = add_inode(
      s, kRootInode, "l",
      NewInode{.type = InodeType::kSymlink, .mode = 0777, .uid = 5, .symlink_target = "f"});
  auto link = co_await std::move(b);
  CO_TRY(link);
  auto c = add_inode(s, kRootInode, "t",
                     NewInode{.type = InodeType::kDirectory, .mode = 01777, .uid = 5});
  auto sticky = co_await std::move(c);
  CO_TRY(sticky);
  for (InodeId id : {file->id, link->id, sticky->id}) {
    auto setting = set(s, set_request(root_cred(), id, "security.s", "v"));
    CO_TRY(co_await std::move(setting));
    auto trusted = set(s, set_request(root_cred(), id, "trusted.t", "v"));
    CO_TRY(co_await std::move(trusted));
  }
  auto user = set(s, set_request(root_cred(), file->id, "user.u", "v"));
  CO_TRY(co_await std::move(user));
  co_return Setup{.file = *file, .symlink = *link, .sticky = *sticky};
}

MICA_CO_TEST(Xattr, WhoMayReadAndWriteWhat) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  Shard* s = shard->get();
  auto setting_up = make_setup(s);
  auto setup = co_await std::move(setting_up);
  CO_ASSERT_OK(setup);
  const Credentials owner = user_cred(5, 5);
  const Credentials group = user_cred(7, 6);
  const Credentials other = user_cred(8, 8);
  const InodeId file = setup->file.id;
  const InodeId link = setup->symlink.id;
  const InodeId sticky = setup->sticky.id;
  struct Row {
    const char* what;
    Credentials cred;
    InodeId inode;
    std::string name;
    StatusCode read;
    StatusCode write;
  };
  const Row rows[] = {
      // user.*: read with r, write with w
      {"owner user", owner, file, "user.u", StatusCode::kOk, StatusCode::kOk},
      {"group user", group, file, "user.u", StatusCode::kOk, StatusCode::kPermissionDenied},
      {"other user", other, file, "user.u", StatusCode::kPermissionDenied,
       StatusCode::kPermissionDenied},
      {"root user", root_cred(), file, "user.u", StatusCode::kOk, StatusCode::kOk},
      // user.* only on files and directories
      {"user on a symlink", owner, link, "user.u", StatusCode::kNoData, StatusCode::kNotPermitted},
      // a sticky directory's user.* are its owner's to write
      {"other user on sticky", other, sticky, "user.u", StatusCode::kNoData,
       StatusCode::kNotPermitted},
      {"owner user on sticky", owner, sticky, "user.u", StatusCode::kNoData, StatusCode::kOk},
      // trusted.*: root only, invisible to others
      {"owner trusted", owner, file, "trusted.t", StatusCode::kNoData, StatusCode::kNotPermitted},
      {"root trusted", root_cred(), file, "trusted.t", StatusCode::kOk, StatusCode::kOk},
      // security.*: readable by all, written by owner or root
      {"other security", other, file, "security.s", StatusCode::kOk, StatusCode::kNotPermitted},
      {"owner security", owner, file, "security.s", StatusCode::kOk, StatusCode::kOk},
      {"owner security on a link", owner, link, "security.s", StatusCode::kOk, StatusCode::kOk},
      {"group system", group, file, "system.x", StatusCode::kNoData, StatusCode::kNotPermitted},
      // names
      {"no namespace", root_cred(), file, "plain", StatusCode::kNotSupported,
       StatusCode::kNotSupported},
      {"only a namespace", root_cred(), file, "user.", StatusCode::kInvalidArgument,
       StatusCode::kInvalidArgument},
      {"too long", root_cred(), file, "user." + std::string(kXattrNameMax, 'n'),
       StatusCode::kNameTooLong, StatusCode::kNameTooLong},
      {"missing inode", root_cred(), make_inode_id(0, 999), "user.u", StatusCode::kNotFound,
       StatusCode::kNotFound},
      {"another shard", root_cred(), make_inode_id(1, 1), "user.u", StatusCode::kWrongShard,
       StatusCode::kWrongShard},
  };
  for (const Row& row : rows) {
    auto getting = get(s, row.cred, row.inode, row.name);
    auto got = co_await std::move(getting);
    EXPECT_EQ(got.status().code(), row.read) << row.what << " (read): " << got.status();
    auto setting = set(s, set_request(row.cred, row.inode, row.name, "new"));
    Status written = co_await std::move(setting);
    EXPECT_EQ(written.code(), row.write) << row.what << " (write): " << written;
  }
  CO_ASSERT_OK(co_await close_shard(s));
}

MICA_CO_TEST(Xattr, RemoveAndValueErrors) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  Shard* s = shard->get();
  auto adding = add_inode(s, kRootInode, "f", NewInode{.mode = 0644, .uid = 5, .gid = 5});
  auto file = co_await std::move(adding);
  CO_ASSERT_OK(file);
  EXPECT_EQ((co_await set(s, set_request(root_cred(), file->id, "user.big",
                                         std::string(kXattrValueMax + 1, 'v'))))
                .code(),
            StatusCode::kTooBig);
  EXPECT_EQ((co_await remove(s, root_cred(), file->id, "user.none")).code(), StatusCode::kNoData);
  CO_ASSERT_OK(co_await set(s, set_request(root_cred(), file->id, "user.a", "1")));
  EXPECT_EQ((co_await remove(s, user_cred(9, 9), file->id, "user.a")).code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ((co_await remove(s, user_cred(5, 5), file->id, "trusted.a")).code(),
            StatusCode::kNotPermitted);
  auto before = testing::stored_inode(s, file->id);
  CO_ASSERT_OK(before);
  auto removing =
      call(s, &Shard::remove_xattr,
           RemoveXattrRequest{.cred = user_cred(5, 5), .inode = file->id, .name = "user.a"});
  auto removed = co_await std::move(removing);
  CO_ASSERT_OK(removed);
  EXPECT_GE(removed->inode.ctime_ns, before->ctime_ns);
  EXPECT_EQ(testing::stored_inode(s, file->id)->ctime_ns, removed->inode.ctime_ns);
  CO_ASSERT_OK(co_await close_shard(s));
}

MICA_CO_TEST(Xattr, ARetriedSetGetsTheFirstAnswer) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  Shard* s = shard->get();
  SetXattrRequest request =
      set_request(root_cred(), kRootInode, "user.once", "1", XattrMode::kCreate);
  request.tag = RequestTag{.client = 3, .request = 1};
  auto first = call(s, &Shard::set_xattr, request);
  auto answer = co_await std::move(first);
  CO_ASSERT_OK(answer);
  // Without the tag the same request is kAlreadyExists; with it, the first answer again.
  auto retry = call(s, &Shard::set_xattr, request);
  auto again = co_await std::move(retry);
  CO_ASSERT_OK(again);
  EXPECT_EQ(again->inode.ctime_ns, answer->inode.ctime_ns);
  request.tag = RequestTag{};
  auto untagged = call(s, &Shard::set_xattr, request);
  EXPECT_EQ((co_await std::move(untagged)).status().code(), StatusCode::kAlreadyExists);
  CO_ASSERT_OK(co_await close_shard(s));
}

}  // namespace
}  // namespace mica::meta
