// ShardTxn (meta/shard.h) and the overlay's commit generations (meta/shard_overlay.h).
#include "async/log.h"
#include "meta/shard_overlay.h"

namespace mica::meta {

namespace {

using Changes = std::map<std::string, std::optional<std::string>, std::less<>>;

bool has_prefix(std::string_view key, std::string_view prefix) {
  return key.substr(0, prefix.size()) == prefix;
}

// A generation's groups go to the writer together: one LMDB transaction when they fit.
Task<void> write_generation(Shard* shard,
                            std::vector<std::shared_ptr<Shard::Overlay::Group>> groups,
                            Shard::Overlay* overlay) {
  std::vector<kv::WriteRequest*> requests;
  requests.reserve(groups.size());
  for (auto& group : groups) requests.push_back(&group->request);
  co_await shard->env()->write_all(std::move(requests));
  for (auto& group : groups) overlay->finish(shard, group, std::move(group->request.status));
}

}  // namespace

ShardTxn::ShardTxn(std::unique_ptr<State> state) : state_(std::move(state)) {}
ShardTxn::ShardTxn(ShardTxn&&) noexcept = default;
ShardTxn::~ShardTxn() = default;

// ---- reads ----

namespace {

// The value of key as txn sees it: its own writes, then the overlay, then committed state.
Result<std::optional<std::string>> txn_get(ShardTxn::State* state, Shard::Overlay* overlay,
                                           kv::Table table, std::string_view key) {
  auto& local = state->local[table];
  if (auto it = local.find(key); it != local.end()) return it->second;
  auto& slots = overlay->tables[table];
  if (auto it = slots.find(key); it != slots.end()) {
    state->reads_from.insert(it->second.owner);
    return it->second.value;
  }
  if (!state->read) {
    Result<std::unique_ptr<kv::ReadTxn>> read = state->shard->read();
    if (!read.ok()) return read.status();
    state->read = std::move(read).value();
  }
  Result<std::optional<std::string_view>> value = state->read->get(table, key);
  if (!value.ok()) return value.status();
  if (!*value) return std::optional<std::string>();
  return std::optional<std::string>(std::string(**value));
}

// Up to limit live (key, value) pairs whose key starts with prefix, in key order: committed
// state with the overlay's and then the txn's own changes applied.
Result<std::vector<std::pair<std::string, std::string>>> txn_scan(ShardTxn::State* state,
                                                                  Shard::Overlay* overlay,
                                                                  kv::Table table,
                                                                  std::string_view prefix,
                                                                  size_t limit) {
  Changes changes;
  auto& slots = overlay->tables[table];
  for (auto it = slots.lower_bound(prefix); it != slots.end() && has_prefix(it->first, prefix);
       ++it) {
    state->reads_from.insert(it->second.owner);
    changes[it->first] = it->second.value;
  }
  auto& local = state->local[table];
  for (auto it = local.lower_bound(prefix); it != local.end() && has_prefix(it->first, prefix);
       ++it) {
    changes[it->first] = it->second;
  }
  if (!state->read) {
    Result<std::unique_ptr<kv::ReadTxn>> read = state->shard->read();
    if (!read.ok()) return read.status();
    state->read = std::move(read).value();
  }
  Result<std::unique_ptr<kv::Cursor>> cursor = state->read->cursor(table);
  if (!cursor.ok()) return cursor.status();
  std::vector<std::pair<std::string, std::string>> out;
  auto change = changes.begin();
  auto emit_changes_before = [&](std::optional<std::string_view> bound) {
    for (; change != changes.end() && (!bound || change->first < *bound); ++change) {
      if (change->second && out.size() < limit) out.emplace_back(change->first, *change->second);
    }
  };
  Result<std::optional<kv::Entry>> at = (*cursor)->seek(prefix);
  while (out.size() < limit) {
    if (!at.ok()) return at.status();
    if (!*at || !has_prefix((*at)->key, prefix)) break;
    std::string_view key = (*at)->key;
    emit_changes_before(key);
    if (change != changes.end() && change->first == key) {
      if (change->second && out.size() < limit) out.emplace_back(change->first, *change->second);
      ++change;
    } else if (out.size() < limit) {
      out.emplace_back(std::string(key), std::string((*at)->value));
    }
    at = (*cursor)->next();
  }
  emit_changes_before(std::nullopt);
  return out;
}

template <class T>
Result<std::optional<T>> decoded(Result<std::optional<std::string>> bytes, std::string what) {
  if (!bytes.ok()) return bytes.status();
  if (!*bytes) return std::optional<T>();
  Result<T> record = decode_record<T>(**bytes, what);
  if (!record.ok()) return record.status();
  return std::optional<T>(std::move(record).value());
}

}  // namespace

Result<std::optional<Inode>> ShardTxn::inode(InodeId id) {
  Shard* shard = state_->shard;
  return decoded<Inode>(
      txn_get(state_.get(), shard->overlay_.get(), shard->tables_.inodes, inode_key(id)),
      fmt::format("inode {:#x}", id));
}

Result<std::optional<DirEntry>> ShardTxn::entry(InodeId parent, std::string_view name) {
  Shard* shard = state_->shard;
  return decoded<DirEntry>(
      txn_get(state_.get(), shard->overlay_.get(), shard->tables_.entries, entry_key(parent, name)),
      fmt::format("entry '{}' of {:#x}", name, parent));
}

Result<bool> ShardTxn::has_entries(InodeId dir) {
  Shard* shard = state_->shard;
  auto found =
      txn_scan(state_.get(), shard->overlay_.get(), shard->tables_.entries, entry_prefix(dir), 1);
  if (!found.ok()) return found.status();
  return !found->empty();
}

Result<std::optional<std::string>> ShardTxn::xattr(InodeId inode, std::string_view name) {
  Shard* shard = state_->shard;
  return txn_get(state_.get(), shard->overlay_.get(), shard->tables_.xattrs,
                 xattr_key(inode, name));
}

Result<std::vector<std::string>> ShardTxn::xattr_names(InodeId inode) {
  Shard* shard = state_->shard;
  std::string prefix = xattr_prefix(inode);
  auto found =
      txn_scan(state_.get(), shard->overlay_.get(), shard->tables_.xattrs, prefix, SIZE_MAX);
  if (!found.ok()) return found.status();
  std::vector<std::string> names;
  for (auto& [key, value] : *found) names.push_back(key.substr(prefix.size()));
  return names;
}

Result<std::vector<SessionRecord>> ShardTxn::sessions(InodeId inode) {
  Shard* shard = state_->shard;
  auto found = txn_scan(state_.get(), shard->overlay_.get(), shard->tables_.sessions,
                        session_prefix(inode), SIZE_MAX);
  if (!found.ok()) return found.status();
  std::vector<SessionRecord> out;
  for (auto& [key, value] : *found) {
    Result<SessionRecord> record =
        decode_record<SessionRecord>(value, fmt::format("a session of {:#x}", inode));
    if (!record.ok()) return record.status();
    out.push_back(std::move(record).value());
  }
  return out;
}

Result<std::optional<std::string>> ShardTxn::step(std::string_view key) {
  Shard* shard = state_->shard;
  return txn_get(state_.get(), shard->overlay_.get(), shard->tables_.steps, key);
}

// ---- writes (buffered in the txn until commit) ----

void ShardTxn::put_inode(const Inode& inode) {
  MICA_ASSERT_MSG(shard_of(inode.id) == state_->shard->id(), "an inode of another shard");
  state_->local[state_->shard->tables_.inodes][inode_key(inode.id)] = encode_record(inode);
}

void ShardTxn::erase_inode(InodeId id) {
  Result<std::vector<std::string>> names = xattr_names(id);
  // An xattr range that does not read is left behind (unreachable, harmless); the inode goes.
  if (names.ok()) {
    for (const std::string& name : *names) erase_xattr(id, name);
  } else {
    MICA_LOG(Warn, "meta", "shard {}: xattrs of {:#x} not erased: {}", state_->shard->id(), id,
             names.status());
  }
  state_->local[state_->shard->tables_.inodes][inode_key(id)] = std::nullopt;
}

void ShardTxn::put_entry(InodeId parent, std::string_view name, const DirEntry& entry) {
  state_->local[state_->shard->tables_.entries][entry_key(parent, name)] = encode_record(entry);
}

void ShardTxn::erase_entry(InodeId parent, std::string_view name) {
  state_->local[state_->shard->tables_.entries][entry_key(parent, name)] = std::nullopt;
}

void ShardTxn::put_xattr(InodeId inode, std::string_view name, std::string_view value) {
  state_->local[state_->shard->tables_.xattrs][xattr_key(inode, name)] = std::string(value);
}

void ShardTxn::erase_xattr(InodeId inode, std::string_view name) {
  state_->local[state_->shard->tables_.xattrs][xattr_key(inode, name)] = std::nullopt;
}

void ShardTxn::put_session(const SessionRecord& session) {
  state_->local[state_->shard->tables_.sessions][session_key(session.inode, session.session)] =
      encode_record(session);
}

void ShardTxn::erase_session(InodeId inode, SessionId session) {
  state_->local[state_->shard->tables_.sessions][session_key(inode, session)] = std::nullopt;
}

void ShardTxn::queue_gc(const GcRecord& record) {
  Shard::Overlay* overlay = state_->shard->overlay_.get();
  state_->local[state_->shard->tables_.gc][gc_key(overlay->next_gc++)] = encode_record(record);
}

void ShardTxn::put_step(std::string_view key, std::string_view value) {
  state_->local[state_->shard->tables_.steps][std::string(key)] = std::string(value);
}

void ShardTxn::erase_step(std::string_view key) {
  state_->local[state_->shard->tables_.steps][std::string(key)] = std::nullopt;
}

InodeId ShardTxn::allocate_inode() {
  ShardRecord& record = state_->shard->overlay_->record;
  MICA_ASSERT_MSG(record.next_sequence < (uint64_t{1} << kShardShift), "inode ids exhausted");
  state_->record_dirty = true;
  return make_inode_id(state_->shard->id(), record.next_sequence++);
}

SessionId ShardTxn::allocate_session() {
  ShardRecord& record = state_->shard->overlay_->record;
  MICA_ASSERT_MSG(record.next_session < (uint64_t{1} << kShardShift), "session ids exhausted");
  state_->record_dirty = true;
  return make_inode_id(state_->shard->id(), record.next_session++);
}

uint32_t ShardTxn::next_layout_start() {
  state_->record_dirty = true;
  return state_->shard->overlay_->record.next_layout_start++;
}

void ShardTxn::remember_answer(RequestTag tag, std::string_view answer) {
  if (tag.client == 0 && tag.request == 0) return;
  Shard::Overlay* overlay = state_->shard->overlay_.get();
  uint64_t age = overlay->next_request++;
  std::string key = request_key(tag);
  std::string value = be64(age);
  value.append(answer);
  state_->local[state_->shard->tables_.requests][key] = std::move(value);
  state_->remembered.emplace_back(age, std::move(key));
}

Task<Status> ShardTxn::commit(Duration wait_for_company) {
  MICA_ASSERT_MSG(state_ != nullptr, "ShardTxn committed twice");
  std::unique_ptr<State> state = std::move(state_);
  state->read.reset();  // never across the co_await below
  Shard* shard = state->shard;
  std::shared_ptr<Shard::Overlay::Group> group = shard->overlay_->join(shard, state.get());
  state.reset();
  if (group == nullptr) co_return Status::ok_status();
  if (wait_for_company > Duration::zero()) {
    // Ended early by a timeout or a cancel alike: then it launches by itself below.
    Status shared = co_await group->finished.wait(Executor::current()->now() + wait_for_company);
    (void)shared;
  }
  // Once finished, what is held is other txns' (a generation's end launched the rest).
  if (!group->finished.is_set()) shard->overlay_->launch(shard);
  Status waited = co_await group->finished.wait_uncancellable();
  MICA_ASSERT(waited.ok());
  co_return group->status;
}

// ---- the overlay's generations ----

void Shard::Overlay::prune_requests(Shard* shard, ShardTxn::State* state) {
  auto& local = state->local[shard->tables_.requests];
  for (auto& [age, key] : state->remembered) {
    if (auto it = request_age.find(key); it != request_age.end()) {
      requests_by_age.erase(it->second);
      request_age.erase(it);
    }
    requests_by_age[age] = key;
    request_age[key] = age;
  }
  size_t kept_max = std::max<uint32_t>(shard->options_.requests_kept_max, 1);
  while (requests_by_age.size() > kept_max) {
    auto oldest = requests_by_age.begin();
    local[oldest->second] = std::nullopt;
    request_age.erase(oldest->second);
    requests_by_age.erase(oldest);
  }
}

std::shared_ptr<Shard::Overlay::Group> Shard::Overlay::group_for(const std::set<uint64_t>& owners) {
  // The held groups this txn shares keys with; the first (oldest) absorbs the others. Held
  // groups share no keys among themselves, so their order inside the merge is free.
  std::shared_ptr<Group> base;
  for (uint64_t owner : owners) {
    auto it = live.find(owner);
    if (it == live.end() || it->second->launched) continue;
    std::shared_ptr<Group> other = it->second;
    if (other == base) continue;
    if (base == nullptr) {
      base = other;
      continue;
    }
    for (kv::WriteOp& op : other->request.ops) base->request.ops.push_back(std::move(op));
    for (Write& write : other->writes) base->writes.push_back(std::move(write));
    for (uint64_t member : other->members) {
      base->members.push_back(member);
      live[member] = base;
    }
    for (auto& earlier : other->absorbed) base->absorbed.push_back(std::move(earlier));
    other->absorbed.clear();
    base->absorbed.push_back(other);
    std::erase(held, other);
  }
  if (base == nullptr) {
    base = std::make_shared<Group>();
    held.push_back(base);
  }
  return base;
}

std::shared_ptr<Shard::Overlay::Group> Shard::Overlay::join(Shard* shard, ShardTxn::State* state) {
  if (state->record_dirty) {
    state->local[shard->tables_.shard][std::string(kShardRecordKey)] = encode_record(record);
  }
  if (!state->remembered.empty()) prune_requests(shard, state);
  std::set<uint64_t> owners = state->reads_from;
  bool writes = false;
  for (size_t t = 0; t < kShardTablesCount; ++t) {
    for (auto& [key, value] : state->local[t]) {
      writes = true;
      if (auto it = tables[t].find(key); it != tables[t].end()) owners.insert(it->second.owner);
    }
  }
  bool waits = false;
  for (uint64_t owner : owners) waits = waits || live.contains(owner);
  if (!writes && !waits) return nullptr;
  std::shared_ptr<Group> group = group_for(owners);
  group->members.push_back(state->id);
  live[state->id] = group;
  for (size_t t = 0; t < kShardTablesCount; ++t) {
    kv::Table table = static_cast<kv::Table>(t);
    for (auto& [key, value] : state->local[t]) {
      if (value) {
        group->request.put(table, key, *value);
      } else {
        group->request.erase(table, key);
      }
      tables[t][key] = Slot{value, state->id};
      group->writes.push_back(Write{table, key, state->id});
    }
  }
  return group;
}

void Shard::Overlay::launch(Shard* shard) {
  if (in_flight > 0 || held.empty()) return;
  std::vector<std::shared_ptr<Group>> generation = std::move(held);
  held.clear();
  in_flight = generation.size();
  generation_members = 0;
  for (auto& group : generation) {
    group->launched = true;
    generation_members += group->members.size();
  }
  writers.spawn(write_generation(shard, std::move(generation), this));
}

void Shard::Overlay::end_group(const std::shared_ptr<Group>& group, Status status) {
  for (const Write& write : group->writes) {
    auto& slots = tables[write.table];
    auto it = slots.find(write.key);
    if (it != slots.end() && it->second.owner == write.owner) slots.erase(it);
  }
  for (uint64_t member : group->members) live.erase(member);
  if (status.ok()) operations += group->members.size();
  for (auto& merged : group->absorbed) {
    merged->status = status;
    merged->finished.set();
  }
  group->absorbed.clear();
  group->status = std::move(status);
  group->finished.set();
}

void Shard::Overlay::finish(Shard* shard, const std::shared_ptr<Group>& group, Status status) {
  if (!status.ok()) {
    MICA_LOG(Warn, "meta", "shard {}: a commit of {} mutations failed: {}", shard->id(),
             group->members.size(), status);
    if (generation_failure.ok()) generation_failure = status;
  } else if (shard->counters_.operations != nullptr) {
    shard->counters_.operations->add(group->members.size());
  }
  end_group(group, std::move(status));
  MICA_ASSERT(in_flight > 0);
  if (--in_flight > 0) return;
  if (shard->counters_.commits != nullptr) shard->counters_.commits->add();
  if (shard->counters_.batch_size != nullptr)
    shard->counters_.batch_size->record(batch_size_sample(generation_members));
  if (!generation_failure.ok()) {
    // The poison rule: what was held may have read what failed.
    Status poison(generation_failure.code(),
                  fmt::format("an earlier commit of shard {} failed: {}", shard->id(),
                              generation_failure.message()));
    generation_failure = Status::ok_status();
    std::vector<std::shared_ptr<Group>> failed = std::move(held);
    held.clear();
    for (auto& held_group : failed) end_group(held_group, poison);
  }
  launch(shard);
}

}  // namespace mica::meta
