#include "fuse/uring_transport.h"

#include <sys/mman.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>

#include "async/log.h"
#include "async/uring_cmd.h"
#include "async/wait_list.h"

namespace mica::fuse {

namespace {

constexpr size_t kPageBytes = 4096;
constexpr size_t kUringIovecs = 2;  // FUSE_URING_IOV_SEGS: header, payload
// REGISTER before the kernel has processed the INIT reply answers -EAGAIN; wait this long
// before trying again rather than spinning on the ring.
constexpr auto kRegisterRetryDelay = std::chrono::milliseconds(1);
constexpr auto kStopPollInterval = std::chrono::milliseconds(2);
constexpr auto kStopWarnInterval = std::chrono::seconds(5);
// The kernel accepts reply errors in (-ERESTARTSYS, 0].
constexpr int kErestartsys = 512;

bool ends_queue(int32_t result) {
  return result == -ENOTCONN || result == -ECONNABORTED || result == -ECANCELED;
}

}  // namespace

struct UringTransport::Entry {
  Queue* queue = nullptr;
  UringReqHeader* header = nullptr;
  std::byte* payload = nullptr;
  iovec iov[kUringIovecs]{};
  alignas(8) unsigned char area[kUringCmdBytes]{};
  uint64_t commit_id = 0;
  // Set by commit(); the entry's loop waits for it before COMMIT_AND_FETCH.
  bool replied = false;
  std::coroutine_handle<> waiter;
};

struct UringTransport::Queue {
  uint16_t qid = 0;
  Executor* executor = nullptr;
  void* mapping = nullptr;  // depth payload buffers, page-aligned, touched lazily
  size_t mapping_bytes = 0;
  std::vector<UringReqHeader> headers;
  std::vector<Entry> entries;
  std::atomic<uint64_t> received{0};  // written on the queue's executor only
  Counter* received_metric = nullptr;
  bool logged_error = false;
};

// A request that arrived in a ring entry. Its bytes are the entry's; reply() writes the
// answer into the same entry and lets the entry's loop commit it.
class UringRequest final : public Request {
 public:
  UringRequest(UringTransport* transport, UringTransport::Entry* entry)
      : Request(RequestPath::kUring), transport_(transport), entry_(entry) {
    UringReqHeader* h = entry->header;
    std::memcpy(&header_, h->in_out, sizeof header_);
    size_t payload = std::min<size_t>(h->ring_ent_in_out.payload_sz, transport->payload_bytes_);
    // The kernel copied the opcode's first argument to op_in and the rest (names, data,
    // then the extensions) to the payload; header.len counts all of it.
    size_t op_in = op_in_size(header_.opcode, kKernelMinorVersion);
    if (header_.len >= sizeof(InHeader) + payload &&
        header_.len - sizeof(InHeader) - payload <= kUringOpInOutBytes)
      op_in = header_.len - sizeof(InHeader) - payload;
    op_in = std::min(op_in, kUringOpInOutBytes);
    size_t extensions = std::min<size_t>(size_t{header_.total_extlen} * 8, payload);
    const auto* op_bytes = reinterpret_cast<const std::byte*>(h->op_in);
    op_in_ = {op_bytes, op_in};
    payload_ = {entry->payload, payload - extensions};
    extensions_ = {entry->payload + payload - extensions, extensions};
  }
  ~UringRequest() override {
    // The kernel holds this entry until it is committed: a request dropped unanswered
    // would take the entry out of service for good.
    if (!done_) reply(-EIO, {});
  }

  std::span<std::byte> reply_area() override {
    return {entry_->payload, transport_->payload_bytes_};
  }
  void reply(int error, std::span<const std::span<const std::byte>> out) override {
    MICA_ASSERT_MSG(!done_, "a ring request replied twice");
    done_ = true;
    transport_->commit(entry_, error, out);
  }
  // Only FORGET / BATCH_FORGET / INTERRUPT take no reply, and the kernel sends those over
  // /dev/fuse; should one arrive here the entry still has to be committed.
  void finish() override { reply(0, {}); }

 private:
  UringTransport* transport_;
  UringTransport::Entry* entry_;
  bool done_ = false;
};

namespace {

// Suspends the entry's loop until the request's reply has been written (at once when
// reply() already ran inside deliver()).
struct ReplyWait {
  UringTransport::Entry* entry;
  bool await_ready() const noexcept;
  void await_suspend(std::coroutine_handle<> h) const noexcept;
  void await_resume() const noexcept {}
};

}  // namespace

bool ReplyWait::await_ready() const noexcept {
  return entry->replied;
}
void ReplyWait::await_suspend(std::coroutine_handle<> h) const noexcept {
  entry->waiter = h;
}

Result<size_t> possible_cpus(std::string_view list) {
  size_t count = 0;
  while (!list.empty() && (list.back() == '\n' || list.back() == ' ')) list.remove_suffix(1);
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view range = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    size_t dash = range.find('-');
    std::string_view first_text = range.substr(0, dash);
    std::string_view last_text =
        dash == std::string_view::npos ? first_text : range.substr(dash + 1);
    size_t first = 0, last = 0;
    auto a = std::from_chars(first_text.data(), first_text.data() + first_text.size(), first);
    auto b = std::from_chars(last_text.data(), last_text.data() + last_text.size(), last);
    if (a.ec != std::errc() || b.ec != std::errc() || a.ptr != first_text.end() ||
        b.ptr != last_text.end() || last < first)
      return Status(StatusCode::kInvalidArgument, "bad CPU list: " + std::string(range));
    count += last - first + 1;
  }
  if (count == 0) return Status(StatusCode::kInvalidArgument, "empty CPU list");
  return count;
}

Result<size_t> possible_cpus() {
  std::ifstream in("/sys/devices/system/cpu/possible");
  std::string text;
  if (!in || !std::getline(in, text))
    return Status(StatusCode::kNotFound, "cannot read /sys/devices/system/cpu/possible");
  return possible_cpus(text);
}

bool UringTransport::offered(const InitIn& in) {
  constexpr uint64_t kFlags2Bit = kInitOverIoUring >> 32;
  return (in.flags & kInitInitExt) != 0 && (in.flags2 & kFlags2Bit) != 0;
}

UringTransport::UringTransport(Runtime& runtime, int dev_fd, uint32_t depth,
                               size_t payload_bytes, RequestSink& sink)
    : runtime_(runtime),
      dev_fd_(dev_fd),
      depth_(depth),
      payload_bytes_((payload_bytes + kPageBytes - 1) / kPageBytes * kPageBytes),
      sink_(sink) {}

UringTransport::~UringTransport() {
  MICA_ASSERT_MSG(live_.load() == 0, "UringTransport destroyed with entries in the kernel");
  for (auto& queue : queues_)
    if (queue->mapping != nullptr) munmap(queue->mapping, queue->mapping_bytes);
}

Result<std::unique_ptr<UringTransport>> UringTransport::prepare(Runtime& runtime, int dev_fd,
                                                                uint32_t depth,
                                                                size_t payload_bytes,
                                                                RequestSink& sink) {
  if (depth == 0 || depth > kUringDepthMax)
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("uring_depth {} outside 1..{}", depth, kUringDepthMax));
  if (payload_bytes < kMinReadBufferBytes)
    return Status(StatusCode::kInvalidArgument, "ring payload buffers below 8 KiB");
  for (size_t i = 0; i < runtime.size(); ++i)
    if (!runtime.executor(i).backend().big_sqes())
      return Status(StatusCode::kNotSupported,
                    "the runtime's rings lack 128-byte SQEs (RuntimeOptions::big_sqes)");
  Result<size_t> cpus = possible_cpus();
  if (!cpus.ok()) return cpus.status();
  std::unique_ptr<UringTransport> transport(
      new UringTransport(runtime, dev_fd, depth, payload_bytes, sink));
  Status allocated = transport->allocate(*cpus);
  if (!allocated.ok()) return allocated;
  return transport;
}

Status UringTransport::allocate(size_t queue_count) {
  for (size_t q = 0; q < queue_count; ++q) {
    auto queue = std::make_unique<Queue>();
    queue->qid = static_cast<uint16_t>(q);
    queue->executor = &runtime_.executor(q % runtime_.size());
    queue->mapping_bytes = payload_bytes_ * depth_;
    void* mapping = mmap(nullptr, queue->mapping_bytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED) return Status::from_errno(errno, "mmap ring payload buffers");
    queue->mapping = mapping;
    queue->headers.resize(depth_);
    queue->entries.resize(depth_);
    for (uint32_t i = 0; i < depth_; ++i) {
      Entry& e = queue->entries[i];
      e.queue = queue.get();
      e.header = &queue->headers[i];
      e.payload = static_cast<std::byte*>(mapping) + size_t{i} * payload_bytes_;
      e.iov[0] = {e.header, sizeof(UringReqHeader)};
      e.iov[1] = {e.payload, payload_bytes_};
    }
    queue->received_metric =
        &metrics().counter("fuse", "uring_requests_total",
                           "FUSE requests that arrived on an io_uring queue.",
                           {{"queue", std::to_string(q)}});
    queues_.push_back(std::move(queue));
  }
  return Status();
}

void UringTransport::start() {
  MICA_ASSERT(!started_);
  started_ = true;
  live_.store(queues_.size() * depth_, std::memory_order_release);
  for (auto& queue : queues_)
    for (Entry& e : queue->entries) queue->executor->post_remote(serve(this, &e).handle);
  MICA_LOG(Info, "fuse", "io_uring: {} queues x {} entries, {} KiB payload each", queues_.size(),
           depth_, payload_bytes_ / 1024);
}

detail::DetachedTask UringTransport::serve(UringTransport* self, Entry* entry) {
  auto cmd = UringCmd::kRegister;
  for (;;) {
    UringCmdReq request{};
    request.commit_id = cmd == UringCmd::kCommitAndFetch ? entry->commit_id : 0;
    request.qid = entry->queue->qid;
    std::memset(entry->area, 0, sizeof entry->area);
    std::memcpy(entry->area, &request, sizeof request);
    auto command = uring_cmd(UringCommand{.fd = self->dev_fd_,
                                          .op = static_cast<uint32_t>(cmd),
                                          .area = entry->area,
                                          .addr = entry->iov,
                                          .len = kUringIovecs});
    Result<uint32_t> done = co_await command;
    int32_t result = command.result();
    if (result == -EAGAIN || result == -EINTR) {
      // Not yet initialised (REGISTER) or interrupted: the same command again.
      SleepAwaiter pause = sleep_for(kRegisterRetryDelay);
      Status slept = co_await pause;
      (void)slept;
      continue;
    }
    if (!done.ok()) {
      self->entry_ended(entry, result);
      co_return;
    }
    self->deliver(entry);
    ReplyWait replied{entry};
    co_await replied;
    entry->replied = false;
    cmd = UringCmd::kCommitAndFetch;
  }
}

void UringTransport::deliver(Entry* entry) {
  Queue& queue = *entry->queue;
  queue.received.store(queue.received.load(std::memory_order_relaxed) + 1,
                       std::memory_order_relaxed);
  queue.received_metric->add();
  entry->commit_id = entry->header->ring_ent_in_out.commit_id;
  sink_.deliver(std::make_unique<UringRequest>(this, entry));
}

void UringTransport::commit(Entry* entry, int error,
                            std::span<const std::span<const std::byte>> out) {
  MICA_ASSERT(Executor::current() == entry->queue->executor);
  MICA_ASSERT_MSG(error <= 0 && error > -kErestartsys, "reply error out of range");
  size_t total = 0;
  if (error == 0) {
    bool in_place = true;  // every arg outside the payload or already where it goes
    for (auto arg : out) {
      const std::byte* dest = entry->payload + total;
      bool inside = arg.data() >= entry->payload && arg.data() < entry->payload + payload_bytes_;
      if (inside && arg.data() != dest) in_place = false;
      total += arg.size();
    }
    MICA_ASSERT_MSG(total <= payload_bytes_, "reply larger than the ring payload buffer");
    if (in_place) {
      size_t at = 0;
      for (auto arg : out) {
        if (arg.data() != entry->payload + at && !arg.empty())
          std::memcpy(entry->payload + at, arg.data(), arg.size());
        at += arg.size();
      }
    } else {
      // Args inside the buffer but elsewhere: gather first, so none is overwritten
      // before it is copied.
      std::vector<std::byte> gathered;
      gathered.reserve(total);
      for (auto arg : out) gathered.insert(gathered.end(), arg.begin(), arg.end());
      std::memcpy(entry->payload, gathered.data(), total);
    }
  }
  OutHeader header{.len = static_cast<uint32_t>(sizeof(OutHeader) + total),
                   .error = error,
                   .unique = entry->commit_id};
  std::memcpy(entry->header->in_out, &header, sizeof header);
  entry->header->ring_ent_in_out.payload_sz = static_cast<uint32_t>(total);
  entry->replied = true;
  if (entry->waiter) {
    std::coroutine_handle<> waiter = entry->waiter;
    entry->waiter = {};
    entry->queue->executor->post(waiter);
  }
}

void UringTransport::entry_ended(Entry* entry, int32_t result) {
  Queue& queue = *entry->queue;
  if (!ends_queue(result) && !queue.logged_error) {
    queue.logged_error = true;
    MICA_LOG(Error, "fuse", "io_uring queue {}: entry ended with {} ({})", queue.qid, result,
             std::strerror(-result));
  }
  live_.fetch_sub(1, std::memory_order_acq_rel);
}

Task<void> UringTransport::stop() {
  if (!started_) co_return;
  TimePoint warn_at = Executor::current()->now() + kStopWarnInterval;
  while (live_.load(std::memory_order_acquire) > 0) {
    if (Executor::current()->now() >= warn_at) {
      MICA_LOG(Warn, "fuse", "io_uring: still waiting for {} entries (not unmounted yet?)",
               live_.load());
      warn_at = Executor::current()->now() + kStopWarnInterval;
    }
    SleepAwaiter pause = sleep_for(kStopPollInterval);
    Status slept = co_await pause;
    (void)slept;
  }
}

uint64_t UringTransport::requests_received() const {
  uint64_t total = 0;
  for (auto& queue : queues_) total += queue->received.load(std::memory_order_relaxed);
  return total;
}

uint64_t UringTransport::requests_received(size_t queue) const {
  return queues_.at(queue)->received.load(std::memory_order_relaxed);
}

}  // namespace mica::fuse
