// setattr (meta/shard.h; the rules are SetattrRequest's in meta/meta_service.h): chmod,
// chown, truncate and utimens in one all-or-nothing mutation. A size change that shrinks a
// file with chunks cuts them on the storage service first (meta/truncate.h), then decides
// again in a fresh txn, because anything may have changed while it waited.
#include "meta/permission.h"
#include "meta/shard_ops.h"
#include "meta/truncate.h"

namespace mica::meta {

namespace {

// Rounds of "cut the chunks, decide again" before a file that keeps growing is kBusy.
constexpr uint32_t kSetattrRoundsMax = 4;

Status not_permitted(const SetattrRequest& request, std::string_view what) {
  return Status(StatusCode::kNotPermitted,
                fmt::format("uid {} may not {} {:#x}", request.cred.uid, what, request.inode));
}

// chmod and chown parts.
Status decide_owner(const SetattrRequest& r, const Inode& before, Inode* after) {
  const Credentials& cred = r.cred;
  if (r.mode) {
    if (!is_owner_or_root(cred, before)) return not_permitted(r, "change the mode of");
    after->mode = mode_for_chmod(cred, before, *r.mode);
  }
  if (r.uid && !is_root(cred) && !(is_owner(cred, before) && *r.uid == before.uid)) {
    return not_permitted(r, "change the owner of");
  }
  if (r.gid && !is_root(cred) &&
      !(is_owner(cred, before) && (*r.gid == before.gid || cred.in_group(*r.gid)))) {
    return not_permitted(r, fmt::format("give group {} to", *r.gid));
  }
  if ((r.uid || r.gid) && !r.mode) {
    after->mode = mode_after_chown(cred, *after, r.gid ? *r.gid : before.gid);
  }
  if (r.uid) after->uid = *r.uid;
  if (r.gid) after->gid = *r.gid;
  return Status::ok_status();
}

// The size part: write permission, or a session open for writing (ftruncate).
Status decide_size(ShardTxn& txn, const SetattrRequest& r, const Inode& before, int64_t now,
                   Inode* after) {
  if (!r.size) return Status::ok_status();
  if (before.type == InodeType::kDirectory) {
    return Status(StatusCode::kIsDirectory, fmt::format("{:#x} is a directory", r.inode));
  }
  if (before.type != InodeType::kFile) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{:#x} is a {}: only files have a size to set", r.inode,
                              inode_type_name(before.type)));
  }
  uint64_t chunk = before.layout.chunk_size_bytes;
  if (chunk != 0 && *r.size / chunk > UINT32_MAX) {
    return Status(
        StatusCode::kInvalidArgument,
        fmt::format("{} bytes is past the largest file of chunk size {}", *r.size, chunk));
  }
  if (r.session != 0) {
    Result<std::vector<SessionRecord>> sessions = txn.sessions(r.inode);
    if (!sessions.ok()) return sessions.status();
    auto it = std::find_if(sessions->begin(), sessions->end(),
                           [&](const SessionRecord& s) { return s.session == r.session; });
    if (it == sessions->end()) {
      return Status(StatusCode::kStaleSession,
                    fmt::format("session {:#x} of {:#x} is no more", r.session, r.inode));
    }
    if (!it->flags.write) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("session {:#x} is not open for writing", r.session));
    }
  } else if (!may_write(r.cred, before)) {
    return Status(StatusCode::kPermissionDenied,
                  fmt::format("no write permission on {:#x}", r.inode));
  }
  if (*r.size != before.length) {
    after->length = *r.size;
    after->mtime_ns = now;
  }
  if (!r.mode) {
    Inode written = *after;
    written.gid = before.gid;  // who wrote is judged against the group before a chown
    after->mode = mode_after_write(r.cred, written);
  }
  return Status::ok_status();
}

// Linux's utimensat: both UTIME_NOW is "touch", allowed to the owner, root and any caller
// with write permission (EACCES otherwise); any other combination that sets a time (an
// explicit time, or UTIME_NOW with UTIME_OMIT) needs the owner or root (EPERM).
Status decide_times(const SetattrRequest& r, const Inode& before, int64_t now, Inode* after) {
  if (r.atime == TimeSet::kOmit && r.mtime == TimeSet::kOmit) return Status::ok_status();
  if (!is_owner_or_root(r.cred, before)) {
    if (r.atime != TimeSet::kNow || r.mtime != TimeSet::kNow) {
      return not_permitted(r, "set the times of");
    }
    if (!may_write(r.cred, before)) {
      return Status(StatusCode::kPermissionDenied,
                    fmt::format("no write permission on {:#x} to touch it", r.inode));
    }
  }
  if (r.atime != TimeSet::kOmit) after->atime_ns = r.atime == TimeSet::kNow ? now : r.atime_ns;
  if (r.mtime != TimeSet::kOmit) after->mtime_ns = r.mtime == TimeSet::kNow ? now : r.mtime_ns;
  return Status::ok_status();
}

struct Decision {
  Inode before;
  Inode after;
};

Result<Decision> decide(ShardTxn& txn, const SetattrRequest& r, int64_t now) {
  Result<Inode> before = existing_inode(txn, r.inode);
  if (!before.ok()) return before.status();
  Decision d{.before = *before, .after = *before};
  RETURN_IF_ERROR(decide_owner(r, d.before, &d.after));
  RETURN_IF_ERROR(decide_size(txn, r, d.before, now, &d.after));
  RETURN_IF_ERROR(decide_times(r, d.before, now, &d.after));
  d.after.ctime_ns = now;
  return d;
}

}  // namespace

Task<Result<InodeReply>> Shard::setattr(const SetattrRequest& request) {
  CO_TRY(check_local(request.inode));
  CO_TRY_ASSIGN(std::optional<InodeReply> again, remembered<InodeReply>(*this, request.tag));
  if (again) co_return std::move(*again);
  std::optional<uint64_t> cut_from;  // the length the chunks were last cut from
  for (uint32_t round = 0; round < kSetattrRoundsMax; ++round) {
    std::optional<Inode> to_cut;
    {
      ShardTxn txn = begin();
      CO_TRY_ASSIGN(Decision d, decide(txn, request, now_ns()));
      bool shrinks = request.size && *request.size < d.before.length;
      if (!shrinks || cut_from == d.before.length) {
        txn.put_inode(d.after);
        InodeReply reply{.inode = std::move(d.after)};
        txn.remember_answer(request.tag, encode_record(reply));
        auto committing = txn.commit();
        CO_TRY(co_await std::move(committing));
        co_return reply;
      }
      to_cut = std::move(d.before);
    }  // the txn (and its read snapshot) ends before the storage service is awaited
    const craq::RoutingSnapshot* routing = options_.routing ? options_.routing() : nullptr;
    if (options_.storage == nullptr || routing == nullptr) {
      co_return Status(StatusCode::kNotSupported,
                       fmt::format("shard {} has no storage service to cut {:#x} to {} bytes", id(),
                                   request.inode, *request.size));
    }
    craq::RoutingSnapshot snapshot = *routing;  // routing may change while we wait
    TimePoint deadline = Executor::current()->now() + options_.storage_timeout;
    auto cutting = truncate_chunks(options_.storage, options_.storage_executor, snapshot, *to_cut,
                                   *request.size, deadline);
    CO_TRY(co_await std::move(cutting));
    cut_from = to_cut->length;
  }
  co_return Status(StatusCode::kBusy, fmt::format("{:#x} kept growing while it was cut to {} bytes",
                                                  request.inode, *request.size));
}

}  // namespace mica::meta
