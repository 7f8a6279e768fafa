// Dispatcher: the daemon's RequestSink — one task per kernel request, on the executor that
// delivered it, answering from the metadata client (namespace ops, fuse/ops_*.cc) and the
// FileTable (open files, fuse/file_table.h).
//
// deliver() spawns the request's task in the delivering lane's TaskScope and returns at once;
// the task owns the Request, runs the opcode's handler and replies exactly once (or
// finish()es FORGET, BATCH_FORGET and INTERRUPT). INIT is answered here too: the negotiated
// settings (fuse/dispatcher_init.cc) and, when the kernel offers FUSE over io_uring and the
// daemon wants it, the UringHook's prepare() before the reply and start() after it.
// Credentials of every call are the caller's uid and gid from the request header, with its
// supplementary groups from /proc/PID/status (cached per lane for a second; the kernel has
// checked permissions already with default_permissions, metadata checks them again).
//
// Threads: construct on any thread before the transports run; deliver() on a lane's executor;
// drain(i) on executor i at shutdown (waits for that lane's request tasks). Everything a
// lane touches (its scope, directory handles, group cache) is that lane's alone, except the
// FileTable (thread-safe) and the metrics (lock-free).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "async/metrics.h"
#include "async/scope.h"
#include "async/status.h"
#include "async/task.h"
#include "fuse/codec.h"
#include "fuse/file_table.h"
#include "fuse/request.h"

namespace mica::fuse {

enum class UringMode : uint8_t { kOff, kAuto, kOn };

// FUSE over io_uring, as the dispatcher sees it during INIT (apps/fuse_main.cc adapts
// fuse/uring_transport.h to it). prepare() runs before the INIT reply, start() after it.
class UringHook {
 public:
  virtual ~UringHook() = default;
  virtual Status prepare(const InitIn& in, size_t payload_bytes) = 0;
  virtual void start() = 0;
};

struct DispatcherOptions {
  CacheTimes times;
  bool writeback_cache = false;  // -o writeback_cache
  uint32_t max_write_bytes = 1u << 20;
  uint16_t max_pages = 256;  // 1 MiB requests
  uint16_t max_background = 64;
  uint16_t congestion_threshold = 48;
  UringMode uring = UringMode::kAuto;
  // Readdir pages asked of metadata at most (the kernel's buffer bounds it further).
  uint32_t readdir_entries_max = 512;
  // Directory handles one lane keeps open at once (opendir past it: EMFILE).
  size_t dir_handles_max = 65536;
};

class Dispatcher final : public RequestSink {
 public:
  // lanes[i]: executor i and its client; files: the mount's open files (outlives this).
  Dispatcher(std::vector<Lane> lanes, FileTable* files, DispatcherOptions options);
  ~Dispatcher() override;

  void deliver(std::unique_ptr<Request> request) override;
  void set_uring_hook(UringHook* hook) { uring_hook_ = hook; }
  // Notifications go through this (the classic session fd), set before the mount runs.
  using Notifier = int (*)(void* context, std::span<const std::byte> message);
  void set_notifier(Notifier notifier, void* context) {
    notifier_ = notifier;
    notifier_context_ = context;
  }
  // Waits until every request task of lane `lane` has finished (on that lane's executor).
  Task<void> drain(size_t lane);

  // A fatal INIT outcome (uring=on but not offered, an unsupported kernel), else ok; the
  // INIT was answered with an error, so the kernel ends the mount.
  const Status& init_status() const { return init_status_; }
  bool initialized() const { return initialized_.load(); }
  uint32_t kernel_minor() const { return kernel_minor_.load(); }
  bool uring_active() const { return uring_active_.load(); }
  uint64_t forgets() const { return forgets_.load(); }

 private:
  struct LaneState;
  struct DirHandle;
  struct DirTable;

  size_t lane_index() const;
  LaneState& lane();  // the calling executor's (made there on first use)
  client::Client& client() { return *lane_clients_[lane_index()]; }
  Credentials credentials(const Request& request);
  void count(const Request& request);

  Task<void> run(std::unique_ptr<Request> request);
  Task<void> handle(Request& request);
  Task<void> handle_other(Request& request);
  Task<void> handle_file_op(Request& request);
  void handle_init(Request& request);
  Task<void> interrupt(std::unique_ptr<Request> request);
  void handle_forget(Request& request);

  // Namespace (fuse/ops_namespace.cc).
  Task<void> lookup(Request& request);
  Task<void> getattr(Request& request);
  Task<void> setattr(Request& request);
  Task<void> readlink(Request& request);
  Task<void> mknod(Request& request);
  Task<void> mkdir(Request& request);
  Task<void> remove(Request& request, bool directory);
  Task<void> symlink(Request& request);
  Task<void> rename(Request& request);
  Task<void> link(Request& request);
  Task<void> statfs(Request& request);
  Task<void> access(Request& request);
  Task<void> reply_inode(Request& request, Result<meta::Inode> inode, bool entry);
  // Directories (fuse/ops_dir.cc).
  Task<void> opendir(Request& request);
  Task<void> readdir(Request& request, bool plus);
  void releasedir(Request& request);
  Task<Status> fill_dir_page(Request& request, DirHandle* dir, uint64_t offset, bool plus,
                             DirentWriter* writer);
  // Extended attributes (fuse/ops_xattr.cc).
  Task<void> getxattr(Request& request);
  Task<void> listxattr(Request& request);
  Task<void> setxattr(Request& request);
  Task<void> removexattr(Request& request);
  // Open files (fuse/ops_file.cc).
  Task<void> open(Request& request);
  Task<void> create(Request& request);
  Task<void> read(Request& request);
  Task<void> write(Request& request);
  Task<void> fallocate(Request& request);
  Task<void> lseek(Request& request);
  Task<void> copy_file_range(Request& request);
  Task<void> handle_handle_op(Request& request);  // FLUSH, RELEASE, FSYNC
  Task<void> not_implemented(Request& request);

  // The cache times of an answer about inode, and in *length the size to answer when this
  // mount's open handles know more than metadata: while they hold writes metadata has not
  // been told of, attributes are not cached (their flush moves length and mtime).
  CacheTimes cache_times(const meta::Inode& inode, std::optional<uint64_t>* length) const;

  std::vector<Lane> lane_list_;
  std::vector<client::Client*> lane_clients_;
  std::vector<std::unique_ptr<LaneState>> lanes_;
  std::unique_ptr<DirTable> dir_table_;
  FileTable* files_;
  DispatcherOptions options_;
  UringHook* uring_hook_ = nullptr;
  Notifier notifier_ = nullptr;
  void* notifier_context_ = nullptr;
  Status init_status_;
  std::atomic<bool> initialized_{false};
  std::atomic<uint32_t> kernel_minor_{0};
  std::atomic<bool> uring_active_{false};
  std::atomic<uint64_t> forgets_{0};
  // requests_total{op, path}: [opcode][path]; nullptr for opcodes not counted by name.
  std::array<std::array<Counter*, 2>, kOpcodeLimit> requests_{};
  Counter* unknown_requests_ = nullptr;
};

// Errors of fuse/: the one place a Status becomes the kernel's negative errno.
int fuse_error(const Status& status);

}  // namespace mica::fuse
