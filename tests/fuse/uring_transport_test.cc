// UringTransport on a real FUSE mount, without the Mica daemon: the test mounts /dev/fuse
// itself (mount(2), as root), answers INIT on the classic fd advertising io_uring, and
// serves a toy read-only file system (a root directory of kFiles files whose bytes are a
// function of their offset) from the ring through a RequestSink. Every third request is
// answered later from a task, so several requests are in flight per queue. Checks: the
// requests really arrived on the ring (the counter and the metric), reads answered in the
// ring's payload buffer (zero copy) carry the right bytes, more than one request is
// in flight, and unmounting ends every entry so stop() returns. Skipped (with the reason)
// without root, /dev/fuse or the fuse module's enable_uring parameter; the test turns the
// parameter on and never back off, because other tests on this machine may be using it.
// Time cap: a few seconds.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "async/metrics.h"
#include "async/runtime.h"
#include "async/scope.h"
#include "async/wait_list.h"
#include "fuse/uring_transport.h"
#include "tests/temp_dir.h"

namespace mica::fuse {
namespace {

using namespace std::chrono_literals;

constexpr const char* kEnableUring = "/sys/module/fuse/parameters/enable_uring";
constexpr uint64_t kFiles = 40;
constexpr uint64_t kFileBytes = 64 * 1024;
constexpr uint64_t kFirstFileNode = 2;
constexpr uint32_t kMaxPages = 32;  // 128 KiB requests
constexpr uint32_t kDepth = 8;
constexpr int kClients = 4;

std::byte byte_at(uint64_t node, uint64_t offset) {
  return std::byte((node * 131 + offset * 7 + offset / 4096) & 0xff);
}

template <class T>
std::span<const std::byte> bytes_of(const T& value) {
  return {reinterpret_cast<const std::byte*>(&value), sizeof value};
}

// The toy file system: root (node 1) holds f0..f39 (nodes 2..41), each kFileBytes long.
class ToyFs final : public RequestSink {
 public:
  void deliver(std::unique_ptr<Request> request) override {
    int now = in_flight_.fetch_add(1) + 1;
    int seen = max_in_flight_.load();
    while (now > seen && !max_in_flight_.compare_exchange_weak(seen, now)) {
    }
    if (request->path() == RequestPath::kUring) ring_requests_.fetch_add(1);
    // Every third request waits a little on a task before it answers, as a network-bound
    // handler would; the others answer inside deliver().
    if (deliveries_.fetch_add(1) % 3 == 0) {
      later(this, std::move(request)).start(CancelToken());
      return;
    }
    answer(*request);
  }

  static detail::DetachedTask later(ToyFs* fs, std::unique_ptr<Request> request) {
    SleepAwaiter pause = sleep_for(200us);
    Status slept = co_await pause;
    (void)slept;
    fs->answer(*request);
  }

  void answer(Request& request) {
    in_flight_.fetch_sub(1);
    const InHeader& h = request.header();
    switch (request.opcode()) {
      case Opcode::kLookup:
        return lookup(request);
      case Opcode::kGetattr: {
        AttrOut out{};
        out.attr = attr_of(h.nodeid);
        std::span<const std::byte> args[] = {bytes_of(out)};
        return request.reply(0, args);
      }
      case Opcode::kOpen: {
        OpenOut out{};
        std::span<const std::byte> args[] = {bytes_of(out)};
        return request.reply(0, args);
      }
      case Opcode::kRead:
        return read(request);
      case Opcode::kRelease:
      case Opcode::kFlush:
        return request.reply(0, {});
      default:
        return request.reply(-ENOSYS, {});
    }
  }

  static Attr attr_of(uint64_t node) {
    Attr a{};
    a.ino = node;
    a.nlink = 1;
    a.blksize = 4096;
    if (node == kRootId) {
      a.mode = S_IFDIR | 0755;
      a.nlink = 2;
    } else {
      a.mode = S_IFREG | 0644;
      a.size = kFileBytes;
      a.blocks = kFileBytes / 512;
    }
    return a;
  }

  void lookup(Request& request) {
    std::string name(reinterpret_cast<const char*>(request.payload().data()));
    uint64_t index = 0;
    if (name.size() < 2 || name[0] != 'f' || (index = std::stoull(name.substr(1))) >= kFiles)
      return request.reply(-ENOENT, {});
    EntryOut out{};
    out.nodeid = kFirstFileNode + index;
    out.attr = attr_of(out.nodeid);  // timeouts 0: every stat asks again
    std::span<const std::byte> args[] = {bytes_of(out)};
    request.reply(0, args);
  }

  void read(Request& request) {
    ReadIn in{};
    std::memcpy(&in, request.op_in().data(), std::min(sizeof in, request.op_in().size()));
    uint64_t node = request.header().nodeid;
    uint64_t end = std::min<uint64_t>(in.offset + in.size, kFileBytes);
    size_t n = end > in.offset ? end - in.offset : 0;
    std::span<std::byte> area = request.reply_area();
    if (area.size() < n) return request.reply(-EIO, {});
    for (size_t i = 0; i < n; ++i) area[i] = byte_at(node, in.offset + i);
    std::span<const std::byte> args[] = {area.first(n)};
    request.reply(0, args);  // in place: the transport copies nothing
  }

  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
  std::atomic<uint64_t> ring_requests_{0};
  std::atomic<uint64_t> deliveries_{0};
};

// Reads /dev/fuse until the connection ends; answers what arrives there (INIT first).
struct ClassicReader {
  int fd = -1;
  std::atomic<uint64_t> requests{0};
  std::vector<std::byte> buffer = std::vector<std::byte>(kMaxPages * 4096 + 4096);

  // The next request into buffer; its length, or -errno.
  ssize_t next() {
    for (;;) {
      ssize_t n = ::read(fd, buffer.data(), buffer.size());
      if (n >= 0 || errno != EINTR) return n < 0 ? -errno : n;
    }
  }
  void reply(uint64_t unique, int error, std::span<const std::byte> arg = {}) {
    OutHeader out{
        .len = static_cast<uint32_t>(sizeof out + arg.size()), .error = error, .unique = unique};
    std::vector<std::byte> bytes(sizeof out + arg.size());
    std::memcpy(bytes.data(), &out, sizeof out);
    if (!arg.empty()) std::memcpy(bytes.data() + sizeof out, arg.data(), arg.size());
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    (void)n;  // an interrupted request's reply may be refused
  }
  void run() {
    for (;;) {
      ssize_t n = next();
      if (n < 0) return;  // -ENODEV: unmounted
      InHeader h;
      std::memcpy(&h, buffer.data(), sizeof h);
      requests.fetch_add(1);
      auto op = static_cast<Opcode>(h.opcode);
      if (op == Opcode::kForget || op == Opcode::kBatchForget || op == Opcode::kInterrupt) continue;
      reply(h.unique, -ENOSYS);
    }
  }
};

bool enable_uring() {
  std::ifstream in(kEnableUring);
  std::string value;
  if (!(in >> value)) return false;
  if (value == "Y") return true;
  std::ofstream out(kEnableUring);
  out << "Y";  // never written back: parallel tests may rely on it
  out.close();
  return static_cast<bool>(out);
}

class UringMount : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "mounting FUSE needs root";
    if (access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/fuse";
    if (access(kEnableUring, F_OK) != 0)
      GTEST_SKIP() << kEnableUring << " is absent: this kernel has no FUSE over io_uring";
    ASSERT_TRUE(enable_uring()) << "cannot switch on " << kEnableUring;
    mnt_ = dir_.path() + "/mnt";
    std::filesystem::create_directories(mnt_);
    fd_ = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd_, 0);
    std::string options = "fd=" + std::to_string(fd_) + ",rootmode=40000,user_id=0,group_id=0";
    ASSERT_EQ(
        ::mount("micatest", mnt_.c_str(), "fuse.micatest", MS_NOSUID | MS_NODEV, options.c_str()),
        0)
        << std::strerror(errno);
    mounted_ = true;
  }
  void TearDown() override {
    // After a failure: a lazy unmount ends the connection, which ends the ring's entries.
    if (mounted_) ::umount2(mnt_.c_str(), MNT_DETACH);
    if (transport_) runtime_.block_on(transport_->stop());
    if (reader_thread_.joinable()) reader_thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }

  // Answers INIT (advertising io_uring when `uring`), with the transport prepared first.
  void init(bool uring) {
    reader_ = std::make_unique<ClassicReader>();
    reader_->fd = fd_;
    ssize_t n = reader_->next();
    ASSERT_GT(n, 0);
    InHeader h;
    std::memcpy(&h, reader_->buffer.data(), sizeof h);
    ASSERT_EQ(h.opcode, static_cast<uint32_t>(Opcode::kInit));
    InitIn in{};
    std::memcpy(&in, reader_->buffer.data() + sizeof h,
                std::min<size_t>(sizeof in, size_t(n) - sizeof h));
    ASSERT_TRUE(UringTransport::offered(in)) << "INIT does not offer io_uring";
    InitOut out{};
    out.major = kKernelVersion;
    out.minor = kKernelMinorVersion;
    out.max_readahead = in.max_readahead;
    uint64_t flags = kInitInitExt | kInitMaxPages | kInitAsyncRead | kInitParallelDirops;
    if (uring) {
      auto prepared = UringTransport::prepare(runtime_, fd_, kDepth, kMaxPages * 4096, fs_);
      ASSERT_TRUE(prepared.ok()) << prepared.status();
      transport_ = std::move(*prepared);
      flags |= kInitOverIoUring;
    }
    out.flags = static_cast<uint32_t>(flags);
    out.flags2 = static_cast<uint32_t>(flags >> 32);
    out.max_background = 64;
    out.congestion_threshold = 48;
    out.max_write = kMaxPages * 4096;
    out.max_pages = kMaxPages;
    out.time_gran = 1;
    reader_->reply(h.unique, 0, bytes_of(out));
    if (transport_) transport_->start();
    reader_thread_ = std::thread([r = reader_.get()] { r->run(); });
  }

  // Stats every file and reads every file whole from kClients threads at once.
  uint64_t run_clients() {
    std::atomic<uint64_t> ops{0}, bad{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        // The kernel picks the queue by the calling thread's CPU: spread the clients so
        // every queue serves some.
        cpu_set_t cpus;
        CPU_ZERO(&cpus);
        CPU_SET(c % std::max<long>(1, sysconf(_SC_NPROCESSORS_ONLN)), &cpus);
        sched_setaffinity(0, sizeof cpus, &cpus);
        std::vector<std::byte> data(kFileBytes);
        for (uint64_t i = 0; i < kFiles; ++i) {
          uint64_t index = (i + c * 7) % kFiles;
          std::string path = mnt_ + "/f" + std::to_string(index);
          struct stat st;
          if (::stat(path.c_str(), &st) != 0 || st.st_size != int64_t(kFileBytes)) ++bad;
          int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT);
          if (fd < 0) {
            ++bad;
            continue;
          }
          ssize_t n = ::pread(fd, data.data(), data.size(), 0);
          if (n != ssize_t(kFileBytes)) ++bad;
          for (ssize_t b = 0; b < n; ++b)
            if (data[b] != byte_at(kFirstFileNode + index, b)) {
              ++bad;
              break;
            }
          ::close(fd);
          ops += 4;  // lookup, open, read, release at least
        }
      });
    }
    for (auto& t : clients) t.join();
    EXPECT_EQ(bad.load(), 0u);
    return ops.load();
  }

  void unmount_and_stop() {
    ASSERT_EQ(::umount2(mnt_.c_str(), 0), 0) << std::strerror(errno);
    mounted_ = false;
    if (transport_) {
      runtime_.block_on(transport_->stop());
      EXPECT_EQ(transport_->entries_live(), 0u);
    }
  }

  testing::TempDir dir_{testing::binary_dir() + "/fuse-uring-data", "mount"};
  std::string mnt_;
  int fd_ = -1;
  bool mounted_ = false;
  Runtime runtime_{RuntimeOptions{.threads = 2, .big_sqes = true}};
  ToyFs fs_;
  std::unique_ptr<UringTransport> transport_;
  std::unique_ptr<ClassicReader> reader_;
  std::thread reader_thread_;
};

TEST_F(UringMount, RequestsArriveOnTheRingAndRepliesCommit) {
  init(/*uring=*/true);
  ASSERT_FALSE(HasFatalFailure());
  uint64_t metric_before = 0;
  for (size_t q = 0; q < transport_->queues(); ++q)
    metric_before +=
        metrics()
            .counter("fuse", "uring_requests_total", "", {{"queue", std::to_string(q)}})
            .value();
  uint64_t received_before = transport_->requests_received();
  uint64_t ops = run_clients();
  uint64_t received = transport_->requests_received() - received_before;
  EXPECT_GE(received, ops) << "requests did not arrive on the ring";
  EXPECT_EQ(fs_.ring_requests_.load(), transport_->requests_received());
  uint64_t metric_after = 0;
  for (size_t q = 0; q < transport_->queues(); ++q)
    metric_after += metrics()
                        .counter("fuse", "uring_requests_total", "", {{"queue", std::to_string(q)}})
                        .value();
  EXPECT_GE(metric_after - metric_before, ops);
  EXPECT_GE(fs_.max_in_flight_.load(), 2) << "requests were served one at a time";
  RecordProperty("ring_requests", std::to_string(received));
  RecordProperty("client_ops", std::to_string(ops));
  RecordProperty("max_in_flight", std::to_string(fs_.max_in_flight_.load()));
  for (size_t q = 0; q < transport_->queues(); ++q)
    RecordProperty("queue" + std::to_string(q), std::to_string(transport_->requests_received(q)));
  if (transport_->queues() <= size_t(sysconf(_SC_NPROCESSORS_ONLN))) {
    for (size_t q = 0; q < transport_->queues(); ++q)
      EXPECT_GT(transport_->requests_received(q), 0u) << "queue " << q << " served nothing";
  }
  unmount_and_stop();
}

}  // namespace
}  // namespace mica::fuse
