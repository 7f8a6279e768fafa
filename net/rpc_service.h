// Services: a numbered table of methods handled by coroutines.
//
// A method takes a decoded request message and a CallContext and returns
// Task<Result<Response>>. Service::add() type-erases it: the server hands raw payload
// bytes in and gets encoded bytes (or a Status) out. Within a server, service ids are
// unique; id 0 is the built-in health service. A Service and the object whose methods it
// names must outlive the server they are added to. Handlers run on the server's executor.
#pragma once

#include <map>
#include <string>
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
          Task<Result<Response>> (Object::*Method)(Request, CallContext*)>
Task<Result<std::vector<std::byte>>> typed_handler(void* object, std::vector<std::byte> bytes,
                                                   CallContext* context) {
  Result<Request> request = decode<Request>(bytes);
  if (!request.ok()) co_return request.status();
  auto call = (static_cast<Object*>(object)->*Method)(std::move(*request), context);
  Result<Response> response = co_await std::move(call);
  if (!response.ok()) co_return response.status();
  co_return encode(*response);
}
}  // namespace detail

class Service {
 public:
  Service(ServiceId id, std::string name) : id_(id), name_(std::move(name)) {}

  // Registers `Method` of `object` as method number `id`:
  //   service.add<&EchoService::echo>(1, "echo", &echo_impl);
  template <auto Method, class Object>
  void add(MethodId id, std::string name, Object* object) {
    using Traits = MethodTraits<decltype(Method)>;
    MICA_ASSERT_MSG(!methods_.contains(id), "method id used twice");
    methods_[id] = MethodEntry{
        std::move(name),
        &detail::typed_handler<Object, typename Traits::Request, typename Traits::Response, Method>,
        object};
  }

  ServiceId id() const { return id_; }
  const std::string& name() const { return name_; }
  const MethodEntry* find(MethodId id) const {
    auto it = methods_.find(id);
    return it == methods_.end() ? nullptr : &it->second;
  }

 private:
  template <class M>
  struct MethodTraits;
  template <class Object, class Req, class Resp>
  struct MethodTraits<Task<Result<Resp>> (Object::*)(Req, CallContext*)> {
    using Request = Req;
    using Response = Resp;
  };

  ServiceId id_;
  std::string name_;
  std::map<MethodId, MethodEntry> methods_;
};

// The built-in health service (id 0): ping answers with the nonce it was given.
inline constexpr ServiceId kHealthService = 0;
inline constexpr MethodId kPingMethod = 1;

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
