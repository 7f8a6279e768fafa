// ClusterToken: the shared secret every Mica process of one cluster holds, and its file.
//
// A cluster is one trust domain: every server and client of it reads the same token file
// (named by its config, mode 0600 or 0400) and proves on every connection that it holds the
// secret, without sending it (net/authenticated_transport.h runs the handshake;
// docs/net.md, "Cluster token", says what that protects against and what not). This file
// loads and generates token files and computes the handshake's proofs: HMAC-SHA256 from
// OpenSSL's libcrypto, compared in constant time; Mica writes no cryptography of its own.
// The secret is never printed: fmt and operator<< write "<token>".
// A ClusterToken is a value (copyable; each copy wipes its bytes when destroyed), safe to
// read from any thread. load_cluster_token and generate_cluster_token_file do blocking file
// I/O: call them at startup or from a test, never from a task on an executor.
#pragma once

#include <array>
#include <cstddef>
#include <iosfwd>
#include <span>
#include <string>
#include <string_view>

#include "async/status.h"

namespace mica::net {

// Limits on the secret, after trailing whitespace is trimmed from the file.
inline constexpr size_t kClusterTokenBytesMin = 16;
inline constexpr size_t kClusterTokenBytesMax = 4096;
// A token file is never read past this (the secret plus generous trailing whitespace).
inline constexpr size_t kClusterTokenFileBytesMax = 2 * kClusterTokenBytesMax;
// generate_cluster_token_file writes this many random bytes, hex-encoded.
inline constexpr size_t kGeneratedTokenRandomBytes = 32;
// An HMAC-SHA256 proof.
inline constexpr size_t kTokenProofBytes = 32;

using TokenProof = std::array<std::byte, kTokenProofBytes>;

class ClusterToken {
 public:
  // The secret as it is (no trimming); refused unless kClusterTokenBytesMin..Max bytes long.
  static Result<ClusterToken> from_secret(std::string secret);

  ClusterToken(const ClusterToken& other) = default;
  ClusterToken(ClusterToken&& other) noexcept = default;
  ClusterToken& operator=(const ClusterToken& other);
  ClusterToken& operator=(ClusterToken&& other) noexcept;
  ~ClusterToken();

  size_t size() const { return secret_.size(); }
  // HMAC-SHA256(secret, label ‖ first ‖ second): the handshake's proofs (the label keeps a
  // client's proof from ever passing as a server's).
  TokenProof prove(std::string_view label, std::span<const std::byte> first,
                   std::span<const std::byte> second) const;
  // Whether proof is prove(label, first, second), compared in constant time.
  bool verify(std::string_view label, std::span<const std::byte> first,
              std::span<const std::byte> second, std::span<const std::byte> proof) const;

  // Constant time in the secret's bytes (the lengths may leak).
  friend bool operator==(const ClusterToken& a, const ClusterToken& b);

 private:
  explicit ClusterToken(std::string secret) : secret_(std::move(secret)) {}
  void wipe();
  std::string secret_;
};

// Never the secret: "<token>".
std::ostream& operator<<(std::ostream& out, const ClusterToken& token);

// Reads a token file: trailing whitespace (a newline, say) is trimmed. Refused, with a
// message naming the path: a missing or unreadable file (kNotFound / the errno's code), one
// that is not a regular file, one whose mode is not 0600 or 0400 (kPermissionDenied: group
// or others could read the secret), and a secret that is empty, shorter than
// kClusterTokenBytesMin or longer than kClusterTokenBytesMax (kInvalidArgument).
Result<ClusterToken> load_cluster_token(const std::string& path);

// Writes a new token file: kGeneratedTokenRandomBytes from the kernel's getrandom(2),
// hex-encoded, and a newline, created with mode 0600 (O_EXCL: an existing file is never
// replaced, kAlreadyExists) and fsynced. For `mica dev up` and tests.
Status generate_cluster_token_file(const std::string& path);

}  // namespace mica::net

template <>
struct fmt::formatter<mica::net::ClusterToken> : fmt::formatter<std::string_view> {
  auto format(const mica::net::ClusterToken&, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format("<token>", ctx);
  }
};
