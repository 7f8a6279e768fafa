// The `mica` CLI as a library: one invocation (apps/cli_args.h) is run against mgmtd and
// yields what to print and the exit code.
//
// run_cli loads the token file (before any executor runs: it is blocking file I/O), makes
// an io_uring executor on the calling thread, connects to mgmtd over the chosen transport
// (wrapped in the cluster token handshake unless --no-token), makes the one call the
// command needs, and formats the answer (apps/cli_format.h). An mgmtd that cannot be
// reached — refused, timed out, reset, or the handshake failed — is exactly one line on
// stderr, "mica: cannot reach mgmtd at ADDRESS: REASON", and kExitFailure; an error mgmtd
// answered with is "mica: COMMAND: REASON" and kExitFailure too. dev up and dev down
// (apps/dev_cluster.h) manage a local cluster instead; --dir DIR makes the other commands
// use that cluster's mgmtd address and token. put and get go through the storage client
// (apps/cli_storage.h), status also asks every live storage node for its targets' progress.
// Call from a thread that runs no executor; blocks until done.
#pragma once

#include <string>

#include "apps/cli_args.h"

namespace mica::apps {

struct CliResult {
  int exit_code = kExitOk;
  std::string out;   // for stdout
  std::string err;   // for stderr
  std::string data;  // get --out: the bytes run_cli writes to invocation.out_file
};

CliResult run_cli(const CliInvocation& invocation);

// The program: parses argv and the environment, runs, prints. apps/cli_main.cc calls it.
int cli_main(int argc, char** argv);

}  // namespace mica::apps
