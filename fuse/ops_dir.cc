// Directories of the Dispatcher (fuse/dispatcher.h): OPENDIR, READDIR(PLUS), RELEASEDIR.
// Offsets are entry numbers: 1 ".", 2 "..", then one per name in the directory's byte order;
// a page is asked of metadata "after" the name the kernel's offset maps to (the handle keeps
// the last page's offset -> name map; an offset outside it is found by re-reading from the
// start, which only a seekdir() to an old position causes).
#include <algorithm>
#include <cerrno>

#include "fuse/dispatcher.h"
#include "fuse/dispatcher_state.h"
#include "fuse/node_id.h"

namespace mica::fuse {

namespace {

constexpr uint64_t kDotOffset = 1;
constexpr uint64_t kDotDotOffset = 2;

}  // namespace

Task<void> Dispatcher::opendir(Request& request) {
  meta::GetattrRequest call{.inode = to_inode(request.header().nodeid)};
  auto getting = client().meta().getattr(call);
  Result<meta::InodeReply> reply = co_await std::move(getting);
  if (!reply.ok()) {
    request.reply(fuse_error(reply.status()), {});
    co_return;
  }
  if (reply->inode.type != meta::InodeType::kDirectory) {
    request.reply(-ENOTDIR, {});
    co_return;
  }
  OpenOut out{};
  {
    std::lock_guard lock(dir_table_->mutex);
    if (dir_table_->dirs.size() >= options_.dir_handles_max) {
      request.reply(-EMFILE, {});
      co_return;
    }
    out.fh = dir_table_->next_handle++;
    dir_table_->dirs[out.fh] = DirHandle{.dir = std::move(reply->inode)};
  }
  std::span<const std::byte> pieces[] = {as_bytes(out)};
  request.reply(0, pieces);
}

void Dispatcher::releasedir(Request& request) {
  if (std::optional<ReleaseIn> in = read_struct<ReleaseIn>(request.op_in())) {
    std::lock_guard lock(dir_table_->mutex);
    dir_table_->dirs.erase(in->fh);
  }
  request.reply(0, {});
}

Task<void> Dispatcher::readdir(Request& request, bool plus) {
  std::optional<ReadIn> in = read_struct<ReadIn>(request.op_in());
  if (!in) {
    request.reply(-EINVAL, {});
    co_return;
  }
  DirHandle dir;
  {
    std::lock_guard lock(dir_table_->mutex);
    auto it = dir_table_->dirs.find(in->fh);
    if (it == dir_table_->dirs.end()) {
      request.reply(-EBADF, {});
      co_return;
    }
    dir = it->second;
  }
  DirentWriter writer(request.reply_area(), in->size, plus);
  auto filling = fill_dir_page(request, &dir, in->offset, plus, &writer);
  Status filled = co_await std::move(filling);
  if (!filled.ok()) {
    request.reply(fuse_error(filled), {});
    co_return;
  }
  {
    std::lock_guard lock(dir_table_->mutex);
    auto it = dir_table_->dirs.find(in->fh);
    if (it != dir_table_->dirs.end()) it->second = std::move(dir);
  }
  std::span<const std::byte> pieces[] = {writer.bytes()};
  request.reply(0, pieces);
}

Task<Status> Dispatcher::fill_dir_page(Request& request, DirHandle* dir, uint64_t offset, bool plus,
                                       DirentWriter* writer) {
  const meta::Inode& self = dir->dir;
  if (offset < kDotOffset) {
    EntryOut entry{};  // nodeid 0: the kernel makes no dentry for "."
    entry.attr = to_attr(self);
    if (!writer->add(".", to_nodeid(self.id), dirent_type(self.type), kDotOffset, &entry))
      co_return Status::ok_status();
    offset = kDotOffset;
  }
  if (offset < kDotDotOffset) {
    if (!writer->add("..", to_nodeid(self.parent), dirent_type(self.type), kDotDotOffset))
      co_return Status::ok_status();
    offset = kDotDotOffset;
  }
  if (dir->end && offset >= dir->end_offset) co_return Status::ok_status();
  dir->end = false;  // until this page reaches the end (a rewound directory may have grown)
  // The name to continue after, and how many names to skip when it is not known.
  std::string after;
  uint64_t skip = 0;
  if (offset > kDotDotOffset) {
    auto it = std::find_if(dir->page.begin(), dir->page.end(),
                           [offset](const auto& p) { return p.first == offset; });
    if (it != dir->page.end()) {
      after = it->second;
    } else {
      skip = offset - kDotDotOffset;
    }
  }
  uint64_t next = offset;
  std::vector<std::pair<uint64_t, std::string>> page;
  Credentials cred = credentials(request);
  for (;;) {
    uint32_t limit = options_.readdir_entries_max;
    meta::ReaddirRequest call{
        .cred = cred, .dir = self.id, .after = after, .limit = limit, .with_attrs = plus};
    auto reading = client().meta().readdir(std::move(call));
    Result<meta::ReaddirReply> reply = co_await std::move(reading);
    if (!reply.ok()) co_return reply.status();
    for (meta::ReaddirEntry& e : reply->entries) {
      after = e.name;
      if (skip > 0) {
        --skip;
        continue;
      }
      EntryOut entry{};
      bool have_entry = plus && e.attrs.has_value();
      if (have_entry) {
        std::optional<uint64_t> length;
        CacheTimes times = cache_times(*e.attrs, &length);
        entry = make_entry_out(*e.attrs, times, length);
      }
      if (!writer->add(e.name, to_nodeid(e.inode), dirent_type(e.type), next + 1,
                       have_entry ? &entry : nullptr)) {
        dir->page = std::move(page);
        co_return Status::ok_status();
      }
      ++next;
      page.emplace_back(next, e.name);
    }
    if (reply->end || reply->entries.empty()) {
      dir->end = true;
      dir->end_offset = next;
      break;
    }
    if (skip == 0 && writer->entries() > 0) break;  // a page is enough for one request
  }
  dir->page = std::move(page);
  co_return Status::ok_status();
}

}  // namespace mica::fuse
