// SocketAddress: an IPv4 or IPv6 address and port, parsed from "host:port" text.
//
// Only numeric addresses are accepted ("127.0.0.1:7000", "[::1]:7000"): name resolution
// blocks and has no place on an executor thread. Value type; thread-compatible.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <string_view>

#include "async/status.h"

namespace mica {

class SocketAddress {
 public:
  SocketAddress() = default;
  static Result<SocketAddress> parse(std::string_view text);
  static SocketAddress ipv4(uint32_t host_order_address, uint16_t port);
  static SocketAddress loopback(uint16_t port) { return ipv4(INADDR_LOOPBACK, port); }
  static Result<SocketAddress> from_sockaddr(const sockaddr* address, socklen_t length);

  int family() const { return storage_.ss_family; }
  uint16_t port() const;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t length() const { return length_; }
  std::string to_string() const;
  friend bool operator==(const SocketAddress& a, const SocketAddress& b);

 private:
  sockaddr_storage storage_{};
  socklen_t length_ = 0;
};

}  // namespace mica
