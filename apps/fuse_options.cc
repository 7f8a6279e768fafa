// mica-fuse's command line (apps/fuse_options.h).
#include "apps/fuse_options.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace mica::apps {

namespace {

Status bad(std::string message) {
  return Status(StatusCode::kInvalidArgument, message);
}

Result<uint32_t> parse_count(std::string_view key, std::string_view value, uint32_t max) {
  uint32_t out = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || end != value.data() + value.size() || out == 0 || out > max)
    return bad(fmt::format("-o {}={}: a number from 1 to {}", key, value, max));
  return out;
}

Result<double> parse_seconds(std::string_view key, std::string_view value) {
  double out = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || end != value.data() + value.size() || out < 0 ||
      out > kFuseTimeoutMaxSeconds)
    return bad(fmt::format("-o {}={}: seconds from 0 to {}", key, value, kFuseTimeoutMaxSeconds));
  return out;
}

// One -o item: Mica's own, or passed to libfuse.
Status apply_option(std::string_view item, FuseInvocation* out) {
  size_t eq = item.find('=');
  std::string_view key = item.substr(0, eq);
  std::string_view value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
  if (key == "uring") {
    if (value == "auto")
      out->uring = fuse::UringMode::kAuto;
    else if (value == "on")
      out->uring = fuse::UringMode::kOn;
    else if (value == "off")
      out->uring = fuse::UringMode::kOff;
    else
      return bad(fmt::format("-o uring={}: auto, on or off", value));
  } else if (key == "uring_depth") {
    Result<uint32_t> depth = parse_count(key, value, kFuseUringDepthMax);
    if (!depth.ok()) return depth.status();
    out->uring_depth = *depth;
  } else if (key == "executors") {
    Result<uint32_t> n = parse_count(key, value, kFuseExecutorsMax);
    if (!n.ok()) return n.status();
    out->executors = *n;
  } else if (key == "writeback_cache") {
    out->writeback_cache = true;
  } else if (key == "direct_io") {
    out->direct_io = true;
  } else if (key == "entry_timeout" || key == "attr_timeout" || key == "negative_timeout") {
    Result<double> s = parse_seconds(key, value);
    if (!s.ok()) return s.status();
    double* field = key == "entry_timeout"  ? &out->entry_timeout_seconds
                    : key == "attr_timeout" ? &out->attr_timeout_seconds
                                            : &out->negative_timeout_seconds;
    *field = *s;
  } else if (key == "metrics") {
    if (value.empty()) return bad("-o metrics=HOST:PORT");
    out->metrics = std::string(value);
  } else if (key == "default_permissions" || key == "allow_other") {
    // Added anyway (default_permissions always, allow_other as root); allow_other as a
    // normal user needs user_allow_other in /etc/fuse.conf, which fusermount3 checks.
    if (key == "allow_other") out->mount_options.push_back("allow_other");
  } else if (!item.empty()) {
    out->mount_options.emplace_back(item);
  }
  return Status::ok_status();
}

}  // namespace

std::string fuse_usage() {
  return "usage: mica-fuse --mgmtd HOST:PORT --token-file FILE MOUNTPOINT [-o OPT[,OPT...]]\n"
         "  -o uring=auto|on|off  FUSE over io_uring when the kernel offers it (auto)\n"
         "  -o uring_depth=N      ring entries (requests in flight) per queue (64)\n"
         "  -o executors=N        executor threads (one per core)\n"
         "  -o writeback_cache    the kernel's writeback cache (off)\n"
         "  -o direct_io          every open bypasses the page cache\n"
         "  -o entry_timeout=S,attr_timeout=S,negative_timeout=S  kernel cache times (1)\n"
         "  -o metrics=HOST:PORT  serve /metrics over HTTP\n"
         "  other -o options go to the mount (ro, fsname=..., ...)\n";
}

Result<FuseInvocation> parse_fuse_args(std::span<const std::string_view> args, bool is_root) {
  FuseInvocation out;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    auto value = [&]() -> Result<std::string_view> {
      if (i + 1 >= args.size()) return bad(fmt::format("{} needs a value", arg));
      return args[++i];
    };
    if (arg == "-h" || arg == "--help") {
      out.help = true;
      return out;
    }
    if (arg == "--mgmtd" || arg == "--token-file" || arg == "-o") {
      Result<std::string_view> v = value();
      if (!v.ok()) return v.status();
      if (arg == "--mgmtd") {
        out.mgmtd = std::string(*v);
      } else if (arg == "--token-file") {
        out.token_file = std::string(*v);
      } else {
        std::string_view rest = *v;
        while (!rest.empty()) {
          size_t comma = rest.find(',');
          Status applied = apply_option(rest.substr(0, comma), &out);
          if (!applied.ok()) return applied;
          rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
        }
      }
    } else if (!arg.empty() && arg[0] == '-') {
      return bad(fmt::format("unknown flag {}", arg));
    } else if (out.mountpoint.empty()) {
      out.mountpoint = std::string(arg);
    } else {
      return bad(fmt::format("one mount point only (got {} and {})", out.mountpoint, arg));
    }
  }
  if (out.mgmtd.empty()) return bad("--mgmtd HOST:PORT is required");
  if (out.token_file.empty()) return bad("--token-file FILE is required");
  if (out.mountpoint.empty()) return bad("the mount point is missing");
  out.mount_options.push_back("default_permissions");
  bool has_allow_other = std::find(out.mount_options.begin(), out.mount_options.end(),
                                   "allow_other") != out.mount_options.end();
  if (is_root && !has_allow_other) out.mount_options.push_back("allow_other");
  return out;
}

}  // namespace mica::apps
