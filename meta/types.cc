#include "meta/types.h"

#include <sys/stat.h>

#include <algorithm>

namespace mica::meta {

std::string_view inode_type_name(InodeType type) {
  switch (type) {
    case InodeType::kFile:
      return "file";
    case InodeType::kDirectory:
      return "directory";
    case InodeType::kSymlink:
      return "symlink";
    case InodeType::kFifo:
      return "fifo";
    case InodeType::kSocket:
      return "socket";
    case InodeType::kCharDevice:
      return "char-device";
    case InodeType::kBlockDevice:
      return "block-device";
  }
  return "unknown";
}

uint32_t inode_type_mode_bits(InodeType type) {
  switch (type) {
    case InodeType::kFile:
      return S_IFREG;
    case InodeType::kDirectory:
      return S_IFDIR;
    case InodeType::kSymlink:
      return S_IFLNK;
    case InodeType::kFifo:
      return S_IFIFO;
    case InodeType::kSocket:
      return S_IFSOCK;
    case InodeType::kCharDevice:
      return S_IFCHR;
    case InodeType::kBlockDevice:
      return S_IFBLK;
  }
  return 0;
}

bool Credentials::in_group(uint32_t group) const {
  return gid == group || std::find(groups.begin(), groups.end(), group) != groups.end();
}

Status check_name(std::string_view name) {
  if (name.size() > kNameMax) {
    return Status(StatusCode::kNameTooLong,
                  fmt::format("a name is at most {} bytes, this one {}", kNameMax, name.size()));
  }
  if (name.empty() || name == "." || name == "..") {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("'{}' cannot be an entry's name", name));
  }
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return Status(StatusCode::kInvalidArgument, "a name holds neither '/' nor NUL");
  }
  return Status::ok_status();
}

}  // namespace mica::meta
