// Data for the storage process tests: a write workload of known patterns over many chunks,
// the model of what every chunk must hold after the acknowledged writes, and the checks
// that the cluster holds exactly that — read back through the storage client, the
// replicas' chunk states compared node by node (stat_chunk), and each target's engine
// opened after the processes stopped, fsck'ed and read directly.
//
// The workload runs rounds: each round sends one write per chunk in one write_batch. A
// write that was not acknowledged (the call failed or timed out, maybe applied, maybe not)
// is sent again, with the same bytes, before any other write to its chunk, so the model
// stays exact: whichever attempts landed, the chunk holds the same bytes (the chain orders
// the attempts of one chunk: the head's order lock). A ClientSession is the client side in
// the test process (TCP with the cluster token, pool, routing client, storage client) on
// one executor: make, open, use and close it in tasks there. The workload's counters are
// atomics that another thread may read; everything else belongs to the session's thread.
#pragma once

#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "async/assert.h"
#include "async/crc32c.h"
#include "async/executor.h"
#include "async/wait_list.h"
#include "chunk/engine.h"
#include "craq/storage_client.h"
#include "net/authenticated_transport.h"
#include "net/cluster_token.h"
#include "net/tcp_transport.h"

namespace mica::testing {

// splitmix64: the pattern's and the workload's deterministic numbers.
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The bytes of write `write` of chunk `chunk` at chunk positions [offset, offset + size):
// every write's bytes differ from every other's, so a lost or misplaced write shows.
inline std::vector<std::byte> pattern(uint64_t chunk, uint64_t write, uint32_t offset,
                                      uint32_t size) {
  std::vector<std::byte> out(size);
  uint64_t seed = mix64(chunk << 32 | write);
  for (uint32_t i = 0; i < size; i += 8) {
    uint64_t word = mix64(seed ^ (offset + i));
    std::memcpy(out.data() + i, &word, std::min<uint32_t>(8, size - i));
  }
  return out;
}

struct WorkloadOptions {
  uint32_t chunks = 24;
  uint32_t chunk_size_bytes = 256 << 10;
  uint32_t write_min_bytes = 1 << 10;
  uint32_t write_max_bytes = 64 << 10;
  uint64_t inode = 0x5701;  // chunk i is (inode, i)
  // A round's write_batch deadline.
  Duration round_timeout = std::chrono::seconds(15);
};

struct ChunkModel {
  craq::ChainId chain = 0;
  craq::ChunkRef ref;
  std::vector<std::byte> bytes;  // what the chunk must hold (its length is bytes.size())
  uint64_t writes = 0;           // acknowledged writes (also the next write's number)
  // The write in doubt: sent, not acknowledged; sent again (same bytes) before any other.
  std::optional<uint32_t> pending_offset;
  std::vector<std::byte> pending_data;
};

class WriteWorkload {
 public:
  WriteWorkload(WorkloadOptions options, std::vector<craq::ChainId> chains) : options_(options) {
    for (uint32_t i = 0; i < options_.chunks; ++i) {
      ChunkModel chunk;
      chunk.chain = chains[i % chains.size()];
      chunk.ref = craq::ChunkRef{.inode = options_.inode, .index = i};
      chunks_.push_back(std::move(chunk));
    }
  }
  const WorkloadOptions& options() const { return options_; }
  const std::vector<ChunkModel>& chunks() const { return chunks_; }
  bool any_pending() const {
    for (const ChunkModel& c : chunks_) {
      if (c.pending_offset) return true;
    }
    return false;
  }

  std::atomic<uint64_t> acked{0};  // writes acknowledged
  std::atomic<uint64_t> acked_bytes{0};
  std::atomic<uint64_t> failed{0};  // write calls that failed (and were sent again)
  std::atomic<uint64_t> rounds{0};

  // One round: the pending write of every chunk, or a new one; the results into the model.
  Task<void> round(craq::StorageClient* client) {
    std::vector<craq::ChunkWrite> writes;
    for (uint32_t i = 0; i < chunks_.size(); ++i) {
      ChunkModel& c = chunks_[i];
      if (!c.pending_offset) next_write(i, &c);
      writes.push_back(craq::ChunkWrite{.chain = c.chain,
                                        .chunk = c.ref,
                                        .offset = *c.pending_offset,
                                        .data = c.pending_data,
                                        .chunk_size_bytes = options_.chunk_size_bytes});
    }
    TimePoint deadline = Executor::current()->now() + options_.round_timeout;
    auto writing = client->write_batch(std::move(writes), deadline);
    std::vector<Result<craq::ChunkState>> results = co_await std::move(writing);
    for (uint32_t i = 0; i < chunks_.size() && i < results.size(); ++i) {
      if (results[i].ok()) {
        apply(&chunks_[i]);
      } else {
        failed.fetch_add(1);
        last_error_ = results[i].status().to_string();
      }
    }
    rounds.fetch_add(1);
  }
  const std::string& last_error() const { return last_error_; }

 private:
  void next_write(uint32_t i, ChunkModel* c) {
    uint64_t r = mix64(uint64_t{i} << 40 | c->writes);
    uint32_t span = options_.write_max_bytes - options_.write_min_bytes + 1;
    uint32_t size = options_.write_min_bytes + static_cast<uint32_t>(r % span);
    uint32_t offset = static_cast<uint32_t>((r >> 32) % (options_.chunk_size_bytes - size + 1));
    c->pending_offset = offset;
    c->pending_data = pattern(i, c->writes, offset, size);
  }
  void apply(ChunkModel* c) {
    uint32_t offset = *c->pending_offset;
    size_t end = offset + c->pending_data.size();
    if (c->bytes.size() < end) c->bytes.resize(end);  // a hole before it reads as zeros
    std::memcpy(c->bytes.data() + offset, c->pending_data.data(), c->pending_data.size());
    acked.fetch_add(1);
    acked_bytes.fetch_add(c->pending_data.size());
    c->writes++;
    c->pending_offset.reset();
    c->pending_data.clear();
  }

  WorkloadOptions options_;
  std::vector<ChunkModel> chunks_;
  std::string last_error_;
};

// The client side of a test, in the test process: authenticated TCP, a pool, a routing
// client following mgmtd, and the storage client.
struct ClientSession {
  ClientSession(net::ClusterToken token, std::vector<SocketAddress> mgmtd)
      : auth(&tcp, std::move(token)),
        pool(&auth, net::PoolOptions{.backoff_max = std::chrono::milliseconds(500)}),
        routing(&pool, craq::RoutingClientOptions{.mgmtd = std::move(mgmtd)}),
        client(&pool, &auth, &routing,
               craq::StorageClientOptions{.call_timeout = std::chrono::seconds(20),
                                          .attempt_timeout = std::chrono::seconds(3)}) {}
  net::TcpTransport tcp;
  net::AuthenticatedTransport auth;
  net::ConnectionPool pool;
  craq::RoutingClient routing;
  craq::StorageClient client;
};

// Starts the routing client and waits for a snapshot with `chains` chains.
inline Task<Status> open_session(ClientSession* s, size_t chains, Duration timeout) {
  s->routing.start();
  TimePoint deadline = Executor::current()->now() + timeout;
  auto waiting = s->routing.wait_until(
      [chains](const craq::RoutingSnapshot& r) { return r.chains.size() >= chains; }, deadline);
  Result<craq::RoutingClient::SnapshotPtr> got = co_await std::move(waiting);
  co_return got.status();
}

inline Task<void> close_session(ClientSession* s) {
  auto stopping = s->routing.stop();
  co_await std::move(stopping);
  auto closing = s->pool.close();
  co_await std::move(closing);
}

// The chain ids of the session's snapshot, in id order.
inline std::vector<craq::ChainId> chain_ids(const ClientSession& s) {
  std::vector<craq::ChainId> ids;
  for (const craq::ChainInfo& chain : s.routing.current()->chains) ids.push_back(chain.id);
  return ids;
}

// "" when the bytes match the model; else where the first difference is.
inline std::string compare_chunk(const ChunkModel& model, std::span<const std::byte> got,
                                 const std::string& where) {
  std::string name = where + " chunk " + std::to_string(model.ref.index);
  if (got.size() != model.bytes.size()) {
    return name + ": " + std::to_string(got.size()) + " bytes, expected " +
           std::to_string(model.bytes.size());
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != model.bytes[i]) return name + ": first wrong byte at " + std::to_string(i);
  }
  return "";
}

// Reads every chunk whole through the client (choice: spread or head) against the model.
inline Task<std::string> verify_reads(ClientSession* s, const WriteWorkload* w) {
  std::vector<std::byte> buffer(w->options().chunk_size_bytes);
  for (const ChunkModel& model : w->chunks()) {
    TimePoint deadline = Executor::current()->now() + std::chrono::seconds(20);
    auto reading = s->client.read(model.chain, model.ref, 0, buffer, deadline);
    Result<uint32_t> n = co_await std::move(reading);
    if (!n.ok())
      co_return "read of chunk " + std::to_string(model.ref.index) + ": " + n.status().to_string();
    std::string diff = compare_chunk(model, std::span(buffer).first(*n), "client read of");
    if (!diff.empty()) co_return diff;
  }
  co_return "";
}

// Asks every replica of every chunk's chain for its state of the chunk (stat_chunk, at the
// node routing names): every replica must hold the model's length and CRC32C, at one
// committed version, with nothing pending. "" when they do.
inline Task<std::string> verify_replica_states(ClientSession* s, const WriteWorkload* w) {
  std::shared_ptr<const craq::RoutingSnapshot> routing = s->routing.current();
  for (const ChunkModel& model : w->chunks()) {
    const craq::ChainInfo* chain = craq::find_chain(*routing, model.chain);
    if (chain == nullptr) co_return "no chain " + std::to_string(model.chain);
    uint32_t crc = crc32c(model.bytes);
    std::optional<uint32_t> version;
    for (const craq::ChainTarget& member : chain->targets) {
      const craq::TargetInfo* target = craq::find_target(*routing, member.target);
      const craq::NodeInfo* node = target ? craq::find_node(*routing, target->node) : nullptr;
      if (node == nullptr) co_return "target " + std::to_string(member.target) + " unrouted";
      Result<SocketAddress> address = SocketAddress::parse(node->rpc_address);
      if (!address.ok()) co_return "bad node address " + node->rpc_address;
      TimePoint deadline = Executor::current()->now() + std::chrono::seconds(5);
      auto connecting = s->pool.get(*address, deadline);
      Result<std::shared_ptr<net::RpcClient>> rpc = co_await std::move(connecting);
      if (!rpc.ok()) co_return node->rpc_address + ": " + rpc.status().to_string();
      craq::StatChunkRequest request{.chain = model.chain, .chunk = model.ref};
      auto asking = (*rpc)->call<craq::StorageService::stat_chunk>(request, {deadline});
      Result<craq::StatChunkResponse> stat = co_await std::move(asking);
      std::string name =
          "target " + std::to_string(member.target) + " chunk " + std::to_string(model.ref.index);
      if (!stat.ok()) co_return name + ": stat_chunk " + stat.status().to_string();
      if (!stat->meta) co_return name + ": missing";
      const craq::ChunkState& state = stat->meta->state;
      if (state.length_bytes != model.bytes.size() || state.checksum != crc) {
        co_return name + ": length/crc " + std::to_string(state.length_bytes) + "/" +
            std::to_string(state.checksum) + ", expected " + std::to_string(model.bytes.size()) +
            "/" + std::to_string(crc);
      }
      if (stat->pending_version != 0) co_return name + ": a pending version is left";
      if (version && *version != state.version) co_return name + ": versions differ";
      version = state.version;
    }
  }
  co_return "";
}

// Opens the engine in dir (the process that served it has stopped), fscks it and reads
// each of the chunks the model puts on `chain` directly; "" when all is as the model says.
inline Task<std::string> verify_engine(std::string dir, const WriteWorkload* w,
                                       craq::ChainId chain) {
  chunk::ChunkEngineConfig config;
  config.reserve_bytes = 0;
  auto opening = chunk::ChunkEngine::open(dir, config);
  Result<std::unique_ptr<chunk::ChunkEngine>> engine = co_await std::move(opening);
  if (!engine.ok()) co_return dir + ": open " + engine.status().to_string();
  std::string problem;
  auto checking = (*engine)->fsck();
  Result<chunk::FsckReport> report = co_await std::move(checking);
  if (!report.ok()) {
    problem = dir + ": fsck " + report.status().to_string();
  } else if (!report->ok()) {
    problem = dir + ": fsck found problems: " + report->to_string();
  }
  std::vector<std::byte> buffer(w->options().chunk_size_bytes);
  uint64_t ours = 0;
  for (const ChunkModel& model : w->chunks()) {
    if (!problem.empty()) break;
    if (model.chain != chain) continue;
    ++ours;
    chunk::ChunkId id{.inode = model.ref.inode, .index = model.ref.index};
    auto reading = (*engine)->read(id, 0, buffer);
    Result<size_t> n = co_await std::move(reading);
    if (!n.ok()) {
      problem = dir + " chunk " + std::to_string(model.ref.index) + ": " + n.status().to_string();
      break;
    }
    problem = compare_chunk(model, std::span(buffer).first(*n), dir);
  }
  if (problem.empty() && report.ok() && report->chunks != ours) {
    problem =
        dir + ": " + std::to_string(report->chunks) + " chunks, expected " + std::to_string(ours);
  }
  auto closing = (*engine)->close();
  Status closed = co_await std::move(closing);
  if (problem.empty() && !closed.ok()) problem = dir + ": close " + closed.to_string();
  co_return problem;
}

// Runs task on a fresh io_uring executor on the calling thread (the session tasks need one).
template <class T>
T run_on_executor(Task<T> task) {
  std::unique_ptr<Executor> executor = Executor::create_uring();
  return executor->block_on(std::move(task));
}

struct SessionConfig {
  std::string token_file;
  std::string mgmtd;  // "ip:port"
  size_t chains = 0;
};

inline std::unique_ptr<ClientSession> make_session(const SessionConfig& config) {
  Result<net::ClusterToken> token = net::load_cluster_token(config.token_file);
  MICA_ASSERT(token.ok());
  std::vector<SocketAddress> mgmtd{SocketAddress::parse(config.mgmtd).value()};
  return std::make_unique<ClientSession>(std::move(*token), std::move(mgmtd));
}

// A thread of its own streaming the workload's rounds until stop(); then it sends the
// writes still in doubt again until they are acknowledged (for up to kDrainTime). The
// destructor (a test that failed early) abandons them instead.
class StreamingWriter {
 public:
  static constexpr std::chrono::seconds kDrainTime{30};
  StreamingWriter(SessionConfig config, WriteWorkload* workload)
      : config_(std::move(config)), workload_(workload) {
    thread_ = std::thread([this] { run_on_executor(body(this)); });
  }
  ~StreamingWriter() {
    abandon_.store(true);
    stop();
  }
  // Ends the stream and joins the thread; "" when every write was acknowledged in the end.
  std::string stop() {
    stopping_.store(true);
    if (thread_.joinable()) thread_.join();
    return error_;
  }
  // Waits until `more` writes beyond what was acknowledged at the call were acknowledged.
  bool wait_for_acks(uint64_t more, std::chrono::milliseconds timeout) {
    uint64_t target = workload_->acked.load() + more;
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (workload_->acked.load() >= target) return true;
      if (done_.load()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

 private:
  static Task<void> body(StreamingWriter* self) {
    std::unique_ptr<ClientSession> session = make_session(self->config_);
    auto opening = open_session(session.get(), self->config_.chains, std::chrono::seconds(10));
    Status opened = co_await std::move(opening);
    if (!opened.ok()) self->error_ = "routing: " + opened.to_string();
    while (opened.ok() && !self->stopping_.load()) {
      auto round = self->workload_->round(&session->client);
      co_await std::move(round);
    }
    auto until = std::chrono::steady_clock::now() + kDrainTime;
    while (opened.ok() && !self->abandon_.load() && self->workload_->any_pending() &&
           std::chrono::steady_clock::now() < until) {
      auto round = self->workload_->round(&session->client);
      co_await std::move(round);
    }
    if (opened.ok() && self->workload_->any_pending()) {
      self->error_ =
          "writes stayed unacknowledged after the cluster healed: " + self->workload_->last_error();
    }
    auto closing = close_session(session.get());
    co_await std::move(closing);
    self->done_.store(true);
  }

  SessionConfig config_;
  WriteWorkload* workload_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> abandon_{false};
  std::atomic<bool> done_{false};
  std::string error_;
  std::thread thread_;
};

// Reads every chunk back through the client and compares every replica's state of it;
// "" when the cluster holds exactly the model.
inline Task<std::string> verify_online(SessionConfig config, const WriteWorkload* w) {
  std::unique_ptr<ClientSession> session = make_session(config);
  auto opening = open_session(session.get(), config.chains, std::chrono::seconds(10));
  Status opened = co_await std::move(opening);
  std::string problem = opened.ok() ? "" : "routing: " + opened.to_string();
  if (problem.empty()) {
    auto reading = verify_reads(session.get(), w);
    problem = co_await std::move(reading);
  }
  if (problem.empty()) {
    auto comparing = verify_replica_states(session.get(), w);
    problem = co_await std::move(comparing);
  }
  auto closing = close_session(session.get());
  co_await std::move(closing);
  co_return problem;
}

// verify_engine for every (directory, chain) pair; the first problem, or "".
inline Task<std::string> verify_engines(std::vector<std::pair<std::string, craq::ChainId>> dirs,
                                        const WriteWorkload* w) {
  for (const auto& [dir, chain] : dirs) {
    auto checking = verify_engine(dir, w, chain);
    std::string problem = co_await std::move(checking);
    if (!problem.empty()) co_return problem;
  }
  co_return "";
}

}  // namespace mica::testing
