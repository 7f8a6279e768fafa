#include "async/file.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>

namespace mica {

AlignedBuffer::AlignedBuffer(size_t size_bytes, size_t alignment)
    : size_(align_up(size_bytes, alignment)) {
  data_ = static_cast<std::byte*>(std::aligned_alloc(alignment, size_ ? size_ : alignment));
  MICA_ASSERT(data_ != nullptr);
  size_ = size_bytes;
}

AlignedBuffer AlignedBuffer::huge_pages(size_t size_bytes) {
  size_t mapped = align_up(std::max<size_t>(size_bytes, 1), kHugePageBytes);
  // Map one huge page more than needed and trim both ends to a 2 MiB boundary.
  size_t reserved = mapped + kHugePageBytes;
  void* raw = ::mmap(nullptr, reserved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  MICA_ASSERT(raw != MAP_FAILED);
  auto base = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = align_up(base, kHugePageBytes);
  if (aligned > base) ::munmap(raw, aligned - base);
  uintptr_t tail = aligned + mapped;
  if (base + reserved > tail) ::munmap(reinterpret_cast<void*>(tail), base + reserved - tail);
  // Advice only: without transparent huge pages the buffer keeps 4 KiB pages.
  (void)::madvise(reinterpret_cast<void*>(aligned), mapped, MADV_HUGEPAGE);
  AlignedBuffer b;
  b.data_ = reinterpret_cast<std::byte*>(aligned);
  b.size_ = size_bytes;
  b.mapped_bytes_ = mapped;
  return b;
}

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_bytes_(std::exchange(other.mapped_bytes_, 0)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_bytes_ = std::exchange(other.mapped_bytes_, 0);
  }
  return *this;
}

AlignedBuffer::~AlignedBuffer() {
  release();
}

void AlignedBuffer::release() {
  if (mapped_bytes_ != 0)
    ::munmap(data_, mapped_bytes_);
  else
    std::free(data_);
}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) Executor::current()->backend().close_now(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

File::~File() {
  if (fd_ < 0) return;
  Executor* e = Executor::current();
  MICA_ASSERT_MSG(e != nullptr, "open File destroyed outside an executor");
  e->backend().close_now(fd_);
}

Task<Result<File>> File::open(std::string path, int flags, uint32_t mode, IoOptions options) {
  OpenAwaiter awaiter;
  awaiter.path = std::move(path);
  IoOp& op = awaiter.op();
  op.opcode = IoOpcode::kOpen;
  op.path = awaiter.path.c_str();
  op.flags = flags | O_CLOEXEC;
  op.mode = mode;
  op.deadline = options.deadline;
  Result<int> fd = co_await awaiter;
  if (!fd.ok())
    co_return Status(fd.status().code(),
                     fmt::format("open {}: {}", awaiter.path, fd.status().message()));
  co_return File(*fd);
}

namespace {
template <class T>
void fill(IoAwaiter<T>& a, IoOpcode opcode, int fd, void* buffer, size_t length, uint64_t offset,
          IoOptions options) {
  MICA_ASSERT_MSG(length <= UINT32_MAX, "single I/O larger than 4 GiB");
  IoOp& op = a.op();
  op.opcode = opcode;
  op.fd = fd;
  op.buffer = buffer;
  op.length = static_cast<uint32_t>(length);
  op.offset = offset;
  op.deadline = options.deadline;
  op.rw_flags = options.rw_flags;
}
}  // namespace

IoAwaiter<size_t> File::read(std::span<std::byte> buffer, uint64_t offset, IoOptions options) {
  IoAwaiter<size_t> a;
  fill(a, IoOpcode::kRead, fd_, buffer.data(), buffer.size(), offset, options);
  return a;
}

IoAwaiter<size_t> File::write(std::span<const std::byte> buffer, uint64_t offset,
                              IoOptions options) {
  IoAwaiter<size_t> a;
  fill(a, IoOpcode::kWrite, fd_, const_cast<std::byte*>(buffer.data()), buffer.size(), offset,
       options);
  return a;
}

IoAwaiter<size_t> File::readv(std::span<const iovec> iov, uint64_t offset, IoOptions options) {
  IoAwaiter<size_t> a;
  fill(a, IoOpcode::kReadv, fd_, nullptr, 0, offset, options);
  a.op().iov = iov.data();
  a.op().iov_count = static_cast<uint32_t>(iov.size());
  return a;
}

IoAwaiter<size_t> File::writev(std::span<const iovec> iov, uint64_t offset, IoOptions options) {
  IoAwaiter<size_t> a;
  fill(a, IoOpcode::kWritev, fd_, nullptr, 0, offset, options);
  a.op().iov = iov.data();
  a.op().iov_count = static_cast<uint32_t>(iov.size());
  return a;
}

IoAwaiter<size_t> File::read_fixed(std::span<std::byte> buffer, uint64_t offset,
                                   uint16_t buffer_index, IoOptions options) {
  IoAwaiter<size_t> a;
  fill(a, IoOpcode::kReadFixed, fd_, buffer.data(), buffer.size(), offset, options);
  a.op().buffer_index = buffer_index;
  return a;
}

IoAwaiter<size_t> File::write_fixed(std::span<const std::byte> buffer, uint64_t offset,
                                    uint16_t buffer_index, IoOptions options) {
  IoAwaiter<size_t> a;
  fill(a, IoOpcode::kWriteFixed, fd_, const_cast<std::byte*>(buffer.data()), buffer.size(), offset,
       options);
  a.op().buffer_index = buffer_index;
  return a;
}

IoAwaiter<void> File::fsync(IoOptions options) {
  IoAwaiter<void> a;
  fill(a, IoOpcode::kFsync, fd_, nullptr, 0, 0, options);
  return a;
}

IoAwaiter<void> File::fdatasync(IoOptions options) {
  IoAwaiter<void> a;
  fill(a, IoOpcode::kFdatasync, fd_, nullptr, 0, 0, options);
  return a;
}

IoAwaiter<void> File::fallocate(int mode, uint64_t offset, uint64_t length, IoOptions options) {
  IoAwaiter<void> a;
  fill(a, IoOpcode::kFallocate, fd_, nullptr, 0, offset, options);
  a.op().flags = mode;
  a.op().length64 = length;
  return a;
}

IoAwaiter<void> File::close() {
  IoAwaiter<void> a;
  fill(a, IoOpcode::kClose, fd_, nullptr, 0, 0, {});
  fd_ = -1;
  return a;
}

Task<Result<size_t>> File::read_full(std::span<std::byte> buffer, uint64_t offset,
                                     IoOptions options) {
  size_t done = 0;
  while (done < buffer.size()) {
    CO_TRY_ASSIGN(size_t n, co_await read(buffer.subspan(done), offset + done, options));
    if (n == 0) break;  // end of file
    done += n;
  }
  co_return done;
}

Task<Status> File::write_full(std::span<const std::byte> buffer, uint64_t offset,
                              IoOptions options) {
  size_t done = 0;
  while (done < buffer.size()) {
    CO_TRY_ASSIGN(size_t n, co_await write(buffer.subspan(done), offset + done, options));
    if (n == 0) co_return Status(StatusCode::kIoError, "write made no progress");
    done += n;
  }
  co_return Status();
}

// ---- names ----

namespace {

Status with_path(Status s, std::string_view what, const std::string& path) {
  if (s.ok()) return s;
  return Status(s.code(), fmt::format("{} {}: {}", what, path, s.message()));
}

// One name op: the strings live in the caller's coroutine frame until the op completes.
Task<Status> name_op(IoOpcode opcode, std::string path, std::string new_path, int flags,
                     uint32_t mode, IoOptions options) {
  IoAwaiter<void> awaiter;
  IoOp& op = awaiter.op();
  op.opcode = opcode;
  op.path = path.c_str();
  op.new_path = opcode == IoOpcode::kRename ? new_path.c_str() : nullptr;
  op.flags = flags;
  op.mode = mode;
  op.deadline = options.deadline;
  Status s = co_await awaiter;
  co_return s;
}

// statx(2) of dir_fd + path; an empty path with AT_EMPTY_PATH names dir_fd itself.
Task<Result<FileStat>> statx_op(int dir_fd, std::string path, int flags, IoOptions options) {
  struct statx buffer {};
  IoAwaiter<void> awaiter;
  IoOp& op = awaiter.op();
  op.opcode = IoOpcode::kStatx;
  op.fd = dir_fd;
  op.path = path.c_str();
  op.flags = flags;
  op.buffer = &buffer;
  op.deadline = options.deadline;
  Status s = co_await awaiter;
  if (!s.ok()) co_return s;
  FileStat st;
  st.size_bytes = buffer.stx_size;
  st.allocated_bytes = buffer.stx_blocks * 512;  // statx counts 512-byte units
  st.mode = buffer.stx_mode;
  co_return st;
}

}  // namespace

Task<Result<FileStat>> File::stat(IoOptions options) {
  auto stating = statx_op(fd_, std::string(), AT_EMPTY_PATH, options);
  co_return co_await std::move(stating);
}

Task<Status> make_directory(std::string path, uint32_t mode, IoOptions options) {
  auto making = name_op(IoOpcode::kMkdir, path, std::string(), 0, mode, options);
  Status s = co_await std::move(making);
  co_return with_path(std::move(s), "mkdir", path);
}

Task<Status> ensure_directory(std::string path, uint32_t mode, IoOptions options) {
  auto making = make_directory(path, mode, options);
  Status s = co_await std::move(making);
  if (s.code() != StatusCode::kAlreadyExists) co_return s;
  auto stating = stat_path(path, options);
  Result<FileStat> st = co_await std::move(stating);
  if (!st.ok()) co_return st.status();
  if (!st->is_directory())
    co_return Status(StatusCode::kInvalidArgument, fmt::format("{} is not a directory", path));
  co_return Status();
}

Task<Status> rename_path(std::string from, std::string to, IoOptions options) {
  auto renaming = name_op(IoOpcode::kRename, from, to, 0, 0, options);
  Status s = co_await std::move(renaming);
  co_return with_path(std::move(s), "rename", from + " to " + to);
}

Task<Status> remove_file(std::string path, IoOptions options) {
  auto removing = name_op(IoOpcode::kUnlink, path, std::string(), 0, 0, options);
  Status s = co_await std::move(removing);
  co_return with_path(std::move(s), "unlink", path);
}

Task<Status> remove_directory(std::string path, IoOptions options) {
  auto removing = name_op(IoOpcode::kUnlink, path, std::string(), AT_REMOVEDIR, 0, options);
  Status s = co_await std::move(removing);
  co_return with_path(std::move(s), "rmdir", path);
}

Task<Result<FileStat>> stat_path(std::string path, IoOptions options) {
  auto stating = statx_op(AT_FDCWD, path, 0, options);
  Result<FileStat> st = co_await std::move(stating);
  if (!st.ok()) co_return with_path(st.status(), "stat", path);
  co_return st;
}

Task<Status> sync_directory(std::string path, IoOptions options) {
  auto opening = File::open(path, O_RDONLY | O_DIRECTORY, 0, options);
  Result<File> dir = co_await std::move(opening);
  if (!dir.ok()) co_return dir.status();
  Status synced = co_await dir->fsync(options);
  Status closed = co_await dir->close();
  co_return with_path(synced.ok() ? std::move(closed) : std::move(synced), "sync directory", path);
}

Result<FsSpace> file_system_space(const std::string& path) {
  Executor* e = Executor::current();
  MICA_ASSERT_MSG(e != nullptr, "file_system_space called outside an executor");
  return e->backend().statvfs(path);
}

}  // namespace mica
