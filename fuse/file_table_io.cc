// FileTable's data path (fuse/file_table.h): reads, writes through the bounded per-handle
// write buffer, flushes, fsync, fallocate, lseek and copy_range. Each handle's work runs on
// its executor (detail::hop). A full buffer is sent behind the writer (at most
// write_flushes_in_flight ranges of a handle at once); ranges in flight never overlap (a
// write over one waits for them all), so their order does not matter.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "async/hop.h"
#include "async/log.h"
#include "fuse/file_handle.h"
#include "fuse/file_table.h"

namespace mica::fuse {

namespace {

Status stale(const char* what) {
  return Status(StatusCode::kStaleSession, what);
}

}  // namespace

bool FileTable::reserve_buffer(size_t bytes) {
  uint64_t before = buffered_bytes_.fetch_add(bytes);
  if (before + bytes <= options_.write_buffer_total_bytes) return true;
  buffered_bytes_.fetch_sub(bytes);
  return false;
}

void FileTable::unreserve_buffer(size_t bytes) { buffered_bytes_.fetch_sub(bytes); }

// The buffered range, taken for a flush and counted in flight from this moment (so lengths
// and overlap checks see it before the flush starts).
BufferedRange FileTable::take_for_flush(Handle& h) {
  BufferedRange range = h.buffer.take();
  h.in_flight.emplace_back(range.offset, range.end());
  h.note_lengths();
  return range;
}

// One taken range to storage; the caller holds a flush unit. A failure is kept in
// `deferred` (the first one), for the handle's next write, flush, fsync or release when this
// flush was made for someone else (a background send, a reader of another handle).
Task<Status> FileTable::send_range(Handle* h, BufferedRange range) {
  auto writing = h->file->pwrite(range.bytes, range.offset, h->call());
  Result<size_t> wrote = co_await std::move(writing);
  auto it = std::find(h->in_flight.begin(), h->in_flight.end(),
                      std::pair{range.offset, range.end()});
  if (it != h->in_flight.end()) h->in_flight.erase(it);
  unreserve_buffer(range.bytes.size());
  h->note_lengths();
  if (!wrote.ok()) {
    MICA_LOG(Warn, "fuse", "inode {:#x}: a buffered write of {} bytes at {} failed: {}", h->inode,
             range.bytes.size(), range.offset, wrote.status().to_string());
    if (h->deferred.ok()) h->deferred = wrote.status();
    co_return wrote.status();
  }
  co_return Status::ok_status();
}

Task<void> FileTable::send_in_background(Handle* h, BufferedRange range) {
  SemaphoreGuard held(h->flushing);  // the unit send_behind took
  auto sending = send_range(h, std::move(range));
  Status sent = co_await std::move(sending);
  (void)sent;  // a failure waits in `deferred`
}

// The full buffer to storage behind the writer, once a flush unit is free: waiting for one
// is the back-pressure on a writer that outruns storage. The handle's release joins it.
Task<Status> FileTable::send_behind(HandlePtr h) {
  Semaphore::Awaiter waiting = h->flushing.acquire();
  CO_TRY(co_await waiting);
  if (h->buffer.empty()) {  // a flush took it meanwhile
    h->flushing.release();
    co_return Status::ok_status();
  }
  h->background.spawn(send_in_background(h.get(), take_for_flush(*h)));
  co_return Status::ok_status();
}

// Everything this handle holds to storage: waits for the ranges in flight (all flush
// units), then sends the buffer and returns when it landed.
Task<Status> FileTable::flush_buffer_here(HandlePtr h) {
  uint32_t all = h->flush_units_total;
  if (h->buffer.empty() && h->flushing.available() == all) co_return Status::ok_status();
  Semaphore::Awaiter waiting = h->flushing.acquire(all);
  CO_TRY(co_await waiting);
  SemaphoreGuard held(h->flushing, all);
  if (h->buffer.empty()) co_return Status::ok_status();
  auto sending = send_range(h.get(), take_for_flush(*h));
  co_return co_await std::move(sending);
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
  if (!report || !h->writable() || !h->dirty) co_return Status::ok_status();
  h->dirty = false;  // a write landing during the report sets it again
  auto syncing = h->file->fsync(h->call());
  Status synced = co_await std::move(syncing);
  if (synced.ok()) {
    remember(h->file->attributes());
  } else {
    h->dirty = true;
  }
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
    auto flushing = mica::hop(other->lane.executor, flush_here(other, longer));
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

// data into the buffer (its bytes reserved in the mount's budget by the caller). A buffer
// that reaches its limit goes behind the writer and the rest of data starts the next one.
Task<Result<size_t>> FileTable::buffer_write(HandlePtr h, uint64_t offset,
                                             std::span<const std::byte> data) {
  size_t done = 0;
  while (true) {
    done += h->buffer.append(offset + done, data.subspan(done));
    h->note_lengths();
    if (done == data.size() && !h->buffer.full()) break;
    // Full (capacity or the chunk's end reached), or changed by a write that ran while this
    // one waited (then no longer continued by it): out it goes, then the rest.
    bool full = h->buffer.full();
    auto sending = full ? send_behind(h) : flush_buffer_here(h);
    Status sent = co_await std::move(sending);
    if (!sent.ok()) {
      unreserve_buffer(data.size() - done);
      if (!full) h->deferred = Status::ok_status();  // told now
      if (done > 0) co_return done;  // the rest was not taken (a short write)
      co_return sent;
    }
    if (done == data.size()) break;
  }
  co_return data.size();
}

Task<Result<size_t>> FileTable::write_here(HandlePtr h, uint64_t offset,
                                           std::span<const std::byte> data) {
  if (h->closed) co_return stale("the handle is released");
  if (!h->writable()) co_return stale("the file is not open for writing");
  CO_TRY(h->take_deferred());
  h->dirty = true;
  // Over a buffered or in-flight range that it does not simply continue: those go first,
  // in order.
  bool continues = h->buffer.continues(offset) && !h->overlaps_in_flight(offset, data.size());
  if (!continues && h->overlaps_pending(offset, data.size())) {
    auto flushing = flush_buffer_here(h);
    Status flushed = co_await std::move(flushing);
    h->deferred = Status::ok_status();  // told now
    if (!flushed.ok()) co_return flushed;
  }
  bool bufferable = !h->append() && !data.empty() && data.size() <= h->buffer.capacity();
  if (bufferable && h->buffer.continues(offset) && reserve_buffer(data.size())) {
    auto buffering = buffer_write(h, offset, data);
    co_return co_await std::move(buffering);
  }
  // Elsewhere (or the mount's buffers are at their bound): straight to storage beside the
  // buffer (parallel page writeback and random writes must not queue behind its flushes).
  auto writing = h->file->pwrite(data, offset, h->call());
  Result<size_t> wrote = co_await std::move(writing);
  h->note_lengths();
  co_return wrote;
}

Task<Result<size_t>> FileTable::read(uint64_t handle, uint64_t offset, std::span<std::byte> out) {
  CO_TRY_ASSIGN(HandlePtr h, find(handle));
  auto reading = mica::hop(h->lane.executor, read_here(h, offset, out));
  co_return co_await std::move(reading);
}

Task<Result<size_t>> FileTable::write(uint64_t handle, uint64_t offset,
                                      std::span<const std::byte> data) {
  CO_TRY_ASSIGN(HandlePtr h, find(handle));
  auto writing = mica::hop(h->lane.executor, write_here(h, offset, data));
  co_return co_await std::move(writing);
}

Task<Status> FileTable::flush(uint64_t handle) {
  CO_TRY_ASSIGN(HandlePtr h, find(handle));
  auto flushing = mica::hop(h->lane.executor, flush_here(h, true));
  co_return co_await std::move(flushing);
}

// fsync(2) is for the file, not the descriptor: this mount's other handles of it with
// writes send them and their lengths too (a clean handle sends nothing).
Task<Status> FileTable::fsync(uint64_t handle) {
  CO_TRY_ASSIGN(HandlePtr h, find(handle));
  auto syncing = mica::hop(h->lane.executor, flush_here(h, true));
  CO_TRY(co_await std::move(syncing));
  std::vector<HandlePtr> handles = handles_of(h->inode);
  for (HandlePtr& other : handles) {
    if (other == h || other->closed) continue;
    auto flushing = mica::hop(other->lane.executor, flush_here(other, true));
    CO_TRY(co_await std::move(flushing));
  }
  co_return Status::ok_status();
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
  h->dirty = true;
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
  auto allocating = mica::hop(h->lane.executor, fallocate_here(h, offset + length));
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
  auto measuring = mica::hop(h->lane.executor, known_length_here(h));
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
