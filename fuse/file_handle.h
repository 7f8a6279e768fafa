// FileTable::Handle (fuse/file_table.h): one open handle's state, internal to the table's
// sources. The File, the write buffer, the flush units, the ranges in flight, the
// background flushes' scope and `deferred` are touched on the owning executor only;
// local_end, buffered and dirty are atomics any thread may read (getattr's local_view, and
// a reader on another executor deciding whether to flush this handle). Never suspends by
// itself.
#pragma once

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <utility>
#include <vector>

#include "async/scope.h"
#include "async/sync.h"
#include "client/client.h"
#include "fuse/file_table.h"
#include "fuse/write_buffer.h"

namespace mica::fuse {

struct FileTable::Handle {
  Handle(uint64_t handle_id, Lane owner, std::unique_ptr<client::File> opened, int open_flags,
         Credentials credentials, size_t buffer_bytes, uint32_t flush_units)
      : id(handle_id),
        lane(owner),
        inode(opened->inode()),
        flags(open_flags),
        cred(std::move(credentials)),
        file(std::move(opened)),
        buffer(buffer_bytes, file->attributes().layout.chunk_size_bytes),
        flush_units_total(std::max<uint32_t>(flush_units, 1)),
        flushing(flush_units_total) {
    local_end.store(file->known_length());
  }

  bool writable() const {
    int access = flags & O_ACCMODE;
    return access == O_WRONLY || access == O_RDWR;
  }
  bool append() const { return (flags & O_APPEND) != 0; }
  // After any change of the File's length, the buffer or the ranges in flight (owner
  // executor): local_end counts every acknowledged byte, sent or not.
  void note_lengths() {
    uint64_t end = file->known_length();
    if (!buffer.empty()) end = std::max<uint64_t>(end, buffer.end());
    for (const auto& [from, to] : in_flight) end = std::max(end, to);
    local_end.store(end);
    buffered.store(!buffer.empty() || !in_flight.empty());
  }
  // The error of a flush no caller of this handle has been told, once.
  Status take_deferred() { return std::exchange(deferred, Status::ok_status()); }
  client::CallOptions call() const { return client::CallOptions{.cred = cred}; }

  const uint64_t id;
  const Lane lane;
  const InodeId inode;
  const int flags;
  const Credentials cred;
  std::unique_ptr<client::File> file;
  WriteBuffer buffer;
  // A flush holds one unit while it sends a range (a full buffer goes out in the background
  // while the next one fills, at most flush_units_total at once); a flush that must leave
  // nothing behind (fsync, release, a read, a truncation) takes them all.
  const uint32_t flush_units_total;
  Semaphore flushing;
  TaskScope background;  // the flushes sent behind writes; joined by release
  Status deferred;
  // The ranges flushes are sending now, [from, to) each.
  std::vector<std::pair<uint64_t, uint64_t>> in_flight;
  bool overlaps_in_flight(uint64_t offset, size_t size) const {
    uint64_t end = offset + size;
    return std::any_of(in_flight.begin(), in_flight.end(),
                       [&](const auto& r) { return offset < r.second && r.first < end; });
  }
  // Whether [offset, offset + size) overlaps the buffered or an in-flight range: only such a
  // write must wait for them (the others go to storage beside them, in parallel).
  bool overlaps_pending(uint64_t offset, size_t size) const {
    uint64_t end = offset + size;
    bool buffered_overlap = !buffer.empty() && offset < buffer.end() && buffer.offset() < end;
    return buffered_overlap || overlaps_in_flight(offset, size);
  }
  // A write (or an extension) since the last length report: a flush with none sends no
  // report (a FLUSH per close(2) would otherwise cost a metadata commit each).
  std::atomic<bool> dirty{false};
  std::atomic<bool> closed{false};  // release began: every later call is kStaleSession
  std::atomic<uint64_t> local_end{0};
  std::atomic<bool> buffered{false};  // bytes buffered or in flight, not yet on storage
};

}  // namespace mica::fuse
