#include "async/socket_address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace mica {

Result<SocketAddress> SocketAddress::parse(std::string_view text) {
  auto bad = [&](const char* why) {
    return Status(StatusCode::kInvalidArgument, fmt::format("address '{}': {}", text, why));
  };
  std::string_view host, port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return bad("expected [v6-address]:port");
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("expected host:port");
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535)
    return bad("port is not a number in 0..65535");
  std::string host_string(host);
  SocketAddress result;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&result.storage_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&result.storage_);
  if (inet_pton(AF_INET, host_string.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    result.length_ = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host_string.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    result.length_ = sizeof(sockaddr_in6);
  } else {
    return bad("host is not a numeric IPv4 or IPv6 address");
  }
  return result;
}

SocketAddress SocketAddress::ipv4(uint32_t host_order_address, uint16_t port) {
  SocketAddress result;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&result.storage_);
  v4->sin_family = AF_INET;
  v4->sin_addr.s_addr = htonl(host_order_address);
  v4->sin_port = htons(port);
  result.length_ = sizeof(sockaddr_in);
  return result;
}

Result<SocketAddress> SocketAddress::from_sockaddr(const sockaddr* address, socklen_t length) {
  if (length > sizeof(sockaddr_storage) ||
      (address->sa_family != AF_INET && address->sa_family != AF_INET6))
    return Status(StatusCode::kInvalidArgument, "not an IPv4 or IPv6 socket address");
  SocketAddress result;
  std::memcpy(&result.storage_, address, length);
  result.length_ = length;
  return result;
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

std::string SocketAddress::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, text,
              sizeof text);
    return fmt::format("{}:{}", text, port());
  }
  if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, text,
              sizeof text);
    return fmt::format("[{}]:{}", text, port());
  }
  return "<unset>";
}

bool operator==(const SocketAddress& a, const SocketAddress& b) {
  return a.length_ == b.length_ && std::memcmp(&a.storage_, &b.storage_, a.length_) == 0;
}

}  // namespace mica
