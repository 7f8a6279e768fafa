// Sessions and lengths (meta/shard.h): open, report_length, close and end_sessions —
// docs/meta.md, "Sessions and lengths".
//
// A session is a SessionRecord (inode ‖ session) holding the opener's client, flags and
// credentials. Lengths only grow through reports (max of the inode's and the report's);
// close applies the final report and ends the session; a file at nlink 0 whose last session
// ends is erased and queued for garbage collection in the same transaction. end_sessions
// (a lapsed lease) does what close does for each of the client's sessions, a writer's length
// recomputed from the storage service first (its last chunk), since the writer may have
// written past its last report.
#include <algorithm>

#include "async/hop.h"
#include "async/log.h"
#include "craq/storage_client.h"
#include "meta/gc.h"
#include "meta/layout.h"
#include "meta/lease.h"
#include "meta/permission.h"
#include "meta/shard.h"
#include "meta/truncate.h"

namespace mica::meta {

namespace {

// Cut-and-recheck rounds of an O_TRUNC open before it gives up (kBusy) on a file that keeps
// growing (as setattr's size change).
constexpr uint32_t kTruncateRoundsMax = 4;

// O_TRUNC needs write permission, as Linux's may_open asks for it; no flag at all is
// O_RDONLY (0 in POSIX).
Status check_open_access(const OpenRequest& request, const Inode& inode) {
  const OpenFlags& flags = request.flags;
  bool wants_write = flags.write || flags.truncate;
  if (inode.type == InodeType::kDirectory && wants_write) {
    return Status(StatusCode::kIsDirectory, "a directory opens for reading only");
  }
  if (inode.type == InodeType::kSymlink) {
    return Status(StatusCode::kLoop, "a symlink is followed by the client, never opened");
  }
  bool wants_read = flags.read || !flags.write;
  if (wants_read && !may_read(request.cred, inode)) {
    return Status(StatusCode::kPermissionDenied, "no read permission");
  }
  if (wants_write && !may_write(request.cred, inode)) {
    return Status(StatusCode::kPermissionDenied, "no write permission");
  }
  return Status();
}

// The session named by report, or kStaleSession (gone, never existed, another client's).
Result<SessionRecord> find_session(ShardTxn& txn, const LengthReport& report) {
  Result<std::vector<SessionRecord>> sessions = txn.sessions(report.inode);
  RETURN_IF_ERROR(sessions);
  for (const SessionRecord& session : *sessions) {
    if (session.session != report.session) continue;
    if (session.client != report.client) break;
    return session;
  }
  return Status(StatusCode::kStaleSession, fmt::format("session {:#x} of inode {:#x} is no more",
                                                       report.session, report.inode));
}

// A write happened through `session` (its data is stored): set-id bits go as
// mode_after_write says, and the change of mode is a change of ctime.
void after_write(const SessionRecord& session, Inode* inode, int64_t now_ns) {
  uint32_t mode = mode_after_write(session.cred, *inode);
  if (mode != inode->mode) {
    inode->mode = mode;
    inode->ctime_ns = std::max(inode->ctime_ns, now_ns);
  }
}

// Applies a writer's report to the inode and its session record: lengths grow only; times
// take the writer's time of its last write, never moving back (reports may arrive late).
Status apply_report(const LengthReport& report, SessionRecord* session, Inode* inode,
                    int64_t now_ns) {
  bool wrote = report.mtime_ns != 0 || report.length > inode->length;
  if (!wrote && report.length == 0) return Status();
  if (!session->flags.write) {
    return Status(StatusCode::kInvalidArgument, "a length report through a read-only session");
  }
  inode->length = std::max(inode->length, report.length);
  session->length = std::max(session->length, report.length);
  if (report.mtime_ns != 0) {
    inode->mtime_ns = std::max(inode->mtime_ns, report.mtime_ns);
    inode->ctime_ns = std::max(inode->ctime_ns, report.mtime_ns);
  }
  if (wrote) after_write(*session, inode, now_ns);
  return Status();
}

// The session is being erased: a file no entry and no other session holds any more is
// erased with it and queued for collection. Returns whether it was.
Result<bool> end_session(ShardTxn& txn, const SessionRecord& session, Inode* inode,
                         int64_t now_ns) {
  txn.erase_session(session.inode, session.session);
  Result<std::vector<SessionRecord>> sessions = txn.sessions(session.inode);
  RETURN_IF_ERROR(sessions);
  bool others = std::any_of(sessions->begin(), sessions->end(),
                            [&](const SessionRecord& s) { return s.session != session.session; });
  if (inode->nlink > 0 || others || inode->type == InodeType::kDirectory) {
    txn.put_inode(*inode);
    return false;
  }
  txn.erase_inode(inode->id);
  // Only a file has chunks to collect (as unlink decides, meta/shard_name_ops.cc).
  if (inode->type != InodeType::kFile || (inode->length == 0 && inode->layout.stripe == 0)) {
    return false;
  }
  txn.queue_gc(GcRecord{
      .inode = inode->id, .layout = inode->layout, .length = inode->length, .queued_ns = now_ns});
  return true;
}

// O_TRUNC's cut at the storage service (meta/truncate.h, to length 0).
Task<Status> cut_all_chunks(const ShardOptions& options, Inode inode) {
  if (options.storage == nullptr) {
    co_return Status(StatusCode::kNotSupported, "no storage client to truncate through");
  }
  if (inode.layout.stripe == 0) co_return Status();  // never had a chunk
  const craq::RoutingSnapshot* routing = options.routing ? options.routing() : nullptr;
  if (routing == nullptr) co_return Status(StatusCode::kNotServing, "no routing yet");
  craq::RoutingSnapshot snapshot = *routing;  // routing may change while we wait
  TimePoint deadline = Executor::current()->now() + options.storage_timeout;
  auto cutting =
      truncate_chunks(options.storage, options.storage_executor, snapshot, inode, 0, deadline);
  co_return co_await std::move(cutting);
}

Status stale_inode(InodeId id) {
  return Status(StatusCode::kStaleSession, fmt::format("inode {:#x} is no more", id));
}

// The inode an open names, checked against the current state (kNotFound when gone).
Result<Inode> checked_open(ShardTxn& txn, const OpenRequest& request) {
  Result<std::optional<Inode>> inode = txn.inode(request.inode);
  RETURN_IF_ERROR(inode);
  if (!inode->has_value()) {
    return Status(StatusCode::kNotFound, fmt::format("inode {:#x}", request.inode));
  }
  RETURN_IF_ERROR(check_open_access(request, **inode));
  return std::move(**inode);
}

// Whether an O_TRUNC open must cut chunks at the storage service first: the file has a
// length, or a writer holds it (it may have written past its last report).
Result<bool> needs_cut(ShardTxn& txn, const OpenRequest& request, const Inode& inode) {
  if (!request.flags.truncate || inode.type != InodeType::kFile) return false;
  if (inode.length > 0) return true;
  Result<std::vector<SessionRecord>> sessions = txn.sessions(inode.id);
  RETURN_IF_ERROR(sessions);
  return std::any_of(sessions->begin(), sessions->end(),
                     [](const SessionRecord& s) { return s.flags.write; });
}

// The open's writes once decided: O_TRUNC's length and times, the session, the answer.
OpenReply decide_open(ShardTxn& txn, const OpenRequest& request, Inode inode, int64_t now) {
  if (request.flags.truncate && inode.type == InodeType::kFile) {
    // Linux marks m/ctime on every O_TRUNC of a regular file, also of an empty one.
    inode.length = 0;
    inode.mtime_ns = now;
    inode.ctime_ns = now;
    inode.mode = mode_after_write(request.cred, inode);
    txn.put_inode(inode);
  }
  SessionRecord session{.inode = inode.id,
                        .session = txn.allocate_session(),
                        .client = request.tag.client,
                        .flags = request.flags,
                        .length = inode.length,
                        .opened_ns = now,
                        .cred = request.cred};
  txn.put_session(session);
  OpenReply reply{.inode = std::move(inode), .session = session.session};
  txn.remember_answer(request.tag, encode_record(reply));
  return reply;
}

// The sessions of client in the committed state (a full scan: sessions are keyed by inode;
// a lease lapses rarely).
Result<std::vector<SessionRecord>> client_sessions(Shard* shard, ClientId client) {
  Result<std::unique_ptr<kv::ReadTxn>> txn = shard->read();
  RETURN_IF_ERROR(txn);
  Result<std::unique_ptr<kv::Cursor>> cursor = (*txn)->cursor(shard->tables().sessions);
  RETURN_IF_ERROR(cursor);
  std::vector<SessionRecord> found;
  for (Result<std::optional<kv::Entry>> at = (*cursor)->first();; at = (*cursor)->next()) {
    RETURN_IF_ERROR(at);
    if (!at->has_value()) break;
    Result<SessionRecord> record = decode_record<SessionRecord>((*at)->value, "session");
    RETURN_IF_ERROR(record);
    if (record->client == client) found.push_back(std::move(record).value());
  }
  return found;
}

}  // namespace

Task<Result<OpenReply>> Shard::open(const OpenRequest& request) {
  CO_TRY(check_local(request.inode));
  CO_TRY_ASSIGN(std::optional<std::string> remembered, remembered_answer(request.tag));
  if (remembered) co_return decode_answer<OpenReply>(*remembered, "remembered open");
  // O_TRUNC as setattr's size change: the storage service first, with no ShardTxn across
  // that wait, then the open decided again; it commits only once the length it sees is the
  // one the chunks were cut from, so a length a writer reported meanwhile is cut as well
  // (docs/meta.md, "Sessions").
  std::optional<uint64_t> cut_from;
  for (uint32_t round = 0; round < kTruncateRoundsMax; ++round) {
    std::optional<Inode> to_cut;
    {
      ShardTxn txn = begin();
      CO_TRY_ASSIGN(Inode inode, checked_open(txn, request));
      CO_TRY_ASSIGN(bool cut, needs_cut(txn, request, inode));
      if (!cut || cut_from == inode.length) {
        OpenReply reply = decide_open(txn, request, std::move(inode), now_ns());
        auto committing = txn.commit();
        CO_TRY(co_await std::move(committing));
        if (options_.leases != nullptr) options_.leases->opened(request.tag.client);
        co_return reply;
      }
      to_cut = std::move(inode);
    }  // the txn (and its read snapshot) ends before the storage service is awaited
    auto cutting = cut_all_chunks(options_, *to_cut);
    CO_TRY(co_await std::move(cutting));
    cut_from = to_cut->length;
  }
  co_return Status(StatusCode::kBusy,
                   fmt::format("{:#x} kept growing while O_TRUNC cut it", request.inode));
}

Task<Result<InodeReply>> Shard::report_length(const LengthReport& report) {
  CO_TRY(check_local(report.inode));
  ShardTxn txn = begin();
  CO_TRY_ASSIGN(SessionRecord session, find_session(txn, report));
  CO_TRY_ASSIGN(std::optional<Inode> inode, txn.inode(report.inode));
  if (!inode) co_return stale_inode(report.inode);
  CO_TRY(apply_report(report, &session, &*inode, now_ns()));
  txn.put_inode(*inode);
  txn.put_session(session);
  auto committing = txn.commit();
  CO_TRY(co_await std::move(committing));
  co_return InodeReply{.inode = std::move(*inode)};
}

Task<Result<InodeReply>> Shard::close(const CloseRequest& request) {
  const LengthReport& report = request.report;
  CO_TRY(check_local(report.inode));
  CO_TRY_ASSIGN(std::optional<std::string> remembered, remembered_answer(request.tag));
  if (remembered) co_return decode_answer<InodeReply>(*remembered, "remembered close");
  ShardTxn txn = begin();
  CO_TRY_ASSIGN(SessionRecord session, find_session(txn, report));
  CO_TRY_ASSIGN(std::optional<Inode> inode, txn.inode(report.inode));
  if (!inode) co_return stale_inode(report.inode);
  int64_t now = now_ns();
  CO_TRY(apply_report(report, &session, &*inode, now));
  CO_TRY_ASSIGN(bool reclaimed, end_session(txn, session, &*inode, now));
  txn.remember_answer(request.tag, encode_record(InodeReply{.inode = *inode}));
  auto committing =
      txn.commit(request.batched ? options_.batched_commit_delay : Duration::zero());
  CO_TRY(co_await std::move(committing));
  if (options_.leases != nullptr) options_.leases->closed(session.client);
  if (reclaimed && gc_ != nullptr) gc_->wake();
  co_return InodeReply{.inode = std::move(*inode)};
}

Task<Result<std::optional<uint64_t>>> Shard::stored_length(InodeId id) {
  std::optional<Inode> inode;
  {
    CO_TRY_ASSIGN(std::unique_ptr<kv::ReadTxn> txn, read());
    CO_TRY_ASSIGN(inode, read_inode(*txn, tables_, id));
  }
  if (!inode || inode->type != InodeType::kFile || inode->layout.stripe == 0) {
    co_return std::optional<uint64_t>();
  }
  if (options_.storage == nullptr) co_return std::optional<uint64_t>();
  const craq::RoutingSnapshot* routing = options_.routing ? options_.routing() : nullptr;
  const craq::ChainTable* table =
      routing != nullptr ? craq::find_table(*routing, inode->layout.table) : nullptr;
  if (table == nullptr) {
    co_return Status(StatusCode::kNotServing,
                     fmt::format("chain table {} not in routing", inode->layout.table));
  }
  CO_TRY_ASSIGN(std::vector<craq::ChainId> chains, layout_chains(inode->layout, *table));
  auto asking = options_.storage->last_chunk(std::move(chains), id);
  auto asking_there =
      mica::hop(Executor::current(), options_.storage_executor, std::move(asking));
  CO_TRY_ASSIGN(std::optional<craq::ChunkMeta> last, co_await std::move(asking_there));
  if (!last) co_return std::optional<uint64_t>(0);
  co_return std::optional<uint64_t>(uint64_t{last->chunk.index} * inode->layout.chunk_size_bytes +
                                    last->state.length_bytes);
}

Task<Status> Shard::end_session_of(SessionRecord ended) {
  std::optional<uint64_t> stored;
  if (ended.flags.write) {
    auto asking = stored_length(ended.inode);
    CO_TRY_ASSIGN(stored, co_await std::move(asking));
  }
  ShardTxn txn = begin();
  LengthReport named{.inode = ended.inode, .client = ended.client, .session = ended.session};
  Result<SessionRecord> session = find_session(txn, named);
  if (!session.ok()) co_return Status();  // closed meanwhile
  CO_TRY_ASSIGN(std::optional<Inode> inode, txn.inode(ended.inode));
  int64_t now = now_ns();
  bool reclaimed = false;
  if (!inode) {
    txn.erase_session(ended.inode, ended.session);  // an orphan: fsck would name it
  } else {
    // Storage holds every byte a report announced, and a length set by setattr (a sparse
    // extension) is kept: the length becomes the larger of the two.
    if (stored && *stored > inode->length) {
      inode->length = *stored;
      inode->mtime_ns = std::max(inode->mtime_ns, now);
      inode->ctime_ns = std::max(inode->ctime_ns, now);
      after_write(*session, &*inode, now);
    }
    CO_TRY_ASSIGN(reclaimed, end_session(txn, *session, &*inode, now));
  }
  auto committing = txn.commit();
  CO_TRY(co_await std::move(committing));
  if (options_.leases != nullptr) options_.leases->closed(ended.client);
  if (reclaimed && gc_ != nullptr) gc_->wake();
  co_return Status();
}

Task<Status> Shard::end_sessions(ClientId client) {
  CO_TRY_ASSIGN(std::vector<SessionRecord> sessions, client_sessions(this, client));
  Status first;
  for (const SessionRecord& session : sessions) {
    auto ending = end_session_of(session);
    Status s = co_await std::move(ending);
    if (!s.ok()) {
      MICA_LOG(Warn, "meta", "shard {}: ending session {:#x} of client {:#x}: {}", id(),
               session.session, client, s);
      if (first.ok()) first = s;
    }
  }
  if (!sessions.empty()) {
    MICA_LOG(Info, "meta", "shard {}: client {:#x}'s lease lapsed: {} sessions ended", id(), client,
             sessions.size());
  }
  co_return first;
}

}  // namespace mica::meta
