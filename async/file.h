// File: an open file descriptor read and written through the executor's backend.
//
// Every method returns an awaiter for one operation on the current executor; a single
// read or write may be short (as pread/pwrite), the *_full variants loop until done or
// failed. Buffers must stay valid until the awaited result is back. For O_DIRECT, buffers,
// offsets and lengths must be multiples of kDirectIoAlignment: use AlignedBuffer.
// A File is move-only and owns its fd: close() it with co_await; a File destroyed while
// still open is closed synchronously. Thread: the executor that opened it.
//
// The name operations below the class (mkdir, rename, unlink, stat, directory sync) go
// through the backend too, so code that manages its own files and directories runs
// unchanged in the simulator. Each suspends until its op completes; file_system_space is
// the one synchronous call (Backend::statvfs says why).
#pragma once

#include <fcntl.h>
#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <string>

#include "async/io_awaiter.h"
#include "async/task.h"

namespace mica {

inline constexpr size_t kDirectIoAlignment = 4096;

inline constexpr bool is_direct_io_aligned(uint64_t value) {
  return value % kDirectIoAlignment == 0;
}
inline constexpr uint64_t align_up(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}
inline constexpr uint64_t align_down(uint64_t value, uint64_t alignment) {
  return value / alignment * alignment;
}

inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// A buffer aligned for O_DIRECT; move-only. The constructor takes it from the heap.
// huge_pages() maps it instead: 2 MiB-aligned, rounded up to whole 2 MiB pages and advised
// MADV_HUGEPAGE, so a transfer inside one huge page is one physically contiguous segment.
// That matters for large O_DIRECT I/O: a 1 MiB transfer into 4 KiB pages has 256 segments,
// more than a virtio disk takes in one request (254), and the block layer splits it in two
// (docs/async.md). Where the kernel gives no huge page the mapping keeps 4 KiB pages and
// still works. Use it for long-lived buffers: mapping one costs a system call and faults.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t size_bytes, size_t alignment = kDirectIoAlignment);
  static AlignedBuffer huge_pages(size_t size_bytes);
  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
  ~AlignedBuffer();
  std::byte* data() { return data_; }
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<std::byte> span() { return {data_, size_}; }

 private:
  void release();

  std::byte* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_bytes_ = 0;  // non-zero when data_ is an mmap'ed huge-page region
};

// What stat reports of a file or directory.
struct FileStat {
  uint64_t size_bytes = 0;
  uint64_t allocated_bytes = 0;  // space the file system holds for it (fallocate counts)
  uint32_t mode = 0;             // st_mode: file type and permission bits
  bool is_directory() const { return (mode & 0170000) == 0040000; }  // S_ISDIR
};

// An IoAwaiter that also keeps the path string alive for kOpen.
class OpenAwaiter : public IoAwaiter<int> {
 public:
  std::string path;
};

class File {
 public:
  File() = default;
  explicit File(int fd) : fd_(fd) {}
  File(File&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  File& operator=(File&& other) noexcept;
  ~File();

  // Opens path with open(2) flags. O_CLOEXEC is added.
  static Task<Result<File>> open(std::string path, int flags, uint32_t mode = 0644,
                                 IoOptions options = {});

  int fd() const { return fd_; }
  bool is_open() const { return fd_ >= 0; }

  IoAwaiter<size_t> read(std::span<std::byte> buffer, uint64_t offset, IoOptions options = {});
  IoAwaiter<size_t> write(std::span<const std::byte> buffer, uint64_t offset,
                          IoOptions options = {});
  // iov must stay valid until the result is back.
  IoAwaiter<size_t> readv(std::span<const iovec> iov, uint64_t offset, IoOptions options = {});
  IoAwaiter<size_t> writev(std::span<const iovec> iov, uint64_t offset, IoOptions options = {});
  // buffer must lie inside registered buffer number buffer_index (Backend::register_buffers).
  IoAwaiter<size_t> read_fixed(std::span<std::byte> buffer, uint64_t offset, uint16_t buffer_index,
                               IoOptions options = {});
  IoAwaiter<size_t> write_fixed(std::span<const std::byte> buffer, uint64_t offset,
                                uint16_t buffer_index, IoOptions options = {});
  IoAwaiter<void> fsync(IoOptions options = {});
  IoAwaiter<void> fdatasync(IoOptions options = {});
  IoAwaiter<void> fallocate(int mode, uint64_t offset, uint64_t length, IoOptions options = {});
  // fstat through the backend (statx of the open fd).
  Task<Result<FileStat>> stat(IoOptions options = {});

  // Loop until the whole buffer is transferred. A read that reaches end of file returns
  // the bytes it got (less than asked); a write that makes no progress is kIoError.
  Task<Result<size_t>> read_full(std::span<std::byte> buffer, uint64_t offset,
                                 IoOptions options = {});
  Task<Status> write_full(std::span<const std::byte> buffer, uint64_t offset,
                          IoOptions options = {});

  // Closes the fd through the backend; the File is closed afterwards even on error.
  IoAwaiter<void> close();

 private:
  int fd_ = -1;
};

// mkdir(2). kAlreadyExists when the name exists.
Task<Status> make_directory(std::string path, uint32_t mode = 0755, IoOptions options = {});
// mkdir(2) that accepts an existing directory (not an existing file: kInvalidArgument).
Task<Status> ensure_directory(std::string path, uint32_t mode = 0755, IoOptions options = {});
// rename(2): atomically replaces `to` if it exists. The new name is durable only once the
// directories of both names are synced (sync_directory).
Task<Status> rename_path(std::string from, std::string to, IoOptions options = {});
// unlink(2) of a file; remove_directory is rmdir(2) of an empty directory.
Task<Status> remove_file(std::string path, IoOptions options = {});
Task<Status> remove_directory(std::string path, IoOptions options = {});
// stat(2) of a path (following symbolic links).
Task<Result<FileStat>> stat_path(std::string path, IoOptions options = {});
// fsyncs directory path, so that the names created, renamed or removed in it survive a
// power loss: a file's own fsync makes its content durable, never its name.
Task<Status> sync_directory(std::string path, IoOptions options = {});
// statvfs(2) of the file system holding path, on the current executor's backend.
// Synchronous (see Backend::statvfs).
Result<FsSpace> file_system_space(const std::string& path);

}  // namespace mica
