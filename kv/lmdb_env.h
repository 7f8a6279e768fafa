// The LMDB implementation of kv::Env (kv/kv.h): one LMDB environment per directory, a table
// per LMDB named database, read transactions on MDB_NOTLS snapshots, and the group-commit
// writer as a job on the runtime's blocking pool (async/blocking.h).
//
// The writer job exists only while requests are queued: enqueue() submits it when the
// writer was idle, it commits batch after batch on the pool thread (mdb_txn_commit fsyncs
// there, never on an executor) and leaves when the queue is empty. When the pool's queue is
// full the job runs on the submitting executor's thread (caller-runs back-pressure). close()
// blocks briefly until a job that is leaving has left. Nothing here suspends.
#pragma once

#include <memory>
#include <string>

#include "kv/kv.h"

namespace mica::kv {

// Opens (creating) an LMDB environment in dir, which must exist.
Result<std::unique_ptr<Env>> open_lmdb_env(std::string dir, EnvOptions options);

}  // namespace mica::kv
