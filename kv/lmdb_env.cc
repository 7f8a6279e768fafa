// kv::Env on LMDB (see kv/lmdb_env.h); every LMDB call goes through kv/lmdb.h.
#include "kv/lmdb_env.h"

#include "async/blocking.h"
#include "kv/lmdb.h"

namespace mica::kv {
namespace {

Result<std::optional<Entry>> to_entry(Result<std::optional<lmdb::Cursor::Entry>> got) {
  if (!got.ok()) return got.status();
  if (!*got) return std::optional<Entry>();
  return std::optional<Entry>(Entry{(*got)->first, (*got)->second});
}

class LmdbCursor final : public Cursor {
 public:
  explicit LmdbCursor(lmdb::Cursor cursor) : cursor_(std::move(cursor)) {}
  Result<std::optional<Entry>> seek(std::string_view key) override {
    return to_entry(cursor_.seek(key));
  }
  Result<std::optional<Entry>> first() override { return to_entry(cursor_.first()); }
  Result<std::optional<Entry>> last() override { return to_entry(cursor_.last()); }
  Result<std::optional<Entry>> next() override { return to_entry(cursor_.next()); }
  Result<std::optional<Entry>> prev() override { return to_entry(cursor_.prev()); }

 private:
  lmdb::Cursor cursor_;
};

class LmdbReadTxn final : public ReadTxn {
 public:
  LmdbReadTxn(lmdb::Txn txn, const std::vector<lmdb::Dbi>* dbis)
      : txn_(std::move(txn)), dbis_(dbis) {}
  Result<std::optional<std::string_view>> get(Table table, std::string_view key) override {
    if (table >= dbis_->size()) return unknown_table(table);
    return txn_.get((*dbis_)[table], key);
  }
  Result<std::unique_ptr<Cursor>> cursor(Table table) override {
    if (table >= dbis_->size()) return unknown_table(table);
    Result<lmdb::Cursor> c = lmdb::Cursor::open(txn_, (*dbis_)[table]);
    if (!c.ok()) return c.status();
    return std::unique_ptr<Cursor>(new LmdbCursor(std::move(*c)));
  }
  Result<uint64_t> count(Table table) override {
    if (table >= dbis_->size()) return unknown_table(table);
    return txn_.count((*dbis_)[table]);
  }
  void reset() override { txn_.reset(); }
  Status renew() override { return txn_.renew(); }

 private:
  lmdb::Txn txn_;
  const std::vector<lmdb::Dbi>* dbis_;
};

class LmdbEnv final : public Env {
 public:
  LmdbEnv(std::unique_ptr<lmdb::Env> env, EnvOptions options) : Env(options), env_(std::move(env)) {
    job_.env = this;
    job_.run = &LmdbEnv::run_job;
  }
  ~LmdbEnv() override { wait_writer_idle(); }

  Result<Table> open_table(std::string_view name) override {
    if (dbis_.size() >= options_.tables_max)
      return Status(StatusCode::kResourceExhausted, "kv: tables_max tables are open");
    Result<lmdb::Dbi> dbi = env_->open_dbi(std::string(name));
    if (!dbi.ok()) return dbi.status();
    dbis_.push_back(*dbi);
    return Table(dbis_.size() - 1);
  }
  Result<std::unique_ptr<ReadTxn>> begin_read() override {
    Result<lmdb::Txn> txn = lmdb::Txn::begin(*env_, lmdb::Txn::Mode::kRead);
    if (!txn.ok()) return txn.status();
    return std::unique_ptr<ReadTxn>(new LmdbReadTxn(std::move(*txn), &dbis_));
  }
  Result<uint64_t> used_bytes() override { return env_->used_bytes(); }
  Task<Status> close() override {
    wait_writer_idle();
    co_return Status();
  }
  Implementation implementation() const override { return Implementation::kLmdb; }

 protected:
  void start_writer() override {
    if (!BlockingPool::shared().try_submit(&job_)) drain();  // caller runs
  }

 private:
  struct Job : BlockingPool::Job {
    LmdbEnv* env = nullptr;
  };
  static void run_job(BlockingPool::Job* job) { static_cast<Job*>(job)->env->drain(); }
  void drain();
  Status apply(lmdb::Txn& txn, const WriteRequest& request);
  // Commits batch in one transaction, or each request alone when that fails; returns the
  // number of transactions used.
  uint64_t write_batch(const std::vector<WriteRequest*>& batch);

  std::unique_ptr<lmdb::Env> env_;
  std::vector<lmdb::Dbi> dbis_;
  Job job_;
};

void LmdbEnv::drain() {
  std::vector<WriteRequest*> batch;
  while (take_batch(&batch)) {
    uint64_t transactions = write_batch(batch);
    finish(&batch, transactions);
  }
  // The queue was empty and the writer is idle: this Env may already be gone.
}

Status LmdbEnv::apply(lmdb::Txn& txn, const WriteRequest& request) {
  for (const WriteOp& op : request.ops) {
    if (op.table >= dbis_.size()) return unknown_table(op.table);
    lmdb::Dbi dbi = dbis_[op.table];
    if (op.kind == WriteOp::Kind::kPut) {
      RETURN_IF_ERROR(txn.put(dbi, op.key, op.value));
    } else {
      Status s = txn.del(dbi, op.key);
      if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
    }
  }
  return Status();
}

uint64_t LmdbEnv::write_batch(const std::vector<WriteRequest*>& batch) {
  Status group;
  {
    Result<lmdb::Txn> txn = lmdb::Txn::begin(*env_, lmdb::Txn::Mode::kWrite);
    if (!txn.ok()) group = txn.status();
    for (size_t i = 0; group.ok() && i < batch.size(); ++i) group = apply(*txn, *batch[i]);
    if (group.ok()) group = txn->commit();
  }
  if (group.ok() || batch.size() == 1) {
    for (WriteRequest* r : batch) r->status = group;
    return 1;
  }
  // Isolate the failure: one transaction per request.
  for (WriteRequest* r : batch) {
    Result<lmdb::Txn> txn = lmdb::Txn::begin(*env_, lmdb::Txn::Mode::kWrite);
    Status s = txn.ok() ? apply(*txn, *r) : txn.status();
    if (s.ok()) s = txn->commit();
    r->status = std::move(s);
  }
  return 1 + batch.size();
}

}  // namespace

Result<std::unique_ptr<Env>> open_lmdb_env(std::string dir, EnvOptions options) {
  lmdb::EnvOptions lmdb_options{options.map_size_bytes, options.tables_max, options.readers_max};
  Result<std::unique_ptr<lmdb::Env>> env = lmdb::Env::open(dir, lmdb_options);
  if (!env.ok()) return env.status();
  return std::unique_ptr<Env>(new LmdbEnv(std::move(*env), options));
}

}  // namespace mica::kv
