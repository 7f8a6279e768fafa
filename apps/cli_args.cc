#include "apps/cli_args.h"

#include <fmt/format.h>

#include <charconv>
#include <limits>
#include <vector>

#include "async/socket_address.h"

namespace mica::apps {
namespace {

Status usage_error(std::string message) {
  return Status(StatusCode::kInvalidArgument, std::move(message));
}

// A decimal number in [min, max], named `what` in the message.
Result<uint64_t> parse_number(std::string_view text, std::string_view what, uint64_t min,
                              uint64_t max) {
  uint64_t n = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return usage_error(fmt::format("{} must be a number (got \"{}\")", what, text));
  }
  if (n < min || n > max) {
    return usage_error(fmt::format("{} must be between {} and {} (got {})", what, min, max, n));
  }
  return n;
}

Result<uint64_t> parse_id(std::string_view text, std::string_view what, uint64_t max) {
  return parse_number(text, what, 1, max);
}

// The words of the command line, one at a time; "--name=value" is split into two.
class Words {
 public:
  explicit Words(std::span<const std::string_view> args) {
    for (std::string_view arg : args) {
      size_t eq = arg.find('=');
      if (arg.starts_with("--") && eq != std::string_view::npos) {
        words_.push_back(arg.substr(0, eq));
        words_.push_back(arg.substr(eq + 1));
      } else {
        words_.push_back(arg);
      }
    }
  }
  bool done() const { return next_ == words_.size(); }
  std::string_view peek() const { return words_[next_]; }
  std::string_view take() { return words_[next_++]; }
  Result<std::string_view> value_of(std::string_view option) {
    if (done()) return usage_error(fmt::format("{} needs a value", option));
    return take();
  }

 private:
  std::vector<std::string_view> words_;
  size_t next_ = 0;
};

// Takes the global option at the front of words into out; false if it is none.
Result<bool> take_global(Words* words, CliInvocation* out, bool* help) {
  std::string_view option = words->peek();
  auto value = [&]() -> Result<std::string_view> {
    words->take();
    return words->value_of(option);
  };
  if (option == "--json" || option == "--no-token" || option == "--help" || option == "-h") {
    words->take();
    if (option == "--json") out->json = true;
    if (option == "--no-token") out->no_token = true;
    if (option == "--help" || option == "-h") *help = true;
    return true;
  }
  if (option == "--mgmtd" || option == "--token-file" || option == "--transport" ||
      option == "--timeout-ms" || option == "--dir") {
    Result<std::string_view> v = value();
    if (!v.ok()) return v.status();
    if (option == "--mgmtd") out->mgmtd = std::string(*v);
    if (option == "--dir") {
      if (v->empty()) return usage_error("--dir needs a folder");
      out->dir = std::string(*v);
    }
    if (option == "--token-file") out->token_file = std::string(*v);
    if (option == "--transport") {
      Result<net::TransportChoice> choice = net::parse_transport_choice(*v);
      if (!choice.ok()) return usage_error("--transport must be tcp, rdma or auto");
      out->transport = *choice;
    }
    if (option == "--timeout-ms") {
      Result<uint64_t> ms = parse_number(*v, "--timeout-ms", 1, 3600 * 1000);
      if (!ms.ok()) return ms.status();
      out->timeout_ms = static_cast<uint32_t>(*ms);
    }
    return true;
  }
  return false;
}

Result<std::vector<craq::NodeId>> parse_node_list(std::string_view text) {
  std::vector<craq::NodeId> nodes;
  while (true) {
    size_t comma = text.find(',');
    Result<uint64_t> id = parse_id(text.substr(0, comma), "a node id in --nodes",
                                   std::numeric_limits<craq::NodeId>::max());
    if (!id.ok()) return id.status();
    nodes.push_back(static_cast<craq::NodeId>(*id));
    if (nodes.size() > kCliNodesMax) {
      return usage_error(fmt::format("--nodes names more than {} nodes", kCliNodesMax));
    }
    if (comma == std::string_view::npos) return nodes;
    text.remove_prefix(comma + 1);
  }
}

Status parse_create_options(const std::vector<std::string_view>& rest, CliInvocation* out) {
  for (size_t i = 0; i < rest.size(); i += 2) {
    std::string_view option = rest[i];
    if (option != "--replicas" && option != "--nodes" && option != "--seed") {
      return usage_error(fmt::format("chain-table create: unknown option \"{}\"", option));
    }
    if (i + 1 >= rest.size()) return usage_error(fmt::format("{} needs a value", option));
    std::string_view value = rest[i + 1];
    if (option == "--replicas") {
      Result<uint64_t> n = parse_number(value, "--replicas", 1, 16);
      if (!n.ok()) return n.status();
      out->create.replica_count = static_cast<uint32_t>(*n);
    } else if (option == "--nodes") {
      Result<std::vector<craq::NodeId>> nodes = parse_node_list(value);
      if (!nodes.ok()) return nodes.status();
      out->create.nodes = std::move(*nodes);
    } else {
      Result<uint64_t> seed =
          parse_number(value, "--seed", 0, std::numeric_limits<uint64_t>::max());
      if (!seed.ok()) return seed.status();
      out->create.seed = *seed;
    }
  }
  return Status::ok_status();
}

Status expect_count(const std::vector<std::string_view>& rest, size_t count,
                    std::string_view form) {
  if (rest.size() != count) return usage_error(fmt::format("usage: mica {}", form));
  return Status::ok_status();
}

constexpr uint64_t kTargetIdMax = std::numeric_limits<craq::TargetId>::max();
constexpr uint64_t kChainIdMax = std::numeric_limits<craq::ChainId>::max();

Status parse_target_command(const std::vector<std::string_view>& rest, CliInvocation* out) {
  std::string_view verb = rest.empty() ? std::string_view() : rest[0];
  if (verb == "offline" || verb == "online") {
    RETURN_IF_ERROR(expect_count(rest, 2, fmt::format("target {} TARGET", verb)));
    out->command = verb == "offline" ? CliCommand::kTargetOffline : CliCommand::kTargetOnline;
  } else if (verb == "replace") {
    RETURN_IF_ERROR(expect_count(rest, 3, "target replace OLD NEW"));
    out->command = CliCommand::kTargetReplace;
    Result<uint64_t> new_target = parse_id(rest[2], "NEW", kTargetIdMax);
    if (!new_target.ok()) return new_target.status();
    out->new_target = *new_target;
  } else {
    return usage_error("usage: mica target offline|online TARGET, mica target replace OLD NEW");
  }
  Result<uint64_t> target = parse_id(rest[1], verb == "replace" ? "OLD" : "TARGET", kTargetIdMax);
  if (!target.ok()) return target.status();
  out->target = *target;
  return Status::ok_status();
}

Status parse_dev_command(const std::vector<std::string_view>& rest, CliInvocation* out) {
  std::string_view verb = rest.empty() ? std::string_view() : rest[0];
  if (verb == "down") {
    out->command = CliCommand::kDevDown;
    return expect_count(rest, 1, "dev down [--dir DIR]");
  }
  if (verb != "up")
    return usage_error(
        "usage: mica dev up [--storage N] [--targets K] [--dir DIR] [--mount MNT], mica dev down "
        "[--dir DIR]");
  out->command = CliCommand::kDevUp;
  for (size_t i = 1; i < rest.size(); i += 2) {
    bool targets = rest[i] == "--targets";
    if (rest[i] != "--storage" && !targets && rest[i] != "--mount") {
      return usage_error(fmt::format("dev up: unknown option \"{}\"", rest[i]));
    }
    if (i + 1 >= rest.size()) return usage_error(fmt::format("{} needs a value", rest[i]));
    if (rest[i] == "--mount") {
      if (rest[i + 1].empty()) return usage_error("--mount needs a directory");
      out->mount = std::string(rest[i + 1]);
      continue;
    }
    Result<uint64_t> n = parse_number(rest[i + 1], targets ? "--targets" : "--storage", 1,
                                      targets ? kDevTargetsMax : kDevStorageMax);
    if (!n.ok()) return n.status();
    (targets ? out->targets_per_node : out->storage_count) = static_cast<uint32_t>(*n);
  }
  return Status::ok_status();
}

// put CHAIN INODE INDEX OFFSET --file F|--data STR; get CHAIN INODE INDEX OFFSET LENGTH
// [--out F]. The options may come anywhere after the command.
Status parse_data_command(std::string_view name, const std::vector<std::string_view>& rest,
                          CliInvocation* out) {
  bool put = name == "put";
  std::vector<std::string_view> positional;
  bool have_data = false;
  for (size_t i = 0; i < rest.size(); ++i) {
    std::string_view word = rest[i];
    bool known = put ? (word == "--file" || word == "--data") : word == "--out";
    if (!known) {
      if (word.starts_with("--"))
        return usage_error(fmt::format("{}: unknown option \"{}\"", name, word));
      positional.push_back(word);
      continue;
    }
    if (i + 1 >= rest.size()) return usage_error(fmt::format("{} needs a value", word));
    std::string value(rest[++i]);
    if (word == "--out") {
      out->out_file = value;
    } else {
      if (have_data) return usage_error("put: give one of --file and --data");
      have_data = true;
      (word == "--file" ? out->data_file : out->data) = value;
      if (word == "--file" && value.empty()) return usage_error("--file needs a file");
    }
  }
  std::string_view form = put ? "put CHAIN INODE INDEX OFFSET --file F|--data STR"
                              : "get CHAIN INODE INDEX OFFSET LENGTH [--out F]";
  RETURN_IF_ERROR(expect_count(positional, put ? 4 : 5, form));
  if (put && !have_data) return usage_error(fmt::format("usage: mica {}", form));
  Result<uint64_t> chain = parse_id(positional[0], "CHAIN", kChainIdMax);
  if (!chain.ok()) return chain.status();
  Result<uint64_t> inode =
      parse_number(positional[1], "INODE", 0, std::numeric_limits<uint64_t>::max());
  if (!inode.ok()) return inode.status();
  Result<uint64_t> index =
      parse_number(positional[2], "INDEX", 0, std::numeric_limits<uint32_t>::max());
  if (!index.ok()) return index.status();
  Result<uint64_t> offset = parse_number(positional[3], "OFFSET", 0, kCliDataBytesMax - 1);
  if (!offset.ok()) return offset.status();
  if (!put) {
    Result<uint64_t> length = parse_number(positional[4], "LENGTH", 1, kCliDataBytesMax);
    if (!length.ok()) return length.status();
    out->length = static_cast<uint32_t>(*length);
  }
  if (put && out->data_file.empty() && out->data.size() > kCliDataBytesMax) {
    return usage_error(fmt::format("--data holds more than {} bytes", kCliDataBytesMax));
  }
  out->command = put ? CliCommand::kPut : CliCommand::kGet;
  out->chain_id = static_cast<craq::ChainId>(*chain);
  out->inode = *inode;
  out->chunk_index = static_cast<uint32_t>(*index);
  out->offset = static_cast<uint32_t>(*offset);
  return Status::ok_status();
}

Status parse_command(std::string_view name, std::vector<std::string_view> rest,
                     CliInvocation* out) {
  if (name == "status" || name == "nodes" || name == "targets" || name == "chains") {
    RETURN_IF_ERROR(expect_count(rest, 0, name));
    out->command = name == "status"    ? CliCommand::kStatus
                   : name == "nodes"   ? CliCommand::kNodes
                   : name == "targets" ? CliCommand::kTargets
                                       : CliCommand::kChains;
    return Status::ok_status();
  }
  if (name == "help") {
    out->command = CliCommand::kHelp;
    return expect_count(rest, 0, "help");
  }
  if (name == "chain-table") {
    if (rest.empty() || rest[0] != "create") {
      return usage_error(
          "usage: mica chain-table create [--replicas N] [--nodes 1,2,3] "
          "[--seed S]");
    }
    out->command = CliCommand::kCreateChainTable;
    rest.erase(rest.begin());
    return parse_create_options(rest, out);
  }
  if (name == "target") return parse_target_command(rest, out);
  if (name == "dev") return parse_dev_command(rest, out);
  if (name == "put" || name == "get") return parse_data_command(name, rest, out);
  if (name == "ls" || name == "stat" || name == "mkdir" || name == "rm") {
    RETURN_IF_ERROR(expect_count(rest, 1, fmt::format("{} PATH", name)));
    if (!rest[0].starts_with("/")) {
      return usage_error(fmt::format("{}: PATH must be absolute (got \"{}\")", name, rest[0]));
    }
    out->command = name == "ls"      ? CliCommand::kLs
                   : name == "stat"  ? CliCommand::kStat
                   : name == "mkdir" ? CliCommand::kMkdir
                                     : CliCommand::kRm;
    out->fs_path = std::string(rest[0]);
    return Status::ok_status();
  }
  if (name == "chain") {
    if (rest.empty() || rest[0] != "promote")
      return usage_error("usage: mica chain promote CHAIN TARGET");
    RETURN_IF_ERROR(expect_count(rest, 3, "chain promote CHAIN TARGET"));
    out->command = CliCommand::kChainPromote;
    Result<uint64_t> chain = parse_id(rest[1], "CHAIN", kChainIdMax);
    if (!chain.ok()) return chain.status();
    Result<uint64_t> target = parse_id(rest[2], "TARGET", kTargetIdMax);
    if (!target.ok()) return target.status();
    out->chain = static_cast<craq::ChainId>(*chain);
    out->target = *target;
    return Status::ok_status();
  }
  if (name == "token") {
    if (rest.size() != 2 || rest[0] != "generate")
      return usage_error("usage: mica token generate FILE");
    out->command = CliCommand::kTokenGenerate;
    out->path = std::string(rest[1]);
    return Status::ok_status();
  }
  return usage_error(fmt::format("unknown command \"{}\"", name));
}

}  // namespace

Result<CliInvocation> parse_cli_args(std::span<const std::string_view> args,
                                     const CliEnvironment& environment) {
  CliInvocation out;
  if (!environment.mgmtd.empty()) out.mgmtd = environment.mgmtd;
  if (!environment.token_file.empty()) out.token_file = environment.token_file;
  Words words(args);
  std::vector<std::string_view> command;
  bool help = false;
  // Global options may come before or after the command; the command's own options
  // (chain-table create's) are not global names, so they stay with it.
  while (!words.done()) {
    Result<bool> global = take_global(&words, &out, &help);
    if (!global.ok()) return global.status();
    if (*global) continue;
    command.push_back(words.take());
  }
  if (help) {
    out.command = CliCommand::kHelp;
    return out;
  }
  if (command.empty()) return usage_error("no command given");
  if (command[0].starts_with("-"))
    return usage_error(fmt::format("unknown option \"{}\"", command[0]));
  std::string_view name = command[0];
  command.erase(command.begin());
  RETURN_IF_ERROR(parse_command(name, std::move(command), &out));
  if (!SocketAddress::parse(out.mgmtd).ok()) {
    return usage_error(fmt::format("--mgmtd must be HOST:PORT (got \"{}\")", out.mgmtd));
  }
  return out;
}

bool cli_needs_mgmtd(CliCommand command) {
  return command != CliCommand::kHelp && command != CliCommand::kTokenGenerate &&
         command != CliCommand::kDevUp && command != CliCommand::kDevDown;
}

std::string cli_usage() {
  return fmt::format(
      R"(usage: mica [OPTIONS] COMMAND

commands:
  status                          nodes, targets and chains at a glance
  nodes                           every node with its address and liveness
  targets                         every target with its chain, states and capacity
  chains                          every chain with its targets in chain order
  chain-table create [--replicas N] [--nodes 1,2,3] [--seed S]
                                  a new chain table from the targets in no chain
  target offline TARGET           take a target out of service
  target online TARGET            undo `target offline`
  target replace OLD NEW          NEW (in no chain) takes OLD's place and syncs
  chain promote CHAIN TARGET      unblock a chain waiting for its last serving target
                                  (acknowledged writes may be lost)
  token generate FILE             write a new cluster token file (mode 0600)
  put CHAIN INODE INDEX OFFSET --file F|--data STR
                                  write bytes into a chunk through the storage client
  get CHAIN INODE INDEX OFFSET LENGTH [--out F]
                                  read committed bytes of a chunk (stdout by default)
  ls PATH                         a directory's entries (or a file's line), with attributes
  stat PATH                       an inode's attributes
  mkdir PATH                      a new directory (mode 0755)
  rm PATH                         remove a file, or an empty directory
                                  (the namespace commands act as the caller's uid/gid/groups)
  dev up [--storage N] [--targets K] [--dir DIR] [--mount MNT]
                                  start mgmtd, one meta process ({} shards) and N storage
                                  processes (default {}, K chain targets each, default 1)
                                  on 127.0.0.1 under DIR (default ./{}), make a chain
                                  table, and return once every chain and every shard serves;
                                  --mount: then mica-fuse on MNT, once the mount answers
                                  (on a running cluster: mount it again if its daemon died)
  dev down [--dir DIR]            unmount and stop what `dev up` started in DIR (by its pid
                                  files)

options:
  --mgmtd HOST:PORT    mgmtd's address (default $MICA_MGMTD or {})
  --token-file FILE    the cluster token (default $MICA_TOKEN_FILE or {})
  --no-token           connect without the token handshake (allow_unauthenticated)
  --dir DIR            a dev cluster's folder: its mgmtd address and token
  --transport T        tcp, rdma or auto (default auto)
  --timeout-ms N       time for connecting and for the call (default 10000)
  --json               machine-readable output
)",
      kDevMetaShardsDefault, kDevStorageDefault, kDefaultDevDir, kDefaultMgmtdAddress,
      kDefaultTokenFile);
}

}  // namespace mica::apps
