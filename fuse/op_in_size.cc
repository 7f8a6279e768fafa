// op_in_size (fuse/request.h): the fixed argument struct of each opcode, by the kernel's
// fuse_*_in layouts of protocol 7.31 and later (fuse/protocol.h).
#include <cstddef>
#include <cstdint>

#include "fuse/protocol.h"
#include "fuse/request.h"

namespace mica::fuse {

size_t op_in_size(uint32_t opcode, uint32_t kernel_minor) {
  (void)kernel_minor;  // every struct below has had its current size since 7.31
  switch (static_cast<Opcode>(opcode)) {
    case Opcode::kForget:
      return sizeof(ForgetIn);
    case Opcode::kGetattr:
      return sizeof(GetattrIn);
    case Opcode::kSetattr:
      return sizeof(SetattrIn);
    case Opcode::kMknod:
      return sizeof(MknodIn);
    case Opcode::kMkdir:
      return sizeof(MkdirIn);
    case Opcode::kRename:
      return sizeof(RenameIn);
    case Opcode::kRename2:
      return sizeof(Rename2In);
    case Opcode::kLink:
      return sizeof(LinkIn);
    case Opcode::kOpen:
    case Opcode::kOpendir:
      return sizeof(OpenIn);
    case Opcode::kRead:
    case Opcode::kReaddir:
    case Opcode::kReaddirplus:
      return sizeof(ReadIn);
    case Opcode::kWrite:
      return sizeof(WriteIn);
    case Opcode::kRelease:
    case Opcode::kReleasedir:
      return sizeof(ReleaseIn);
    case Opcode::kFsync:
    case Opcode::kFsyncdir:
      return sizeof(FsyncIn);
    case Opcode::kSetxattr:
      return sizeof(SetxattrIn);
    case Opcode::kGetxattr:
    case Opcode::kListxattr:
      return sizeof(GetxattrIn);
    case Opcode::kFlush:
      return sizeof(FlushIn);
    case Opcode::kInit:
      return sizeof(InitIn);
    case Opcode::kGetlk:
    case Opcode::kSetlk:
    case Opcode::kSetlkw:
      return sizeof(LkIn);
    case Opcode::kAccess:
      return sizeof(AccessIn);
    case Opcode::kCreate:
    case Opcode::kTmpfile:
      return sizeof(CreateIn);
    case Opcode::kInterrupt:
      return sizeof(InterruptIn);
    case Opcode::kBmap:
      return sizeof(BmapIn);
    case Opcode::kIoctl:
      return sizeof(IoctlIn);
    case Opcode::kPoll:
      return sizeof(PollIn);
    case Opcode::kNotifyReply:
      return sizeof(NotifyRetrieveIn);
    case Opcode::kBatchForget:
      return sizeof(BatchForgetIn);
    case Opcode::kFallocate:
      return sizeof(FallocateIn);
    case Opcode::kLseek:
      return sizeof(LseekIn);
    case Opcode::kCopyFileRange:
    case Opcode::kCopyFileRange64:
      return sizeof(CopyFileRangeIn);
    case Opcode::kSetupmapping:
      return sizeof(SetupmappingIn);
    case Opcode::kRemovemapping:
      return sizeof(uint64_t);  // fuse_removemapping_in
    case Opcode::kSyncfs:
      return sizeof(SyncfsIn);
    case Opcode::kStatx:
      return sizeof(StatxIn);
    // Names only (LOOKUP, UNLINK, RMDIR, SYMLINK, REMOVEXATTR) or nothing at all.
    case Opcode::kLookup:
    case Opcode::kReadlink:
    case Opcode::kSymlink:
    case Opcode::kUnlink:
    case Opcode::kRmdir:
    case Opcode::kStatfs:
    case Opcode::kRemovexattr:
    case Opcode::kDestroy:
      return 0;
  }
  return 0;
}

}  // namespace mica::fuse
