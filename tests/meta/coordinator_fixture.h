// A coordinator over three real LMDB shards in one process (tests/co_test.h's directory and
// io_uring executor), reached through the local stepper, for the coordinator's tests. A
// stepper wrapper can fail every step from some point on, to leave an operation unfinished
// for the next open to resume.
//
// Test-only; everything runs on the test body's executor and suspends where it returns a
// Task. close() must be awaited before the body returns.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "meta/coordinator.h"
#include "meta/shard.h"
#include "meta/shard_steps.h"
#include "tests/co_test.h"

namespace mica::meta::testing {

using ::mica::testing::CoTestDir;

inline constexpr uint32_t kTestShards = 3;

inline Credentials root() {
  return Credentials{};
}
inline Credentials user(uint32_t uid, uint32_t gid = 100) {
  return Credentials{.uid = uid, .gid = gid};
}

// Fails every step once `fail_from` steps have passed (0: never).
class FlakyStepper final : public ShardStepper {
 public:
  explicit FlakyStepper(ShardStepper* inner) : inner_(inner) {}
  uint64_t steps = 0;
  uint64_t fail_from = 0;
  Task<Result<StepReply>> step(StepRequest request) override {
    ++steps;
    if (fail_from != 0 && steps >= fail_from) return failed();
    return inner_->step(std::move(request));
  }
  Task<Result<ProbeReply>> probe(ProbeRequest request) override {
    return inner_->probe(std::move(request));
  }
  Task<Result<DirectoryPage>> directories(DirectoryPageRequest request) override {
    return inner_->directories(std::move(request));
  }

 private:
  static Task<Result<StepReply>> failed() {
    co_return Status(StatusCode::kIoError, "the test fails this step");
  }
  ShardStepper* inner_;
};

struct Cluster {
  std::string dir;
  std::vector<std::unique_ptr<Shard>> shards;
  std::unique_ptr<ShardStepper> local;
  std::unique_ptr<FlakyStepper> flaky;
  std::unique_ptr<Coordinator> coordinator;

  Shard* shard(ShardId id) { return id < shards.size() ? shards[id].get() : nullptr; }

  Task<Status> open_coordinator() {
    CoordinatorOptions options;
    options.dir = dir + "/coordinator";
    std::filesystem::create_directories(options.dir);
    options.env.map_size_bytes = uint64_t{1} << 28;
    options.stepper = flaky.get();
    options.shard_count = kTestShards;
    options.placement_seed = 7;
    options.retry_interval = std::chrono::hours(1);  // resumed by the next open only
    auto opening = Coordinator::open(std::move(options));
    auto opened = co_await std::move(opening);
    if (!opened.ok()) co_return opened.status();
    coordinator = std::move(*opened);
    co_return Status();
  }

  Task<Status> open(std::string path) {
    dir = std::move(path);
    for (ShardId id = 0; id < kTestShards; ++id) {
      ShardOptions options;
      options.shard = id;
      options.dir = dir + "/shard" + std::to_string(id);
      std::filesystem::create_directories(options.dir);
      options.env.map_size_bytes = uint64_t{1} << 28;
      auto opening = Shard::open(std::move(options));
      auto opened = co_await std::move(opening);
      if (!opened.ok()) co_return opened.status();
      shards.push_back(std::move(*opened));
    }
    local = local_shard_stepper(LocalShards{.shard = [this](ShardId id) { return shard(id); }});
    flaky = std::make_unique<FlakyStepper>(local.get());
    auto opening = open_coordinator();
    co_return co_await std::move(opening);
  }

  Task<Status> close_coordinator() {
    Status status;
    if (coordinator) {
      auto closing = coordinator->close();
      status = co_await std::move(closing);
      coordinator.reset();
    }
    co_return status;
  }

  Task<Status> close() {
    auto closing = close_coordinator();
    Status status = co_await std::move(closing);
    for (auto& s : shards) {
      auto shutting = s->close();
      Status closed = co_await std::move(shutting);
      if (status.ok()) status = closed;
    }
    shards.clear();
    co_return status;
  }

  Result<std::optional<Inode>> inode(InodeId id) {
    auto got =
        shard(shard_of(id))->probe_for_step(ProbeRequest{.shard = shard_of(id), .inode = id});
    if (!got.ok()) return got.status();
    return got->inode;
  }
  Result<std::optional<DirEntry>> entry(InodeId parent, const std::string& name) {
    auto got = shard(shard_of(parent))
                   ->probe_for_step(
                       ProbeRequest{.shard = shard_of(parent), .parent = parent, .name = name});
    if (!got.ok()) return got.status();
    return got->entry;
  }
  uint32_t nlink(InodeId id) {
    auto got = inode(id);
    return got.ok() && *got ? (*got)->nlink : 0;
  }

  // A file (or other non-directory) `name` in parent, on parent's shard.
  Task<Result<Inode>> add_file(InodeId parent, std::string name, uint32_t uid = 0,
                               uint32_t mode = 0644) {
    ShardTxn txn = shard(shard_of(parent))->begin();
    Inode file;
    file.id = txn.allocate_inode();
    file.type = InodeType::kFile;
    file.mode = mode;
    file.uid = uid;
    file.nlink = 1;
    txn.put_inode(file);
    txn.put_entry(parent, name, DirEntry{.inode = file.id, .type = InodeType::kFile});
    auto committing = txn.commit();
    Status committed = co_await std::move(committing);
    if (!committed.ok()) co_return committed;
    co_return file;
  }

  // Sets mode and owner of an inode as stored.
  Task<Status> set_mode(InodeId id, uint32_t mode, uint32_t uid = 0, uint32_t gid = 0) {
    auto got = inode(id);
    if (!got.ok()) co_return got.status();
    if (!*got) co_return Status(StatusCode::kNotFound, "no inode");
    Inode changed = **got;
    changed.mode = mode;
    changed.uid = uid;
    changed.gid = gid;
    ShardTxn txn = shard(shard_of(id))->begin();
    txn.put_inode(changed);
    auto committing = txn.commit();
    co_return co_await std::move(committing);
  }

  Task<Result<InodeReply>> mkdir(InodeId parent, std::string name, Credentials cred = root(),
                                 uint32_t mode = 0755, RequestTag tag = {}) {
    MkdirRequest request{.cred = std::move(cred),
                         .tag = tag,
                         .parent = parent,
                         .name = std::move(name),
                         .mode = mode};
    auto making = coordinator->mkdir(request);
    co_return co_await std::move(making);
  }
  Task<Result<RemoveReply>> rmdir(InodeId parent, std::string name, Credentials cred = root()) {
    RemoveRequest request{
        .cred = std::move(cred), .parent = parent, .name = std::move(name), .directory = true};
    auto removing = coordinator->rmdir(request);
    co_return co_await std::move(removing);
  }
  Task<Result<RenameReply>> rename(RenameRequest request) {
    auto renaming = coordinator->rename(request);
    co_return co_await std::move(renaming);
  }
};

}  // namespace mica::meta::testing
