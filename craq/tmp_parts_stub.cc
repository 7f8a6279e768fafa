// TEMPORARY (storage-core branch only, deleted when storage-read and storage-resync merge):
// placeholder ReadPath, Resync and Scrub so the server links for the update path's tests.
// Every handler answers kNotSupported; nothing here suspends.
#include "craq/storage_read.h"
#include "craq/storage_resync.h"
#include "craq/storage_scrub.h"

namespace mica::craq {

namespace {
Status not_yet() {
  return Status(StatusCode::kNotSupported, "not merged yet");
}
}  // namespace

ReadPath::ReadPath(StorageTargets* targets, net::ConnectionPool* pool, net::Transport* transport,
                   const StorageServerOptions* options)
    : targets_(targets), pool_(pool), transport_(transport), options_(options) {}
ReadPath::~ReadPath() = default;
Task<Result<ReadResponse>> ReadPath::read(ReadRequest, net::CallContext*) {
  co_return not_yet();
}
Task<Result<BatchReadResponse>> ReadPath::batch_read(BatchReadRequest, net::CallContext*) {
  co_return not_yet();
}
Task<Result<QueryVersionResponse>> ReadPath::query_version(QueryVersionRequest,
                                                           net::CallContext*) {
  co_return not_yet();
}
Task<void> ReadPath::stop() {
  co_return;
}

Resync::Resync(StorageTargets* targets, net::ConnectionPool* pool, net::Transport* transport,
               const StorageServerOptions* options)
    : targets_(targets), pool_(pool), transport_(transport), options_(options) {}
Resync::~Resync() = default;
void Resync::on_view_change(StorageTarget*, const ChainView&) {}
Task<Result<SyncListResponse>> Resync::sync_list(SyncListRequest, net::CallContext*) {
  co_return not_yet();
}
Task<Result<SyncAck>> Resync::sync_write(SyncWriteRequest, net::CallContext*) {
  co_return not_yet();
}
Task<Result<SyncAck>> Resync::sync_remove(SyncRemoveRequest, net::CallContext*) {
  co_return not_yet();
}
Task<Result<SyncDoneResponse>> Resync::sync_done(SyncDoneRequest, net::CallContext*) {
  co_return not_yet();
}
void Resync::fill_progress(TargetProgress*) const {}
Task<void> Resync::stop() {
  co_return;
}

Scrub::Scrub(StorageTargets* targets, net::ConnectionPool* pool, net::Transport* transport,
             const StorageServerOptions* options)
    : targets_(targets), pool_(pool), transport_(transport), options_(options) {}
Scrub::~Scrub() = default;
void Scrub::start() {}
Task<void> Scrub::stop() {
  co_return;
}
void Scrub::repair(StorageTarget*, ChunkRef) {}
void Scrub::fill_progress(TargetProgress*) const {}

}  // namespace mica::craq
