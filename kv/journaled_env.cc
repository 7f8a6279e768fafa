// kv::Env as LMDB behind a write-ahead journal (see kv/journaled_env.h): the delta and its
// merged reads, the writer, checkpoints and recovery.
#include "kv/journaled_env.h"

#include <fcntl.h>

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <utility>

#include "async/blocking.h"
#include "async/file.h"
#include "async/log.h"
#include "async/scope.h"
#include "async/sync.h"
#include "kv/journal_delta.h"
#include "kv/lmdb.h"
#include "kv/log_record.h"

namespace mica::kv {
namespace {

constexpr std::string_view kMarkerTable = "mica.journal";
constexpr std::string_view kMarkerKey = "checkpointed";
constexpr size_t kReadPieceBytes = size_t{1} << 20;
constexpr uint64_t kJournalFileBytesMin = uint64_t{64} << 10;
constexpr uint64_t kJournalFileBytesMax = uint64_t{64} << 20;
// Pages a checkpoint may need beyond its entries' (branch pages, the marker).
constexpr uint64_t kCheckpointSlackBytes = uint64_t{16} << 12;

std::string be64(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (56 - 8 * i));
  return out;
}

uint64_t from_be64(std::string_view bytes) {
  uint64_t n = 0;
  for (char c : bytes.substr(0, 8)) n = (n << 8) | static_cast<uint8_t>(c);
  return n;
}

class JournaledEnv;

class JournaledReadTxn final : public ReadTxn {
 public:
  JournaledReadTxn(lmdb::Txn base, std::shared_ptr<const Deltas> deltas, JournaledEnv* env)
      : base_(std::move(base)), deltas_(std::move(deltas)), env_(env) {}
  Result<std::optional<std::string_view>> get(Table table, std::string_view key) override;
  Result<std::unique_ptr<Cursor>> cursor(Table table) override;
  Result<uint64_t> count(Table table) override;
  void reset() override {
    base_.reset();
    deltas_.reset();
  }
  Status renew() override;

 private:
  lmdb::Txn base_;
  std::shared_ptr<const Deltas> deltas_;  // keeps the delta this snapshot reads unchanged
  JournaledEnv* env_;
};

class JournaledEnv final : public Env {
 public:
  JournaledEnv(std::string dir, EnvOptions options, std::unique_ptr<lmdb::Env> base,
               lmdb::Dbi marker)
      : Env(options),
        dir_(std::move(dir)),
        base_(std::move(base)),
        marker_dbi_(marker),
        max_key_bytes_(base_->max_key_bytes()),
        deltas_(std::make_shared<Deltas>()) {
    checkpoint_idle_.set();
  }
  ~JournaledEnv() override { wait_writer_idle(); }

  Task<Status> load();
  Result<Table> open_table(std::string_view name) override;
  Result<std::unique_ptr<ReadTxn>> begin_read() override {
    Result<lmdb::Txn> txn = lmdb::Txn::begin(*base_, lmdb::Txn::Mode::kRead);
    if (!txn.ok()) return txn.status();
    return std::unique_ptr<ReadTxn>(new JournaledReadTxn(std::move(*txn), deltas_, this));
  }
  Result<uint64_t> used_bytes() override {
    Result<uint64_t> used = base_->used_bytes();
    if (!used.ok()) return used;
    return *used + delta_bytes_;
  }
  Task<Status> close() override;
  Implementation implementation() const override { return Implementation::kJournaled; }

  std::shared_ptr<const Deltas> deltas() const { return deltas_; }
  const std::vector<lmdb::Dbi>& dbis() const { return dbis_; }
  lmdb::Dbi marker_dbi() const { return marker_dbi_; }

 protected:
  void start_writer() override { scope_.spawn(drain()); }

 private:
  struct JournalFile {
    File file;
    std::vector<WriteOp> ops;  // of its records, in order, while they are not in LMDB
    uint64_t last_seq = 0;
    bool in_lmdb = true;  // everything it holds is in LMDB: it may be written over
  };

  Task<Status> open_journal(int index, bool* created);
  Task<Status> replay(std::vector<std::string> files, uint64_t marker);
  Task<void> drain();
  Status check(const WriteRequest& request) const;
  Task<Status> commit(std::vector<WriteRequest*> batch);
  // Zeroes the record header at offset of file index and makes that durable.
  Task<Status> spoil(int index, uint64_t offset);
  Task<Status> turn_files();
  Task<void> checkpoint_in_background(int index);
  Task<Status> checkpoint(int index);
  void apply(const std::vector<WriteRequest*>& batch, uint64_t seq);
  // Whether LMDB as the last checkpoint left it holds key (false on a read error, logged).
  bool in_base(Table table, std::string_view key);
  Deltas& mutable_deltas();

  std::string dir_;
  std::unique_ptr<lmdb::Env> base_;
  lmdb::Dbi marker_dbi_;
  size_t max_key_bytes_;
  std::vector<std::string> names_;  // by Table
  std::vector<lmdb::Dbi> dbis_;     // by Table
  std::shared_ptr<Deltas> deltas_;  // shared with snapshots
  uint64_t delta_bytes_ = 0;
  std::array<JournalFile, 2> files_;
  int active_ = 0;
  uint64_t active_end_ = 0;  // the next record goes here
  uint64_t next_seq_ = 1;
  uint64_t marker_ = 0;  // the sequence number LMDB holds every record up to
  lmdb::Txn base_view_;  // a snapshot of LMDB as of marker_, for the slots' effects
  TimePoint active_since_;
  std::optional<std::pair<int, uint64_t>> unspoiled_;  // a refused record not yet spoiled
  Event checkpoint_idle_;
  TaskScope scope_;  // the writer and the checkpoints
};

Result<std::optional<std::string_view>> JournaledReadTxn::get(Table table, std::string_view key) {
  MICA_ASSERT_MSG(deltas_ != nullptr, "kv: read on a reset transaction");
  if (table >= deltas_->tables.size()) return unknown_table(table);
  const Delta& delta = deltas_->tables[table];
  if (auto it = delta.find(key); it != delta.end()) {
    if (!it->second.value) return std::optional<std::string_view>();
    return std::optional<std::string_view>(*it->second.value);
  }
  return base_.get(env_->dbis()[table], key);
}

Result<std::unique_ptr<Cursor>> JournaledReadTxn::cursor(Table table) {
  MICA_ASSERT_MSG(deltas_ != nullptr, "kv: cursor on a reset transaction");
  if (table >= deltas_->tables.size()) return unknown_table(table);
  Result<lmdb::Cursor> base = lmdb::Cursor::open(base_, env_->dbis()[table]);
  if (!base.ok()) return base.status();
  return merged_cursor(std::move(*base), &deltas_->tables[table]);
}

Result<uint64_t> JournaledReadTxn::count(Table table) {
  MICA_ASSERT_MSG(deltas_ != nullptr, "kv: count on a reset transaction");
  if (table >= deltas_->tables.size()) return unknown_table(table);
  lmdb::Dbi dbi = env_->dbis()[table];
  Result<uint64_t> base = base_.count(dbi);
  if (!base.ok()) return base;
  Result<std::optional<std::string_view>> marker = base_.get(env_->marker_dbi(), kMarkerKey);
  if (!marker.ok()) return marker.status();
  if ((*marker ? from_be64(**marker) : 0) == deltas_->base_marker)
    return *base + deltas_->added[table];
  // This LMDB snapshot already holds a checkpoint the delta has not let go of yet: count
  // the slots against it, one lookup each.
  uint64_t n = *base;
  for (const auto& [key, slot] : deltas_->tables[table]) {
    Result<std::optional<std::string_view>> in_base = base_.get(dbi, key);
    if (!in_base.ok()) return in_base.status();
    if (slot.value && !*in_base) ++n;
    if (!slot.value && *in_base) --n;
  }
  return n;
}

Status JournaledReadTxn::renew() {
  RETURN_IF_ERROR(base_.renew());
  deltas_ = env_->deltas();
  return Status();
}

Deltas& JournaledEnv::mutable_deltas() {
  // A snapshot still reading the delta keeps its copy; the store moves on with a new one.
  if (deltas_.use_count() > 1) deltas_ = std::make_shared<Deltas>(*deltas_);
  return *deltas_;
}

Result<Table> JournaledEnv::open_table(std::string_view name) {
  for (Table t = 0; t < names_.size(); ++t)
    if (names_[t] == name) return t;
  if (names_.size() >= options_.tables_max)
    return Status(StatusCode::kResourceExhausted, "kv: tables_max tables are open");
  if (name.empty() || name.size() > UINT16_MAX || name == kMarkerTable)
    return Status(
        StatusCode::kInvalidArgument,
        fmt::format("kv: '{}' cannot name a table (1 to 65535 bytes, not {})", name, kMarkerTable));
  Result<lmdb::Dbi> dbi = base_->open_dbi(std::string(name));
  if (!dbi.ok()) return dbi.status();
  names_.emplace_back(name);
  dbis_.push_back(*dbi);
  Deltas& deltas = mutable_deltas();
  deltas.tables.emplace_back();
  deltas.added.push_back(0);
  return Table(names_.size() - 1);
}

Task<Status> JournaledEnv::open_journal(int index, bool* created) {
  std::string path = journal_path(dir_, index);
  auto existing = File::open(path, O_RDWR, 0644);
  Result<File> file = co_await std::move(existing);
  if (!file.ok() && file.status().code() == StatusCode::kNotFound) {
    auto creating = File::open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
    file = co_await std::move(creating);
    if (!file.ok()) co_return file.status();
    // Allocated now, so a commit's fdatasync has no block allocation to make durable.
    Status allocated = co_await file->fallocate(0, 0, options_.journal_file_bytes);
    if (!allocated.ok() && allocated.code() != StatusCode::kNotSupported) co_return allocated;
    CO_TRY(co_await file->fsync());
    *created = true;
  }
  if (!file.ok()) co_return file.status();
  files_[index].file = std::move(*file);
  co_return Status();
}

Task<Status> JournaledEnv::load() {
  uint64_t marker = 0;
  {
    Result<lmdb::Txn> txn = lmdb::Txn::begin(*base_, lmdb::Txn::Mode::kRead);
    if (!txn.ok()) co_return txn.status();
    Result<std::optional<std::string_view>> got = txn->get(marker_dbi_, kMarkerKey);
    if (!got.ok()) co_return got.status();
    if (*got) marker = from_be64(**got);
  }
  std::vector<std::string> contents(files_.size());
  bool created = false;
  for (int i = 0; i < int(files_.size()); ++i) {
    auto opening = open_journal(i, &created);
    CO_TRY(co_await std::move(opening));
    std::string& bytes = contents[i];
    for (;;) {
      size_t at = bytes.size();
      bytes.resize(at + kReadPieceBytes);
      auto reading =
          files_[i].file.read_full(std::as_writable_bytes(std::span(bytes)).subspan(at), at);
      Result<size_t> got = co_await std::move(reading);
      if (!got.ok()) co_return got.status();
      bytes.resize(at + *got);
      if (*got < kReadPieceBytes) break;
    }
  }
  if (created) {
    // A journal's name is durable only once the directory is synced: before any commit.
    auto syncing = sync_directory(dir_);
    CO_TRY(co_await std::move(syncing));
  }
  auto replaying = replay(std::move(contents), marker);
  CO_TRY(co_await std::move(replaying));
  Result<lmdb::Txn> view = lmdb::Txn::begin(*base_, lmdb::Txn::Mode::kRead);
  if (!view.ok()) co_return view.status();
  base_view_ = std::move(*view);
  deltas_->base_marker = marker_;
  active_since_ = Executor::current()->now();
  co_return Status();
}

Task<Status> JournaledEnv::replay(std::vector<std::string> files, uint64_t marker) {
  std::vector<DecodedRecord> records;
  uint64_t newest = marker;
  for (const std::string& bytes : files) {
    size_t pos = 0;
    std::optional<uint64_t> expected;
    while (std::optional<DecodedRecord> record = decode_log_record(bytes, pos, expected)) {
      pos += record->bytes;
      expected = record->seq + 1;
      newest = std::max(newest, record->seq);
      if (record->seq > marker) records.push_back(std::move(*record));
    }
  }
  std::sort(records.begin(), records.end(),
            [](const DecodedRecord& a, const DecodedRecord& b) { return a.seq < b.seq; });
  for (size_t i = 1; i < records.size(); ++i) {
    // A number is written twice only over a refused record that could not be spoiled
    // (commit() stops before that): which of the two was acknowledged is unknowable.
    if (records[i].seq == records[i - 1].seq)
      co_return Status(StatusCode::kCorruption,
                       fmt::format("{}: journal record {} is in both files", dir_, records[i].seq));
  }
  size_t run = 0;
  while (run < records.size() && records[run].seq == marker + 1 + run) ++run;
  if (run < records.size()) {
    MICA_LOG(Warn, "kv", "{}: {} journal records after a gap in sequence {} are not replayed", dir_,
             records.size() - run, marker + 1 + run);
  }
  records.resize(run);
  next_seq_ = newest + 1;
  marker_ = newest;
  if (newest == marker) co_return Status();
  // Every record found is in LMDB after this, and the marker passes them all.
  lmdb::Env* base = base_.get();
  lmdb::Dbi marker_dbi = marker_dbi_;
  auto replaying = run_blocking([base, marker_dbi, &records, newest]() -> Status {
    std::map<std::string, lmdb::Dbi, std::less<>> dbis;
    for (const DecodedRecord& record : records) {
      for (const LoggedOp& op : record.ops) {
        if (dbis.contains(op.table)) continue;
        Result<lmdb::Dbi> dbi = base->open_dbi(std::string(op.table));
        RETURN_IF_ERROR(dbi);
        dbis.emplace(std::string(op.table), *dbi);
      }
    }
    Result<lmdb::Txn> txn = lmdb::Txn::begin(*base, lmdb::Txn::Mode::kWrite);
    RETURN_IF_ERROR(txn);
    for (const DecodedRecord& record : records) {
      for (const LoggedOp& op : record.ops) {
        lmdb::Dbi dbi = dbis.find(op.table)->second;
        if (op.kind == WriteOp::Kind::kPut) {
          RETURN_IF_ERROR(txn->put(dbi, op.key, op.value));
        } else if (Status s = txn->del(dbi, op.key); !s.ok() && s.code() != StatusCode::kNotFound) {
          return s;
        }
      }
    }
    RETURN_IF_ERROR(txn->put(marker_dbi, kMarkerKey, be64(newest)));
    return txn->commit();
  });
  Status replayed = co_await std::move(replaying);
  if (!replayed.ok()) {
    co_return Status(replayed.code(),
                     fmt::format("{}: replaying the journal: {}", dir_, replayed.message()));
  }
  MICA_LOG(Info, "kv", "{}: replayed {} journal records into LMDB", dir_, run);
  co_return Status();
}

Task<Status> JournaledEnv::close() {
  co_await scope_.join();
  wait_writer_idle();
  for (JournalFile& f : files_) {
    if (f.file.is_open()) CO_TRY(co_await f.file.close());
  }
  co_return Status();
}

Task<void> JournaledEnv::drain() {
  std::vector<WriteRequest*> batch;
  while (take_batch(&batch)) {
    std::vector<WriteRequest*> valid;
    for (WriteRequest* r : batch) {
      r->status = check(*r);
      if (r->status.ok()) valid.push_back(r);
    }
    uint64_t records = 0;
    if (!valid.empty()) {
      auto committing = commit(valid);
      Status group = co_await std::move(committing);
      ++records;
      if (group.ok() || valid.size() == 1) {
        for (WriteRequest* r : valid) r->status = group;
      } else {
        // Isolate the failure (a full map is one request's doing): one record per request.
        for (WriteRequest* r : valid) {
          std::vector<WriteRequest*> one{r};
          auto alone = commit(std::move(one));
          r->status = co_await std::move(alone);
          ++records;
        }
      }
    }
    finish(&batch, records);
  }
}

Status JournaledEnv::check(const WriteRequest& request) const {
  for (const WriteOp& op : request.ops) {
    if (op.table >= names_.size()) return unknown_table(op.table);
    if (op.key.empty() || op.key.size() > max_key_bytes_)
      return Status(StatusCode::kInvalidArgument, fmt::format("kv: a key has 1 to {} bytes, not {}",
                                                              max_key_bytes_, op.key.size()));
  }
  return Status();
}

Task<Status> JournaledEnv::commit(std::vector<WriteRequest*> batch) {
  if (batch_payload_bytes(batch) > kRecordPayloadMaxBytes / 2)
    co_return Status(StatusCode::kInvalidArgument, "kv: one commit carries too many bytes");
  // A refused record that may be on disk is spoiled before anything else is written.
  if (unspoiled_) {
    auto spoiling = spoil(unspoiled_->first, unspoiled_->second);
    CO_TRY(co_await std::move(spoiling));
    unspoiled_.reset();
  }
  // Room: what the delta would hold afterwards (each key's last change replaces its slot).
  std::map<std::pair<Table, std::string_view>, const WriteOp*> last_change;
  for (const WriteRequest* r : batch)
    for (const WriteOp& op : r->ops) last_change[{op.table, op.key}] = &op;
  uint64_t grown = delta_bytes_;
  for (const auto& [key, op] : last_change) {
    const Delta& delta = deltas_->tables[key.first];
    if (auto it = delta.find(key.second); it != delta.end())
      grown -= std::min(grown, slot_bytes(it->first, it->second.value));
    grown += op->key.size() + op->value.size() + kEntryOverheadBytes;
  }
  Result<uint64_t> used = base_->used_bytes();
  if (!used.ok()) co_return used.status();
  if (grown > delta_bytes_ && *used + 2 * grown + kCheckpointSlackBytes > options_.map_size_bytes)
    co_return Status(StatusCode::kNoSpace,
                     fmt::format("kv: LMDB uses {} bytes and the journal would hold {} more; "
                                 "they might not fit map_size_bytes {}",
                                 *used, grown, options_.map_size_bytes));
  std::string record = encode_log_record(next_seq_, batch, names_);
  bool full = active_end_ + record.size() > options_.journal_file_bytes;
  // By age only while the other file is free: a failing checkpoint is retried when the
  // active file is full, not at every commit.
  bool old = Executor::current()->now() - active_since_ > options_.journal_turn_interval &&
             files_[1 - active_].in_lmdb;
  if (active_end_ > 0 && (full || old)) {
    auto turning = turn_files();
    CO_TRY(co_await std::move(turning));
  }
  JournalFile& f = files_[active_];
  f.in_lmdb = false;
  auto writing = f.file.write_full(std::as_bytes(std::span(record)), active_end_);
  Status written = co_await std::move(writing);
  if (written.ok()) written = co_await f.file.fdatasync();
  if (!written.ok()) {
    // The record may have reached the disk: spoil its header, so that a crash does not
    // replay what was refused; until that is durable nothing else is written.
    auto spoiling = spoil(active_, active_end_);
    if (!(co_await std::move(spoiling)).ok()) unspoiled_ = std::make_pair(active_, active_end_);
    co_return written;
  }
  // Durable: only now does anyone see it.
  apply(batch, next_seq_);
  f.last_seq = next_seq_;
  active_end_ += record.size();
  ++next_seq_;
  co_return Status();
}

Task<Status> JournaledEnv::spoil(int index, uint64_t offset) {
  std::string zeros(kRecordHeaderBytes, '\0');
  File& file = files_[index].file;
  auto writing = file.write_full(std::as_bytes(std::span(zeros)), offset);
  CO_TRY(co_await std::move(writing));
  co_return co_await file.fdatasync();
}

void JournaledEnv::apply(const std::vector<WriteRequest*>& batch, uint64_t seq) {
  Deltas& deltas = mutable_deltas();
  std::vector<WriteOp>& kept = files_[active_].ops;
  for (const WriteRequest* r : batch) {
    for (const WriteOp& op : r->ops) {
      Delta& delta = deltas.tables[op.table];
      auto [it, inserted] = delta.try_emplace(op.key);
      Slot& slot = it->second;
      bool was_in_base = inserted ? in_base(op.table, op.key) : base_had(slot);
      if (!inserted) delta_bytes_ -= std::min(delta_bytes_, slot_bytes(it->first, slot.value));
      slot.seq = seq;
      if (op.kind == WriteOp::Kind::kPut) {
        slot.value = op.value;
      } else {
        slot.value.reset();
      }
      int8_t effect = effect_of(was_in_base, slot.value.has_value());
      deltas.added[op.table] += effect - slot.effect;
      slot.effect = effect;
      delta_bytes_ += slot_bytes(it->first, slot.value);
      kept.push_back(op);
    }
  }
}

bool JournaledEnv::in_base(Table table, std::string_view key) {
  Result<std::optional<std::string_view>> got = base_view_.get(dbis_[table], key);
  if (!got.ok()) {
    MICA_LOG(Warn, "kv", "{}: reading a key for the count: {}", dir_, got.status());
    return false;
  }
  return got->has_value();
}

Task<Status> JournaledEnv::turn_files() {
  Status idle = co_await checkpoint_idle_.wait_uncancellable();
  MICA_ASSERT(idle.ok());
  int other = 1 - active_;
  if (!files_[other].in_lmdb) {
    // Its checkpoint failed before: it must succeed now, or this commit cannot be written.
    auto again = checkpoint(other);
    CO_TRY(co_await std::move(again));
  }
  int full = active_;
  active_ = other;
  active_end_ = 0;
  active_since_ = Executor::current()->now();
  checkpoint_idle_.reset();
  scope_.spawn(checkpoint_in_background(full));
  co_return Status();
}

Task<void> JournaledEnv::checkpoint_in_background(int index) {
  auto copying = checkpoint(index);
  Status copied = co_await std::move(copying);
  if (!copied.ok()) {
    MICA_LOG(Warn, "kv", "{}: checkpoint of {} failed, kept for the next turn: {}", dir_,
             journal_path(dir_, index), copied);
  }
  checkpoint_idle_.set();
}

Task<Status> JournaledEnv::checkpoint(int index) {
  JournalFile& f = files_[index];
  const std::vector<WriteOp>* ops = &f.ops;       // untouched on this executor meanwhile
  uint64_t last = std::max(f.last_seq, marker_);  // never back: older records stay skipped
  std::vector<lmdb::Dbi> dbis = dbis_;
  lmdb::Env* base = base_.get();
  lmdb::Dbi marker_dbi = marker_dbi_;
  auto copying = run_blocking([base, marker_dbi, ops, last, dbis]() -> Status {
    Result<lmdb::Txn> txn = lmdb::Txn::begin(*base, lmdb::Txn::Mode::kWrite);
    RETURN_IF_ERROR(txn);
    for (const WriteOp& op : *ops) {
      if (op.kind == WriteOp::Kind::kPut) {
        RETURN_IF_ERROR(txn->put(dbis[op.table], op.key, op.value));
      } else if (Status s = txn->del(dbis[op.table], op.key);
                 !s.ok() && s.code() != StatusCode::kNotFound) {
        return s;
      }
    }
    RETURN_IF_ERROR(txn->put(marker_dbi, kMarkerKey, be64(last)));
    return txn->commit();
  });
  CO_TRY(co_await std::move(copying));
  // In LMDB now: a key whose newest change is in this file leaves the delta; a newer
  // change of it stays, its effect now measured against the new LMDB.
  base_view_.reset();
  Status renewed = base_view_.renew();
  MICA_ASSERT_MSG(renewed.ok(), "kv: renewing the journal's LMDB view failed");
  Deltas& deltas = mutable_deltas();
  for (const WriteOp& op : f.ops) {
    Delta& delta = deltas.tables[op.table];
    auto it = delta.find(op.key);
    if (it == delta.end()) continue;
    Slot& slot = it->second;
    if (slot.seq > last) {
      int8_t effect = effect_of(in_base(op.table, op.key), slot.value.has_value());
      deltas.added[op.table] += effect - slot.effect;
      slot.effect = effect;
      continue;
    }
    deltas.added[op.table] -= slot.effect;
    delta_bytes_ -= std::min(delta_bytes_, slot_bytes(it->first, slot.value));
    delta.erase(it);
  }
  deltas.base_marker = last;
  f.ops.clear();
  f.in_lmdb = true;
  marker_ = last;
  counters_.checkpoints.fetch_add(1, std::memory_order_relaxed);
  co_return Status();
}

}  // namespace

std::string journal_path(const std::string& dir, int index) {
  return fmt::format("{}/journal.{}", dir, index);
}

Task<Result<std::unique_ptr<Env>>> open_journaled_env(std::string dir, EnvOptions options) {
  if (options.journal_file_bytes < kJournalFileBytesMin ||
      options.journal_file_bytes > kJournalFileBytesMax)
    co_return Status(StatusCode::kInvalidArgument,
                     fmt::format("kv: journal_file_bytes is {} to {}, not {}", kJournalFileBytesMin,
                                 kJournalFileBytesMax, options.journal_file_bytes));
  lmdb::EnvOptions lmdb_options{options.map_size_bytes, options.tables_max + 1,
                                options.readers_max};
  Result<std::unique_ptr<lmdb::Env>> base = lmdb::Env::open(dir, lmdb_options);
  if (!base.ok()) co_return base.status();
  Result<lmdb::Dbi> marker = (*base)->open_dbi(std::string(kMarkerTable));
  if (!marker.ok()) co_return marker.status();
  std::unique_ptr<JournaledEnv> env(
      new JournaledEnv(std::move(dir), options, std::move(*base), *marker));
  auto loading = env->load();
  Status loaded = co_await std::move(loading);
  if (!loaded.ok()) co_return loaded;
  co_return std::unique_ptr<Env>(std::move(env));
}

}  // namespace mica::kv
