// Shard::readdir and Shard::readlink: pages of a directory in name order, resumed after a
// name, capped by readdir_page_max, without entries still created locked; the errors of a
// bad directory and of a link that is not one.
#include <set>

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

// count files "e0000".."e<count-1>" in dir, in one commit.
Task<Status> fill(Shard* shard, InodeId dir, int count) {
  ShardTxn txn = shard->begin();
  for (int i = 0; i < count; ++i) {
    Inode inode{.id = txn.allocate_inode(), .type = InodeType::kFile, .mode = 0644, .nlink = 1};
    txn.put_inode(inode);
    txn.put_entry(dir, fmt::format("e{:04}", i), DirEntry{.inode = inode.id});
  }
  auto committing = txn.commit();
  co_return co_await std::move(committing);
}

ReaddirRequest list(InodeId dir, std::string after = "", uint32_t limit = 0) {
  return ReaddirRequest{.cred = root_cred(), .dir = dir, .after = std::move(after), .limit = limit};
}

MICA_CO_TEST(Readdir, PagesOverTwoThousandEntriesInNameOrder) {
  ShardOptions options = test_shard_options(dir.path);
  options.readdir_page_max = 300;
  auto opening = open_test_shard(options);
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  constexpr int kEntries = 2000;
  auto filling = fill(shard->get(), kRootInode, kEntries);
  CO_ASSERT_OK(co_await std::move(filling));
  std::vector<std::string> names;
  std::string after;
  int pages = 0;
  for (bool end = false; !end; ++pages) {
    CO_ASSERT_TRUE(pages < 100);
    auto reading = call(shard->get(), &Shard::readdir, list(kRootInode, after));
    auto page = co_await std::move(reading);
    CO_ASSERT_OK(page);
    EXPECT_LE(page->entries.size(), 300u);
    for (const ReaddirEntry& e : page->entries) {
      names.push_back(e.name);
      EXPECT_FALSE(e.attrs.has_value());
      EXPECT_EQ(e.type, InodeType::kFile);
    }
    end = page->end;
    if (!end) {
      CO_ASSERT_TRUE(!page->entries.empty());
      after = page->entries.back().name;
    }
  }
  EXPECT_EQ(pages, 7);  // 6 full pages and one of 200
  CO_ASSERT_EQ(names.size(), size_t{kEntries});
  for (int i = 0; i < kEntries; ++i) EXPECT_EQ(names[i], fmt::format("e{:04}", i));
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

MICA_CO_TEST(Readdir, LimitsAreCappedAndAfterResumesPastAnyName) {
  ShardOptions options = test_shard_options(dir.path);
  options.readdir_page_max = 5;
  auto opening = open_test_shard(options);
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto filling = fill(shard->get(), kRootInode, 20);
  CO_ASSERT_OK(co_await std::move(filling));
  auto big = call(shard->get(), &Shard::readdir, list(kRootInode, "", 1000));
  auto capped = co_await std::move(big);
  CO_ASSERT_OK(capped);
  EXPECT_EQ(capped->entries.size(), 5u);
  EXPECT_FALSE(capped->end);
  auto small = call(shard->get(), &Shard::readdir, list(kRootInode, "", 2));
  auto two = co_await std::move(small);
  CO_ASSERT_OK(two);
  CO_ASSERT_EQ(two->entries.size(), 2u);
  EXPECT_EQ(two->entries[1].name, "e0001");
  // A name that is not there: the page starts at the next one.
  auto between = call(shard->get(), &Shard::readdir, list(kRootInode, "e0007x"));
  auto resumed = co_await std::move(between);
  CO_ASSERT_OK(resumed);
  CO_ASSERT_TRUE(!resumed->entries.empty());
  EXPECT_EQ(resumed->entries[0].name, "e0008");
  auto last = call(shard->get(), &Shard::readdir, list(kRootInode, "e0017"));
  auto tail = co_await std::move(last);
  CO_ASSERT_OK(tail);
  CO_ASSERT_EQ(tail->entries.size(), 2u);
  EXPECT_TRUE(tail->end);
  auto past = call(shard->get(), &Shard::readdir, list(kRootInode, "zzz"));
  auto nothing = co_await std::move(past);
  CO_ASSERT_OK(nothing);
  EXPECT_TRUE(nothing->entries.empty());
  EXPECT_TRUE(nothing->end);
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

MICA_CO_TEST(Readdir, SkipsLockedEntriesAndFillsOnlyLocalAttrs) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto adding = add_inode(shard->get(), kRootInode, "a", NewInode{.mode = 0600, .uid = 3});
  auto a = co_await std::move(adding);
  CO_ASSERT_OK(a);
  auto locking = add_inode(shard->get(), kRootInode, "b", NewInode{.created_locked = true});
  CO_ASSERT_OK(co_await std::move(locking));
  {
    // "c" is a directory on shard 5: its attributes are the server's to fetch.
    ShardTxn txn = (*shard)->begin();
    txn.put_entry(kRootInode, "c",
                  DirEntry{.inode = make_inode_id(5, 1), .type = InodeType::kDirectory});
    auto committing = txn.commit();
    CO_ASSERT_OK(co_await std::move(committing));
  }
  ReaddirRequest request = list(kRootInode);
  request.with_attrs = true;
  auto reading = call(shard->get(), &Shard::readdir, request);
  auto page = co_await std::move(reading);
  CO_ASSERT_OK(page);
  CO_ASSERT_EQ(page->entries.size(), 2u);
  EXPECT_EQ(page->entries[0].name, "a");
  CO_ASSERT_TRUE(page->entries[0].attrs.has_value());
  EXPECT_EQ(page->entries[0].attrs->uid, 3u);
  EXPECT_EQ(page->entries[0].attrs->mode, 0600u);
  EXPECT_EQ(page->entries[1].name, "c");
  EXPECT_EQ(page->entries[1].inode, make_inode_id(5, 1));
  EXPECT_EQ(page->entries[1].type, InodeType::kDirectory);
  EXPECT_FALSE(page->entries[1].attrs.has_value());
  EXPECT_TRUE(page->end);
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

MICA_CO_TEST(Readdir, RefusesWhatIsNoReadableDirectoryHere) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto adding = add_inode(shard->get(), kRootInode, "f", NewInode{});
  auto file = co_await std::move(adding);
  CO_ASSERT_OK(file);
  auto adding_dir = add_inode(shard->get(), kRootInode, "d",
                              NewInode{.type = InodeType::kDirectory, .mode = 0711, .uid = 4});
  auto d = co_await std::move(adding_dir);
  CO_ASSERT_OK(d);
  struct Row {
    const char* what;
    ReaddirRequest request;
    StatusCode code;
  };
  std::vector<Row> rows = {
      {"a file", list(file->id), StatusCode::kNotDirectory},
      {"missing", list(make_inode_id(0, 999)), StatusCode::kNotFound},
      {"another shard", list(make_inode_id(2, 1)), StatusCode::kWrongShard},
      {"search only", ReaddirRequest{.cred = user_cred(9, 9), .dir = d->id},
       StatusCode::kPermissionDenied},
      {"owner", ReaddirRequest{.cred = user_cred(4, 4), .dir = d->id}, StatusCode::kOk},
  };
  for (const Row& row : rows) {
    auto reading = call(shard->get(), &Shard::readdir, row.request);
    auto page = co_await std::move(reading);
    EXPECT_EQ(page.status().code(), row.code) << row.what << ": " << page.status();
  }
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

MICA_CO_TEST(Readlink, AnswersTheTargetOfALinkOnly) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto adding = add_inode(shard->get(), kRootInode, "l",
                          NewInode{.type = InodeType::kSymlink, .symlink_target = "../x/y"});
  auto link = co_await std::move(adding);
  CO_ASSERT_OK(link);
  auto reading = call(shard->get(), &Shard::readlink, ReadlinkRequest{.inode = link->id});
  auto target = co_await std::move(reading);
  CO_ASSERT_OK(target);
  EXPECT_EQ(target->target, "../x/y");
  auto of_root = call(shard->get(), &Shard::readlink, ReadlinkRequest{.inode = kRootInode});
  EXPECT_EQ((co_await std::move(of_root)).status().code(), StatusCode::kInvalidArgument);
  auto missing =
      call(shard->get(), &Shard::readlink, ReadlinkRequest{.inode = make_inode_id(0, 77)});
  EXPECT_EQ((co_await std::move(missing)).status().code(), StatusCode::kNotFound);
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

}  // namespace
}  // namespace mica::meta
