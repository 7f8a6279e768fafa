// ShardStepService's two steppers (local, remote) and its server half (meta/shard_steps.h).
#include "meta/shard_steps.h"

#include "async/executor.h"
#include "async/hop.h"
#include "async/wait_list.h"
#include "meta/shard.h"

namespace mica::meta {

std::string_view step_kind_name(StepKind kind) {
  switch (kind) {
    case StepKind::kCreateInode:
      return "create_inode";
    case StepKind::kCreateEntry:
      return "create_entry";
    case StepKind::kLockEntry:
      return "lock_entry";
    case StepKind::kRemoveDir:
      return "remove_dir";
    case StepKind::kDropLink:
      return "drop_link";
    case StepKind::kAddLink:
      return "add_link";
    case StepKind::kSetInode:
      return "set_inode";
    case StepKind::kFinishEntry:
      return "finish_entry";
    case StepKind::kForget:
      return "forget";
  }
  return "unknown";
}

Status StepReply::status() const {
  if (code == 0) return Status();
  return Status(static_cast<StatusCode>(code), message);
}

StepReply StepReply::refused(const Status& status) {
  StepReply reply;
  reply.code = static_cast<uint16_t>(status.code());
  reply.message = std::string(status.message());
  return reply;
}

namespace {

Result<Shard*> find_shard(const LocalShards& shards, ShardId id) {
  Shard* shard = shards.shard ? shards.shard(id) : nullptr;
  if (shard == nullptr)
    return Status(StatusCode::kWrongShard, fmt::format("shard {} is not served here", id));
  return shard;
}

// Runs on the shard's executor and comes back (the shard is executor-bound).
struct Hop {
  Executor* home = nullptr;
  Executor* there = nullptr;
  bool moves() const { return there != nullptr && there != home; }
};
Hop hop_for(const LocalShards& shards, ShardId id) {
  Hop hop{.home = Executor::current()};
  if (shards.executor) hop.there = shards.executor(id);
  return hop;
}

Task<Result<StepReply>> local_step(const LocalShards* shards, StepRequest request) {
  Result<Shard*> shard = find_shard(*shards, request.shard);
  if (!shard.ok()) co_return shard.status();
  Hop hop = hop_for(*shards, request.shard);
  auto applying = (*shard)->apply_step(request);
  auto hopping = mica::hop(hop.home, hop.there, std::move(applying));
  Result<StepReply> reply = co_await std::move(hopping);
  co_return reply;
}

Task<Result<ProbeReply>> local_probe(const LocalShards* shards, ProbeRequest request) {
  Result<Shard*> shard = find_shard(*shards, request.shard);
  if (!shard.ok()) co_return shard.status();
  Hop hop = hop_for(*shards, request.shard);
  if (hop.moves()) co_await hop.there->schedule();
  Result<ProbeReply> reply = (*shard)->probe_for_step(request);
  if (hop.moves()) co_await hop.home->schedule();
  co_return reply;
}

Task<Result<DirectoryPage>> local_directories(const LocalShards* shards,
                                              DirectoryPageRequest request) {
  Result<Shard*> shard = find_shard(*shards, request.shard);
  if (!shard.ok()) co_return shard.status();
  Hop hop = hop_for(*shards, request.shard);
  if (hop.moves()) co_await hop.there->schedule();
  Result<DirectoryPage> reply = (*shard)->directory_page(request);
  if (hop.moves()) co_await hop.home->schedule();
  co_return reply;
}

class LocalStepper final : public ShardStepper {
 public:
  explicit LocalStepper(LocalShards shards) : shards_(std::move(shards)) {}
  Task<Result<StepReply>> step(StepRequest request) override {
    return local_step(&shards_, std::move(request));
  }
  Task<Result<ProbeReply>> probe(ProbeRequest request) override {
    return local_probe(&shards_, std::move(request));
  }
  Task<Result<DirectoryPage>> directories(DirectoryPageRequest request) override {
    return local_directories(&shards_, std::move(request));
  }

 private:
  LocalShards shards_;
};

bool retryable(StatusCode code) {
  return is_transport_failure(code) || code == StatusCode::kWrongShard;
}

struct RemoteContext {
  net::ConnectionPool* pool = nullptr;
  std::function<std::optional<SocketAddress>(ShardId)> address;
  RemoteStepperOptions options;
};

// One call of method M to the process serving shard, retried while the failure is one a
// later attempt may not meet (a reset, a timeout, routing that has moved on).
template <net::RpcMethod auto M>
Task<Result<net::ResponseOf<M>>> call_shard(const RemoteContext* context, ShardId shard,
                                            net::RequestOf<M> request) {
  Duration backoff = context->options.backoff_initial;
  Status last(StatusCode::kUnreachable, fmt::format("shard {} has no address", shard));
  for (uint32_t attempt = 0; attempt < context->options.attempts_max; ++attempt) {
    if (attempt > 0) {
      SleepAwaiter pause = sleep_for(backoff);
      Status paused = co_await pause;
      if (!paused.ok()) co_return paused;
      backoff = std::min(backoff * 2, context->options.backoff_max);
    }
    std::optional<SocketAddress> address = context->address(shard);
    if (!address) continue;
    TimePoint deadline = deadline_after(context->options.attempt_timeout);
    auto getting = context->pool->get(*address, deadline);
    Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(getting);
    if (!client.ok()) {
      last = client.status();
      if (!retryable(last.code())) co_return last;
      continue;
    }
    net::CallOptions options{.deadline = deadline};
    auto calling = (*client)->template call<M>(request, options);
    Result<net::ResponseOf<M>> reply = co_await std::move(calling);
    if (reply.ok() || !retryable(reply.status().code())) co_return reply;
    last = reply.status();
  }
  co_return last;
}

class RemoteStepper final : public ShardStepper {
 public:
  RemoteStepper(RemoteContext context, LocalShards local)
      : context_(std::move(context)), local_(std::move(local)) {}
  bool is_local(ShardId shard) const { return local_.shard && local_.shard(shard) != nullptr; }
  Task<Result<StepReply>> step(StepRequest request) override {
    if (is_local(request.shard)) return local_step(&local_, std::move(request));
    ShardId shard = request.shard;
    return call_shard<ShardStepService::step>(&context_, shard, std::move(request));
  }
  Task<Result<ProbeReply>> probe(ProbeRequest request) override {
    if (is_local(request.shard)) return local_probe(&local_, std::move(request));
    ShardId shard = request.shard;
    return call_shard<ShardStepService::probe>(&context_, shard, std::move(request));
  }
  Task<Result<DirectoryPage>> directories(DirectoryPageRequest request) override {
    if (is_local(request.shard)) return local_directories(&local_, std::move(request));
    ShardId shard = request.shard;
    return call_shard<ShardStepService::directories>(&context_, shard, std::move(request));
  }

 private:
  RemoteContext context_;
  LocalShards local_;
};

}  // namespace

Task<Result<StepReply>> ShardStepHandlers::step(StepRequest request, net::CallContext*) {
  return local_step(&shards_, std::move(request));
}
Task<Result<ProbeReply>> ShardStepHandlers::probe(ProbeRequest request, net::CallContext*) {
  return local_probe(&shards_, std::move(request));
}
Task<Result<DirectoryPage>> ShardStepHandlers::directories(DirectoryPageRequest request,
                                                           net::CallContext*) {
  return local_directories(&shards_, std::move(request));
}

net::Service shard_step_service(ShardStepHandlers* handlers) {
  return net::Service::bind<ShardStepService>(handlers);
}

std::unique_ptr<ShardStepper> local_shard_stepper(LocalShards shards) {
  return std::make_unique<LocalStepper>(std::move(shards));
}

std::unique_ptr<ShardStepper> remote_shard_stepper(
    net::ConnectionPool* pool, std::function<std::optional<SocketAddress>(ShardId)> address,
    LocalShards local, RemoteStepperOptions options) {
  RemoteContext context{.pool = pool, .address = std::move(address), .options = options};
  return std::make_unique<RemoteStepper>(std::move(context), std::move(local));
}

}  // namespace mica::meta
