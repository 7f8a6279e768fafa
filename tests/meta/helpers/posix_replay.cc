// meta_posix_replay DIR UID GID GROUPS: the kernel half of tests/meta/model_kernel_test.cc.
// Started as root, it changes into DIR (a fresh tmpfs), then becomes UID/GID with the
// supplementary GROUPS ("-" for none, else comma-separated) through setgroups, setresgid
// and setresuid, sets umask 0, and performs each operation line of tests/meta/model_ops.h
// read from stdin as that user with the real system call, answering one line per operation
// on stdout: the errno name ("OK" for success) and, for reads, a tab and the result in the
// model's form (tests/meta/posix_model.h). It ends at end of input.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/meta/model_ops.h"

namespace mica::meta::model {
namespace {

const char* errno_name(int error) {
  switch (error) {
    case 0: return "OK";
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EXDEV: return "EXDEV";
    case EMLINK: return "EMLINK";
    case ENODATA: return "ENODATA";
    case E2BIG: return "E2BIG";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case ELOOP: return "ELOOP";
    case EBUSY: return "EBUSY";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return "EOTHER";
  }
}

const char* type_name(mode_t mode) {
  if (S_ISREG(mode)) return "file";
  if (S_ISDIR(mode)) return "directory";
  if (S_ISLNK(mode)) return "symlink";
  if (S_ISFIFO(mode)) return "fifo";
  return "other";
}

struct Answer {
  int error = 0;
  std::string value;
};

Answer result(int rc) { return {rc < 0 ? errno : 0, {}}; }

timespec time_arg(TimeSet set, int64_t ns) {
  if (set == TimeSet::kOmit) return {0, UTIME_OMIT};
  if (set == TimeSet::kNow) return {0, UTIME_NOW};
  return {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

Answer read_dir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return {errno, {}};
  DIR* dir = ::fdopendir(fd);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  Answer a;
  for (const std::string& name : names) a.value += (a.value.empty() ? "" : ",") + name;
  return a;
}

Answer do_stat(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) < 0) return {errno, {}};
  uint64_t size = S_ISDIR(st.st_mode) ? 0 : static_cast<uint64_t>(st.st_size);
  return {0, fmt::format("{} 0{:o} {} {} {} {}", type_name(st.st_mode), st.st_mode & 07777,
                         st.st_uid, st.st_gid, st.st_nlink, size)};
}

Answer xattr_op(const Op& op, const std::string& p) {
  if (op.kind == OpKind::kSetxattr) {
    int flags = op.xmode == XattrMode::kCreate    ? XATTR_CREATE
                : op.xmode == XattrMode::kReplace ? XATTR_REPLACE
                                                  : 0;
    return result(::lsetxattr(p.c_str(), op.xname.c_str(), op.xvalue.data(),
                              op.xvalue.size(), flags));
  }
  if (op.kind == OpKind::kRemovexattr) return result(::lremovexattr(p.c_str(), op.xname.c_str()));
  char buffer[256];
  ssize_t n = ::lgetxattr(p.c_str(), op.xname.c_str(), buffer, sizeof buffer);
  if (n < 0) return {errno, {}};
  return {0, std::string(buffer, static_cast<size_t>(n))};
}

Answer perform(const Op& op) {
  std::string p = path_string(op.path);
  std::string p2 = path_string(op.path2);
  switch (op.kind) {
    case OpKind::kCreate: {
      int fd = ::open(p.c_str(), O_CREAT | O_EXCL | O_RDONLY | O_CLOEXEC, op.mode);
      if (fd < 0) return {errno, {}};
      ::close(fd);
      return {};
    }
    case OpKind::kMknod: return result(::mknod(p.c_str(), S_IFIFO | op.mode, 0));
    case OpKind::kMkdir: return result(::mkdir(p.c_str(), op.mode));
    case OpKind::kRmdir: return result(::rmdir(p.c_str()));
    case OpKind::kUnlink: return result(::unlink(p.c_str()));
    case OpKind::kRename: {
      unsigned flags = (op.noreplace ? RENAME_NOREPLACE : 0) | (op.exchange ? RENAME_EXCHANGE : 0);
      return result(::renameat2(AT_FDCWD, p.c_str(), AT_FDCWD, p2.c_str(), flags));
    }
    case OpKind::kLink: return result(::linkat(AT_FDCWD, p.c_str(), AT_FDCWD, p2.c_str(), 0));
    case OpKind::kSymlink: return result(::symlink(op.target.c_str(), p.c_str()));
    case OpKind::kReadlink: {
      char buffer[4096];
      ssize_t n = ::readlink(p.c_str(), buffer, sizeof buffer);
      if (n < 0) return {errno, {}};
      return {0, std::string(buffer, static_cast<size_t>(n))};
    }
    case OpKind::kChmod: return result(::chmod(p.c_str(), op.mode));
    case OpKind::kChown:
      return result(::fchownat(AT_FDCWD, p.c_str(), op.uid ? *op.uid : static_cast<uid_t>(-1),
                               op.gid ? *op.gid : static_cast<gid_t>(-1), AT_SYMLINK_NOFOLLOW));
    case OpKind::kTruncate:
      return result(::truncate(p.c_str(), static_cast<off_t>(op.size)));
    case OpKind::kUtimens: {
      timespec times[2] = {time_arg(op.atime, op.atime_ns), time_arg(op.mtime, op.mtime_ns)};
      return result(::utimensat(AT_FDCWD, p.c_str(), times, AT_SYMLINK_NOFOLLOW));
    }
    case OpKind::kSetxattr:
    case OpKind::kGetxattr:
    case OpKind::kRemovexattr: return xattr_op(op, p);
    case OpKind::kReaddir: return read_dir(p);
    case OpKind::kStat: return do_stat(p);
  }
  return {EINVAL, {}};
}

std::vector<gid_t> parse_groups(const std::string& text) {
  std::vector<gid_t> groups;
  if (text == "-") return groups;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    groups.push_back(static_cast<gid_t>(std::stoul(text.substr(start, comma - start))));
    start = comma + 1;
  }
  return groups;
}

int run(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: meta_posix_replay DIR UID GID GROUPS\n");
    return 2;
  }
  uid_t uid = static_cast<uid_t>(std::stoul(argv[2]));
  gid_t gid = static_cast<gid_t>(std::stoul(argv[3]));
  std::vector<gid_t> groups = parse_groups(argv[4]);
  if (::chdir(argv[1]) != 0 || ::setgroups(groups.size(), groups.data()) != 0 ||
      ::setresgid(gid, gid, gid) != 0 || ::setresuid(uid, uid, uid) != 0) {
    std::perror("meta_posix_replay: changing into the user");
    return 3;
  }
  ::umask(0);
  std::string line;
  while (std::getline(std::cin, line)) {
    std::optional<Op> op = parse_op(line);
    Answer a = op ? perform(*op) : Answer{EINVAL, "unparsed"};
    std::cout << errno_name(a.error);
    if (a.error == 0 && !a.value.empty()) std::cout << '\t' << a.value;
    std::cout << std::endl;
  }
  return 0;
}

}  // namespace
}  // namespace mica::meta::model

int main(int argc, char** argv) { return mica::meta::model::run(argc, argv); }
