// The `mica` grammar: what each command line means, the environment's defaults, and the
// message a bad one gets.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "apps/cli_args.h"

namespace mica::apps {
namespace {

Result<CliInvocation> parse(std::vector<std::string_view> args, CliEnvironment env = {}) {
  return parse_cli_args(args, env);
}

std::string error_of(std::vector<std::string_view> args) {
  Result<CliInvocation> parsed = parse(std::move(args));
  return parsed.ok() ? std::string() : std::string(parsed.status().message());
}

TEST(CliArgs, DefaultsComeFromTheEnvironmentThenTheBuiltIns) {
  Result<CliInvocation> plain = parse({"status"});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->mgmtd, "127.0.0.1:9000");
  EXPECT_EQ(plain->token_file, "cluster.token");
  EXPECT_FALSE(plain->json);
  Result<CliInvocation> from_env =
      parse({"status"}, CliEnvironment{.mgmtd = "10.0.0.1:7000", .token_file = "/etc/t"});
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ(from_env->mgmtd, "10.0.0.1:7000");
  EXPECT_EQ(from_env->token_file, "/etc/t");
  Result<CliInvocation> flags = parse({"--mgmtd", "10.0.0.2:1", "--token-file=/t", "status"},
                                      CliEnvironment{.mgmtd = "10.0.0.1:7000", .token_file = {}});
  ASSERT_TRUE(flags.ok());
  EXPECT_EQ(flags->mgmtd, "10.0.0.2:1");
  EXPECT_EQ(flags->token_file, "/t");
}

TEST(CliArgs, GlobalOptionsMayFollowTheCommand) {
  Result<CliInvocation> parsed = parse({"chains", "--json", "--no-token", "--transport", "tcp"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->command, CliCommand::kChains);
  EXPECT_TRUE(parsed->json);
  EXPECT_TRUE(parsed->no_token);
  EXPECT_EQ(parsed->transport, net::TransportChoice::kTcp);
}

TEST(CliArgs, ChainTableCreateTakesReplicasNodesAndSeed) {
  Result<CliInvocation> parsed =
      parse({"chain-table", "create", "--replicas", "2", "--nodes", "3,1,2", "--seed=99"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->command, CliCommand::kCreateChainTable);
  EXPECT_EQ(parsed->create.replica_count, 2u);
  EXPECT_EQ(parsed->create.nodes, (std::vector<craq::NodeId>{3, 1, 2}));
  EXPECT_EQ(parsed->create.seed, 99u);
  Result<CliInvocation> bare = parse({"chain-table", "create"});
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->create.replica_count, 0u) << "0: the cluster config's";
}

TEST(CliArgs, TargetAndChainCommandsTakeTheirIds) {
  Result<CliInvocation> offline = parse({"target", "offline", "7"});
  ASSERT_TRUE(offline.ok());
  EXPECT_EQ(offline->command, CliCommand::kTargetOffline);
  EXPECT_EQ(offline->target, 7u);
  Result<CliInvocation> online = parse({"target", "online", "7"});
  ASSERT_TRUE(online.ok());
  EXPECT_EQ(online->command, CliCommand::kTargetOnline);
  Result<CliInvocation> replace = parse({"target", "replace", "7", "12"});
  ASSERT_TRUE(replace.ok());
  EXPECT_EQ(replace->command, CliCommand::kTargetReplace);
  EXPECT_EQ(replace->target, 7u);
  EXPECT_EQ(replace->new_target, 12u);
  Result<CliInvocation> promote = parse({"chain", "promote", "3", "9"});
  ASSERT_TRUE(promote.ok());
  EXPECT_EQ(promote->command, CliCommand::kChainPromote);
  EXPECT_EQ(promote->chain, 3u);
  EXPECT_EQ(promote->target, 9u);
}

TEST(CliArgs, HelpWinsOverEverythingElse) {
  Result<CliInvocation> parsed = parse({"target", "--help"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->command, CliCommand::kHelp);
}

TEST(CliArgs, BadFormsSayWhatIsWrong) {
  EXPECT_EQ(error_of({}), "no command given");
  EXPECT_EQ(error_of({"stats"}), "unknown command \"stats\"");
  EXPECT_EQ(error_of({"--verbose", "status"}), "unknown option \"--verbose\"");
  EXPECT_EQ(error_of({"status", "--mgmtd"}), "--mgmtd needs a value");
  EXPECT_EQ(error_of({"--mgmtd", "host", "status"}), "--mgmtd must be HOST:PORT (got \"host\")");
  EXPECT_EQ(error_of({"target", "offline", "seven"}), "TARGET must be a number (got \"seven\")");
  EXPECT_EQ(error_of({"target", "replace", "1", "0"}),
            "NEW must be between 1 and "
            "18446744073709551615 (got 0)");
  EXPECT_EQ(error_of({"chain-table", "create", "--replicas", "17"}),
            "--replicas must be between 1 and 16 (got 17)");
  EXPECT_EQ(error_of({"chain-table", "create", "--nodes", "1,x"}),
            "a node id in --nodes must be a number (got \"x\")");
  EXPECT_EQ(error_of({"chain-table", "create", "--force"}),
            "chain-table create: unknown option \"--force\"");
  EXPECT_EQ(error_of({"chain", "promote", "1", "99999999999999999999"}),
            "TARGET must be a number (got \"99999999999999999999\")");
}

TEST(CliArgs, NamespaceCommandsTakeOneAbsolutePath) {
  Result<CliInvocation> ls = parse({"ls", "/data/train"});
  ASSERT_TRUE(ls.ok()) << ls.status();
  EXPECT_EQ(ls->command, CliCommand::kLs);
  EXPECT_EQ(ls->fs_path, "/data/train");
  EXPECT_EQ(parse({"stat", "/"})->command, CliCommand::kStat);
  EXPECT_EQ(parse({"mkdir", "/a"})->command, CliCommand::kMkdir);
  EXPECT_EQ(parse({"--dir", "d", "rm", "/a"})->command, CliCommand::kRm);
  EXPECT_EQ(error_of({"ls"}), "usage: mica ls PATH");
  EXPECT_EQ(error_of({"rm", "/a", "/b"}), "usage: mica rm PATH");
  EXPECT_EQ(error_of({"mkdir", "a"}), "mkdir: PATH must be absolute (got \"a\")");
}

}  // namespace
}  // namespace mica::apps
