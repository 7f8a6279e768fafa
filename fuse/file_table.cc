// FileTable (fuse/file_table.h): the handle table, open/create/release and coherence. The
// data path (read, write, the write buffer's flushes, fallocate, lseek, copy_range) is in
// fuse/file_table_io.cc.
#include "fuse/file_table.h"

#include <fcntl.h>

#include <utility>

#include "async/hop.h"
#include "async/log.h"
#include "fuse/file_handle.h"

namespace mica::fuse {

namespace {

constexpr uint64_t kSlotMask = 0xffff'ffffu;

bool same_as_seen(const meta::Inode& attrs, uint64_t length, int64_t mtime_ns, int64_t ctime_ns) {
  return attrs.length == length && attrs.mtime_ns == mtime_ns && attrs.ctime_ns == ctime_ns;
}

}  // namespace

FileTable::FileTable(std::vector<Lane> lanes, FileTableOptions options)
    : lanes_(std::move(lanes)), options_(options) {
  MICA_ASSERT_MSG(!lanes_.empty(), "a FileTable needs at least one lane");
}

FileTable::~FileTable() {
  MICA_ASSERT_MSG(by_inode_.empty(), "a FileTable destroyed with open handles (close_all)");
}

size_t FileTable::lane_index() const {
  Executor* current = Executor::current();
  for (size_t i = 0; i < lanes_.size(); ++i) {
    if (lanes_[i].executor == current) return i;
  }
  MICA_ASSERT_MSG(false, "a FileTable call from an executor that is none of its lanes");
  return 0;
}

size_t FileTable::open_handles() const {
  std::lock_guard lock(mutex_);
  return by_inode_.size();
}

std::optional<size_t> FileTable::owner_lane(uint64_t handle) const {
  Result<HandlePtr> h = find(handle);
  if (!h.ok()) return std::nullopt;
  for (size_t i = 0; i < lanes_.size(); ++i) {
    if (lanes_[i].executor == (*h)->lane.executor) return i;
  }
  return std::nullopt;
}

Result<FileTable::HandlePtr> FileTable::find(uint64_t id) const {
  std::lock_guard lock(mutex_);
  uint64_t slot = id & kSlotMask;
  auto generation = static_cast<uint32_t>(id >> 32);
  if (slot >= slots_.size() || slots_[slot].generation != generation ||
      slots_[slot].handle == nullptr)
    return Status(StatusCode::kStaleSession, fmt::format("file handle {:#x} is not open", id));
  return slots_[slot].handle;
}

std::vector<FileTable::HandlePtr> FileTable::handles_of(InodeId inode) const {
  std::lock_guard lock(mutex_);
  std::vector<HandlePtr> out;
  auto [from, to] = by_inode_.equal_range(inode);
  for (auto it = from; it != to; ++it) out.push_back(slots_[it->second & kSlotMask].handle);
  return out;
}

std::optional<FileTable::LocalView> FileTable::local_view(InodeId inode) const {
  std::lock_guard lock(mutex_);
  std::optional<LocalView> out;
  auto [from, to] = by_inode_.equal_range(inode);
  for (auto it = from; it != to; ++it) {
    const Handle& h = *slots_[it->second & kSlotMask].handle;
    if (!out) out = LocalView{};
    out->length = std::max(out->length, h.local_end.load());
    out->unsettled = out->unsettled || h.dirty.load() || h.buffered.load();
  }
  return out;
}

std::optional<uint64_t> FileTable::local_length(InodeId inode) const {
  std::optional<LocalView> view = local_view(inode);
  return view ? std::optional<uint64_t>(view->length) : std::nullopt;
}

void FileTable::remember(const meta::Inode& attrs) {
  std::lock_guard lock(mutex_);
  if (seen_.size() >= options_.coherence_records_max && !seen_.contains(attrs.id))
    seen_.clear();  // forgetting only costs the kernel's cache at the next opens
  seen_[attrs.id] =
      Seen{.length = attrs.length, .mtime_ns = attrs.mtime_ns, .ctime_ns = attrs.ctime_ns};
}

Result<OpenedFile> FileTable::add(std::unique_ptr<client::File> file, int flags, bool created,
                                  Credentials cred) {
  size_t lane = lane_index();
  OpenedFile out{.direct_io = options_.direct_io || (flags & O_DIRECT) != 0,
                 .attrs = file->attributes(),
                 .created = created,
                 .read_only = (flags & O_ACCMODE) == O_RDONLY};
  std::lock_guard lock(mutex_);
  auto seen = seen_.find(out.attrs.id);
  out.keep_cache =
      !out.direct_io && seen != seen_.end() &&
      same_as_seen(out.attrs, seen->second.length, seen->second.mtime_ns, seen->second.ctime_ns);
  if (seen_.size() >= options_.coherence_records_max && seen == seen_.end()) seen_.clear();
  seen_[out.attrs.id] = Seen{
      .length = out.attrs.length, .mtime_ns = out.attrs.mtime_ns, .ctime_ns = out.attrs.ctime_ns};
  uint32_t slot = 0;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    MICA_ASSERT_MSG(slots_.size() < kSlotMask, "file handle slots exhausted");
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  out.handle = (uint64_t{slots_[slot].generation} << 32) | slot;
  slots_[slot].handle = std::make_shared<Handle>(out.handle, lanes_[lane], std::move(file), flags,
                                                 std::move(cred), options_.write_buffer_bytes,
                                                 options_.write_flushes_in_flight);
  by_inode_.emplace(out.attrs.id, out.handle);
  return out;
}

Task<Result<OpenedFile>> FileTable::open(InodeId inode, int flags, Credentials cred) {
  client::Client* c = lanes_[lane_index()].client;
  int access = flags & O_ACCMODE;
  if ((flags & O_TRUNC) != 0 && (access == O_WRONLY || access == O_RDWR)) {
    // The open truncates: this mount's other handles of the file must not regrow it.
    auto fixing = before_truncate(inode, 0);
    CO_TRY(co_await std::move(fixing));
  }
  auto opening =
      c->open_inode(inode, client::OpenMode{.flags = flags}, client::CallOptions{.cred = cred});
  CO_TRY_ASSIGN(std::unique_ptr<client::File> file, co_await std::move(opening));
  co_return add(std::move(file), flags, false, std::move(cred));
}

Task<Result<OpenedFile>> FileTable::create(InodeId parent, std::string name, uint32_t mode,
                                           int flags, Credentials cred) {
  client::Client* c = lanes_[lane_index()].client;
  bool created = false;
  auto creating = c->create_at(parent, std::move(name),
                               client::OpenMode{.flags = flags | O_CREAT, .mode = mode},
                               client::CallOptions{.cred = cred}, &created);
  CO_TRY_ASSIGN(std::unique_ptr<client::File> file, co_await std::move(creating));
  co_return add(std::move(file), flags, created, std::move(cred));
}

Task<Status> FileTable::release_here(HandlePtr h) {
  if (h->closed) co_return Status(StatusCode::kStaleSession, "the handle is being released");
  h->closed = true;
  auto flushing = flush_buffer_here(h);
  Status flushed = co_await std::move(flushing);
  co_await h->background.join();
  unreserve_buffer(h->buffer.take().bytes.size());  // what a failed flush left behind
  Status deferred = h->take_deferred();
  // close(2) returned at FLUSH: this commit may wait to share the next operation's.
  auto closing = h->file->close(h->call(), client::File::CloseCommit::kBatched);
  Status closed = co_await std::move(closing);
  if (closed.ok()) remember(h->file->attributes());
  h->note_lengths();
  if (!deferred.ok()) co_return deferred;
  if (!flushed.ok()) co_return flushed;
  co_return closed;
}

Task<Status> FileTable::release(uint64_t id) {
  CO_TRY_ASSIGN(HandlePtr h, find(id));
  auto releasing = mica::hop(h->lane.executor, release_here(h));
  Status released = co_await std::move(releasing);
  forget(id, h);
  co_return released;
}

void FileTable::forget(uint64_t id, const HandlePtr& h) {
  std::lock_guard lock(mutex_);
  uint64_t slot = id & kSlotMask;
  if (slot < slots_.size() && slots_[slot].handle == h) {
    slots_[slot].handle.reset();
    ++slots_[slot].generation;
    if (slots_[slot].generation == 0) slots_[slot].generation = 1;  // ids are never 0
    free_.push_back(static_cast<uint32_t>(slot));
    auto [from, to] = by_inode_.equal_range(h->inode);
    for (auto it = from; it != to; ++it) {
      if (it->second == id) {
        by_inode_.erase(it);
        break;
      }
    }
  }
}

Task<void> FileTable::close_all() {
  std::vector<uint64_t> ids;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [inode, id] : by_inode_) ids.push_back(id);
  }
  for (uint64_t id : ids) {
    auto releasing = release(id);
    Status released = co_await std::move(releasing);
    if (!released.ok())
      MICA_LOG(Warn, "fuse", "file handle {:#x}: release at shutdown: {}", id,
               released.to_string());
  }
}

Task<Status> FileTable::truncate_here(HandlePtr h, uint64_t length) {
  auto flushing = flush_buffer_here(h);
  Status flushed = co_await std::move(flushing);
  unreserve_buffer(h->buffer.cut(length));
  h->file->forget_past(length);
  h->note_lengths();
  co_return flushed;
}

Task<Status> FileTable::before_truncate(InodeId inode, uint64_t length) {
  Status first;
  std::vector<HandlePtr> handles = handles_of(inode);
  for (HandlePtr& h : handles) {
    auto fixing = mica::hop(h->lane.executor, truncate_here(h, length));
    Status fixed = co_await std::move(fixing);
    if (first.ok() && !fixed.ok()) first = std::move(fixed);
  }
  co_return first;
}

}  // namespace mica::fuse
