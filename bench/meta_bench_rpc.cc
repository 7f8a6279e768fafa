// ReadReference (bench/meta_bench_rpc.h): one kv/ read per request, answered in the handler.
#include "bench/meta_bench_rpc.h"

#include "net/rpc_service.h"

namespace mica::bench {

ReadReference::ReadReference(kv::Env* env, meta::ShardTables tables, uint32_t page_max)
    : env_(env),
      tables_(tables),
      page_max_(page_max),
      service_(net::Service::bind<ReadReferenceApi>(this)) {}

// The reused snapshot, renewed: cheaper than a new transaction per request, so the
// reference is a floor Mica's Shard::read() cannot beat.
Result<kv::ReadTxn*> ReadReference::snapshot() {
  if (!txn_) {
    Result<std::unique_ptr<kv::ReadTxn>> began = env_->begin_read();
    if (!began.ok()) return began.status();
    txn_ = std::move(began).value();
    return txn_.get();
  }
  Status renewed = txn_->renew();
  if (!renewed.ok()) return renewed;
  return txn_.get();
}

Result<meta::InodeReply> ReadReference::read_one(meta::InodeId inode) {
  Result<kv::ReadTxn*> txn = snapshot();
  if (!txn.ok()) return txn.status();
  Result<std::optional<meta::Inode>> got = meta::read_inode(**txn, tables_, inode);
  (*txn)->reset();
  if (!got.ok()) return got.status();
  if (!*got) return Status(StatusCode::kNotFound, fmt::format("no inode {:#x}", inode));
  return meta::InodeReply{.inode = std::move(**got)};
}

// One range scan from `after`, decoding each entry, as the shard's readdir does.
Result<meta::ReaddirReply> ReadReference::read_page(const meta::ReaddirRequest& request) {
  Result<kv::ReadTxn*> txn = snapshot();
  if (!txn.ok()) return txn.status();
  uint32_t limit = request.limit == 0 ? page_max_ : std::min(request.limit, page_max_);
  const std::string prefix = meta::entry_prefix(request.dir);
  meta::ReaddirReply reply;
  Status status;
  {
    Result<std::unique_ptr<kv::Cursor>> cursor = (*txn)->cursor(tables_.entries);
    if (!cursor.ok()) status = cursor.status();
    Result<std::optional<kv::Entry>> at = Status(StatusCode::kInternal, "no cursor");
    if (status.ok()) at = (*cursor)->seek(meta::entry_key(request.dir, request.after));
    for (; status.ok(); at = (*cursor)->next()) {
      if (!at.ok()) {
        status = at.status();
        break;
      }
      if (!*at || !(*at)->key.starts_with(prefix)) {
        reply.end = true;
        break;
      }
      std::string_view name = (*at)->key.substr(prefix.size());
      if (!request.after.empty() && name == request.after) continue;
      if (reply.entries.size() >= limit) break;
      Result<meta::DirEntry> entry = meta::decode_record<meta::DirEntry>((*at)->value, "entry");
      if (!entry.ok()) {
        status = entry.status();
        break;
      }
      reply.entries.push_back(meta::ReaddirEntry{
          .name = std::string(name), .inode = entry->inode, .type = entry->type});
    }
  }
  (*txn)->reset();
  if (!status.ok()) return status;
  return reply;
}

Task<Result<meta::InodeReply>> ReadReference::getattr(meta::GetattrRequest request,
                                                      net::CallContext* ctx) {
  (void)ctx;
  co_return read_one(request.inode);
}

Task<Result<meta::ReaddirReply>> ReadReference::readdir(meta::ReaddirRequest request,
                                                        net::CallContext* ctx) {
  (void)ctx;
  co_return read_page(request);
}

}  // namespace mica::bench
