// The FUSE codec (fuse/codec.h): bounds-checked request reading, reply and notification
// building.
#include "fuse/codec.h"

#include <dirent.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>

#include "fuse/node_id.h"
#include "fuse/request.h"

namespace mica::fuse {

namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;
constexpr uint64_t kSectorBytes = 512;  // st_blocks counts 512-byte units
constexpr uint32_t kBlockSizeDefault = 4096;
// st_blksize of a file: its chunk size, capped so `cp` and stdio buffers stay sane.
constexpr uint32_t kBlockSizeMax = 1u << 20;

void split_time(int64_t ns, uint64_t* seconds, uint32_t* nanos) {
  int64_t s = ns / kNanosPerSecond;
  int64_t rem = ns % kNanosPerSecond;
  if (rem < 0) {
    rem += kNanosPerSecond;
    --s;
  }
  *seconds = static_cast<uint64_t>(s);
  *nanos = static_cast<uint32_t>(rem);
}

void set_valid(uint64_t ns, uint64_t* seconds, uint32_t* nanos) {
  *seconds = ns / kNanosPerSecond;
  *nanos = static_cast<uint32_t>(ns % kNanosPerSecond);
}

}  // namespace

std::optional<std::string_view> PayloadReader::name() {
  std::span<const std::byte> rest = bytes_.subspan(at_);
  auto nul = std::find(rest.begin(), rest.end(), std::byte{0});
  if (nul == rest.end()) return std::nullopt;
  size_t length = static_cast<size_t>(nul - rest.begin());
  std::string_view out(reinterpret_cast<const char*>(rest.data()), length);
  at_ += length + 1;
  return out;
}

std::optional<std::span<const std::byte>> PayloadReader::bytes(size_t length) {
  if (bytes_.size() - at_ < length) return std::nullopt;
  std::span<const std::byte> out = bytes_.subspan(at_, length);
  at_ += length;
  return out;
}

std::optional<std::string_view> read_one_name(std::span<const std::byte> payload) {
  PayloadReader reader(payload);
  std::optional<std::string_view> name = reader.name();
  if (!name || name->empty()) return std::nullopt;
  return name;
}

int name_error(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return -EINVAL;
  if (name.size() > meta::kNameMax) return -ENAMETOOLONG;
  return 0;
}

std::optional<std::vector<ForgetOne>> read_forgets(const BatchForgetIn& in,
                                                   std::span<const std::byte> payload) {
  if (payload.size() / sizeof(ForgetOne) < in.count) return std::nullopt;
  std::vector<ForgetOne> out(in.count);
  if (in.count != 0) std::memcpy(out.data(), payload.data(), in.count * sizeof(ForgetOne));
  return out;
}

std::vector<uint32_t> extension_groups(std::span<const std::byte> extensions) {
  while (!extensions.empty()) {
    std::optional<ExtHeader> ext = read_struct<ExtHeader>(extensions);
    if (!ext || ext->size < sizeof(ExtHeader) || ext->size > extensions.size()) return {};
    if (ext->type == kExtGroups) {
      std::span<const std::byte> body = extensions.subspan(sizeof(ExtHeader), ext->size - 8);
      std::optional<SuppGroups> groups = read_struct<SuppGroups>(body);
      if (!groups || (body.size() - sizeof(SuppGroups)) / 4 < groups->nr_groups) return {};
      std::vector<uint32_t> out(groups->nr_groups);
      std::memcpy(out.data(), body.data() + sizeof(SuppGroups), out.size() * 4);
      return out;
    }
    extensions = extensions.subspan(ext->size);
  }
  return {};
}

int split_request(std::span<const std::byte> raw, uint32_t kernel_minor, SplitRequest* out) {
  std::optional<InHeader> header = read_struct<InHeader>(raw);
  if (!header) return -EINVAL;
  out->header = *header;
  if (header->len != raw.size()) return -EINVAL;
  std::span<const std::byte> rest = raw.subspan(sizeof(InHeader));
  size_t ext_bytes = size_t{header->total_extlen} * 8;
  if (ext_bytes > rest.size()) return -EINVAL;
  out->extensions = rest.subspan(rest.size() - ext_bytes);
  rest = rest.first(rest.size() - ext_bytes);
  size_t op_bytes = op_in_size(header->opcode, kernel_minor);
  if (header->opcode == static_cast<uint32_t>(Opcode::kInit)) {
    if (rest.size() < kInitInCompatBytes) return -EINVAL;
    op_bytes = std::min(rest.size(), sizeof(InitIn));
  }
  if (rest.size() < op_bytes) return -EINVAL;
  out->op_in = rest.first(op_bytes);
  out->payload = rest.subspan(op_bytes);
  return 0;
}

uint32_t rdev_to_kernel(uint64_t rdev) {
  uint32_t major = ::major(rdev);
  uint32_t minor = ::minor(rdev);
  return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xffu) << 12);
}

uint64_t rdev_from_kernel(uint32_t rdev) {
  uint32_t major = (rdev & 0xfff00) >> 8;
  uint32_t minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
  return ::makedev(major, minor);
}

Attr to_attr(const meta::Inode& inode, std::optional<uint64_t> length) {
  Attr attr{};
  attr.ino = to_nodeid(inode.id);
  attr.size = length.value_or(inode.length);
  attr.blocks = (attr.size + kSectorBytes - 1) / kSectorBytes;
  split_time(inode.atime_ns, &attr.atime, &attr.atimensec);
  split_time(inode.mtime_ns, &attr.mtime, &attr.mtimensec);
  split_time(inode.ctime_ns, &attr.ctime, &attr.ctimensec);
  attr.mode = meta::inode_type_mode_bits(inode.type) | (inode.mode & meta::kModeBits);
  attr.nlink = inode.nlink;
  attr.uid = inode.uid;
  attr.gid = inode.gid;
  attr.rdev = rdev_to_kernel(inode.rdev);
  attr.blksize = kBlockSizeDefault;
  if (inode.type == meta::InodeType::kFile && inode.layout.chunk_size_bytes != 0)
    attr.blksize = std::min(inode.layout.chunk_size_bytes, kBlockSizeMax);
  return attr;
}

EntryOut make_entry_out(const meta::Inode& inode, const CacheTimes& times,
                        std::optional<uint64_t> length) {
  EntryOut out{};
  out.nodeid = to_nodeid(inode.id);
  out.generation = 0;  // inode ids are never reused (per-shard sequences only grow)
  set_valid(times.entry_ns, &out.entry_valid, &out.entry_valid_nsec);
  set_valid(times.attr_ns, &out.attr_valid, &out.attr_valid_nsec);
  out.attr = to_attr(inode, length);
  return out;
}

EntryOut make_negative_entry(const CacheTimes& times) {
  EntryOut out{};
  set_valid(times.negative_ns, &out.entry_valid, &out.entry_valid_nsec);
  return out;
}

AttrOut make_attr_out(const meta::Inode& inode, const CacheTimes& times,
                      std::optional<uint64_t> length) {
  AttrOut out{};
  set_valid(times.attr_ns, &out.attr_valid, &out.attr_valid_nsec);
  out.attr = to_attr(inode, length);
  return out;
}

StatfsOut make_statfs_out(const meta::StatfsReply& reply) {
  StatfsOut out{};
  uint32_t bsize = reply.block_size != 0 ? reply.block_size : kBlockSizeDefault;
  out.st.bsize = bsize;
  out.st.frsize = bsize;
  out.st.blocks = reply.total_bytes / bsize;
  out.st.bfree = reply.free_bytes / bsize;
  out.st.bavail = out.st.bfree;
  // Inodes are not a fixed pool: report what exists plus a large headroom as free.
  constexpr uint64_t kInodeHeadroom = uint64_t{1} << 32;
  out.st.files = reply.inodes + kInodeHeadroom;
  out.st.ffree = kInodeHeadroom;
  out.st.namelen = reply.name_max != 0 ? reply.name_max : meta::kNameMax;
  return out;
}

uint32_t dirent_type(meta::InodeType type) {
  switch (type) {
    case meta::InodeType::kFile:
      return DT_REG;
    case meta::InodeType::kDirectory:
      return DT_DIR;
    case meta::InodeType::kSymlink:
      return DT_LNK;
    case meta::InodeType::kFifo:
      return DT_FIFO;
    case meta::InodeType::kSocket:
      return DT_SOCK;
    case meta::InodeType::kCharDevice:
      return DT_CHR;
    case meta::InodeType::kBlockDevice:
      return DT_BLK;
  }
  return DT_UNKNOWN;
}

DirentWriter::DirentWriter(std::span<std::byte> area, size_t limit, bool plus)
    : area_(area.first(std::min(area.size(), limit))), plus_(plus) {}

bool DirentWriter::add(std::string_view name, uint64_t ino, uint32_t type, uint64_t next_offset,
                       const EntryOut* entry) {
  size_t head = plus_ ? sizeof(Direntplus) : sizeof(Dirent);
  size_t record = dirent_align(head + name.size());
  if (area_.size() - at_ < record) return false;
  std::byte* at = area_.data() + at_;
  std::memset(at, 0, record);
  Dirent dirent{
      .ino = ino, .off = next_offset, .namelen = static_cast<uint32_t>(name.size()), .type = type};
  if (plus_) {
    EntryOut zero{};
    std::memcpy(at, entry != nullptr ? entry : &zero, sizeof(EntryOut));
    at += sizeof(EntryOut);
  }
  std::memcpy(at, &dirent, sizeof(Dirent));
  std::memcpy(at + sizeof(Dirent), name.data(), name.size());
  at_ += record;
  ++entries_;
  return true;
}

namespace {

std::span<const std::byte> build_notify(std::span<std::byte> out, NotifyCode code,
                                        std::span<const std::byte> body, std::string_view name) {
  bool with_name = !name.empty();
  size_t total = sizeof(OutHeader) + body.size() + (with_name ? name.size() + 1 : 0);
  if (out.size() < total) return {};
  OutHeader header{
      .len = static_cast<uint32_t>(total), .error = static_cast<int32_t>(code), .unique = 0};
  std::memcpy(out.data(), &header, sizeof(header));
  std::memcpy(out.data() + sizeof(header), body.data(), body.size());
  if (with_name) {
    std::byte* at = out.data() + sizeof(header) + body.size();
    std::memcpy(at, name.data(), name.size());
    at[name.size()] = std::byte{0};
  }
  return out.first(total);
}

}  // namespace

std::span<const std::byte> build_inval_entry(std::span<std::byte> out, uint64_t parent,
                                             std::string_view name) {
  if (name.empty()) return {};
  NotifyInvalEntryOut body{
      .parent = parent, .namelen = static_cast<uint32_t>(name.size()), .flags = 0};
  return build_notify(out, NotifyCode::kInvalEntry, as_bytes(body), name);
}

std::span<const std::byte> build_inval_inode(std::span<std::byte> out, uint64_t nodeid, int64_t off,
                                             int64_t len) {
  NotifyInvalInodeOut body{.ino = nodeid, .off = off, .len = len};
  return build_notify(out, NotifyCode::kInvalInode, as_bytes(body), {});
}

}  // namespace mica::fuse
