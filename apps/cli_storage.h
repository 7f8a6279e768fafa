// The `mica` commands that talk to storage nodes: put and get of a chunk range through
// craq::StorageClient, and the per-target progress `mica status` adds to mgmtd's view
// (StorageService::progress of every live storage node).
//
// Tasks on the CLI's one executor (apps/cli.cc makes it); they suspend for the network.
// put's bytes are in invocation.data (apps/cli.cc reads --file before the executor runs);
// get's bytes come back in CliResult::data, written out by the caller.
#pragma once

#include <vector>

#include "apps/cli.h"
#include "apps/cli_format.h"
#include "net/rpc_client.h"

namespace mica::apps {

// How long `mica status` waits for each storage node's progress.
inline constexpr std::chrono::milliseconds kProgressTimeout{2000};

Task<CliResult> run_data_command(CliInvocation invocation, net::Transport* transport);
// Every storage node of the snapshot marked alive in status; one entry per node, in id order.
Task<std::vector<NodeProgress>> fetch_progress(net::Transport* transport,
                                               craq::StatusResponse status);

}  // namespace mica::apps
