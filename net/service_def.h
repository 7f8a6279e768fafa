// Service declarations: one struct per service gives the server's method table and a typed
// client stub, so a wrong method id or message type fails to compile.
//
//   struct StorageService {
//     static constexpr ServiceId kId = 10;
//     static constexpr Method<kId, 1, WriteRequest, WriteResponse> write{};
//     static constexpr Method<kId, 2, ReadRequest, ReadResponse> read{};
//     MICA_SERVICE(StorageService, "storage", write, read)
//   };
//
// Server: `Service::bind<StorageService>(&impl)` (net/rpc_service.h) binds each method to
// the member of impl with the same name and exactly the declared types. Client:
// `StorageService::Stub storage(client); co_await storage.write(request, options)`, or
// `client->call<StorageService::write>(request, options)`; both return
// Task<Result<Response>>. A Stub is a view on an RpcClient (which must outlive the tasks it
// returns, not the stub); its methods are not coroutines, they return the client's task,
// so a temporary stub is fine. Ids are forever: add methods with new ids, never renumber or
// reuse one; messages grow by appended fields only. An older server answers a method it
// does not know with kNotFound. Declarations are types and constants only: any thread.
#pragma once

#include <array>
#include <string_view>
#include <tuple>
#include <utility>

#include "net/rpc_client.h"
#include "net/rpc_service.h"

// ---- one generic list macro: F(Type, name) for each name, SEP() between them ----

#define MICA_SV_COMMA() ,
#define MICA_SV_NONE()
#define MICA_SV_1(F, S, T, a) F(T, a)
#define MICA_SV_2(F, S, T, a, ...) F(T, a) S() MICA_SV_1(F, S, T, __VA_ARGS__)
#define MICA_SV_3(F, S, T, a, ...) F(T, a) S() MICA_SV_2(F, S, T, __VA_ARGS__)
#define MICA_SV_4(F, S, T, a, ...) F(T, a) S() MICA_SV_3(F, S, T, __VA_ARGS__)
#define MICA_SV_5(F, S, T, a, ...) F(T, a) S() MICA_SV_4(F, S, T, __VA_ARGS__)
#define MICA_SV_6(F, S, T, a, ...) F(T, a) S() MICA_SV_5(F, S, T, __VA_ARGS__)
#define MICA_SV_7(F, S, T, a, ...) F(T, a) S() MICA_SV_6(F, S, T, __VA_ARGS__)
#define MICA_SV_8(F, S, T, a, ...) F(T, a) S() MICA_SV_7(F, S, T, __VA_ARGS__)
#define MICA_SV_9(F, S, T, a, ...) F(T, a) S() MICA_SV_8(F, S, T, __VA_ARGS__)
#define MICA_SV_10(F, S, T, a, ...) F(T, a) S() MICA_SV_9(F, S, T, __VA_ARGS__)
#define MICA_SV_11(F, S, T, a, ...) F(T, a) S() MICA_SV_10(F, S, T, __VA_ARGS__)
#define MICA_SV_12(F, S, T, a, ...) F(T, a) S() MICA_SV_11(F, S, T, __VA_ARGS__)
#define MICA_SV_13(F, S, T, a, ...) F(T, a) S() MICA_SV_12(F, S, T, __VA_ARGS__)
#define MICA_SV_14(F, S, T, a, ...) F(T, a) S() MICA_SV_13(F, S, T, __VA_ARGS__)
#define MICA_SV_15(F, S, T, a, ...) F(T, a) S() MICA_SV_14(F, S, T, __VA_ARGS__)
#define MICA_SV_16(F, S, T, a, ...) F(T, a) S() MICA_SV_15(F, S, T, __VA_ARGS__)
#define MICA_SV_17(F, S, T, a, ...) F(T, a) S() MICA_SV_16(F, S, T, __VA_ARGS__)
#define MICA_SV_18(F, S, T, a, ...) F(T, a) S() MICA_SV_17(F, S, T, __VA_ARGS__)
#define MICA_SV_19(F, S, T, a, ...) F(T, a) S() MICA_SV_18(F, S, T, __VA_ARGS__)
#define MICA_SV_20(F, S, T, a, ...) F(T, a) S() MICA_SV_19(F, S, T, __VA_ARGS__)
#define MICA_SV_21(F, S, T, a, ...) F(T, a) S() MICA_SV_20(F, S, T, __VA_ARGS__)
#define MICA_SV_22(F, S, T, a, ...) F(T, a) S() MICA_SV_21(F, S, T, __VA_ARGS__)
#define MICA_SV_23(F, S, T, a, ...) F(T, a) S() MICA_SV_22(F, S, T, __VA_ARGS__)
#define MICA_SV_24(F, S, T, a, ...) F(T, a) S() MICA_SV_23(F, S, T, __VA_ARGS__)
#define MICA_SV_PICK(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, \
    _13, _14, _15, _16, _17, _18, _19, _20, _21, _22, _23, _24, NAME, ...) \
  NAME
#define MICA_SV_EACH(F, S, T, ...) \
  MICA_SV_PICK(__VA_ARGS__, MICA_SV_24, MICA_SV_23, MICA_SV_22, MICA_SV_21, MICA_SV_20, \
    MICA_SV_19, \
    MICA_SV_18, MICA_SV_17, MICA_SV_16, MICA_SV_15, MICA_SV_14, MICA_SV_13, \
    MICA_SV_12, MICA_SV_11, MICA_SV_10, MICA_SV_9, MICA_SV_8, MICA_SV_7, \
    MICA_SV_6, MICA_SV_5, MICA_SV_4, MICA_SV_3, MICA_SV_2, MICA_SV_1) \
  (F, S, T, __VA_ARGS__)

// ---- what MICA_SERVICE generates per method ----

#define MICA_SV_DESCRIPTOR(T, m) T::m
#define MICA_SV_NAME(T, m) std::string_view(#m)
#define MICA_SV_HANDLER(T, m) &Impl::m
// A stub method returns the client's task (no coroutine of its own: nothing to miscompile).
#define MICA_SV_STUB_METHOD(T, m)                                                          \
  ::mica::Task<::mica::Result<::mica::net::ResponseOf<T::m>>> m(                           \
      ::mica::net::RequestOf<T::m> request, ::mica::net::CallOptions options = {}) const { \
    return client_->call<T::m>(std::move(request), options);                               \
  }

// Declares the method list of service Type (up to 24 methods; each a Method<kId, ...>
// static constexpr member declared above it, in any order). Gives the table the server
// binds (mica_methods, mica_method_names, mica_handlers<Impl>) and Type::Stub.
#define MICA_SERVICE(Type, name, ...)                                                           \
  static constexpr std::string_view mica_service_name = name;                                   \
  static constexpr auto mica_methods() {                                                        \
    return std::make_tuple(MICA_SV_EACH(MICA_SV_DESCRIPTOR, MICA_SV_COMMA, Type, __VA_ARGS__)); \
  }                                                                                             \
  static constexpr auto mica_method_names() {                                                   \
    return std::array{MICA_SV_EACH(MICA_SV_NAME, MICA_SV_COMMA, Type, __VA_ARGS__)};            \
  }                                                                                             \
  /* Fails to substitute (no hard error) when Impl lacks one of the members. */                 \
  template <class Impl>                                                                         \
  static constexpr decltype(std::make_tuple(                                                    \
      MICA_SV_EACH(MICA_SV_HANDLER, MICA_SV_COMMA, Type, __VA_ARGS__)))                         \
  mica_handlers() {                                                                             \
    return std::make_tuple(MICA_SV_EACH(MICA_SV_HANDLER, MICA_SV_COMMA, Type, __VA_ARGS__));    \
  }                                                                                             \
  class Stub {                                                                                  \
   public:                                                                                      \
    explicit Stub(::mica::net::RpcClient* client) : client_(client) {                           \
      static_assert(::mica::net::detail::service_well_formed<Type>(),                           \
                    "a service's methods must carry its kId and distinct method ids");          \
    }                                                                                           \
    MICA_SV_EACH(MICA_SV_STUB_METHOD, MICA_SV_NONE, Type, __VA_ARGS__)                          \
                                                                                                \
   private:                                                                                     \
    ::mica::net::RpcClient* client_;                                                            \
  };

namespace mica::net {

// The built-in health service, present on every RpcServer.
struct HealthService {
  static constexpr ServiceId kId = 0;
  static constexpr Method<kId, 1, PingRequest, PingResponse> ping{};
  MICA_SERVICE(HealthService, "health", ping)
};

}  // namespace mica::net
