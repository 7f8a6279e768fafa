#include "kv/lmdb.h"

#include <lmdb.h>

#include <cerrno>

namespace mica::kv::lmdb {
namespace {

MDB_val to_val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
std::string_view from_val(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

}  // namespace

Status lmdb_status(int rc, std::string_view context) {
  if (rc == MDB_SUCCESS) return Status();
  std::string message = fmt::format("{}: {}", context, mdb_strerror(rc));
  switch (rc) {
    case MDB_MAP_FULL:
    case ENOSPC:
      return Status(StatusCode::kNoSpace, std::move(message));
    case MDB_CORRUPTED:
    case MDB_INVALID:
    case MDB_PAGE_NOTFOUND:
    case MDB_VERSION_MISMATCH:
      return Status(StatusCode::kCorruption, std::move(message));
    case MDB_NOTFOUND:
      return Status(StatusCode::kNotFound, std::move(message));
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_DBS_FULL:
      return Status(StatusCode::kResourceExhausted, std::move(message));
    case EIO:
      return Status(StatusCode::kIoError, std::move(message));
    default:
      return Status(StatusCode::kInternal, std::move(message));
  }
}

Result<std::unique_ptr<Env>> Env::open(const std::string& dir, EnvOptions options) {
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return lmdb_status(rc, "mdb_env_create");
  std::unique_ptr<Env> owner(new Env(env));
  if ((rc = mdb_env_set_mapsize(env, options.map_size_bytes)) != 0)
    return lmdb_status(rc, "mdb_env_set_mapsize");
  if ((rc = mdb_env_set_maxdbs(env, options.max_dbs)) != 0)
    return lmdb_status(rc, "mdb_env_set_maxdbs");
  if ((rc = mdb_env_set_maxreaders(env, options.max_readers)) != 0)
    return lmdb_status(rc, "mdb_env_set_maxreaders");
  // MDB_NOTLS: coroutines of one thread may each hold a read txn; MDB_NORDAHEAD: the chunk
  // metadata is read at random, read-ahead only evicts useful pages.
  rc = mdb_env_open(env, dir.c_str(), MDB_NOTLS | MDB_NORDAHEAD, 0644);
  if (rc != 0) return lmdb_status(rc, fmt::format("mdb_env_open {}", dir));
  // A process killed while reading leaves a stale reader slot that pins old pages.
  int dead = 0;
  if ((rc = mdb_reader_check(env, &dead)) != 0) return lmdb_status(rc, "mdb_reader_check");
  return owner;
}

Env::~Env() {
  mdb_env_close(env_);
}

Result<Dbi> Env::open_dbi(const std::string& name) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc != 0) return lmdb_status(rc, "mdb_txn_begin for mdb_dbi_open");
  MDB_dbi dbi = 0;
  rc = mdb_dbi_open(txn, name.c_str(), MDB_CREATE, &dbi);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return lmdb_status(rc, fmt::format("mdb_dbi_open {}", name));
  }
  if ((rc = mdb_txn_commit(txn)) != 0) return lmdb_status(rc, "mdb_txn_commit of mdb_dbi_open");
  return Dbi{dbi};
}

Result<uint64_t> Env::used_bytes() {
  MDB_envinfo info;
  MDB_stat stat;
  int rc = mdb_env_info(env_, &info);
  if (rc == 0) rc = mdb_env_stat(env_, &stat);
  if (rc != 0) return lmdb_status(rc, "mdb_env_info");
  return uint64_t{info.me_last_pgno + 1} * stat.ms_psize;
}

size_t Env::max_key_bytes() const {
  return static_cast<size_t>(mdb_env_get_maxkeysize(env_));
}

Txn& Txn::operator=(Txn&& other) noexcept {
  if (this != &other) {
    abort();
    txn_ = std::exchange(other.txn_, nullptr);
    reset_ = std::exchange(other.reset_, false);
  }
  return *this;
}

Result<Txn> Txn::begin(Env& env, Mode mode) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env.raw(), nullptr, mode == Mode::kRead ? MDB_RDONLY : 0, &txn);
  if (rc != 0) return lmdb_status(rc, "mdb_txn_begin");
  return Txn(txn);
}

Result<std::optional<std::string_view>> Txn::get(Dbi dbi, std::string_view key) {
  MICA_ASSERT(active());
  MDB_val k = to_val(key);
  MDB_val v;
  int rc = mdb_get(txn_, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>();
  if (rc != 0) return lmdb_status(rc, "mdb_get");
  return std::optional<std::string_view>(from_val(v));
}

Status Txn::put(Dbi dbi, std::string_view key, std::string_view value) {
  MICA_ASSERT(active());
  MDB_val k = to_val(key);
  MDB_val v = to_val(value);
  return lmdb_status(mdb_put(txn_, dbi, &k, &v, 0), "mdb_put");
}

Status Txn::del(Dbi dbi, std::string_view key) {
  MICA_ASSERT(active());
  MDB_val k = to_val(key);
  return lmdb_status(mdb_del(txn_, dbi, &k, nullptr), "mdb_del");
}

Result<uint64_t> Txn::count(Dbi dbi) {
  MICA_ASSERT(active());
  MDB_stat stat;
  int rc = mdb_stat(txn_, dbi, &stat);
  if (rc != 0) return lmdb_status(rc, "mdb_stat");
  return static_cast<uint64_t>(stat.ms_entries);
}

Status Txn::commit() {
  MICA_ASSERT(active());
  int rc = mdb_txn_commit(std::exchange(txn_, nullptr));  // freed even when it fails
  return lmdb_status(rc, "mdb_txn_commit");
}

void Txn::abort() {
  if (txn_ != nullptr) mdb_txn_abort(std::exchange(txn_, nullptr));
  reset_ = false;
}

void Txn::reset() {
  MICA_ASSERT(active());
  mdb_txn_reset(txn_);
  reset_ = true;
}

Status Txn::renew() {
  MICA_ASSERT(txn_ != nullptr && reset_);
  int rc = mdb_txn_renew(txn_);
  if (rc != 0) return lmdb_status(rc, "mdb_txn_renew");
  reset_ = false;
  return Status();
}

Result<Cursor> Cursor::open(Txn& txn, Dbi dbi) {
  MICA_ASSERT(txn.active());
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn.raw(), dbi, &cursor);
  if (rc != 0) return lmdb_status(rc, "mdb_cursor_open");
  return Cursor(cursor);
}

Cursor::~Cursor() {
  if (cursor_ != nullptr) mdb_cursor_close(cursor_);
}

Result<std::optional<Cursor::Entry>> Cursor::move(int op, std::string_view key) {
  MDB_val k = to_val(key);
  MDB_val v{0, nullptr};
  int rc = mdb_cursor_get(cursor_, &k, &v, static_cast<MDB_cursor_op>(op));
  if (rc == MDB_NOTFOUND) return std::optional<Entry>();
  if (rc != 0) return lmdb_status(rc, "mdb_cursor_get");
  return std::optional<Entry>(Entry{from_val(k), from_val(v)});
}

Result<std::optional<Cursor::Entry>> Cursor::seek(std::string_view key) {
  return move(MDB_SET_RANGE, key);
}
Result<std::optional<Cursor::Entry>> Cursor::first() {
  return move(MDB_FIRST);
}
Result<std::optional<Cursor::Entry>> Cursor::last() {
  return move(MDB_LAST);
}
Result<std::optional<Cursor::Entry>> Cursor::next() {
  return move(MDB_NEXT);
}
Result<std::optional<Cursor::Entry>> Cursor::prev() {
  return move(MDB_PREV);
}

}  // namespace mica::kv::lmdb
