#include "meta/xattr_rules.h"

#include "meta/permission.h"

namespace mica::meta {

namespace {

enum class XattrNamespace { kUser, kTrusted, kSecurity, kSystem, kUnknown };

constexpr std::string_view kUserPrefix = "user.";
constexpr std::string_view kTrustedPrefix = "trusted.";
constexpr std::string_view kSecurityPrefix = "security.";
constexpr std::string_view kSystemPrefix = "system.";

XattrNamespace namespace_of(std::string_view name) {
  if (name.starts_with(kUserPrefix)) return XattrNamespace::kUser;
  if (name.starts_with(kTrustedPrefix)) return XattrNamespace::kTrusted;
  if (name.starts_with(kSecurityPrefix)) return XattrNamespace::kSecurity;
  if (name.starts_with(kSystemPrefix)) return XattrNamespace::kSystem;
  return XattrNamespace::kUnknown;
}

bool user_xattrs_allowed(const Inode& inode) {
  return inode.type == InodeType::kFile || inode.type == InodeType::kDirectory;
}

}  // namespace

Status check_xattr_name(std::string_view name) {
  if (name.size() > kXattrNameMax) {
    return Status(
        StatusCode::kNameTooLong,
        fmt::format("an xattr name is at most {} bytes, this one {}", kXattrNameMax, name.size()));
  }
  if (namespace_of(name) == XattrNamespace::kUnknown) {
    return Status(StatusCode::kNotSupported,
                  fmt::format("xattr '{}' names no namespace (user., trusted., security., "
                              "system.)",
                              name));
  }
  if (name.back() == '.' && name.find('.') == name.size() - 1) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("xattr '{}' is only a namespace", name));
  }
  return Status::ok_status();
}

Status check_xattr_value(std::string_view value) {
  if (value.size() <= kXattrValueMax) return Status::ok_status();
  return Status(StatusCode::kTooBig, fmt::format("an xattr value is at most {} bytes, this one {}",
                                                 kXattrValueMax, value.size()));
}

Status check_xattr_read(const Credentials& cred, const Inode& inode, std::string_view name) {
  switch (namespace_of(name)) {
    case XattrNamespace::kTrusted:
      return is_root(cred) ? Status::ok_status() : xattr_missing(inode.id, name);
    case XattrNamespace::kUser:
      if (!user_xattrs_allowed(inode)) return xattr_missing(inode.id, name);
      if (!may_read(cred, inode)) {
        return Status(StatusCode::kPermissionDenied,
                      fmt::format("no read permission on {:#x}", inode.id));
      }
      return Status::ok_status();
    case XattrNamespace::kSecurity:
    case XattrNamespace::kSystem:
      return Status::ok_status();
    case XattrNamespace::kUnknown:
      break;
  }
  return check_xattr_name(name);
}

Status check_xattr_write(const Credentials& cred, const Inode& inode, std::string_view name) {
  auto not_permitted = [&](std::string_view why) {
    return Status(StatusCode::kNotPermitted,
                  fmt::format("xattr '{}' of {:#x}: {}", name, inode.id, why));
  };
  switch (namespace_of(name)) {
    case XattrNamespace::kTrusted:
      return is_root(cred) ? Status::ok_status() : not_permitted("trusted.* is root's");
    case XattrNamespace::kUser:
      if (!user_xattrs_allowed(inode)) {
        return not_permitted("user.* only on files and directories");
      }
      if (inode.type == InodeType::kDirectory && (inode.mode & kSticky) != 0 &&
          !is_owner_or_root(cred, inode)) {
        return not_permitted("a sticky directory's user.* are its owner's");
      }
      if (!may_write(cred, inode)) {
        return Status(StatusCode::kPermissionDenied,
                      fmt::format("no write permission on {:#x}", inode.id));
      }
      return Status::ok_status();
    case XattrNamespace::kSecurity:
    case XattrNamespace::kSystem:
      return is_owner_or_root(cred, inode) ? Status::ok_status()
                                           : not_permitted("only its owner or root may");
    case XattrNamespace::kUnknown:
      break;
  }
  return check_xattr_name(name);
}

bool xattr_listed(const Credentials& cred, std::string_view name) {
  return namespace_of(name) != XattrNamespace::kTrusted || is_root(cred);
}

Status xattr_missing(InodeId inode, std::string_view name) {
  return Status(StatusCode::kNoData, fmt::format("{:#x} has no xattr '{}'", inode, name));
}

}  // namespace mica::meta
