// The operations of the model-based tests (tests/meta/meta_model_test.cc against the metadata
// service, tests/meta/model_kernel_test.cc against Linux): one POSIX call by one user on
// paths below a test root, a one-line text form (the replay helper's protocol,
// tests/meta/helpers/posix_replay.cc) and a seeded generator of random sequences.
//
// The generator draws from a small name space ({a, b, c, d}, at most two directory levels)
// so names collide and errors are frequent, from four users (root among them) with
// overlapping groups, and picks existing paths of the model more often than not. Symlink
// targets never resolve ("t-" names are outside the name space), so a symlink followed
// anywhere is ENOENT. Value types and a plain generator: one thread, nothing suspends.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "meta/meta_service.h"

namespace mica::meta::model {

enum class OpKind : uint8_t {
  kCreate,   // open(O_CREAT | O_EXCL) of a regular file
  kMknod,    // a fifo
  kMkdir,
  kRmdir,
  kUnlink,
  kRename,   // renameat2 with noreplace / exchange
  kLink,     // linkat without following a final symlink
  kSymlink,
  kReadlink,
  kChmod,    // follows a final symlink
  kChown,    // lchown (does not follow)
  kTruncate, // truncate(2): follows
  kUtimens,  // utimensat(AT_SYMLINK_NOFOLLOW)
  kSetxattr, // the l* xattr calls (do not follow)
  kGetxattr,
  kRemovexattr,
  kReaddir,  // opendir + readdir: follows
  kStat,     // lstat
};
const char* op_kind_name(OpKind kind);

using Path = std::vector<std::string>;  // components below the test root; {} is the root

struct Op {
  OpKind kind = OpKind::kStat;
  uint32_t user = 0;  // index into users()
  Path path;
  Path path2;         // rename, link: the new name
  uint32_t mode = 0;  // create, mknod, mkdir, chmod
  std::optional<uint32_t> uid;  // chown
  std::optional<uint32_t> gid;
  uint64_t size = 0;  // truncate
  TimeSet atime = TimeSet::kOmit;
  TimeSet mtime = TimeSet::kOmit;
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  bool noreplace = false;  // rename
  bool exchange = false;
  std::string target;  // symlink
  std::string xname;   // xattrs
  std::string xvalue;
  XattrMode xmode = XattrMode::kAny;
};

// The users every sequence draws from: root, and three users whose groups overlap.
const std::vector<Credentials>& users();

// "USER KIND PATH [ARGS...]" with '.' for the root path; parse_op inverts it.
std::string op_to_line(const Op& op);
std::optional<Op> parse_op(const std::string& line);
std::string path_string(const Path& path);  // "a/b", "." for the root

// A small deterministic generator (splitmix64): the same seed gives the same numbers on
// every platform and standard library.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next();
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(next() % n); }
  bool chance(uint32_t percent) { return below(100) < percent; }

 private:
  uint64_t state_;
};

// Draws operations; `existing` (the model's current paths) makes most operands real.
class OpGenerator {
 public:
  explicit OpGenerator(uint64_t seed) : random_(seed) {}
  Op next(const std::vector<Path>& existing);

 private:
  Path pick_path(const std::vector<Path>& existing, bool dir_like);
  Path random_path(bool parent_only);
  void fill_args(Op& op);
  Random random_;
};

}  // namespace mica::meta::model
