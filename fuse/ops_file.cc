// Open files of the Dispatcher (fuse/dispatcher.h), wired to the mount's FileTable
// (fuse/file_table.h): OPEN, CREATE, READ, WRITE, FLUSH, RELEASE, FSYNC, FALLOCATE, LSEEK,
// COPY_FILE_RANGE(_64); and the answers to what the daemon does not implement.
#include <cerrno>
#include <climits>

#include "fuse/dispatcher.h"
#include "fuse/dispatcher_state.h"
#include "fuse/node_id.h"

namespace mica::fuse {

namespace {

OpenOut open_out(const OpenedFile& opened) {
  OpenOut out{};
  out.fh = opened.handle;
  if (opened.keep_cache) out.open_flags |= kFopenKeepCache;
  // Parallel direct writes: the kernel takes the inode lock shared for writes inside the
  // file; the FileTable keeps disjoint writes of one handle apart.
  if (opened.direct_io) out.open_flags |= kFopenDirectIo | kFopenParallelDirectWrites;
  // A read-only handle buffers nothing and reports no length: its FLUSH would be a round
  // trip that does nothing (the kernel keeps locks itself, so none is released by it).
  if (opened.read_only) out.open_flags |= kFopenNoflush;
  return out;
}

void reply_status(Request& request, const Status& status) {
  request.reply(fuse_error(status), {});
}

// The old COPY_FILE_RANGE answers in a fuse_write_out (32 bits of length).
constexpr uint64_t kCopyLengthMax32 = uint64_t{UINT32_MAX} & ~uint64_t{4095};

}  // namespace

Task<void> Dispatcher::handle_file_op(Request& request) {
  switch (request.opcode()) {
    case Opcode::kOpen:
      return open(request);
    case Opcode::kCreate:
      return create(request);
    case Opcode::kRead:
      return read(request);
    case Opcode::kWrite:
      return write(request);
    case Opcode::kFallocate:
      return fallocate(request);
    case Opcode::kLseek:
      return lseek(request);
    case Opcode::kCopyFileRange:
    case Opcode::kCopyFileRange64:
      return copy_file_range(request);
    case Opcode::kFlush:
    case Opcode::kRelease:
    case Opcode::kFsync:
      return handle_handle_op(request);
    default:
      return not_implemented(request);
  }
}

Task<void> Dispatcher::not_implemented(Request& request) {
  // Locks are the kernel's (POSIX_LOCKS / FLOCK_LOCKS not negotiated), so GETLK/SETLK never
  // come; TMPFILE: Mica has no unnamed files; the rest (BMAP, IOCTL, POLL, STATX, DAX
  // mappings, SYNCFS) have kernel fallbacks for ENOSYS.
  request.reply(request.opcode() == Opcode::kTmpfile ? -EOPNOTSUPP : -ENOSYS, {});
  co_return;
}

Task<void> Dispatcher::handle_handle_op(Request& request) {
  uint64_t fh = 0;
  if (request.opcode() == Opcode::kFlush) {
    if (auto in = read_struct<FlushIn>(request.op_in())) fh = in->fh;
  } else if (request.opcode() == Opcode::kRelease) {
    if (auto in = read_struct<ReleaseIn>(request.op_in())) fh = in->fh;
  } else if (auto in = read_struct<FsyncIn>(request.op_in())) {
    fh = in->fh;
  }
  if (fh == 0) {
    request.reply(-EINVAL, {});
    co_return;
  }
  Status status;
  if (request.opcode() == Opcode::kFlush) {
    auto flushing = files_->flush(fh);
    status = co_await std::move(flushing);
  } else if (request.opcode() == Opcode::kRelease) {
    auto releasing = files_->release(fh);
    status = co_await std::move(releasing);
  } else {
    auto syncing = files_->fsync(fh);
    status = co_await std::move(syncing);
  }
  reply_status(request, status);
}

Task<void> Dispatcher::open(Request& request) {
  std::optional<OpenIn> in = read_struct<OpenIn>(request.op_in());
  if (!in) {
    request.reply(-EINVAL, {});
    co_return;
  }
  auto opening = files_->open(to_inode(request.header().nodeid), static_cast<int>(in->flags),
                              credentials(request));
  Result<OpenedFile> opened = co_await std::move(opening);
  if (!opened.ok()) {
    reply_status(request, opened.status());
    co_return;
  }
  OpenOut out = open_out(*opened);
  std::span<const std::byte> pieces[] = {as_bytes(out)};
  request.reply(0, pieces);
}

Task<void> Dispatcher::create(Request& request) {
  std::optional<CreateIn> in = read_struct<CreateIn>(request.op_in());
  std::optional<std::string_view> name = read_one_name(request.payload());
  if (!in || !name) {
    request.reply(-EINVAL, {});
    co_return;
  }
  if (int error = name_error(*name); error != 0) {
    request.reply(error, {});
    co_return;
  }
  auto creating =
      files_->create(to_inode(request.header().nodeid), std::string(*name),
                     in->mode & meta::kModeBits, static_cast<int>(in->flags), credentials(request));
  Result<OpenedFile> opened = co_await std::move(creating);
  if (!opened.ok()) {
    reply_status(request, opened.status());
    co_return;
  }
  EntryOut entry = make_entry_out(opened->attrs, options_.times);
  OpenOut out = open_out(*opened);
  std::span<const std::byte> pieces[] = {as_bytes(entry), as_bytes(out)};
  request.reply(0, pieces);
}

Task<void> Dispatcher::read(Request& request) {
  std::optional<ReadIn> in = read_struct<ReadIn>(request.op_in());
  std::span<std::byte> area = request.reply_area();
  if (!in || in->size > area.size()) {
    request.reply(-EINVAL, {});
    co_return;
  }
  auto reading = files_->read(in->fh, in->offset, area.first(in->size));
  Result<size_t> got = co_await std::move(reading);
  if (!got.ok()) {
    reply_status(request, got.status());
    co_return;
  }
  std::span<const std::byte> pieces[] = {std::span<const std::byte>(area.first(*got))};
  request.reply(0, pieces);
}

Task<void> Dispatcher::write(Request& request) {
  std::optional<WriteIn> in = read_struct<WriteIn>(request.op_in());
  if (!in || in->size > request.payload().size()) {
    request.reply(-EINVAL, {});
    co_return;
  }
  auto writing = files_->write(in->fh, in->offset, request.payload().first(in->size));
  Result<size_t> wrote = co_await std::move(writing);
  if (!wrote.ok()) {
    reply_status(request, wrote.status());
    co_return;
  }
  WriteOut out{.size = static_cast<uint32_t>(*wrote), .padding = 0};
  std::span<const std::byte> pieces[] = {as_bytes(out)};
  request.reply(0, pieces);
}

Task<void> Dispatcher::fallocate(Request& request) {
  std::optional<FallocateIn> in = read_struct<FallocateIn>(request.op_in());
  if (!in) {
    request.reply(-EINVAL, {});
    co_return;
  }
  auto allocating = files_->fallocate(in->fh, static_cast<int>(in->mode), in->offset, in->length);
  Status status = co_await std::move(allocating);
  reply_status(request, status);
}

Task<void> Dispatcher::lseek(Request& request) {
  std::optional<LseekIn> in = read_struct<LseekIn>(request.op_in());
  if (!in) {
    request.reply(-EINVAL, {});
    co_return;
  }
  auto seeking =
      files_->lseek(in->fh, static_cast<int64_t>(in->offset), static_cast<int>(in->whence));
  Result<uint64_t> at = co_await std::move(seeking);
  if (!at.ok()) {
    reply_status(request, at.status());
    co_return;
  }
  LseekOut out{.offset = *at};
  std::span<const std::byte> pieces[] = {as_bytes(out)};
  request.reply(0, pieces);
}

Task<void> Dispatcher::copy_file_range(Request& request) {
  std::optional<CopyFileRangeIn> in = read_struct<CopyFileRangeIn>(request.op_in());
  if (!in || in->flags != 0) {
    request.reply(-EINVAL, {});
    co_return;
  }
  bool wide = request.opcode() == Opcode::kCopyFileRange64;
  uint64_t length = wide ? in->len : std::min(in->len, kCopyLengthMax32);
  auto copying = files_->copy_range(in->fh_in, in->off_in, in->fh_out, in->off_out,
                                    static_cast<size_t>(length));
  Result<size_t> copied = co_await std::move(copying);
  if (!copied.ok()) {
    reply_status(request, copied.status());
    co_return;
  }
  if (wide) {
    CopyFileRangeOut out{.bytes_copied = *copied};
    std::span<const std::byte> pieces[] = {as_bytes(out)};
    request.reply(0, pieces);
  } else {
    WriteOut out{.size = static_cast<uint32_t>(*copied), .padding = 0};
    std::span<const std::byte> pieces[] = {as_bytes(out)};
    request.reply(0, pieces);
  }
}

}  // namespace mica::fuse
