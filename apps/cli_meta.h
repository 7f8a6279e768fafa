// The `mica` commands that talk to the metadata service: the namespace smoke commands ls,
// stat, mkdir and rm of an absolute path, and the per-shard view `mica status` adds
// (MetaService::status of every live meta node).
//
// The commands go through meta::MetaClient (meta/meta_client.h): a path is resolved from
// the root one lookup at a time, each sent to the process serving the parent's shard
// (routing's meta_shards), as the caller's uid, gid and supplementary groups (getuid,
// getgid, getgroups), so the service's permission checks are the caller's; the client
// retries kBusy, kWrongShard and lost connections with one RequestTag per mutation, so a
// retry is answered as the first try was. An error is one line naming the path and what
// POSIX calls it ("mica: stat /a/b: no such file or directory") and kExitFailure. Tasks on
// the CLI's one executor (apps/cli.cc makes it); they suspend for the network.
#pragma once

#include <string>
#include <vector>

#include "apps/cli.h"
#include "meta/meta_service.h"
#include "net/rpc_client.h"

namespace mica::apps {

// How long `mica status` waits for each meta node's shard view.
inline constexpr std::chrono::milliseconds kMetaStatusTimeout{2000};

Task<CliResult> run_meta_command(CliInvocation invocation, net::Transport* transport);

// One meta node's answer for `mica status`: its shards, or why it did not answer.
struct MetaNodeStatus {
  craq::NodeId node = 0;
  std::string address;
  Status status;
  meta::MetaStatusReply reply;
};
// Every meta node of the snapshot marked alive in status, in id order.
Task<std::vector<MetaNodeStatus>> fetch_meta_status(net::Transport* transport,
                                                    craq::StatusResponse status);
// The "meta shards" block of `mica status` (empty when there are no meta nodes).
std::string format_meta_status(const std::vector<MetaNodeStatus>& nodes, bool json);

// "no such file or directory", "not a directory", ... for a meta status code; the status's
// own text for the rest.
std::string meta_error_text(const Status& status);

}  // namespace mica::apps
