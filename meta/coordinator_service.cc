// CoordinatorService's handlers (meta/coordinator.h): other processes' coordinator calls.
#include "async/executor.h"
#include "async/hop.h"
#include "meta/coordinator.h"

namespace mica::meta {
namespace {

// Runs call on the coordinator's executor (the request lives in this frame meanwhile).
template <class Reply, class Request>
Task<Result<Reply>> on_coordinator(Coordinator* coordinator, Executor* executor,
                                   Task<Result<Reply>> (Coordinator::*method)(const Request&),
                                   Request request) {
  auto calling = (coordinator->*method)(request);
  auto hopping = mica::hop(Executor::current(), executor, std::move(calling));
  Result<Reply> reply = co_await std::move(hopping);
  co_return reply;
}

}  // namespace

Task<Result<InodeReply>> CoordinatorHandlers::mkdir(MkdirRequest request, net::CallContext*) {
  return on_coordinator(coordinator_, executor_, &Coordinator::mkdir, std::move(request));
}
Task<Result<RemoveReply>> CoordinatorHandlers::rmdir(RemoveRequest request, net::CallContext*) {
  return on_coordinator(coordinator_, executor_, &Coordinator::rmdir, std::move(request));
}
Task<Result<RenameReply>> CoordinatorHandlers::rename(RenameRequest request, net::CallContext*) {
  return on_coordinator(coordinator_, executor_, &Coordinator::rename, std::move(request));
}
Task<Result<InodeReply>> CoordinatorHandlers::link(LinkRequest request, net::CallContext*) {
  return on_coordinator(coordinator_, executor_, &Coordinator::link, std::move(request));
}

net::Service coordinator_service(CoordinatorHandlers* handlers) {
  return net::Service::bind<CoordinatorService>(handlers);
}

}  // namespace mica::meta
