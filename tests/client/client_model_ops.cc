// The model test's operations (tests/client/client_model.h says what each may compare):
// each draws its arguments from the lane's random source, applies itself to the reference
// folder with POSIX calls and to the cluster through a Client, and compares.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "tests/client/client_model.h"

namespace mica::testing::model {
namespace {

int errno_of(int rc) {
  return rc == 0 ? 0 : errno;
}

std::string flags_text(int flags) {
  std::string text = (flags & O_ACCMODE) == O_RDONLY   ? "RDONLY"
                     : (flags & O_ACCMODE) == O_WRONLY ? "WRONLY"
                                                       : "RDWR";
  if (flags & O_CREAT) text += "|CREAT";
  if (flags & O_EXCL) text += "|EXCL";
  if (flags & O_TRUNC) text += "|TRUNC";
  if (flags & O_APPEND) text += "|APPEND";
  return text;
}

bool writable(const Handle& h) {
  return (h.flags & O_ACCMODE) != O_RDONLY;
}
bool readable(const Handle& h) {
  return (h.flags & O_ACCMODE) != O_WRONLY;
}

// A random handle for which want(h) holds, or -1.
template <class Want>
int pick_handle(Lane* lane, Want want) {
  std::vector<int> fit;
  for (size_t i = 0; i < lane->handles.size(); ++i)
    if (want(lane->handles[i])) fit.push_back(int(i));
  if (fit.empty()) return -1;
  return fit[lane->random.below(fit.size())];
}

uint64_t ref_size(int fd) {
  struct stat st {};
  MICA_ASSERT(::fstat(fd, &st) == 0);
  return uint64_t(st.st_size);
}

uint64_t pick_length(Lane* lane, uint64_t max) {
  // Half small (up to 4 KiB), half anything up to max.
  uint64_t cap = lane->random.below(2) == 0 ? std::min<uint64_t>(4096, max) : max;
  return 1 + lane->random.below(cap);
}

// The first byte where two ranges differ, as text.
std::string first_difference(std::span<const std::byte> got, std::span<const std::byte> want,
                             uint64_t base) {
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i)
    if (got[i] != want[i])
      return fmt::format("byte at {} is {:#04x}, the reference {:#04x}", base + i, unsigned(got[i]),
                         unsigned(want[i]));
  return "";
}

std::vector<std::byte> ref_read(int fd, uint64_t offset, uint64_t length) {
  std::vector<std::byte> out(length);
  size_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, out.data() + done, length - done, off_t(offset + done));
    if (n <= 0) break;
    done += size_t(n);
  }
  out.resize(done);
  return out;
}

}  // namespace

Task<void> op_create(Lane* lane) {
  std::string rel = pick_file(lane);
  size_t slash = rel.rfind('/');
  std::string parent = rel.substr(0, slash);
  std::string name = rel.substr(slash + 1);
  uint32_t c = lane->pick_client();
  lane->run->note(fmt::format("lane {} op {}: create {} (64 KiB chunks) client {}", lane->index,
                              lane->op, rel, c));
  int fd = ::open(lane->ref_path(rel).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
  int ref_errno = fd >= 0 ? 0 : errno;
  if (fd >= 0) ::close(fd);
  client::Client* client = lane->client(c);
  const meta::Credentials& cred = client->credentials({});
  auto resolving = client->meta().resolve(cred, lane->mica_path(parent));
  Result<meta::Resolved> dir = co_await std::move(resolving);
  Status status = dir.status();
  if (dir.ok()) {
    meta::CreateRequest request{.cred = cred,
                                .parent = dir->inode.id,
                                .name = name,
                                .type = meta::InodeType::kFile,
                                .mode = 0644,
                                .chunk_size_bytes = kSmallChunkBytes};
    auto creating = client->meta().create(std::move(request));
    Result<meta::CreateReply> created = co_await std::move(creating);
    status = created.status();
  }
  compare_outcome(lane, "create", ref_errno, status);
}

Task<void> op_open(Lane* lane) {
  if (lane->handles.size() >= kHandlesPerLaneMax) {
    auto closing = op_close(lane);
    co_await std::move(closing);
    co_return;
  }
  std::string rel = pick_file(lane);
  RefStat st = ref_stat(lane->ref_path(rel));
  for (const Handle& h : lane->handles)
    if (st.ino != 0 && h.ino == st.ino && (h.flags & O_APPEND)) co_return;  // exclusive
  static constexpr int kAccess[] = {O_RDONLY, O_WRONLY, O_RDWR};
  int flags = kAccess[lane->random.below(3)];
  if (lane->random.below(2) == 0) flags |= O_CREAT;
  if ((flags & O_CREAT) && lane->random.below(5) == 0) flags |= O_EXCL;
  bool alone = st.ino == 0 || !file_open(lane, st.ino);
  if (flags != O_RDONLY && alone && lane->random.below(5) == 0) flags |= O_TRUNC;
  if ((flags & O_ACCMODE) != O_RDONLY && alone && lane->random.below(10) == 0) flags |= O_APPEND;
  uint32_t c = lane->pick_client();
  lane->run->note(fmt::format("lane {} op {}: open {} {} client {}", lane->index, lane->op, rel,
                              flags_text(flags), c));
  int fd = ::open(lane->ref_path(rel).c_str(), flags, 0644);
  int ref_errno = fd >= 0 ? 0 : errno;
  auto opening = lane->client(c)->open(lane->mica_path(rel), client::OpenMode{.flags = flags});
  Result<std::unique_ptr<client::File>> opened = co_await std::move(opening);
  compare_outcome(lane, "open", ref_errno, opened.status());
  if (opened.ok() && fd >= 0) {
    struct stat fst {};
    MICA_ASSERT(::fstat(fd, &fst) == 0);
    lane->handles.push_back(Handle{.client = c,
                                   .file = std::move(*opened),
                                   .fd = fd,
                                   .ino = fst.st_ino,
                                   .flags = flags,
                                   .path = rel});
    co_return;
  }
  if (fd >= 0) ::close(fd);
  if (opened.ok()) {
    auto closing = (*opened)->close();
    Status closed = co_await std::move(closing);
    (void)closed;  // the mismatch is reported already
  }
}

Task<void> op_pwrite(Lane* lane) {
  int i = pick_handle(lane, writable);
  if (i < 0) co_return;
  Handle& h = lane->handles[size_t(i)];
  uint64_t size = ref_size(h.fd);
  uint64_t dice = lane->random.below(10);
  uint64_t offset = dice < 8   ? lane->random.below(kNearBytes)
                    : dice < 9 ? size - std::min<uint64_t>(size, lane->random.below(100 << 10))
                               : lane->random.below(kFarBytes);
  uint64_t length = pick_length(lane, kWriteBytesMax);
  std::vector<std::byte> data(length);
  for (std::byte& b : data) b = std::byte(lane->random.next() & 0xff);
  lane->run->note(fmt::format("lane {} op {}: pwrite {} bytes at {} via handle of {} (client {})",
                              lane->index, lane->op, length, offset, h.path, h.client));
  ssize_t n = ::pwrite(h.fd, data.data(), length, off_t(offset));
  MICA_ASSERT(n == ssize_t(length));
  h.dirty = true;
  auto writing = h.file->pwrite(data, offset);
  Result<size_t> wrote = co_await std::move(writing);
  compare_outcome(lane, "pwrite", 0, wrote.status());
  if (wrote.ok() && *wrote != length)
    lane->run->fail(fmt::format("lane {} op {}: pwrite wrote {} of {} bytes", lane->index, lane->op,
                                *wrote, length));
}

Task<void> op_pread(Lane* lane) {
  int i = pick_handle(lane, readable);
  if (i < 0) co_return;
  Handle& h = lane->handles[size_t(i)];
  uint64_t size = ref_size(h.fd);
  uint64_t offset = lane->random.below(size + 64 * 1024);
  uint64_t length = pick_length(lane, kReadBytesMax);
  std::vector<std::byte> want = ref_read(h.fd, offset, length);
  std::vector<std::byte> got(length);
  uint64_t known = h.file->known_length();
  lane->run->note(
      fmt::format("lane {} op {}: pread {} at {} via handle of {} (client {}; "
                  "size {}, known {})",
                  lane->index, lane->op, length, offset, h.path, h.client, size, known));
  auto reading = h.file->pread(got, offset);
  Result<size_t> read = co_await std::move(reading);
  compare_outcome(lane, "pread", 0, read.status());
  if (!read.ok()) co_return;
  // The length: at least what this handle knows, at most the file's.
  uint64_t floor_end = std::min(size, known);
  uint64_t least = floor_end > offset ? std::min(length, floor_end - offset) : 0;
  if (*read < least || *read > want.size()) {
    lane->run->fail(
        fmt::format("lane {} op {}: pread of {} at {} gave {} bytes, the contract "
                    "{}..{} (size {}, handle knows {})",
                    lane->index, lane->op, length, offset, *read, least, want.size(), size, known));
    co_return;
  }
  std::string diff = first_difference(std::span(got).first(*read), want, offset);
  if (!diff.empty())
    lane->run->fail(fmt::format("lane {} op {}: pread of {} at {}: {}", lane->index, lane->op,
                                length, offset, diff));
}

Task<void> op_truncate_handle(Lane* lane) {
  int i = pick_handle(lane, [lane](const Handle& h) {
    return writable(h) && !(h.flags & O_APPEND) && !file_open(lane, h.ino, &h);
  });
  if (i < 0) co_return;
  Handle& h = lane->handles[size_t(i)];
  uint64_t size = ref_size(h.fd);
  uint64_t dice = lane->random.below(4);
  uint64_t length = dice < 2    ? lane->random.below(kNearBytes + kNearBytes / 2)
                    : dice == 2 ? size - std::min<uint64_t>(size, lane->random.below(200 << 10))
                                : size + lane->random.below(200 << 10);
  lane->run->note(fmt::format("lane {} op {}: ftruncate {} to {} (from {}, client {})", lane->index,
                              lane->op, h.path, length, size, h.client));
  MICA_ASSERT(::ftruncate(h.fd, off_t(length)) == 0);
  auto truncating = h.file->truncate(length);
  Status truncated = co_await std::move(truncating);
  compare_outcome(lane, "ftruncate", 0, truncated);
}

Task<void> op_truncate_path(Lane* lane) {
  std::string rel = pick_file(lane);
  RefStat st = ref_stat(lane->ref_path(rel));
  if (st.ino != 0 && file_open(lane, st.ino)) co_return;
  uint64_t length = lane->random.below(kNearBytes + kNearBytes / 2);
  uint32_t c = lane->pick_client();
  lane->run->note(fmt::format("lane {} op {}: truncate {} to {} client {}", lane->index, lane->op,
                              rel, length, c));
  int ref_errno = errno_of(::truncate(lane->ref_path(rel).c_str(), off_t(length)));
  auto truncating = lane->client(c)->truncate(lane->mica_path(rel), length);
  Status truncated = co_await std::move(truncating);
  compare_outcome(lane, "truncate", ref_errno, truncated);
}

Task<void> op_fsync(Lane* lane) {
  if (lane->handles.empty()) co_return;
  Handle& h = lane->handles[lane->random.below(lane->handles.size())];
  lane->run->note(fmt::format("lane {} op {}: fsync handle of {} (client {})", lane->index,
                              lane->op, h.path, h.client));
  auto syncing = h.file->fsync();
  Status synced = co_await std::move(syncing);
  compare_outcome(lane, "fsync", 0, synced);
  h.dirty = false;
  // Another client now sees the length, unless another handle has unreported writes.
  if (ref_stat(lane->ref_path(h.path)).ino != h.ino || file_dirty(lane, h.ino)) co_return;
  uint64_t size = ref_size(h.fd);
  uint32_t c = lane->pick_client();
  auto stating = lane->client(c)->stat(lane->mica_path(h.path));
  Result<client::Inode> inode = co_await std::move(stating);
  compare_outcome(lane, fmt::format("stat after fsync, client {}", c), 0, inode.status());
  if (inode.ok() && inode->length != size)
    lane->run->fail(
        fmt::format("lane {} op {}: after fsync client {} sees length {}, the "
                    "reference {}",
                    lane->index, lane->op, c, inode->length, size));
}

Task<void> op_close(Lane* lane) {
  if (lane->handles.empty()) co_return;
  auto closing = close_handle(lane, lane->random.below(lane->handles.size()));
  co_await std::move(closing);
}

Task<void> close_handle(Lane* lane, size_t i) {
  Handle h = std::move(lane->handles[i]);
  lane->handles.erase(lane->handles.begin() + ptrdiff_t(i));
  lane->run->note(fmt::format("lane {} op {}: close handle of {} (client {})", lane->index,
                              lane->op, h.path, h.client));
  ::close(h.fd);
  auto closing = h.file->close();
  Status closed = co_await std::move(closing);
  compare_outcome(lane, "close", 0, closed);
}

Task<void> op_stat(Lane* lane) {
  std::string rel = pick_file(lane);
  RefStat st = ref_stat(lane->ref_path(rel));
  struct stat ref {};
  int ref_errno = errno_of(::stat(lane->ref_path(rel).c_str(), &ref));
  uint32_t c = lane->pick_client();
  lane->run->note(fmt::format("lane {} op {}: stat {} client {}", lane->index, lane->op, rel, c));
  auto stating = lane->client(c)->stat(lane->mica_path(rel));
  Result<client::Inode> inode = co_await std::move(stating);
  compare_outcome(lane, "stat", ref_errno, inode.status());
  if (!inode.ok() || ref_errno != 0 || st.directory || file_dirty(lane, st.ino)) co_return;
  if (inode->type != meta::InodeType::kFile || inode->length != st.size)
    lane->run->fail(fmt::format("lane {} op {}: stat {} gives length {}, the reference {}",
                                lane->index, lane->op, rel, inode->length, st.size));
}

Task<void> op_verify(Lane* lane) {
  std::string rel = pick_file(lane);
  RefStat st = ref_stat(lane->ref_path(rel));
  if (st.ino == 0 || file_dirty(lane, st.ino)) co_return;
  auto verifying = verify_file(lane, rel, lane->pick_client());
  co_await std::move(verifying);
}

Task<void> verify_file(Lane* lane, std::string rel, uint32_t c) {
  lane->run->note(fmt::format("lane {} op {}: verify {} client {}", lane->index, lane->op, rel, c));
  int fd = ::open(lane->ref_path(rel).c_str(), O_RDONLY);
  MICA_ASSERT(fd >= 0);
  uint64_t size = ref_size(fd);
  std::vector<std::byte> want = ref_read(fd, 0, size);
  ::close(fd);
  auto opening = lane->client(c)->open(lane->mica_path(rel), client::OpenMode{.flags = O_RDONLY});
  Result<std::unique_ptr<client::File>> opened = co_await std::move(opening);
  compare_outcome(lane, "open to verify", 0, opened.status());
  if (!opened.ok()) co_return;
  std::unique_ptr<client::File> file = std::move(*opened);
  // One byte more than the file holds: the read must stop at its end.
  std::vector<std::byte> got(size + 1);
  auto reading = file->pread(got, 0);
  Result<size_t> read = co_await std::move(reading);
  compare_outcome(lane, "pread to verify", 0, read.status());
  if (read.ok() && *read != size)
    lane->run->fail(fmt::format("lane {} op {}: {} reads back {} bytes, the reference {}",
                                lane->index, lane->op, rel, *read, size));
  if (read.ok() && *read == size) {
    std::string diff = first_difference(std::span(got).first(size), want, 0);
    if (!diff.empty())
      lane->run->fail(fmt::format("lane {} op {}: {}: {}", lane->index, lane->op, rel, diff));
  }
  auto closing = file->close();
  Status closed = co_await std::move(closing);
  compare_outcome(lane, "close after verify", 0, closed);
}

Task<void> op_unlink(Lane* lane) {
  std::string rel = pick_file(lane);
  uint32_t c = lane->pick_client();
  lane->run->note(fmt::format("lane {} op {}: unlink {} client {}", lane->index, lane->op, rel, c));
  int ref_errno = errno_of(::unlink(lane->ref_path(rel).c_str()));
  auto unlinking = lane->client(c)->unlink(lane->mica_path(rel));
  Status unlinked = co_await std::move(unlinking);
  compare_outcome(lane, "unlink", ref_errno, unlinked);
}

Task<void> op_rename(Lane* lane) {
  std::string from = pick_file(lane);
  std::string to = pick_file(lane);
  uint32_t c = lane->pick_client();
  lane->run->note(
      fmt::format("lane {} op {}: rename {} {} client {}", lane->index, lane->op, from, to, c));
  int ref_errno = errno_of(::rename(lane->ref_path(from).c_str(), lane->ref_path(to).c_str()));
  auto renaming = lane->client(c)->rename(lane->mica_path(from), lane->mica_path(to));
  Status renamed = co_await std::move(renaming);
  compare_outcome(lane, "rename", ref_errno, renamed);
}

Task<void> op_mkdir(Lane* lane) {
  std::string rel = fmt::format("/d{}", lane->random.below(2));
  uint32_t c = lane->pick_client();
  lane->run->note(fmt::format("lane {} op {}: mkdir {} client {}", lane->index, lane->op, rel, c));
  int ref_errno = errno_of(::mkdir(lane->ref_path(rel).c_str(), 0755));
  auto making = lane->client(c)->mkdir(lane->mica_path(rel), 0755);
  Result<client::Inode> made = co_await std::move(making);
  compare_outcome(lane, "mkdir", ref_errno, made.status());
  if (ref_errno == 0 && made.ok()) lane->dirs.push_back(rel);
}

}  // namespace mica::testing::model

