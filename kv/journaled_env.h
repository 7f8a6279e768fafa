// The journaled implementation of kv::Env (kv/kv.h): LMDB behind a write-ahead journal of
// kv/'s own, so a commit costs one sequential write and one fdatasync where an LMDB commit
// costs a handful of scattered page writes and two flushes (docs/kv.md, "The journaled
// store").
//
// Commit: the writer (a task on the opening executor, its I/O on the executor's ring)
// appends the batch as one record (kv/log_record.h) to the active journal file, fdatasyncs
// it and only then applies it to the delta — the committed changes not yet in LMDB, a
// table of newest values and deletions per kv::Table — and acknowledges it. Reads merge
// the delta over an LMDB snapshot; a ReadTxn holds both, and a change to the delta copies
// it first while a snapshot still holds it (copy on write), so a snapshot stays a snapshot.
//
// Checkpoint: there are two journal files, <dir>/journal.0 and journal.1, each
// preallocated to journal_file_bytes. When the active one is full the writer turns to the
// other (waiting, if need be, until that one's commits are in LMDB) and a checkpoint copies
// the full file's ops into LMDB in one ordinary, synced LMDB transaction, which also
// records the last sequence number it holds (the marker, in LMDB table "mica.journal").
// Then the delta drops every key whose newest change that was. A failed checkpoint (a full
// map, EIO) keeps its file and delta and is tried again at the next turn; until it works,
// commits that need the file fail with its status.
//
// Recovery (open): every record of both files numbered after the marker, in sequence, is
// replayed into LMDB in one transaction (puts and deletes of whole values: replaying one
// twice changes nothing), and the marker moves past every sequence number found, so stale
// records are never replayed later. A file is read from its start while records decode and
// follow each other in sequence: a torn or stale tail ends it.
//
// Bounds: a commit is refused (kNoSpace) when LMDB's pages in use plus twice the delta's
// bytes would pass map_size_bytes, so that a checkpoint always fits the map (an estimate:
// LMDB's copy-on-write needs room for the new pages before it frees the old). Keys are 1
// to LMDB's key limit (511) bytes, as for LMDB. journal_file_bytes is 64 KiB to 64 MiB
// (a checkpoint is one LMDB transaction). Thread: the opening executor only, except the
// checkpoint's and recovery's LMDB transactions, which run on the blocking pool.
#pragma once

#include <memory>
#include <string>

#include "kv/kv.h"

namespace mica::kv {

// Opens (creating) the journaled store in dir, which must exist, on the current executor.
Task<Result<std::unique_ptr<Env>>> open_journaled_env(std::string dir, EnvOptions options);

// Journal file index (0 or 1) in dir (tests damage it).
std::string journal_path(const std::string& dir, int index);

}  // namespace mica::kv
