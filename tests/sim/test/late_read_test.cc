// A read into the caller's registered region whose replica answers late cannot change the
// caller's buffer after the call returned (docs/craq.md, "Storage client": the fence). The world:
// mgmtd and three storage hosts as the storage_cluster scenario boots them
// (tests/sim/storage_cluster.h), one chain table of three replicas, and a client host. The
// way from one storage host to the client is cut one way: that replica gets the read and
// pushes its bytes, which wait in retransmission; the client's attempt times out and the
// read is served by another replica. Each read has its own registered buffer, which the
// test fills with a marker once the read returned; then the way heals, the late bytes
// arrive, and every buffer must still hold its marker. A few seconds of virtual time, well
// under a second of real time (Debug).
#include <gtest/gtest.h>

#include <algorithm>

#include "craq/mgmtd_client.h"
#include "craq/storage_client.h"
#include "net/tcp_transport.h"
#include "tests/sim/storage_cluster.h"

namespace mica::sim {
namespace {

using namespace std::chrono_literals;
using craq::ChainInfo;
using craq::RoutingSnapshot;

constexpr uint32_t kReadBytes = 4096;
constexpr uint32_t kReads = kClusterReplicas;  // consecutive reads start at each replica once
constexpr auto kMarker = std::byte{0xEE};
constexpr auto kData = std::byte{0x5A};
constexpr Duration kAttemptTimeout = 300ms;
constexpr Duration kSetupMax = 10s;

Task<bool> pause(Duration d) {
  SleepAwaiter sleeping = sleep_for(d);
  Status slept = co_await sleeping;
  co_return slept.ok();
}

bool full_strength(const RoutingSnapshot& routing) {
  for (const ChainInfo& chain : routing.chains) {
    if (chain.targets.size() != kClusterReplicas) return false;
    for (const craq::ChainTarget& member : chain.targets)
      if (member.state != craq::PublicState::kServing) return false;
  }
  return !routing.chains.empty();
}

// Registration of every host, then the chain table; its first chain.
Task<Result<craq::ChainId>> make_chain(Cluster* c, craq::MgmtdClient* mgmtd) {
  TimePoint limit = c->world->now() + kSetupMax;
  while (c->mgmtd == nullptr ||
         c->mgmtd->routing()->targets.size() != c->storage.size() * kTargetsPerHost) {
    if (c->world->now() >= limit) co_return Status(StatusCode::kTimedOut, "not registered");
    auto pausing = pause(20ms);
    if (!co_await std::move(pausing)) co_return Status(StatusCode::kCancelled, "cancelled");
  }
  craq::CreateChainTableRequest request{.replica_count = kClusterReplicas, .seed = 1};
  auto calling = mgmtd->call<craq::MgmtdService::create_chain_table>(request, deadline_after(2s));
  CO_TRY_ASSIGN(craq::CreateChainTableResponse created, co_await std::move(calling));
  if (created.chains.empty()) co_return Status(StatusCode::kInternal, "a table of no chains");
  while (!full_strength(*c->mgmtd->routing())) {
    if (c->world->now() >= limit) co_return Status(StatusCode::kTimedOut, "not serving");
    auto pausing = pause(20ms);
    if (!co_await std::move(pausing)) co_return Status(StatusCode::kCancelled, "cancelled");
  }
  co_return created.chains[0].id;
}

struct Outcome {
  Status setup;
  std::vector<Status> reads;
  std::vector<std::vector<std::byte>> buffers;  // as they are at the end
  uint64_t retries = 0;  // failed attempts of the reads (the late replica's among them)
};

uint64_t storage_client_retries() {
  return metrics()
      .counter("storage_client", "retries_total",
               "Failed attempts of storage client calls, retried.")
      .value();
}

Task<void> reads_with_a_late_replica(Cluster* c, craq::StorageClient* client,
                                     net::Transport* transport, craq::ChainId chain,
                                     SimHost* client_host, Outcome* out) {
  craq::ChunkRef chunk{.inode = 7, .index = 0};
  std::vector<std::byte> data(kReadBytes, kData);
  auto writing = client->write(chain, chunk, 0, data, kChunkBytes);
  Result<craq::ChunkState> written = co_await std::move(writing);
  if (!written.ok()) {
    out->setup = written.status();
    co_return;
  }
  out->buffers.assign(kReads, std::vector<std::byte>(kReadBytes));
  std::vector<std::unique_ptr<net::MemoryRegion>> regions;
  for (std::vector<std::byte>& buffer : out->buffers) {
    Result<std::unique_ptr<net::MemoryRegion>> region = transport->register_memory(buffer);
    if (!region.ok()) {
      out->setup = region.status();
      co_return;
    }
    regions.push_back(std::move(*region));
  }
  // The replica's answers to the client wait in retransmission from here.
  SimHost* late = c->storage[0].host;
  c->world->partition_one_way(*late, *client_host);
  uint64_t retries_before = storage_client_retries();
  for (uint32_t i = 0; i < kReads; ++i) {
    auto reading = client->read(chain, chunk, 0, out->buffers[i], deadline_after(5s),
                                regions[i].get());
    Result<uint32_t> read = co_await std::move(reading);
    out->reads.push_back(read.status());
    if (read.ok() && *read != kReadBytes)
      out->reads.back() = Status(StatusCode::kInternal, fmt::format("read {} bytes", *read));
    if (read.ok() && out->buffers[i] != data)
      out->reads.back() = Status(StatusCode::kInternal, "the read brought other bytes");
    // The caller reuses its buffer once the call returned.
    std::fill(out->buffers[i].begin(), out->buffers[i].end(), kMarker);
  }
  out->retries = storage_client_retries() - retries_before;
  c->world->heal_one_way(*late, *client_host);
  auto waiting = pause(5s);  // the late bytes' retransmissions arrive meanwhile
  co_await std::move(waiting);
  for (std::unique_ptr<net::MemoryRegion>& region : regions) {
    auto deregistering = region->deregister(deadline_after(1s));
    co_await std::move(deregistering);
  }
}

Task<void> client_main(Cluster* c, SimHost* host, Outcome* out) {
  net::TcpTransport transport;
  net::ConnectionPool pool(&transport);
  craq::MgmtdClient mgmtd(&pool, {c->mgmtd_address});
  auto making = make_chain(c, &mgmtd);
  Result<craq::ChainId> chain = co_await std::move(making);
  if (!chain.ok()) out->setup = chain.status();
  if (chain.ok()) {
    craq::RoutingClient routing(&pool, cluster_routing_options(c));
    routing.start();
    craq::StorageClientOptions options{.client_id = 1,
                                       .call_timeout = 5s,
                                       .attempt_timeout = kAttemptTimeout,
                                       .read_choice = craq::ReadChoice::kSpread};
    craq::StorageClient client(&pool, &transport, &routing, options);
    auto waiting = routing.wait_until(full_strength, deadline_after(kSetupMax));
    Result<craq::RoutingClient::SnapshotPtr> routed = co_await std::move(waiting);
    if (!routed.ok()) out->setup = routed.status();
    if (routed.ok()) {
      auto running = reads_with_a_late_replica(c, &client, &transport, *chain, host, out);
      co_await std::move(running);
    }
    Task<void> stopping = routing.stop();
    co_await std::move(stopping);
  }
  c->done = true;
  Task<void> closing = pool.close();
  co_await std::move(closing);
}

TEST(StorageClientLateReply, AReplicasLatePushNeverChangesTheCallersRegisteredBuffer) {
  ScenarioResult result;
  Cluster c;
  c.result = &result;
  SimConfig config;
  config.net.retransmit_delay = 100ms;
  config.net.retransmit_delay_max = 400ms;
  SimWorld world(1, config);
  c.world = &world;
  c.start = world.now();
  c.mgmtd_host = &world.add_host("mgmtd", cluster_mgmtd_boot(&c));
  c.mgmtd_host->disk().make_durable_directories("/mgmtd");
  c.mgmtd_address = c.mgmtd_host->address(kClusterMgmtdPort);
  c.storage.resize(kStorageHostsMin);
  for (uint32_t i = 0; i < kStorageHostsMin; ++i) {
    SimHost& host = world.add_host(fmt::format("storage-{}", i + 1), storage_boot(&c, i));
    host.disk().make_durable_directories("/node");
    for (uint32_t t = 0; t < kTargetsPerHost; ++t)
      host.disk().make_durable_directories(fmt::format("/t{}", t));
    c.storage[i].host = &host;
  }
  SimHost& client = world.add_host("client");
  Outcome out;
  world.run(client, client_main(&c, &client, &out));
  ASSERT_TRUE(out.setup.ok()) << out.setup;
  ASSERT_EQ(out.reads.size(), kReads);
  // The late replica's attempt timed out and was retried (else nothing was tested).
  EXPECT_GE(out.retries, 1u);
  for (uint32_t i = 0; i < kReads; ++i) {
    EXPECT_TRUE(out.reads[i].ok()) << "read " << i << ": " << out.reads[i];
    EXPECT_TRUE(std::all_of(out.buffers[i].begin(), out.buffers[i].end(),
                            [](std::byte b) { return b == kMarker; }))
        << "read " << i << ": a late push changed the buffer after the call returned";
  }
  EXPECT_TRUE(result.ok()) << result.failure;
}

}  // namespace
}  // namespace mica::sim
