// The metadata service: the messages and the method table every mica-meta process serves
// (meta/meta_server.h) to clients (the native client, the FUSE daemon through it, `mica`),
// routed by the inode a request names: its shard (meta/types.h, shard_of) names the process
// in routing's meta_shards. docs/meta.md has each operation's rules and transaction.
//
// A client sends every request to the shard of the inode it names first (`parent` for name
// operations, `inode` otherwise); the server runs it on that shard, or hands it to the
// coordinator (meta/coordinator.h) when it touches the directory tree or two shards. A
// process that does not serve the shard answers kWrongShard (refresh routing and retry).
// Every mutating request carries the caller's credentials and a (client, request) pair, so
// a retry after a lost answer is recognised and answered as the first try was. Results are
// POSIX's: kNotFound (ENOENT), kAlreadyExists (EEXIST), kPermissionDenied (EACCES),
// kNotPermitted (EPERM), kNotDirectory, kIsDirectory, kNotEmpty, kNameTooLong, kCrossDevice,
// kTooManyLinks, kNoData, kTooBig, kInvalidArgument (EINVAL), kNoSpace. A refused request
// changes nothing. Declared once (net/service_def.h): ids are forever, fields only appended.
// Declarations only: any thread, never suspend.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "meta/types.h"
#include "net/service_def.h"

namespace mica::meta {

// Who sent a mutating request, for retries (0, 0: no retry protection).
struct RequestTag {
  ClientId client = 0;
  uint64_t request = 0;
  static constexpr std::string_view kTypeName = "RequestTag";
  MICA_FIELDS(RequestTag, client, request)
};

// The answer of most operations: the inode afterwards.
struct InodeReply {
  Inode inode;
  static constexpr std::string_view kTypeName = "InodeReply";
  MICA_FIELDS(InodeReply, inode)
};

// The attributes of `name` in directory `parent`; needs search (x) on parent.
struct LookupRequest {
  Credentials cred;
  InodeId parent = 0;
  std::string name;
  static constexpr std::string_view kTypeName = "LookupRequest";
  MICA_FIELDS(LookupRequest, cred, parent, name)
};

struct GetattrRequest {
  InodeId inode = 0;
  static constexpr std::string_view kTypeName = "GetattrRequest";
  MICA_FIELDS(GetattrRequest, inode)
};

enum class TimeSet : uint8_t { kOmit = 0, kNow = 1, kValue = 2 };  // UTIME_OMIT, UTIME_NOW
MICA_ENUM_RANGE(TimeSet, kOmit, kValue)

// chmod, chown, truncate, utimens in one: each optional part applies when set, all or none.
// Owner only (or root) for mode and for times unless both are UTIME_NOW (kNotPermitted);
// root for uid, the owner to one of its groups for gid; write permission for size and for
// both times set to now (kPermissionDenied). A size change of a file goes through the
// storage service first (its chunks past the new end are cut). chown clears SUID and SGID
// (SGID only when group-executable); a size set by anyone but root clears SUID, and SGID
// when group-executable or the caller is not in the group; ctime changes with any.
struct SetattrRequest {
  Credentials cred;
  RequestTag tag;
  InodeId inode = 0;
  std::optional<uint32_t> mode;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint64_t> size;
  TimeSet atime = TimeSet::kOmit;
  int64_t atime_ns = 0;
  TimeSet mtime = TimeSet::kOmit;
  int64_t mtime_ns = 0;
  SessionId session = 0;  // the handle the size change comes through (ftruncate), or 0
  static constexpr std::string_view kTypeName = "SetattrRequest";
  MICA_FIELDS(SetattrRequest, cred, tag, inode, mode, uid, gid, size, atime, atime_ns, mtime,
              mtime_ns, session)
};

// Open flags as POSIX names them (the subset metadata acts on).
struct OpenFlags {
  bool read = false;
  bool write = false;
  bool truncate = false;   // O_TRUNC
  bool append = false;     // O_APPEND
  bool exclusive = false;  // O_EXCL (create only)
  static constexpr std::string_view kTypeName = "OpenFlags";
  MICA_FIELDS(OpenFlags, read, write, truncate, append, exclusive)
};

// create (a file, opened when `open`), mknod (any non-directory type: kFile, kFifo,
// kSocket, kCharDevice, kBlockDevice with rdev) and symlink (kSymlink with
// symlink_target); directories go through mkdir. Needs write and search on parent. mode is
// applied as given (the caller applied its umask); an SGID parent passes its group on.
// An existing name is kAlreadyExists, except a create with open and not exclusive, which
// opens the existing file (checking its permissions as open does).
struct CreateRequest {
  Credentials cred;
  RequestTag tag;
  InodeId parent = 0;
  std::string name;
  InodeType type = InodeType::kFile;
  uint32_t mode = 0;
  uint64_t rdev = 0;
  std::string symlink_target;
  bool open = false;
  OpenFlags flags;
  uint32_t chunk_size_bytes = 0;  // 0: the cluster's default
  uint32_t stripe = 0;            // 0: the whole chain table
  static constexpr std::string_view kTypeName = "CreateRequest";
  MICA_FIELDS(CreateRequest, cred, tag, parent, name, type, mode, rdev, symlink_target, open,
              flags, chunk_size_bytes, stripe)
};
struct CreateReply {
  Inode inode;
  SessionId session = 0;  // open: the new handle
  bool created = false;   // false: an existing file was opened
  static constexpr std::string_view kTypeName = "CreateReply";
  MICA_FIELDS(CreateReply, inode, session, created)
};

// A directory `name` in `parent` (through the coordinator; the new directory's shard is
// chosen by a seeded spread).
struct MkdirRequest {
  Credentials cred;
  RequestTag tag;
  InodeId parent = 0;
  std::string name;
  uint32_t mode = 0;
  static constexpr std::string_view kTypeName = "MkdirRequest";
  MICA_FIELDS(MkdirRequest, cred, tag, parent, name, mode)
};

// unlink (a non-directory: kIsDirectory otherwise) and rmdir (an empty directory: kNotEmpty
// otherwise, kNotDirectory for a file). Needs write and search on parent; in a sticky
// parent only the owner of the entry or of the parent (or root) may (kNotPermitted).
struct RemoveRequest {
  Credentials cred;
  RequestTag tag;
  InodeId parent = 0;
  std::string name;
  bool directory = false;  // rmdir
  static constexpr std::string_view kTypeName = "RemoveRequest";
  MICA_FIELDS(RemoveRequest, cred, tag, parent, name, directory)
};
struct RemoveReply {
  Inode inode;            // the inode afterwards (nlink reduced)
  bool reclaimed = false;  // its last link and no session: queued for garbage collection
  static constexpr std::string_view kTypeName = "RemoveReply";
  MICA_FIELDS(RemoveReply, inode, reclaimed)
};

// rename(2) and renameat2's RENAME_NOREPLACE and RENAME_EXCHANGE. A directory moved into
// its own subtree is kInvalidArgument; a directory over a non-empty one kNotEmpty, over a
// file kNotDirectory, a file over a directory kIsDirectory. Linux's order: both flags
// kInvalidArgument; the names (kNotFound, kAlreadyExists); the loop check (kInvalidArgument,
// or kNotEmpty when the new name is an ancestor of the old parent); then the old parent's
// write (kPermissionDenied) and sticky (kNotPermitted) rules, the new parent's, the types,
// write on a directory changing parents, and kNotEmpty.
struct RenameRequest {
  Credentials cred;
  RequestTag tag;
  InodeId parent = 0;
  std::string name;
  InodeId new_parent = 0;
  std::string new_name;
  bool noreplace = false;
  bool exchange = false;
  static constexpr std::string_view kTypeName = "RenameRequest";
  MICA_FIELDS(RenameRequest, cred, tag, parent, name, new_parent, new_name, noreplace, exchange)
};
struct RenameReply {
  Inode moved;                     // the inode that now has new_name
  std::optional<Inode> replaced;   // the inode new_name named before (nlink reduced)
  bool replaced_reclaimed = false;
  static constexpr std::string_view kTypeName = "RenameReply";
  MICA_FIELDS(RenameReply, moved, replaced, replaced_reclaimed)
};

// A hard link `new_name` in `new_parent` to the non-directory `inode` (sent to
// new_parent's shard; through the coordinator when inode lives on another shard). In
// Linux's order: kAlreadyExists; protected_hardlinks (kNotPermitted: a caller neither
// owner nor root links only a non-set-id regular file it may read and write); write on
// new_parent (kPermissionDenied); a directory (kNotPermitted).
struct LinkRequest {
  Credentials cred;
  RequestTag tag;
  InodeId inode = 0;
  InodeId new_parent = 0;
  std::string new_name;
  static constexpr std::string_view kTypeName = "LinkRequest";
  MICA_FIELDS(LinkRequest, cred, tag, inode, new_parent, new_name)
};

struct ReadlinkRequest {
  InodeId inode = 0;
  static constexpr std::string_view kTypeName = "ReadlinkRequest";
  MICA_FIELDS(ReadlinkRequest, inode)
};
struct ReadlinkReply {
  std::string target;
  static constexpr std::string_view kTypeName = "ReadlinkReply";
  MICA_FIELDS(ReadlinkReply, target)
};

// A page of directory `dir`'s entries in name order after `after` ("" from the start);
// needs read on dir. "." and ".." are the caller's to add.
struct ReaddirRequest {
  Credentials cred;
  InodeId dir = 0;
  std::string after;
  uint32_t limit = 0;  // 0: the server's page size; capped by it
  bool with_attrs = false;
  static constexpr std::string_view kTypeName = "ReaddirRequest";
  MICA_FIELDS(ReaddirRequest, cred, dir, after, limit, with_attrs)
};
struct ReaddirEntry {
  std::string name;
  InodeId inode = 0;
  InodeType type = InodeType::kFile;
  std::optional<Inode> attrs;  // with_attrs (an inode on another shard: fetched there)
  static constexpr std::string_view kTypeName = "ReaddirEntry";
  MICA_FIELDS(ReaddirEntry, name, inode, type, attrs)
};
struct ReaddirReply {
  std::vector<ReaddirEntry> entries;
  bool end = false;  // nothing after the last entry
  static constexpr std::string_view kTypeName = "ReaddirReply";
  MICA_FIELDS(ReaddirReply, entries, end)
};

struct StatfsRequest {
  uint32_t reserved = 0;
  static constexpr std::string_view kTypeName = "StatfsRequest";
  MICA_FIELDS(StatfsRequest, reserved)
};
// Capacity from the storage targets in routing (divided by the replica count), inodes from
// every shard; bytes queued for garbage collection count as used until removed.
struct StatfsReply {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t inodes = 0;
  uint64_t gc_queued_bytes = 0;
  uint32_t block_size = 0;
  uint32_t name_max = 0;
  static constexpr std::string_view kTypeName = "StatfsReply";
  MICA_FIELDS(StatfsReply, total_bytes, free_bytes, inodes, gc_queued_bytes, block_size,
              name_max)
};

// Extended attributes: read needs read permission, write needs ownership or write
// permission (user.* only on files and directories, as Linux); names are namespaced
// ("user.", "trusted." (root), "security.", "system."); values up to kXattrValueMax.
struct GetXattrRequest {
  Credentials cred;
  InodeId inode = 0;
  std::string name;
  static constexpr std::string_view kTypeName = "GetXattrRequest";
  MICA_FIELDS(GetXattrRequest, cred, inode, name)
};
struct XattrValue {
  std::string value;
  static constexpr std::string_view kTypeName = "XattrValue";
  MICA_FIELDS(XattrValue, value)
};
enum class XattrMode : uint8_t { kAny = 0, kCreate = 1, kReplace = 2 };  // XATTR_CREATE/REPLACE
MICA_ENUM_RANGE(XattrMode, kAny, kReplace)
struct SetXattrRequest {
  Credentials cred;
  RequestTag tag;
  InodeId inode = 0;
  std::string name;
  std::string value;
  XattrMode mode = XattrMode::kAny;
  static constexpr std::string_view kTypeName = "SetXattrRequest";
  MICA_FIELDS(SetXattrRequest, cred, tag, inode, name, value, mode)
};
struct ListXattrRequest {
  Credentials cred;
  InodeId inode = 0;
  static constexpr std::string_view kTypeName = "ListXattrRequest";
  MICA_FIELDS(ListXattrRequest, cred, inode)
};
struct XattrNames {
  std::vector<std::string> names;
  static constexpr std::string_view kTypeName = "XattrNames";
  MICA_FIELDS(XattrNames, names)
};
struct RemoveXattrRequest {
  Credentials cred;
  RequestTag tag;
  InodeId inode = 0;
  std::string name;
  static constexpr std::string_view kTypeName = "RemoveXattrRequest";
  MICA_FIELDS(RemoveXattrRequest, cred, tag, inode, name)
};

// A session: one open handle of a client, held under the client's lease (renew_lease).
// open checks read/write permission as the flags ask; O_TRUNC cuts the file (storage
// first). Directories open for reading only (kIsDirectory for write).
struct OpenRequest {
  Credentials cred;
  RequestTag tag;
  InodeId inode = 0;
  OpenFlags flags;
  static constexpr std::string_view kTypeName = "OpenRequest";
  MICA_FIELDS(OpenRequest, cred, tag, inode, flags)
};
struct OpenReply {
  Inode inode;
  SessionId session = 0;
  static constexpr std::string_view kTypeName = "OpenReply";
  MICA_FIELDS(OpenReply, inode, session)
};

// A writer's length report (fsync, growth) and close: the length only grows through a
// report (truncation is setattr's); mtime/ctime take the writer's time of its last write.
// close ends the session; a file whose last link went and whose last session ends is
// queued for garbage collection. kStaleSession for a session that is no more.
struct LengthReport {
  InodeId inode = 0;
  ClientId client = 0;
  SessionId session = 0;
  uint64_t length = 0;       // bytes the writer knows exist (0: no change)
  int64_t mtime_ns = 0;      // its last write (0: no write)
  static constexpr std::string_view kTypeName = "LengthReport";
  MICA_FIELDS(LengthReport, inode, client, session, length, mtime_ns)
};
// `batched`: nobody waits for this answer (FUSE's RELEASE comes after close(2) returned), so
// its commit may wait up to the shard's batched_commit_delay for the next mutation's commit
// and share it. Either way the close is durable when answered.
struct CloseRequest {
  LengthReport report;
  bool batched = false;
  RequestTag tag;  // a retry after a lost answer gets the first answer, not kStaleSession
  static constexpr std::string_view kTypeName = "CloseRequest";
  MICA_FIELDS(CloseRequest, report, batched, tag)
};

// One lease per client and meta process renews every session the client holds there.
// A client whose lease lapses loses its sessions: writers' lengths are recomputed from the
// storage service (the last chunk), unlinked files held only by them are reclaimed.
struct LeaseRequest {
  ClientId client = 0;
  static constexpr std::string_view kTypeName = "LeaseRequest";
  MICA_FIELDS(LeaseRequest, client)
};
struct LeaseReply {
  uint32_t lease_ms = 0;  // renew well within this
  uint32_t sessions = 0;  // the client's sessions this process holds
  static constexpr std::string_view kTypeName = "LeaseReply";
  MICA_FIELDS(LeaseReply, lease_ms, sessions)
};

// For `mica status`, metrics and tests: what each shard of the process holds.
struct ShardStatus {
  ShardId shard = 0;
  uint64_t inodes = 0;
  uint64_t entries = 0;
  uint64_t sessions = 0;
  uint64_t gc_queued_files = 0;
  uint64_t gc_queued_bytes = 0;
  uint64_t gc_removed_files = 0;
  uint64_t used_bytes = 0;  // of its kv/ environment
  uint64_t commits = 0;     // kv/ transactions
  uint64_t operations = 0;  // mutations committed
  static constexpr std::string_view kTypeName = "ShardStatus";
  MICA_FIELDS(ShardStatus, shard, inodes, entries, sessions, gc_queued_files, gc_queued_bytes,
              gc_removed_files, used_bytes, commits, operations)
};
struct MetaStatusRequest {
  uint32_t reserved = 0;
  static constexpr std::string_view kTypeName = "MetaStatusRequest";
  MICA_FIELDS(MetaStatusRequest, reserved)
};
struct MetaStatusReply {
  craq::NodeId node = 0;
  std::vector<ShardStatus> shards;
  uint64_t coordinator_pending = 0;  // unfinished coordinator operations (shard 0's process)
  static constexpr std::string_view kTypeName = "MetaStatusReply";
  MICA_FIELDS(MetaStatusReply, node, shards, coordinator_pending)
};

// fsck and tests: a page of one shard's records in key order after `after` (the last id or
// the last entry's (parent, name) of the previous page).
struct ScanRequest {
  ShardId shard = 0;
  bool entries = false;      // false: inodes
  InodeId after_inode = 0;   // inodes: id after; entries: parent
  std::string after_name;    // entries: name after (with after_inode)
  uint32_t limit = 0;
  static constexpr std::string_view kTypeName = "ScanRequest";
  MICA_FIELDS(ScanRequest, shard, entries, after_inode, after_name, limit)
};
struct ScannedEntry {
  InodeId parent = 0;
  std::string name;
  DirEntry entry;
  static constexpr std::string_view kTypeName = "ScannedEntry";
  MICA_FIELDS(ScannedEntry, parent, name, entry)
};
struct ScanReply {
  std::vector<Inode> inodes;
  std::vector<ScannedEntry> entries;
  std::vector<InodeId> gc_queued;   // first page only: inodes queued for collection
  std::vector<InodeId> open_unlinked;  // first page only: nlink 0, held by a session
  bool end = false;
  static constexpr std::string_view kTypeName = "ScanReply";
  MICA_FIELDS(ScanReply, inodes, entries, gc_queued, open_unlinked, end)
};

struct MetaService {
  static constexpr net::ServiceId kId = 300;
  static constexpr net::Method<kId, 1, LookupRequest, InodeReply> lookup{};
  static constexpr net::Method<kId, 2, GetattrRequest, InodeReply> getattr{};
  static constexpr net::Method<kId, 3, SetattrRequest, InodeReply> setattr{};
  static constexpr net::Method<kId, 4, CreateRequest, CreateReply> create{};
  static constexpr net::Method<kId, 5, MkdirRequest, InodeReply> mkdir{};
  static constexpr net::Method<kId, 6, RemoveRequest, RemoveReply> remove{};
  static constexpr net::Method<kId, 7, RenameRequest, RenameReply> rename{};
  static constexpr net::Method<kId, 8, LinkRequest, InodeReply> link{};
  static constexpr net::Method<kId, 9, ReadlinkRequest, ReadlinkReply> readlink{};
  static constexpr net::Method<kId, 10, ReaddirRequest, ReaddirReply> readdir{};
  static constexpr net::Method<kId, 11, StatfsRequest, StatfsReply> statfs{};
  static constexpr net::Method<kId, 12, GetXattrRequest, XattrValue> get_xattr{};
  static constexpr net::Method<kId, 13, SetXattrRequest, InodeReply> set_xattr{};
  static constexpr net::Method<kId, 14, ListXattrRequest, XattrNames> list_xattr{};
  static constexpr net::Method<kId, 15, RemoveXattrRequest, InodeReply> remove_xattr{};
  static constexpr net::Method<kId, 16, OpenRequest, OpenReply> open{};
  static constexpr net::Method<kId, 17, LengthReport, InodeReply> report_length{};
  static constexpr net::Method<kId, 18, CloseRequest, InodeReply> close{};
  static constexpr net::Method<kId, 19, LeaseRequest, LeaseReply> renew_lease{};
  static constexpr net::Method<kId, 20, MetaStatusRequest, MetaStatusReply> status{};
  static constexpr net::Method<kId, 21, ScanRequest, ScanReply> scan{};
  MICA_SERVICE(MetaService, "meta", lookup, getattr, setattr, create, mkdir, remove, rename,
               link, readlink, readdir, statfs, get_xattr, set_xattr, list_xattr, remove_xattr,
               open, report_length, close, renew_lease, status, scan)
};

}  // namespace mica::meta
