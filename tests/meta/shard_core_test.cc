// meta/shard.h's core: a shard's environment and record, the overlay that lets a mutation
// read the writes queued before it, group commit, failed commits, remembered answers, and
// the reads lookup and getattr.
#include "async/scope.h"
#include "tests/meta/shard_fixture.h"

namespace mica::meta {
namespace {

using testing::add_inode;
using testing::call;
using testing::NewInode;
using testing::open_test_shard;
using testing::root_cred;
using testing::test_shard_options;

Task<Status> close_shard(Shard* shard) {
  auto closing = shard->close();
  co_return co_await std::move(closing);
}

MICA_CO_TEST(ShardCore, AFreshShardZeroHoldsTheRoot) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto getting = call(shard->get(), &Shard::getattr, GetattrRequest{.inode = kRootInode});
  auto root = co_await std::move(getting);
  CO_ASSERT_OK(root);
  EXPECT_EQ(root->inode.type, InodeType::kDirectory);
  EXPECT_EQ(root->inode.mode, 0755u);
  EXPECT_EQ(root->inode.uid, 0u);
  EXPECT_EQ(root->inode.gid, 0u);
  EXPECT_EQ(root->inode.nlink, 2u);
  EXPECT_EQ(root->inode.parent, kRootInode);
  EXPECT_GT(root->inode.ctime_ns, 0);
  EXPECT_EQ(root->inode.mtime_ns, root->inode.ctime_ns);
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

MICA_CO_TEST(ShardCore, AnotherShardHasNoRootAndRefusesForeignInodes) {
  auto opening = open_test_shard(test_shard_options(dir.path, 3));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto getting = call(shard->get(), &Shard::getattr, GetattrRequest{.inode = make_inode_id(3, 1)});
  EXPECT_EQ((co_await std::move(getting)).status().code(), StatusCode::kNotFound);
  auto foreign = call(shard->get(), &Shard::getattr, GetattrRequest{.inode = kRootInode});
  EXPECT_EQ((co_await std::move(foreign)).status().code(), StatusCode::kWrongShard);
  // Its first inode is sequence 1 of shard 3.
  auto adding = add_inode(shard->get(), make_inode_id(3, 99), "x", NewInode{});
  auto added = co_await std::move(adding);
  CO_ASSERT_OK(added);
  EXPECT_EQ(added->id, make_inode_id(3, 1));
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

MICA_CO_TEST(ShardCore, ReopeningKeepsDataAndNeverReusesIds) {
  InodeId first = 0;
  {
    auto opening = open_test_shard(test_shard_options(dir.path));
    auto shard = co_await std::move(opening);
    CO_ASSERT_OK(shard);
    auto adding = add_inode(shard->get(), kRootInode, "a", NewInode{.mode = 0600, .uid = 7});
    auto added = co_await std::move(adding);
    CO_ASSERT_OK(added);
    first = added->id;
    CO_ASSERT_OK(co_await close_shard(shard->get()));
  }
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto looking = call(shard->get(), &Shard::lookup,
                      LookupRequest{.cred = root_cred(), .parent = kRootInode, .name = "a"});
  auto found = co_await std::move(looking);
  CO_ASSERT_OK(found);
  EXPECT_EQ(found->inode.id, first);
  EXPECT_EQ(found->inode.mode, 0600u);
  EXPECT_EQ(found->inode.uid, 7u);
  auto adding = add_inode(shard->get(), kRootInode, "b", NewInode{});
  auto added = co_await std::move(adding);
  CO_ASSERT_OK(added);
  EXPECT_GT(added->id, first);
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

// Writes a shard record straight into the environment of a closed shard.
Task<Status> overwrite_record(std::string dir, ShardRecord record) {
  auto opening = kv::Env::open(dir, kv::EnvOptions{});
  auto env = co_await std::move(opening);
  CO_TRY(env);
  auto tables = open_shard_tables(env->get());
  CO_TRY(tables);
  kv::WriteRequest request;
  request.put(tables->shard, kShardRecordKey, encode_record(record));
  Status written = co_await (*env)->write(&request);
  auto closing = (*env)->close();
  Status closed = co_await std::move(closing);
  CO_TRY(written);
  co_return closed;
}

MICA_CO_TEST(ShardCore, AnotherFormatVersionIsCorruption) {
  {
    auto opening = open_test_shard(test_shard_options(dir.path));
    auto shard = co_await std::move(opening);
    CO_ASSERT_OK(shard);
    CO_ASSERT_OK(co_await close_shard(shard->get()));
  }
  auto overwriting = overwrite_record(dir.path, ShardRecord{.format_version = 99, .shard = 0});
  CO_ASSERT_OK(co_await std::move(overwriting));
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_EQ(shard.status().code(), StatusCode::kCorruption);
  EXPECT_NE(shard.status().message().find("version 99"), std::string_view::npos) << shard.status();
}

MICA_CO_TEST(ShardCore, AnotherShardsEnvironmentIsInvalidArgument) {
  {
    auto opening = open_test_shard(test_shard_options(dir.path, 0));
    auto shard = co_await std::move(opening);
    CO_ASSERT_OK(shard);
    CO_ASSERT_OK(co_await close_shard(shard->get()));
  }
  auto opening = open_test_shard(test_shard_options(dir.path, 1));
  auto shard = co_await std::move(opening);
  CO_ASSERT_EQ(shard.status().code(), StatusCode::kInvalidArgument);
}

// One mutation: an inode of its own, under a fixed id (no shared shard record).
Task<void> put_own_inode(Shard* shard, InodeId id, Status* out) {
  ShardTxn txn = shard->begin();
  Inode inode{.id = id, .type = InodeType::kFile, .mode = 0644, .nlink = 1};
  txn.put_inode(inode);
  txn.put_entry(kRootInode, fmt::format("f{}", id), DirEntry{.inode = id});
  auto committing = txn.commit();
  *out = co_await std::move(committing);
}

MICA_CO_TEST(ShardCore, ConcurrentMutationsShareKvTransactions) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  uint64_t requests_before = (*shard)->env()->counters().requests;
  uint64_t transactions_before = (*shard)->env()->counters().transactions;
  constexpr int kMutations = 200;
  std::vector<Status> results(kMutations);
  TaskScope scope;
  for (int i = 0; i < kMutations; ++i) {
    scope.spawn(put_own_inode(shard->get(), make_inode_id(0, 1000 + i), &results[i]));
  }
  co_await scope.join();
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s;
  uint64_t requests = (*shard)->env()->counters().requests - requests_before;
  uint64_t transactions = (*shard)->env()->counters().transactions - transactions_before;
  EXPECT_EQ(requests, uint64_t{kMutations});
  EXPECT_LT(transactions, requests);
  for (int i = 0; i < kMutations; ++i) {
    auto looking = call(shard->get(), &Shard::lookup,
                        LookupRequest{.cred = root_cred(),
                                      .parent = kRootInode,
                                      .name = fmt::format("f{}", make_inode_id(0, 1000 + i))});
    CO_ASSERT_OK(co_await std::move(looking));
  }
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

// mica_meta_shard_commit_batch_size{shard="0"} of this process (shared by every shard 0 the
// tests open, so a test looks at its own deltas).
Histogram& batch_sizes() {
  return metrics().histogram("meta", "shard_commit_batch_size", "", {{"shard", "0"}},
                             kBatchSizeBuckets);
}

MICA_CO_TEST(ShardCore, CommitBatchSizesCountEveryMutationOncePerCommit) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  Counter& commits = metrics().counter("meta", "shard_commits_total", "", {{"shard", "0"}});
  uint64_t commits_before = commits.value();
  Histogram::Snapshot before = batch_sizes().snapshot();
  constexpr int kMutations = 100;
  std::vector<Status> results(kMutations);
  TaskScope scope;
  for (int i = 0; i < kMutations; ++i) {
    scope.spawn(put_own_inode(shard->get(), make_inode_id(0, 2000 + i), &results[i]));
  }
  co_await scope.join();
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s;
  Histogram::Snapshot after = batch_sizes().snapshot();
  uint64_t batches = 0;
  uint64_t batched = 0;  // batches of more than one mutation
  for (uint32_t i = 0; i <= kBatchSizeBuckets; ++i) {
    uint64_t n = after.counts[i] - before.counts[i];
    batches += n;
    if (i > 0) batched += n;
  }
  EXPECT_EQ(batches, commits.value() - commits_before) << "one sample per commit";
  EXPECT_EQ(after.sum_ns - before.sum_ns,
            static_cast<uint64_t>(batch_size_sample(kMutations).count()))
      << "every mutation in exactly one batch";
  EXPECT_LT(batches, uint64_t{kMutations});
  EXPECT_GT(batched, 0u) << "concurrent mutations share commits";
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

// One mutation allocating its id (they all share the shard record, so they merge).
Task<void> add_named(Shard* shard, std::string name, Result<Inode>* out) {
  auto adding = add_inode(shard, kRootInode, std::move(name), NewInode{});
  *out = co_await std::move(adding);
}

MICA_CO_TEST(ShardCore, ConcurrentAllocationsGetDistinctIds) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  constexpr int kMutations = 100;
  std::vector<Result<Inode>> results(kMutations, Status(StatusCode::kInternal));
  TaskScope scope;
  for (int i = 0; i < kMutations; ++i) {
    scope.spawn(add_named(shard->get(), fmt::format("n{}", i), &results[i]));
  }
  co_await scope.join();
  std::set<InodeId> ids;
  for (auto& r : results) {
    CO_ASSERT_OK(r);
    ids.insert(r->id);
  }
  EXPECT_EQ(ids.size(), size_t{kMutations});
  CO_ASSERT_OK(co_await close_shard(shard->get()));
  auto reopening = open_test_shard(test_shard_options(dir.path));
  auto again = co_await std::move(reopening);
  CO_ASSERT_OK(again);
  auto adding = add_inode(again->get(), kRootInode, "after", NewInode{});
  auto added = co_await std::move(adding);
  CO_ASSERT_OK(added);
  EXPECT_FALSE(ids.contains(added->id));
  EXPECT_GT(added->id, *ids.rbegin());
  CO_ASSERT_OK(co_await close_shard(again->get()));
}

// A mutation too big for the environment's map: its commit fails with kNoSpace.
Task<void> put_huge(Shard* shard, Status* out) {
  ShardTxn txn = shard->begin();
  txn.put_xattr(kRootInode, "user.big", std::string(size_t{8} << 20, 'x'));
  Inode root = **txn.inode(kRootInode);
  root.mode = 0700;
  txn.put_inode(root);
  auto committing = txn.commit();
  *out = co_await std::move(committing);
}

// A mutation that read the huge one's queued root inode before it failed.
Task<void> follow_huge(Shard* shard, uint32_t* seen_mode, Status* out) {
  ShardTxn txn = shard->begin();
  auto root = txn.inode(kRootInode);
  if (!root.ok() || !*root) {
    *out = Status(StatusCode::kInternal, "no root");
    co_return;
  }
  *seen_mode = (*root)->mode;
  Inode changed = **root;
  changed.uid = 42;
  txn.put_inode(changed);
  auto committing = txn.commit();
  *out = co_await std::move(committing);
}

MICA_CO_TEST(ShardCore, AFailedCommitChangesNothingAndFailsWhatReadIt) {
  ShardOptions options = test_shard_options(dir.path);
  options.env.map_size_bytes = uint64_t{2} << 20;
  auto opening = open_test_shard(options);
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  Status huge;
  Status follower;
  uint32_t seen_mode = 0;
  TaskScope scope;
  scope.spawn(put_huge(shard->get(), &huge));
  scope.spawn(follow_huge(shard->get(), &seen_mode, &follower));
  co_await scope.join();
  EXPECT_EQ(huge.code(), StatusCode::kNoSpace) << huge;
  EXPECT_EQ(seen_mode, 0700u);  // it read the queued write through the overlay...
  EXPECT_EQ(follower.code(), StatusCode::kNoSpace) << follower;  // ...so it fails too
  auto root = testing::stored_inode(shard->get(), kRootInode);
  CO_ASSERT_OK(root);
  EXPECT_EQ(root->mode, 0755u);
  EXPECT_EQ(root->uid, 0u);
  {
    ShardTxn reader = (*shard)->begin();  // gone before the shard closes
    auto xattr = reader.xattr(kRootInode, "user.big");
    CO_ASSERT_OK(xattr);
    EXPECT_FALSE(*xattr);
    auto overlay_root = reader.inode(kRootInode);
    CO_ASSERT_OK(overlay_root);
    EXPECT_EQ((*overlay_root)->mode, 0755u);
  }
  // The shard goes on serving.
  auto adding = add_inode(shard->get(), kRootInode, "after", NewInode{});
  CO_ASSERT_OK(co_await std::move(adding));
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

// A mutation that writes the root's uid: what the merged txns below share.
Task<void> put_root_uid(Shard* shard, uint32_t uid, bool huge, Status* out) {
  ShardTxn txn = shard->begin();
  Inode root = **txn.inode(kRootInode);
  root.uid = uid;
  txn.put_inode(root);
  if (huge) txn.put_xattr(kRootInode, "user.big", std::string(size_t{8} << 20, 'x'));
  auto committing = txn.commit();
  *out = co_await std::move(committing);
}

MICA_CO_TEST(ShardCore, HeldTxnsSharingAKeyFailTogetherOthersCommit) {
  ShardOptions options = test_shard_options(dir.path);
  options.env.map_size_bytes = uint64_t{2} << 20;
  auto opening = open_test_shard(options);
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  Status first;
  Status huge;
  Status sharer;
  Status independent;
  TaskScope scope;
  // The first commit is in flight while the next three are held: the huge one and the one
  // that overwrites its root are merged into one request; the third shares nothing.
  scope.spawn(put_own_inode(shard->get(), make_inode_id(0, 50), &first));
  scope.spawn(put_root_uid(shard->get(), 1, /*huge=*/true, &huge));
  scope.spawn(put_root_uid(shard->get(), 2, /*huge=*/false, &sharer));
  scope.spawn(put_own_inode(shard->get(), make_inode_id(0, 51), &independent));
  co_await scope.join();
  EXPECT_TRUE(first.ok()) << first;
  EXPECT_EQ(huge.code(), StatusCode::kNoSpace) << huge;
  EXPECT_EQ(sharer.code(), StatusCode::kNoSpace) << sharer;
  EXPECT_TRUE(independent.ok()) << independent;
  auto root = testing::stored_inode(shard->get(), kRootInode);
  CO_ASSERT_OK(root);
  EXPECT_EQ(root->uid, 0u);
  CO_ASSERT_OK(testing::stored_inode(shard->get(), make_inode_id(0, 50)));
  CO_ASSERT_OK(testing::stored_inode(shard->get(), make_inode_id(0, 51)));
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

// A mutation that writes two inodes at once: it shares a key with each of two held txns.
Task<void> put_two_inodes(Shard* shard, InodeId a, InodeId b, Status* out) {
  ShardTxn txn = shard->begin();
  for (InodeId id : {a, b})
    txn.put_inode(Inode{.id = id, .type = InodeType::kFile, .mode = 0600, .nlink = 1});
  auto committing = txn.commit();
  *out = co_await std::move(committing);
}

MICA_CO_TEST(ShardCore, HeldGroupsMergedByALaterTxnAllAnswer) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  // While the first commit is in flight, two held txns share nothing; the third writes a
  // key of each, so their groups merge into one. Every committer must be answered (the one
  // whose group was absorbed once waited forever: a stuck create through the mount).
  InodeId first_id = make_inode_id(0, 70), a = make_inode_id(0, 71), b = make_inode_id(0, 72);
  Status first, left, right, both;
  TaskScope scope;
  scope.spawn(put_own_inode(shard->get(), first_id, &first));
  scope.spawn(put_own_inode(shard->get(), a, &left));
  scope.spawn(put_own_inode(shard->get(), b, &right));
  scope.spawn(put_two_inodes(shard->get(), a, b, &both));
  co_await scope.join();
  for (const Status* s : {&first, &left, &right, &both}) EXPECT_TRUE(s->ok()) << *s;
  for (InodeId id : {a, b}) {
    auto stored = testing::stored_inode(shard->get(), id);
    CO_ASSERT_OK(stored);
    EXPECT_EQ(stored->mode, 0600u) << "the merging txn wrote last";
  }
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

MICA_CO_TEST(ShardCore, ATxnDestroyedWithoutCommitChangesNothing) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  {
    ShardTxn txn = (*shard)->begin();
    txn.put_entry(kRootInode, "ghost", DirEntry{.inode = make_inode_id(0, 77)});
    auto own = txn.entry(kRootInode, "ghost");
    CO_ASSERT_OK(own);
    EXPECT_TRUE(own->has_value());  // a txn reads its own writes
  }
  {
    ShardTxn later = (*shard)->begin();
    auto ghost = later.entry(kRootInode, "ghost");
    CO_ASSERT_OK(ghost);
    EXPECT_FALSE(*ghost);
    auto has = later.has_entries(kRootInode);
    CO_ASSERT_OK(has);
    EXPECT_FALSE(*has);
  }
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

MICA_CO_TEST(ShardCore, LookupOfAMissingOrLockedNameIsNotFound) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto adding = add_inode(shard->get(), kRootInode, "locked", NewInode{.created_locked = true});
  CO_ASSERT_OK(co_await std::move(adding));
  for (std::string name : {"missing", "locked"}) {
    auto looking = call(shard->get(), &Shard::lookup,
                        LookupRequest{.cred = root_cred(), .parent = kRootInode, .name = name});
    EXPECT_EQ((co_await std::move(looking)).status().code(), StatusCode::kNotFound) << name;
  }
  auto bad_name = call(shard->get(), &Shard::lookup,
                       LookupRequest{.cred = root_cred(), .parent = kRootInode, .name = ".."});
  EXPECT_EQ((co_await std::move(bad_name)).status().code(), StatusCode::kInvalidArgument);
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

MICA_CO_TEST(ShardCore, LookupChecksTheParent) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto adding = add_inode(shard->get(), kRootInode, "file", NewInode{});
  auto file = co_await std::move(adding);
  CO_ASSERT_OK(file);
  auto in_file = call(shard->get(), &Shard::lookup,
                      LookupRequest{.cred = root_cred(), .parent = file->id, .name = "x"});
  EXPECT_EQ((co_await std::move(in_file)).status().code(), StatusCode::kNotDirectory);
  auto adding_dir = add_inode(shard->get(), kRootInode, "private",
                              NewInode{.type = InodeType::kDirectory, .mode = 0700, .uid = 5});
  auto private_dir = co_await std::move(adding_dir);
  CO_ASSERT_OK(private_dir);
  auto stranger =
      call(shard->get(), &Shard::lookup,
           LookupRequest{.cred = testing::user_cred(6, 6), .parent = private_dir->id, .name = "x"});
  EXPECT_EQ((co_await std::move(stranger)).status().code(), StatusCode::kPermissionDenied);
  auto owner =
      call(shard->get(), &Shard::lookup,
           LookupRequest{.cred = testing::user_cred(5, 5), .parent = private_dir->id, .name = "x"});
  EXPECT_EQ((co_await std::move(owner)).status().code(), StatusCode::kNotFound);
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

MICA_CO_TEST(ShardCore, ACorruptInodeIsCorruptionAndOthersStillServe) {
  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  auto adding = add_inode(shard->get(), kRootInode, "bad", NewInode{});
  auto bad = co_await std::move(adding);
  CO_ASSERT_OK(bad);
  kv::WriteRequest garbage;
  garbage.put((*shard)->tables().inodes, inode_key(bad->id), "\x01garbage-not-an-inode");
  CO_ASSERT_OK(co_await (*shard)->env()->write(&garbage));
  auto getting = call(shard->get(), &Shard::getattr, GetattrRequest{.inode = bad->id});
  EXPECT_EQ((co_await std::move(getting)).status().code(), StatusCode::kCorruption);
  auto looking = call(shard->get(), &Shard::lookup,
                      LookupRequest{.cred = root_cred(), .parent = kRootInode, .name = "bad"});
  EXPECT_EQ((co_await std::move(looking)).status().code(), StatusCode::kCorruption);
  {
    ShardTxn txn = (*shard)->begin();
    EXPECT_EQ(txn.inode(bad->id).status().code(), StatusCode::kCorruption);
  }
  auto root = call(shard->get(), &Shard::getattr, GetattrRequest{.inode = kRootInode});
  CO_ASSERT_OK(co_await std::move(root));
  auto another = add_inode(shard->get(), kRootInode, "good", NewInode{});
  CO_ASSERT_OK(co_await std::move(another));
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

Task<Status> remember(Shard* shard, RequestTag tag, std::string answer) {
  ShardTxn txn = shard->begin();
  txn.remember_answer(tag, answer);
  auto committing = txn.commit();
  co_return co_await std::move(committing);
}

MICA_CO_TEST(ShardCore, RememberedAnswersAreKeptBoundedAndSurviveReopen) {
  ShardOptions options = test_shard_options(dir.path);
  options.requests_kept_max = 4;
  {
    auto opening = open_test_shard(options);
    auto shard = co_await std::move(opening);
    CO_ASSERT_OK(shard);
    for (uint64_t r = 1; r <= 10; ++r) {
      auto remembering = remember(shard->get(), RequestTag{.client = 9, .request = r},
                                  fmt::format("answer {}", r));
      CO_ASSERT_OK(co_await std::move(remembering));
    }
    CO_ASSERT_OK(co_await close_shard(shard->get()));
  }
  auto opening = open_test_shard(options);
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  for (uint64_t r = 1; r <= 10; ++r) {
    auto answer = (*shard)->remembered_answer(RequestTag{.client = 9, .request = r});
    CO_ASSERT_OK(answer);
    if (r <= 6) {
      EXPECT_FALSE(*answer) << r;
    } else {
      EXPECT_EQ(**answer, fmt::format("answer {}", r));
    }
  }
  // After reopening the oldest kept answer is the next to go.
  auto remembering = remember(shard->get(), RequestTag{.client = 9, .request = 11}, "eleven");
  CO_ASSERT_OK(co_await std::move(remembering));
  EXPECT_FALSE(*(*shard)->remembered_answer(RequestTag{.client = 9, .request = 7}));
  EXPECT_EQ(**(*shard)->remembered_answer(RequestTag{.client = 9, .request = 11}), "eleven");
  EXPECT_FALSE(*(*shard)->remembered_answer(RequestTag{}));
  CO_ASSERT_OK(co_await close_shard(shard->get()));
}

}  // namespace
}  // namespace mica::meta
