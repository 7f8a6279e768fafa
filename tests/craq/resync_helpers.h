// Helpers of the resync and scrub tests on top of the storage harness
// (tests/craq/storage_harness.h): one chain (id 1) of target 0 of chosen servers in chosen
// states, writes through a TestClient, and what a target's engine holds. One executor (the
// MICA_CO_TEST one); the Task helpers suspend.
#pragma once

#include <utility>
#include <vector>

#include "tests/craq/storage_harness.h"

namespace mica::craq::testing {

constexpr ChainId kChain = 1;

// One chain at chain_version: members (server index, state) in chain order.
inline RoutingSnapshot chain_routing(StorageHarness* h, uint64_t chain_version,
                                     const std::vector<std::pair<size_t, PublicState>>& members) {
  ChainSpec spec{.id = kChain, .version = chain_version};
  for (const auto& [server, state] : members)
    spec.members.push_back(ChainMember{StorageHarness::target_id(server), state});
  return h->routing({spec});
}

// Writes bytes at offset of chunk through server head, as a client would (a new request id
// each time).
inline Task<Status> write_chunk(TestClient* client, size_t head, uint64_t chain_version,
                                ChunkRef chunk, uint32_t offset, std::vector<std::byte> bytes) {
  static uint64_t next_request = 1;
  UpdateIO io = write_io(kChain, chain_version, chunk, offset, bytes, 7, next_request++);
  auto writing = client->write(head, io, bytes);
  CO_TRY(co_await std::move(writing));
  co_return Status();
}

// The committed bytes of a chunk in an engine (empty when it has none).
inline Task<std::vector<std::byte>> committed_bytes(chunk::ChunkEngine* engine, ChunkRef chunk) {
  chunk::ChunkId id{chunk.inode, chunk.index};
  Result<chunk::ChunkInfo> info = engine->stat(id);
  if (!info.ok()) co_return std::vector<std::byte>{};
  AlignedBuffer buffer(align_up(std::max<uint32_t>(info->length_bytes, 1), 4096));
  auto reading = engine->read(id, 0, std::span(buffer.data(), info->length_bytes));
  Result<size_t> read = co_await std::move(reading);
  EXPECT_TRUE(read.ok()) << read.status();
  if (!read.ok()) co_return std::vector<std::byte>{};
  co_return std::vector<std::byte>(buffer.data(), buffer.data() + *read);
}

// Every chunk's metadata in an engine, in id order.
inline std::vector<chunk::ChunkInfo> all_chunks(chunk::ChunkEngine* engine) {
  Result<std::vector<chunk::ChunkInfo>> page = engine->list(std::nullopt, 4096);
  EXPECT_TRUE(page.ok()) << page.status();
  return page.ok() ? *page : std::vector<chunk::ChunkInfo>{};
}

inline TargetProgress progress_of(StorageHarness* h, size_t server) {
  for (const TargetProgress& p : h->server(server)->progress().targets)
    if (p.target == StorageHarness::target_id(server)) return p;
  return {};
}

// Polls cond every 10 ms until it holds or 5 s passed.
template <class Cond>
Task<bool> eventually(Cond cond) {
  TimePoint deadline = Executor::current()->now() + std::chrono::seconds(5);
  while (!cond()) {
    if (Executor::current()->now() >= deadline) co_return false;
    SleepAwaiter pause = sleep_for(std::chrono::milliseconds(10));
    Status paused = co_await pause;
    if (!paused.ok()) co_return false;
  }
  co_return true;
}

}  // namespace mica::craq::testing
