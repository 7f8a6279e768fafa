// Mgmtd's state: opening and loading it from kv, committing a change (one WriteRequest with
// the routing version bump, applied to memory only once durable), publishing the routing
// snapshot, and the update loop (craq/mgmtd.h).
#include "craq/mgmtd.h"

#include <string>
#include <utility>

#include "async/log.h"

namespace mica::craq {

namespace {

// Keys are big-endian ids, so a cursor walks a table in id order.
std::string id_key(uint64_t id) {
  std::string key(8, '\0');
  for (int i = 0; i < 8; ++i) key[i] = static_cast<char>(id >> (56 - 8 * i));
  return key;
}

// The config and counters tables hold one record each, under this key.
const std::string& single_key() {
  static const std::string key = id_key(0);
  return key;
}

template <class T>
std::string encode_value(const T& record) {
  std::vector<std::byte> bytes = net::encode(record);
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

template <class T>
Result<T> decode_value(std::string_view value, std::string_view table) {
  auto bytes =
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(value.data()), value.size());
  Result<T> record = net::decode<T>(bytes);
  if (!record.ok())
    return Status(StatusCode::kCorruption,
                  fmt::format("mgmtd table {}: a record does not decode: {}", table,
                              record.status().to_string()));
  return record;
}

template <class T>
uint64_t record_id(const T& record) {
  return record.id;
}

}  // namespace

Task<Result<std::unique_ptr<Mgmtd>>> Mgmtd::open(kv::Env* env, MgmtdOptions options) {
  Tables tables;
  CO_TRY_ASSIGN(tables.nodes, env->open_table("mgmtd_nodes"));
  CO_TRY_ASSIGN(tables.targets, env->open_table("mgmtd_targets"));
  CO_TRY_ASSIGN(tables.chains, env->open_table("mgmtd_chains"));
  CO_TRY_ASSIGN(tables.chain_tables, env->open_table("mgmtd_chain_tables"));
  CO_TRY_ASSIGN(tables.config, env->open_table("mgmtd_config"));
  CO_TRY_ASSIGN(tables.counters, env->open_table("mgmtd_counters"));
  std::unique_ptr<Mgmtd> mgmtd(new Mgmtd(env, std::move(options), tables));
  CO_TRY(mgmtd->load());
  bool fresh = mgmtd->counters_.routing_version == 0;
  if (fresh || !(mgmtd->config_ == mgmtd->options_.config)) {
    // A fresh state starts at routing version 1; a changed config file is adopted.
    Change change;
    change.config = mgmtd->options_.config;
    auto committing = mgmtd->commit(std::move(change));
    CO_TRY(co_await std::move(committing));
  }
  mgmtd->start_grace();  // with the lease of the config just adopted
  mgmtd->publish();
  co_return mgmtd;
}

Mgmtd::Mgmtd(kv::Env* env, MgmtdOptions options, Tables tables)
    : env_(env),
      options_(std::move(options)),
      tables_(tables),
      service_(net::Service::bind<MgmtdService>(this)) {
  register_metrics();
}

Mgmtd::~Mgmtd() {
  MICA_ASSERT_MSG(scope_.active() == 0, "Mgmtd destroyed before stop() returned");
}

template <class T>
Status Mgmtd::load_table(kv::ReadTxn* txn, kv::Table table, std::map<uint64_t, T>* out) {
  Result<std::unique_ptr<kv::Cursor>> cursor = txn->cursor(table);
  if (!cursor.ok()) return cursor.status();
  Result<std::optional<kv::Entry>> entry = (*cursor)->first();
  while (true) {
    if (!entry.ok()) return entry.status();
    if (!entry->has_value()) return Status();
    Result<T> record = decode_value<T>((*entry)->value, T::kTypeName);
    if (!record.ok()) return record.status();
    if ((*entry)->key != id_key(record_id(*record)))
      return Status(StatusCode::kCorruption,
                    fmt::format("mgmtd: a {} is stored under the wrong key", T::kTypeName));
    uint64_t id = record_id(*record);
    out->emplace(id, std::move(*record));
    entry = (*cursor)->next();
  }
}

Status Mgmtd::load() {
  Result<std::unique_ptr<kv::ReadTxn>> txn = env_->begin_read();
  if (!txn.ok()) return txn.status();
  Result<std::optional<std::string_view>> counters = (*txn)->get(tables_.counters, single_key());
  if (!counters.ok()) return counters.status();
  if (counters->has_value()) {
    Result<MgmtdCounters> decoded = decode_value<MgmtdCounters>(**counters, "counters");
    if (!decoded.ok()) return decoded.status();
    if (decoded->format_version > kMgmtdFormatVersion)
      return Status(StatusCode::kNotSupported,
                    fmt::format("mgmtd state has format version {}, this mgmtd reads up to {}",
                                decoded->format_version, kMgmtdFormatVersion));
    counters_ = *decoded;
  }
  Result<std::optional<std::string_view>> config = (*txn)->get(tables_.config, single_key());
  if (!config.ok()) return config.status();
  if (config->has_value()) {
    Result<ClusterConfig> decoded = decode_value<ClusterConfig>(**config, "config");
    if (!decoded.ok()) return decoded.status();
    config_ = *decoded;
  }
  if (Status s = load_table(txn->get(), tables_.nodes, &nodes_); !s.ok()) return s;
  if (Status s = load_table(txn->get(), tables_.targets, &targets_); !s.ok()) return s;
  if (Status s = load_table(txn->get(), tables_.chains, &chains_); !s.ok()) return s;
  if (Status s = load_table(txn->get(), tables_.chain_tables, &tables_records_); !s.ok()) return s;
  for (const auto& [id, node] : nodes_) node_by_identity_[node.identity] = node.id;
  for (const auto& [id, target] : targets_) {
    target_by_identity_[target.identity] = target.id;
    TargetLive& live = target_live_[target.id];
    live.capacity_bytes = target.capacity_bytes;
    live.used_bytes = target.used_bytes;
  }
  return Status();
}

// Restart grace: every known node counts as having heartbeat `lease - grace` ago, so its
// lease runs out `grace` from now.
void Mgmtd::start_grace() {
  TimePoint now = Executor::current()->now();
  Duration grace = options_.restart_grace.value_or(lease());
  for (const auto& [id, node] : nodes_) node_live_[node.id].last_heartbeat = now + grace - lease();
}

Duration Mgmtd::lease() const {
  return std::chrono::milliseconds(config_.lease_timeout_ms);
}

Task<Status> Mgmtd::commit(Change change) {
  kv::WriteRequest write;
  for (const NodeInfo& node : change.nodes)
    write.put(tables_.nodes, id_key(node.id), encode_value(node));
  for (const TargetInfo& target : change.targets)
    write.put(tables_.targets, id_key(target.id), encode_value(target));
  for (const ChainInfo& chain : change.chains)
    write.put(tables_.chains, id_key(chain.id), encode_value(chain));
  for (const ChainTable& table : change.tables)
    write.put(tables_.chain_tables, id_key(table.id), encode_value(table));
  if (change.config) write.put(tables_.config, single_key(), encode_value(*change.config));
  MgmtdCounters counters = change.counters.value_or(counters_);
  counters.routing_version = counters_.routing_version + 1;
  write.put(tables_.counters, single_key(), encode_value(counters));
  if (options_.on_write_start) options_.on_write_start(counters.routing_version);
  Status s = co_await env_->write(&write);
  if (!s.ok()) {
    MICA_LOG(Error, "mgmtd", "a change was not written (nothing changed): {}", s);
    co_return s;
  }
  counters_ = counters;
  apply(change);
  publish();
  co_return Status();
}

void Mgmtd::apply(const Change& change) {
  for (const NodeInfo& node : change.nodes) {
    nodes_[node.id] = node;
    node_by_identity_[node.identity] = node.id;
  }
  for (const TargetInfo& target : change.targets) {
    targets_[target.id] = target;
    target_by_identity_[target.identity] = target.id;
  }
  for (const ChainInfo& chain : change.chains) chains_[chain.id] = chain;
  for (const ChainTable& table : change.tables) tables_records_[table.id] = table;
  if (change.config) config_ = *change.config;
}

void Mgmtd::publish() {
  auto routing = std::make_shared<RoutingSnapshot>();
  routing->version = counters_.routing_version;
  routing->nodes.reserve(nodes_.size());
  for (const auto& [id, node] : nodes_) routing->nodes.push_back(node);
  routing->targets.reserve(targets_.size());
  for (const auto& [id, target] : targets_) routing->targets.push_back(target);
  routing->chains.reserve(chains_.size());
  for (const auto& [id, chain] : chains_) routing->chains.push_back(chain);
  for (const auto& [id, table] : tables_records_) routing->tables.push_back(table);
  std::map<uint32_t, NodeId> shards;  // ordered: the list comes out sorted by shard
  for (const auto& [id, node] : nodes_)
    for (uint32_t shard : node.meta_shards) shards[shard] = node.id;
  for (const auto& [shard, node] : shards) routing->meta_shards.push_back({shard, node});
  routing->config = config_;
  routing_ = std::move(routing);
  if (options_.on_publish) options_.on_publish(*routing_);
  metrics_.routing_version->set(static_cast<int64_t>(counters_.routing_version));
  changed_.set();
  changed_.reset();
}

void Mgmtd::start() {
  MICA_ASSERT_MSG(scope_.active() == 0 && !stopping_, "Mgmtd::start() twice or after stop()");
  running_ = true;
  scope_.spawn(update_loop());
}

Status Mgmtd::health() const {
  if (!running_) return Status(StatusCode::kClosed, "mgmtd's update loop is not running");
  if (!last_round_.ok())
    return Status(last_round_.code(),
                  fmt::format("mgmtd's last update round failed: {}", last_round_.message()));
  return Status();
}

Task<void> Mgmtd::stop() {
  stopping_ = true;
  running_ = false;
  scope_.cancel();
  kick();
  changed_.set();  // long polls answer now
  co_await scope_.join();
}

Task<void> Mgmtd::update_loop() {
  while (!stopping_) {
    TimePoint next = Executor::current()->now() + options_.update_interval;
    Status woke = co_await kick_.wait(next);
    if (stopping_ || woke.code() == StatusCode::kCancelled) break;
    kick_.reset();
    auto round = run_round();
    Status s = co_await std::move(round);
    if (!s.ok() && s.code() != StatusCode::kCancelled)
      MICA_LOG(Warn, "mgmtd", "update round failed: {}", s);
    last_round_ = std::move(s);
  }
}

}  // namespace mica::craq
