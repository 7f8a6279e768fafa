// The model of the model-based test (tests/meta/posix_model.h) checked against Linux: each
// seed's random sequence (tests/meta/model_ops.h) is replayed on a fresh tmpfs mounted in
// the test's own folder, each operation by a meta_posix_replay process running as that
// operation's user (one per user, fed over a pipe), and every answer and, after every
// step, the whole tree (lstat of every path, hard-link groups, symlink targets, xattrs)
// must equal the model's. Needs root (mount, and changing into the users); skipped with a
// message otherwise. Seeds: MICA_META_KERNEL_SEEDS (default 300 optimised, 60 otherwise),
// steps per seed MICA_META_MODEL_STEPS (default 80). Time cap: about 10 s in a Debug build
// (each step is two pipe round trips and a walk of a tree of a few dozen entries).
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/meta/model_ops.h"
#include "tests/meta/posix_model.h"
#include "tests/temp_dir.h"

namespace mica::meta::model {
namespace {

using mica::testing::binary_dir;
using mica::testing::TempDir;

uint32_t knob(const char* name, uint32_t optimised, uint32_t otherwise) {
  if (const char* value = std::getenv(name)) return static_cast<uint32_t>(std::stoul(value));
#ifdef NDEBUG
  (void)otherwise;
  return optimised;
#else
  (void)optimised;
  return otherwise;
#endif
}

// The test's own errno <-> status table (the project's mapping comes with client/).
StatusCode status_of_errno_name(const std::string& name) {
  static const std::map<std::string, StatusCode> table = {
      {"OK", StatusCode::kOk},
      {"ENOENT", StatusCode::kNotFound},
      {"EEXIST", StatusCode::kAlreadyExists},
      {"EACCES", StatusCode::kPermissionDenied},
      {"EPERM", StatusCode::kNotPermitted},
      {"ENOTDIR", StatusCode::kNotDirectory},
      {"EISDIR", StatusCode::kIsDirectory},
      {"ENOTEMPTY", StatusCode::kNotEmpty},
      {"ENAMETOOLONG", StatusCode::kNameTooLong},
      {"EXDEV", StatusCode::kCrossDevice},
      {"EMLINK", StatusCode::kTooManyLinks},
      {"ENODATA", StatusCode::kNoData},
      {"E2BIG", StatusCode::kTooBig},
      {"EINVAL", StatusCode::kInvalidArgument},
      {"ENOSPC", StatusCode::kNoSpace},
      {"ELOOP", StatusCode::kLoop},
      {"EBUSY", StatusCode::kBusy},
      {"EOPNOTSUPP", StatusCode::kNotSupported},
  };
  auto it = table.find(name);
  return it == table.end() ? StatusCode::kInternal : it->second;
}

// One replay process running as one user, fed lines over a pipe.
class Replayer {
 public:
  Replayer(const std::string& dir, const Credentials& cred) {
    int to_child[2];
    int from_child[2];
    MICA_ASSERT(::pipe2(to_child, O_CLOEXEC) == 0 && ::pipe2(from_child, O_CLOEXEC) == 0);
    std::string groups;
    for (uint32_t g : cred.groups) groups += (groups.empty() ? "" : ",") + std::to_string(g);
    if (groups.empty()) groups = "-";
    std::string binary = binary_dir() + "/meta_posix_replay";
    std::string uid = std::to_string(cred.uid);
    std::string gid = std::to_string(cred.gid);
    pid_ = ::fork();
    MICA_ASSERT(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(to_child[0], 0);
      ::dup2(from_child[1], 1);
      ::close(to_child[1]);
      ::close(from_child[0]);
      ::execl(binary.c_str(), binary.c_str(), dir.c_str(), uid.c_str(), gid.c_str(),
              groups.c_str(), static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    in_ = ::fdopen(to_child[1], "w");
    out_ = ::fdopen(from_child[0], "r");
  }
  Replayer(const Replayer&) = delete;
  Replayer& operator=(const Replayer&) = delete;
  ~Replayer() {
    std::fclose(in_);  // end of input ends the process
    std::fclose(out_);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }

  // The answer as the model gives it; kInternal with the text for a dead helper.
  Outcome run(const Op& op) {
    std::fprintf(in_, "%s\n", op_to_line(op).c_str());
    std::fflush(in_);
    char buffer[4096];
    if (std::fgets(buffer, sizeof buffer, out_) == nullptr) {
      return {StatusCode::kInternal, "the replay helper ended"};
    }
    std::string line = buffer;
    if (!line.empty() && line.back() == '\n') line.pop_back();
    size_t tab = line.find('\t');
    Outcome outcome;
    outcome.code = status_of_errno_name(line.substr(0, tab));
    if (tab != std::string::npos) outcome.value = line.substr(tab + 1);
    if (outcome.code == StatusCode::kInternal) outcome.value = line;
    return outcome;
  }

 private:
  pid_t pid_ = -1;
  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
};

std::string kernel_attrs(const struct stat& st) {
  const char* type = S_ISREG(st.st_mode)   ? "file"
                     : S_ISDIR(st.st_mode) ? "directory"
                     : S_ISLNK(st.st_mode) ? "symlink"
                     : S_ISFIFO(st.st_mode) ? "fifo"
                                            : "other";
  uint64_t size = S_ISDIR(st.st_mode) ? 0 : static_cast<uint64_t>(st.st_size);
  return fmt::format("{} 0{:o} {} {} {} {}", type, st.st_mode & 07777, st.st_uid, st.st_gid,
                     st.st_nlink, size);
}

std::string kernel_xattrs(const std::string& path) {
  char names[4096];
  ssize_t n = ::llistxattr(path.c_str(), names, sizeof names);
  std::vector<std::string> keys;
  for (ssize_t i = 0; i < n; i += static_cast<ssize_t>(std::strlen(names + i)) + 1) {
    std::string key = names + i;
    if (key.starts_with("user.") || key.starts_with("trusted.")) keys.push_back(key);
  }
  std::sort(keys.begin(), keys.end());
  std::string out;
  for (const std::string& key : keys) {
    char value[256];
    ssize_t len = ::lgetxattr(path.c_str(), key.c_str(), value, sizeof value);
    out += " " + key + "=" + std::string(value, len < 0 ? 0 : static_cast<size_t>(len));
  }
  return out;
}

// The tree under root in PosixModel::dump()'s form, from the kernel (run as root).
void kernel_dump_dir(const std::string& root, const std::string& prefix,
                     std::map<ino_t, std::string>& seen, std::string& out) {
  std::string dir_path = prefix.empty() ? root : root + "/" + prefix;
  DIR* dir = ::opendir(dir_path.c_str());
  if (dir == nullptr) return;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    std::string path = prefix.empty() ? name : prefix + "/" + name;
    std::string full = root + "/" + path;
    struct stat st {};
    if (::lstat(full.c_str(), &st) != 0) continue;
    out += path + " " + kernel_attrs(st);
    if (!S_ISDIR(st.st_mode)) {
      auto [it, fresh] = seen.emplace(st.st_ino, path);
      if (!fresh) out += " =" + it->second;
    }
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = ::readlink(full.c_str(), target, sizeof target);
      out += " ->" + std::string(target, n < 0 ? 0 : static_cast<size_t>(n));
    }
    out += kernel_xattrs(full) + "\n";
    if (S_ISDIR(st.st_mode)) kernel_dump_dir(root, path, seen, out);
  }
}

std::string kernel_dump(const std::string& root) {
  struct stat st {};
  ::lstat(root.c_str(), &st);
  std::string out = ". " + kernel_attrs(st) + kernel_xattrs(root) + "\n";
  std::map<ino_t, std::string> seen;
  kernel_dump_dir(root, "", seen, out);
  return out;
}

// A tmpfs mounted on a fresh folder for one seed, unmounted at the end.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& parent, uint32_t root_mode) : dir_(parent, "model-kernel") {
    mounted_ = ::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, "size=16m") == 0;
    if (mounted_) {
      MICA_ASSERT(::chmod(dir_.path().c_str(), root_mode) == 0);
      MICA_ASSERT(::chown(dir_.path().c_str(), 0, 0) == 0);
    }
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;
  ~TmpfsMount() {
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& path() const { return dir_.path(); }

 private:
  TempDir dir_;
  bool mounted_ = false;
};

uint32_t root_mode_for(uint64_t seed) {
  constexpr uint32_t kRootModes[] = {0777, 01777, 0775, 02777};
  return kRootModes[seed % 4];
}

// Replays one seed; the first difference is a test failure naming the seed and step.
void replay_seed(uint64_t seed, uint32_t steps, const std::string& parent) {
  uint32_t root_mode = root_mode_for(seed);
  TmpfsMount mount(parent, root_mode);
  ASSERT_TRUE(mount.mounted()) << "mount -t tmpfs failed: " << std::strerror(errno);
  std::vector<std::unique_ptr<Replayer>> replayers;
  for (const Credentials& cred : users()) {
    replayers.push_back(std::make_unique<Replayer>(mount.path(), cred));
  }
  PosixModel model(ModelOptions{.root_mode = root_mode});
  OpGenerator generator(seed);
  std::string history;
  for (uint32_t step = 0; step < steps; ++step) {
    Op op = generator.next(model.paths());
    Outcome expected = model.apply(op);
    Outcome kernel = replayers[op.user]->run(op);
    history += fmt::format("  {}: {} -> {}\n", step, op_to_line(op), outcome_string(kernel));
    ASSERT_EQ(outcome_string(kernel), outcome_string(expected))
        << "seed " << seed << " step " << step << ": " << op_to_line(op) << "\n" << history;
    ASSERT_EQ(kernel_dump(mount.path()), model.dump())
        << "seed " << seed << " step " << step << ": " << op_to_line(op) << "\n" << history;
  }
}

TEST(ModelKernel, LinuxAnswersEveryGeneratedSequenceAsTheModelDoes) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root: mounts a tmpfs and replays operations as other users";
  }
  uint32_t seeds = knob("MICA_META_KERNEL_SEEDS", 300, 60);
  uint32_t steps = knob("MICA_META_MODEL_STEPS", 80, 80);
  std::string parent = binary_dir() + "/test-tmp";
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    replay_seed(seed, steps, parent);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace mica::meta::model
