#include "apps/cli_meta.h"

#include <fmt/format.h>
#include <grp.h>
#include <unistd.h>

#include <map>

#include "apps/cli_format.h"
#include "craq/routing_client.h"
#include "meta/meta_client.h"

namespace mica::apps {
namespace {

using meta::InodeId;
using meta::MetaService;

// Supplementary groups one request carries at most (Linux's NGROUPS_MAX is
// 65536; a CLI caller in more groups than this is told so).
constexpr int kGroupsMax = 1024;
// Entries one `mica ls` prints at most, and pages it asks for (each the
// server's page).
constexpr size_t kLsEntriesMax = 100000;
constexpr uint32_t kNewDirectoryMode = 0755;

CliResult failure(std::string line) {
  return CliResult{.exit_code = kExitFailure, .out = {}, .err = "mica: " + line + "\n", .data = {}};
}

std::string_view command_word(CliCommand command) {
  switch (command) {
    case CliCommand::kLs:
      return "ls";
    case CliCommand::kStat:
      return "stat";
    case CliCommand::kMkdir:
      return "mkdir";
    default:
      return "rm";
  }
}

meta::Credentials caller_credentials() {
  meta::Credentials cred{.uid = ::getuid(), .gid = ::getgid(), .groups = {}};
  gid_t groups[kGroupsMax];
  int n = ::getgroups(kGroupsMax, groups);
  for (int i = 0; i < n; ++i) cred.groups.push_back(groups[i]);
  return cred;
}

// The components of an absolute path ("/a//b/" is a, b).
std::vector<std::string> components(std::string_view path) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > at) out.emplace_back(path.substr(at, slash - at));
    at = slash + 1;
  }
  return out;
}

std::string mode_text(const meta::Inode& inode) {
  static constexpr char kTypes[] = {'-', 'd', 'l', 'p', 's', 'c', 'b'};
  std::string out(1, kTypes[static_cast<int>(inode.type)]);
  const char* bits = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) out += (inode.mode & (0400u >> i)) ? bits[i] : '-';
  if (inode.mode & meta::kSetUid) out[3] = (inode.mode & 0100) ? 's' : 'S';
  if (inode.mode & meta::kSetGid) out[6] = (inode.mode & 0010) ? 's' : 'S';
  if (inode.mode & meta::kSticky) out[9] = (inode.mode & 0001) ? 't' : 'T';
  return out;
}

std::string stat_text(const std::string& path, const meta::Inode& inode) {
  std::string out = fmt::format(
      "  path   {}\n  inode  {} (shard {})\n  type   {}\n  mode   {:04o} ({})\n"
      "  owner  uid {} gid {}\n  links  {}\n  size   {}\n",
      path, inode.id, meta::shard_of(inode.id), meta::inode_type_name(inode.type), inode.mode,
      mode_text(inode), inode.uid, inode.gid, inode.nlink, inode.length);
  out += fmt::format("  times  atime {} mtime {} ctime {} (ns)\n", inode.atime_ns, inode.mtime_ns,
                     inode.ctime_ns);
  if (inode.type == meta::InodeType::kSymlink) {
    out += fmt::format("  target {}\n", inode.symlink_target);
  }
  if (inode.type == meta::InodeType::kFile) {
    out += fmt::format("  layout table {} stripe {} chunk {} B\n", inode.layout.table,
                       inode.layout.stripe, inode.layout.chunk_size_bytes);
  }
  return out;
}

Task<CliResult> list(meta::MetaClient* client, const CliInvocation& invocation,
                     meta::Credentials cred, meta::Inode dir) {
  if (dir.type != meta::InodeType::kDirectory) {
    co_return CliResult{.exit_code = kExitOk,
                        .out = fmt::format("{} {} {} {} {} {}\n", mode_text(dir), dir.nlink,
                                           dir.uid, dir.gid, dir.length, invocation.fs_path),
                        .err = {},
                        .data = {}};
  }
  TextTable table({"MODE", "LINKS", "UID", "GID", "SIZE", "INODE", "NAME"});
  meta::ReaddirRequest request{
      .cred = cred, .dir = dir.id, .after = {}, .limit = 0, .with_attrs = true};
  size_t listed = 0;
  while (listed < kLsEntriesMax) {
    auto reading = client->readdir(request);
    Result<meta::ReaddirReply> page = co_await std::move(reading);
    if (!page.ok()) {
      co_return failure(
          fmt::format("ls {}: {}", invocation.fs_path, meta_error_text(page.status())));
    }
    for (const meta::ReaddirEntry& entry : page->entries) {
      meta::Inode attrs = entry.attrs.value_or(meta::Inode{.id = entry.inode, .type = entry.type});
      table.add_row({mode_text(attrs), fmt::format("{}", attrs.nlink), fmt::format("{}", attrs.uid),
                     fmt::format("{}", attrs.gid), fmt::format("{}", attrs.length),
                     fmt::format("{}", entry.inode), entry.name});
      ++listed;
    }
    if (page->end || page->entries.empty()) break;
    request.after = page->entries.back().name;
  }
  co_return CliResult{.exit_code = kExitOk, .out = table.render(), .err = {}, .data = {}};
}

CliResult done(std::string line) {
  return CliResult{.exit_code = kExitOk, .out = std::move(line), .err = {}, .data = {}};
}

// mkdir: the parent is resolved, the name made in it. rm: the path is resolved
// without following a last symlink (rm removes the link), and removed as what
// it is.
Task<CliResult> mutate(meta::MetaClient* client, const CliInvocation& invocation,
                       meta::Credentials cred, std::vector<std::string> names) {
  std::string what = fmt::format("{} {}", command_word(invocation.command), invocation.fs_path);
  if (invocation.command == CliCommand::kMkdir) {
    std::string parent_path = "/";
    for (size_t i = 0; i + 1 < names.size(); ++i) parent_path += names[i] + "/";
    auto resolving = client->resolve(cred, parent_path);
    Result<meta::Resolved> parent = co_await std::move(resolving);
    if (!parent.ok())
      co_return failure(fmt::format("{}: {}", what, meta_error_text(parent.status())));
    meta::MkdirRequest request{.cred = cred,
                               .tag = {},
                               .parent = parent->inode.id,
                               .name = names.back(),
                               .mode = kNewDirectoryMode};
    auto making = client->mkdir(request);
    Result<meta::InodeReply> made = co_await std::move(making);
    if (!made.ok()) co_return failure(fmt::format("{}: {}", what, meta_error_text(made.status())));
    co_return done(fmt::format("created directory {} (inode {}, shard {})\n", invocation.fs_path,
                               made->inode.id, meta::shard_of(made->inode.id)));
  }
  auto resolving = client->resolve(cred, invocation.fs_path, /*follow_last=*/false);
  Result<meta::Resolved> target = co_await std::move(resolving);
  if (!target.ok())
    co_return failure(fmt::format("{}: {}", what, meta_error_text(target.status())));
  bool directory = target->inode.type == meta::InodeType::kDirectory;
  meta::RemoveRequest request{.cred = cred,
                              .tag = {},
                              .parent = target->parent,
                              .name = target->name,
                              .directory = directory};
  auto removing = client->remove(request);
  Result<meta::RemoveReply> removed = co_await std::move(removing);
  if (!removed.ok()) {
    co_return failure(fmt::format("{}: {}", what, meta_error_text(removed.status())));
  }
  co_return done(
      fmt::format("removed {} {}\n", directory ? "directory" : "file", invocation.fs_path));
}

Task<CliResult> with_client(CliInvocation invocation, meta::MetaClient* client) {
  meta::Credentials cred = caller_credentials();
  std::vector<std::string> names = components(invocation.fs_path);
  std::string what = fmt::format("{} {}", command_word(invocation.command), invocation.fs_path);
  bool names_parent =
      invocation.command == CliCommand::kMkdir || invocation.command == CliCommand::kRm;
  if (names_parent && names.empty()) {
    co_return failure(fmt::format("{}: the root cannot be {}", what,
                                  invocation.command == CliCommand::kRm ? "removed" : "created"));
  }
  if (names_parent) {
    auto mutating = mutate(client, invocation, cred, std::move(names));
    co_return co_await std::move(mutating);
  }
  auto resolving = client->resolve(cred, invocation.fs_path);
  Result<meta::Resolved> at = co_await std::move(resolving);
  if (!at.ok()) co_return failure(fmt::format("{}: {}", what, meta_error_text(at.status())));
  // The attributes from the inode's own shard: a lookup answered by the parent's shard
  // carries only the id and type of an inode that lives elsewhere.
  auto getting = client->getattr(meta::GetattrRequest{.inode = at->inode.id});
  Result<meta::InodeReply> inode = co_await std::move(getting);
  if (!inode.ok()) co_return failure(fmt::format("{}: {}", what, meta_error_text(inode.status())));
  if (invocation.command == CliCommand::kStat) {
    co_return done(stat_text(invocation.fs_path, inode->inode));
  }
  auto listing = list(client, invocation, cred, inode->inode);
  co_return co_await std::move(listing);
}

Task<CliResult> with_routing(CliInvocation invocation, net::ConnectionPool* pool,
                             craq::RoutingClient* routing) {
  TimePoint deadline = deadline_after(std::chrono::milliseconds(invocation.timeout_ms));
  auto refreshing = routing->refresh(0, deadline);
  Result<craq::RoutingClient::SnapshotPtr> snapshot = co_await std::move(refreshing);
  if (!snapshot.ok() || *snapshot == nullptr) {
    Status why = snapshot.ok() ? Status(StatusCode::kTimedOut, "no routing") : snapshot.status();
    co_return failure(
        fmt::format("cannot reach mgmtd at {}: {}", invocation.mgmtd, why.to_string()));
  }
  if ((*snapshot)->meta_shards.empty()) {
    co_return failure(fmt::format("{} {}: no meta process serves the namespace (mica status)",
                                  command_word(invocation.command), invocation.fs_path));
  }
  meta::MetaClientOptions options;
  options.call_timeout = std::chrono::milliseconds(invocation.timeout_ms);
  // No lease loop (start()): the smoke commands open no file.
  meta::MetaClient client(pool, routing, options);
  auto running = with_client(std::move(invocation), &client);
  CliResult result = co_await std::move(running);
  auto stopping = client.stop();
  co_await std::move(stopping);
  co_return result;
}

Task<MetaNodeStatus> node_status(net::ConnectionPool* pool, craq::NodeInfo node) {
  MetaNodeStatus out{.node = node.id, .address = node.rpc_address, .status = {}, .reply = {}};
  Result<SocketAddress> address = SocketAddress::parse(node.rpc_address);
  if (!address.ok()) {
    out.status = address.status();
    co_return out;
  }
  TimePoint deadline = deadline_after(kMetaStatusTimeout);
  auto getting = pool->get(*address, deadline);
  Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(getting);
  if (!client.ok()) {
    out.status = client.status();
    co_return out;
  }
  MetaService::Stub stub(client->get());
  auto asking = stub.status(meta::MetaStatusRequest{}, net::CallOptions{deadline});
  Result<meta::MetaStatusReply> reply = co_await std::move(asking);
  if (reply.ok()) {
    out.reply = std::move(*reply);
  } else {
    out.status = reply.status();
  }
  co_return out;
}

}  // namespace

std::string meta_error_text(const Status& status) {
  switch (status.code()) {
    case StatusCode::kNotFound:
      return "no such file or directory";
    case StatusCode::kAlreadyExists:
      return "file exists";
    case StatusCode::kNotDirectory:
      return "not a directory";
    case StatusCode::kIsDirectory:
      return "is a directory";
    case StatusCode::kNotEmpty:
      return "directory not empty";
    case StatusCode::kPermissionDenied:
      return "permission denied";
    case StatusCode::kNotPermitted:
      return "operation not permitted";
    case StatusCode::kNameTooLong:
      return "file name too long";
    case StatusCode::kInvalidArgument:
      return fmt::format("invalid argument ({})", status.message());
    default:
      return status.to_string();
  }
}

Task<CliResult> run_meta_command(CliInvocation invocation, net::Transport* transport) {
  net::ConnectionPool pool(transport);
  Result<SocketAddress> mgmtd = SocketAddress::parse(invocation.mgmtd);
  craq::RoutingClientOptions options;
  options.mgmtd = {*mgmtd};
  craq::RoutingClient routing(&pool, std::move(options));
  routing.start();
  auto running = with_routing(std::move(invocation), &pool, &routing);
  CliResult result = co_await std::move(running);
  auto stopping = routing.stop();
  co_await std::move(stopping);
  auto closing = pool.close();
  co_await std::move(closing);
  co_return result;
}

Task<std::vector<MetaNodeStatus>> fetch_meta_status(net::Transport* transport,
                                                    craq::StatusResponse status) {
  net::ConnectionPool pool(transport);
  std::vector<MetaNodeStatus> out;
  for (const craq::NodeInfo& node : status.routing.nodes) {
    if (node.kind != craq::NodeKind::kMeta) continue;
    bool alive = false;
    for (const craq::NodeStatus& s : status.nodes) alive |= s.node == node.id && s.alive;
    if (!alive) continue;
    auto asking = node_status(&pool, node);
    out.push_back(co_await std::move(asking));
  }
  auto closing = pool.close();
  co_await std::move(closing);
  co_return out;
}

std::string format_meta_status(const std::vector<MetaNodeStatus>& nodes, bool json) {
  if (json) {
    JsonWriter w;
    w.begin_array();
    for (const MetaNodeStatus& node : nodes) {
      w.begin_object().key("node").value(uint64_t{node.node}).key("address").value(node.address);
      if (!node.status.ok()) w.key("error").value(node.status.to_string());
      w.key("coordinator_pending").value(node.reply.coordinator_pending).key("shards");
      w.begin_array();
      for (const meta::ShardStatus& s : node.reply.shards) {
        w.begin_object().key("shard").value(uint64_t{s.shard}).key("inodes").value(s.inodes);
        w.key("entries").value(s.entries).key("sessions").value(s.sessions);
        w.key("gc_queued_files").value(s.gc_queued_files);
        w.key("gc_queued_bytes").value(s.gc_queued_bytes);
        w.key("gc_removed_files").value(s.gc_removed_files).key("used_bytes").value(s.used_bytes);
        w.key("commits").value(s.commits).key("operations").value(s.operations).end_object();
      }
      w.end_array().end_object();
    }
    w.end_array();
    return w.text();
  }
  if (nodes.empty()) return "";
  TextTable table(
      {"SHARD", "NODE", "ADDRESS", "INODES", "ENTRIES", "SESSIONS", "GC QUEUE", "GC BYTES"});
  for (const MetaNodeStatus& node : nodes) {
    if (!node.status.ok()) {
      table.add_row({"-", fmt::format("{}", node.node), node.address,
                     "unreachable: " + node.status.to_string(), "", "", "", ""});
      continue;
    }
    for (const meta::ShardStatus& s : node.reply.shards) {
      table.add_row({fmt::format("{}", s.shard), fmt::format("{}", node.node), node.address,
                     fmt::format("{}", s.inodes), fmt::format("{}", s.entries),
                     fmt::format("{}", s.sessions), fmt::format("{}", s.gc_queued_files),
                     format_bytes(s.gc_queued_bytes)});
    }
  }
  return "\nmeta shards:\n" + table.render();
}

}  // namespace mica::apps
