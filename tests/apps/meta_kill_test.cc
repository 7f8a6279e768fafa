// A real mica-meta SIGKILLed under a create, rename and unlink storm (issue 12 item 9):
// kClients MetaClients in the test process (each its own client id, so its own RequestTags)
// create files in their own directory, rename them within it and into the next client's
// directory (another shard: through the coordinator), and unlink them, while the test
// SIGKILLs mica-meta mid-storm and restarts it on the same data and port. The clients'
// calls in flight retry (same tag) until the process is back. Afterwards the coordinator
// has nothing pending, fsck (meta/fsck.h) finds nothing, and every acknowledged operation is
// visible: each client keeps what its acknowledged operations left (name -> directory, or
// gone) and the final tree must match it exactly; a name whose last operation failed (the
// error came back, so it may have happened or not) may be in either place, and no other
// name may exist.
//
// Heavy: mgmtd, one mica-storage (the chain table files take their layout from) and
// mica-meta as processes. Time cap: the storm runs until kAcksBeforeKill acknowledgements,
// then kAcksAfterRestart more after the restart, each wait capped by kStepTimeout (20 s);
// about 10 s in a debug build, under 60 s in all. ctest's TIMEOUT caps the whole test.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "async/executor.h"
#include "meta/fsck.h"
#include "tests/apps/meta_process_run.h"
#include "tests/apps/storage_cluster_process.h"
#include "tests/temp_dir.h"

namespace mica::testing {
namespace {

using namespace std::chrono_literals;
using meta::InodeId;

constexpr int kClients = 4;
constexpr uint64_t kAcksBeforeKill = 150;
constexpr uint64_t kAcksAfterRestart = 150;
constexpr auto kStepTimeout = 20s;
// A client's calls retry across the restart: longer than a restart takes.
constexpr auto kCallTimeout = 20s;

// What one client's acknowledged operations left.
struct ClientModel {
  std::map<std::string, int> present;  // name -> directory index
  std::set<std::string> gone;          // created, then unlinked: acknowledged
  std::set<std::string> uncertain;     // its last operation came back with an error
  std::vector<std::string> errors;     // those errors, for the failure message
};

struct Storm {
  explicit Storm(net::ClusterToken cluster_token) : token(std::move(cluster_token)) {}
  std::string mgmtd;
  net::ClusterToken token;
  std::vector<InodeId> dirs;  // kClients directories, made before the storm
  std::atomic<uint64_t> acks{0};
  std::atomic<bool> stop{false};
  ClientModel models[kClients];
};

std::string fresh_name(int client, uint64_t* counter) {
  return "c" + std::to_string(client) + "-" + std::to_string((*counter)++);
}

// Renames the client's oldest live file to a fresh name, in its directory or (across) the
// next one; *name is the new name.
Task<Status> rename_oldest(MetaStack* stack, Storm* storm, int index, bool across,
                           std::vector<std::string>* live, uint64_t* counter, std::string* name) {
  ClientModel& model = storm->models[index];
  std::string old_name = live->front();
  live->erase(live->begin());
  int from = model.present[old_name];
  int to = across ? (from + 1) % kClients : from;
  *name = fresh_name(index, counter);
  meta::RenameRequest rename{.cred = {},
                             .tag = {},
                             .parent = storm->dirs[from],
                             .name = old_name,
                             .new_parent = storm->dirs[to],
                             .new_name = *name,
                             .noreplace = false,
                             .exchange = false};
  auto renaming = stack->client.rename(rename);
  Result<meta::RenameReply> renamed = co_await std::move(renaming);
  model.present.erase(old_name);
  if (!renamed.ok()) {
    model.uncertain.insert(old_name);  // it is old_name or *name, in one of two places
    co_return renamed.status();
  }
  model.present[*name] = to;
  // Also a file moved to another shard's directory: its later unlink or rename goes through
  // the coordinator (its inode stays on the first shard).
  live->push_back(*name);
  co_return Status::ok_status();
}

// One client's storm: deterministic choices from its index and step.
Task<void> client_storm(Storm* storm, int index) {
  meta::MetaClientOptions options;
  options.call_timeout = kCallTimeout;
  options.attempt_timeout = 2s;
  MetaStack stack(storm->mgmtd, storm->token, options);
  ClientModel& model = storm->models[index];
  meta::Credentials root;
  uint64_t counter = 0;
  uint64_t step = 0;
  std::vector<std::string> live;  // names in model.present, in creation order
  while (!storm->stop.load()) {
    uint64_t choice = (step++ * 2654435761u + static_cast<uint64_t>(index) * 97) % 10;
    Status outcome;
    std::string name;
    const char* op = "create";
    if (live.size() < 3 || choice < 5) {
      name = fresh_name(index, &counter);
      meta::CreateRequest create;
      create.cred = root;
      create.parent = storm->dirs[index];
      create.name = name;
      create.mode = 0644;
      auto creating = stack.client.create(create);
      Result<meta::CreateReply> created = co_await std::move(creating);
      outcome = created.status();
      if (outcome.ok()) {
        model.present[name] = index;
        live.push_back(name);
      }
    } else if (choice < 8) {
      op = "rename";
      auto renaming = rename_oldest(&stack, storm, index, choice == 7, &live, &counter, &name);
      outcome = co_await std::move(renaming);
    } else {
      op = "unlink";
      name = live.front();
      live.erase(live.begin());
      int from = model.present[name];
      meta::RemoveRequest remove{
          .cred = root, .tag = {}, .parent = storm->dirs[from], .name = name, .directory = false};
      auto removing = stack.client.remove(remove);
      Result<meta::RemoveReply> removed = co_await std::move(removing);
      outcome = removed.status();
      model.present.erase(name);
      if (outcome.ok()) model.gone.insert(name);
    }
    if (outcome.ok()) {
      storm->acks.fetch_add(1);
    } else {
      model.uncertain.insert(name);
      model.errors.push_back(std::string(op) + " " + name + ": " + outcome.to_string());
    }
  }
  auto stopping = stack.stop();
  co_await std::move(stopping);
}

Task<void> run_storm(Storm* storm) {
  TaskScope clients;
  for (int i = 0; i < kClients; ++i) clients.spawn(client_storm(storm, i));
  auto joining = clients.join();
  co_await joining;
}

Task<Status> make_dirs(Storm* storm) {
  MetaStack stack(storm->mgmtd, storm->token);
  Status status;
  for (int i = 0; i < kClients && status.ok(); ++i) {
    meta::MkdirRequest mkdir{.cred = {},
                             .tag = {},
                             .parent = meta::kRootInode,
                             .name = "d" + std::to_string(i),
                             .mode = 0777};
    auto making = stack.client.mkdir(mkdir);
    Result<meta::InodeReply> made = co_await std::move(making);
    status = made.status();
    if (made.ok()) storm->dirs.push_back(made->inode.id);
  }
  auto stopping = stack.stop();
  co_await std::move(stopping);
  co_return status;
}

struct Final {
  Status status;
  uint64_t coordinator_pending = 0;
  std::vector<meta::FsckProblem> problems;
  std::vector<std::map<std::string, InodeId>> listing;  // per directory: name -> inode
};

Task<Status> list_dir(meta::MetaClient* client, InodeId dir, std::map<std::string, InodeId>* out) {
  meta::ReaddirRequest request{
      .cred = {}, .dir = dir, .after = {}, .limit = 0, .with_attrs = false};
  while (true) {
    auto reading = client->readdir(request);
    Result<meta::ReaddirReply> page = co_await std::move(reading);
    if (!page.ok()) co_return page.status();
    for (const meta::ReaddirEntry& entry : page->entries) (*out)[entry.name] = entry.inode;
    if (page->end || page->entries.empty()) co_return Status::ok_status();
    request.after = page->entries.back().name;
  }
}

// Waits for the coordinator to finish what the kill interrupted, then fsck and listings.
Task<Final> check(Storm* storm) {
  MetaStack stack(storm->mgmtd, storm->token);
  Final final;
  TimePoint until = deadline_after(kStepTimeout);
  while (true) {
    auto asking = stack.client.status(0);
    Result<meta::MetaStatusReply> status = co_await std::move(asking);
    final.coordinator_pending = status.ok() ? status->coordinator_pending : ~uint64_t{0};
    if (final.coordinator_pending == 0 || Executor::current()->now() >= until) break;
    SleepAwaiter pause = sleep_for(50ms);
    Status paused = co_await pause;
    if (!paused.ok()) break;
  }
  auto checking = meta::fsck(&stack.client);
  Result<std::vector<meta::FsckProblem>> problems = co_await std::move(checking);
  final.status = problems.status();
  if (problems.ok()) final.problems = std::move(*problems);
  for (int i = 0; i < kClients && final.status.ok(); ++i) {
    final.listing.emplace_back();
    auto listing = list_dir(&stack.client, storm->dirs[i], &final.listing.back());
    final.status = co_await std::move(listing);
  }
  auto stopping = stack.stop();
  co_await std::move(stopping);
  co_return final;
}

bool wait_acks(const Storm& storm, uint64_t at_least) {
  auto until = std::chrono::steady_clock::now() + kStepTimeout;
  while (storm.acks.load() < at_least) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// Every name in the tree is a client's, where its acknowledged operations put it.
void expect_acknowledged_tree(const Storm& storm, const Final& final) {
  std::map<std::string, int> seen;
  for (int d = 0; d < kClients; ++d) {
    for (const auto& [name, inode] : final.listing[d]) {
      EXPECT_TRUE(seen.emplace(name, d).second) << name << " is in two directories";
    }
  }
  size_t uncertain = 0, checked = 0;
  for (int c = 0; c < kClients; ++c) {
    const ClientModel& model = storm.models[c];
    uncertain += model.uncertain.size();
    for (const auto& [name, d] : model.present) {
      if (model.uncertain.count(name)) continue;
      ++checked;
      auto it = seen.find(name);
      EXPECT_TRUE(it != seen.end() && it->second == d)
          << name << " acknowledged in d" << d << " but "
          << (it == seen.end() ? "missing" : "in d" + std::to_string(it->second));
    }
    for (const std::string& name : model.gone) {
      if (!model.uncertain.count(name)) {
        EXPECT_EQ(seen.count(name), 0u) << name << " unlinked";
      }
    }
  }
  for (const auto& [name, d] : seen) {
    int client = std::stoi(name.substr(1, name.find('-') - 1));
    const ClientModel& model = storm.models[client];
    EXPECT_TRUE(model.present.count(name) || model.uncertain.count(name))
        << name << " in d" << d << " was never acknowledged there";
  }
  // Calls retried across the restart: at most the few in flight at the kill failed.
  std::string errors;
  for (const ClientModel& model : storm.models) {
    for (const std::string& error : model.errors) errors += "\n  " + error;
  }
  EXPECT_LE(uncertain, size_t{2} * kClients) << "calls that failed:" << errors;
  EXPECT_GT(checked, 0u);
}

TEST(MetaKill, SigkilledMidStormLosesNoAcknowledgedOperationAndFsckIsClean) {
  TempDir dir(binary_dir() + "/apps-test-data", "meta-kill");
  StorageClusterProcess cluster(dir.path(),
                                ClusterProcessOptions{.storage_nodes = 1,
                                                      .targets_per_node = 1,
                                                      .replicas = 1,
                                                      .storage_binary = MICA_STORAGE_BINARY});
  ASSERT_NO_FATAL_FAILURE(cluster.start());
  MetaServerProcess meta(dir.path(), cluster.mgmtd_address(), cluster.token_path());
  ASSERT_NO_FATAL_FAILURE(meta.write_config(4, "lease_ms = 3000\n"));
  ASSERT_NO_FATAL_FAILURE(meta.start());
  ASSERT_NO_FATAL_FAILURE(meta.wait_registered());

  Storm storm(net::load_cluster_token(cluster.token_path()).value());
  storm.mgmtd = cluster.mgmtd_address();
  std::unique_ptr<Executor> setup = Executor::create_uring();
  Status made = setup->block_on(make_dirs(&storm));
  ASSERT_TRUE(made.ok()) << made << read_file(meta.log());
  std::thread clients([&storm] { Executor::create_uring()->block_on(run_storm(&storm)); });

  bool before = wait_acks(storm, kAcksBeforeKill);
  EXPECT_TRUE(before) << "the storm did not start: " << read_file(meta.log());
  EXPECT_EQ(meta.stop(SIGKILL), 128 + SIGKILL);
  uint64_t at_kill = storm.acks.load();
  std::this_thread::sleep_for(200ms);  // calls in flight fail and retry meanwhile
  meta.start();
  bool after = wait_acks(storm, at_kill + kAcksAfterRestart);
  EXPECT_TRUE(after) << "the storm did not resume: " << read_file(meta.log());
  storm.stop.store(true);
  clients.join();
  ASSERT_TRUE(before && after);

  Final final = setup->block_on(check(&storm));
  ASSERT_TRUE(final.status.ok()) << final.status;
  EXPECT_EQ(final.coordinator_pending, 0u);
  for (const meta::FsckProblem& problem : final.problems) {
    ADD_FAILURE() << "fsck: inode " << problem.inode << ": " << problem.message;
  }
  expect_acknowledged_tree(storm, final);
  EXPECT_EQ(meta.stop(SIGTERM), 0) << read_file(meta.log());
}

}  // namespace
}  // namespace mica::testing
