// SimBackend's disk: file and name ops against the host's SimDisk (async/sim/disk.h).
//
// An op's effect happens when it completes (after the drawn latency, plus a spike now and
// then), so a crash while it is pending leaves no trace of it, except that a write in
// flight may have reached the disk as an unsynced write (land_in_flight_writes). Faults are
// drawn here: random and targeted EIO, EIO on chosen byte ranges, and bit flips in what a
// read returns. Capacity counts each file's largest extent (current, durable or reserved);
// a write or fallocate that would pass it fails with -ENOSPC and changes nothing.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "async/sim/backend.h"
#include "async/sim/world.h"

namespace mica::sim {
namespace {

// Results are int32: like the kernel, one op moves at most this many bytes.
constexpr uint64_t kIoBytesMax = 0x7FFFF000;
constexpr uint64_t kStatBlockBytes = 512;  // statx counts blocks in these units

bool is_write(IoOpcode opcode) {
  return opcode == IoOpcode::kWrite || opcode == IoOpcode::kWritev ||
         opcode == IoOpcode::kWriteFixed;
}

bool is_read(IoOpcode opcode) {
  return opcode == IoOpcode::kRead || opcode == IoOpcode::kReadv || opcode == IoOpcode::kReadFixed;
}

// Ops on names rather than on an open file's data: random EIO spares them, as it does open.
bool is_name_op(IoOpcode opcode) {
  return opcode == IoOpcode::kOpen || opcode == IoOpcode::kMkdir || opcode == IoOpcode::kRename ||
         opcode == IoOpcode::kUnlink || opcode == IoOpcode::kStatx;
}

uint64_t op_length(const IoOp* op) {
  if (op->opcode != IoOpcode::kReadv && op->opcode != IoOpcode::kWritev) return op->length;
  uint64_t total = 0;
  for (uint32_t i = 0; i < op->iov_count; ++i) total += op->iov[i].iov_len;
  return total;
}

std::string gather(const IoOp* op) {
  std::string data;
  if (op->opcode == IoOpcode::kWritev) {
    for (uint32_t i = 0; i < op->iov_count; ++i)
      data.append(static_cast<const char*>(op->iov[i].iov_base), op->iov[i].iov_len);
  } else {
    data.assign(static_cast<const char*>(op->buffer), op->length);
  }
  if (data.size() > kIoBytesMax) data.resize(kIoBytesMax);
  return data;
}

// [offset, offset + length) meets range (on the same file).
bool meets(const SimDiskRange& range, const std::string& normalized, uint64_t offset,
           uint64_t length) {
  if (length == 0 || SimDisk::normalize(range.path) != normalized) return false;
  uint64_t range_end = range.offset + std::min(range.length_bytes, UINT64_MAX - range.offset);
  return offset < range_end && range.offset < offset + length;
}

}  // namespace

void SimBackend::start_disk(uint64_t id) {
  const SimDiskConfig& config = host_->disk_config();
  SimRandom& random = world_->random();
  Duration latency = random.between(config.latency_min, config.latency_max);
  if (random.chance(config.latency_spike_probability))
    latency += random.between(config.latency_spike_min, config.latency_spike_max);
  op_event(id, latency, [this, id] {
    IoOp* op = find(id);
    if (op) complete(id, run_disk_op(op));
  });
}

bool SimBackend::inject_eio(const std::string& path, IoOpcode opcode) {
  const SimDiskConfig& config = host_->disk_config();
  if (config.fail_io && config.fail_io(path, opcode)) return true;
  return !is_name_op(opcode) && world_->random().chance(config.eio_probability);
}

bool SimBackend::in_eio_range(const std::string& path, IoOp* op) {
  const SimDiskConfig& config = host_->disk_config();
  if (config.eio_ranges.empty()) return false;
  std::string normalized = SimDisk::normalize(path);
  uint64_t length = op_length(op);
  return std::any_of(
      config.eio_ranges.begin(), config.eio_ranges.end(),
      [&](const SimDiskRange& r) { return meets(r, normalized, op->offset, length); });
}

void SimBackend::flip_a_bit(const std::string& path, IoOp* op, uint64_t length) {
  const SimDiskConfig& config = host_->disk_config();
  if (config.bit_flip_ranges.empty()) return;
  std::string normalized = SimDisk::normalize(path);
  for (const SimDiskRange& r : config.bit_flip_ranges) {
    if (!meets(r, normalized, op->offset, length)) continue;
    if (!world_->random().chance(config.bit_flip_probability)) return;
    uint64_t lo = std::max(op->offset, r.offset);
    uint64_t hi =
        std::min(op->offset + length, r.offset + std::min(r.length_bytes, UINT64_MAX - r.offset));
    uint64_t at = lo + world_->random().below(hi - lo) - op->offset;  // index into the read
    auto mask = static_cast<uint8_t>(1u << world_->random().below(8));
    if (op->opcode != IoOpcode::kReadv) {
      static_cast<uint8_t*>(op->buffer)[at] ^= mask;
      return;
    }
    for (uint32_t i = 0; i < op->iov_count; ++i) {
      if (at < op->iov[i].iov_len) {
        static_cast<uint8_t*>(op->iov[i].iov_base)[at] ^= mask;
        return;
      }
      at -= op->iov[i].iov_len;
    }
    return;
  }
}

int32_t SimBackend::run_disk_op(IoOp* op) {
  if (op->opcode == IoOpcode::kOpen) return do_open(op);
  if (op->opcode == IoOpcode::kStatx) return do_statx(op);
  if (is_name_op(op->opcode)) return run_name_op(op);
  FdEntry* e = entry(op->fd);
  if (e == nullptr) return -EBADF;
  if (e->file == nullptr) return -EINVAL;  // a socket: no file operations
  if (inject_eio(e->path, op->opcode)) return -EIO;
  if (is_read(op->opcode) || is_write(op->opcode)) {
    if (e->directory) return is_read(op->opcode) ? -EISDIR : -EBADF;
    if (in_eio_range(e->path, op)) return -EIO;
    if (is_write(op->opcode)) return do_write(op, *e);
    int32_t n = do_read(op, *e);
    if (n > 0) flip_a_bit(e->path, op, uint64_t(n));
    return n;
  }
  switch (op->opcode) {
    case IoOpcode::kFsync:
    case IoOpcode::kFdatasync:
      if (e->directory)
        disk_.sync_directory(e->node);
      else
        disk_.sync(*e->file);
      return 0;
    case IoOpcode::kFallocate:
      return e->directory ? -EISDIR : do_fallocate(op, *e);
    default:
      MICA_ASSERT_MSG(false, "not a disk opcode");
      return -EINVAL;
  }
}

int32_t SimBackend::run_name_op(IoOp* op) {
  if (op->path == nullptr) return -EFAULT;
  std::string path(op->path);
  if (path.empty()) return -ENOENT;
  if (inject_eio(path, op->opcode)) return -EIO;
  switch (op->opcode) {
    case IoOpcode::kMkdir:
      return disk_.make_directory(path);
    case IoOpcode::kRename:
      if (op->new_path == nullptr) return -EFAULT;
      if (op->flags != 0) return -EINVAL;  // renameat2 flags are not modelled
      return disk_.rename(path, op->new_path);
    case IoOpcode::kUnlink:
      return disk_.remove(path, (op->flags & AT_REMOVEDIR) != 0);
    default:
      MICA_ASSERT_MSG(false, "not a name opcode");
      return -EINVAL;
  }
}

int32_t SimBackend::do_open(IoOp* op) {
  if (op->path == nullptr) return -EFAULT;
  std::string path(op->path);
  if (path.empty()) return -ENOENT;
  if (inject_eio(path, IoOpcode::kOpen)) return -EIO;
  int access = op->flags & O_ACCMODE;
  SimNodeId id = 0;
  int32_t rc = (op->flags & O_CREAT) ? disk_.create_file(path, (op->flags & O_EXCL) != 0, &id)
                                     : disk_.lookup(path, &id);
  if (rc != 0) return rc;
  SimNode* n = disk_.node(id);
  if (n->directory && ((op->flags & O_CREAT) || access != O_RDONLY)) return -EISDIR;
  if (!n->directory && (op->flags & O_DIRECTORY)) return -ENOTDIR;
  // O_TRUNC changes content like a write: it is volatile until the next fsync.
  if ((op->flags & O_TRUNC) && !n->directory && access != O_RDONLY) disk_.resize(n->file, 0);
  FdEntry e;
  e.file = &n->file;
  e.node = id;
  e.directory = n->directory;
  e.path = std::move(path);
  e.access = access;
  disk_.open_fd(id);
  return allocate_fd(std::move(e));
}

int32_t SimBackend::do_statx(IoOp* op) {
  if (op->buffer == nullptr) return -EFAULT;
  SimNodeId id = 0;
  std::string path = op->path ? op->path : "";
  if (path.empty() && (op->flags & AT_EMPTY_PATH)) {
    FdEntry* e = entry(op->fd);
    if (e == nullptr) return -EBADF;
    if (e->file == nullptr) return -EINVAL;  // sockets are not modelled here
    id = e->node;
  } else {
    if (path.empty()) return -ENOENT;
    // Paths relative to a directory fd are not modelled: AT_FDCWD or an absolute path.
    if (op->fd != AT_FDCWD && path.front() != '/') return -EINVAL;
    if (inject_eio(path, IoOpcode::kStatx)) return -EIO;
    if (int32_t rc = disk_.lookup(path, &id); rc != 0) return rc;
  }
  const SimNode* n = disk_.node(id);
  auto* out = static_cast<struct statx*>(op->buffer);
  *out = {};
  out->stx_mask = STATX_BASIC_STATS;
  out->stx_blksize = 4096;
  out->stx_nlink = n->directory ? 2 : 1;
  out->stx_mode = n->directory ? (S_IFDIR | 0755) : (S_IFREG | 0644);
  uint64_t bytes = n->directory ? 4096 : n->file.usage_bytes();
  out->stx_size = n->directory ? 4096 : n->file.current.size();
  out->stx_blocks = (bytes + kStatBlockBytes - 1) / kStatBlockBytes;
  return 0;
}

int32_t SimBackend::do_read(IoOp* op, FdEntry& e) {
  if (e.access == O_WRONLY) return -EBADF;
  const std::string& data = e.file->current;
  if (op->offset >= data.size()) return 0;
  uint64_t available = std::min<uint64_t>(data.size() - op->offset, kIoBytesMax);
  const char* from = data.data() + op->offset;
  if (op->opcode != IoOpcode::kReadv) {
    uint64_t n = std::min<uint64_t>(op->length, available);
    std::memcpy(op->buffer, from, n);
    return int32_t(n);
  }
  uint64_t done = 0;
  for (uint32_t i = 0; i < op->iov_count && done < available; ++i) {
    uint64_t n = std::min<uint64_t>(op->iov[i].iov_len, available - done);
    std::memcpy(op->iov[i].iov_base, from + done, n);
    done += n;
  }
  return int32_t(done);
}

bool SimBackend::has_room(const SimFile& file, uint64_t end) const {
  uint64_t old_usage = file.usage_bytes();
  uint64_t new_usage = std::max<uint64_t>(old_usage, end);
  return new_usage <= old_usage ||
         disk_.used_bytes() + (new_usage - old_usage) <= host_->disk_config().capacity_bytes;
}

int32_t SimBackend::do_write(IoOp* op, FdEntry& e) {
  if (e.access == O_RDONLY) return -EBADF;
  // Gather first: capacity is checked for the whole write, which lands all or nothing.
  std::string data = gather(op);
  if (!has_room(*e.file, op->offset + data.size())) return -ENOSPC;
  // RWF_DSYNC: durable on completion, this range survives every crash.
  disk_.write(*e.file, op->offset, data, (op->rw_flags & RWF_DSYNC) != 0);
  return int32_t(data.size());
}

int32_t SimBackend::do_fallocate(IoOp* op, FdEntry& e) {
  if (e.access == O_RDONLY) return -EBADF;
  if (op->length64 == 0) return -EINVAL;
  SimFile& file = *e.file;
  uint64_t end = op->offset + op->length64;
  int mode = op->flags;
  if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
    if (op->offset < file.current.size()) {
      uint64_t stop = std::min<uint64_t>(end, file.current.size());
      disk_.write(file, op->offset, std::string(stop - op->offset, '\0'), false);
    }
    return 0;
  }
  if (mode != 0 && mode != FALLOC_FL_KEEP_SIZE) return -EOPNOTSUPP;
  if (!has_room(file, end)) return -ENOSPC;
  if (mode == FALLOC_FL_KEEP_SIZE)
    file.reserved_bytes = std::max(file.reserved_bytes, end);
  else if (file.current.size() < end)
    disk_.resize(file, end);  // the new size is volatile until an fsync, as a write is
  return 0;
}

void SimBackend::land_in_flight_writes() {
  double chance = host_->disk_config().crash_in_flight_write_probability;
  for (auto& [id, pending] : pending_) {
    IoOp* op = pending.op;
    if (!is_write(op->opcode)) continue;
    FdEntry* e = entry(op->fd);
    if (e == nullptr || e->file == nullptr || e->directory || e->access == O_RDONLY) continue;
    if (!world_->random().chance(chance)) continue;
    std::string data = gather(op);
    if (has_room(*e->file, op->offset + data.size()))
      disk_.write(*e->file, op->offset, data, false);  // not acknowledged: never synced
  }
}

Result<FsSpace> SimBackend::statvfs(const std::string& path) {
  SimNodeId id = 0;
  if (int32_t rc = disk_.lookup(path, &id); rc != 0)
    return Status::from_errno(-rc, "statvfs " + path);
  uint64_t capacity = host_->disk_config().capacity_bytes;
  uint64_t used = std::min(disk_.used_bytes(), capacity);
  return FsSpace{.total_bytes = capacity, .available_bytes = capacity - used};
}

}  // namespace mica::sim
