// PosixModel: a small in-memory reference model of a POSIX tree — directories, regular
// files, fifos, symlinks, hard links, modes, owners, sticky and SGID bits, nlink and xattrs —
// that answers each operation of tests/meta/model_ops.h with the status Linux gives
// (checked against the kernel by tests/meta/model_kernel_test.cc) and the new state.
//
// The rules are the kernel's, in the kernel's order (namei.c, attr.c, xattr.c, open.c):
// search permission on every directory walked, then existence, then write permission on
// the parent, then sticky ownership, then the operand's type. Where the service's comments
// (meta/meta_service.h) and Linux differ, the model follows Linux. Times are not modelled
// (the kernel's clock is not the test's). Value type: one thread, nothing suspends.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "async/status.h"
#include "meta/types.h"
#include "tests/meta/model_ops.h"

namespace mica::meta::model {

// An operation's answer: the status and, for the reads, what they return (readdir: the
// names joined by ','; readlink: the target; getxattr: the value; stat: attr_line()).
struct Outcome {
  StatusCode code = StatusCode::kOk;
  std::string value;
  friend bool operator==(const Outcome&, const Outcome&) = default;
};
std::string outcome_string(const Outcome& outcome);

struct ModelOptions {
  uint32_t root_mode = 0777;
  // fs.protected_hardlinks=1 (Linux's default): only the owner (or root) links a file it
  // may not read and write, or that is not a regular file, or is SUID / SGID-executable.
  bool protected_hardlinks = true;
};

struct Node {
  InodeType type = InodeType::kFile;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t links = 0;  // entries naming it (directories: 1)
  uint64_t size = 0;
  std::string target;
  std::map<std::string, std::string> xattrs;
  std::map<std::string, uint32_t> children;  // directories: name -> node
  uint32_t parent = 0;                       // directories
};

class PosixModel {
 public:
  explicit PosixModel(ModelOptions options = {});

  Outcome apply(const Op& op);

  // Every path of the tree (not the root), in name order.
  std::vector<Path> paths() const;
  // The node a path names (not following a final symlink), or nullptr.
  const Node* find(const Path& path) const;
  uint32_t find_id(const Path& path) const;  // 0: none
  const Node& node(uint32_t id) const { return nodes_.at(id); }
  uint32_t nlink(uint32_t id) const;
  // "type mode uid gid nlink size" (directories: size 0).
  std::string attr_line(uint32_t id) const;
  // One line per path in name order: attributes, the first path of the same inode
  // (hard links), a symlink's target, xattrs. The kernel test builds the same from lstat.
  std::string dump() const;

  static constexpr uint32_t kRoot = 1;

 private:
  struct Resolved {  // a parent directory and the last name, or the error on the way
    StatusCode code = StatusCode::kOk;
    uint32_t dir = 0;
    std::string name;
    uint32_t child = 0;  // 0: no entry
  };
  Resolved resolve(const Credentials& cred, const Path& path) const;
  // The node the whole path names, following a final symlink (which never resolves).
  Result<uint32_t> resolve_follow(const Credentials& cred, const Path& path) const;
  Result<uint32_t> resolve_nofollow(const Credentials& cred, const Path& path) const;

  bool may(const Credentials& cred, uint32_t id, uint32_t mask) const;  // 4 r, 2 w, 1 x
  bool owner_or_root(const Credentials& cred, uint32_t id) const;
  bool sticky_denies(const Credentials& cred, uint32_t dir, uint32_t victim) const;
  StatusCode may_delete(const Credentials& cred, uint32_t dir, uint32_t victim,
                        bool is_dir) const;
  bool is_ancestor(uint32_t ancestor, uint32_t id) const;  // ancestor or the same
  uint32_t child_towards(uint32_t ancestor, uint32_t id) const;

  Outcome make(const Op& op, const Credentials& cred);
  Outcome remove(const Op& op, const Credentials& cred);
  Outcome rename(const Op& op, const Credentials& cred);
  StatusCode rename_checks(const Op& op, const Credentials& cred, const Resolved& from,
                           const Resolved& to) const;
  void do_rename(const Op& op, const Resolved& from, const Resolved& to);
  Outcome link(const Op& op, const Credentials& cred);
  Outcome chmod(const Op& op, const Credentials& cred);
  Outcome chown(const Op& op, const Credentials& cred);
  Outcome truncate(const Op& op, const Credentials& cred);
  Outcome utimens(const Op& op, const Credentials& cred);
  Outcome xattr(const Op& op, const Credentials& cred);
  Outcome read_op(const Op& op, const Credentials& cred);

  void unlink_entry(uint32_t dir, const std::string& name);
  void dump_dir(uint32_t dir, const std::string& prefix, std::map<uint32_t, std::string>& seen,
                std::string& out) const;

  ModelOptions options_;
  std::map<uint32_t, Node> nodes_;
  uint32_t next_id_ = kRoot + 1;
};

}  // namespace mica::meta::model
