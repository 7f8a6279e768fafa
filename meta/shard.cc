// Shard (meta/shard.h): opening and closing a shard's environment, the committed-state
// reads every operation shares, lookup and getattr. The overlay and commits are in
// meta/shard_txn.cc.
#include "meta/shard.h"

#include "async/log.h"
#include "meta/gc.h"
#include "meta/permission.h"
#include "meta/shard_overlay.h"

namespace mica::meta {

namespace {

Inode root_inode(int64_t now_ns) {
  Inode root;
  root.id = kRootInode;
  root.type = InodeType::kDirectory;
  root.mode = 0755;
  root.uid = 0;
  root.gid = 0;
  root.nlink = 2;
  root.atime_ns = root.mtime_ns = root.ctime_ns = now_ns;
  root.parent = kRootInode;
  return root;
}

// The shard record of an existing environment, nullopt for a fresh one.
Result<std::optional<ShardRecord>> read_record(Shard& shard) {
  Result<std::unique_ptr<kv::ReadTxn>> txn = shard.read();
  if (!txn.ok()) return txn.status();
  auto value = (*txn)->get(shard.tables().shard, kShardRecordKey);
  if (!value.ok()) return value.status();
  if (!*value) return std::optional<ShardRecord>();
  Result<ShardRecord> record = decode_record<ShardRecord>(**value, "the shard record");
  if (!record.ok()) return record.status();
  if (record->format_version < kShardFormatVersionOldest ||
      record->format_version > kShardFormatVersion) {
    return Status(StatusCode::kCorruption,
                  fmt::format("{}: shard format version {}, this build reads versions {} to {}",
                              shard.options().dir, record->format_version,
                              kShardFormatVersionOldest, kShardFormatVersion));
  }
  if (record->shard != shard.id()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} holds shard {}, not shard {}", shard.options().dir, record->shard,
                              shard.id()));
  }
  return std::optional<ShardRecord>(std::move(record).value());
}

// The last key of a table (gc queue sequences), nullopt when empty.
Result<std::optional<std::string>> last_key(kv::ReadTxn& txn, kv::Table table) {
  Result<std::unique_ptr<kv::Cursor>> cursor = txn.cursor(table);
  if (!cursor.ok()) return cursor.status();
  Result<std::optional<kv::Entry>> last = (*cursor)->last();
  if (!last.ok()) return last.status();
  if (!*last) return std::optional<std::string>();
  return std::optional<std::string>(std::string((*last)->key));
}

}  // namespace

Shard::Shard(ShardOptions options)
    : options_(std::move(options)), overlay_(std::make_unique<Overlay>()) {}

Shard::~Shard() = default;

Task<Result<std::unique_ptr<Shard>>> Shard::open(ShardOptions options) {
  std::unique_ptr<Shard> shard(new Shard(std::move(options)));
  auto opening = kv::Env::open(shard->options_.dir, shard->options_.env);
  Result<std::unique_ptr<kv::Env>> env = co_await std::move(opening);
  CO_TRY(env);
  shard->env_ = std::move(env).value();
  Status loaded = shard->load();
  if (!loaded.ok()) {
    auto closing = shard->env_->close();
    Status ignored = co_await std::move(closing);
    (void)ignored;
    co_return loaded;
  }
  if (shard->fresh_ || shard->overlay_->record.format_version != kShardFormatVersion) {
    // A fresh environment's record and root, or an older one's record rewritten as this
    // version before anything of the new format is written (an older build then refuses it).
    Status created = co_await shard->create_fresh();
    if (!created.ok()) {
      auto closing = shard->env_->close();
      Status ignored = co_await std::move(closing);
      (void)ignored;
      co_return created;
    }
  }
  MetricLabels labels = shard->options_.metric_labels;
  labels.emplace_back("shard", std::to_string(shard->id()));
  shard->counters_.operations =
      &metrics().counter("meta", "shard_operations_total", "mutations a shard committed", labels);
  shard->counters_.commits = &metrics().counter(
      "meta", "shard_commits_total", "commit generations of a shard's group commit", labels);
  shard->counters_.batch_size = &metrics().histogram(
      "meta", "shard_commit_batch_size",
      "mutations per commit generation of a shard, one microsecond per mutation", labels,
      kBatchSizeBuckets);
  MICA_LOG(Info, "meta", "shard {} open in {}{}", shard->id(), shard->options_.dir,
           shard->fresh_ ? " (new)" : "");
  // The shard's garbage collector (meta/gc.h); it collects only with a storage client.
  shard->gc_ = std::make_unique<GcWorker>(shard.get(), shard->options_.gc);
  shard->gc_->start();
  co_return shard;
}

Status Shard::load() {
  Result<ShardTables> tables = open_shard_tables(env_.get());
  if (!tables.ok()) return tables.status();
  tables_ = *tables;
  Result<std::optional<ShardRecord>> record = read_record(*this);
  if (!record.ok()) return record.status();
  fresh_ = !record->has_value();
  if (*record) overlay_->record = **record;
  Result<std::unique_ptr<kv::ReadTxn>> txn = read();
  if (!txn.ok()) return txn.status();
  Result<std::optional<std::string>> gc = last_key(**txn, tables_.gc);
  if (!gc.ok()) return gc.status();
  if (*gc && (*gc)->size() == 8) overlay_->next_gc = read_be64(**gc) + 1;
  // The remembered answers, by age, for pruning.
  Result<std::unique_ptr<kv::Cursor>> cursor = (*txn)->cursor(tables_.requests);
  if (!cursor.ok()) return cursor.status();
  for (Result<std::optional<kv::Entry>> at = (*cursor)->first();; at = (*cursor)->next()) {
    if (!at.ok()) return at.status();
    if (!*at) break;
    if ((*at)->value.size() < 8) {
      return Status(StatusCode::kCorruption, "a remembered answer without its age");
    }
    uint64_t age = read_be64((*at)->value);
    overlay_->requests_by_age[age] = std::string((*at)->key);
    overlay_->request_age[std::string((*at)->key)] = age;
    overlay_->next_request = std::max(overlay_->next_request, age + 1);
  }
  return Status::ok_status();
}

Task<Status> Shard::create_fresh() {
  ShardRecord& record = overlay_->record;
  kv::WriteRequest request;
  if (!fresh_) {
    MICA_LOG(Info, "meta", "shard {}: format version {} upgraded to {}", id(),
             record.format_version, kShardFormatVersion);
    record.format_version = kShardFormatVersion;
    request.put(tables_.shard, kShardRecordKey, encode_record(record));
    co_return co_await env_->write(&request);
  }
  record = ShardRecord{};
  record.shard = id();
  if (id() == 0) {
    record.next_sequence = sequence_of(kRootInode) + 1;
    request.put(tables_.inodes, inode_key(kRootInode), encode_record(root_inode(now_ns())));
  }
  request.put(tables_.shard, kShardRecordKey, encode_record(record));
  co_return co_await env_->write(&request);
}

Task<Status> Shard::close() {
  if (gc_ != nullptr) {
    auto stopping = gc_->stop();  // first: its record erases are writes of the environment
    co_await std::move(stopping);
  }
  overlay_->launch(this);  // batched commits still waiting for company
  while (overlay_->writers.active() > 0) co_await overlay_->writers.join();
  MICA_ASSERT(overlay_->held.empty() && overlay_->in_flight == 0);
  if (env_ == nullptr) co_return Status::ok_status();
  auto closing = env_->close();
  Status closed = co_await std::move(closing);
  env_.reset();
  co_return closed;
}

ShardTxn Shard::begin() {
  auto state = std::make_unique<ShardTxn::State>();
  state->shard = this;
  state->id = overlay_->next_txn++;
  return ShardTxn(std::move(state));
}

Result<std::unique_ptr<kv::ReadTxn>> Shard::read() {
  return env_->begin_read();
}

int64_t Shard::now_ns() const {
  if (options_.clock_ns) return options_.clock_ns();
  return to_ns(Executor::current()->now());
}

Status Shard::check_local(InodeId inode) const {
  if (shard_of(inode) == id()) return Status::ok_status();
  return Status(StatusCode::kWrongShard,
                fmt::format("inode {:#x} lives on shard {}, not {}", inode, shard_of(inode), id()));
}

Result<std::optional<std::string>> Shard::remembered_answer(RequestTag tag) {
  if (tag.client == 0 && tag.request == 0) return std::optional<std::string>();
  // Committed answers only: a retry racing its first try's commit runs again (and meets
  // what the first try did, for example kAlreadyExists).
  Result<std::unique_ptr<kv::ReadTxn>> txn = read();
  if (!txn.ok()) return txn.status();
  auto value = (*txn)->get(tables_.requests, request_key(tag));
  if (!value.ok()) return value.status();
  if (!*value) return std::optional<std::string>();
  if ((*value)->size() < 8) {
    return Status(
        StatusCode::kCorruption,
        fmt::format("the remembered answer of request {}/{} has no age", tag.client, tag.request));
  }
  return std::optional<std::string>(std::string((*value)->substr(8)));
}

Task<Result<InodeReply>> Shard::lookup(const LookupRequest& request) {
  CO_TRY(check_local(request.parent));
  CO_TRY(check_name(request.name));
  CO_TRY_ASSIGN(std::unique_ptr<kv::ReadTxn> txn, read());
  CO_TRY_ASSIGN(std::optional<Inode> parent, read_inode(*txn, tables_, request.parent));
  if (!parent) {
    co_return Status(StatusCode::kNotFound, fmt::format("no directory {:#x}", request.parent));
  }
  if (parent->type != InodeType::kDirectory) {
    co_return Status(StatusCode::kNotDirectory,
                     fmt::format("{:#x} is not a directory", request.parent));
  }
  if (!may_search(request.cred, *parent)) {
    co_return Status(StatusCode::kPermissionDenied,
                     fmt::format("no search permission on {:#x}", request.parent));
  }
  CO_TRY_ASSIGN(std::optional<DirEntry> entry,
                read_entry(*txn, tables_, request.parent, request.name));
  if (!entry || entry->created_locked) {
    co_return Status(StatusCode::kNotFound,
                     fmt::format("no '{}' in {:#x}", request.name, request.parent));
  }
  InodeReply reply;
  if (shard_of(entry->inode) != id()) {
    // The server fills the attributes from the inode's shard.
    reply.inode.id = entry->inode;
    reply.inode.type = entry->type;
    co_return reply;
  }
  CO_TRY_ASSIGN(std::optional<Inode> inode, read_inode(*txn, tables_, entry->inode));
  if (!inode) {
    co_return Status(StatusCode::kCorruption,
                     fmt::format("entry '{}' of {:#x} names {:#x}, which does not exist",
                                 request.name, request.parent, entry->inode));
  }
  reply.inode = std::move(*inode);
  co_return reply;
}

Task<Result<InodeReply>> Shard::getattr(const GetattrRequest& request) {
  CO_TRY(check_local(request.inode));
  CO_TRY_ASSIGN(std::unique_ptr<kv::ReadTxn> txn, read());
  CO_TRY_ASSIGN(std::optional<Inode> inode, read_inode(*txn, tables_, request.inode));
  if (!inode) co_return Status(StatusCode::kNotFound, fmt::format("no inode {:#x}", request.inode));
  InodeReply reply;
  reply.inode = std::move(*inode);
  co_return reply;
}

}  // namespace mica::meta
