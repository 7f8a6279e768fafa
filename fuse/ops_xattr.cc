// Extended attributes of the Dispatcher (fuse/dispatcher.h). A GETXATTR or LISTXATTR with
// size 0 is the caller's probe: it gets the size it needs (getxattr_out); a buffer too
// small gets -ERANGE. Names and values are checked by the shard (meta/xattr_rules.h).
#include <sys/xattr.h>

#include <cerrno>

#include "fuse/dispatcher.h"
#include "fuse/dispatcher_state.h"
#include "fuse/node_id.h"

namespace mica::fuse {

namespace {

// The answer to a getxattr/listxattr of `value` for a caller with a buffer of `size` bytes.
void reply_sized(Request& request, uint32_t size, std::span<const std::byte> value) {
  if (size == 0) {
    GetxattrOut out{.size = static_cast<uint32_t>(value.size()), .padding = 0};
    std::span<const std::byte> pieces[] = {as_bytes(out)};
    request.reply(0, pieces);
    return;
  }
  if (value.size() > size) {
    request.reply(-ERANGE, {});
    return;
  }
  std::span<const std::byte> pieces[] = {value};
  request.reply(0, pieces);
}

}  // namespace

Task<void> Dispatcher::getxattr(Request& request) {
  std::optional<GetxattrIn> in = read_struct<GetxattrIn>(request.op_in());
  std::optional<std::string_view> name = read_one_name(request.payload());
  if (!in || !name) {
    request.reply(-EINVAL, {});
    co_return;
  }
  meta::GetXattrRequest call{.cred = credentials(request),
                             .inode = to_inode(request.header().nodeid),
                             .name = std::string(*name)};
  auto getting = client().meta().get_xattr(std::move(call));
  Result<meta::XattrValue> reply = co_await std::move(getting);
  if (!reply.ok()) {
    request.reply(fuse_error(reply.status()), {});
    co_return;
  }
  reply_sized(request, in->size, std::as_bytes(std::span(reply->value)));
}

Task<void> Dispatcher::listxattr(Request& request) {
  std::optional<GetxattrIn> in = read_struct<GetxattrIn>(request.op_in());
  if (!in) {
    request.reply(-EINVAL, {});
    co_return;
  }
  meta::ListXattrRequest call{.cred = credentials(request),
                              .inode = to_inode(request.header().nodeid)};
  auto listing = client().meta().list_xattr(std::move(call));
  Result<meta::XattrNames> reply = co_await std::move(listing);
  if (!reply.ok()) {
    request.reply(fuse_error(reply.status()), {});
    co_return;
  }
  std::string joined;
  for (const std::string& n : reply->names) {
    joined += n;
    joined.push_back('\0');
  }
  reply_sized(request, in->size, std::as_bytes(std::span(joined)));
}

Task<void> Dispatcher::setxattr(Request& request) {
  std::optional<SetxattrIn> in = read_struct<SetxattrIn>(request.op_in());
  PayloadReader reader(request.payload());
  std::optional<std::string_view> name = reader.name();
  std::optional<std::span<const std::byte>> value;
  if (in) value = reader.bytes(in->size);
  if (!in || !name || name->empty() || !value) {
    request.reply(-EINVAL, {});
    co_return;
  }
  meta::XattrMode mode = meta::XattrMode::kAny;
  if (in->flags == XATTR_CREATE) {
    mode = meta::XattrMode::kCreate;
  } else if (in->flags == XATTR_REPLACE) {
    mode = meta::XattrMode::kReplace;
  } else if (in->flags != 0) {
    request.reply(-EINVAL, {});
    co_return;
  }
  meta::SetXattrRequest call{
      .cred = credentials(request),
      .inode = to_inode(request.header().nodeid),
      .name = std::string(*name),
      .value = std::string(reinterpret_cast<const char*>(value->data()), value->size()),
      .mode = mode};
  auto setting = client().meta().set_xattr(std::move(call));
  Result<meta::InodeReply> reply = co_await std::move(setting);
  request.reply(reply.ok() ? 0 : fuse_error(reply.status()), {});
}

Task<void> Dispatcher::removexattr(Request& request) {
  std::optional<std::string_view> name = read_one_name(request.payload());
  if (!name) {
    request.reply(-EINVAL, {});
    co_return;
  }
  meta::RemoveXattrRequest call{.cred = credentials(request),
                                .inode = to_inode(request.header().nodeid),
                                .name = std::string(*name)};
  auto removing = client().meta().remove_xattr(std::move(call));
  Result<meta::InodeReply> reply = co_await std::move(removing);
  request.reply(reply.ok() ? 0 : fuse_error(reply.status()), {});
}

}  // namespace mica::fuse
