// A small RAII wrapper over LMDB for kv/'s LMDB environment (kv/lmdb_env.cc): environment,
// transactions, get / put / del and ordered cursors. This file and lmdb.cc are the only places
// that call mdb_* (the tidy test enforces it), so LMDB's rules live here too. Nothing outside
// kv/ includes it: users see kv/kv.h only.
//
// Ownership: an Env owns the MDB_env; a Txn owns its MDB_txn and aborts it in its destructor
// unless committed; a Cursor belongs to one Txn and must die before it. Values returned by
// get() and cursors point into the memory map and are valid only until the transaction ends
// or is reset: copy them out. Threads: the Env is opened with MDB_NOTLS, so read transactions
// are tied to Txn objects, not threads; a write transaction must begin and commit on one
// thread (the environment's writer). Nothing here suspends; never keep a Txn alive across a
// co_await.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "async/status.h"

struct MDB_env;
struct MDB_txn;
struct MDB_cursor;

namespace mica::kv::lmdb {

using Dbi = unsigned int;

// Maps an LMDB (or errno) return code to a Status: MDB_MAP_FULL and ENOSPC are kNoSpace,
// MDB_CORRUPTED / MDB_INVALID / MDB_PAGE_NOTFOUND / MDB_VERSION_MISMATCH are kCorruption.
Status lmdb_status(int rc, std::string_view context);

struct EnvOptions {
  uint64_t map_size_bytes = uint64_t{64} << 30;
  uint32_t max_dbs = 4;
  uint32_t max_readers = 256;
};

class Env {
 public:
  // Opens (creating if needed) the environment in directory dir, which must exist.
  static Result<std::unique_ptr<Env>> open(const std::string& dir, EnvOptions options);
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
  ~Env();

  // Opens (creating) a named database; call once per name at start-up, before other txns.
  Result<Dbi> open_dbi(const std::string& name);
  // Bytes of the data file in use (last page number × page size).
  Result<uint64_t> used_bytes();
  // The longest key a database takes (keys have 1 to this many bytes).
  size_t max_key_bytes() const;
  MDB_env* raw() const { return env_; }

 private:
  explicit Env(MDB_env* env) : env_(env) {}
  MDB_env* env_;
};

class Txn {
 public:
  enum class Mode { kRead, kWrite };
  static Result<Txn> begin(Env& env, Mode mode);
  Txn() = default;
  Txn(Txn&& other) noexcept
      : txn_(std::exchange(other.txn_, nullptr)), reset_(std::exchange(other.reset_, false)) {}
  Txn& operator=(Txn&& other) noexcept;
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn() { abort(); }

  // The value under key, or nullopt; the view dies with the transaction.
  Result<std::optional<std::string_view>> get(Dbi dbi, std::string_view key);
  Status put(Dbi dbi, std::string_view key, std::string_view value);
  // kNotFound when key is absent.
  Status del(Dbi dbi, std::string_view key);
  // Entries in the database (mdb_stat: read off the tree's root, no walk).
  Result<uint64_t> count(Dbi dbi);
  Status commit();
  void abort();

  // Read transactions only: release the snapshot but keep the reader slot, then take a
  // fresh snapshot; cheaper than begin/abort for the engine's many short reads.
  void reset();
  Status renew();

  bool active() const { return txn_ != nullptr && !reset_; }
  MDB_txn* raw() const { return txn_; }

 private:
  explicit Txn(MDB_txn* txn) : txn_(txn) {}
  MDB_txn* txn_ = nullptr;
  bool reset_ = false;
};

// An ordered cursor over one database of a Txn; destroy it before the Txn commits or aborts
// (LMDB frees a write transaction's cursors at its end). Positioning calls answer the (key, value)
// they land on, or nullopt past either end.
class Cursor {
 public:
  using Entry = std::pair<std::string_view, std::string_view>;
  static Result<Cursor> open(Txn& txn, Dbi dbi);
  Cursor(Cursor&& other) noexcept : cursor_(std::exchange(other.cursor_, nullptr)) {}
  Cursor& operator=(Cursor&&) = delete;
  Cursor(const Cursor&) = delete;
  ~Cursor();

  // First entry whose key is >= key.
  Result<std::optional<Entry>> seek(std::string_view key);
  Result<std::optional<Entry>> first();
  Result<std::optional<Entry>> last();
  Result<std::optional<Entry>> next();
  Result<std::optional<Entry>> prev();

 private:
  explicit Cursor(MDB_cursor* cursor) : cursor_(cursor) {}
  Result<std::optional<Entry>> move(int op, std::string_view key = {});
  MDB_cursor* cursor_ = nullptr;
};

}  // namespace mica::kv::lmdb
