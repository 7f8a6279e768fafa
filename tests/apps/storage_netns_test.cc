// The cluster across network namespaces: mgmtd and every storage node in a namespace of
// its own with its own address, joined by veth pairs to a bridge in the root namespace,
// where the test's client runs. One node is partitioned by taking its link down: mgmtd
// takes its targets out of the chains, the others go on, and after the link comes back up
// the node catches up and serves again. So address advertising and partition handling run
// on real sockets between real addresses, not only on 127.0.0.1.
//
// Needs root and `ip netns` (skipped with the reason otherwise). Names are unique per run
// (netns.h), so ctest -j never collides; the namespaces and links are removed also when a
// test fails. Time caps: the network helper test about 1 s; the partition tests 5-30 s
// each in a debug build (a lease expiry, then the reconnect backoffs after the link is
// back); every wait has its own deadline, and ctest's 90 s TIMEOUT caps the whole test.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "tests/apps/netns.h"
#include "tests/apps/storage_cluster_process.h"
#ifdef MICA_STORAGE_BINARY
#include "tests/apps/storage_under_load.h"
#endif
#include "tests/temp_dir.h"

namespace mica::testing {
namespace {

using namespace std::chrono_literals;

class StorageNetns : public ::testing::Test {
 protected:
  StorageNetns() : dir_(binary_dir() + "/apps-test-data", "netns") {}

  void SetUp() override {
    std::string reason = netns_unavailable_reason(dir_.path());
    if (!reason.empty()) GTEST_SKIP() << reason;
  }

  // A network of 1 + nodes namespaces (mgmtd's first).
  void make_network(int storage_nodes) {
    std::string error;
    net_ = NetnsNetwork::create(storage_nodes + 1, dir_.path(), &error);
    ASSERT_NE(net_, nullptr) << error;
  }

  // Destroyed in reverse: the processes die before their namespaces go.
  TempDir dir_;
  std::unique_ptr<NetnsNetwork> net_;
  std::unique_ptr<StorageClusterProcess> cluster_;
#ifdef MICA_STORAGE_BINARY
  StorageUnderLoad run_;
#endif
};

bool link_exists(const std::string& scratch, const std::string& name) {
  return ip_command({"link", "show", name}, scratch + "/probe");
}

bool netns_exists(const std::string& scratch, const std::string& name) {
  RunResult listed = run({ip_binary(), "netns", "list"}, scratch + "/probe");
  return listed.out.find(name) != std::string::npos;
}

TEST_F(StorageNetns, NetworkGivesEveryNodeItsAddressAndIsRemovedAfterwards) {
  ASSERT_NO_FATAL_FAILURE(make_network(2));
  std::string ns0 = net_->namespace_name(0), ns1 = net_->namespace_name(1);
  std::string bridge = net_->bridge(), link1 = net_->root_link(1);
  EXPECT_TRUE(link_exists(dir_.path(), bridge));
  EXPECT_TRUE(link_exists(dir_.path(), link1));
  EXPECT_NE(net_->address(0), net_->address(1));
  EXPECT_TRUE(netns_exists(dir_.path(), ns0));
  // Node 1's own address answers inside its namespace, and only there.
  RunResult inside = run({ip_binary(), "-n", ns1, "-4", "addr", "show"}, dir_.path() + "/addr");
  EXPECT_NE(inside.out.find(net_->address(1) + "/24"), std::string::npos) << inside.out;
  EXPECT_EQ(inside.out.find(net_->address(0) + "/24"), std::string::npos) << inside.out;
  EXPECT_TRUE(net_->set_link(1, false));
  EXPECT_TRUE(net_->set_link(1, true));
  net_.reset();
  EXPECT_FALSE(netns_exists(dir_.path(), ns0));
  EXPECT_FALSE(netns_exists(dir_.path(), ns1));
  EXPECT_FALSE(link_exists(dir_.path(), bridge));
  EXPECT_FALSE(link_exists(dir_.path(), link1));
}

// mgmtd in one namespace, three storage stand-ins in three others (they register the
// address they dialled from and heartbeat across the bridge); the CLI in the root one.
TEST_F(StorageNetns, MgmtdTakesAPartitionedNodeOutAndBackAfterTheLinkReturns) {
  ASSERT_NO_FATAL_FAILURE(make_network(3));
  cluster_ = std::make_unique<StorageClusterProcess>(
      dir_.path(), ClusterProcessOptions{.standins = true, .netns = net_.get()});
  ASSERT_NO_FATAL_FAILURE(cluster_->start());
  ASSERT_TRUE(net_->set_link(2, false));  // storage node 1 is the namespace after mgmtd's
  EXPECT_TRUE(cluster_->wait_node_out(1, 15s))
      << "mgmtd kept the partitioned node's targets serving:\n"
      << cluster_->describe();
  std::optional<ClusterSeen> cut = cluster_->seen();
  ASSERT_TRUE(cut.has_value());
  EXPECT_EQ(cut->nodes_alive, 2u);
  EXPECT_TRUE(cluster_->node_serves_any(*cut, 0));
  EXPECT_TRUE(cluster_->node_serves_any(*cut, 2));
  ASSERT_TRUE(net_->set_link(2, true));
  EXPECT_TRUE(cluster_->wait_full_strength(20s))
      << "the node did not come back after its link did:\n"
      << cluster_->describe();
  cluster_->stop_all();
}

#ifdef MICA_STORAGE_BINARY
// The real mica-storage in three namespaces, the client streaming from the root one: node
// 1 is partitioned while the writes go on, mgmtd takes its targets out, the writes continue
// on the other two replicas, and after the link is back the node resyncs and serves; every
// acknowledged byte is there and the replicas are identical (storage_under_load.h).
TEST_F(StorageNetns, PartitionedStorageNodeResyncsAfterItsLinkReturns) {
  ASSERT_NO_FATAL_FAILURE(make_network(3));
  ASSERT_NO_FATAL_FAILURE(run_.start(
      dir_.path(),
      ClusterProcessOptions{
          .targets_per_node = 2, .netns = net_.get(), .storage_binary = MICA_STORAGE_BINARY}));
  ASSERT_TRUE(net_->set_link(2, false));  // storage node 1
  ASSERT_NO_FATAL_FAILURE(run_.expect_node_out_and_writes_going_on(1));
  ASSERT_TRUE(net_->set_link(2, true));
  ASSERT_NO_FATAL_FAILURE(run_.heal_and_verify());
}
#endif  // MICA_STORAGE_BINARY

}  // namespace
}  // namespace mica::testing
