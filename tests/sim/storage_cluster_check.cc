// The storage_cluster scenario's end-of-run checks (tests/sim/storage_cluster.cc has the
// picture): every replica of a chunk holds what the final read returned (stat_chunk at every
// member of its chain: one committed version, length and checksum, nothing pending, and the
// checksum is the CRC32C of the bytes read), and the recorded history is linearizable chunk
// by chunk (tests/sim/linearizability.h).
#include <algorithm>
#include <vector>

#include "async/crc32c.h"
#include "craq/storage_service.h"
#include "tests/sim/storage_cluster.h"

namespace mica::sim {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kStatAttemptsMax = 20;
constexpr Duration kStatPause = 100ms;
constexpr Duration kStatTimeout = 1s;

struct ReplicaStat {
  craq::TargetId target = 0;
  Status status;
  craq::StatChunkResponse stat;
};

Task<ReplicaStat> stat_replica(net::ConnectionPool* pool, const craq::RoutingSnapshot* routing,
                               craq::ChainId chain, craq::TargetId target, craq::ChunkRef ref) {
  ReplicaStat out{.target = target};
  const craq::TargetInfo* info = craq::find_target(*routing, target);
  const craq::NodeInfo* node = info ? craq::find_node(*routing, info->node) : nullptr;
  if (node == nullptr) {
    out.status = Status(StatusCode::kNotFound, "no such target or node in routing");
    co_return out;
  }
  Result<SocketAddress> address = SocketAddress::parse(node->rpc_address);
  if (!address.ok()) {
    out.status = address.status();
    co_return out;
  }
  TimePoint deadline = deadline_after(kStatTimeout);
  auto getting = pool->get(*address, deadline);
  Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(getting);
  if (!client.ok()) {
    out.status = client.status();
    co_return out;
  }
  craq::StatChunkRequest request{.chain = chain, .chunk = ref};
  auto calling =
      (*client)->call<craq::StorageService::stat_chunk>(request, net::CallOptions{deadline});
  Result<craq::StatChunkResponse> stat = co_await std::move(calling);
  if (stat.ok())
    out.stat = std::move(*stat);
  else
    out.status = stat.status();
  co_return out;
}

std::string describe_stat(const ReplicaStat& r) {
  if (!r.status.ok()) return fmt::format("target {}: {}", r.target, r.status.to_string());
  if (!r.stat.meta)
    return fmt::format("target {}: no chunk (pending {})", r.target, r.stat.pending_version);
  const craq::ChunkState& s = r.stat.meta->state;
  return fmt::format("target {}: version {} length {} checksum {:#x} pending {}{}", r.target,
                     s.version, s.length_bytes, s.checksum, r.stat.pending_version,
                     r.stat.meta->damaged ? " damaged" : "");
}

// "" when every replica holds `content` as one committed version, else what differs.
std::string compare_replicas(const std::vector<ReplicaStat>& replicas,
                             const std::vector<std::byte>& content) {
  uint32_t crc = crc32c(std::span<const std::byte>(content));
  std::string why;
  for (const ReplicaStat& r : replicas) {
    bool good = r.status.ok() && r.stat.meta && !r.stat.meta->damaged &&
                r.stat.pending_version == 0 && r.stat.meta->state.length_bytes == content.size() &&
                r.stat.meta->state.checksum == crc &&
                r.stat.meta->state.version == replicas.front().stat.meta->state.version;
    if (!good) why += " " + describe_stat(r) + ";";
  }
  if (why.empty()) return "";
  std::string all;
  for (const ReplicaStat& r : replicas) all += " " + describe_stat(r) + ";";
  return fmt::format("the read returned {} bytes with CRC {:#x}; replicas:{}", content.size(), crc,
                     all);
}

}  // namespace

Task<void> check_replicas(Cluster* c, net::ConnectionPool* pool, uint32_t chunk,
                          std::vector<std::byte> content) {
  std::string why = "mgmtd is down";
  for (uint32_t attempt = 0; attempt < kStatAttemptsMax; ++attempt) {
    if (c->mgmtd != nullptr) {
      std::shared_ptr<const craq::RoutingSnapshot> routing = c->mgmtd->routing();
      const craq::ChainInfo* chain = craq::find_chain(*routing, c->chunks[chunk].chain);
      if (chain == nullptr) {
        c->result->fail(fmt::format("chunk {}: its chain is gone from routing", chunk));
        co_return;
      }
      std::vector<ReplicaStat> replicas;
      for (const craq::ChainTarget& member : chain->targets) {
        auto stating =
            stat_replica(pool, routing.get(), chain->id, member.target, c->chunks[chunk].ref);
        replicas.push_back(co_await std::move(stating));
      }
      // A replica's first answer carries no meta when the others have some: compare
      // against the first replica that has one.
      std::stable_partition(replicas.begin(), replicas.end(),
                            [](const ReplicaStat& r) { return r.status.ok() && r.stat.meta; });
      why = replicas.empty() || !replicas.front().stat.meta ? "no replica holds the chunk"
                                                            : compare_replicas(replicas, content);
      if (why.empty()) co_return;
    }
    SleepAwaiter pause = sleep_for(kStatPause);
    Status paused = co_await pause;
    if (!paused.ok()) break;
  }
  c->result->fail(fmt::format("chunk {}: replicas did not converge: {}", chunk, why));
}

void check_cluster_history(Cluster* c) {
  HistoryVerdict verdict = check_history(c->history, CheckOptions{.steps_max = kCheckStepsMax});
  uint64_t gave_up = 0;
  for (const ChunkVerdict& chunk : verdict.chunks) gave_up += chunk.verdict == LinVerdict::kGaveUp;
  if (verdict.verdict == LinVerdict::kViolation)
    c->result->fail(fmt::format("the history is not linearizable: {}", verdict.why));
  // --verbose: the whole history of each chunk that failed, to read beside the trace.
  for (const ChunkVerdict& chunk : verdict.chunks) {
    if (!c->verbose || chunk.verdict != LinVerdict::kViolation) continue;
    for (const LinOp& op : c->history)
      if (op.key == chunk.key) c->result->notes.push_back(describe_op(op));
  }
  if (c->verbose)
    for (const ChunkVerdict& chunk : verdict.chunks)
      c->result->notes.push_back(fmt::format("chunk {}: {} ops, {} steps: {} {}", chunk.key,
                                             chunk.ops, chunk.steps,
                                             lin_verdict_name(chunk.verdict), chunk.why));
  // Indeterminate writes a read saw: the sweep must show that they may take effect.
  std::vector<uint64_t> seen;
  for (const LinOp& op : c->history)
    if (op.kind == LinKind::kRead && op.outcome == LinOutcome::kOk)
      for (const ByteRun& run : op.observed) seen.push_back(run.writer);
  std::sort(seen.begin(), seen.end());
  uint64_t indeterminate_seen = 0;
  for (const LinOp& op : c->history)
    if (op.kind == LinKind::kWrite && op.outcome == LinOutcome::kIndeterminate &&
        std::binary_search(seen.begin(), seen.end(), op.id))
      ++indeterminate_seen;
  c->result->counters["chunks_checked"] = verdict.chunks.size();
  c->result->counters["lin_gave_up"] = gave_up;
  c->result->counters["lin_steps"] = verdict.steps;
  c->result->counters["indeterminate_seen"] = indeterminate_seen;
  c->result->counters["history_ops"] = c->history.size();
}

}  // namespace mica::sim
