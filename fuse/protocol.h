// The kernel's FUSE protocol, version 7.45 (Linux 6.18), declared once for Mica, in
// namespace mica::fuse. Nothing here includes <linux/fuse.h>: Debian 12's copy is 7.3x and
// lacks the io_uring structs, so every struct and constant the daemon uses is written out
// below, with its size static_asserted against the kernel's UAPI.
//
// Naming: a kernel struct `fuse_foo_bar` is `FooBar` here (fuse_in_header -> InHeader,
// fuse_init_in -> InitIn, fuse_kstatfs -> Kstatfs); a field keeps the kernel's name; opcodes
// are `Opcode::kLookup` for FUSE_LOOKUP; flag constants are `kInit*`, `kFopen*`, `kFattr*`,
// ... named after the kernel's FUSE_* / FOPEN_* / FATTR_* macro. Plain data only: no
// behaviour, no allocation, usable from any thread; the codec (fuse/codec.h) reads and
// writes these structs with memcpy, never by casting unaligned bytes.
#pragma once

#include <sys/ioctl.h>
#include <cstddef>
#include <cstdint>

namespace mica::fuse {

inline constexpr uint32_t kKernelVersion = 7;
inline constexpr uint32_t kKernelMinorVersion = 45;
// The oldest kernel minor this daemon speaks: 7.31 (Linux 5.4) has every struct at its
// current size except init (7.36 grew it to 64 bytes) and open_out's backing_id (7.40).
inline constexpr uint32_t kMinKernelMinorVersion = 31;
inline constexpr uint64_t kRootId = 1;  // FUSE_ROOT_ID
// The smallest buffer a /dev/fuse read may use (FUSE_MIN_READ_BUFFER).
inline constexpr size_t kMinReadBufferBytes = 8192;

enum class Opcode : uint32_t {
  kLookup = 1,
  kForget = 2,
  kGetattr = 3,
  kSetattr = 4,
  kReadlink = 5,
  kSymlink = 6,
  kMknod = 8,
  kMkdir = 9,
  kUnlink = 10,
  kRmdir = 11,
  kRename = 12,
  kLink = 13,
  kOpen = 14,
  kRead = 15,
  kWrite = 16,
  kStatfs = 17,
  kRelease = 18,
  kFsync = 20,
  kSetxattr = 21,
  kGetxattr = 22,
  kListxattr = 23,
  kRemovexattr = 24,
  kFlush = 25,
  kInit = 26,
  kOpendir = 27,
  kReaddir = 28,
  kReleasedir = 29,
  kFsyncdir = 30,
  kGetlk = 31,
  kSetlk = 32,
  kSetlkw = 33,
  kAccess = 34,
  kCreate = 35,
  kInterrupt = 36,
  kBmap = 37,
  kDestroy = 38,
  kIoctl = 39,
  kPoll = 40,
  kNotifyReply = 41,
  kBatchForget = 42,
  kFallocate = 43,
  kReaddirplus = 44,
  kRename2 = 45,
  kLseek = 46,
  kCopyFileRange = 47,
  kSetupmapping = 48,
  kRemovemapping = 49,
  kSyncfs = 50,
  kTmpfile = 51,
  kStatx = 52,
  kCopyFileRange64 = 53,
};
// One past the largest opcode above (metrics index arrays by opcode).
inline constexpr uint32_t kOpcodeLimit = 54;

// Notification codes (fuse_notify_code): the `error` field of an OutHeader with unique 0.
enum class NotifyCode : int32_t {
  kPoll = 1,
  kInvalInode = 2,
  kInvalEntry = 3,
  kStore = 4,
  kRetrieve = 5,
  kDelete = 6,
  kResend = 7,
  kIncEpoch = 8,
  kPrune = 9,
};

// INIT flags (fuse_init_in.flags / fuse_init_out.flags; bits 32..63 travel in flags2).
inline constexpr uint64_t kInitAsyncRead = 1ULL << 0;
inline constexpr uint64_t kInitPosixLocks = 1ULL << 1;
inline constexpr uint64_t kInitFileOps = 1ULL << 2;
inline constexpr uint64_t kInitAtomicOTrunc = 1ULL << 3;
inline constexpr uint64_t kInitExportSupport = 1ULL << 4;
inline constexpr uint64_t kInitBigWrites = 1ULL << 5;
inline constexpr uint64_t kInitDontMask = 1ULL << 6;
inline constexpr uint64_t kInitSpliceWrite = 1ULL << 7;
inline constexpr uint64_t kInitSpliceMove = 1ULL << 8;
inline constexpr uint64_t kInitSpliceRead = 1ULL << 9;
inline constexpr uint64_t kInitFlockLocks = 1ULL << 10;
inline constexpr uint64_t kInitHasIoctlDir = 1ULL << 11;
inline constexpr uint64_t kInitAutoInvalData = 1ULL << 12;
inline constexpr uint64_t kInitDoReaddirplus = 1ULL << 13;
inline constexpr uint64_t kInitReaddirplusAuto = 1ULL << 14;
inline constexpr uint64_t kInitAsyncDio = 1ULL << 15;
inline constexpr uint64_t kInitWritebackCache = 1ULL << 16;
inline constexpr uint64_t kInitNoOpenSupport = 1ULL << 17;
inline constexpr uint64_t kInitParallelDirops = 1ULL << 18;
inline constexpr uint64_t kInitHandleKillpriv = 1ULL << 19;
inline constexpr uint64_t kInitPosixAcl = 1ULL << 20;
inline constexpr uint64_t kInitAbortError = 1ULL << 21;
inline constexpr uint64_t kInitMaxPages = 1ULL << 22;
inline constexpr uint64_t kInitCacheSymlinks = 1ULL << 23;
inline constexpr uint64_t kInitNoOpendirSupport = 1ULL << 24;
inline constexpr uint64_t kInitExplicitInvalData = 1ULL << 25;
inline constexpr uint64_t kInitMapAlignment = 1ULL << 26;
inline constexpr uint64_t kInitSubmounts = 1ULL << 27;
inline constexpr uint64_t kInitHandleKillprivV2 = 1ULL << 28;
inline constexpr uint64_t kInitSetxattrExt = 1ULL << 29;
inline constexpr uint64_t kInitInitExt = 1ULL << 30;  // FUSE_INIT_EXT: flags2 is valid
inline constexpr uint64_t kInitInitReserved = 1ULL << 31;
inline constexpr uint64_t kInitSecurityCtx = 1ULL << 32;
inline constexpr uint64_t kInitHasInodeDax = 1ULL << 33;
inline constexpr uint64_t kInitCreateSuppGroup = 1ULL << 34;
inline constexpr uint64_t kInitHasExpireOnly = 1ULL << 35;
inline constexpr uint64_t kInitDirectIoAllowMmap = 1ULL << 36;
inline constexpr uint64_t kInitPassthrough = 1ULL << 37;
inline constexpr uint64_t kInitNoExportSupport = 1ULL << 38;
inline constexpr uint64_t kInitHasResend = 1ULL << 39;
inline constexpr uint64_t kInitAllowIdmap = 1ULL << 40;
inline constexpr uint64_t kInitOverIoUring = 1ULL << 41;  // flags2 bit 9
inline constexpr uint64_t kInitRequestTimeout = 1ULL << 42;

// Open reply flags (fuse_open_out.open_flags).
inline constexpr uint32_t kFopenDirectIo = 1U << 0;
inline constexpr uint32_t kFopenKeepCache = 1U << 1;
inline constexpr uint32_t kFopenNonseekable = 1U << 2;
inline constexpr uint32_t kFopenCacheDir = 1U << 3;
inline constexpr uint32_t kFopenStream = 1U << 4;
inline constexpr uint32_t kFopenNoflush = 1U << 5;
inline constexpr uint32_t kFopenParallelDirectWrites = 1U << 6;
inline constexpr uint32_t kFopenPassthrough = 1U << 7;

// SETATTR valid bits (fuse_setattr_in.valid).
inline constexpr uint32_t kFattrMode = 1U << 0;
inline constexpr uint32_t kFattrUid = 1U << 1;
inline constexpr uint32_t kFattrGid = 1U << 2;
inline constexpr uint32_t kFattrSize = 1U << 3;
inline constexpr uint32_t kFattrAtime = 1U << 4;
inline constexpr uint32_t kFattrMtime = 1U << 5;
inline constexpr uint32_t kFattrFh = 1U << 6;
inline constexpr uint32_t kFattrAtimeNow = 1U << 7;
inline constexpr uint32_t kFattrMtimeNow = 1U << 8;
inline constexpr uint32_t kFattrLockowner = 1U << 9;
inline constexpr uint32_t kFattrCtime = 1U << 10;
inline constexpr uint32_t kFattrKillSuidgid = 1U << 11;

// Smaller flag sets.
inline constexpr uint32_t kGetattrFh = 1U << 0;           // getattr_in.getattr_flags
inline constexpr uint32_t kReleaseFlush = 1U << 0;        // release_in.release_flags
inline constexpr uint32_t kReleaseFlockUnlock = 1U << 1;  // release_in.release_flags
inline constexpr uint32_t kWriteCache = 1U << 0;          // write_in.write_flags
inline constexpr uint32_t kWriteLockowner = 1U << 1;
inline constexpr uint32_t kWriteKillSuidgid = 1U << 2;
inline constexpr uint32_t kReadLockowner = 1U << 1;    // read_in.read_flags
inline constexpr uint32_t kOpenKillSuidgid = 1U << 0;  // open_in.open_flags
inline constexpr uint32_t kFsyncFdatasync = 1U << 0;   // fsync_in.fsync_flags
inline constexpr uint32_t kLkFlock = 1U << 0;          // lk_in.lk_flags
inline constexpr uint32_t kExpireOnly = 1U << 0;       // notify_inval_entry_out.flags
inline constexpr uint32_t kRenameNoreplace = 1U << 0;  // rename2_in.flags (RENAME_*)
inline constexpr uint32_t kRenameExchange = 1U << 1;
inline constexpr uint32_t kRenameWhiteout = 1U << 2;

// Request extensions (fuse_ext_header.type), after the arguments; total_extlen counts
// 8-byte units.
inline constexpr uint32_t kExtGroups = 32;  // FUSE_EXT_GROUPS: fuse_supp_groups

// FUSE_DEV_IOC_CLONE: attach a freshly opened /dev/fuse fd to the session of the fd passed.
inline constexpr unsigned long kDevIocClone = _IOR(229, 0, uint32_t);

struct InHeader {  // fuse_in_header
  uint32_t len;
  uint32_t opcode;
  uint64_t unique;
  uint64_t nodeid;
  uint32_t uid;
  uint32_t gid;
  uint32_t pid;
  uint16_t total_extlen;  // in 8-byte units
  uint16_t padding;
};
static_assert(sizeof(InHeader) == 40);

struct OutHeader {  // fuse_out_header
  uint32_t len;
  int32_t error;
  uint64_t unique;
};
static_assert(sizeof(OutHeader) == 16);

struct Attr {  // fuse_attr
  uint64_t ino;
  uint64_t size;
  uint64_t blocks;
  uint64_t atime;
  uint64_t mtime;
  uint64_t ctime;
  uint32_t atimensec;
  uint32_t mtimensec;
  uint32_t ctimensec;
  uint32_t mode;
  uint32_t nlink;
  uint32_t uid;
  uint32_t gid;
  uint32_t rdev;
  uint32_t blksize;
  uint32_t flags;
};
static_assert(sizeof(Attr) == 88);

struct Kstatfs {  // fuse_kstatfs
  uint64_t blocks;
  uint64_t bfree;
  uint64_t bavail;
  uint64_t files;
  uint64_t ffree;
  uint32_t bsize;
  uint32_t namelen;
  uint32_t frsize;
  uint32_t padding;
  uint32_t spare[6];
};
static_assert(sizeof(Kstatfs) == 80);

struct FileLock {  // fuse_file_lock
  uint64_t start;
  uint64_t end;
  uint32_t type;
  uint32_t pid;
};
static_assert(sizeof(FileLock) == 24);

struct EntryOut {  // fuse_entry_out
  uint64_t nodeid;
  uint64_t generation;
  uint64_t entry_valid;  // seconds
  uint64_t attr_valid;
  uint32_t entry_valid_nsec;
  uint32_t attr_valid_nsec;
  Attr attr;
};
static_assert(sizeof(EntryOut) == 128);

struct ForgetIn {  // fuse_forget_in
  uint64_t nlookup;
};
static_assert(sizeof(ForgetIn) == 8);

struct ForgetOne {  // fuse_forget_one
  uint64_t nodeid;
  uint64_t nlookup;
};
static_assert(sizeof(ForgetOne) == 16);

struct BatchForgetIn {  // fuse_batch_forget_in; `count` ForgetOne follow
  uint32_t count;
  uint32_t dummy;
};
static_assert(sizeof(BatchForgetIn) == 8);

struct GetattrIn {  // fuse_getattr_in
  uint32_t getattr_flags;
  uint32_t dummy;
  uint64_t fh;
};
static_assert(sizeof(GetattrIn) == 16);

struct AttrOut {  // fuse_attr_out
  uint64_t attr_valid;
  uint32_t attr_valid_nsec;
  uint32_t dummy;
  Attr attr;
};
static_assert(sizeof(AttrOut) == 104);

struct MknodIn {  // fuse_mknod_in; the name follows
  uint32_t mode;
  uint32_t rdev;
  uint32_t umask;
  uint32_t padding;
};
static_assert(sizeof(MknodIn) == 16);

struct MkdirIn {  // fuse_mkdir_in; the name follows
  uint32_t mode;
  uint32_t umask;
};
static_assert(sizeof(MkdirIn) == 8);

struct RenameIn {  // fuse_rename_in; old name and new name follow
  uint64_t newdir;
};
static_assert(sizeof(RenameIn) == 8);

struct Rename2In {  // fuse_rename2_in
  uint64_t newdir;
  uint32_t flags;
  uint32_t padding;
};
static_assert(sizeof(Rename2In) == 16);

struct LinkIn {  // fuse_link_in; the new name follows
  uint64_t oldnodeid;
};
static_assert(sizeof(LinkIn) == 8);

struct SetattrIn {  // fuse_setattr_in
  uint32_t valid;
  uint32_t padding;
  uint64_t fh;
  uint64_t size;
  uint64_t lock_owner;
  uint64_t atime;
  uint64_t mtime;
  uint64_t ctime;
  uint32_t atimensec;
  uint32_t mtimensec;
  uint32_t ctimensec;
  uint32_t mode;
  uint32_t unused4;
  uint32_t uid;
  uint32_t gid;
  uint32_t unused5;
};
static_assert(sizeof(SetattrIn) == 88);

struct OpenIn {  // fuse_open_in (OPEN and OPENDIR)
  uint32_t flags;
  uint32_t open_flags;
};
static_assert(sizeof(OpenIn) == 8);

struct CreateIn {  // fuse_create_in (CREATE and TMPFILE); the name follows
  uint32_t flags;
  uint32_t mode;
  uint32_t umask;
  uint32_t open_flags;
};
static_assert(sizeof(CreateIn) == 16);

struct OpenOut {  // fuse_open_out
  uint64_t fh;
  uint32_t open_flags;
  int32_t backing_id;
};
static_assert(sizeof(OpenOut) == 16);

struct ReleaseIn {  // fuse_release_in (RELEASE and RELEASEDIR)
  uint64_t fh;
  uint32_t flags;
  uint32_t release_flags;
  uint64_t lock_owner;
};
static_assert(sizeof(ReleaseIn) == 24);

struct FlushIn {  // fuse_flush_in
  uint64_t fh;
  uint32_t unused;
  uint32_t padding;
  uint64_t lock_owner;
};
static_assert(sizeof(FlushIn) == 24);

struct ReadIn {  // fuse_read_in (READ, READDIR, READDIRPLUS)
  uint64_t fh;
  uint64_t offset;
  uint32_t size;
  uint32_t read_flags;
  uint64_t lock_owner;
  uint32_t flags;
  uint32_t padding;
};
static_assert(sizeof(ReadIn) == 40);

struct WriteIn {  // fuse_write_in; the data follows
  uint64_t fh;
  uint64_t offset;
  uint32_t size;
  uint32_t write_flags;
  uint64_t lock_owner;
  uint32_t flags;
  uint32_t padding;
};
static_assert(sizeof(WriteIn) == 40);

struct WriteOut {  // fuse_write_out
  uint32_t size;
  uint32_t padding;
};
static_assert(sizeof(WriteOut) == 8);

struct StatfsOut {  // fuse_statfs_out
  Kstatfs st;
};
static_assert(sizeof(StatfsOut) == 80);

struct FsyncIn {  // fuse_fsync_in (FSYNC and FSYNCDIR)
  uint64_t fh;
  uint32_t fsync_flags;
  uint32_t padding;
};
static_assert(sizeof(FsyncIn) == 16);

// fuse_setxattr_in as the kernel sends it when SETXATTR_EXT was NOT negotiated (Mica does
// not negotiate it: the extended form only adds ACL_KILL_SGID); name and value follow.
struct SetxattrIn {
  uint32_t size;
  uint32_t flags;
};
static_assert(sizeof(SetxattrIn) == 8);

struct GetxattrIn {  // fuse_getxattr_in (GETXATTR and LISTXATTR)
  uint32_t size;
  uint32_t padding;
};
static_assert(sizeof(GetxattrIn) == 8);

struct GetxattrOut {  // fuse_getxattr_out: the answer to a size-0 probe
  uint32_t size;
  uint32_t padding;
};
static_assert(sizeof(GetxattrOut) == 8);

struct LkIn {  // fuse_lk_in
  uint64_t fh;
  uint64_t owner;
  FileLock lk;
  uint32_t lk_flags;
  uint32_t padding;
};
static_assert(sizeof(LkIn) == 48);

struct LkOut {  // fuse_lk_out
  FileLock lk;
};
static_assert(sizeof(LkOut) == 24);

struct AccessIn {  // fuse_access_in
  uint32_t mask;
  uint32_t padding;
};
static_assert(sizeof(AccessIn) == 8);

struct InitIn {  // fuse_init_in (kernels before 7.36 send only the first 16 bytes)
  uint32_t major;
  uint32_t minor;
  uint32_t max_readahead;
  uint32_t flags;
  uint32_t flags2;
  uint32_t unused[11];
};
static_assert(sizeof(InitIn) == 64);
inline constexpr size_t kInitInCompatBytes = 16;

struct InitOut {  // fuse_init_out
  uint32_t major;
  uint32_t minor;
  uint32_t max_readahead;
  uint32_t flags;
  uint16_t max_background;
  uint16_t congestion_threshold;
  uint32_t max_write;
  uint32_t time_gran;
  uint16_t max_pages;
  uint16_t map_alignment;
  uint32_t flags2;
  uint32_t max_stack_depth;
  uint16_t request_timeout;
  uint16_t unused[11];
};
static_assert(sizeof(InitOut) == 64);

struct InterruptIn {  // fuse_interrupt_in
  uint64_t unique;
};
static_assert(sizeof(InterruptIn) == 8);

struct BmapIn {  // fuse_bmap_in
  uint64_t block;
  uint32_t blocksize;
  uint32_t padding;
};
static_assert(sizeof(BmapIn) == 16);

struct IoctlIn {  // fuse_ioctl_in
  uint64_t fh;
  uint32_t flags;
  uint32_t cmd;
  uint64_t arg;
  uint32_t in_size;
  uint32_t out_size;
};
static_assert(sizeof(IoctlIn) == 32);

struct PollIn {  // fuse_poll_in
  uint64_t fh;
  uint64_t kh;
  uint32_t flags;
  uint32_t events;
};
static_assert(sizeof(PollIn) == 24);

struct FallocateIn {  // fuse_fallocate_in
  uint64_t fh;
  uint64_t offset;
  uint64_t length;
  uint32_t mode;
  uint32_t padding;
};
static_assert(sizeof(FallocateIn) == 32);

struct LseekIn {  // fuse_lseek_in
  uint64_t fh;
  uint64_t offset;
  uint32_t whence;
  uint32_t padding;
};
static_assert(sizeof(LseekIn) == 24);

struct LseekOut {  // fuse_lseek_out
  uint64_t offset;
};
static_assert(sizeof(LseekOut) == 8);

struct CopyFileRangeIn {  // fuse_copy_file_range_in (COPY_FILE_RANGE and _64)
  uint64_t fh_in;
  uint64_t off_in;
  uint64_t nodeid_out;
  uint64_t fh_out;
  uint64_t off_out;
  uint64_t len;
  uint64_t flags;
};
static_assert(sizeof(CopyFileRangeIn) == 56);

struct CopyFileRangeOut {  // fuse_copy_file_range_out (7.45, the answer to _64)
  uint64_t bytes_copied;
};
static_assert(sizeof(CopyFileRangeOut) == 8);

struct SyncfsIn {  // fuse_syncfs_in
  uint64_t padding;
};
static_assert(sizeof(SyncfsIn) == 8);

struct StatxIn {  // fuse_statx_in
  uint32_t getattr_flags;
  uint32_t reserved;
  uint64_t fh;
  uint32_t sx_flags;
  uint32_t sx_mask;
};
static_assert(sizeof(StatxIn) == 24);

struct NotifyRetrieveIn {  // fuse_notify_retrieve_in (the NOTIFY_REPLY op header)
  uint64_t dummy1;
  uint64_t offset;
  uint32_t size;
  uint32_t dummy2;
  uint64_t dummy3;
  uint64_t dummy4;
};
static_assert(sizeof(NotifyRetrieveIn) == 40);

struct SetupmappingIn {  // fuse_setupmapping_in (DAX; answered ENOSYS)
  uint64_t fh;
  uint64_t foffset;
  uint64_t len;
  uint64_t flags;
  uint64_t moffset;
};
static_assert(sizeof(SetupmappingIn) == 40);

struct Dirent {  // fuse_dirent; `namelen` name bytes follow, padded to kDirentAlign
  uint64_t ino;
  uint64_t off;
  uint32_t namelen;
  uint32_t type;
};
static_assert(sizeof(Dirent) == 24);

struct Direntplus {  // fuse_direntplus
  EntryOut entry_out;
  Dirent dirent;
};
static_assert(sizeof(Direntplus) == 152);

inline constexpr size_t kDirentAlign = 8;  // FUSE_DIRENT_ALIGN
constexpr size_t dirent_align(size_t bytes) {
  return (bytes + kDirentAlign - 1) & ~(kDirentAlign - 1);
}

struct NotifyInvalInodeOut {  // fuse_notify_inval_inode_out
  uint64_t ino;
  int64_t off;
  int64_t len;  // 0 and off 0: attributes only; -1: all data from off
};
static_assert(sizeof(NotifyInvalInodeOut) == 24);

struct NotifyInvalEntryOut {  // fuse_notify_inval_entry_out; name + NUL follow
  uint64_t parent;
  uint32_t namelen;
  uint32_t flags;
};
static_assert(sizeof(NotifyInvalEntryOut) == 16);

struct NotifyDeleteOut {  // fuse_notify_delete_out; name + NUL follow
  uint64_t parent;
  uint64_t child;
  uint32_t namelen;
  uint32_t padding;
};
static_assert(sizeof(NotifyDeleteOut) == 24);

struct ExtHeader {  // fuse_ext_header
  uint32_t size;    // bytes, this header included, a multiple of 8
  uint32_t type;
};
static_assert(sizeof(ExtHeader) == 8);

struct SuppGroups {  // fuse_supp_groups; nr_groups uint32_t follow
  uint32_t nr_groups;
};
static_assert(sizeof(SuppGroups) == 4);

// FUSE over io_uring (7.42+).
inline constexpr size_t kUringInOutHeaderBytes = 128;  // FUSE_URING_IN_OUT_HEADER_SZ
inline constexpr size_t kUringOpInOutBytes = 128;      // FUSE_URING_OP_IN_OUT_SZ

enum class UringCmd : uint32_t {  // fuse_uring_cmd, the SQE's cmd_op
  kInvalid = 0,
  kRegister = 1,
  kCommitAndFetch = 2,
};

struct UringEntInOut {  // fuse_uring_ent_in_out
  uint64_t flags;
  uint64_t commit_id;  // the request's unique, to be echoed by COMMIT_AND_FETCH
  uint32_t payload_sz;
  uint32_t padding;
  uint64_t reserved;
};
static_assert(sizeof(UringEntInOut) == 32);

struct UringReqHeader {                 // fuse_uring_req_header
  char in_out[kUringInOutHeaderBytes];  // InHeader in, OutHeader back
  char op_in[kUringOpInOutBytes];       // the opcode's fixed argument struct
  UringEntInOut ring_ent_in_out;
};
static_assert(sizeof(UringReqHeader) == 288);

struct UringCmdReq {  // fuse_uring_cmd_req, in the SQE128 command area
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;
  uint8_t padding[6];
};
static_assert(sizeof(UringCmdReq) == 24);

}  // namespace mica::fuse
