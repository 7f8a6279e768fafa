// Small helpers of the POSIX behaviour suite (tests/fuse/posix_*.cc): stat a path, make a
// file with some bytes, compare timestamps, and wait long enough that a timestamp taken now
// differs from one taken before (the clocks are nanosecond-grained; 20 ms is far above any
// file system's granularity here, ext4 and Mica's meta alike).
//
// Plain blocking calls on the test thread; a failed setup step fails the test via
// ADD_FAILURE and returns a zeroed value, so expectations after it fail loudly, not crash.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

namespace mica::testing {

inline struct stat stat_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    ADD_FAILURE() << "lstat " << path << ": " << std::strerror(errno);
  }
  return st;
}

inline bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// Creates (or replaces) path with these bytes and mode.
inline void make_file(const std::string& path, const std::string& bytes = "hello",
                      mode_t mode = 0644) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    ADD_FAILURE() << "create " << path << ": " << std::strerror(errno);
    return;
  }
  if (::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
    ADD_FAILURE() << "write " << path << ": " << std::strerror(errno);
  }
  ::fchmod(fd, mode);  // whatever the umask took away
  ::close(fd);
}

inline std::string read_all(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "<" + std::string(std::strerror(errno)) + ">";
  std::string out;
  char buffer[4096];
  for (ssize_t got; (got = ::read(fd, buffer, sizeof buffer)) > 0;) out.append(buffer, got);
  ::close(fd);
  return out;
}

inline bool later(const timespec& a, const timespec& b) {
  return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}
inline bool same_time(const timespec& a, const timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

// Lets the clock move on, so an update's timestamps differ from the ones before it.
inline void tick() {
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

}  // namespace mica::testing
