// LeaseTable (meta/lease.h): the map of leases and the loop that ends lapsed clients'
// sessions.
#include "meta/lease.h"

#include "async/hop.h"
#include "async/log.h"
#include "meta/schema.h"
#include "meta/shard.h"

namespace mica::meta {

LeaseTable::LeaseTable(LeaseOptions options)
    : options_(std::move(options)),
      clients_metric_(&metrics().gauge("meta", "lease_clients",
                                       "Clients holding a lease on this process.",
                                       options_.metric_labels)),
      expired_metric_(&metrics().counter("meta", "leases_expired_total",
                                         "Client leases that lapsed (their sessions ended).",
                                         options_.metric_labels)) {
  MICA_ASSERT(options_.lease_ms > 0 && options_.check_interval_ms > 0);
  MICA_ASSERT(options_.clients_max > 0);
}

LeaseTable::~LeaseTable() {
  MICA_ASSERT_MSG(!started_ || stopped_, "LeaseTable destroyed before stop()");
}

void LeaseTable::add_shard(Shard* shard, Executor* executor) {
  MICA_ASSERT_MSG(!started_, "LeaseTable::add_shard after start()");
  shards_.push_back(ShardRef{shard, executor});
}

TimePoint LeaseTable::now() const {
  return Executor::current()->now();
}

namespace {

// The clients holding sessions in shard's committed state, with their session counts.
Result<std::map<ClientId, uint32_t>> session_clients(Shard* shard) {
  Result<std::unique_ptr<kv::ReadTxn>> txn = shard->read();
  RETURN_IF_ERROR(txn);
  Result<std::unique_ptr<kv::Cursor>> cursor = (*txn)->cursor(shard->tables().sessions);
  RETURN_IF_ERROR(cursor);
  std::map<ClientId, uint32_t> found;
  for (Result<std::optional<kv::Entry>> at = (*cursor)->first();; at = (*cursor)->next()) {
    RETURN_IF_ERROR(at);
    if (!at->has_value()) break;
    Result<SessionRecord> record = decode_record<SessionRecord>((*at)->value, "session");
    RETURN_IF_ERROR(record);
    ++found[record->client];
  }
  return found;
}

}  // namespace

Task<Result<std::map<ClientId, uint32_t>>> LeaseTable::scan_on(ShardRef shard) {
  co_await shard.executor->schedule();
  Result<std::map<ClientId, uint32_t>> found = session_clients(shard.shard);
  co_await home_->schedule();
  co_return found;
}

Task<Status> LeaseTable::start() {
  MICA_ASSERT_MSG(!started_, "LeaseTable started twice");
  started_ = true;
  home_ = Executor::current();
  std::map<ClientId, uint32_t> found;
  for (ShardRef shard : shards_) {
    auto scanning = scan_on(shard);
    Result<std::map<ClientId, uint32_t>> clients = co_await std::move(scanning);
    if (!clients.ok()) {
      stopped_ = true;  // nothing runs: the destructor may go
      co_return clients.status();
    }
    for (auto [client, sessions] : *clients) found[client] += sessions;
  }
  {
    std::lock_guard lock(mutex_);
    TimePoint expiry = now() + std::chrono::milliseconds(options_.lease_ms);
    for (auto [client, sessions] : found) {
      Lease& lease = leases_[client];
      lease.expiry = std::max(lease.expiry, expiry);
      lease.sessions += sessions;
    }
    clients_metric_->set(int64_t(leases_.size()));
  }
  if (!found.empty()) {
    MICA_LOG(Info, "meta", "{} clients hold sessions from before the start: {} ms of grace",
             found.size(), options_.lease_ms);
  }
  scope_.spawn(loop());
  co_return Status();
}

Task<void> LeaseTable::stop() {
  if (stopped_) co_return;
  stopped_ = true;
  scope_.cancel();
  co_await scope_.join();
}

Result<LeaseReply> LeaseTable::renew(ClientId client) {
  std::lock_guard lock(mutex_);
  auto it = leases_.find(client);
  if (it == leases_.end()) {
    if (leases_.size() >= options_.clients_max) {
      return Status(StatusCode::kBusy, "lease table full");
    }
    it = leases_.emplace(client, Lease{}).first;
    clients_metric_->set(int64_t(leases_.size()));
  }
  it->second.expiry = now() + std::chrono::milliseconds(options_.lease_ms);
  return LeaseReply{.lease_ms = options_.lease_ms, .sessions = it->second.sessions};
}

void LeaseTable::opened(ClientId client) {
  std::lock_guard lock(mutex_);
  // An open is a sign of life: it renews (a client that opens before it renews is under a
  // lease from now on). A client whose lease is being ended stays so: the new session may
  // be ended with the old ones (the client then sees kStaleSession and reopens).
  Lease& lease = leases_[client];
  lease.expiry = std::max(lease.expiry, now() + std::chrono::milliseconds(options_.lease_ms));
  ++lease.sessions;
  clients_metric_->set(int64_t(leases_.size()));
}

void LeaseTable::closed(ClientId client) {
  std::lock_guard lock(mutex_);
  auto it = leases_.find(client);
  if (it != leases_.end() && it->second.sessions > 0) --it->second.sessions;
}

bool LeaseTable::holds(ClientId client) const {
  std::lock_guard lock(mutex_);
  auto it = leases_.find(client);
  return it != leases_.end() && (it->second.ending || it->second.expiry >= now());
}

size_t LeaseTable::clients() const {
  std::lock_guard lock(mutex_);
  return leases_.size();
}

Task<Status> LeaseTable::end_on(ShardRef shard, ClientId client) {
  auto ending = shard.shard->end_sessions(client);
  auto hopping = mica::hop(home_, shard.executor, std::move(ending));
  Status s = co_await std::move(hopping);
  co_return s;
}

Task<Status> LeaseTable::end_client(ClientId client) {
  Status first;
  for (ShardRef shard : shards_) {
    auto ending = end_on(shard, client);
    Status s = co_await std::move(ending);
    if (!s.ok() && first.ok()) first = s;
  }
  co_return first;
}

Task<void> LeaseTable::expire_lapsed() {
  std::vector<ClientId> lapsed;
  {
    std::lock_guard lock(mutex_);
    TimePoint at = now();
    for (auto it = leases_.begin(); it != leases_.end();) {
      Lease& lease = it->second;
      if (!lease.ending && lease.expiry < at && lease.sessions == 0) {
        // Nothing to end: dropped at once, so no ending window swallows a session the
        // client opens next (it would be ended with the lapse it never had a part in).
        it = leases_.erase(it);
        continue;
      }
      if (lease.ending || lease.expiry < at) {
        if (!lease.ending) expired_metric_->add();
        lease.ending = true;
        lapsed.push_back(it->first);
      }
      ++it;
    }
    clients_metric_->set(int64_t(leases_.size()));
  }
  for (ClientId client : lapsed) {
    auto ending = end_client(client);
    Status s = co_await std::move(ending);
    std::lock_guard lock(mutex_);
    auto it = leases_.find(client);
    if (it == leases_.end()) continue;
    if (!s.ok()) {
      // Kept as ending: the next check tries again (a session whose length the storage
      // service could not answer stays until it can).
      MICA_LOG(Warn, "meta", "ending the sessions of client {:#x}: {}", client, s);
      continue;
    }
    if (it->second.expiry >= now()) {
      it->second.ending = false;  // renewed meanwhile: a fresh lease, its old sessions gone
    } else {
      leases_.erase(it);
    }
    clients_metric_->set(int64_t(leases_.size()));
  }
}

Task<void> LeaseTable::loop() {
  for (;;) {
    Status slept = co_await sleep_for(std::chrono::milliseconds(options_.check_interval_ms));
    if (!slept.ok()) co_return;  // stop()
    auto expiring = expire_lapsed();
    co_await std::move(expiring);
  }
}

}  // namespace mica::meta
