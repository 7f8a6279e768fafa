// The coordinator's log and driver: open (resume, then the directory map), the four
// operations' common path (retry answers, log, drive, answer) and resume/roll-back.
// Planning is meta/coordinator_plan.cc.
#include "meta/coordinator.h"

#include "async/log.h"
#include "async/wait_list.h"
#include "craq/chain_table.h"
#include "meta/coordinator_state.h"
#include "meta/schema.h"

namespace mica::meta {
namespace {

constexpr std::string_view kOpTable = "ops";
constexpr std::string_view kAnswerTable = "answers";
constexpr std::string_view kAnswerOrderTable = "answer_order";
constexpr std::string_view kCounterTable = "counters";
constexpr std::string_view kNextOpKey = "next_op";
constexpr std::string_view kNextAnswerKey = "next_answer";
constexpr uint32_t kSendAttemptsMax = 8;
constexpr Duration kSendBackoff = std::chrono::milliseconds(10);

uint64_t fnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

bool transient(StatusCode code) {
  return is_transport_failure(code) || code == StatusCode::kWrongShard ||
         code == StatusCode::kBusy;
}

bool tag_given(RequestTag tag) {
  return tag.client != 0 || tag.request != 0;
}

// The step that remembers the answer where a retry of the request looks first
// (StepRequest::answer): unlink's and rename's first step locks the request's own entry,
// whose shard a retry reaches before the coordinator (and finds the entry gone once the
// operation is done); the last step there, once every reply the answer is made of came
// before it. nullopt for the others: their retries come straight to the coordinator.
std::optional<uint32_t> answering_step(const OpRecord& record) {
  if (record.kind != OpKind::kUnlink && record.kind != OpKind::kRename) return std::nullopt;
  if (record.plan.empty()) return std::nullopt;
  ShardId asked = record.plan.front().shard;
  uint32_t last = 0;
  for (uint32_t i = 0; i < record.plan.size(); ++i)
    if (record.plan[i].shard == asked) last = i;
  if (static_cast<int64_t>(last) <= std::max(record.inode_step, record.replaced_step))
    return std::nullopt;
  return last;
}

}  // namespace

ShardId directory_shard(uint64_t placement_seed, InodeId parent, std::string_view name,
                        uint32_t shard_count) {
  MICA_ASSERT(shard_count > 0);
  craq::PlacementRandom random(placement_seed ^ parent ^ fnv1a64(name));
  return static_cast<ShardId>(random.below(shard_count));
}

std::string tag_key(RequestTag tag) {
  return request_key(tag);
}

int64_t Coordinator::State::now_ns() const {
  if (options.clock_ns) return options.clock_ns();
  return Executor::current()->now().time_since_epoch().count();
}

Result<std::optional<std::string>> Coordinator::State::remembered(RequestTag tag) {
  if (tag.client == 0 && tag.request == 0) return std::optional<std::string>();
  META_TRY_ASSIGN(auto txn, env->begin_read());
  META_TRY_ASSIGN(auto value, txn->get(answers, tag_key(tag)));
  if (!value) return std::optional<std::string>();
  return std::optional<std::string>(std::string(*value));
}

// ---- open and close ----

namespace {

Result<uint64_t> read_counter(kv::ReadTxn* txn, kv::Table table, std::string_view key) {
  META_TRY_ASSIGN(auto value, txn->get(table, key));
  if (!value) return uint64_t{1};
  if (value->size() != 8) return Status(StatusCode::kCorruption, "coordinator counter");
  return read_be64(*value);
}

Result<std::vector<OpRecord>> load_ops(Coordinator::State* s) {
  META_TRY_ASSIGN(auto txn, s->env->begin_read());
  META_TRY_ASSIGN(s->next_op, read_counter(txn.get(), s->counters, kNextOpKey));
  META_TRY_ASSIGN(s->next_answer, read_counter(txn.get(), s->counters, kNextAnswerKey));
  META_TRY_ASSIGN(auto order, txn->cursor(s->answer_order));
  META_TRY_ASSIGN(auto oldest, order->first());
  s->first_answer = oldest ? read_be64(oldest->key) : s->next_answer;
  std::vector<OpRecord> records;
  META_TRY_ASSIGN(auto cursor, txn->cursor(s->ops));
  META_TRY_ASSIGN(auto at, cursor->first());
  while (at) {
    META_TRY_ASSIGN(OpRecord record, decode_record<OpRecord>(at->value, "coordinator op"));
    records.push_back(std::move(record));
    META_TRY_ASSIGN(at, cursor->next());
  }
  return records;
}

Task<Status> load_directories(Coordinator::State* s) {
  s->parents.clear();
  s->parents[kRootInode] = kRootInode;
  for (ShardId shard = 0; shard < s->options.shard_count; ++shard) {
    DirectoryPageRequest page{.shard = shard, .after = 0, .limit = kDirectoryPageMax};
    while (true) {
      auto listing = s->stepper()->directories(page);
      Result<DirectoryPage> got = co_await std::move(listing);
      if (!got.ok()) co_return got.status();
      for (const DirectoryLink& link : got->dirs) s->parents[link.dir] = link.parent;
      if (got->end) break;
      page.after = got->last;
    }
  }
  co_return Status();
}

}  // namespace

Task<Result<std::unique_ptr<Coordinator>>> Coordinator::open(CoordinatorOptions options) {
  MICA_ASSERT(options.stepper != nullptr && options.shard_count > 0);
  std::unique_ptr<Coordinator> c(new Coordinator());
  c->state_ = std::make_unique<State>();
  State* s = c->state_.get();
  s->options = std::move(options);
  auto opening = kv::Env::open(s->options.dir, s->options.env);
  Result<std::unique_ptr<kv::Env>> env = co_await std::move(opening);
  if (!env.ok()) co_return env.status();
  s->env = std::move(*env);
  CO_TRY_ASSIGN(s->ops, s->env->open_table(kOpTable));
  CO_TRY_ASSIGN(s->answers, s->env->open_table(kAnswerTable));
  CO_TRY_ASSIGN(s->answer_order, s->env->open_table(kAnswerOrderTable));
  CO_TRY_ASSIGN(s->counters, s->env->open_table(kCounterTable));
  MetricLabels labels = s->options.metric_labels;
  s->started =
      &metrics().counter("meta", "coordinator_ops_total", "coordinator operations started", labels);
  s->rolled_back = &metrics().counter("meta", "coordinator_rolled_back_total",
                                      "coordinator operations rolled back", labels);
  s->resumed = &metrics().counter("meta", "coordinator_resumed_total",
                                  "coordinator operations resumed at open", labels);
  Result<std::vector<OpRecord>> records = load_ops(s);
  Status status = records.status();
  for (size_t i = 0; status.ok() && i < records->size(); ++i) {
    auto record = std::make_unique<OpRecord>(std::move((*records)[i]));
    OpRecord* op = record.get();
    s->next_op = std::max(s->next_op, op->id + 1);
    s->active[op->id] = std::move(record);
    s->resumed->add(1);
    auto resuming = s->resume(op);
    Status resumed = co_await std::move(resuming);
    if (op->finished) {
      s->active.erase(op->id);
    } else {
      // A shard out of reach: the operation keeps its edges locked until it can go on.
      MICA_LOG(Warn, "meta", "coordinator op {} not resumed yet: {}", op->id, resumed);
      s->background.spawn(s->retry_later(op->id));
    }
  }
  if (status.ok()) {
    auto loading = load_directories(s);
    status = co_await std::move(loading);
  }
  if (!status.ok()) {
    auto closing = c->close();
    Status closed = co_await std::move(closing);
    if (!closed.ok()) MICA_LOG(Warn, "meta", "closing a coordinator that did not open: {}", closed);
    co_return status;
  }
  MICA_LOG(Info, "meta", "coordinator open: {} operations resumed, {} directories", records->size(),
           s->parents.size());
  co_return std::move(c);
}

Coordinator::~Coordinator() = default;

uint64_t Coordinator::pending() const {
  return state_->active.size();
}

std::map<InodeId, InodeId> Coordinator::directory_parents() const {
  return state_->parents;
}

Task<Status> Coordinator::close() {
  State* s = state_.get();
  s->closing = true;
  s->background.cancel();
  co_await s->background.join();
  if (!s->env) co_return Status();
  auto closing = s->env->close();
  Status status = co_await std::move(closing);
  s->env.reset();
  co_return status;
}

// ---- driving ----

Task<Result<StepReply>> Coordinator::State::send(StepRequest request) {
  Duration backoff = kSendBackoff;
  for (uint32_t attempt = 1;; ++attempt) {
    auto stepping = stepper()->step(request);
    Result<StepReply> reply = co_await std::move(stepping);
    if (reply.ok() || !transient(reply.status().code()) || attempt >= kSendAttemptsMax || closing)
      co_return reply;
    SleepAwaiter pause = sleep_for(backoff);
    Status paused = co_await pause;
    if (!paused.ok()) co_return paused;
    backoff = std::min<Duration>(backoff * 2, options.retry_interval);
  }
}

Task<Status> Coordinator::State::log(const OpRecord& record) {
  kv::WriteRequest write;
  write.put(ops, be64(record.id), encode_record(record));
  write.put(counters, kNextOpKey, be64(next_op));
  co_return co_await env->write(&write);
}

// mkdir: the new directory's id (step 0's reply) goes into the entry steps and the map.
void Coordinator::State::took_first_step(OpRecord* record) {
  if (record->kind != OpKind::kMkdir || !record->replies[0].inode) return;
  InodeId dir = record->replies[0].inode->id;
  for (size_t i = 1; i < record->plan.size(); ++i) record->plan[i].entry.inode = dir;
  for (DirectoryLink& link : record->map_set)
    if (link.dir == 0) link.dir = dir;
}

Task<Status> Coordinator::State::drive(OpRecord* record) {
  std::optional<uint32_t> answering = answering_step(*record);
  while (record->taken < record->plan.size()) {
    uint32_t i = record->taken;
    StepRequest step = record->plan[i];
    if (answering == i && tag_given(record->tag)) {
      step.tag = record->tag;
      step.answer = answer_of(*record);  // from the replies before i (answering_step)
    }
    auto sending = send(std::move(step));
    Result<StepReply> reply = co_await std::move(sending);
    if (!reply.ok()) co_return reply.status();
    if (reply->code != 0 && i <= record->decision) {
      auto undoing = roll_back(record, i);
      Status undone = co_await std::move(undoing);
      co_return undone.ok() ? reply->status() : undone;
    }
    if (reply->code != 0) {
      MICA_LOG(Error, "meta", "coordinator op {} step {} ({}) refused past its decision: {}",
               record->id, i, step_kind_name(record->plan[i].kind), reply->status());
    }
    record->replies.push_back(std::move(*reply));
    record->taken = i + 1;
    if (i == 0) took_first_step(record);
    auto logging = log(*record);
    Status logged = co_await std::move(logging);
    if (!logged.ok()) co_return logged;
  }
  auto finishing = finish(record, true);
  co_return co_await std::move(finishing);
}

// Undoes steps [0, upto) newest first; each undo is a no-op (a tombstone) for a step that
// never applied. Then the operation is gone as if never started.
Task<Status> Coordinator::State::roll_back(OpRecord* record, uint32_t upto) {
  for (uint32_t i = upto; i-- > 0;) {
    StepRequest undo = record->plan[i];
    undo.undo = true;
    auto sending = send(undo);
    Result<StepReply> reply = co_await std::move(sending);
    if (!reply.ok()) co_return reply.status();
  }
  rolled_back->add(1);
  auto finishing = finish(record, false);
  co_return co_await std::move(finishing);
}

// After a restart or an error: past the decision go on; before it ask the decision step's
// shard whether it applied (a tombstone makes sure it never will), then go on or roll back.
Task<Status> Coordinator::State::resume(OpRecord* record) {
  if (record->taken > record->decision) {
    auto driving = drive(record);
    co_return co_await std::move(driving);
  }
  StepRequest ask = record->plan[record->decision];
  ask.resolve = true;
  auto asking = send(ask);
  Result<StepReply> reply = co_await std::move(asking);
  if (!reply.ok()) co_return reply.status();
  if (reply->code != 0 || !reply->applied) {
    auto undoing = roll_back(record, record->decision);
    co_return co_await std::move(undoing);
  }
  MICA_ASSERT(record->taken == record->decision);
  // The decision applied: the steps before it did too (each is sent after the one before
  // it was logged), so the replies so far are complete but for the decision's own.
  record->replies.resize(record->decision);
  record->replies.push_back(std::move(*reply));
  record->taken = record->decision + 1;
  if (record->decision == 0) took_first_step(record);
  auto logging = log(*record);
  Status logged = co_await std::move(logging);
  if (!logged.ok()) co_return logged;
  auto driving = drive(record);
  co_return co_await std::move(driving);
}

}  // namespace mica::meta
