// What `mica` prints for a small cluster: the status summary, the tables, and --json that
// parses and carries the same facts.
#include <gtest/gtest.h>

#include <string>

#include "apps/cli_format.h"
#include "tests/apps/json_read.h"

namespace mica::apps {
namespace {

using craq::ChainInfo;
using craq::LocalState;
using craq::PublicState;
using testing::JsonValue;
using testing::parse_json;

// Three storage nodes (one dead), six targets, two chains of a 3-replica table: chain 1
// healthy, chain 2 degraded (target 6 offline); and chain 3 of another table, blocked.
craq::StatusResponse cluster() {
  craq::StatusResponse s;
  s.routing.version = 42;
  for (craq::NodeId id = 1; id <= 3; ++id) {
    s.routing.nodes.push_back(
        craq::NodeInfo{.id = id,
                       .kind = craq::NodeKind::kStorage,
                       .identity = "x",
                       .host_name = "host\"" + std::to_string(id),
                       .rpc_address = "10.0.0." + std::to_string(id) + ":9001",
                       .tags = {"rack-a"},
                       .registered_at_ms = 0});
    s.nodes.push_back(craq::NodeStatus{.node = id, .alive = id != 3, .heartbeat_age_ms = id * 100});
  }
  for (craq::TargetId id = 1; id <= 7; ++id) {
    s.routing.targets.push_back(
        craq::TargetInfo{.id = id,
                         .node = static_cast<craq::NodeId>((id - 1) % 3 + 1),
                         .identity = "t",
                         .disk = "/disk" + std::to_string(id),
                         .chain = id <= 3   ? 1u
                                  : id <= 6 ? 2u
                                            : 3u,
                         .capacity_bytes = uint64_t{1} << 40,
                         .used_bytes = 1536,
                         .admin_offline = id == 6});
    s.targets.push_back(
        craq::TargetStatus{.target = id,
                           .local = id == 6 ? LocalState::kOffline : LocalState::kUpToDate,
                           .reported_chain_version = 1});
  }
  s.routing.chains.push_back(ChainInfo{
      .id = 1,
      .version = 1,
      .targets = {
          {1, PublicState::kServing}, {2, PublicState::kServing}, {3, PublicState::kServing}}});
  s.routing.chains.push_back(ChainInfo{
      .id = 2,
      .version = 3,
      .targets = {
          {4, PublicState::kServing}, {5, PublicState::kServing}, {6, PublicState::kOffline}}});
  s.routing.chains.push_back(
      ChainInfo{.id = 3, .version = 5, .targets = {{7, PublicState::kLastServing}}});
  s.routing.tables.push_back(
      craq::ChainTable{.id = 1, .version = 1, .replica_count = 3, .chains = {1, 2}});
  s.routing.tables.push_back(
      craq::ChainTable{.id = 2, .version = 1, .replica_count = 1, .chains = {3}});
  return s;
}

TEST(CliFormat, ChainHealthJudgesServingTargetsAndLength) {
  ChainInfo chain{
      .id = 1, .version = 1, .targets = {{1, PublicState::kServing}, {2, PublicState::kServing}}};
  EXPECT_EQ(chain_health(chain, 2), ChainHealth::kHealthy);
  EXPECT_EQ(chain_health(chain, 3), ChainHealth::kDegraded) << "shorter than its table asks";
  chain.targets[1].state = PublicState::kSyncing;
  EXPECT_EQ(chain_health(chain, 2), ChainHealth::kDegraded);
  chain.targets[0].state = PublicState::kLastServing;
  EXPECT_EQ(chain_health(chain, 2), ChainHealth::kBlocked);
}

TEST(CliFormat, StatusSummarisesAndListsChainsNotAtFullStrength) {
  std::string text = format_status(cluster(), false);
  EXPECT_EQ(text,
            "routing version 42\n"
            "nodes    3 (2 alive, 1 dead)\n"
            "targets  7 (6 up-to-date, 0 online, 1 offline; 7 in chains)\n"
            "chains   3 (1 healthy, 1 degraded, 1 blocked) in 2 tables\n"
            "replicas 5 serving, 0 syncing, 0 waiting, 1 lastsrv, 1 offline\n"
            "\n"
            "chains not at full strength:\n"
            "CHAIN  VERSION  HEALTH    TARGETS\n"
            "2      3        degraded  4:serving 5:serving 6:offline\n"
            "3      5        blocked   7:lastsrv\n");
}

TEST(CliFormat, TablesAlignTheirColumns) {
  TextTable table({"A", "LONG HEADER", "C"});
  table.add_row({"wide cell", "x", "y"});
  EXPECT_EQ(table.render(),
            "A          LONG HEADER  C\n"
            "wide cell  x            y\n");
  std::string chains = format_chains(cluster(), false);
  EXPECT_EQ(chains.substr(0, chains.find('\n')),
            "CHAIN  TABLE  VERSION  HEALTH    TARGETS (head to tail)");
  EXPECT_NE(chains.find("1      1      1        healthy   1:serving 2:serving 3:serving\n"),
            std::string::npos)
      << chains;
  std::string nodes = format_nodes(cluster(), false);
  EXPECT_NE(nodes.find("3     storage  host\"3  10.0.0.3:9001  no     0.3s ago   2\n"),
            std::string::npos)
      << nodes;
  std::string targets = format_targets(cluster(), false);
  EXPECT_NE(targets.find("offline (admin)"), std::string::npos) << targets;
  EXPECT_NE(targets.find("1.5 KiB"), std::string::npos) << targets;
}

TEST(CliFormat, StatusJsonParsesAndCarriesTheSameFacts) {
  std::optional<JsonValue> json = parse_json(format_status(cluster(), true));
  ASSERT_TRUE(json.has_value());
  const JsonValue& j = *json;
  EXPECT_EQ(j["routing_version"].number, 42u);
  EXPECT_EQ(j["summary"]["nodes_alive"].number, 2u);
  EXPECT_EQ(j["summary"]["chain_health"]["degraded"].number, 1u);
  EXPECT_EQ(j["summary"]["public_states"]["lastsrv"].number, 1u);
  ASSERT_EQ(j["nodes"].items.size(), 3u);
  EXPECT_EQ(j["nodes"][2]["host"].text, "host\"3") << "escaped and read back";
  EXPECT_FALSE(j["nodes"][2]["alive"].flag);
  EXPECT_EQ(j["nodes"][0]["tags"][0].text, "rack-a");
  ASSERT_EQ(j["targets"].items.size(), 7u);
  EXPECT_EQ(j["targets"][5]["state"].text, "offline");
  EXPECT_TRUE(j["targets"][5]["admin_offline"].flag);
  EXPECT_EQ(j["targets"][5]["local"].text, "offline");
  ASSERT_EQ(j["chains"].items.size(), 3u);
  EXPECT_EQ(j["chains"][1]["health"].text, "degraded");
  EXPECT_EQ(j["chains"][1]["table"].number, 1u);
  EXPECT_EQ(j["chains"][1]["targets"][2]["target"].number, 6u);
  EXPECT_EQ(j["tables"][1]["replica_count"].number, 1u);
}

TEST(CliFormat, EveryJsonFormParses) {
  craq::StatusResponse s = cluster();
  for (const std::string& text :
       {format_nodes(s, true), format_targets(s, true), format_chains(s, true),
        format_created_table(craq::CreateChainTableResponse{.table = s.routing.tables[0],
        .chains = s.routing.chains},
                             true),
        format_target_offline(3, true, craq::SetTargetOfflineResponse{.routing_version = 9}, true),
        format_replaced(6, 8, craq::ReplaceTargetResponse{.chain = s.routing.chains[1]}, true),
        format_promoted(craq::PromoteTargetResponse{.chain = s.routing.chains[2],
        .warning = "writes \"may\" be lost\n"},
                        true)}) {
    EXPECT_TRUE(parse_json(text).has_value()) << text;
  }
}

TEST(CliFormat, PromotePrintsItsWarning) {
  craq::PromoteTargetResponse response{.chain = cluster().routing.chains[2],
                                       .warning = "acknowledged writes may be lost"};
  EXPECT_NE(format_promoted(response, false).find("WARNING: acknowledged writes may be lost\n"),
            std::string::npos);
}

TEST(CliFormat, BytesInBinaryUnits) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(uint64_t{1} << 40), "1.0 TiB");
}

}  // namespace
}  // namespace mica::apps
