// Client: Mica's native client — what a program links to `co_await` paths, files and batch
// reads without FUSE in the way (docs/client.md shows how to use it, and states the
// consistency contract each call keeps). The FUSE daemon is built on it.
//
// Client::connect makes the client's own transport (TCP or RDMA, wrapped in the cluster-token
// handshake), connection pool, routing client (a long poll on mgmtd), metadata client
// (meta/meta_client.h: lookups, the lease that keeps open files' sessions) and storage
// client (craq/storage_client.h: chains, replicas, retries). Paths are absolute and walked
// from the root with the caller's credentials; every call takes its credentials from
// CallOptions::cred or, when it names none, the client's (the process's by default).
// Errors are statuses (async/status.h); client/errno.h maps them to errno, once for the
// whole project. Every call has a deadline: CallOptions::deadline, else
// ClientOptions::call_timeout from the call's start (docs/client.md says why that default
// outlasts failure detection plus routing propagation). Retries with backoff across chain
// changes, dirty replicas, restarted meta processes and transient errors happen inside.
//
// Files: open() answers a File, one open handle (a metadata session held under the client's
// lease). A File's chunks are striped over its chains (meta/layout.h; computed here, never
// asked); writes are split at chunk boundaries and sent in parallel, bounded in flight;
// reads pick a serving replica per chunk; holes read as zeros. A write returns once every
// replica of its chain holds it; the file's length in metadata grows as the writer reports
// it (while it grows, and at the latest on fsync and close). Many tasks may use one File at
// once (disjoint ranges for writes); read/write at the cursor are for one task at a time.
//
// Threads: executor-bound. A Client and its Files belong to the executor that ran connect();
// every call is made from a task there and suspends. close() every File, then the Client,
// before destroying them (destructors assert it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "async/status.h"
#include "async/sync.h"
#include "async/task.h"
#include "async/time.h"
#include "craq/storage_client.h"
#include "meta/meta_client.h"
#include "meta/types.h"
#include "net/cluster_token.h"
#include "net/connection.h"
#include "net/transport_choice.h"

namespace mica::client {

using meta::Credentials;
using meta::Inode;
using meta::InodeId;

// The calling process's credentials: getuid(), getgid() and getgroups().
Credentials process_credentials();

struct ClientOptions {
  std::string mgmtd;       // "host:port" of mgmtd (several: comma-separated, tried in turn)
  std::string token_file;  // the cluster token file; "" with no `token`: no handshake
  // The token itself (wins over token_file). connect() otherwise reads token_file once,
  // synchronously, before it first suspends (a small local file).
  std::optional<net::ClusterToken> token;
  net::TransportChoice transport = net::TransportChoice::kAuto;
  std::optional<Credentials> cred;  // calls that name none; unset: process_credentials()
  // A call's deadline when it names none.
  Duration call_timeout = std::chrono::seconds(60);
  // Payload bytes one File keeps in flight to storage at once (writes and reads each).
  uint64_t file_bytes_in_flight_max = uint64_t{64} << 20;
  // A writer reports its file's growth to metadata at most this often (and on fsync/close).
  Duration length_report_interval = std::chrono::seconds(1);
  craq::ReadChoice read_choice = craq::ReadChoice::kSpread;
};

class RegisteredBuffer;

struct CallOptions {
  TimePoint deadline = kNoDeadline;  // kNoDeadline: ClientOptions::call_timeout from now
  std::optional<Credentials> cred;   // unset: the client's
  // A registration (Client::register_buffer) holding the call's bytes: named as it is, no
  // registration per call. Ignored for bytes it does not cover. Must outlive the call.
  const RegisteredBuffer* registered = nullptr;
};

// POSIX open flags the client acts on: O_RDONLY/O_WRONLY/O_RDWR, O_CREAT, O_EXCL, O_TRUNC,
// O_APPEND (others are ignored). mode is for a file O_CREAT makes.
struct OpenMode {
  int flags = 0;
  uint32_t mode = 0644;
};

// A page of a directory, names in byte order, each with its attributes.
struct DirPage {
  std::vector<meta::ReaddirEntry> entries;
  bool done = false;  // no entry after the last one
};

// A buffer registered with the transport (Client::register_buffer): reads into it and writes
// from it need no registration per call (RDMA) and no extra copy. Move-only; the bytes must
// outlive it, and it must outlive every call that names it (destroying it revokes it).
class RegisteredBuffer {
 public:
  RegisteredBuffer() = default;
  RegisteredBuffer(std::span<std::byte> bytes, std::unique_ptr<net::MemoryRegion> region)
      : bytes_(bytes), region_(std::move(region)) {}
  std::span<std::byte> bytes() const { return bytes_; }
  net::MemoryRegion* region() const { return region_.get(); }

 private:
  std::span<std::byte> bytes_;
  std::unique_ptr<net::MemoryRegion> region_;
};

class Client;

// One open handle of a file (a metadata session). Made by Client::open / open_inode.
class File {
 public:
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();  // asserts close() returned

  InodeId inode() const { return attrs_.id; }
  const Inode& attributes() const { return attrs_; }  // as of open and this handle's writes
  uint64_t known_length() const { return known_length_; }

  // Reads up to out.size() bytes at offset; fewer at the end of the file (0 past it).
  // Holes read as zeros.
  Task<Result<size_t>> pread(std::span<std::byte> out, uint64_t offset, CallOptions options = {});
  // Writes all of data at offset (O_APPEND handles: at the end, as this client knows it).
  Task<Result<size_t>> pwrite(std::span<const std::byte> data, uint64_t offset,
                              CallOptions options = {});
  // At the cursor, which they advance.
  Task<Result<size_t>> read(std::span<std::byte> out, CallOptions options = {});
  Task<Result<size_t>> write(std::span<const std::byte> data, CallOptions options = {});
  uint64_t cursor() const { return cursor_; }
  void seek(uint64_t offset) { cursor_ = offset; }
  // Sets the file's length (cuts chunks past it, or extends with a hole).
  Task<Status> truncate(uint64_t length, CallOptions options = {});
  // Every acknowledged write is already on every replica; fsync makes the length durable
  // in metadata.
  Task<Status> fsync(CallOptions options = {});
  // Reports the length (as fsync) and ends the session. The handle is unusable after.
  // kBatched is for a close nobody waits on (the FUSE daemon's RELEASE): metadata may hold
  // its commit a few milliseconds to share the next one. Durable when it returns, either way.
  enum class CloseCommit { kPrompt, kBatched };
  Task<Status> close(CallOptions options = {}, CloseCommit commit = CloseCommit::kPrompt);
  // The file was cut to `length` by another handle or a setattr of this process: this
  // handle forgets what it knew past it, its unreported growth included (which must not
  // regrow the file at its next report). Does not suspend.
  void forget_past(uint64_t length);

 private:
  friend class Client;
  // One chunk's part of a file range (file.cc).
  struct Piece {
    craq::ChainId chain = 0;
    uint32_t index = 0;   // the chunk
    uint32_t offset = 0;  // in the chunk
    size_t at = 0;        // in the caller's buffer
    size_t length = 0;
  };
  File(Client* client, meta::OpenReply opened, OpenMode mode);
  Status check_usable(bool writing) const;
  Status compute_chains();
  std::vector<Piece> pieces(uint64_t offset, size_t length) const;
  void note_inode(const Inode& inode);
  uint64_t unreported_length() const;
  Task<Status> write_piece(Piece piece, std::span<const std::byte> data, TimePoint deadline,
                           net::MemoryRegion* region);
  Task<Status> read_piece(Piece piece, std::span<std::byte> out, TimePoint deadline,
                          net::MemoryRegion* region);
  Task<Status> report(TimePoint deadline);
  Task<void> report_if_due(TimePoint deadline);
  Task<Status> refresh_length(TimePoint deadline);

  Client* client_;
  Inode attrs_;
  meta::SessionId session_ = 0;
  meta::ShardId shard_ = 0;
  OpenMode mode_;
  std::vector<craq::ChainId> chains_;  // layout_chains() of attrs_.layout
  uint64_t known_length_ = 0;          // max(metadata's length at open, this handle's writes)
  uint64_t reported_length_ = 0;       // the last length metadata acknowledged from us
  int64_t last_write_ns_ = 0;          // 0: no write since the last report
  TimePoint last_report_{};
  uint64_t cursor_ = 0;
  bool closed_ = false;
  bool reporting_ = false;  // a growth report is on its way (one at a time)
  Semaphore in_flight_;     // payload bytes to storage (file_bytes_in_flight_max)
};

// One item of Client::read_batch: `length` bytes of `file` at `offset` into out.
struct BatchRead {
  File* file = nullptr;
  uint64_t offset = 0;
  std::span<std::byte> out;
};

class Client {
 public:
  // Connects to mgmtd (routing fetched once before it answers) and starts the lease loop.
  static Task<Result<std::unique_ptr<Client>>> connect(ClientOptions options);

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();  // asserts close() returned

  // Stops the lease and routing loops and closes connections. Files must be closed first.
  Task<void> close();

  // ---- paths (absolute) ----
  Task<Result<Inode>> stat(std::string path, CallOptions options = {});
  Task<Result<Inode>> lstat(std::string path, CallOptions options = {});
  Task<Result<Inode>> mkdir(std::string path, uint32_t mode, CallOptions options = {});
  Task<Status> rmdir(std::string path, CallOptions options = {});
  Task<Status> unlink(std::string path, CallOptions options = {});
  // flags: RENAME_NOREPLACE, RENAME_EXCHANGE (linux/fs.h) or 0.
  Task<Status> rename(std::string from, std::string to, unsigned flags = 0,
                      CallOptions options = {});
  Task<Result<Inode>> link(std::string existing, std::string new_path, CallOptions options = {});
  Task<Result<Inode>> symlink(std::string target, std::string link_path,
                              CallOptions options = {});
  Task<Result<std::string>> readlink(std::string path, CallOptions options = {});
  // Streamed: a page of entries after `after` ("" from the start); call again with the last
  // name until done.
  Task<Result<DirPage>> readdir(std::string path, std::string after = {},
                                CallOptions options = {});
  Task<Status> chmod(std::string path, uint32_t mode, CallOptions options = {});
  // nullopt: leave it as it is.
  Task<Status> chown(std::string path, std::optional<uint32_t> uid, std::optional<uint32_t> gid,
                     CallOptions options = {});
  // timespec semantics of utimensat(2): tv_nsec UTIME_NOW or UTIME_OMIT apply.
  Task<Status> utimens(std::string path, struct timespec atime, struct timespec mtime,
                       CallOptions options = {});
  Task<Status> truncate(std::string path, uint64_t length, CallOptions options = {});
  Task<Result<std::string>> getxattr(std::string path, std::string name, CallOptions options = {});
  // flags: XATTR_CREATE, XATTR_REPLACE or 0.
  Task<Status> setxattr(std::string path, std::string name, std::string value, int flags = 0,
                        CallOptions options = {});
  Task<Result<std::vector<std::string>>> listxattr(std::string path, CallOptions options = {});
  Task<Status> removexattr(std::string path, std::string name, CallOptions options = {});
  Task<Result<meta::StatfsReply>> statfs(CallOptions options = {});

  // ---- files ----
  Task<Result<std::unique_ptr<File>>> open(std::string path, OpenMode mode,
                                           CallOptions options = {});
  // By inode (the FUSE daemon has inode ids, not paths).
  Task<Result<std::unique_ptr<File>>> open_inode(InodeId inode, OpenMode mode,
                                                 CallOptions options = {});
  // Creates `name` in directory `parent` and opens it in one metadata round trip (open()
  // with O_CREAT, by inode: the FUSE daemon's CREATE). Without O_EXCL in mode.flags an
  // existing file of that name is opened; `created` (if given) says which happened.
  Task<Result<std::unique_ptr<File>>> create_at(InodeId parent, std::string name, OpenMode mode,
                                                CallOptions options = {},
                                                bool* created = nullptr);

  // ---- batch reads for data loaders ----
  // Many reads of many files, grouped into one request per storage node; a result per
  // item, in order (bytes read: fewer at a file's end, 0 past it; holes are zeros).
  Task<std::vector<Result<size_t>>> read_batch(std::vector<BatchRead> reads,
                                               CallOptions options = {});
  // Registers bytes with the transport for reads into and writes from them without a copy.
  // (`register` is a C++ keyword.)
  Result<RegisteredBuffer> register_buffer(std::span<std::byte> bytes);

  // ---- the layers, for the FUSE daemon and tests (inode-level calls) ----
  meta::MetaClient& meta() { return *meta_; }
  craq::StorageClient& storage() { return *storage_; }
  craq::RoutingClient& routing() { return *routing_; }
  const ClientOptions& options() const { return options_; }
  // The credentials of a call: options.cred, else the client's.
  const Credentials& credentials(const CallOptions& options) const;
  // The deadline of a call: options.deadline, else call_timeout from now.
  TimePoint deadline(const CallOptions& options) const;

 private:
  friend class File;
  explicit Client(ClientOptions options);
  Task<Status> start();
  // file.cc: a File for an open session (closes the session when its layout is unusable).
  Task<Result<std::unique_ptr<File>>> make_file(meta::OpenReply opened, OpenMode mode,
                                                TimePoint deadline);

  ClientOptions options_;
  Credentials cred_;
  std::unique_ptr<net::Transport> inner_transport_;
  std::unique_ptr<net::Transport> authenticated_transport_;
  net::Transport* transport_ = nullptr;
  std::unique_ptr<net::ConnectionPool> pool_;
  std::unique_ptr<craq::RoutingClient> routing_;
  std::unique_ptr<meta::MetaClient> meta_;
  std::unique_ptr<craq::StorageClient> storage_;
  uint32_t open_files_ = 0;
  bool started_ = false;
  bool closed_ = false;
};

}  // namespace mica::client
