// INIT negotiation (fuse/dispatcher.h; docs/fuse.md "INIT settings" says why each is set).
#include <algorithm>
#include <cerrno>

#include "async/log.h"
#include "fuse/dispatcher.h"

namespace mica::fuse {

namespace {

constexpr uint32_t kPageBytes = 4096;
constexpr uint32_t kUringFlags2Bit = 1u << 9;  // kInitOverIoUring >> 32

// What the daemon asks for whenever the kernel offers it. Not asked: POSIX_LOCKS and
// FLOCK_LOCKS (without them the kernel keeps fcntl and flock locks itself, local to this
// mount), EXPORT_SUPPORT, DONT_MASK (the kernel applies the umask), HANDLE_KILLPRIV(_V2)
// (the kernel clears SUID/SGID on writes and chown itself, by a SETATTR of the mode),
// AUTO_INVAL_DATA (open-time invalidation is the FileTable's keep_cache decision),
// SETXATTR_EXT (protocol.h declares the short setxattr_in).
constexpr uint64_t kWantedFlags = kInitAsyncRead | kInitAtomicOTrunc | kInitBigWrites |
                                  kInitDoReaddirplus | kInitReaddirplusAuto | kInitAsyncDio |
                                  kInitParallelDirops | kInitMaxPages | kInitCacheSymlinks |
                                  kInitDirectIoAllowMmap;

bool uring_offered(const InitIn& in) {
  return (in.flags & kInitInitExt) != 0 && (in.flags2 & kUringFlags2Bit) != 0;
}

}  // namespace

void Dispatcher::handle_init(Request& request) {
  InitIn in{};
  std::span<const std::byte> bytes = request.op_in();
  std::memcpy(&in, bytes.data(), std::min(bytes.size(), sizeof(in)));
  if (bytes.size() < sizeof(InitIn)) in.flags2 = 0;  // an old kernel: no flags2
  if (in.major != kKernelVersion || in.minor < kMinKernelMinorVersion) {
    init_status_ = Status(StatusCode::kNotSupported,
                          fmt::format("the kernel speaks FUSE {}.{}; mica-fuse needs 7.{} or newer",
                                      in.major, in.minor, kMinKernelMinorVersion));
    request.reply(-EPROTO, {});
    return;
  }
  uint64_t offered = uint64_t{in.flags} | (uint64_t{in.flags2} << 32);
  uint64_t wanted = kWantedFlags | (options_.writeback_cache ? kInitWritebackCache : 0);
  uint64_t flags = offered & wanted;
  if ((offered & kInitInitExt) != 0) flags |= kInitInitExt;

  bool offered_uring = uring_offered(in);
  if (options_.uring != UringMode::kOff) {
    size_t payload = std::max<size_t>(
        {kMinReadBufferBytes, options_.max_write_bytes, size_t{options_.max_pages} * kPageBytes});
    Status prepared = Status(StatusCode::kNotSupported, "no io_uring transport in this build");
    if (!offered_uring) {
      prepared = Status(StatusCode::kNotSupported,
                        "the kernel does not offer FUSE over io_uring (is "
                        "/sys/module/fuse/parameters/enable_uring Y?)");
    } else if (uring_hook_ != nullptr) {
      prepared = uring_hook_->prepare(in, payload);
    }
    if (prepared.ok()) {
      flags |= kInitOverIoUring | kInitInitExt;
    } else if (options_.uring == UringMode::kOn) {
      init_status_ = Status(prepared.code(), "-o uring=on: " + prepared.to_string());
      request.reply(-EPROTO, {});
      return;
    } else {
      MICA_LOG(Info, "fuse", "io_uring not used, serving /dev/fuse only: {}", prepared.to_string());
    }
  }

  InitOut out{};
  out.major = kKernelVersion;
  out.minor = std::min(in.minor, kKernelMinorVersion);
  out.max_readahead = in.max_readahead;  // the kernel's maximum; raise via the bdi instead
  out.flags = static_cast<uint32_t>(flags);
  out.flags2 = static_cast<uint32_t>(flags >> 32);
  out.max_background = options_.max_background;
  out.congestion_threshold = options_.congestion_threshold;
  out.max_write = options_.max_write_bytes;
  out.time_gran = 1;  // nanosecond timestamps
  out.max_pages = options_.max_pages;
  kernel_minor_.store(out.minor);
  MICA_LOG(Info, "fuse", "INIT: kernel {}.{}, flags {:#x}, max_write {}, max_pages {}{}", in.major,
           in.minor, flags, out.max_write, out.max_pages,
           (flags & kInitOverIoUring) != 0 ? ", io_uring" : "");
  std::span<const std::byte> pieces[] = {as_bytes(out)};
  initialized_.store(true);
  request.reply(0, pieces);
  if ((flags & kInitOverIoUring) != 0) {
    uring_active_.store(true);
    uring_hook_->start();
  }
}

}  // namespace mica::fuse
