// The coordinator's operations end to end: a retried RequestTag's remembered answer, the
// plan (meta/coordinator_plan.cc), the log and the drive (meta/coordinator.cc), the answer,
// and the end of an operation (forgetting its steps on the shards, remembering its answer).
#include <set>

#include "async/log.h"
#include "async/wait_list.h"
#include "meta/coordinator.h"
#include "meta/coordinator_state.h"
#include "meta/schema.h"

namespace mica::meta {
namespace {

// An answer remembered (or about to be) under the tag: a record of the operation's reply.
template <class T>
Result<T> decode_answer_of_tag(const std::string& bytes) {
  Result<T> decoded = decode_answer<T>(bytes, "the answer remembered for the request tag");
  if (!decoded.ok())
    return Status(StatusCode::kInvalidArgument, "the request tag answered another operation");
  return decoded;
}

bool has_tag(RequestTag tag) {
  return tag.client != 0 || tag.request != 0;
}

// The tag of the oldest answer kept (its read transaction ends here, before any co_await).
std::optional<std::string> oldest_answer_key(Coordinator::State* s) {
  auto txn = s->env->begin_read();
  if (!txn.ok()) return std::nullopt;
  auto key = (*txn)->get(s->answer_order, be64(s->first_answer));
  if (!key.ok() || !*key) return std::nullopt;
  return std::string(**key);
}

}  // namespace

std::string Coordinator::State::answer_of(const OpRecord& record) const {
  auto inode_at = [&](int32_t step) -> std::optional<Inode> {
    if (step < 0 || static_cast<size_t>(step) >= record.replies.size()) return std::nullopt;
    return record.replies[step].inode;
  };
  Inode inode = inode_at(record.inode_step).value_or(Inode{});
  switch (record.kind) {
    case OpKind::kMkdir:
    case OpKind::kLink:
      return encode_record(InodeReply{.inode = inode});
    case OpKind::kRmdir:
      return encode_record(RemoveReply{.inode = inode, .reclaimed = false});
    case OpKind::kUnlink: {
      bool reclaimed = record.inode_step >= 0 &&
                       static_cast<size_t>(record.inode_step) < record.replies.size() &&
                       record.replies[record.inode_step].reclaimed;
      return encode_record(RemoveReply{.inode = inode, .reclaimed = reclaimed});
    }
    case OpKind::kRename: {
      RenameReply reply{.moved = inode, .replaced = inode_at(record.replaced_step)};
      if (record.replaced_step >= 0 &&
          static_cast<size_t>(record.replaced_step) < record.replies.size())
        reply.replaced_reclaimed = record.replies[record.replaced_step].reclaimed;
      return encode_record(reply);
    }
  }
  return {};
}

void Coordinator::State::apply_map(const OpRecord& record) {
  for (InodeId dir : record.map_erase) parents.erase(dir);
  for (const DirectoryLink& link : record.map_set)
    if (link.dir != 0) parents[link.dir] = link.parent;
}

// The operation is over (done, or rolled back): its step records go from every shard it
// touched, then its log record, in the write that remembers its answer.
Task<Status> Coordinator::State::finish(OpRecord* record, bool done) {
  std::set<ShardId> shards;
  for (const StepRequest& step : record->plan) shards.insert(step.shard);
  for (ShardId shard : shards) {
    StepRequest forget{.op = record->id,
                       .step = 0,
                       .shard = shard,
                       .kind = StepKind::kForget,
                       .steps = static_cast<uint32_t>(record->plan.size())};
    auto sending = send(forget);
    Result<StepReply> reply = co_await std::move(sending);
    if (!reply.ok()) co_return reply.status();
  }
  kv::WriteRequest write;
  write.erase(ops, be64(record->id));
  if (done && has_tag(record->tag)) {
    std::string key = tag_key(record->tag);
    write.put(answers, key, answer_of(*record));
    write.put(answer_order, be64(next_answer), key);
    ++next_answer;
    write.put(counters, "next_answer", be64(next_answer));
    if (next_answer - first_answer > options.answers_kept_max) {
      std::optional<std::string> oldest = oldest_answer_key(this);
      if (oldest) write.erase(answers, *oldest);
      write.erase(answer_order, be64(first_answer));
      ++first_answer;
    }
  }
  Status written = co_await env->write(&write);
  if (!written.ok()) co_return written;
  if (done) apply_map(*record);
  record->finished = true;
  co_return Status();
}

Task<void> Coordinator::State::retry_later(uint64_t op) {
  while (!closing) {
    SleepAwaiter pause = sleep_for(options.retry_interval);
    Status paused = co_await pause;
    if (!paused.ok()) co_return;
    auto it = active.find(op);
    if (closing || it == active.end()) co_return;
    OpRecord* record = it->second.get();
    auto resuming = resume(record);
    Status status = co_await std::move(resuming);
    if (record->finished) {
      active.erase(op);
      co_return;
    }
    MICA_LOG(Warn, "meta", "coordinator op {} still pending: {}", op, status);
  }
}

Task<Result<std::string>> Coordinator::State::execute(Planned planned) {
  uint64_t id = next_op++;
  auto owned = std::make_unique<OpRecord>(std::move(planned.record));
  OpRecord* record = owned.get();
  record->id = id;
  for (size_t i = 0; i < record->plan.size(); ++i) {
    record->plan[i].op = id;
    record->plan[i].step = static_cast<uint32_t>(i);
  }
  active[id] = std::move(owned);
  started->add(1);
  auto logging = log(*record);
  Status logged = co_await std::move(logging);
  if (!logged.ok()) {
    active.erase(id);
    co_return logged;
  }
  auto driving = drive(record);
  Status status = co_await std::move(driving);
  if (!record->finished) {
    background.spawn(retry_later(id));
    co_return status.ok() ? Status(StatusCode::kInternal, "operation unfinished") : status;
  }
  std::string answer = answer_of(*record);
  active.erase(id);
  if (!status.ok()) co_return status;  // refused by a step and rolled back
  co_return answer;
}

// A tag already answered gives its answer; a tag whose operation is running waits for it.
Task<Result<std::optional<std::string>>> Coordinator::State::claim_tag(RequestTag tag) {
  if (!has_tag(tag)) co_return std::optional<std::string>();
  std::string key = tag_key(tag);
  while (true) {
    CO_TRY_ASSIGN(auto answer, remembered(tag));
    if (answer) co_return answer;
    auto it = in_flight_tags.find(key);
    if (it == in_flight_tags.end()) {
      in_flight_tags[key] = std::make_shared<Event>();
      co_return std::optional<std::string>();
    }
    std::shared_ptr<Event> event = it->second;
    Status waited = co_await event->wait();
    if (!waited.ok()) co_return waited;
  }
}

void Coordinator::State::release_tag(RequestTag tag) {
  if (!has_tag(tag)) return;
  auto it = in_flight_tags.find(tag_key(tag));
  if (it == in_flight_tags.end()) return;
  it->second->set();
  in_flight_tags.erase(it);
}

namespace {

// The common path of the four operations: answered tags, plan, execute, decode.
template <class Reply>
Task<Result<Reply>> perform(Coordinator::State* s, RequestTag tag, Task<Result<Planned>> planning) {
  auto claiming = s->claim_tag(tag);
  Result<std::optional<std::string>> answered = co_await std::move(claiming);
  if (!answered.ok()) co_return answered.status();
  if (*answered) co_return decode_answer_of_tag<Reply>(**answered);
  Result<Planned> planned = co_await std::move(planning);
  Result<std::string> answer = Status(StatusCode::kInternal, "not planned");
  if (!planned.ok()) {
    answer = planned.status();
  } else if (planned->answer) {
    if constexpr (std::is_same_v<Reply, RenameReply>) answer = encode_record(*planned->answer);
  } else {
    auto executing = s->execute(std::move(*planned));
    answer = co_await std::move(executing);
  }
  s->release_tag(tag);
  if (!answer.ok()) co_return answer.status();
  co_return decode_answer_of_tag<Reply>(*answer);
}

// A rename that moves a directory to another parent is planned again under the tree lock:
// its loop check must see every other such rename finished.
Task<Result<Planned>> plan_rename_locked(Coordinator::State* s, RenameRequest request,
                                         bool* locked) {
  auto planning = s->plan_rename(request);
  Result<Planned> planned = co_await std::move(planning);
  if (!planned.ok() || !planned->moves_directory) co_return planned;
  Status got = co_await s->tree.lock();
  if (!got.ok()) co_return got;
  *locked = true;
  auto again = s->plan_rename(request);
  co_return co_await std::move(again);
}

}  // namespace

Task<Result<InodeReply>> Coordinator::mkdir(const MkdirRequest& request) {
  auto planning = state_->plan_mkdir(request);
  auto performing = perform<InodeReply>(state_.get(), request.tag, std::move(planning));
  co_return co_await std::move(performing);
}

Task<Result<RemoveReply>> Coordinator::rmdir(const RemoveRequest& request) {
  auto planning = state_->plan_rmdir(request);
  auto performing = perform<RemoveReply>(state_.get(), request.tag, std::move(planning));
  co_return co_await std::move(performing);
}

Task<Result<InodeReply>> Coordinator::link(const LinkRequest& request) {
  auto planning = state_->plan_link(request);
  auto performing = perform<InodeReply>(state_.get(), request.tag, std::move(planning));
  co_return co_await std::move(performing);
}

Task<Result<RenameReply>> Coordinator::rename(const RenameRequest& request) {
  bool locked = false;
  auto planning = plan_rename_locked(state_.get(), request, &locked);
  auto performing = perform<RenameReply>(state_.get(), request.tag, std::move(planning));
  Result<RenameReply> reply = co_await std::move(performing);
  if (locked) state_->tree.unlock();
  co_return reply;
}

}  // namespace mica::meta
