// Services: a numbered table of methods handled by coroutines, bound from a declaration.
//
// A service is declared once (net/service_def.h): its id and one `Method<kId, id, Request,
// Response>` descriptor per method. `Service::bind<Def>(&impl)` builds the server's table
// from that declaration, requiring `impl` to have, for every method `m` of Def, a member
// `Task<Result<Response>> m(Request, CallContext*)` with exactly the declared types; a
// mismatch fails to compile (`Implements<Impl, Def>` says whether it would). Each entry is
// type-erased: the server hands raw payload bytes in and gets encoded bytes (or a Status)
// out. Within a server, service ids are unique; id 0 is the built-in health service. A
// Service and the object it is bound to must outlive the server they are added to.
// Handlers run on the server's executor. Pure table code: nothing here suspends.
#pragma once

#include <array>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "async/task.h"
#include "net/connection.h"
#include "net/serde.h"

namespace mica::net {

using ServiceId = uint16_t;
using MethodId = uint16_t;

// What a handler knows about its call.
struct CallContext {
  Connection* connection = nullptr;  // for read_from / write_to against the caller
  TimePoint deadline = kNoDeadline;  // the caller's budget, on this host's clock
  uint64_t request_id = 0;
};

// The descriptor of one method: where it lives on the wire and what it carries. An empty
// literal type, so a descriptor is used as a template argument (`client.call<Api::read>`).
// Ids are forever: a method keeps its id for the life of the protocol, a retired id is
// never reused, and its messages evolve only by appending fields.
template <ServiceId Service, MethodId Id, Message Req, Message Resp>
struct Method {
  static constexpr ServiceId kService = Service;
  static constexpr MethodId kId = Id;
  using Request = Req;
  using Response = Resp;
};

template <class T>
inline constexpr bool kIsMethod = false;
template <ServiceId S, MethodId I, class Req, class Resp>
inline constexpr bool kIsMethod<Method<S, I, Req, Resp>> = true;
template <class T>
concept RpcMethod = kIsMethod<std::remove_cv_t<T>>;

template <RpcMethod auto M>
using RequestOf = typename decltype(M)::Request;
template <RpcMethod auto M>
using ResponseOf = typename decltype(M)::Response;

// The member function type that implements method M on Impl.
template <class Impl, class M>
using HandlerOf = Task<Result<typename M::Response>> (Impl::*)(typename M::Request, CallContext*);

// What MICA_SERVICE (net/service_def.h) gives a declaration struct.
template <class Def>
concept ServiceDef = requires {
  { Def::kId } -> std::convertible_to<ServiceId>;
  { Def::mica_service_name } -> std::convertible_to<std::string_view>;
  Def::mica_methods();
  Def::mica_method_names();
};

namespace detail {

// Every method of Def belongs to Def's id, and no two share a method id.
template <ServiceDef Def>
constexpr bool service_well_formed() {
  return std::apply(
      [](auto... methods) {
        constexpr size_t n = sizeof...(methods);
        std::array<MethodId, n> ids{decltype(methods)::kId...};
        bool own = ((decltype(methods)::kService == Def::kId) && ...);
        for (size_t i = 0; i < n; ++i)
          for (size_t j = i + 1; j < n; ++j)
            if (ids[i] == ids[j]) return false;
        return own;
      },
      Def::mica_methods());
}

template <class Impl, class Def, size_t... I>
constexpr bool handlers_match(std::index_sequence<I...>) {
  using Methods = decltype(Def::mica_methods());
  using Handlers = decltype(Def::template mica_handlers<Impl>());
  return (std::is_same_v<std::tuple_element_t<I, Handlers>,
                         HandlerOf<Impl, std::tuple_element_t<I, Methods>>> &&
          ...);
}

// Substitution fails, without a hard error, when Impl lacks one of Def's members.
template <class Impl, class Def>
concept HasHandlers = requires {
  Def::template mica_handlers<Impl>();
};

template <class Def>
constexpr auto method_indices() {
  return std::make_index_sequence<std::tuple_size_v<decltype(Def::mica_methods())>>();
}

}  // namespace detail

// True when Impl has, for every method m of Def, a single member function
// `Task<Result<Response>> m(Request, CallContext*)` with m's exact types.
template <class Impl, class Def>
concept Implements = ServiceDef<Def> && detail::HasHandlers<Impl, Def> &&
    detail::handlers_match<Impl, Def>(detail::method_indices<Def>());

using RawHandler = Task<Result<std::vector<std::byte>>> (*)(void* object,
                                                            std::vector<std::byte> request,
                                                            CallContext* context);

struct MethodEntry {
  std::string name;
  RawHandler handler = nullptr;
  void* object = nullptr;
};

namespace detail {
template <class Object, class Request, class Response,
          Task<Result<Response>> (Object::*Handler)(Request, CallContext*)>
Task<Result<std::vector<std::byte>>> typed_handler(void* object, std::vector<std::byte> bytes,
                                                   CallContext* context) {
  Result<Request> request = decode<Request>(bytes);
  if (!request.ok()) co_return request.status();
  auto call = (static_cast<Object*>(object)->*Handler)(std::move(*request), context);
  Result<Response> response = co_await std::move(call);
  if (!response.ok()) co_return response.status();
  co_return encode(*response);
}
}  // namespace detail

class Service {
 public:
  // The table of service Def, every method bound to the same-named member of *impl:
  //   Service storage = Service::bind<StorageService>(&storage_impl);
  template <class Def, class Impl>
  static Service bind(Impl* impl) {
    static_assert(ServiceDef<Def>, "Def must be declared with MICA_SERVICE (net/service_def.h)");
    static_assert(detail::service_well_formed<Def>(),
                  "a service's methods must carry its kId and distinct method ids");
    static_assert(Implements<Impl, Def>,
                  "Impl must have, for every method m of the service, exactly one member "
                  "Task<Result<m's Response>> m(m's Request, CallContext*)");
    Service service(Def::kId, std::string(Def::mica_service_name));
    if constexpr (Implements<Impl, Def>) service.add_all<Def>(impl, detail::method_indices<Def>());
    return service;
  }

  ServiceId id() const { return id_; }
  const std::string& name() const { return name_; }
  const MethodEntry* find(MethodId id) const {
    auto it = methods_.find(id);
    return it == methods_.end() ? nullptr : &it->second;
  }

 private:
  Service(ServiceId id, std::string name) : id_(id), name_(std::move(name)) {}

  template <class Def, class Impl, size_t... I>
  void add_all(Impl* impl, std::index_sequence<I...>) {
    (add<std::get<I>(Def::mica_methods()), std::get<I>(Def::template mica_handlers<Impl>())>(
         std::string(Def::mica_method_names()[I]), impl),
     ...);
  }

  template <auto M, auto Handler, class Impl>
  void add(std::string name, Impl* impl) {
    using Descriptor = decltype(M);
    MICA_ASSERT(!methods_.contains(Descriptor::kId));  // service_well_formed said so
    methods_[Descriptor::kId] =
        MethodEntry{std::move(name),
                    &detail::typed_handler<Impl, typename Descriptor::Request,
                                           typename Descriptor::Response, Handler>,
                    impl};
  }

  ServiceId id_;
  std::string name_;
  std::map<MethodId, MethodEntry> methods_;
};

// The messages of the built-in health service (declared in net/service_def.h): ping
// answers with the nonce it was given.
struct PingRequest {
  uint64_t nonce = 0;
  MICA_FIELDS(PingRequest, nonce)
};
struct PingResponse {
  uint64_t nonce = 0;
  uint32_t connections = 0;  // the server's open connections
  uint32_t in_flight = 0;    // requests it is handling
  MICA_FIELDS(PingResponse, nonce, connections, in_flight)
};

}  // namespace mica::net
