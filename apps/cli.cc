#include "apps/cli.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "apps/cli_format.h"
#include "apps/cli_meta.h"
#include "apps/cli_storage.h"
#include "apps/dev_cluster.h"
#include "async/executor.h"
#include "craq/mgmtd_client.h"
#include "net/authenticated_transport.h"
#include "net/rpc_client.h"

namespace mica::apps {
namespace {

using craq::MgmtdService;

CliResult failure(std::string line) {
  return CliResult{.exit_code = kExitFailure, .out = {}, .err = "mica: " + line + "\n"};
}

CliResult unreachable(const CliInvocation& invocation, const Status& why) {
  return failure(fmt::format("cannot reach mgmtd at {}: {}", invocation.mgmtd, why.to_string()));
}

std::string_view command_name(CliCommand command) {
  switch (command) {
    case CliCommand::kStatus:
      return "status";
    case CliCommand::kNodes:
      return "nodes";
    case CliCommand::kTargets:
      return "targets";
    case CliCommand::kChains:
      return "chains";
    case CliCommand::kCreateChainTable:
      return "chain-table create";
    case CliCommand::kTargetOffline:
      return "target offline";
    case CliCommand::kTargetOnline:
      return "target online";
    case CliCommand::kTargetReplace:
      return "target replace";
    case CliCommand::kChainPromote:
      return "chain promote";
    case CliCommand::kTokenGenerate:
      return "token generate";
    case CliCommand::kDevUp:
      return "dev up";
    case CliCommand::kDevDown:
      return "dev down";
    case CliCommand::kPut:
      return "put";
    case CliCommand::kGet:
      return "get";
    case CliCommand::kLs:
      return "ls";
    case CliCommand::kStat:
      return "stat";
    case CliCommand::kMkdir:
      return "mkdir";
    case CliCommand::kRm:
      return "rm";
    case CliCommand::kHelp:
      break;
  }
  return "help";
}

// The answer of one call: formatted, or the line that says why not.
template <class Response, class Format>
CliResult outcome(const CliInvocation& invocation, Result<Response> response, Format format) {
  if (response.ok()) return CliResult{.exit_code = kExitOk, .out = format(*response), .err = {}};
  if (craq::is_mgmtd_unreachable(response.status().code())) {
    return unreachable(invocation, response.status());
  }
  return failure(
      fmt::format("{}: {}", command_name(invocation.command), response.status().to_string()));
}

// `mica status` with the meta shards: a table after the rest, or a "meta" member.
std::string with_meta(std::string text, const std::vector<MetaNodeStatus>& meta, bool json) {
  if (!json) return text + format_meta_status(meta, false);
  size_t end = text.rfind('}');
  if (end == std::string::npos) return text;
  return text.substr(0, end) + ",\"meta\":" + format_meta_status(meta, true) + text.substr(end);
}

// The status-reading commands, all answered from one StatusResponse.
Task<CliResult> run_status(CliInvocation invocation, MgmtdService::Stub stub,
                           net::CallOptions options, net::Transport* transport) {
  auto calling = stub.status(craq::StatusRequest{}, options);
  Result<craq::StatusResponse> response = co_await std::move(calling);
  bool json = invocation.json;
  CliCommand command = invocation.command;
  std::vector<NodeProgress> storage;
  std::vector<MetaNodeStatus> meta;
  if (command == CliCommand::kStatus && response.ok()) {
    auto asking = fetch_progress(transport, *response);
    storage = co_await std::move(asking);
    auto asking_meta = fetch_meta_status(transport, *response);
    meta = co_await std::move(asking_meta);
  }
  co_return outcome(invocation, std::move(response), [&](const craq::StatusResponse& status) {
    switch (command) {
      case CliCommand::kNodes:
        return format_nodes(status, json);
      case CliCommand::kTargets:
        return format_targets(status, json);
      case CliCommand::kChains:
        return format_chains(status, json);
      default:
        return with_meta(format_status(status, json, storage), meta, json);
    }
  });
}

Task<CliResult> run_admin(CliInvocation invocation, MgmtdService::Stub stub,
                          net::CallOptions options) {
  bool json = invocation.json;
  if (invocation.command == CliCommand::kCreateChainTable) {
    auto calling = stub.create_chain_table(invocation.create, options);
    auto response = co_await std::move(calling);
    co_return outcome(invocation, std::move(response),
                      [&](const auto& r) { return format_created_table(r, json); });
  }
  if (invocation.command == CliCommand::kTargetReplace) {
    craq::ReplaceTargetRequest request{.old_target = invocation.target,
                                       .new_target = invocation.new_target};
    auto calling = stub.replace_target(request, options);
    auto response = co_await std::move(calling);
    co_return outcome(invocation, std::move(response), [&](const auto& r) {
      return format_replaced(invocation.target, invocation.new_target, r, json);
    });
  }
  if (invocation.command == CliCommand::kChainPromote) {
    craq::PromoteTargetRequest request{.chain = invocation.chain, .target = invocation.target};
    auto calling = stub.promote_target(request, options);
    auto response = co_await std::move(calling);
    co_return outcome(invocation, std::move(response),
                      [&](const auto& r) { return format_promoted(r, json); });
  }
  bool offline = invocation.command == CliCommand::kTargetOffline;
  craq::SetTargetOfflineRequest request{.target = invocation.target, .offline = offline};
  auto calling = stub.set_target_offline(request, options);
  auto response = co_await std::move(calling);
  co_return outcome(invocation, std::move(response), [&](const auto& r) {
    return format_target_offline(invocation.target, offline, r, json);
  });
}

Task<CliResult> run_call(CliInvocation invocation, net::Transport* transport) {
  TimePoint deadline = deadline_after(std::chrono::milliseconds(invocation.timeout_ms));
  SocketAddress address = SocketAddress::parse(invocation.mgmtd).value();
  auto connecting = net::RpcClient::connect(transport, address, deadline);
  Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(connecting);
  if (!client.ok()) co_return unreachable(invocation, client.status());
  MgmtdService::Stub stub(client->get());
  net::CallOptions options{.deadline = deadline};
  bool reads_status =
      invocation.command == CliCommand::kStatus || invocation.command == CliCommand::kNodes ||
      invocation.command == CliCommand::kTargets || invocation.command == CliCommand::kChains;
  Task<CliResult> running = reads_status ? run_status(invocation, stub, options, transport)
                                         : run_admin(invocation, stub, options);
  CliResult result = co_await std::move(running);
  Task<void> closing = (*client)->close();
  co_await std::move(closing);
  co_return result;
}

Task<CliResult> run_on_executor(CliInvocation invocation, std::optional<net::ClusterToken> token) {
  Result<std::unique_ptr<net::Transport>> inner = net::make_transport(invocation.transport);
  if (!inner.ok()) co_return unreachable(invocation, inner.status());
  std::unique_ptr<net::Transport> authenticated;
  if (token) {
    authenticated = std::make_unique<net::AuthenticatedTransport>(inner->get(), *token);
  }
  net::Transport* transport = authenticated ? authenticated.get() : inner->get();
  if (invocation.command == CliCommand::kPut || invocation.command == CliCommand::kGet) {
    auto running = run_data_command(invocation, transport);
    co_return co_await std::move(running);
  }
  if (invocation.command == CliCommand::kLs || invocation.command == CliCommand::kStat ||
      invocation.command == CliCommand::kMkdir || invocation.command == CliCommand::kRm) {
    auto running = run_meta_command(invocation, transport);
    co_return co_await std::move(running);
  }
  auto running = run_call(invocation, transport);
  co_return co_await std::move(running);
}

// --dir: the dev cluster's mgmtd and token; --file: the bytes to put. Blocking file I/O,
// before any executor runs.
Status resolve_files(CliInvocation* invocation) {
  if (!invocation->dir.empty()) {
    Result<std::string> address = dev_mgmtd_address(invocation->dir);
    if (!address.ok()) return address.status();
    invocation->mgmtd = *address;
    invocation->token_file = invocation->dir + "/" + kDevTokenFile;
  }
  if (invocation->command == CliCommand::kPut && !invocation->data_file.empty()) {
    std::ifstream file(invocation->data_file, std::ios::binary);
    if (!file) return Status(StatusCode::kNotFound, invocation->data_file + ": cannot open it");
    std::ostringstream text;
    text << file.rdbuf();
    invocation->data = text.str();
    if (invocation->data.size() > kCliDataBytesMax) {
      return Status(
          StatusCode::kInvalidArgument,
          fmt::format("{} holds more than {} bytes", invocation->data_file, kCliDataBytesMax));
    }
  }
  return Status::ok_status();
}

CliResult write_out_file(const CliInvocation& invocation, CliResult result) {
  if (invocation.command != CliCommand::kGet || invocation.out_file.empty() ||
      result.exit_code != kExitOk) {
    return result;
  }
  std::ofstream file(invocation.out_file, std::ios::binary | std::ios::trunc);
  file.write(result.data.data(), static_cast<std::streamsize>(result.data.size()));
  if (!file.flush()) return failure(fmt::format("get: cannot write {}", invocation.out_file));
  return result;
}

}  // namespace

CliResult run_cli(const CliInvocation& given) {
  if (given.command == CliCommand::kDevUp) return dev_up(given);
  if (given.command == CliCommand::kDevDown) return dev_down(given);
  CliInvocation invocation = given;
  if (cli_needs_mgmtd(invocation.command)) {
    Status resolved = resolve_files(&invocation);
    if (!resolved.ok()) return failure(resolved.to_string());
  }
  if (invocation.command == CliCommand::kHelp) {
    return CliResult{.exit_code = kExitOk, .out = cli_usage(), .err = {}};
  }
  if (invocation.command == CliCommand::kTokenGenerate) {
    Status made = net::generate_cluster_token_file(invocation.path);
    if (!made.ok()) return failure(fmt::format("token generate: {}", made.to_string()));
    return CliResult{.exit_code = kExitOk,
                     .out = fmt::format("wrote a new cluster token to {}\n", invocation.path),
                     .err = {}};
  }
  std::optional<net::ClusterToken> token;
  if (!invocation.no_token) {
    Result<net::ClusterToken> loaded = net::load_cluster_token(invocation.token_file);
    if (!loaded.ok()) {
      return failure(fmt::format("cannot use the cluster token (--token-file, MICA_TOKEN_FILE): {}",
                                 loaded.status().to_string()));
    }
    token = std::move(*loaded);
  }
  std::unique_ptr<Executor> executor = Executor::create_uring();
  CliResult result = executor->block_on(run_on_executor(invocation, std::move(token)));
  executor.reset();
  return write_out_file(invocation, std::move(result));
}

int cli_main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  CliEnvironment environment;
  if (const char* mgmtd = std::getenv("MICA_MGMTD")) environment.mgmtd = mgmtd;
  if (const char* token = std::getenv("MICA_TOKEN_FILE")) environment.token_file = token;
  Result<CliInvocation> invocation = parse_cli_args(args, environment);
  if (!invocation.ok()) {
    std::fprintf(stderr, "mica: %s\n\n%s", std::string(invocation.status().message()).c_str(),
                 cli_usage().c_str());
    return kExitUsage;
  }
  CliResult result = run_cli(*invocation);
  std::fputs(result.out.c_str(), stdout);
  std::fputs(result.err.c_str(), stderr);
  return result.exit_code;
}

}  // namespace mica::apps
