// SimBackend's disk: open/read/write/fsync/fallocate against the host's in-memory files.
//
// An op's effect happens when it completes (after the drawn latency), so a crash while it
// is pending leaves no trace of it. Writes go to a file's `current` content; fsync and
// fdatasync copy it to `durable`, which is all a crash keeps. Capacity counts each file's
// largest extent (current, durable or reserved); a write or fallocate that would pass it
// fails with -ENOSPC and changes nothing.
#include <fcntl.h>
#include <linux/falloc.h>
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

}  // namespace

uint64_t SimDisk::used_bytes() const {
  uint64_t used = 0;
  for (auto& [path, file] : files) used += file.usage_bytes();
  return used;
}

void SimDisk::lose_unsynced() {
  for (auto& [path, file] : files) file.current = file.durable;
}

const SimFile* SimDisk::find(const std::string& path) const {
  auto it = files.find(path);
  return it == files.end() ? nullptr : &it->second;
}

void SimBackend::start_disk(uint64_t id) {
  const SimDiskConfig& config = host_->disk_config();
  Duration latency = world_->random().between(config.latency_min, config.latency_max);
  op_event(id, latency, [this, id] {
    IoOp* op = find(id);
    if (op) complete(id, run_disk_op(op));
  });
}

bool SimBackend::inject_eio(const std::string& path, IoOpcode opcode) {
  const SimDiskConfig& config = host_->disk_config();
  if (config.fail_io && config.fail_io(path, opcode)) return true;
  return opcode != IoOpcode::kOpen && world_->random().chance(config.eio_probability);
}

int32_t SimBackend::run_disk_op(IoOp* op) {
  if (op->opcode == IoOpcode::kOpen) return do_open(op);
  FdEntry* e = entry(op->fd);
  if (e == nullptr) return -EBADF;
  if (e->file == nullptr) return -EINVAL;  // a socket: no file operations
  if (inject_eio(e->path, op->opcode)) return -EIO;
  switch (op->opcode) {
    case IoOpcode::kRead:
    case IoOpcode::kReadv:
    case IoOpcode::kReadFixed:
      return do_read(op, *e);
    case IoOpcode::kWrite:
    case IoOpcode::kWritev:
    case IoOpcode::kWriteFixed:
      return do_write(op, *e);
    case IoOpcode::kFsync:
    case IoOpcode::kFdatasync:
      e->file->durable = e->file->current;
      return 0;
    case IoOpcode::kFallocate:
      return do_fallocate(op, *e);
    default:
      MICA_ASSERT_MSG(false, "not a disk opcode");
      return -EINVAL;
  }
}

int32_t SimBackend::do_open(IoOp* op) {
  if (op->path == nullptr) return -EFAULT;
  std::string path(op->path);
  if (path.empty()) return -ENOENT;
  if (inject_eio(path, IoOpcode::kOpen)) return -EIO;
  int access = op->flags & O_ACCMODE;
  auto it = disk_.files.find(path);
  if (it != disk_.files.end()) {
    if ((op->flags & O_CREAT) && (op->flags & O_EXCL)) return -EEXIST;
  } else {
    if (!(op->flags & O_CREAT)) return -ENOENT;
    it = disk_.files.emplace(path, SimFile{}).first;
  }
  // O_TRUNC changes content like a write: it is volatile until the next fsync.
  if ((op->flags & O_TRUNC) && access != O_RDONLY) it->second.current.clear();
  FdEntry e;
  e.file = &it->second;
  e.path = std::move(path);
  e.access = access;
  return allocate_fd(std::move(e));
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

int32_t SimBackend::do_write(IoOp* op, FdEntry& e) {
  if (e.access == O_RDONLY) return -EBADF;
  // Gather first: capacity is checked for the whole write, which lands all or nothing.
  std::string data;
  if (op->opcode == IoOpcode::kWritev) {
    for (uint32_t i = 0; i < op->iov_count; ++i)
      data.append(static_cast<const char*>(op->iov[i].iov_base), op->iov[i].iov_len);
  } else {
    data.assign(static_cast<const char*>(op->buffer), op->length);
  }
  if (data.size() > kIoBytesMax) data.resize(kIoBytesMax);
  SimFile& file = *e.file;
  uint64_t end = op->offset + data.size();
  uint64_t old_usage = file.usage_bytes();
  uint64_t new_usage = std::max<uint64_t>(old_usage, end);
  if (new_usage > old_usage &&
      disk_.used_bytes() + (new_usage - old_usage) > host_->disk_config().capacity_bytes)
    return -ENOSPC;
  if (file.current.size() < end) file.current.resize(end, '\0');
  std::memcpy(file.current.data() + op->offset, data.data(), data.size());
  if (op->rw_flags & RWF_DSYNC) {  // durable on completion: this range survives a crash
    if (file.durable.size() < end) file.durable.resize(end, '\0');
    std::memcpy(file.durable.data() + op->offset, data.data(), data.size());
  }
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
      std::memset(file.current.data() + op->offset, 0, stop - op->offset);
    }
    return 0;
  }
  if (mode != 0 && mode != FALLOC_FL_KEEP_SIZE) return -EOPNOTSUPP;
  uint64_t old_usage = file.usage_bytes();
  uint64_t new_usage = std::max<uint64_t>(old_usage, end);
  if (new_usage > old_usage &&
      disk_.used_bytes() + (new_usage - old_usage) > host_->disk_config().capacity_bytes)
    return -ENOSPC;
  if (mode == FALLOC_FL_KEEP_SIZE)
    file.reserved_bytes = std::max(file.reserved_bytes, end);
  else if (file.current.size() < end)
    file.current.resize(end, '\0');
  return 0;
}

}  // namespace mica::sim
