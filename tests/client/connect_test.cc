// Client::connect against a real dev cluster: it connects with the cluster's token and
// routing names the meta shards and chains; a wrong token or no mgmtd is a clear error.
//
// Heavy: starts a dev cluster (tests/client/client_cluster.h states the time caps).
#include <gtest/gtest.h>

#include "net/cluster_token.h"
#include "tests/client/client_cluster.h"

namespace mica::testing {
namespace {

using namespace std::chrono_literals;

Task<void> expect_routing_with_shards_and_chains(client::Client* c) {
  craq::RoutingClient::SnapshotPtr routing = c->routing().current();
  EXPECT_TRUE(routing != nullptr);
  if (routing == nullptr) co_return;
  EXPECT_FALSE(routing->meta_shards.empty());
  EXPECT_FALSE(routing->chains.empty());
}

TEST(ClientConnect, ConnectsToADevClusterAndSeesItsRouting) {
  ClientCluster cluster("connect");
  ASSERT_TRUE(cluster.up()) << cluster.up_output();
  Status s = with_client(cluster.options(), expect_routing_with_shards_and_chains);
  EXPECT_TRUE(s.ok()) << s;
}

Task<void> nothing(client::Client*) { co_return; }

TEST(ClientConnect, AWrongTokenIsRefusedWithAClearError) {
  ClientCluster cluster("wrong-token");
  ASSERT_TRUE(cluster.up()) << cluster.up_output();
  client::ClientOptions options = cluster.options();
  options.token_file.clear();
  options.token = *net::ClusterToken::from_secret("not the cluster's secret at all");
  options.call_timeout = 3s;
  Status s = with_client(options, nothing);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.to_string().find("cannot reach mgmtd"), std::string::npos) << s;
}

TEST(ClientConnect, AMissingTokenFileOrBadAddressIsAnErrorBeforeAnyCall) {
  client::ClientOptions options;
  options.mgmtd = "127.0.0.1:1";
  options.token_file = binary_dir() + "/no-such-token-file";
  Status s = with_client(options, nothing);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s;
  options.token_file.clear();
  options.mgmtd = "not an address";
  s = with_client(options, nothing);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
}

}  // namespace
}  // namespace mica::testing
