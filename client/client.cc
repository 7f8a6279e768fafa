// Client's life: connect (transport, token, pool, routing, metadata and storage clients),
// the credentials and deadlines of a call, and close. Paths are in client_paths.cc, files
// in file.cc, batch reads in client_batch.cc.
#include "client/client.h"

#include <unistd.h>

#include <utility>

#include "async/executor.h"
#include "async/log.h"
#include "async/socket_address.h"
#include "net/authenticated_transport.h"

namespace mica::client {

namespace {

// "host:port[,host:port...]".
Result<std::vector<SocketAddress>> parse_mgmtd_list(std::string_view text) {
  std::vector<SocketAddress> out;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view one = text.substr(0, comma);
    Result<SocketAddress> address = SocketAddress::parse(one);
    if (!address.ok()) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("mgmtd address '{}': {}", one, address.status().message()));
    }
    out.push_back(*address);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
  }
  if (out.empty()) return Status(StatusCode::kInvalidArgument, "no mgmtd address given");
  return out;
}

}  // namespace

Credentials process_credentials() {
  Credentials cred{.uid = static_cast<uint32_t>(::getuid()),
                   .gid = static_cast<uint32_t>(::getgid())};
  int count = ::getgroups(0, nullptr);
  if (count > 0) {
    std::vector<gid_t> groups(static_cast<size_t>(count));
    count = ::getgroups(count, groups.data());
    for (int i = 0; i < count; ++i) cred.groups.push_back(static_cast<uint32_t>(groups[i]));
  }
  return cred;
}

Client::Client(ClientOptions options) : options_(std::move(options)) {
  cred_ = options_.cred ? *options_.cred : process_credentials();
}

Client::~Client() { MICA_ASSERT(closed_ || !started_); }

Task<Result<std::unique_ptr<Client>>> Client::connect(ClientOptions options) {
  // The token file is read before the first suspension (blocking, but small and once).
  if (!options.token && !options.token_file.empty()) {
    Result<net::ClusterToken> token = net::load_cluster_token(options.token_file);
    if (!token.ok()) co_return token.status();
    options.token = std::move(*token);
  }
  std::unique_ptr<Client> client(new Client(std::move(options)));
  Status started = co_await client->start();
  if (!started.ok()) {
    auto closing = client->close();
    co_await std::move(closing);
    co_return started;
  }
  co_return client;
}

Task<Status> Client::start() {
  CO_TRY_ASSIGN(std::vector<SocketAddress> mgmtd, parse_mgmtd_list(options_.mgmtd));
  CO_TRY_ASSIGN(inner_transport_, net::make_transport(options_.transport));
  transport_ = inner_transport_.get();
  if (options_.token) {
    authenticated_transport_ =
        std::make_unique<net::AuthenticatedTransport>(transport_, *options_.token);
    transport_ = authenticated_transport_.get();
  }
  pool_ = std::make_unique<net::ConnectionPool>(transport_);
  craq::RoutingClientOptions routing_options;
  routing_options.mgmtd = std::move(mgmtd);
  routing_ = std::make_unique<craq::RoutingClient>(pool_.get(), std::move(routing_options));
  meta::MetaClientOptions meta_options;
  meta_options.call_timeout = options_.call_timeout;
  meta_ = std::make_unique<meta::MetaClient>(pool_.get(), routing_.get(), meta_options);
  craq::StorageClientOptions storage_options;
  storage_options.call_timeout = options_.call_timeout;
  storage_options.read_choice = options_.read_choice;
  storage_options.batch_bytes_in_flight_max = options_.file_bytes_in_flight_max;
  storage_ = std::make_unique<craq::StorageClient>(pool_.get(), transport_, routing_.get(),
                                                   storage_options);
  started_ = true;
  routing_->start();
  meta_->start();
  auto refreshing = routing_->refresh(0, deadline_after(options_.call_timeout));
  Result<craq::RoutingClient::SnapshotPtr> snapshot = co_await std::move(refreshing);
  if (!snapshot.ok()) {
    co_return Status(snapshot.status().code(),
                     fmt::format("cannot reach mgmtd at {}: {}", options_.mgmtd,
                                 snapshot.status().message()));
  }
  co_return Status::ok_status();
}

Task<void> Client::close() {
  if (closed_) co_return;
  MICA_ASSERT(open_files_ == 0);
  closed_ = true;
  if (meta_) {
    auto stopping = meta_->stop();
    co_await std::move(stopping);
  }
  if (routing_) {
    auto stopping = routing_->stop();
    co_await std::move(stopping);
  }
  if (pool_) {
    auto closing = pool_->close();
    co_await std::move(closing);
  }
}

const Credentials& Client::credentials(const CallOptions& options) const {
  return options.cred ? *options.cred : cred_;
}

TimePoint Client::deadline(const CallOptions& options) const {
  return options.deadline != kNoDeadline ? options.deadline : deadline_after(options_.call_timeout);
}

}  // namespace mica::client
