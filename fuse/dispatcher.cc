// Dispatcher (fuse/dispatcher.h): request tasks, routing by opcode, credentials, metrics,
// interrupts and forgets. INIT is in fuse/dispatcher_init.cc, the operations in ops_*.cc.
#include "fuse/dispatcher.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <utility>

#include "async/executor.h"
#include "async/log.h"
#include "client/errno.h"
#include "fuse/dispatcher_state.h"

namespace mica::fuse {

namespace {

// How long a process's supplementary groups are reused from the lane's cache.
constexpr Duration kGroupsCacheTtl = std::chrono::seconds(1);
constexpr size_t kGroupsCacheMax = 4096;
constexpr size_t kProcStatusBytesMax = 8192;

// The Groups: line of /proc/PID/status (a thread id works too); empty when it is gone.
std::vector<uint32_t> proc_groups(uint32_t pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%u/status", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string text(kProcStatusBytesMax, '\0');
  ssize_t got = ::read(fd, text.data(), text.size());
  ::close(fd);
  if (got <= 0) return {};
  text.resize(static_cast<size_t>(got));
  size_t at = text.find("\nGroups:");
  if (at == std::string::npos) return {};
  size_t end = text.find('\n', at + 1);
  std::string_view line(text.data() + at + 8,
                        (end == std::string::npos ? text.size() : end) - (at + 8));
  std::vector<uint32_t> groups;
  const char* p = line.data();
  const char* stop = line.data() + line.size();
  while (p < stop) {
    while (p < stop && (*p == ' ' || *p == '\t')) ++p;
    uint32_t value = 0;
    auto [next, ec] = std::from_chars(p, stop, value);
    if (ec != std::errc() || next == p) break;
    groups.push_back(value);
    p = next;
  }
  return groups;
}

// The `op` label of requests_total; opcodes not named here count as "other".
constexpr std::pair<Opcode, const char*> kOpcodeNames[] = {
    {Opcode::kLookup, "lookup"},
    {Opcode::kForget, "forget"},
    {Opcode::kGetattr, "getattr"},
    {Opcode::kSetattr, "setattr"},
    {Opcode::kReadlink, "readlink"},
    {Opcode::kSymlink, "symlink"},
    {Opcode::kMknod, "mknod"},
    {Opcode::kMkdir, "mkdir"},
    {Opcode::kUnlink, "unlink"},
    {Opcode::kRmdir, "rmdir"},
    {Opcode::kRename, "rename"},
    {Opcode::kLink, "link"},
    {Opcode::kOpen, "open"},
    {Opcode::kRead, "read"},
    {Opcode::kWrite, "write"},
    {Opcode::kStatfs, "statfs"},
    {Opcode::kRelease, "release"},
    {Opcode::kFsync, "fsync"},
    {Opcode::kSetxattr, "setxattr"},
    {Opcode::kGetxattr, "getxattr"},
    {Opcode::kListxattr, "listxattr"},
    {Opcode::kRemovexattr, "removexattr"},
    {Opcode::kFlush, "flush"},
    {Opcode::kInit, "init"},
    {Opcode::kOpendir, "opendir"},
    {Opcode::kReaddir, "readdir"},
    {Opcode::kReleasedir, "releasedir"},
    {Opcode::kFsyncdir, "fsyncdir"},
    {Opcode::kAccess, "access"},
    {Opcode::kCreate, "create"},
    {Opcode::kInterrupt, "interrupt"},
    {Opcode::kDestroy, "destroy"},
    {Opcode::kBatchForget, "batch_forget"},
    {Opcode::kFallocate, "fallocate"},
    {Opcode::kReaddirplus, "readdirplus"},
    {Opcode::kRename2, "rename2"},
    {Opcode::kLseek, "lseek"},
    {Opcode::kCopyFileRange, "copy_file_range"},
    {Opcode::kCopyFileRange64, "copy_file_range_64"},
};

// Requests whose work only reads: an INTERRUPT cancels them (they answer -EINTR). A
// mutation is never cancelled half-way: it finishes and answers what happened.
bool cancellable(Opcode op) {
  switch (op) {
    case Opcode::kLookup:
    case Opcode::kGetattr:
    case Opcode::kReadlink:
    case Opcode::kRead:
    case Opcode::kStatfs:
    case Opcode::kGetxattr:
    case Opcode::kListxattr:
    case Opcode::kOpendir:
    case Opcode::kReaddir:
    case Opcode::kReaddirplus:
    case Opcode::kAccess:
      return true;
    default:
      return false;
  }
}

}  // namespace

int fuse_error(const Status& status) {
  if (status.ok()) return 0;
  // Cancellation only happens here when the kernel interrupted the request.
  if (status.code() == StatusCode::kCancelled) return -EINTR;
  return -client::status_to_errno(status);
}

Dispatcher::Dispatcher(std::vector<Lane> lanes, FileTable* files, DispatcherOptions options)
    : lane_list_(std::move(lanes)),
      dir_table_(std::make_unique<DirTable>()),
      files_(files),
      options_(options) {
  MICA_ASSERT(!lane_list_.empty());
  for (const Lane& l : lane_list_) {
    lane_clients_.push_back(l.client);
    lanes_.push_back(nullptr);  // made on the lane's executor (its scope's token lives there)
  }
  const char* paths[2] = {"classic", "uring"};
  for (const auto& [opcode, name] : kOpcodeNames) {
    uint32_t op = static_cast<uint32_t>(opcode);
    for (int p = 0; p < 2; ++p)
      requests_[op][p] = &metrics().counter("fuse", "requests_total", "FUSE requests by opcode.",
                                            {{"op", name}, {"path", paths[p]}});
  }
  unknown_requests_ = &metrics().counter("fuse", "requests_total", "FUSE requests by opcode.",
                                         {{"op", "other"}, {"path", "any"}});
}

Dispatcher::~Dispatcher() = default;

size_t Dispatcher::lane_index() const {
  Executor* current = Executor::current();
  for (size_t i = 0; i < lane_list_.size(); ++i)
    if (lane_list_[i].executor == current) return i;
  MICA_ASSERT_MSG(false, "a FUSE request on an executor with no lane");
  return 0;
}

void Dispatcher::count(const Request& request) {
  uint32_t op = request.header().opcode;
  Counter* counter =
      op < kOpcodeLimit ? requests_[op][request.path() == RequestPath::kUring ? 1 : 0] : nullptr;
  (counter != nullptr ? counter : unknown_requests_)->add();
}

Credentials Dispatcher::credentials(const Request& request) {
  const InHeader& h = request.header();
  Credentials cred{.uid = h.uid, .gid = h.gid, .groups = {}};
  if (h.uid == 0 || h.pid == 0) return cred;  // root needs no groups; pid 0: the kernel
  LaneState& state = lane();
  TimePoint now = Executor::current()->now();
  auto it = state.groups.find(h.pid);
  if (it != state.groups.end() && it->second.uid == h.uid && it->second.expires > now) {
    cred.groups = it->second.groups;
    return cred;
  }
  if (state.groups.size() >= kGroupsCacheMax) state.groups.clear();
  cred.groups = proc_groups(h.pid);
  state.groups[h.pid] = {.uid = h.uid, .groups = cred.groups, .expires = now + kGroupsCacheTtl};
  return cred;
}

Dispatcher::LaneState& Dispatcher::lane() {
  std::unique_ptr<LaneState>& state = lanes_[lane_index()];
  if (state == nullptr) state = std::make_unique<LaneState>();
  return *state;
}

void Dispatcher::deliver(std::unique_ptr<Request> request) {
  count(*request);
  LaneState& state = lane();
  state.scope.spawn(run(std::move(request)));
}

Task<void> Dispatcher::drain(size_t lane_number) {
  MICA_ASSERT(lane_number == lane_index());
  co_await lane().scope.join();
}

Task<void> Dispatcher::run(std::unique_ptr<Request> request) {
  Opcode op = request->opcode();
  switch (op) {
    case Opcode::kInit:
      handle_init(*request);
      co_return;
    case Opcode::kForget:
    case Opcode::kBatchForget:
      handle_forget(*request);
      co_return;
    case Opcode::kInterrupt: {
      auto interrupting = interrupt(std::move(request));
      co_await std::move(interrupting);
      co_return;
    }
    default:
      break;
  }
  if (!initialized_.load()) {
    request->reply(-EIO, {});
    co_return;
  }
  if (!cancellable(op)) {
    auto handling = handle(*request);
    co_await std::move(handling);
    co_return;
  }
  // Its own scope, so an INTERRUPT can cancel this request's waits alone.
  LaneState& state = lane();
  uint64_t unique = request->header().unique;
  TaskScope scope;
  state.in_flight[unique] = &scope;
  scope.spawn(handle(*request));
  co_await scope.join();
  lane().in_flight.erase(unique);
}

Task<void> Dispatcher::interrupt(std::unique_ptr<Request> request) {
  std::optional<InterruptIn> in = read_struct<InterruptIn>(request->op_in());
  request->finish();
  if (!in) co_return;
  // The interrupted request may have been read by any lane: look in each, on its executor.
  size_t home = lane_index();
  for (size_t i = 0; i < lanes_.size(); ++i) {
    size_t l = (home + i) % lanes_.size();
    if (l != home) co_await lane_list_[l].executor->schedule();
    LaneState& state = lane();
    auto it = state.in_flight.find(in->unique);
    bool found = it != state.in_flight.end();
    if (found) it->second->cancel();
    if (l != home) co_await lane_list_[home].executor->schedule();
    if (found) break;
  }
}

void Dispatcher::handle_forget(Request& request) {
  // Node ids are inode ids: nothing to release, only counted.
  if (request.opcode() == Opcode::kForget) {
    forgets_.fetch_add(1);
  } else if (std::optional<BatchForgetIn> in = read_struct<BatchForgetIn>(request.op_in())) {
    forgets_.fetch_add(in->count);
  }
  request.finish();
}

Task<void> Dispatcher::handle(Request& request) {
  switch (request.opcode()) {
    case Opcode::kLookup:
      return lookup(request);
    case Opcode::kGetattr:
      return getattr(request);
    case Opcode::kSetattr:
      return setattr(request);
    case Opcode::kReadlink:
      return readlink(request);
    case Opcode::kMknod:
      return mknod(request);
    case Opcode::kMkdir:
      return mkdir(request);
    case Opcode::kUnlink:
      return remove(request, false);
    case Opcode::kRmdir:
      return remove(request, true);
    case Opcode::kSymlink:
      return symlink(request);
    case Opcode::kRename:
    case Opcode::kRename2:
      return rename(request);
    case Opcode::kLink:
      return link(request);
    case Opcode::kStatfs:
      return statfs(request);
    case Opcode::kAccess:
      return access(request);
    case Opcode::kOpendir:
      return opendir(request);
    case Opcode::kReaddir:
      return readdir(request, false);
    case Opcode::kReaddirplus:
      return readdir(request, true);
    case Opcode::kGetxattr:
      return getxattr(request);
    case Opcode::kListxattr:
      return listxattr(request);
    case Opcode::kSetxattr:
      return setxattr(request);
    case Opcode::kRemovexattr:
      return removexattr(request);
    default:
      return handle_other(request);
  }
}

Task<void> Dispatcher::handle_other(Request& request) {
  switch (request.opcode()) {
    case Opcode::kReleasedir:
      releasedir(request);
      co_return;
    case Opcode::kFsyncdir:  // directory changes are durable when their mutation answers
    case Opcode::kDestroy:
      request.reply(0, {});
      co_return;
    default: {
      auto handling = handle_file_op(request);
      co_await std::move(handling);
      co_return;
    }
  }
}

CacheTimes Dispatcher::cache_times(const meta::Inode& inode,
                                   std::optional<uint64_t>* length) const {
  CacheTimes times = options_.times;
  std::optional<FileTable::LocalView> local =
      files_ != nullptr ? files_->local_view(inode.id) : std::nullopt;
  if (!local) return times;  // no handle of it open here
  if (local->length > inode.length) *length = local->length;
  if (local->unsettled) times.attr_ns = 0;
  return times;
}

}  // namespace mica::fuse
