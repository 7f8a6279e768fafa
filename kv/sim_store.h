// The simulated implementation of kv::Env (kv/kv.h): tables in memory, made durable only
// through the simulator's disk, so a storage engine built on kv/ runs unchanged on a
// simulated host and a crash there loses exactly what a crash should.
//
// Format: one append-only file, <dir>/kv.log (its name made durable by a directory sync when it is
// created), of committed batches, each one record of kv/log_record.h. Open replays the records in
// order and stops at the first that is short, damaged or out of sequence: a torn tail is a commit
// that never finished, so it is ignored, and the next commit overwrites it. A commit is one write
// of one record at the end of the valid log followed by fdatasync; only then is the batch applied
// in memory and acknowledged. So a crash keeps every acknowledged commit and loses the
// unacknowledged ones (unless the disk kept the record of one in flight, whose write may have
// reached the disk as on a real one); a commit that fails (EIO or ENOSPC from the simulated disk,
// or past map_size_bytes) changes nothing. There is no compaction: the log grows with the writes of
// one run.
//
// The writer is a task on the opening executor (the simulated host), started when requests
// queue up and ending when the queue is empty; its I/O goes through the executor's backend.
// Read snapshots share the committed tables; a commit copies them first only when a
// snapshot still holds them (copy on write). Thread: the opening executor only.
#pragma once

#include <memory>
#include <string>

#include "kv/kv.h"

namespace mica::kv {

// Opens (creating) the simulated store in dir on the current executor (any backend works;
// it is meant for a simulated host).
Task<Result<std::unique_ptr<Env>>> open_sim_env(std::string dir, EnvOptions options);

// The store's log file in dir (tests damage it).
std::string sim_log_path(const std::string& dir);

}  // namespace mica::kv
