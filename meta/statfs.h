// statfs for the metadata service: the file system's capacity, free space and inode count
// as statfs(2) reports them, computed from the routing snapshot's storage targets and the
// shards' status (docs/meta.md, "Garbage collection").
//
// Capacity is the sum of capacity_bytes of the targets that belong to a chain, divided by
// the replica count (each byte of a file is stored that many times); used is their
// used_bytes divided the same way, and never less than the bytes queued for garbage
// collection (those are still on the disks: the targets' used_bytes hold them already, but
// routing publishes used_bytes late, and space must not look free before the collector
// removed it); free is capacity minus used, never below zero. Inodes are the shards'
// counts. The server gathers the ShardStatus of every shard (of every meta process) and
// calls this. A pure function: any thread, never suspends.
#pragma once

#include <vector>

#include "craq/types.h"
#include "meta/meta_service.h"

namespace mica::meta {

inline constexpr uint32_t kStatfsBlockSize = 4096;

// routing may be nullptr (not fetched yet): capacity 0.
StatfsReply compute_statfs(const craq::RoutingSnapshot* routing,
                           const std::vector<ShardStatus>& shards);

}  // namespace mica::meta
