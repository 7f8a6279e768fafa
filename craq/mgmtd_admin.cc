// Mgmtd's admin handlers: create_chain_table, set_target_offline, replace_target and
// promote_target (craq/mgmtd.h). Each validates first, then writes one change.
#include "async/log.h"
#include "craq/mgmtd.h"

namespace mica::craq {

namespace {

Status not_found(std::string_view what, uint64_t id) {
  return Status(StatusCode::kNotFound, fmt::format("{} {} is unknown", what, id));
}

}  // namespace

Task<Result<CreateChainTableResponse>> Mgmtd::create_chain_table(CreateChainTableRequest request,
                                                                 net::CallContext* ctx) {
  (void)request;
  (void)ctx;
  co_return Status(StatusCode::kNotSupported, "create_chain_table: not yet");
}

Task<Result<SetTargetOfflineResponse>> Mgmtd::set_target_offline(SetTargetOfflineRequest request,
                                                                 net::CallContext* ctx) {
  (void)ctx;
  Status locked = co_await writer_.lock();
  MICA_ASSERT(locked.ok());
  MutexGuard guard(writer_);
  auto it = targets_.find(request.target);
  if (it == targets_.end()) co_return not_found("target", request.target);
  if (it->second.admin_offline != request.offline) {
    Change change;
    TargetInfo updated = it->second;
    updated.admin_offline = request.offline;
    change.targets.push_back(std::move(updated));
    auto committing = commit(std::move(change));
    CO_TRY(co_await std::move(committing));
    MICA_LOG(Info, "mgmtd", "target {} {} by an admin", request.target,
             request.offline ? "taken offline" : "back from offline");
    kick();
  }
  co_return SetTargetOfflineResponse{.routing_version = counters_.routing_version};
}

Task<Result<ReplaceTargetResponse>> Mgmtd::replace_target(ReplaceTargetRequest request,
                                                          net::CallContext* ctx) {
  (void)request;
  (void)ctx;
  co_return Status(StatusCode::kNotSupported, "replace_target: not yet");
}

Task<Result<PromoteTargetResponse>> Mgmtd::promote_target(PromoteTargetRequest request,
                                                          net::CallContext* ctx) {
  (void)request;
  (void)ctx;
  co_return Status(StatusCode::kNotSupported, "promote_target: not yet");
}

}  // namespace mica::craq
