// compute_statfs (meta/statfs.h).
#include "meta/statfs.h"

#include <algorithm>

namespace mica::meta {

StatfsReply compute_statfs(const craq::RoutingSnapshot* routing,
                           const std::vector<ShardStatus>& shards) {
  StatfsReply reply;
  reply.block_size = kStatfsBlockSize;
  reply.name_max = static_cast<uint32_t>(kNameMax);
  uint64_t used = 0;
  if (routing != nullptr) {
    uint64_t capacity = 0, raw_used = 0;
    for (const craq::TargetInfo& target : routing->targets) {
      if (target.chain == 0) continue;  // a spare target holds no file's chunks
      capacity += target.capacity_bytes;
      raw_used += std::min(target.used_bytes, target.capacity_bytes);
    }
    uint64_t replicas = std::max<uint32_t>(routing->config.replica_count, 1);
    reply.total_bytes = capacity / replicas;
    used = raw_used / replicas;
  }
  for (const ShardStatus& shard : shards) {
    reply.inodes += shard.inodes;
    reply.gc_queued_bytes += shard.gc_queued_bytes;
  }
  // Queued bytes are still on the disks, so the targets' used_bytes already hold them; but
  // routing publishes used_bytes late and coarsely, and freeing space must never show before
  // the collector removed it: used is at least the queued bytes.
  used = std::max(used, reply.gc_queued_bytes);
  reply.free_bytes = reply.total_bytes - std::min(reply.total_bytes, used);
  return reply;
}

}  // namespace mica::meta
