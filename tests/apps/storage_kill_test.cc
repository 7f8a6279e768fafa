// Real processes killed under load: mica-mgmtd and three mica-storage processes (four
// targets each, so four 3-replica chains), a client in the test process streaming writes
// of known patterns to 24 chunks over all chains while storage processes (and mgmtd) are
// SIGKILLed and restarted. Afterwards every acknowledged byte reads back through the client,
// every replica of every chunk holds the same length, checksum and version (stat_chunk at
// each node), and after a clean stop each target's engine passes fsck and holds exactly the
// model's bytes, read directly from its directory (tests/apps/storage_under_load.h).
//
// Time caps (debug build, 2 cores): about 20 s per test, mostly lease expiries (2.5 s) and
// resync; each wait has its own deadline, so a test fails well under ctest's 90 s TIMEOUT.
// Compiled only where the build has mica-storage (tests/CMakeLists.txt).
#ifdef MICA_STORAGE_BINARY
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tests/apps/storage_under_load.h"
#include "tests/temp_dir.h"

namespace mica::testing {
namespace {

using namespace std::chrono_literals;

class StorageKill : public ::testing::Test {
 protected:
  StorageKill() : dir_(binary_dir() + "/apps-test-data", "storage-kill") {}
  void start() {
    run_.start(dir_.path(),
               ClusterProcessOptions{.targets_per_node = 4, .storage_binary = MICA_STORAGE_BINARY});
  }
  TempDir dir_;
  StorageUnderLoad run_;
};

TEST_F(StorageKill, SigkilledStorageProcessLosesNoAcknowledgedWriteAndResyncs) {
  ASSERT_NO_FATAL_FAILURE(start());
  ASSERT_NO_FATAL_FAILURE(run_.kill_storage_under_load(1));
  ASSERT_NO_FATAL_FAILURE(run_.cluster->start_storage(1));
  ASSERT_NO_FATAL_FAILURE(run_.heal_and_verify());
}

// Node 1, then node 2 while node 1 is still down: node 0 alone takes the writes for a while.
TEST_F(StorageKill, TwoStorageProcessesKilledOneAfterTheOtherLoseNothing) {
  ASSERT_NO_FATAL_FAILURE(start());
  ASSERT_NO_FATAL_FAILURE(run_.kill_storage_under_load(1));
  ASSERT_NO_FATAL_FAILURE(run_.kill_storage_under_load(2));
  ASSERT_NO_FATAL_FAILURE(run_.cluster->start_storage(1));
  ASSERT_NO_FATAL_FAILURE(run_.cluster->start_storage(2));
  ASSERT_NO_FATAL_FAILURE(run_.heal_and_verify());
}

// mgmtd dies while a storage node is down, and the node comes back before mgmtd does: the
// data path goes on without mgmtd, and the restarted mgmtd brings the node back in.
TEST_F(StorageKill, MgmtdKilledMeanwhileLosesNothing) {
  ASSERT_NO_FATAL_FAILURE(start());
  ASSERT_NO_FATAL_FAILURE(run_.kill_storage_under_load(1));
  run_.cluster->kill_mgmtd();
  ASSERT_TRUE(run_.writer->wait_for_acks(kAcksPerStep, kStepTimeout))
      << "writes stopped without mgmtd: " << run_.workload->last_error();
  ASSERT_NO_FATAL_FAILURE(run_.cluster->start_storage(1));
  std::this_thread::sleep_for(500ms);
  ASSERT_NO_FATAL_FAILURE(run_.cluster->start_mgmtd());
  ASSERT_NO_FATAL_FAILURE(run_.heal_and_verify());
}

}  // namespace
}  // namespace mica::testing
#endif  // MICA_STORAGE_BINARY
