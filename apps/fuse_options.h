// mica-fuse's command line: `mica-fuse --mgmtd HOST:PORT --token-file F MOUNTPOINT
// [-o opt,...]`, parsed into FuseInvocation. The -o options Mica knows (docs/fuse.md lists
// them) are taken out; the rest (ro, fsname=..., max_read=...) go to libfuse's mount as
// they are. allow_other is added when the daemon runs as root, default_permissions always.
// Pure functions (no I/O): any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "async/status.h"
#include "fuse/dispatcher.h"

namespace mica::apps {

// Executors at most (-o executors=N) and ring entries per queue at most (-o uring_depth=N).
inline constexpr uint32_t kFuseExecutorsMax = 256;
inline constexpr uint32_t kFuseUringDepthMax = 4096;
inline constexpr uint32_t kFuseUringDepthDefault = 64;
// Entry and attribute timeouts at most (seconds).
inline constexpr double kFuseTimeoutMaxSeconds = 86400.0;

struct FuseInvocation {
  std::string mgmtd;
  std::string token_file;
  std::string mountpoint;
  uint32_t executors = 0;  // 0: one per core
  // auto: the ring when the kernel offers it, /dev/fuse alone otherwise (docs/fuse.md).
  fuse::UringMode uring = fuse::UringMode::kAuto;
  uint32_t uring_depth = kFuseUringDepthDefault;
  bool writeback_cache = false;
  bool direct_io = false;
  double entry_timeout_seconds = 1.0;
  double attr_timeout_seconds = 1.0;
  double negative_timeout_seconds = 1.0;
  std::string metrics;                     // HOST:PORT of the /metrics endpoint, "" none
  std::vector<std::string> mount_options;  // for libfuse
  bool help = false;
};

// args without the program name; is_root adds allow_other.
Result<FuseInvocation> parse_fuse_args(std::span<const std::string_view> args, bool is_root);
std::string fuse_usage();

}  // namespace mica::apps
