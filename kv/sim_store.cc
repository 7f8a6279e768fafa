// kv::Env on the simulator's disk (see kv/sim_store.h): the log format, replay, read
// snapshots and the writer task.
#include "kv/sim_store.h"

#include <map>

#include "async/file.h"
#include "async/log.h"
#include "async/scope.h"
#include "kv/log_record.h"

namespace mica::kv {
namespace {

constexpr size_t kReadPieceBytes = size_t{1} << 20;
// What one entry costs beyond its bytes, so that map_size_bytes bounds many small entries.
constexpr uint64_t kEntryOverheadBytes = 16;

using TableMap = std::map<std::string, std::string, std::less<>>;
struct Tables {
  std::vector<TableMap> maps;  // by Table
};

uint64_t entry_bytes(std::string_view key, std::string_view value) {
  return key.size() + value.size() + kEntryOverheadBytes;
}

class SimCursor final : public Cursor {
 public:
  SimCursor(std::shared_ptr<const Tables> snapshot, const TableMap* map)
      : snapshot_(std::move(snapshot)), map_(map), at_(map->end()) {}
  Result<std::optional<Entry>> seek(std::string_view key) override {
    at_ = map_->lower_bound(key);
    return here();
  }
  Result<std::optional<Entry>> first() override {
    at_ = map_->begin();
    return here();
  }
  Result<std::optional<Entry>> last() override {
    at_ = map_->empty() ? map_->end() : std::prev(map_->end());
    return here();
  }
  Result<std::optional<Entry>> next() override {
    if (at_ != map_->end()) ++at_;
    return here();
  }
  // From past the end (LMDB's unpositioned cursor too) prev() lands on the last entry.
  Result<std::optional<Entry>> prev() override {
    if (at_ == map_->begin()) {
      at_ = map_->end();
      return here();
    }
    --at_;
    return here();
  }

 private:
  Result<std::optional<Entry>> here() const {
    if (at_ == map_->end()) return std::optional<Entry>();
    return std::optional<Entry>(Entry{at_->first, at_->second});
  }
  std::shared_ptr<const Tables> snapshot_;  // keeps map_ alive and unchanged
  const TableMap* map_;
  TableMap::const_iterator at_;
};

class SimEnv;

class SimReadTxn final : public ReadTxn {
 public:
  explicit SimReadTxn(const SimEnv* env);
  Result<std::optional<std::string_view>> get(Table table, std::string_view key) override {
    MICA_ASSERT_MSG(snapshot_ != nullptr, "kv: read on a reset transaction");
    if (table >= snapshot_->maps.size()) return unknown_table(table);
    const TableMap& map = snapshot_->maps[table];
    auto it = map.find(key);
    if (it == map.end()) return std::optional<std::string_view>();
    return std::optional<std::string_view>(it->second);
  }
  Result<std::unique_ptr<Cursor>> cursor(Table table) override {
    MICA_ASSERT_MSG(snapshot_ != nullptr, "kv: cursor on a reset transaction");
    if (table >= snapshot_->maps.size()) return unknown_table(table);
    return std::unique_ptr<Cursor>(new SimCursor(snapshot_, &snapshot_->maps[table]));
  }
  Result<uint64_t> count(Table table) override {
    MICA_ASSERT_MSG(snapshot_ != nullptr, "kv: count on a reset transaction");
    if (table >= snapshot_->maps.size()) return unknown_table(table);
    return static_cast<uint64_t>(snapshot_->maps[table].size());
  }
  void reset() override { snapshot_.reset(); }
  Status renew() override;

 private:
  const SimEnv* env_;
  std::shared_ptr<const Tables> snapshot_;
};

class SimEnv final : public Env {
 public:
  SimEnv(std::string dir, EnvOptions options)
      : Env(options), dir_(dir), log_path_(sim_log_path(dir)), state_(std::make_shared<Tables>()) {}
  ~SimEnv() override { wait_writer_idle(); }

  Task<Status> load();
  Result<Table> open_table(std::string_view name) override;
  Result<std::unique_ptr<ReadTxn>> begin_read() override {
    return std::unique_ptr<ReadTxn>(new SimReadTxn(this));
  }
  Result<uint64_t> used_bytes() override { return log_end_; }
  Task<Status> close() override;
  Implementation implementation() const override { return Implementation::kSim; }

  std::shared_ptr<const Tables> snapshot() const { return state_; }

 protected:
  void start_writer() override { scope_.spawn(drain()); }

 private:
  // Keyed changes of one commit, in op order; nullopt deletes.
  using Staged = std::map<std::pair<Table, std::string>, std::optional<std::string>>;

  Task<void> drain();
  // Makes batch durable as one record and applies it; changes nothing on failure.
  Task<Status> commit(std::vector<WriteRequest*> batch);
  Status stage(const std::vector<WriteRequest*>& batch, Staged* staged, uint64_t* live) const;
  void apply(const Staged& staged);
  void replay(const std::vector<LoggedOp>& ops);
  Tables& mutable_state();

  std::string dir_;
  std::string log_path_;
  File log_;
  uint64_t log_end_ = 0;  // end of the valid log: the next record goes here
  uint64_t next_seq_ = 1;
  uint64_t live_bytes_ = 0;
  std::vector<std::string> names_;            // by Table
  std::map<std::string, TableMap> replayed_;  // tables read from the log, not yet opened
  std::shared_ptr<Tables> state_;             // committed tables; shared with snapshots
  TaskScope scope_;                           // the writer task
};

SimReadTxn::SimReadTxn(const SimEnv* env) : env_(env), snapshot_(env->snapshot()) {}

Status SimReadTxn::renew() {
  snapshot_ = env_->snapshot();
  return Status();
}

Tables& SimEnv::mutable_state() {
  // A snapshot still reading the tables keeps its copy; the store moves on with a new one.
  if (state_.use_count() > 1) state_ = std::make_shared<Tables>(*state_);
  return *state_;
}

Task<Status> SimEnv::load() {
  auto existing = File::open(log_path_, O_RDWR, 0644);
  Result<File> file = co_await std::move(existing);
  if (!file.ok() && file.status().code() == StatusCode::kNotFound) {
    auto creating = File::open(log_path_, O_RDWR | O_CREAT | O_EXCL, 0644);
    file = co_await std::move(creating);
    if (!file.ok()) co_return file.status();
    // The log's name is durable only once its directory is synced: before the first commit
    // is acknowledged, or a power loss could take the whole log with it.
    auto syncing = sync_directory(dir_);
    Status synced = co_await std::move(syncing);
    if (!synced.ok()) co_return synced;
  }
  if (!file.ok()) co_return file.status();
  log_ = std::move(*file);
  std::string bytes;
  for (;;) {
    size_t at = bytes.size();
    bytes.resize(at + kReadPieceBytes);
    auto reading = log_.read_full(std::as_writable_bytes(std::span(bytes)).subspan(at), at);
    Result<size_t> got = co_await std::move(reading);
    if (!got.ok()) co_return got.status();
    bytes.resize(at + *got);
    if (*got < kReadPieceBytes) break;
  }
  size_t pos = 0;
  while (std::optional<DecodedRecord> record = decode_log_record(bytes, pos, next_seq_)) {
    replay(record->ops);
    pos += record->bytes;
    ++next_seq_;
  }
  log_end_ = pos;
  if (pos < bytes.size())
    MICA_LOG(Info, "kv", "{}: ignoring {} bytes after the last whole commit (a torn tail)",
             log_path_, bytes.size() - pos);
  co_return Status();
}

void SimEnv::replay(const std::vector<LoggedOp>& ops) {
  for (const LoggedOp& op : ops) {
    TableMap& map = replayed_[std::string(op.table)];
    auto it = map.find(op.key);
    if (it != map.end()) {
      live_bytes_ -= entry_bytes(it->first, it->second);
      map.erase(it);
    }
    if (op.kind == WriteOp::Kind::kPut) {
      live_bytes_ += entry_bytes(op.key, op.value);
      map.emplace(std::string(op.key), std::string(op.value));
    }
  }
}

Result<Table> SimEnv::open_table(std::string_view name) {
  for (Table t = 0; t < names_.size(); ++t)
    if (names_[t] == name) return t;
  if (names_.size() >= options_.tables_max)
    return Status(StatusCode::kResourceExhausted, "kv: tables_max tables are open");
  if (name.empty() || name.size() > UINT16_MAX)
    return Status(StatusCode::kInvalidArgument, "kv: a table name has 1 to 65535 bytes");
  TableMap map;
  auto it = replayed_.find(std::string(name));
  if (it != replayed_.end()) {
    map = std::move(it->second);
    replayed_.erase(it);
  }
  names_.emplace_back(name);
  mutable_state().maps.push_back(std::move(map));
  return Table(names_.size() - 1);
}

Task<Status> SimEnv::close() {
  co_await scope_.join();
  wait_writer_idle();
  if (!log_.is_open()) co_return Status();
  co_return co_await log_.close();
}

Task<void> SimEnv::drain() {
  std::vector<WriteRequest*> batch;
  while (take_batch(&batch)) {
    auto committing = commit(batch);
    Status group = co_await std::move(committing);
    uint64_t transactions = 1;
    if (group.ok() || batch.size() == 1) {
      for (WriteRequest* r : batch) r->status = group;
    } else {
      // Isolate the failure: one record per request.
      for (WriteRequest* r : batch) {
        std::vector<WriteRequest*> one{r};
        auto alone = commit(std::move(one));
        r->status = co_await std::move(alone);
        ++transactions;
      }
    }
    finish(&batch, transactions);
  }
}

Status SimEnv::stage(const std::vector<WriteRequest*>& batch, Staged* staged,
                     uint64_t* live) const {
  for (const WriteRequest* r : batch) {
    for (const WriteOp& op : r->ops) {
      if (op.table >= names_.size()) return unknown_table(op.table);
      auto key = std::make_pair(op.table, op.key);
      auto found = staged->find(key);
      std::optional<std::string_view> old;
      if (found != staged->end()) {
        if (found->second) old = *found->second;
      } else {
        const TableMap& map = state_->maps[op.table];
        auto it = map.find(op.key);
        if (it != map.end()) old = it->second;
      }
      if (old) *live -= entry_bytes(op.key, *old);
      if (op.kind == WriteOp::Kind::kPut) *live += entry_bytes(op.key, op.value);
      (*staged)[key] = op.kind == WriteOp::Kind::kPut ? std::optional(op.value) : std::nullopt;
    }
  }
  if (*live > options_.map_size_bytes)
    return Status(StatusCode::kNoSpace,
                  fmt::format("kv: the commit would hold {} bytes, past map_size_bytes {}", *live,
                              options_.map_size_bytes));
  return Status();
}

void SimEnv::apply(const Staged& staged) {
  Tables& tables = mutable_state();
  for (const auto& [key, value] : staged) {
    TableMap& map = tables.maps[key.first];
    if (value)
      map.insert_or_assign(key.second, *value);
    else
      map.erase(key.second);
  }
}

Task<Status> SimEnv::commit(std::vector<WriteRequest*> batch) {
  Staged staged;
  uint64_t live = live_bytes_;
  CO_TRY(stage(batch, &staged, &live));
  if (batch_payload_bytes(batch) > kRecordPayloadMaxBytes / 2)
    co_return Status(StatusCode::kInvalidArgument, "kv: one commit carries too many bytes");
  std::string record = encode_log_record(next_seq_, batch, names_);
  Duration delay_max = options_.sim_commit_delay_max;
  if (delay_max > Duration::zero()) {
    uint64_t draw = Executor::current()->backend().random_u64();
    Duration delay(static_cast<int64_t>(draw % uint64_t(delay_max.count() + 1)));
    CO_TRY(co_await sleep_for(delay));
  }
  // Written where the valid log ends: a failed or torn earlier attempt is overwritten.
  auto writing = log_.write_full(std::as_bytes(std::span(record)), log_end_);
  CO_TRY(co_await std::move(writing));
  CO_TRY(co_await log_.fdatasync());
  // Durable: only now does anyone see it.
  apply(staged);
  live_bytes_ = live;
  log_end_ += record.size();
  ++next_seq_;
  co_return Status();
}

}  // namespace

std::string sim_log_path(const std::string& dir) {
  return dir + "/kv.log";
}

Task<Result<std::unique_ptr<Env>>> open_sim_env(std::string dir, EnvOptions options) {
  std::unique_ptr<SimEnv> env(new SimEnv(std::move(dir), options));
  auto loading = env->load();
  Status loaded = co_await std::move(loading);
  if (!loaded.ok()) co_return loaded;
  co_return std::unique_ptr<Env>(std::move(env));
}

}  // namespace mica::kv
