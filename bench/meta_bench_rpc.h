// ReadReference: the networked read reference of bench_meta (bench/meta_bench.cc) — the cost
// floor of any metadata read served over the network: a net/ RPC service answering
// getattr and readdir with the meta service's own request and reply types, from the same
// shard tables in a kv/ environment, with one kv/ read per request (a point get, or one
// range scan of up to a page of entries) and nothing else: no routing, no permission
// checks, no executor hop, one read transaction reused (renewed per request, reset before
// the handler returns). The bench owns it; it runs on one executor (its Env's), and its
// handlers never suspend.
#pragma once

#include <memory>

#include "kv/kv.h"
#include "meta/meta_service.h"
#include "meta/schema.h"
#include "net/service_def.h"

namespace mica::bench {

struct ReadReferenceApi {
  static constexpr net::ServiceId kId = 40;
  static constexpr net::Method<kId, 1, meta::GetattrRequest, meta::InodeReply> getattr{};
  static constexpr net::Method<kId, 2, meta::ReaddirRequest, meta::ReaddirReply> readdir{};
  MICA_SERVICE(ReadReferenceApi, "bench-meta-read", getattr, readdir)
};

class ReadReference {
 public:
  // page_max: entries per readdir page (the shard's ShardOptions::readdir_page_max).
  ReadReference(kv::Env* env, meta::ShardTables tables, uint32_t page_max);

  Task<Result<meta::InodeReply>> getattr(meta::GetattrRequest request, net::CallContext* ctx);
  Task<Result<meta::ReaddirReply>> readdir(meta::ReaddirRequest request, net::CallContext* ctx);

  net::Service* service() { return &service_; }

 private:
  Result<kv::ReadTxn*> snapshot();
  Result<meta::InodeReply> read_one(meta::InodeId inode);
  Result<meta::ReaddirReply> read_page(const meta::ReaddirRequest& request);

  kv::Env* env_;
  meta::ShardTables tables_;
  uint32_t page_max_;
  std::unique_ptr<kv::ReadTxn> txn_;
  net::Service service_;
};

}  // namespace mica::bench
