// Scenario client_files (tests/sim/client_files.cc has the picture): the native client
// (client/client.h) against a whole cluster in one simulated world. This header holds what
// the scenario's two files share: constants, the scenario's state (the storage hosts are
// storage_cluster's, tests/sim/storage_cluster.h, booted by its storage_boot), each file's
// model (bytes known, bytes a failed write may or may not have changed, the lengths the
// contract allows), and the client hosts' entry point (tests/sim/client_files_work.cc).
// One simulated world, one thread: every task belongs to one simulated host.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "meta/meta_node.h"
#include "tests/sim/storage_cluster.h"

namespace mica::sim::client_files {

inline constexpr uint16_t kMetaPort = 7300;
inline constexpr uint32_t kStorageHosts = 3;
inline constexpr uint32_t kShards = 2;
inline constexpr uint32_t kClientHosts = 2;
inline constexpr uint32_t kWorkersPerClient = 2;
// The cluster's chunk size (the chunk engine's smallest): files of a few hundred KiB span
// many chunks, so writes are split and sent over both chains.
inline constexpr uint32_t kFileChunkBytes = 64 * 1024;
inline constexpr uint64_t kFileBytesMax = 256 * 1024;  // writes land below
inline constexpr uint64_t kWriteBytesMax = 96 * 1024;
inline constexpr uint32_t kOpsPerOpenMax = 8;
// Between one file and the next: a few dozen files per worker and seed keep a seed cheap.
inline constexpr Duration kFilePauseMin = std::chrono::milliseconds(50);
inline constexpr Duration kFilePauseMax = std::chrono::milliseconds(150);
// A client call's deadline: longer than any fault window plus failure detection, so a
// call that meets a crash or a partition retries through it instead of failing.
inline constexpr Duration kClientCallTimeout = std::chrono::seconds(20);
// Faults in [kFaultStart, kFaultEnd); the workers open no new file after kFaultEnd.
inline constexpr Duration kFaultStart = std::chrono::milliseconds(1500);
inline constexpr Duration kFaultEnd = std::chrono::milliseconds(5000);
inline constexpr uint32_t kCrashesMax = 3;
inline constexpr uint32_t kPartitionsMax = 3;

// What the workload knows of one file.
struct FileModel {
  std::string path;
  std::vector<uint8_t> bytes;  // the value of every byte a write acknowledged (0: a hole)
  std::vector<bool> unsure;    // a failed write may have changed it
  uint64_t acked_end = 0;      // the end of the acknowledged writes (and of open's length)
  uint64_t tried_end = 0;      // the end of every write tried, failed ones too
  bool closed_ok = false;      // close acknowledged: metadata holds at least acked_end
  bool lost = false;           // its open failed: nothing is known of it
};

struct State {
  Cluster cluster;  // mgmtd, storage hosts, counters shared with storage_cluster
  SimHost* meta_host = nullptr;
  SocketAddress meta_address;
  meta::MetaNode* meta = nullptr;  // while the meta host is up
  bool ready = false;              // chain table made and known to meta: workers start
  bool recovered = false;          // healed and every chain at full strength: final checks
  uint32_t workers_running = 0;
  std::vector<std::unique_ptr<FileModel>> files;  // stable addresses across suspensions
  uint64_t writes_acked = 0;
  uint64_t writes_failed = 0;
  uint64_t reads_checked = 0;
  uint64_t calls_failed = 0;
  uint64_t closes_checked = 0;
  uint64_t files_verified = 0;
  uint64_t bytes_verified = 0;
  uint64_t meta_crashes = 0;
};

// tests/sim/client_files.cc: the mgmtd and meta hosts' boots and the faults.
SimHost::BootFn mgmtd_boot(State* s);
SimHost::BootFn meta_boot(State* s);
void schedule_client_faults(State* s);
// tests/sim/client_files_run.cc: the admin (chain table, readiness, recovery).
Task<void> admin_main(State* s, SimHost* host);

// Runs one client host: connect, kWorkersPerClient workers, each verifying its files once
// recovered, close.
Task<void> client_main(State* s, SimHost* host, uint32_t index);

}  // namespace mica::sim::client_files
