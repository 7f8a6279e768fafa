#include "craq/storage_target.h"

#include <fmt/format.h>

#include "async/file.h"
#include "async/log.h"
#include "craq/node_identity.h"

namespace mica::craq {

StorageTarget::StorageTarget(StorageTargetConfig config, std::string identity,
                             std::unique_ptr<chunk::ChunkEngine> engine,
                             uint32_t updates_in_flight_max)
    : config_(std::move(config)),
      identity_(std::move(identity)),
      engine_(std::move(engine)),
      updates_in_flight_(updates_in_flight_max) {
  if (config_.disk.empty()) config_.disk = config_.path;
}

void StorageTarget::mark_unrepairable(chunk::ChunkId chunk) {
  unrepaired_.insert(chunk);
  local_ = LocalState::kOffline;
}

void StorageTarget::mark_repaired(chunk::ChunkId chunk) {
  if (unrepaired_.erase(chunk) == 0 || !unrepaired_.empty()) return;
  bool serving = view_.state == PublicState::kServing;
  set_local(serving ? LocalState::kUpToDate : LocalState::kOnline, view_.version);
}

StorageTarget::UpdateAdmission::UpdateAdmission(StorageTarget* target, uint64_t chain_version)
    : target_(target), chain_version_(chain_version) {
  ++target_->admitted_[chain_version_];
}

StorageTarget::UpdateAdmission::~UpdateAdmission() {
  auto it = target_->admitted_.find(chain_version_);
  MICA_ASSERT(it != target_->admitted_.end() && it->second > 0);
  if (--it->second == 0) target_->admitted_.erase(it);
  // Wakes every waiter, which looks again; later waits block until the next end.
  target_->update_ended_.set();
  target_->update_ended_.reset();
}

Task<Status> StorageTarget::drain_updates_before(uint64_t chain_version, TimePoint deadline) {
  while (updates_before(chain_version)) {
    Status waited = co_await update_ended_.wait(deadline);
    if (!waited.ok()) co_return waited;
  }
  co_return Status();
}

std::optional<StorageTarget::RemovalMark> StorageTarget::removing(
    const chunk::ChunkInfo& info) const {
  auto it = removing_.find(info.id);
  if (it == removing_.end()) return std::nullopt;
  const ChunkState& marked = it->second.state;
  if (info.committed_version != marked.version || info.length_bytes != marked.length_bytes ||
      info.checksum != marked.checksum)
    return std::nullopt;
  return it->second;
}

namespace {

// Opens one target: its identity file (created on first use) and its engine.
Task<Result<std::unique_ptr<StorageTarget>>> open_target(StorageTargetConfig config,
                                                         uint32_t updates_in_flight_max) {
  // The identity file is written before the engine would create the directory: a new
  // target's directory is made here first (the engine accepts an existing one).
  auto making = ensure_directory(config.path);
  Status made = co_await std::move(making);
  if (!made.ok())
    co_return Status(made.code(), fmt::format("target {}: directory: {}", config.path, made));
  auto loading = load_or_create_target_identity(config.path);
  Result<TargetIdentity> identity = co_await std::move(loading);
  if (!identity.ok())
    co_return Status(identity.status().code(),
                     fmt::format("target {}: identity: {}", config.path, identity.status()));
  auto opening = chunk::ChunkEngine::open(config.path, config.engine);
  Result<std::unique_ptr<chunk::ChunkEngine>> engine = co_await std::move(opening);
  if (!engine.ok())
    co_return Status(engine.status().code(),
                     fmt::format("target {}: chunk engine: {}", config.path, engine.status()));
  auto target = std::make_unique<StorageTarget>(std::move(config), identity->identity,
                                                std::move(*engine), updates_in_flight_max);
  target->set_id(identity->target);
  co_return target;
}

const std::string& node_address(const RoutingSnapshot& routing, TargetId target) {
  static const std::string kNone;
  const TargetInfo* info = find_target(routing, target);
  if (info == nullptr) return kNone;
  const NodeInfo* node = find_node(routing, info->node);
  return node == nullptr ? kNone : node->rpc_address;
}

// The targets of chain that take writes, in order: the serving ones, then the syncing one.
std::vector<const ChainTarget*> write_takers(const ChainInfo& chain) {
  std::vector<const ChainTarget*> takers;
  for (const ChainTarget& t : chain.targets)
    if (t.state == PublicState::kServing) takers.push_back(&t);
  for (const ChainTarget& t : chain.targets) {
    if (t.state == PublicState::kSyncing) {
      takers.push_back(&t);
      break;  // at most one syncing target takes writes (types.h)
    }
  }
  return takers;
}

ChainView view_in(const RoutingSnapshot& routing, const ChainInfo& chain, TargetId self) {
  ChainView view;
  view.chain = chain.id;
  view.version = chain.version;
  for (const ChainTarget& t : chain.targets) {
    if (t.target == self) view.state = t.state;
    if (t.state == PublicState::kServing) view.read_tail = t.target;
  }
  if (view.read_tail != 0) view.read_tail_address = node_address(routing, view.read_tail);
  std::vector<const ChainTarget*> takers = write_takers(chain);
  for (size_t i = 0; i < takers.size(); ++i) {
    if (takers[i]->target != self) continue;
    view.head = i == 0 && takers[i]->state == PublicState::kServing;
    view.tail = i + 1 == takers.size();
    if (i > 0) view.predecessor = takers[i - 1]->target;
    if (i + 1 < takers.size()) {
      view.successor = takers[i + 1]->target;
      view.successor_state = takers[i + 1]->state;
      view.successor_address = node_address(routing, view.successor);
    }
  }
  return view;
}

bool same_view(const ChainView& a, const ChainView& b) {
  return a.chain == b.chain && a.version == b.version && a.state == b.state && a.head == b.head &&
         a.tail == b.tail && a.successor == b.successor && a.successor_state == b.successor_state &&
         a.successor_address == b.successor_address && a.predecessor == b.predecessor &&
         a.read_tail == b.read_tail && a.read_tail_address == b.read_tail_address;
}

}  // namespace

Task<Result<std::unique_ptr<StorageTargets>>> StorageTargets::open(
    std::vector<StorageTargetConfig> configs, uint32_t updates_in_flight_max) {
  MICA_ASSERT(updates_in_flight_max > 0);
  std::unique_ptr<StorageTargets> table(new StorageTargets());
  Status failed;
  for (StorageTargetConfig& config : configs) {
    auto opening = open_target(std::move(config), updates_in_flight_max);
    Result<std::unique_ptr<StorageTarget>> target = co_await std::move(opening);
    if (!target.ok()) {
      failed = target.status();
      break;
    }
    table->targets_.push_back(std::move(*target));
  }
  if (failed.ok() && table->targets_.empty())
    failed = Status(StatusCode::kInvalidArgument, "a storage server needs at least one target");
  if (!failed.ok()) {
    // The engines opened so far are closed before the table goes away.
    auto closing = table->close();
    Status ignored = co_await std::move(closing);
    (void)ignored;
    co_return failed;
  }
  co_return table;
}

StorageTargets::~StorageTargets() {
  MICA_ASSERT_MSG(closed_, "StorageTargets destroyed before close()");
}

Task<Status> StorageTargets::close() {
  Status first;
  for (auto& target : targets_) {
    auto closing = target->engine().close();
    Status closed = co_await std::move(closing);
    if (!closed.ok() && first.ok()) first = closed;
  }
  closed_ = true;
  co_return first;
}

StorageTarget* StorageTargets::by_id(TargetId id) const {
  if (id == 0) return nullptr;
  for (const auto& target : targets_)
    if (target->id() == id) return target.get();
  return nullptr;
}

StorageTarget* StorageTargets::by_chain(ChainId chain) const {
  if (chain == 0) return nullptr;
  for (const auto& target : targets_)
    if (target->view().chain == chain) return target.get();
  return nullptr;
}

StorageTarget* StorageTargets::by_identity(const std::string& identity) const {
  for (const auto& target : targets_)
    if (target->identity() == identity) return target.get();
  return nullptr;
}

Result<StorageTarget*> StorageTargets::for_request(
    ChainId chain, uint64_t chain_version, std::initializer_list<PublicState> allowed) const {
  StorageTarget* target = by_chain(chain);
  if (target == nullptr)
    return Status(StatusCode::kNotServing,
                  fmt::format("no target of this node is in chain {}", chain));
  const ChainView& view = target->view();
  if (view.version != chain_version)
    return Status(StatusCode::kStaleChain,
                  fmt::format("chain {}: request at version {}, target {} is at version {}", chain,
                              chain_version, target->id(), view.version));
  for (PublicState state : allowed)
    if (view.state == state) return target;
  return Status(StatusCode::kNotServing,
                fmt::format("chain {} version {}: target {} is {}", chain, view.version,
                            target->id(), public_state_name(view.state)));
}

Task<Status> StorageTargets::assign_ids(const std::map<std::string, TargetId>& ids) {
  for (const auto& target : targets_) {
    auto it = ids.find(target->identity());
    if (it == ids.end() || it->second == target->id()) continue;
    TargetIdentity identity{.target = it->second, .identity = target->identity()};
    auto saving = save_target_identity(target->config().path, identity);
    Status saved = co_await std::move(saving);
    if (!saved.ok())
      co_return Status(saved.code(), fmt::format("target {}: saving id {}: {}",
                                                 target->config().path, it->second, saved));
    MICA_LOG(Info, "craq", "target {} is target {}", target->config().path, it->second);
    target->set_id(it->second);
  }
  co_return Status();
}

void StorageTargets::apply_routing(const RoutingSnapshot& routing) {
  if (routing.version < routing_version_) return;  // an older snapshot changes nothing
  routing_version_ = routing.version;
  routing_ = routing;
  for (const auto& target : targets_) {
    ChainView view;
    const TargetInfo* info = find_target(routing, target->id());
    const ChainInfo* chain = info == nullptr ? nullptr : find_chain(routing, info->chain);
    if (chain != nullptr) view = view_in(routing, *chain, target->id());
    if (same_view(view, target->view())) continue;
    ChainView old = target->view();
    // The chain engine keeps chain versions in 32 bits.
    MICA_ASSERT_MSG(view.version <= UINT32_MAX, "chain version beyond the engine's 32 bits");
    if (view.state == PublicState::kServing) {
      // A serving target holds every committed write of its chain at this version.
      target->set_local(LocalState::kUpToDate, view.version);
    } else if (!(target->local_state() == LocalState::kUpToDate &&
                 target->local_chain_version() == view.version)) {
      // Syncing, waiting or out: behind until a resync finishes (sync_done sets kUpToDate).
      target->set_local(LocalState::kOnline, view.version);
    }
    target->set_view(std::move(view));
    MICA_LOG(Info, "craq", "target {}: chain {} v{} {}{}{} successor {} read tail {}", target->id(),
             target->view().chain, target->view().version, public_state_name(target->view().state),
             target->view().head ? " head" : "", target->view().tail ? " tail" : "",
             target->view().successor, target->view().read_tail);
    if (on_view_change) on_view_change(target.get(), old);
  }
}

std::vector<TargetReport> StorageTargets::reports() const {
  std::vector<TargetReport> reports;
  for (const auto& target : targets_) {
    chunk::SpaceStats space = target->engine().space();
    uint64_t cap = target->engine().config().data_bytes_max;
    TargetReport report;
    report.target = target->id();
    report.identity = target->identity();
    report.disk = target->config().disk;
    report.local = target->local_state();
    report.reported_chain_version = target->local_chain_version();
    report.capacity_bytes = cap != 0 ? cap : space.disk_total_bytes;
    report.used_bytes = space.used_slot_bytes;
    reports.push_back(std::move(report));
  }
  return reports;
}

}  // namespace mica::craq
