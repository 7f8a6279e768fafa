// The namespace's vocabulary: inode ids (which carry their shard), inode types, file
// layouts, inodes, directory entries, the caller's credentials and the limits every
// operation checks (docs/meta.md).
//
// These are plain messages (net/serde.h): the same declaration is a shard's durable record
// in kv/ (meta/schema.h adds the format byte), its wire format and its printing. Times are
// nanoseconds since the Unix epoch. Value types: any thread, never suspend.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "craq/types.h"
#include "net/serde.h"

namespace mica::meta {

// An inode id: the shard in the top 16 bits, a per-shard sequence (from 1) in the low 48.
// Any client routes an inode to its shard without asking. 0 is "none".
using InodeId = uint64_t;
using ShardId = uint32_t;
using SessionId = uint64_t;
using ClientId = uint64_t;

inline constexpr int kShardShift = 48;
inline constexpr uint32_t kShardsMax = 1u << 16;
constexpr InodeId make_inode_id(ShardId shard, uint64_t sequence) {
  return (uint64_t{shard} << kShardShift) | (sequence & ((uint64_t{1} << kShardShift) - 1));
}
constexpr ShardId shard_of(InodeId inode) { return static_cast<ShardId>(inode >> kShardShift); }
constexpr uint64_t sequence_of(InodeId inode) {
  return inode & ((uint64_t{1} << kShardShift) - 1);
}
// The root directory: shard 0, sequence 1, its own parent.
inline constexpr InodeId kRootInode = make_inode_id(0, 1);

enum class InodeType : uint8_t {
  kFile = 0,
  kDirectory = 1,
  kSymlink = 2,
  kFifo = 3,
  kSocket = 4,
  kCharDevice = 5,
  kBlockDevice = 6,
};
MICA_ENUM_RANGE(InodeType, kFile, kBlockDevice)
std::string_view inode_type_name(InodeType type);  // "file", "directory", ...
// The S_IFMT bits of a type (S_IFREG for kFile, ...).
uint32_t inode_type_mode_bits(InodeType type);

// Limits every operation checks (POSIX's NAME_MAX and the sizes Linux uses).
inline constexpr size_t kNameMax = 255;          // bytes of one name
inline constexpr size_t kSymlinkMax = 4095;      // bytes of a symlink target
inline constexpr size_t kXattrNameMax = 255;     // bytes of an xattr name
inline constexpr size_t kXattrValueMax = 65536;  // bytes of one xattr value
inline constexpr uint32_t kLinkMax = 65000;      // nlink of a file
inline constexpr uint32_t kModeBits = 07777;     // permission, sticky, SGID, SUID
inline constexpr uint32_t kSetUid = 04000;
inline constexpr uint32_t kSetGid = 02000;
inline constexpr uint32_t kSticky = 01000;

// Where a file's chunks live: chunk i on chains[i mod stripe], chains being `stripe` chains
// of the table taken from `start` on (wrapping) and ordered by Mica's seeded shuffle with
// `seed` (meta/layout.h computes it; clients do so themselves).
struct Layout {
  uint32_t chunk_size_bytes = 0;
  craq::ChainTableId table = 0;
  uint32_t stripe = 0;
  uint32_t start = 0;
  uint64_t seed = 0;
  static constexpr std::string_view kTypeName = "Layout";
  MICA_FIELDS(Layout, chunk_size_bytes, table, stripe, start, seed)
};

struct Inode {
  InodeId id = 0;
  InodeType type = InodeType::kFile;
  uint32_t mode = 0;  // the kModeBits part only; the type is `type`
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t length = 0;  // files: bytes; symlinks: the target's length; directories: 0
  Layout layout;        // files only
  uint64_t rdev = 0;    // character and block devices
  std::string symlink_target;
  InodeId parent = 0;   // directories: the directory holding their entry (root: itself)
  static constexpr std::string_view kTypeName = "Inode";
  MICA_FIELDS(Inode, id, type, mode, uid, gid, nlink, atime_ns, mtime_ns, ctime_ns, length,
              layout, rdev, symlink_target, parent)
};

// The value of a directory entry (its key is parent id and name).
struct DirEntry {
  InodeId inode = 0;
  InodeType type = InodeType::kFile;
  // The coordinator operation changing this entry (meta/coordinator.h), 0: none. While set,
  // other mutations of the entry answer kBusy (the client retries); an entry created
  // locked (`created_locked`) is invisible to lookup and readdir until unlocked.
  uint64_t locked_by = 0;
  bool created_locked = false;
  static constexpr std::string_view kTypeName = "DirEntry";
  MICA_FIELDS(DirEntry, inode, type, locked_by, created_locked)
};

// Who asks: every request carries it, and every permission check uses it. uid 0 bypasses
// read/write checks and needs one execute bit for search on non-directories, as Linux does.
struct Credentials {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;  // supplementary groups
  bool in_group(uint32_t group) const;  // gid or one of groups
  static constexpr std::string_view kTypeName = "Credentials";
  MICA_FIELDS(Credentials, uid, gid, groups)
};

// kNameTooLong past kNameMax, kInvalidArgument for "", ".", "..", or a '/' or NUL inside.
Status check_name(std::string_view name);

}  // namespace mica::meta
