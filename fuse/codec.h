// The FUSE codec: reading the kernel's request bytes and building reply bytes, shared by the
// /dev/fuse and the io_uring transports (fuse/request.h) and the dispatcher.
//
// Reading never trusts the kernel's lengths: a request shorter than its struct, a name
// without its NUL, a count past the bytes that arrived — each is an error value (the caller
// answers -EINVAL) and nothing is changed. Structs are copied out with memcpy (request bytes
// carry no alignment promise). Building writes into caller-owned buffers (a Request's
// reply_area()) and returns views of them. Pure functions and small value types: any thread,
// never suspend, no allocation except the std::string / vector results named so.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "fuse/protocol.h"
#include "meta/meta_service.h"
#include "meta/types.h"

namespace mica::fuse {

// ---- reading ----

// The fixed struct T at the start of bytes, or nullopt when fewer than sizeof(T) arrived.
template <class T>
std::optional<T> read_struct(std::span<const std::byte> bytes) {
  if (bytes.size() < sizeof(T)) return std::nullopt;
  T value;
  std::memcpy(&value, bytes.data(), sizeof(T));
  return value;
}

// Walks NUL-ended strings in a payload (LOOKUP's name, RENAME's two names, SYMLINK's name
// and target, SETXATTR's name then raw value bytes).
class PayloadReader {
 public:
  explicit PayloadReader(std::span<const std::byte> bytes) : bytes_(bytes) {}
  // The next NUL-ended string (without its NUL), or nullopt when no NUL follows.
  std::optional<std::string_view> name();
  // The next `length` raw bytes, or nullopt when fewer remain.
  std::optional<std::span<const std::byte>> bytes(size_t length);
  std::span<const std::byte> rest() const { return bytes_.subspan(at_); }

 private:
  std::span<const std::byte> bytes_;
  size_t at_ = 0;
};

// A name as the metadata service wants it: non-empty, NUL-ended in the payload, at most
// kNameMax bytes. nullopt: -EINVAL (too long: the caller may say -ENAMETOOLONG; see
// name_error).
std::optional<std::string_view> read_one_name(std::span<const std::byte> payload);
int name_error(std::string_view name);  // 0, -EINVAL or -ENAMETOOLONG

// The forget list of BATCH_FORGET: `count` ForgetOne in payload, nullopt when fewer arrived.
std::optional<std::vector<ForgetOne>> read_forgets(const BatchForgetIn& in,
                                                   std::span<const std::byte> payload);

// The supplementary groups the kernel sent as a FUSE_EXT_GROUPS extension (CREATE_SUPP_GROUP
// negotiated), empty when there are none or the extension is malformed.
std::vector<uint32_t> extension_groups(std::span<const std::byte> extensions);

// One request read from /dev/fuse, split into its parts. Views into the read buffer.
struct SplitRequest {
  InHeader header{};
  std::span<const std::byte> op_in;
  std::span<const std::byte> payload;
  std::span<const std::byte> extensions;
};
// Splits the `raw` bytes one read() of /dev/fuse returned: header.len must equal raw.size(),
// the op struct must fit (INIT: at least kInitInCompatBytes; op_in is all of what arrived up
// to sizeof(InitIn)), and extensions (total_extlen * 8 bytes) come last. 0 or -EINVAL; on
// -EINVAL `out->header` still holds the header when one arrived (so the error can be
// answered to its unique).
int split_request(std::span<const std::byte> raw, uint32_t kernel_minor, SplitRequest* out);

// ---- conversions ----

// dev_t (glibc's makedev encoding, as Mica stores rdev) <-> the kernel's 32-bit "new"
// encoding used in fuse_attr.rdev and fuse_mknod_in.rdev.
uint32_t rdev_to_kernel(uint64_t rdev);
uint64_t rdev_from_kernel(uint32_t rdev);

// How long the kernel may cache what a reply says (fuse/dispatcher.h chooses them).
struct CacheTimes {
  uint64_t entry_ns = 1'000'000'000;
  uint64_t attr_ns = 1'000'000'000;
  uint64_t negative_ns = 1'000'000'000;  // a cached ENOENT (nodeid 0)
};

// fuse_attr of an inode. length: the size to report when it differs from inode.length (an
// open handle of this mount knows of writes metadata has not seen yet).
Attr to_attr(const meta::Inode& inode, std::optional<uint64_t> length = std::nullopt);
EntryOut make_entry_out(const meta::Inode& inode, const CacheTimes& times,
                        std::optional<uint64_t> length = std::nullopt);
EntryOut make_negative_entry(const CacheTimes& times);  // nodeid 0: the kernel caches ENOENT
AttrOut make_attr_out(const meta::Inode& inode, const CacheTimes& times,
                      std::optional<uint64_t> length = std::nullopt);
StatfsOut make_statfs_out(const meta::StatfsReply& reply);
uint32_t dirent_type(meta::InodeType type);  // DT_REG, DT_DIR, ...

// A struct's bytes, for Request::reply's out args.
template <class T>
std::span<const std::byte> as_bytes(const T& value) {
  return std::as_bytes(std::span<const T, 1>(&value, 1));
}

// ---- directory pages ----

// Fills a READDIR / READDIRPLUS reply in `area` (at most `limit` bytes, the kernel's
// read_in.size): records padded to kDirentAlign, each with the offset the kernel hands back
// to continue after it. add() returns false (and writes nothing) when the record does not
// fit; then the page is full.
class DirentWriter {
 public:
  DirentWriter(std::span<std::byte> area, size_t limit, bool plus);
  // `entry` is required for a plus page; nullptr writes a zeroed entry_out (the kernel then
  // makes no dentry for it, used for "." and "..").
  bool add(std::string_view name, uint64_t ino, uint32_t type, uint64_t next_offset,
           const EntryOut* entry = nullptr);
  size_t entries() const { return entries_; }
  std::span<const std::byte> bytes() const { return std::span<const std::byte>(area_).first(at_); }

 private:
  std::span<std::byte> area_;
  size_t at_ = 0;
  size_t entries_ = 0;
  bool plus_;
};

// ---- notifications (written to /dev/fuse with unique 0) ----

// Builds a whole notification message (OutHeader included) into `out`; returns its bytes,
// empty when `out` is too small. inval_entry: the kernel drops the dentry parent/name;
// inval_inode: attributes (and, when len != 0, cached data from off).
std::span<const std::byte> build_inval_entry(std::span<std::byte> out, uint64_t parent,
                                             std::string_view name);
std::span<const std::byte> build_inval_inode(std::span<std::byte> out, uint64_t nodeid, int64_t off,
                                             int64_t len);

}  // namespace mica::fuse
