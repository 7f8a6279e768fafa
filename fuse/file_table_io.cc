// FileTable's data path (fuse/file_table.h): reads, writes through the bounded per-handle
// write buffer, flushes, fsync, fallocate, lseek and copy_range. Each handle's work runs on
// its executor (detail::hop); flushes of one handle are serialized by its `flushing` lock so
// buffered ranges reach storage in the order they were written.
#include <fcntl.h>
#include <unistd.h>

#include <utility>

#include "async/log.h"
#include "fuse/file_handle.h"
#include "fuse/file_table.h"
#include "fuse/hop.h"

namespace mica::fuse {

namespace {

Status stale(const char* what) {
  return Status(StatusCode::kStaleSession, what);
}

}  // namespace

// The buffered range out to storage (nothing to do when empty). A failure is kept in
// `deferred` as well, for the handle's next write/flush/fsync/release when this flush was
// made for someone else (a reader of another handle, a truncation).
Task<Status> FileTable::flush_buffer_here(HandlePtr h) {
  if (h->buffer.empty() && h->flushing.available() > 0) co_return Status::ok_status();
  Semaphore::Awaiter waiting = h->flushing.acquire();
  CO_TRY(co_await waiting);
  SemaphoreGuard held(h->flushing);
  if (h->buffer.empty()) co_return Status::ok_status();
  BufferedRange range = h->buffer.take();
  h->buffered.store(false);  // local_end keeps the range: it is acknowledged still
  auto writing = h->file->pwrite(range.bytes, range.offset, h->call());
  Result<size_t> wrote = co_await std::move(writing);
  h->note_lengths();
  if (!wrote.ok()) {
    MICA_LOG(Warn, "fuse", "inode {:#x}: a buffered write of {} bytes at {} failed: {}", h->inode,
             range.bytes.size(), range.offset, wrote.status().to_string());
    h->deferred = wrote.status();
    co_return wrote.status();
  }
  co_return Status::ok_status();
}

// The buffer out and, when `report`, the length to metadata (a read-only handle has none
// to report). Answers a deferred error first.
Task<Status> FileTable::flush_here(HandlePtr h, bool report) {
  if (h->closed) co_return stale("the handle is released");
  auto flushing = flush_buffer_here(h);
  Status flushed = co_await std::move(flushing);
  Status deferred = h->take_deferred();
  if (!deferred.ok()) co_return deferred;
  if (!flushed.ok()) co_return flushed;
  if (!report || !h->writable()) co_return Status::ok_status();
  auto syncing = h->file->fsync(h->call());
  Status synced = co_await std::move(syncing);
  if (synced.ok()) remember(h->file->attributes());
  h->note_lengths();
  co_return synced;
}

// Before `reader` reads up to want_end: other handles of the file in this mount send their
// buffers, and report their lengths when they know more than the reader does.
Task<Status> FileTable::flush_others(HandlePtr reader, uint64_t want_end) {
  uint64_t reader_knows = reader->file->known_length();
  std::vector<HandlePtr> handles = handles_of(reader->inode);
  for (HandlePtr& other : handles) {
    if (other == reader || other->closed) continue;
    bool longer = want_end > reader_knows && other->local_end.load() > reader_knows;
    if (!other->buffered.load() && !longer) continue;
    auto flushing = detail::hop(other->lane.executor, flush_here(other, longer));
    CO_TRY(co_await std::move(flushing));
  }
  co_return Status::ok_status();
}

Task<Result<size_t>> FileTable::read_here(HandlePtr h, uint64_t offset, std::span<std::byte> out) {
  if (h->closed) co_return stale("the handle is released");
  auto flushing = flush_buffer_here(h);
  Status flushed = co_await std::move(flushing);
  if (!flushed.ok()) {
    h->deferred = Status::ok_status();  // told now
    co_return flushed;
  }
  auto others = flush_others(h, offset + out.size());
  CO_TRY(co_await std::move(others));
  auto reading = h->file->pread(out, offset, h->call());
  Result<size_t> n = co_await std::move(reading);
  h->note_lengths();
  co_return n;
}

Task<Result<size_t>> FileTable::write_here(HandlePtr h, uint64_t offset,
                                           std::span<const std::byte> data) {
  if (h->closed) co_return stale("the handle is released");
  if (!h->writable()) co_return stale("the file is not open for writing");
  CO_TRY(h->take_deferred());
  bool bufferable = !h->append() && data.size() < h->buffer.capacity();
  if (bufferable && h->buffer.try_append(offset, data)) {
    h->note_lengths();
    if (!h->buffer.full()) co_return data.size();
    auto flushing = flush_buffer_here(h);
    Status flushed = co_await std::move(flushing);
    h->deferred = Status::ok_status();  // told now
    if (!flushed.ok()) co_return flushed;
    co_return data.size();
  }
  // Not buffered (or not continuing the buffer): what is buffered goes first, in order.
  auto flushing = flush_buffer_here(h);
  Status flushed = co_await std::move(flushing);
  h->deferred = Status::ok_status();
  if (!flushed.ok()) co_return flushed;
  if (bufferable && h->buffer.try_append(offset, data)) {
    h->note_lengths();
    co_return data.size();
  }
  auto writing = h->file->pwrite(data, offset, h->call());
  Result<size_t> wrote = co_await std::move(writing);
  h->note_lengths();
  co_return wrote;
}

Task<Result<size_t>> FileTable::read(uint64_t handle, uint64_t offset, std::span<std::byte> out) {
  CO_TRY_ASSIGN(HandlePtr h, find(handle));
  auto reading = detail::hop(h->lane.executor, read_here(h, offset, out));
  co_return co_await std::move(reading);
}

Task<Result<size_t>> FileTable::write(uint64_t handle, uint64_t offset,
                                      std::span<const std::byte> data) {
  CO_TRY_ASSIGN(HandlePtr h, find(handle));
  auto writing = detail::hop(h->lane.executor, write_here(h, offset, data));
  co_return co_await std::move(writing);
}

Task<Status> FileTable::flush(uint64_t handle) {
  CO_TRY_ASSIGN(HandlePtr h, find(handle));
  auto flushing = detail::hop(h->lane.executor, flush_here(h, true));
  co_return co_await std::move(flushing);
}

Task<Status> FileTable::fsync(uint64_t handle) {
  CO_TRY_ASSIGN(HandlePtr h, find(handle));
  auto syncing = detail::hop(h->lane.executor, flush_here(h, true));
  co_return co_await std::move(syncing);
}

// Metadata's length of the file now, or what this handle knows when that is more.
Task<Result<uint64_t>> FileTable::known_length_here(HandlePtr h) {
  auto asking = h->lane.client->meta().getattr(meta::GetattrRequest{.inode = h->inode});
  CO_TRY_ASSIGN(meta::InodeReply reply, co_await std::move(asking));
  co_return std::max(reply.inode.length, h->local_end.load());
}

Task<Status> FileTable::fallocate_here(HandlePtr h, uint64_t end) {
  if (h->closed) co_return stale("the handle is released");
  if (!h->writable()) co_return stale("the file is not open for writing");
  auto flushing = flush_here(h, false);
  CO_TRY(co_await std::move(flushing));
  auto measuring = known_length_here(h);
  CO_TRY_ASSIGN(uint64_t length, co_await std::move(measuring));
  if (end <= length) co_return Status::ok_status();
  // Chunks are allocated when written: extending the length is all mode 0 needs here.
  auto extending = h->file->truncate(end, h->call());
  Status extended = co_await std::move(extending);
  h->note_lengths();
  co_return extended;
}

Task<Status> FileTable::fallocate(uint64_t handle, int mode, uint64_t offset, uint64_t length) {
  CO_TRY_ASSIGN(HandlePtr h, find(handle));
  if (mode != 0)
    co_return Status(StatusCode::kNotSupported,
                     fmt::format("fallocate mode {:#x}: only mode 0 is supported", mode));
  if (length == 0) co_return Status(StatusCode::kInvalidArgument, "fallocate of 0 bytes");
  auto allocating = detail::hop(h->lane.executor, fallocate_here(h, offset + length));
  co_return co_await std::move(allocating);
}

Task<Result<uint64_t>> FileTable::lseek(uint64_t handle, int64_t offset, int whence) {
  CO_TRY_ASSIGN(HandlePtr h, find(handle));
  if (whence == SEEK_SET) {
    if (offset < 0) co_return Status(StatusCode::kInvalidArgument, "a negative offset");
    co_return static_cast<uint64_t>(offset);
  }
  if (whence != SEEK_END && whence != SEEK_DATA && whence != SEEK_HOLE)
    co_return Status(StatusCode::kInvalidArgument, fmt::format("lseek whence {}", whence));
  auto measuring = detail::hop(h->lane.executor, known_length_here(h));
  CO_TRY_ASSIGN(uint64_t length, co_await std::move(measuring));
  auto size = static_cast<int64_t>(length);
  if (whence == SEEK_END) {
    if (offset < -size) co_return Status(StatusCode::kInvalidArgument, "before the start");
    co_return static_cast<uint64_t>(size + offset);
  }
  if (offset < 0) co_return Status(StatusCode::kInvalidArgument, "a negative offset");
  if (offset >= size)
    co_return Status(StatusCode::kPastEnd, fmt::format("offset {} of {} bytes", offset, size));
  // Holes are not tracked: all of the file is data, and its end is the one hole.
  co_return whence == SEEK_DATA ? static_cast<uint64_t>(offset) : length;
}

Task<Result<size_t>> FileTable::copy_range(uint64_t in, uint64_t in_offset, uint64_t out,
                                           uint64_t out_offset, size_t length) {
  CO_TRY(find(in).status());
  CO_TRY(find(out).status());
  std::vector<std::byte> buffer(std::min(length, options_.copy_chunk_bytes));
  size_t copied = 0;
  while (copied < length) {
    std::span<std::byte> room(buffer.data(), std::min(buffer.size(), length - copied));
    auto reading = read(in, in_offset + copied, room);
    Result<size_t> got = co_await std::move(reading);
    if (!got.ok()) co_return copied > 0 ? Result<size_t>(copied) : got;
    if (*got == 0) break;
    auto writing = write(out, out_offset + copied, room.first(*got));
    Result<size_t> put = co_await std::move(writing);
    if (!put.ok()) co_return copied > 0 ? Result<size_t>(copied) : put;
    copied += *put;
  }
  co_return copied;
}

}  // namespace mica::fuse
