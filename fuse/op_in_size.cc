// op_in_size (fuse/request.h): the fixed argument struct of each opcode, by the kernel's
// fuse_*_in layouts of protocol 7.31 and later (fuse/protocol.h).
#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "fuse/protocol.h"
#include "fuse/request.h"

namespace mica::fuse {

namespace {

// Opcodes with a fixed struct; every other opcode has none (names only, or nothing).
constexpr std::pair<Opcode, size_t> kOpInSizes[] = {
    {Opcode::kForget, sizeof(ForgetIn)},
    {Opcode::kGetattr, sizeof(GetattrIn)},
    {Opcode::kSetattr, sizeof(SetattrIn)},
    {Opcode::kMknod, sizeof(MknodIn)},
    {Opcode::kMkdir, sizeof(MkdirIn)},
    {Opcode::kRename, sizeof(RenameIn)},
    {Opcode::kRename2, sizeof(Rename2In)},
    {Opcode::kLink, sizeof(LinkIn)},
    {Opcode::kOpen, sizeof(OpenIn)},
    {Opcode::kOpendir, sizeof(OpenIn)},
    {Opcode::kRead, sizeof(ReadIn)},
    {Opcode::kReaddir, sizeof(ReadIn)},
    {Opcode::kReaddirplus, sizeof(ReadIn)},
    {Opcode::kWrite, sizeof(WriteIn)},
    {Opcode::kRelease, sizeof(ReleaseIn)},
    {Opcode::kReleasedir, sizeof(ReleaseIn)},
    {Opcode::kFsync, sizeof(FsyncIn)},
    {Opcode::kFsyncdir, sizeof(FsyncIn)},
    {Opcode::kSetxattr, sizeof(SetxattrIn)},
    {Opcode::kGetxattr, sizeof(GetxattrIn)},
    {Opcode::kListxattr, sizeof(GetxattrIn)},
    {Opcode::kFlush, sizeof(FlushIn)},
    {Opcode::kInit, sizeof(InitIn)},
    {Opcode::kGetlk, sizeof(LkIn)},
    {Opcode::kSetlk, sizeof(LkIn)},
    {Opcode::kSetlkw, sizeof(LkIn)},
    {Opcode::kAccess, sizeof(AccessIn)},
    {Opcode::kCreate, sizeof(CreateIn)},
    {Opcode::kTmpfile, sizeof(CreateIn)},
    {Opcode::kInterrupt, sizeof(InterruptIn)},
    {Opcode::kBmap, sizeof(BmapIn)},
    {Opcode::kIoctl, sizeof(IoctlIn)},
    {Opcode::kPoll, sizeof(PollIn)},
    {Opcode::kNotifyReply, sizeof(NotifyRetrieveIn)},
    {Opcode::kBatchForget, sizeof(BatchForgetIn)},
    {Opcode::kFallocate, sizeof(FallocateIn)},
    {Opcode::kLseek, sizeof(LseekIn)},
    {Opcode::kCopyFileRange, sizeof(CopyFileRangeIn)},
    {Opcode::kCopyFileRange64, sizeof(CopyFileRangeIn)},
    {Opcode::kSetupmapping, sizeof(SetupmappingIn)},
    {Opcode::kRemovemapping, sizeof(uint64_t)},  // fuse_removemapping_in
    {Opcode::kSyncfs, sizeof(SyncfsIn)},
    {Opcode::kStatx, sizeof(StatxIn)},
};

constexpr std::array<uint16_t, kOpcodeLimit> make_table() {
  std::array<uint16_t, kOpcodeLimit> table{};
  for (const auto& [op, size] : kOpInSizes) table[static_cast<uint32_t>(op)] = size;
  return table;
}
constexpr std::array<uint16_t, kOpcodeLimit> kTable = make_table();

}  // namespace

size_t op_in_size(uint32_t opcode, uint32_t kernel_minor) {
  (void)kernel_minor;  // every struct above has had its current size since 7.31
  return opcode < kOpcodeLimit ? kTable[opcode] : 0;
}

}  // namespace mica::fuse
