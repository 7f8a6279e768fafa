// Files: Client::open / open_inode and a File's data path (client/client.h). A file's range
// is cut at chunk boundaries into pieces, chunk i on chains[i mod stripe] (meta/layout.h);
// the pieces of one call go to storage in parallel, each holding its bytes of the File's
// in-flight budget while it is out. Reads zero what storage does not hold within the known
// length (holes). Lengths reach metadata through LengthReport: the first write to finish
// length_report_interval after the last report sends one (so a growing file's length is at
// most an interval behind while writes go on), and fsync and close always do.
#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>

#include "async/log.h"
#include "async/scope.h"
#include "async/sim/backend.h"
#include "client/client.h"
#include "meta/layout.h"

namespace mica::client {

namespace {

meta::OpenFlags open_flags(int flags) {
  int access = flags & O_ACCMODE;
  return meta::OpenFlags{.read = access == O_RDONLY || access == O_RDWR,
                         .write = access == O_WRONLY || access == O_RDWR,
                         .truncate = (flags & O_TRUNC) != 0,
                         .append = (flags & O_APPEND) != 0,
                         .exclusive = (flags & O_EXCL) != 0};
}

// "/a/b/c" -> ("/a/b", "c"); trailing '/' dropped. "" name for "/".
std::pair<std::string, std::string> split_last(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {path, {}};
  std::string name = path.substr(slash + 1);
  path.resize(slash == 0 ? 1 : slash);
  return {path, name};
}

uint64_t units_for(size_t bytes, uint64_t cap) { return std::clamp<uint64_t>(bytes, 1, cap); }

// A write's time for the file's mtime: the wall clock, as metadata stamps inodes with it
// (MetaNodeOptions::wall_clock), so a write moves mtime/ctime past the create's; on a
// simulated host its executor's clock, as the simulated metadata uses.
int64_t write_time_ns() {
  Executor* executor = Executor::current();
  if (dynamic_cast<sim::SimBackend*>(&executor->backend()) != nullptr)
    return to_ns(executor->now());
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

net::MemoryRegion* region_of(const CallOptions& options) {
  return options.registered == nullptr ? nullptr : options.registered->region();
}

}  // namespace

File::File(Client* client, meta::OpenReply opened, OpenMode mode)
    : client_(client),
      attrs_(std::move(opened.inode)),
      session_(opened.session),
      shard_(meta::shard_of(attrs_.id)),
      mode_(mode),
      known_length_(attrs_.length),
      reported_length_(attrs_.length),
      in_flight_(client->options().file_bytes_in_flight_max) {
  ++client_->open_files_;
}

File::~File() { MICA_ASSERT_MSG(closed_, "a File destroyed before close() returned"); }

Status File::check_usable(bool writing) const {
  if (closed_) return Status(StatusCode::kStaleSession, "the file is closed");
  meta::OpenFlags flags = open_flags(mode_.flags);
  if (writing && !flags.write)
    return Status(StatusCode::kStaleSession, "the file is not open for writing");
  if (!writing && !flags.read)
    return Status(StatusCode::kStaleSession, "the file is not open for reading");
  return Status::ok_status();
}

Status File::compute_chains() {
  craq::RoutingClient::SnapshotPtr routing = client_->routing().current();
  if (routing == nullptr) return Status(StatusCode::kNotServing, "no routing yet");
  const craq::ChainTable* table = craq::find_table(*routing, attrs_.layout.table);
  if (table == nullptr)
    return Status(StatusCode::kNotFound, fmt::format("chain table {} of inode {:#x} is unknown",
                                                     attrs_.layout.table, attrs_.id));
  Result<std::vector<craq::ChainId>> chains = meta::layout_chains(attrs_.layout, *table);
  if (!chains.ok()) return chains.status();
  if (attrs_.layout.chunk_size_bytes == 0)
    return Status(StatusCode::kInvalidArgument, "a layout with chunks of 0 bytes");
  chains_ = std::move(*chains);
  return Status::ok_status();
}

std::vector<File::Piece> File::pieces(uint64_t offset, size_t length) const {
  std::vector<Piece> out;
  uint64_t chunk = attrs_.layout.chunk_size_bytes;
  for (size_t at = 0; at < length;) {
    uint64_t position = offset + at;
    auto index = static_cast<uint32_t>(position / chunk);
    auto in_chunk = static_cast<uint32_t>(position % chunk);
    size_t n = std::min<uint64_t>(length - at, chunk - in_chunk);
    out.push_back(Piece{.chain = meta::chunk_chain(chains_, index),
                        .index = index,
                        .offset = in_chunk,
                        .at = at,
                        .length = n});
    at += n;
  }
  return out;
}

void File::note_inode(const Inode& inode) {
  uint64_t known = std::max(known_length_, inode.length);
  attrs_ = inode;
  attrs_.length = known;
  known_length_ = known;
  // What metadata answered it holds already: no report needs to carry it.
  reported_length_ = std::max(reported_length_, inode.length);
}

// The length a report carries: this handle's growth metadata has not acknowledged, or 0
// (no change; a stale, larger length must not undo another handle's truncation).
uint64_t File::unreported_length() const {
  return known_length_ > reported_length_ ? known_length_ : 0;
}

Task<Status> File::write_piece(Piece piece, std::span<const std::byte> data, TimePoint deadline,
                               net::MemoryRegion* region) {
  uint64_t units = units_for(piece.length, client_->options().file_bytes_in_flight_max);
  Status admitted = co_await in_flight_.acquire(units, deadline);
  if (!admitted.ok()) co_return admitted;
  SemaphoreGuard held(in_flight_, units);
  auto writing = client_->storage().write(
      piece.chain, craq::ChunkRef{.inode = attrs_.id, .index = piece.index}, piece.offset,
      data.subspan(piece.at, piece.length), attrs_.layout.chunk_size_bytes, deadline, region);
  Result<craq::ChunkState> written = co_await std::move(writing);
  co_return written.status();
}

Task<Status> File::read_piece(Piece piece, std::span<std::byte> out, TimePoint deadline,
                              net::MemoryRegion* region) {
  uint64_t units = units_for(piece.length, client_->options().file_bytes_in_flight_max);
  Status admitted = co_await in_flight_.acquire(units, deadline);
  if (!admitted.ok()) co_return admitted;
  SemaphoreGuard held(in_flight_, units);
  std::span<std::byte> into = out.subspan(piece.at, piece.length);
  auto reading = client_->storage().read(
      piece.chain, craq::ChunkRef{.inode = attrs_.id, .index = piece.index}, piece.offset, into,
      deadline, region);
  Result<uint32_t> bytes = co_await std::move(reading);
  if (!bytes.ok()) co_return bytes.status();
  // What the chunk does not hold, inside the known length, is a hole.
  std::memset(into.data() + *bytes, 0, into.size() - *bytes);
  co_return Status::ok_status();
}

Task<Result<size_t>> File::pwrite(std::span<const std::byte> data, uint64_t offset,
                                  CallOptions options) {
  CO_TRY(check_usable(true));
  TimePoint deadline = client_->deadline(options);
  if (open_flags(mode_.flags).append) offset = known_length_;
  if (data.empty()) co_return size_t{0};
  std::vector<Task<Status>> writing;
  for (const Piece& piece : pieces(offset, data.size()))
    writing.push_back(write_piece(piece, data, deadline, region_of(options)));
  auto all = when_all(std::move(writing));
  std::vector<Status> written = co_await std::move(all);
  for (Status& status : written) {
    if (!status.ok()) co_return std::move(status);
  }
  known_length_ = std::max(known_length_, offset + data.size());
  attrs_.length = known_length_;
  last_write_ns_ = write_time_ns();
  auto reporting = report_if_due(deadline);
  co_await std::move(reporting);
  co_return data.size();
}

Task<Status> File::refresh_length(TimePoint deadline) {
  auto asking = client_->meta().getattr(meta::GetattrRequest{.inode = attrs_.id},
                                        meta::MetaClient::CallOptions{.deadline = deadline});
  Result<meta::InodeReply> reply = co_await std::move(asking);
  if (!reply.ok()) co_return reply.status();
  note_inode(reply->inode);
  co_return Status::ok_status();
}

Task<Result<size_t>> File::pread(std::span<std::byte> out, uint64_t offset, CallOptions options) {
  CO_TRY(check_usable(false));
  TimePoint deadline = client_->deadline(options);
  if (out.empty()) co_return size_t{0};
  if (offset + out.size() > known_length_) {
    // Past what this handle knows: another writer may have reported more.
    auto refreshing = refresh_length(deadline);
    CO_TRY(co_await std::move(refreshing));
  }
  if (offset >= known_length_) co_return size_t{0};
  size_t n = std::min<uint64_t>(out.size(), known_length_ - offset);
  std::vector<Task<Status>> reading;
  for (const Piece& piece : pieces(offset, n))
    reading.push_back(read_piece(piece, out, deadline, region_of(options)));
  auto all = when_all(std::move(reading));
  std::vector<Status> read = co_await std::move(all);
  for (Status& status : read) {
    if (!status.ok()) co_return std::move(status);
  }
  co_return n;
}

Task<Result<size_t>> File::read(std::span<std::byte> out, CallOptions options) {
  auto reading = pread(out, cursor_, options);
  Result<size_t> n = co_await std::move(reading);
  if (n.ok()) cursor_ += *n;
  co_return n;
}

Task<Result<size_t>> File::write(std::span<const std::byte> data, CallOptions options) {
  bool append = open_flags(mode_.flags).append;
  auto writing = pwrite(data, cursor_, options);
  Result<size_t> n = co_await std::move(writing);
  if (n.ok()) cursor_ = append ? known_length_ : cursor_ + *n;
  co_return n;
}

Task<Status> File::report(TimePoint deadline) {
  uint64_t length = unreported_length();
  int64_t write_ns = last_write_ns_;
  meta::LengthReport request{.inode = attrs_.id,
                             .client = client_->meta().client_id(),
                             .session = session_,
                             .length = length,
                             .mtime_ns = write_ns};
  auto sending = client_->meta().report_length(
      request, meta::MetaClient::CallOptions{.deadline = deadline});
  Result<meta::InodeReply> reply = co_await std::move(sending);
  if (!reply.ok()) co_return reply.status();
  reported_length_ = std::max(reported_length_, length);
  last_report_ = Executor::current()->now();
  if (last_write_ns_ == write_ns) last_write_ns_ = 0;
  note_inode(reply->inode);
  co_return Status::ok_status();
}

Task<void> File::report_if_due(TimePoint deadline) {
  TimePoint now = Executor::current()->now();
  if (reporting_ || known_length_ <= reported_length_ ||
      now - last_report_ < client_->options().length_report_interval)
    co_return;
  reporting_ = true;
  auto reporting = report(deadline);
  Status reported = co_await std::move(reporting);
  reporting_ = false;
  // The bytes are on storage already; the next report (or fsync/close) carries the length.
  if (!reported.ok())
    MICA_LOG(Warn, "client", "inode {:#x}: length report failed: {}", attrs_.id,
             reported.to_string());
}

Task<Status> File::truncate(uint64_t length, CallOptions options) {
  CO_TRY(check_usable(true));
  // Metadata cuts chunks only below the length it holds: this handle's unreported growth
  // goes first, or a cut into it would leave its bytes on storage (to reappear as soon as a
  // write extends the file again).
  if (length < known_length_ && known_length_ > reported_length_) {
    auto reporting = report(client_->deadline(options));
    CO_TRY(co_await std::move(reporting));
  }
  meta::SetattrRequest request{.cred = client_->credentials(options),
                               .inode = attrs_.id,
                               .size = length,
                               .session = session_};
  auto setting = client_->meta().setattr(
      std::move(request), meta::MetaClient::CallOptions{.deadline = client_->deadline(options)});
  Result<meta::InodeReply> reply = co_await std::move(setting);
  if (!reply.ok()) co_return reply.status();
  attrs_ = reply->inode;
  known_length_ = length;
  reported_length_ = length;
  attrs_.length = length;
  co_return Status::ok_status();
}

Task<Status> File::fsync(CallOptions options) {
  if (closed_) co_return Status(StatusCode::kStaleSession, "the file is closed");
  // Read-only: nothing of ours to make durable (writes are on every replica already).
  if (!open_flags(mode_.flags).write) co_return Status::ok_status();
  auto reporting = report(client_->deadline(options));
  co_return co_await std::move(reporting);
}

Task<Status> File::close(CallOptions options, CloseCommit commit) {
  if (closed_) co_return Status(StatusCode::kStaleSession, "the file is closed already");
  meta::CloseRequest request{.report = {.inode = attrs_.id,
                                        .client = client_->meta().client_id(),
                                        .session = session_,
                                        .length = unreported_length(),
                                        .mtime_ns = last_write_ns_},
                             .batched = commit == CloseCommit::kBatched};
  auto closing = client_->meta().close(
      request, meta::MetaClient::CallOptions{.deadline = client_->deadline(options)});
  Result<meta::InodeReply> reply = co_await std::move(closing);
  // Unusable from here whatever the answer: a session that did not end lapses with the lease.
  closed_ = true;
  --client_->open_files_;
  if (!reply.ok()) co_return reply.status();
  note_inode(reply->inode);
  co_return Status::ok_status();
}

void File::forget_past(uint64_t length) {
  known_length_ = std::min(known_length_, length);
  reported_length_ = std::min(reported_length_, length);
  attrs_.length = known_length_;
}

Task<Result<std::unique_ptr<File>>> Client::make_file(meta::OpenReply opened, OpenMode mode,
                                                      TimePoint deadline) {
  std::unique_ptr<File> file(new File(this, std::move(opened), mode));
  Status chains = file->compute_chains();
  if (!chains.ok()) {
    // A table newer than our routing: fetch what mgmtd has once, then try again.
    auto refreshing = routing_->refresh(0, deadline);
    (void)co_await std::move(refreshing);
    chains = file->compute_chains();
  }
  if (!chains.ok()) {
    auto closing = file->close(CallOptions{.deadline = deadline});
    (void)co_await std::move(closing);
    co_return chains;
  }
  co_return file;
}

Task<Result<std::unique_ptr<File>>> Client::open(std::string path, OpenMode mode,
                                                 CallOptions options) {
  const Credentials& cred = credentials(options);
  TimePoint deadline = this->deadline(options);
  meta::MetaClient::CallOptions meta_options{.deadline = deadline};
  if ((mode.flags & O_CREAT) == 0) {
    auto resolving = meta_->resolve(cred, path, true, meta_options);
    CO_TRY_ASSIGN(meta::Resolved resolved, co_await std::move(resolving));
    auto opening = open_inode(resolved.inode.id, mode, options);
    co_return co_await std::move(opening);
  }
  std::pair<std::string, std::string> split = split_last(path);
  const std::string& dir = split.first;
  const std::string& name = split.second;
  if (name.empty()) co_return Status(StatusCode::kIsDirectory, fmt::format("'{}'", path));
  auto resolving = meta_->resolve(cred, dir, true, meta_options);
  CO_TRY_ASSIGN(meta::Resolved parent, co_await std::move(resolving));
  if (parent.inode.type != meta::InodeType::kDirectory)
    co_return Status(StatusCode::kNotDirectory, fmt::format("'{}' is not a directory", dir));
  auto creating = create_at(parent.inode.id, name, mode, options);
  co_return co_await std::move(creating);
}

Task<Result<std::unique_ptr<File>>> Client::create_at(InodeId parent, std::string name,
                                                      OpenMode mode, CallOptions options,
                                                      bool* created_new) {
  const Credentials& cred = credentials(options);
  TimePoint deadline = this->deadline(options);
  meta::MetaClient::CallOptions meta_options{.deadline = deadline};
  meta::CreateRequest request{.cred = cred,
                              .parent = parent,
                              .name = name,
                              .type = meta::InodeType::kFile,
                              .mode = mode.mode,
                              .open = true,
                              .flags = open_flags(mode.flags)};
  auto creating = meta_->create(std::move(request), meta_options);
  CO_TRY_ASSIGN(meta::CreateReply created, co_await std::move(creating));
  if (created_new != nullptr) *created_new = created.created;
  if (created.inode.type != meta::InodeType::kFile) {
    meta::CloseRequest closing_request{.report = {.inode = created.inode.id,
                                                  .client = meta_->client_id(),
                                                  .session = created.session}};
    auto closing = meta_->close(closing_request, meta_options);
    (void)co_await std::move(closing);
    co_return Status(created.inode.type == meta::InodeType::kDirectory ? StatusCode::kIsDirectory
                                                                       : StatusCode::kNotSupported,
                     fmt::format("'{}' in {:#x} is not a regular file", name, parent));
  }
  auto making = make_file(meta::OpenReply{.inode = created.inode, .session = created.session},
                          mode, deadline);
  co_return co_await std::move(making);
}

Task<Result<std::unique_ptr<File>>> Client::open_inode(InodeId inode, OpenMode mode,
                                                       CallOptions options) {
  TimePoint deadline = this->deadline(options);
  meta::MetaClient::CallOptions meta_options{.deadline = deadline};
  // Data handles are for regular files: a directory is kIsDirectory before any session.
  auto looking = meta_->getattr(meta::GetattrRequest{.inode = inode}, meta_options);
  CO_TRY_ASSIGN(meta::InodeReply attrs, co_await std::move(looking));
  if (attrs.inode.type == meta::InodeType::kDirectory)
    co_return Status(StatusCode::kIsDirectory, fmt::format("inode {:#x} is a directory", inode));
  if (attrs.inode.type != meta::InodeType::kFile)
    co_return Status(StatusCode::kNotSupported,
                     fmt::format("inode {:#x} is not a regular file", inode));
  meta::OpenRequest request{
      .cred = credentials(options), .inode = inode, .flags = open_flags(mode.flags)};
  auto opening = meta_->open(std::move(request), meta_options);
  CO_TRY_ASSIGN(meta::OpenReply opened, co_await std::move(opening));
  auto making = make_file(std::move(opened), mode, deadline);
  co_return co_await std::move(making);
}

}  // namespace mica::client
