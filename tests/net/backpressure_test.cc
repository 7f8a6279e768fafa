// Admission and one-sided transfers: when every slot is held by handlers that pull from
// and push to their caller, and more requests wait behind them, the transfers still
// complete (the server's reader never stops for a slot). Runs on every transport harness.
#include <gtest/gtest.h>

#include <cstring>

#include "async/crc32c.h"
#include "rpc_harness.h"

namespace mica::net::testing {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kPerConnectionSlots = 4;
constexpr uint32_t kConnections = 2;
constexpr uint32_t kServerSlots = kPerConnectionSlots * kConnections;
constexpr uint32_t kQueuedPerConnection = 4;
constexpr uint32_t kCallsPerConnection = kPerConnectionSlots + kQueuedPerConnection;
constexpr uint32_t kCalls = kCallsPerConnection * kConnections;
constexpr uint32_t kTransferBytes = 128 << 10;

struct CallOutcome {
  Status status;
  uint32_t crc = 0;
};

Task<void> exchange_call(RpcClient* client, ExchangeRequest request, CallOutcome* outcome) {
  auto call = client->call<TestApi::exchange>(request, CallOptions{deadline_after(5s)});
  Result<BulkResponse> r = co_await std::move(call);
  outcome->status = r.status();
  if (r.ok()) outcome->crc = r->crc;
}

// Waits (a bounded while) until the server holds every slot and queues the rest.
Task<void> wait_until_full(RpcEnv* env) {
  TimePoint give_up = deadline_after(5s);
  while (Executor::current()->now() < give_up && (env->server->in_flight() < kServerSlots ||
                                                  env->server->queued() < kCalls - kServerSlots)) {
    Status slept = co_await sleep_for(1ms);
    EXPECT_TRUE(slept.ok());
  }
}

Task<void> all_slots_busy_case(RpcEnv* env) {
  std::vector<std::shared_ptr<RpcClient>> clients;
  for (uint32_t i = 0; i < kConnections; ++i) {
    auto connecting =
        RpcClient::connect(env->client_transport, env->server_address, deadline_after(5s));
    Result<std::shared_ptr<RpcClient>> c = co_await std::move(connecting);
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok()) co_return;
    clients.push_back(*c);
  }
  // Every call pulls one slice of `memory` and has the server push into another.
  std::vector<std::byte> memory = bulk_pattern(size_t(kCalls) * 2 * kTransferBytes, 3);
  auto region = env->client_transport->register_memory(memory);
  EXPECT_TRUE(region.ok());
  if (!region.ok()) co_return;
  std::vector<CallOutcome> outcomes(kCalls);
  TaskScope calls;
  for (uint32_t i = 0; i < kCalls; ++i) {
    ExchangeRequest request{(*region)->remote(uint64_t(2 * i) * kTransferBytes, kTransferBytes),
                            (*region)->remote(uint64_t(2 * i + 1) * kTransferBytes, kTransferBytes),
                            static_cast<uint8_t>(i)};
    calls.spawn(exchange_call(clients[i % kConnections].get(), request, &outcomes[i]));
  }
  co_await wait_until_full(env);
  EXPECT_EQ(env->server->in_flight(), kServerSlots);
  EXPECT_EQ(env->server->queued(), kCalls - kServerSlots);
  EXPECT_EQ(env->service->stats.running, int(kServerSlots));
  env->service->exchange_open = true;  // now every handler reads from and writes to us
  co_await calls.join();
  for (uint32_t i = 0; i < kCalls; ++i) {
    EXPECT_TRUE(outcomes[i].status.ok()) << "call " << i << ": " << outcomes[i].status;
    const std::byte* pulled = memory.data() + size_t(2 * i) * kTransferBytes;
    EXPECT_EQ(outcomes[i].crc, crc32c(pulled, kTransferBytes)) << "call " << i;
    std::vector<std::byte> expected = bulk_pattern(kTransferBytes, static_cast<uint8_t>(i));
    EXPECT_EQ(std::memcmp(memory.data() + size_t(2 * i + 1) * kTransferBytes, expected.data(),
                          kTransferBytes),
              0)
        << "call " << i;
  }
  EXPECT_EQ(env->service->stats.running_max, int(kServerSlots));  // slots were never exceeded
  EXPECT_EQ(env->service->stats.finished, int(kCalls));
  region->reset();
  for (auto& client : clients) co_await client->close();
}

// ---- the queue's bounds ----

Task<void> sleep_call(RpcClient* client, uint32_t ms, TimePoint deadline, Status* out) {
  auto call = client->call<TestApi::sleep>(SleepRequest{ms}, CallOptions{deadline});
  Result<Empty> r = co_await std::move(call);
  *out = r.status();
}

Task<Result<std::shared_ptr<RpcClient>>> connect(RpcEnv* env) {
  auto connecting =
      RpcClient::connect(env->client_transport, env->server_address, deadline_after(5s));
  co_return co_await std::move(connecting);
}

// One slot and a queue of two: of five calls one runs, two wait, two are refused at once.
Task<void> queue_full_case(RpcEnv* env) {
  Result<std::shared_ptr<RpcClient>> c = co_await connect(env);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) co_return;
  std::vector<Status> outcomes(5);
  TaskScope calls;
  for (Status& outcome : outcomes)
    calls.spawn(sleep_call(c->get(), 100, deadline_after(5s), &outcome));
  co_await calls.join();
  int ok = 0, busy = 0;
  for (const Status& outcome : outcomes) {
    ok += outcome.ok();
    busy += outcome.code() == StatusCode::kBusy;
  }
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(busy, 2);
  EXPECT_EQ(env->service->stats.running_max, 1);
  co_await (*c)->close();
}

Task<void> echo_call(RpcClient* client, std::string text, Status* out) {
  auto call =
      client->call<TestApi::echo>(EchoRequest{std::move(text)}, CallOptions{deadline_after(5s)});
  Result<EchoResponse> r = co_await std::move(call);
  *out = r.status();
}

// The queue is bounded in bytes too: behind a running call, a 608-byte request waits in a
// 1 KiB queue and the next one is refused.
Task<void> queue_bytes_case(RpcEnv* env) {
  Result<std::shared_ptr<RpcClient>> c = co_await connect(env);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) co_return;
  Status running, waiting, refused;
  TaskScope calls;
  calls.spawn(sleep_call(c->get(), 200, deadline_after(5s), &running));
  Status settle = co_await sleep_for(20ms);
  EXPECT_TRUE(settle.ok());
  calls.spawn(echo_call(c->get(), std::string(600, 'a'), &waiting));
  calls.spawn(echo_call(c->get(), std::string(600, 'b'), &refused));
  co_await calls.join();
  EXPECT_TRUE(running.ok()) << running;
  EXPECT_TRUE(waiting.ok()) << waiting;
  EXPECT_EQ(refused.code(), StatusCode::kBusy) << refused;
  co_await (*c)->close();
}

// A queued request whose deadline passes leaves the queue and is answered kTimedOut,
// without waiting for the slot.
Task<void> queued_deadline_case(RpcEnv* env) {
  Result<std::shared_ptr<RpcClient>> c = co_await connect(env);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) co_return;
  Status first, second;
  TaskScope calls;
  calls.spawn(sleep_call(c->get(), 1000, deadline_after(5s), &first));
  Status settle = co_await sleep_for(20ms);
  EXPECT_TRUE(settle.ok());
  TimePoint start = Executor::current()->now();
  calls.spawn(sleep_call(c->get(), 10, deadline_after(100ms), &second));
  settle = co_await sleep_for(300ms);  // well past the second call's deadline
  EXPECT_TRUE(settle.ok());
  EXPECT_EQ(second.code(), StatusCode::kTimedOut);
  EXPECT_EQ(env->server->queued(), 0u);  // it left the queue; the first still runs
  EXPECT_EQ(env->server->in_flight(), 1u);
  co_await calls.join();
  EXPECT_TRUE(first.ok()) << first;
  EXPECT_LT(Executor::current()->now() - start, 2s);
  co_await (*c)->close();
}

class RpcBackPressure : public ::testing::TestWithParam<std::string> {};

// Each call has 5 s; on a server whose reader waits for slots they all end by that deadline.
TEST_P(RpcBackPressure, OneSidedTransfersCompleteWhenAllSlotsAreBusy) {
  std::unique_ptr<Harness> harness = make_harness(GetParam());
  int64_t frames = live_frames();
  RpcServerOptions options;
  options.in_flight_per_connection_max = kPerConnectionSlots;
  options.in_flight_max = kServerSlots;
  harness->run(all_slots_busy_case, options);
  EXPECT_EQ(live_frames(), frames) << "frame leak";
}

TEST_P(RpcBackPressure, RequestsBeyondTheQueueAreRefusedBusy) {
  RpcServerOptions options;
  options.in_flight_per_connection_max = 1;
  options.queued_per_connection_max = 2;
  make_harness(GetParam())->run(queue_full_case, options);
}

TEST_P(RpcBackPressure, RequestsBeyondTheQueuedBytesAreRefusedBusy) {
  RpcServerOptions options;
  options.in_flight_per_connection_max = 1;
  options.queued_bytes_per_connection_max = 1024;
  make_harness(GetParam())->run(queue_bytes_case, options);
}

TEST_P(RpcBackPressure, QueuedRequestLeavesTheQueueAtItsDeadline) {
  RpcServerOptions options;
  options.in_flight_per_connection_max = 1;
  make_harness(GetParam())->run(queued_deadline_case, options);
}

INSTANTIATE_TEST_SUITE_P(Transports, RpcBackPressure, ::testing::Values("tcp", "sim", "rdma"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace mica::net::testing
