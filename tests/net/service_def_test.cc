// Declared services (net/service_def.h): one declaration drives both the server's method
// table and the client's stub, and whatever does not match it fails to compile.
#include <gtest/gtest.h>

#include "rpc_harness.h"

namespace mica::net::testing {
namespace {

using namespace std::chrono_literals;

// ---- compile time: bindings and calls that do not match the declaration ----

struct MiniApi {
  static constexpr ServiceId kId = 30;
  static constexpr Method<kId, 1, EchoRequest, EchoResponse> echo{};
  static constexpr Method<kId, 2, SleepRequest, Empty> sleep{};
  MICA_SERVICE(MiniApi, "mini", echo, sleep)
};

// Implementations with one thing wrong each; declared only, nothing calls them.
struct GoodImpl {
  Task<Result<EchoResponse>> echo(EchoRequest request, CallContext* context);
  Task<Result<Empty>> sleep(SleepRequest request, CallContext* context);
};
struct WrongRequestImpl {
  Task<Result<EchoResponse>> echo(SleepRequest request, CallContext* context);
  Task<Result<Empty>> sleep(SleepRequest request, CallContext* context);
};
struct WrongResponseImpl {
  Task<Result<EchoResponse>> echo(EchoRequest request, CallContext* context);
  Task<Result<EchoResponse>> sleep(SleepRequest request, CallContext* context);
};
struct MissingMethodImpl {
  Task<Result<EchoResponse>> echo(EchoRequest request, CallContext* context);
};
struct NoContextImpl {
  Task<Result<EchoResponse>> echo(EchoRequest request);
  Task<Result<Empty>> sleep(SleepRequest request, CallContext* context);
};
struct OverloadedImpl {  // which one would serve the method is not obvious: refused
  Task<Result<EchoResponse>> echo(EchoRequest request, CallContext* context);
  Task<Result<EchoResponse>> echo(SleepRequest request, CallContext* context);
  Task<Result<Empty>> sleep(SleepRequest request, CallContext* context);
};

static_assert(Implements<GoodImpl, MiniApi>);
static_assert(Implements<TestService, TestApi>);
static_assert(!Implements<WrongRequestImpl, MiniApi>);
static_assert(!Implements<WrongResponseImpl, MiniApi>);
static_assert(!Implements<MissingMethodImpl, MiniApi>);
static_assert(!Implements<NoContextImpl, MiniApi>);
static_assert(!Implements<OverloadedImpl, MiniApi>);
static_assert(!Implements<GoodImpl, TestApi>);  // right members, other service

// The client side: a method's request type is the only one its call accepts, and the
// response type comes from the declaration.
template <auto M, class Request>
concept ClientCalls = requires(RpcClient* client, Request request) {
  client->call<M>(request, CallOptions{});
};
template <class Request>
concept StubEchoes = requires(TestApi::Stub stub, Request request) {
  stub.echo(request);
};

static_assert(ClientCalls<TestApi::echo, EchoRequest>);
static_assert(!ClientCalls<TestApi::echo, SleepRequest>);
static_assert(!ClientCalls<TestApi::pull, EchoRequest>);
static_assert(StubEchoes<EchoRequest>);
static_assert(!StubEchoes<SleepRequest>);
static_assert(std::is_same_v<decltype(std::declval<TestApi::Stub>().sleep(SleepRequest{})),
                             Task<Result<Empty>>>);
static_assert(std::is_same_v<decltype(std::declval<HealthService::Stub>().ping(PingRequest{}, {})),
                             Task<Result<PingResponse>>>);

// Declarations the table builder refuses (written out by hand: MICA_SERVICE's Stub already
// refuses them where they are declared).
struct DuplicateIds {
  static constexpr ServiceId kId = 31;
  static constexpr std::string_view mica_service_name = "duplicate";
  static constexpr auto mica_methods() {
    return std::make_tuple(Method<kId, 1, EchoRequest, EchoResponse>{},
                           Method<kId, 1, SleepRequest, Empty>{});
  }
  static constexpr auto mica_method_names() { return std::array{"a", "b"}; }
};
struct ForeignMethod {
  static constexpr ServiceId kId = 32;
  static constexpr std::string_view mica_service_name = "foreign";
  static constexpr auto mica_methods() {
    return std::make_tuple(Method<kId, 1, EchoRequest, EchoResponse>{},
                           Method<TestApi::kId, 2, SleepRequest, Empty>{});
  }
  static constexpr auto mica_method_names() { return std::array{"a", "b"}; }
};
static_assert(ServiceDef<DuplicateIds> && ServiceDef<ForeignMethod>);
static_assert(!detail::service_well_formed<DuplicateIds>());
static_assert(!detail::service_well_formed<ForeignMethod>());
static_assert(detail::service_well_formed<TestApi>());
static_assert(detail::service_well_formed<HealthService>());

TEST(ServiceDef, BindingsAndCallsThatDoNotMatchTheDeclarationAreRejected) {
  // The static_asserts above are the test; these repeat them where a test report shows them.
  EXPECT_TRUE((Implements<GoodImpl, MiniApi>));
  EXPECT_FALSE((Implements<WrongRequestImpl, MiniApi>));
  EXPECT_FALSE((ClientCalls<TestApi::echo, SleepRequest>));
  EXPECT_FALSE(detail::service_well_formed<DuplicateIds>());
}

// A later version of TestApi: the same methods, ids and messages, plus one (with an id
// well past TestApi's, so TestApi can still grow).
struct TestApiV2 {
  static constexpr ServiceId kId = TestApi::kId;
  static constexpr Method<kId, 1, EchoRequest, EchoResponse> echo{};
  static constexpr Method<kId, 2, SleepRequest, Empty> sleep{};
  static constexpr Method<kId, 3, FailRequest, Empty> fail{};
  static constexpr Method<kId, 4, BulkRequest, BulkResponse> pull{};
  static constexpr Method<kId, 5, BulkRequest, BulkResponse> push{};
  static constexpr Method<kId, 100, EchoRequest, EchoResponse> shout{};
  MICA_SERVICE(TestApiV2, "test", echo, sleep, fail, pull, push, shout)
};

TEST(ServiceDef, TheServerTableComesFromTheDeclaration) {
  TestService impl;
  Service& table = impl.service();
  EXPECT_EQ(table.id(), TestApi::kId);
  EXPECT_EQ(table.name(), "test");
  const MethodEntry* pull = table.find(TestApi::pull.kId);
  ASSERT_NE(pull, nullptr);
  EXPECT_EQ(pull->name, "pull");
  EXPECT_EQ(pull->object, &impl);
  for (MethodId id = 1; id <= 5; ++id) EXPECT_NE(table.find(id), nullptr) << id;
  EXPECT_EQ(table.find(0), nullptr);
  EXPECT_EQ(table.find(TestApiV2::shout.kId), nullptr);
}

// ---- run time: the stub reaches the bound handlers ----

Task<Result<std::shared_ptr<RpcClient>>> connect(RpcEnv* env) {
  auto connecting =
      RpcClient::connect(env->client_transport, env->server_address, deadline_after(5s));
  co_return co_await std::move(connecting);
}

Task<void> stub_case(RpcEnv* env) {
  auto c = co_await connect(env);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) co_return;
  TestApi::Stub test(c->get());
  auto echoing = test.echo(EchoRequest{"through the stub"});
  Result<EchoResponse> echoed = co_await std::move(echoing);
  EXPECT_TRUE(echoed.ok()) << echoed.status();
  if (echoed.ok()) {
    EXPECT_EQ(echoed->text, "through the stub");
  }
  FailRequest failure{static_cast<uint16_t>(StatusCode::kNoSpace), "full"};
  auto failing = test.fail(failure, CallOptions{deadline_after(5s)});
  Result<Empty> failed = co_await std::move(failing);
  EXPECT_EQ(failed.status().code(), StatusCode::kNoSpace);
  // The built-in service is declared the same way.
  auto pinging = HealthService::Stub(c->get()).ping(PingRequest{77});
  Result<PingResponse> pong = co_await std::move(pinging);
  EXPECT_TRUE(pong.ok()) << pong.status();
  if (pong.ok()) {
    EXPECT_EQ(pong->nonce, 77u);
    EXPECT_EQ(pong->connections, 1u);
  }
  co_await (*c)->close();
}

TEST(ServiceDef, StubCallsReachTheBoundHandlers) {
  make_tcp_harness()->run(stub_case, {});
}

Task<void> older_server_case(RpcEnv* env) {
  auto c = co_await connect(env);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) co_return;
  TestApiV2::Stub test(c->get());
  auto shouting = test.shout(EchoRequest{"anyone?"});
  Result<EchoResponse> shouted = co_await std::move(shouting);
  EXPECT_EQ(shouted.status().code(), StatusCode::kNotFound) << shouted.status();
  // The methods both versions know still work, on the same connection.
  auto echoing = test.echo(EchoRequest{"old method"});
  Result<EchoResponse> echoed = co_await std::move(echoing);
  EXPECT_TRUE(echoed.ok()) << echoed.status();
  if (echoed.ok()) {
    EXPECT_EQ(echoed->text, "old method");
  }
  co_await (*c)->close();
}

TEST(ServiceDef, MethodUnknownToAnOlderServerIsNotFound) {
  make_tcp_harness()->run(older_server_case, {});
}

}  // namespace
}  // namespace mica::net::testing
