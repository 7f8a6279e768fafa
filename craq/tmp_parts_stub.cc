// TEMPORARY (storage-core branch only, deleted when storage-read and storage-resync merge):
// placeholder ReadPath (Resync and Scrub are real here) so the server links for the update path's tests.
// Every handler answers kNotSupported; nothing here suspends.
#include "craq/storage_read.h"

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

}  // namespace mica::craq
