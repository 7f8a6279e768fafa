// Node ids: the FUSE nodeid of an inode IS its Mica inode id (meta::InodeId), except
// FUSE_ROOT_ID (1), which the kernel uses for the mount's root and which maps to the root
// directory's id. Mica's root is make_inode_id(0, 1) == 1, so today both maps are the
// identity, but every conversion goes through these two functions so the daemon never
// depends on that. No node table is kept: a lookup count only matters for the kernel's own
// inode cache, so FORGET only counts (fuse/dispatcher.h). Pure functions, any thread.
#pragma once

#include <cstdint>

#include "fuse/protocol.h"
#include "meta/types.h"

namespace mica::fuse {

constexpr meta::InodeId to_inode(uint64_t nodeid) {
  return nodeid == kRootId ? meta::kRootInode : nodeid;
}

constexpr uint64_t to_nodeid(meta::InodeId inode) {
  return inode == meta::kRootInode ? kRootId : inode;
}

static_assert(to_inode(to_nodeid(meta::kRootInode)) == meta::kRootInode);

}  // namespace mica::fuse
