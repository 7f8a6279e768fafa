// FileTable: the mount's open files, FUSE-agnostic (no protocol structs here, so it is
// tested on its own against a real cluster). One per daemon, shared by its executors; each
// executor brings its own client::Client (a Lane). A handle belongs to the executor that
// opened it (a client::File is executor-bound): a call for it made on another executor hops
// there and back (async/hop.h), and every method returns on the executor it was called on.
//
// Handles are ids with a generation (slot in the low 32 bits, generation above): an id that
// was released, or never given, answers kStaleSession (EBADF through client/errno.h) and
// changes nothing. Writes up to the write buffer's size that continue it are buffered per
// handle (one contiguous range inside one chunk, fuse/write_buffer.h; bounded per handle
// and per mount). A full buffer goes to storage behind the writer (the write returns
// first); everything buffered goes on flush/fsync/release, before a read of the same file
// through any handle of this mount, before a truncation, and before a write over it. A
// failed flush's error is answered by the call that flushed, else by the next write, flush,
// fsync or release of the handle at the latest. Page cache: keep_cache only when the file's
// length, mtime and ctime in metadata are what this mount recorded at its last open, flush
// or close of it (close-to-open coherence); O_DIRECT opens and options.direct_io: direct_io.
//
// Threads: the handle table and the coherence records are under one mutex, never held
// across a suspension; a handle's File and buffer are touched on its executor only. All
// Task methods suspend. close_all() before destroying the table (the destructor asserts).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "async/executor.h"
#include "async/status.h"
#include "async/task.h"
#include "client/client.h"
#include "fuse/write_buffer.h"
#include "meta/types.h"

namespace mica::fuse {

using meta::Credentials;
using meta::InodeId;

// One executor of the daemon and the client connected there.
struct Lane {
  Executor* executor = nullptr;
  client::Client* client = nullptr;
};

struct FileTableOptions {
  // Bytes of writes one handle may hold before they go to storage: one chunk of the default
  // layout (3FS: 1 MiB), and a buffered range never crosses a chunk boundary of its file.
  // 0: no buffering (every write goes straight to storage).
  size_t write_buffer_bytes = size_t{4} << 20;
  // Full buffers of one handle on their way to storage at once, behind its writer.
  uint32_t write_flushes_in_flight = 2;
  // Bytes all handles of the mount may hold, buffered or in flight; past it, writes go
  // straight to storage.
  uint64_t write_buffer_total_bytes = uint64_t{256} << 20;
  // Every open bypasses the page cache (-o direct_io).
  bool direct_io = false;
  // copy_range moves at most this many bytes per read/write pair.
  size_t copy_chunk_bytes = size_t{1} << 20;
  // Inodes whose last-seen attributes the mount remembers (past it, all are forgotten:
  // the next open of each drops the kernel's cache, which is only slower).
  size_t coherence_records_max = size_t{1} << 20;
};

struct OpenedFile {
  uint64_t handle = 0;
  bool keep_cache = false;  // the kernel may keep the file's cached pages (FOPEN_KEEP_CACHE)
  bool direct_io = false;   // bypass the page cache (FOPEN_DIRECT_IO)
  meta::Inode attrs;        // as metadata answered the open (length: what the handle knows)
  bool created = false;     // create(): a new file (false: an existing one was opened)
  bool read_only = false;   // O_RDONLY: close(2) has nothing to flush (FOPEN_NOFLUSH)
};

class FileTable {
 public:
  // lanes[i] is executor i's; every call is made on one of these executors.
  explicit FileTable(std::vector<Lane> lanes, FileTableOptions options = {});
  FileTable(const FileTable&) = delete;
  FileTable& operator=(const FileTable&) = delete;
  ~FileTable();  // asserts no handle is open (close_all)

  // A regular file by inode; flags as open(2) (client::OpenMode: access mode, O_TRUNC,
  // O_APPEND; O_DIRECT gives direct_io). The handle belongs to the calling executor.
  Task<Result<OpenedFile>> open(InodeId inode, int flags, Credentials cred);
  // Creates `name` in `parent` and opens it in one metadata round trip (O_EXCL: an existing
  // name is kAlreadyExists; without it the existing file is opened).
  Task<Result<OpenedFile>> create(InodeId parent, std::string name, uint32_t mode, int flags,
                                  Credentials cred);

  // Up to out.size() bytes at offset (fewer at the end). Buffered writes of this file in
  // this mount go out first.
  Task<Result<size_t>> read(uint64_t handle, uint64_t offset, std::span<std::byte> out);
  // All of data at offset (O_APPEND handles: at the end); may only buffer it.
  Task<Result<size_t>> write(uint64_t handle, uint64_t offset, std::span<const std::byte> data);
  // Buffered writes out and the length to metadata (close(2) of a descriptor).
  Task<Status> flush(uint64_t handle);
  Task<Status> fsync(uint64_t handle);
  // Flushes, ends the session, forgets the handle (its id is stale from here).
  Task<Status> release(uint64_t handle);
  // mode 0: the file is at least offset + length long (a hole, allocated when written);
  // any other mode: kNotSupported (EOPNOTSUPP).
  Task<Status> fallocate(uint64_t handle, int mode, uint64_t offset, uint64_t length);
  // SEEK_SET, SEEK_END, SEEK_DATA, SEEK_HOLE (the whole file is data: holes are not
  // tracked, which lseek(2) allows; SEEK_DATA/SEEK_HOLE at or past the end: kPastEnd, ENXIO).
  // SEEK_CUR: kInvalidArgument (the kernel keeps the cursor).
  Task<Result<uint64_t>> lseek(uint64_t handle, int64_t offset, int whence);
  // A plain copy, at most options.copy_chunk_bytes in memory; stops at in's end. Returns
  // the bytes copied.
  Task<Result<size_t>> copy_range(uint64_t in, uint64_t in_offset, uint64_t out,
                                  uint64_t out_offset, size_t length);

  // What this mount's open handles of inode know, nullopt with none open (any thread):
  // length, the largest they know (acknowledged writes, buffered or not reported yet), so
  // getattr answers max(metadata, it) and the kernel's i_size never shrinks below a write it
  // acknowledged; unsettled, whether one holds writes metadata has not been told of (their
  // length and mtime land at the next flush, so the kernel must not cache attributes).
  struct LocalView {
    uint64_t length = 0;
    bool unsettled = false;
  };
  std::optional<LocalView> local_view(InodeId inode) const;
  std::optional<uint64_t> local_length(InodeId inode) const;  // local_view's length
  // Before a truncation of inode to length (setattr size): every handle's buffer goes out
  // and each handle forgets what it knew past length (so no later report regrows the file).
  Task<Status> before_truncate(InodeId inode, uint64_t length);

  // Releases every open handle (daemon shutdown). Errors are logged.
  Task<void> close_all();

  size_t open_handles() const;
  // Bytes all handles hold, buffered or on their way to storage (at most
  // write_buffer_total_bytes).
  uint64_t buffered_bytes() const { return buffered_bytes_.load(); }
  // The lane (executor index) a handle belongs to; nullopt for a stale or unknown handle.
  std::optional<size_t> owner_lane(uint64_t handle) const;

 private:
  struct Handle;
  using HandlePtr = std::shared_ptr<Handle>;
  struct Slot {
    uint32_t generation = 1;
    HandlePtr handle;
  };
  // What this mount last saw of a file's metadata (coherence).
  struct Seen {
    uint64_t length = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
  };

  size_t lane_index() const;  // the calling executor's
  Result<HandlePtr> find(uint64_t id) const;
  std::vector<HandlePtr> handles_of(InodeId inode) const;
  Result<OpenedFile> add(std::unique_ptr<client::File> file, int flags, bool created,
                         Credentials cred);
  void remember(const meta::Inode& attrs);
  void forget(uint64_t id, const HandlePtr& h);  // the id is stale from here

  // The per-handle work, run on the handle's executor (file_table.cc, file_table_io.cc).
  Task<Result<size_t>> read_here(HandlePtr h, uint64_t offset, std::span<std::byte> out);
  Task<Result<size_t>> write_here(HandlePtr h, uint64_t offset, std::span<const std::byte> data);
  Task<Status> flush_buffer_here(HandlePtr h);
  Task<Result<size_t>> buffer_write(HandlePtr h, uint64_t offset, std::span<const std::byte> data);
  Task<Status> send_behind(HandlePtr h);
  Task<void> send_in_background(Handle* h, BufferedRange range);
  Task<Status> send_range(Handle* h, BufferedRange range);
  BufferedRange take_for_flush(Handle& h);
  // The mount's budget of buffered bytes (write_buffer_total_bytes); false: no room.
  bool reserve_buffer(size_t bytes);
  void unreserve_buffer(size_t bytes);
  Task<Status> flush_here(HandlePtr h, bool report);
  Task<Status> release_here(HandlePtr h);
  Task<Status> truncate_here(HandlePtr h, uint64_t length);
  Task<Status> fallocate_here(HandlePtr h, uint64_t end);
  Task<Result<uint64_t>> known_length_here(HandlePtr h);
  Task<Status> flush_others(HandlePtr reader, uint64_t want_end);

  std::vector<Lane> lanes_;
  FileTableOptions options_;
  mutable std::mutex mutex_;  // slots_, free_, by_inode_, seen_
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  std::multimap<InodeId, uint64_t> by_inode_;  // inode -> open handle ids
  std::map<InodeId, Seen> seen_;
  std::atomic<uint64_t> buffered_bytes_{0};  // buffered or in flight, all handles
};

}  // namespace mica::fuse
