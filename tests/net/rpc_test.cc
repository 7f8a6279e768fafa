// The RPC suite, run over every transport harness (see rpc_harness.h).
#include <gtest/gtest.h>

#include "async/crc32c.h"
#include "rpc_harness.h"

namespace mica::net::testing {
namespace {

using namespace std::chrono_literals;

Task<Result<std::shared_ptr<RpcClient>>> connect(RpcEnv* env) {
  auto connecting =
      RpcClient::connect(env->client_transport, env->server_address, deadline_after(5s));
  co_return co_await std::move(connecting);
}

Task<Result<EchoResponse>> echo(RpcClient* client, std::string text, CallOptions options) {
  auto call = TestApi::Stub(client).echo(EchoRequest{std::move(text)}, options);
  co_return co_await std::move(call);
}

Task<Status> sleep_call(RpcClient* client, uint32_t ms, CallOptions options) {
  auto call = TestApi::Stub(client).sleep(SleepRequest{ms}, options);
  Result<Empty> r = co_await std::move(call);
  co_return r.status();
}

// ---- cases ----

Task<void> echo_case(RpcEnv* env) {
  auto c = co_await connect(env);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) co_return;
  RpcClient* client = c->get();
  Result<EchoResponse> r = co_await echo(client, "hello", {});
  EXPECT_TRUE(r.ok()) << r.status();
  if (r.ok()) {
    EXPECT_EQ(r->text, "hello");
  }
  Result<PingResponse> pong = co_await client->ping(99, {});
  EXPECT_TRUE(pong.ok());
  if (pong.ok()) {
    EXPECT_EQ(pong->nonce, 99u);
  }
  co_await client->close();
}

Task<void> echo_checked(RpcClient* client, int i, int* correct) {
  std::string text = fmt::format("message {} {}", i, std::string(i % 300, 'x'));
  Result<EchoResponse> r = co_await echo(client, text, {});
  if (r.ok() && r->text == text) ++*correct;
}

Task<void> concurrent_case(RpcEnv* env) {
  auto c = co_await connect(env);
  EXPECT_TRUE(c.ok());
  if (!c.ok()) co_return;
  int correct = 0;
  TaskScope scope;
  for (int i = 0; i < 200; ++i) scope.spawn(echo_checked(c->get(), i, &correct));
  co_await scope.join();
  EXPECT_EQ(correct, 200);
  co_await (*c)->close();
}

Task<void> not_found_case(RpcEnv* env) {
  auto c = co_await connect(env);
  EXPECT_TRUE(c.ok());
  if (!c.ok()) co_return;
  auto no_service = (*c)->call_raw(99, 1, {}, {});
  Result<std::vector<std::byte>> a = co_await std::move(no_service);
  EXPECT_EQ(a.status().code(), StatusCode::kNotFound);
  auto no_method = (*c)->call_raw(TestApi::kId, 99, {}, {});
  Result<std::vector<std::byte>> b = co_await std::move(no_method);
  EXPECT_EQ(b.status().code(), StatusCode::kNotFound);
  // A request body that does not decode is refused, and the connection stays usable.
  std::vector<std::byte> junk(3, std::byte{0xff});
  auto bad_body = (*c)->call_raw(TestApi::kId, TestApi::echo.kId, junk, {});
  Result<std::vector<std::byte>> d = co_await std::move(bad_body);
  EXPECT_EQ(d.status().code(), StatusCode::kProtocolError);
  Result<EchoResponse> still = co_await echo(c->get(), "still here", {});
  EXPECT_TRUE(still.ok());
  co_await (*c)->close();
}

Task<void> error_case(RpcEnv* env) {
  auto c = co_await connect(env);
  EXPECT_TRUE(c.ok());
  if (!c.ok()) co_return;
  FailRequest request{static_cast<uint16_t>(StatusCode::kNoSpace), "target full"};
  auto call = (*c)->call<TestApi::fail>(request, {});
  Result<Empty> r = co_await std::move(call);
  EXPECT_EQ(r.status().code(), StatusCode::kNoSpace);
  EXPECT_EQ(r.status().message(), "target full");
  // A code outside the closed list (as a newer server might send) fails the call with
  // kProtocolError naming the number; the connection carries on.
  FailRequest unknown{999, "from the future"};
  auto odd = (*c)->call<TestApi::fail>(unknown, {});
  Result<Empty> strange = co_await std::move(odd);
  EXPECT_EQ(strange.status().code(), StatusCode::kProtocolError);
  EXPECT_NE(strange.status().message().find("unknown status code 999"), std::string::npos)
      << strange.status();
  EXPECT_TRUE((*c)->healthy());
  co_await (*c)->close();
}

Task<void> deadline_case(RpcEnv* env) {
  auto c = co_await connect(env);
  EXPECT_TRUE(c.ok());
  if (!c.ok()) co_return;
  TimePoint start = Executor::current()->now();
  Status s = co_await sleep_call(c->get(), 10'000, CallOptions{deadline_after(50ms)});
  EXPECT_EQ(s.code(), StatusCode::kTimedOut);
  EXPECT_LT(Executor::current()->now() - start, 2s);
  // The server enforced the same budget: its handler ended, it did not sleep 10 s.
  Status settle = co_await sleep_for(200ms);
  EXPECT_TRUE(settle.ok());
  EXPECT_EQ(env->service->stats.running, 0);
  EXPECT_EQ(env->service->stats.finished, 0);
  EXPECT_EQ(env->service->stats.cancelled + env->service->stats.timed_out, 1);
  co_await (*c)->close();
}

Task<void> default_timeout_case(RpcEnv* env) {
  RpcClientOptions options;
  options.default_timeout = 50ms;
  auto connecting =
      RpcClient::connect(env->client_transport, env->server_address, deadline_after(5s), options);
  Result<std::shared_ptr<RpcClient>> c = co_await std::move(connecting);
  EXPECT_TRUE(c.ok());
  if (!c.ok()) co_return;
  TimePoint start = Executor::current()->now();
  Status s = co_await sleep_call(c->get(), 10'000, {});  // names no deadline
  EXPECT_EQ(s.code(), StatusCode::kTimedOut);
  EXPECT_LT(Executor::current()->now() - start, 2s);
  co_await (*c)->close();
}

Task<void> cancel_after(TaskScope* scope, Duration d) {
  Status s = co_await sleep_for(d);
  EXPECT_TRUE(s.ok());
  scope->cancel();
}

Task<void> sleep_expecting_cancel(RpcClient* client) {
  Status s = co_await sleep_call(client, 10'000, {});
  EXPECT_EQ(s.code(), StatusCode::kCancelled);
}

Task<void> cancel_case(RpcEnv* env) {
  auto c = co_await connect(env);
  EXPECT_TRUE(c.ok());
  if (!c.ok()) co_return;
  TaskScope calls;
  calls.spawn(sleep_expecting_cancel(c->get()));
  TaskScope canceller;
  canceller.spawn(cancel_after(&calls, 30ms));
  co_await calls.join();
  co_await canceller.join();
  Status settle = co_await sleep_for(200ms);
  EXPECT_TRUE(settle.ok());
  // The cancel frame reached the server, which cancelled the handler.
  EXPECT_EQ(env->service->stats.cancelled, 1);
  EXPECT_EQ(env->service->stats.running, 0);
  co_await (*c)->close();
}

Task<void> sleep_ok(RpcClient* client, int* ok_count) {
  Status s = co_await sleep_call(client, 20, CallOptions{deadline_after(30s)});
  if (s.ok()) ++*ok_count;
}

Task<void> backpressure_case(RpcEnv* env) {
  auto c = co_await connect(env);
  EXPECT_TRUE(c.ok());
  if (!c.ok()) co_return;
  int ok_count = 0;
  TaskScope scope;
  for (int i = 0; i < 16; ++i) scope.spawn(sleep_ok(c->get(), &ok_count));
  co_await scope.join();
  EXPECT_EQ(ok_count, 16);
  EXPECT_LE(env->service->stats.running_max, 4);  // the per-connection limit of this case
  EXPECT_GE(env->service->stats.running_max, 2);  // but calls did overlap
  co_await (*c)->close();
}

Task<void> bulk_case(RpcEnv* env) {
  auto c = co_await connect(env);
  EXPECT_TRUE(c.ok());
  if (!c.ok()) co_return;
  std::vector<std::byte> memory = bulk_pattern(3 << 20, 5);
  auto region = env->client_transport->register_memory(memory);
  EXPECT_TRUE(region.ok());
  // Pull 1 MiB from an offset: the server reads our registered bytes.
  RemoteBuffer slice = (*region)->remote(4096, 1 << 20);
  TestApi::Stub test(c->get());
  auto pull = test.pull(BulkRequest{slice, 0});
  Result<BulkResponse> pulled = co_await std::move(pull);
  EXPECT_TRUE(pulled.ok()) << pulled.status();
  if (pulled.ok()) {
    EXPECT_EQ(pulled->crc, crc32c(memory.data() + 4096, 1 << 20));
  }
  // Push 2 MiB: the server writes into our registered bytes.
  RemoteBuffer target = (*region)->remote(1 << 20, 2 << 20);
  auto push = test.push(BulkRequest{target, 9});
  Result<BulkResponse> pushed = co_await std::move(push);
  EXPECT_TRUE(pushed.ok()) << pushed.status();
  std::vector<std::byte> expected = bulk_pattern(2 << 20, 9);
  EXPECT_EQ(std::memcmp(memory.data() + (1 << 20), expected.data(), expected.size()), 0);
  // A wrong key and a range past the region are refused by our side, and change nothing.
  // Over RDMA the refusal is a failed work completion that also ends the connection, so
  // each probe then needs a new one.
  RemoteBuffer wrong_key = slice;
  wrong_key.key ^= 1;
  auto bad_key = test.push(BulkRequest{wrong_key, 1});
  Result<BulkResponse> refused = co_await std::move(bad_key);
  EXPECT_FALSE(refused.ok());
  if (!env->refused_bulk_fails_connection) {
    EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  } else {
    co_await (*c)->close();
    c = co_await connect(env);
    EXPECT_TRUE(c.ok());
    if (!c.ok()) co_return;
  }
  RemoteBuffer too_long = (*region)->remote(0, 4096);
  too_long.offset = (3 << 20) - 100;
  auto bad_range = TestApi::Stub(c->get()).pull(BulkRequest{too_long, 0});
  Result<BulkResponse> out_of_range = co_await std::move(bad_range);
  EXPECT_FALSE(out_of_range.ok());
  if (!env->refused_bulk_fails_connection) {
    EXPECT_EQ(out_of_range.status().code(), StatusCode::kOutOfRange);
  }
  EXPECT_EQ(std::memcmp(memory.data() + (1 << 20), expected.data(), expected.size()), 0);
  region->reset();
  co_await (*c)->close();
}

Task<void> pool_case(RpcEnv* env) {
  ConnectionPool pool(env->client_transport);
  auto first = pool.get(env->server_address, deadline_after(5s));
  Result<std::shared_ptr<RpcClient>> a = co_await std::move(first);
  EXPECT_TRUE(a.ok());
  auto again = pool.get(env->server_address, deadline_after(5s));
  Result<std::shared_ptr<RpcClient>> b = co_await std::move(again);
  EXPECT_TRUE(b.ok());
  if (a.ok() && b.ok()) {
    EXPECT_EQ(a->get(), b->get());  // cached
  }
  EXPECT_EQ(pool.connect_attempts(), 1u);
  // Nobody listens on this port: attempts back off instead of hammering.
  SocketAddress nowhere = env->server_address;
  nowhere = SocketAddress::ipv4(
      ntohl(reinterpret_cast<const sockaddr_in*>(nowhere.get())->sin_addr.s_addr),
      static_cast<uint16_t>(env->server_address.port() + 1));
  auto failing = pool.get(nowhere, deadline_after(300ms));
  Result<std::shared_ptr<RpcClient>> none = co_await std::move(failing);
  EXPECT_FALSE(none.ok());
  // 10 + 20 + 40 + 80 + 160 ms of backoff fit in 300 ms: about 5 attempts, never dozens.
  EXPECT_LE(pool.connect_attempts(), 1u + 7u);
  EXPECT_GE(pool.connect_attempts(), 1u + 2u);
  co_await pool.close();
}

Task<void> shutdown_case(RpcEnv* env) {
  auto c = co_await connect(env);
  EXPECT_TRUE(c.ok());
  if (!c.ok()) co_return;
  // A call in flight when shutdown starts completes; the server then refuses new ones.
  int ok_count = 0;
  TaskScope scope;
  scope.spawn(sleep_ok(c->get(), &ok_count));
  // Until the handler runs (a fixed pause loses the race on a loaded machine with the
  // asynchronous fake verbs provider).
  for (int i = 0; i < 2000 && env->service->stats.running == 0; ++i) {
    Status settle = co_await sleep_for(1ms);
    EXPECT_TRUE(settle.ok());
  }
  auto stopping = env->server->shutdown();
  co_await std::move(stopping);
  co_await scope.join();
  EXPECT_EQ(ok_count, 1);
  Result<EchoResponse> after = co_await echo(c->get(), "late", CallOptions{deadline_after(1s)});
  EXPECT_FALSE(after.ok());
  co_await (*c)->close();
}

// ---- the suite, once per harness ----

struct Case {
  const char* name;
  RpcCase body;
  uint32_t per_connection_max = 128;
};

const Case kCases[] = {
    {"EchoAndPing", echo_case},
    {"ManyConcurrentCallsOnOneConnection", concurrent_case},
    {"UnknownServiceMethodOrBodyIsRefusedAndConnectionSurvives", not_found_case},
    {"HandlerStatusReachesTheCaller", error_case},
    {"DeadlineIsEnforcedOnBothSides", deadline_case},
    {"CallsWithoutDeadlineGetTheDefaultTimeout", default_timeout_case},
    {"CancelledCallCancelsTheServerHandler", cancel_case},
    {"InFlightLimitAppliesBackpressure", backpressure_case, 4},
    {"BulkPullAndPushCheckKeysAndBounds", bulk_case},
    {"PoolCachesAndBacksOff", pool_case},
    {"ShutdownDrainsInFlightCallsAndRefusesNewOnes", shutdown_case},
};

class RpcSuite : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(RpcSuite, Case) {
  auto [harness_name, index] = GetParam();
  std::unique_ptr<Harness> harness = make_harness(harness_name);
  const Case& c = kCases[index];
  int64_t frames = live_frames();
  RpcServerOptions options;
  options.in_flight_per_connection_max = c.per_connection_max;
  harness->run(c.body, options);
  EXPECT_EQ(live_frames(), frames) << "frame leak";
}

std::string case_name(const ::testing::TestParamInfo<std::tuple<std::string, int>>& info) {
  return std::get<0>(info.param) + "_" + kCases[std::get<1>(info.param)].name;
}

INSTANTIATE_TEST_SUITE_P(Transports, RpcSuite,
                         ::testing::Combine(::testing::Values("tcp", "sim", "rdma"),
                                            ::testing::Range(0, int(std::size(kCases)))),
                         case_name);

}  // namespace
}  // namespace mica::net::testing
