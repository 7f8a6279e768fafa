#include "net/cluster_token.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ostream>
#include <vector>

namespace mica::net {

namespace {

// The one place Mica computes a MAC: OpenSSL's HMAC-SHA256 over label ‖ first ‖ second.
TokenProof hmac_sha256(std::string_view key, std::string_view label,
                       std::span<const std::byte> first, std::span<const std::byte> second) {
  std::vector<unsigned char> message;
  message.reserve(label.size() + first.size() + second.size());
  message.insert(message.end(), label.begin(), label.end());
  for (std::byte b : first) message.push_back(static_cast<unsigned char>(b));
  for (std::byte b : second) message.push_back(static_cast<unsigned char>(b));
  TokenProof proof;
  unsigned int length = 0;
  unsigned char* done =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), message.data(), message.size(),
           reinterpret_cast<unsigned char*>(proof.data()), &length);
  // Only an allocation failure inside OpenSSL can get here; a made-up proof would be worse.
  MICA_ASSERT_MSG(done != nullptr && length == proof.size(), "HMAC-SHA256 failed");
  OPENSSL_cleanse(message.data(), message.size());
  return proof;
}

constexpr std::string_view kWhitespace = " \t\r\n\v\f";

// Opens and checks the file; the descriptor is closed by the caller.
Result<int> open_token_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT)
      return Status(StatusCode::kNotFound,
                    fmt::format("cluster token file {} does not exist", path));
    return Status::from_errno(e, fmt::format("cluster token file {}", path));
  }
  struct stat st {};
  Status refused;
  if (::fstat(fd, &st) != 0) {
    refused = Status::from_errno(errno, fmt::format("cluster token file {}", path));
  } else if (!S_ISREG(st.st_mode)) {
    refused = Status(StatusCode::kInvalidArgument,
                     fmt::format("cluster token file {} is not a regular file", path));
  } else if (mode_t mode = st.st_mode & 07777; mode != 0600 && mode != 0400) {
    refused = Status(StatusCode::kPermissionDenied,
                     fmt::format("cluster token file {} has mode {:04o}: it must be readable by "
                                 "its owner only (0600 or 0400; chmod 600 {})",
                                 path, mode, path));
  }
  if (!refused.ok()) {
    ::close(fd);
    return refused;
  }
  return fd;
}

Result<std::string> read_token_file(const std::string& path) {
  Result<int> fd = open_token_file(path);
  if (!fd.ok()) return fd.status();
  std::string bytes(kClusterTokenFileBytesMax + 1, '\0');
  size_t have = 0;
  Status failed;
  while (have < bytes.size()) {
    ssize_t n = ::read(*fd, bytes.data() + have, bytes.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      failed = Status::from_errno(errno, fmt::format("reading cluster token file {}", path));
    if (n <= 0) break;
    have += size_t(n);
  }
  ::close(*fd);
  if (!failed.ok()) {
    OPENSSL_cleanse(bytes.data(), bytes.size());
    return failed;
  }
  bytes.resize(have);
  return bytes;
}

std::string hex(std::span<const unsigned char> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

}  // namespace

Result<ClusterToken> ClusterToken::from_secret(std::string secret) {
  if (secret.empty()) return Status(StatusCode::kInvalidArgument, "the cluster token is empty");
  if (secret.size() < kClusterTokenBytesMin || secret.size() > kClusterTokenBytesMax) {
    size_t length = secret.size();
    OPENSSL_cleanse(secret.data(), secret.size());
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("the cluster token has {} bytes; it must have {} to {}", length,
                              kClusterTokenBytesMin, kClusterTokenBytesMax));
  }
  return ClusterToken(std::move(secret));
}

ClusterToken& ClusterToken::operator=(const ClusterToken& other) {
  if (this != &other) {
    wipe();
    secret_ = other.secret_;
  }
  return *this;
}

ClusterToken& ClusterToken::operator=(ClusterToken&& other) noexcept {
  if (this != &other) {
    wipe();
    secret_ = std::move(other.secret_);
  }
  return *this;
}

ClusterToken::~ClusterToken() {
  wipe();
}

void ClusterToken::wipe() {
  if (!secret_.empty()) OPENSSL_cleanse(secret_.data(), secret_.size());
  secret_.clear();
}

TokenProof ClusterToken::prove(std::string_view label, std::span<const std::byte> first,
                               std::span<const std::byte> second) const {
  return hmac_sha256(secret_, label, first, second);
}

bool ClusterToken::verify(std::string_view label, std::span<const std::byte> first,
                          std::span<const std::byte> second,
                          std::span<const std::byte> proof) const {
  if (proof.size() != kTokenProofBytes) return false;
  TokenProof expected = prove(label, first, second);
  return CRYPTO_memcmp(expected.data(), proof.data(), expected.size()) == 0;
}

bool operator==(const ClusterToken& a, const ClusterToken& b) {
  return a.secret_.size() == b.secret_.size() &&
         CRYPTO_memcmp(a.secret_.data(), b.secret_.data(), a.secret_.size()) == 0;
}

std::ostream& operator<<(std::ostream& out, const ClusterToken&) {
  return out << "<token>";
}

Result<ClusterToken> load_cluster_token(const std::string& path) {
  Result<std::string> bytes = read_token_file(path);
  if (!bytes.ok()) return bytes.status();
  std::string secret = std::move(*bytes);
  size_t end = secret.find_last_not_of(kWhitespace);
  size_t length = end == std::string::npos ? 0 : end + 1;
  std::fill(secret.begin() + length, secret.end(), '\0');
  secret.resize(length);
  Result<ClusterToken> token = ClusterToken::from_secret(std::move(secret));
  if (!token.ok())
    return Status(token.status().code(),
                  fmt::format("cluster token file {}: {}", path, token.status().message()));
  return token;
}

Status generate_cluster_token_file(const std::string& path) {
  unsigned char random[kGeneratedTokenRandomBytes];
  ssize_t n;
  do n = ::getrandom(random, sizeof random, 0);
  while (n < 0 && errno == EINTR);
  if (n != ssize_t(sizeof random))
    return Status(StatusCode::kInternal, "getrandom gave no random bytes for a cluster token");
  std::string text = hex(random) + "\n";
  OPENSSL_cleanse(random, sizeof random);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    OPENSSL_cleanse(text.data(), text.size());
    return Status::from_errno(errno, fmt::format("creating cluster token file {}", path));
  }
  Status written;
  // The umask may only have narrowed 0600; fchmod makes the mode exactly what load requires.
  if (::fchmod(fd, 0600) != 0) written = Status::from_errno(errno, path);
  size_t done = 0;
  while (written.ok() && done < text.size()) {
    ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) written = Status::from_errno(errno, fmt::format("writing {}", path));
    if (w == 0)
      written = Status(StatusCode::kIoError, fmt::format("writing {}: no progress", path));
    if (w > 0) done += size_t(w);
  }
  if (written.ok() && ::fsync(fd) != 0) written = Status::from_errno(errno, path);
  ::close(fd);
  OPENSSL_cleanse(text.data(), text.size());
  if (!written.ok()) ::unlink(path.c_str());
  return written;
}

}  // namespace mica::net
