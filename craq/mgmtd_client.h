// MgmtdClient: calls MgmtdService on one of a list of mgmtd addresses, over a shared
// net::ConnectionPool, for the routing client, the node agent and tools.
//
// Today there is one mgmtd; the list is there for the highly available manager to come.
// A call goes to the current address; when it fails with an error that says the peer or
// the path to it is in trouble (is_mgmtd_unreachable), the client moves on to the next
// address for the following call, so a list of several rotates through them. A call that
// timed out also closes the pooled connection it used: a silently dead peer (crashed host,
// partition) leaves a TCP connection that looks healthy until the kernel gives up, which
// can take minutes, and the next call should reconnect instead of queueing behind it.
// Thread rule: the client, its pool and every call belong to one executor; calls suspend.
// The pool must outlive the client and every task it returned.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "async/log.h"
#include "craq/mgmtd_service.h"
#include "net/rpc_client.h"

namespace mica::craq {

// The longest a node waits between two attempts to reach mgmtd: the backoff_max of the
// ConnectionPool it reaches mgmtd through and the NodeAgent's default backoff_max. mgmtd's
// lease must cover it (apps/mgmtd_config.cc checks): after a restart mgmtd gives every
// node one lease to heartbeat again, and a node may first wait this long to reconnect.
inline constexpr Duration kMgmtdReconnectBackoffMax = std::chrono::seconds(2);

// True for the errors that mean "this mgmtd (or the way to it) is not answering": try again
// later or elsewhere. Errors mgmtd itself answered with (kNotFound, kInvalidArgument, ...)
// are the caller's to handle.
bool is_mgmtd_unreachable(StatusCode code);

class MgmtdClient {
 public:
  // addresses: at least one.
  MgmtdClient(net::ConnectionPool* pool, std::vector<SocketAddress> addresses);

  // Calls M on the current mgmtd; the deadline covers connecting and the call.
  template <net::RpcMethod auto M>
  Task<Result<net::ResponseOf<M>>> call(net::RequestOf<M> request, TimePoint deadline) {
    size_t index = current_;
    auto getting = pool_->get(addresses_[index], deadline);
    Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(getting);
    if (!client.ok()) {
      failed(index, client.status());
      co_return client.status();
    }
    auto calling = (*client)->call<M>(std::move(request), net::CallOptions{deadline});
    Result<net::ResponseOf<M>> response = co_await std::move(calling);
    if (!response.ok() && is_mgmtd_unreachable(response.status().code())) {
      failed(index, response.status());
      if (response.status().code() == StatusCode::kTimedOut) {
        Task<void> closing = (*client)->close();
        co_await std::move(closing);
      }
    }
    co_return response;
  }

  const std::vector<SocketAddress>& addresses() const { return addresses_; }
  // The address the next call goes to.
  const SocketAddress& current() const { return addresses_[current_]; }

 private:
  // Moves on to the next address after a failure at `index` (unless another call already
  // moved on meanwhile).
  void failed(size_t index, const Status& why);

  net::ConnectionPool* pool_;
  std::vector<SocketAddress> addresses_;
  size_t current_ = 0;
};

}  // namespace mica::craq
