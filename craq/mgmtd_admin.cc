// Mgmtd's admin handlers: create_chain_table, set_target_offline, replace_target and
// promote_target (craq/mgmtd.h). Each validates first, then writes one change.
#include "async/log.h"
#include "craq/mgmtd.h"
#include "craq/target_state.h"

namespace mica::craq {

namespace {

Status not_found(std::string_view what, uint64_t id) {
  return Status(StatusCode::kNotFound, fmt::format("{} {} is unknown", what, id));
}

Status invalid(std::string message) {
  return Status(StatusCode::kInvalidArgument, std::move(message));
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
  (void)ctx;
  Status locked = co_await writer_.lock();
  MICA_ASSERT(locked.ok());
  MutexGuard guard(writer_);
  auto old_it = targets_.find(request.old_target);
  if (old_it == targets_.end()) co_return not_found("target", request.old_target);
  auto new_it = targets_.find(request.new_target);
  if (new_it == targets_.end()) co_return not_found("target", request.new_target);
  const TargetInfo& old_target = old_it->second;
  const TargetInfo& new_target = new_it->second;
  if (old_target.chain == 0)
    co_return invalid(fmt::format("target {} is in no chain", old_target.id));
  if (new_target.chain != 0)
    co_return invalid(
        fmt::format("target {} is already in chain {}", new_target.id, new_target.chain));
  const ChainInfo& chain = chains_.at(old_target.chain);
  for (const ChainTarget& member : chain.targets) {
    if (member.target == old_target.id) continue;
    auto member_it = targets_.find(member.target);
    if (member_it != targets_.end() && member_it->second.node == new_target.node)
      co_return invalid(
          fmt::format("target {} is on node {}, which already holds target {} of chain {}",
                      new_target.id, new_target.node, member.target, chain.id));
  }
  CO_TRY_ASSIGN(ChainInfo next, craq::replace_target(chain, old_target.id, new_target.id));
  Change change;
  change.chains.push_back(next);
  TargetInfo leaving = old_target;
  leaving.chain = 0;
  TargetInfo joining = new_target;
  joining.chain = chain.id;
  change.targets = {std::move(leaving), std::move(joining)};
  auto committing = commit(std::move(change));
  CO_TRY(co_await std::move(committing));
  MICA_LOG(Info, "mgmtd", "chain {} v{}: target {} replaced by target {} (an admin)", next.id,
           next.version, request.old_target, request.new_target);
  metrics_.chain_changes->add();
  kick();
  co_return ReplaceTargetResponse{.chain = std::move(next)};
}

Task<Result<PromoteTargetResponse>> Mgmtd::promote_target(PromoteTargetRequest request,
                                                          net::CallContext* ctx) {
  (void)ctx;
  Status locked = co_await writer_.lock();
  MICA_ASSERT(locked.ok());
  MutexGuard guard(writer_);
  auto chain_it = chains_.find(request.chain);
  if (chain_it == chains_.end()) co_return not_found("chain", request.chain);
  const ChainInfo& chain = chain_it->second;
  TargetId lastsrv = 0;
  for (const ChainTarget& member : chain.targets)
    if (member.state == PublicState::kLastServing) lastsrv = member.target;
  CO_TRY_ASSIGN(ChainInfo next, craq::promote_target(chain, request.target));
  std::string warning = fmt::format(
      "chain {}: target {} promoted in place of the last serving target {}; writes that only "
      "target {} acknowledged are lost",
      chain.id, request.target, lastsrv, lastsrv);
  Change change;
  change.chains.push_back(next);
  auto committing = commit(std::move(change));
  CO_TRY(co_await std::move(committing));
  MICA_LOG(Warn, "mgmtd", "{} (an admin's promote)", warning);
  metrics_.chain_changes->add();
  kick();
  co_return PromoteTargetResponse{.chain = std::move(next), .warning = std::move(warning)};
}

}  // namespace mica::craq
