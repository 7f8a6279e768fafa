// TempDir: a fresh directory for one test, made with mkdtemp under a folder of the build
// tree (the real disk: /tmp may be a tmpfs, which refuses O_DIRECT on other machines) and
// removed with everything in it when the object is destroyed. Owned by one test; one thread;
// nothing here suspends.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace mica::testing {

// The directory of the running test binary.
inline std::string binary_dir() {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
}

class TempDir {
 public:
  // Makes parent (if missing) and in it a new directory whose name starts with prefix.
  TempDir(const std::string& parent, const std::string& prefix) {
    std::filesystem::create_directories(parent);
    std::string pattern = parent + "/" + prefix + "-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr) std::abort();
    path_ = buffer.data();
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace mica::testing
