// `mica dev up` and `mica dev down`: a whole cluster on 127.0.0.1 under one folder.
//
// dev up writes into DIR: cluster.token (generated once, mode 0600), mgmtd.toml, meta.toml
// and storage-N.toml with ports picked free at start (apps/dev_process.h), cluster.env with
// the addresses (MICA_MGMTD=..., MICA_TOKEN_FILE=..., one line per process:
// shell-sourceable, and what `mica --dir DIR` reads), logs/NAME.log, pids/NAME.pid and
// data/. It starts mica-mgmtd, one mica-meta serving every shard of the namespace
// (kDevMetaShardsDefault) and N mica-storage processes (found next to the `mica` binary) in
// the background, waits until every node registered, creates a chain table with min(N, 3)
// replicas (once per folder: a later `dev up` keeps the table), and returns once routing
// names the meta process for every shard and every chain serves — mgmtd shows all its
// targets serving and every storage node reports them serving at that chain version —
// printing how long that took. If anything fails it stops what it started and says why,
// naming the log to read; a port another program took meanwhile makes it retry with new
// ports. dev down stops exactly the processes of DIR's pid files (SIGTERM, SIGKILL after a
// timeout), storage first, then meta, then mgmtd, never anything found by name.
//
// Both block the calling thread (which must run no executor) until done.
#pragma once

#include <string>

#include "apps/cli.h"

namespace mica::apps {

// Files of a dev cluster's folder.
inline constexpr const char* kDevTokenFile = "cluster.token";
inline constexpr const char* kDevEnvFile = "cluster.env";
// How long `dev up` waits for the cluster to serve, and `dev down` for SIGTERM to work.
inline constexpr std::chrono::milliseconds kDevUpTimeout{90'000};
inline constexpr std::chrono::milliseconds kDevStopTimeout{10'000};
inline constexpr std::chrono::milliseconds kDevKillTimeout{5'000};

CliResult dev_up(const CliInvocation& invocation);
CliResult dev_down(const CliInvocation& invocation);

// mgmtd's address as DIR/cluster.env records it.
Result<std::string> dev_mgmtd_address(const std::string& dir);

}  // namespace mica::apps
